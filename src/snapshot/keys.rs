//! The snapshot signing key pair, in minisign's own file formats, so that an administrator
//! can check a snapshot by hand with Debian's `minisign` (`minisign -Vm manifest.json -p
//! publish.pub`).
//!
//! The secret key is written unencrypted (minisign's `-W`): `publish` runs unattended from
//! a timer, and a password it could read would sit next to the key anyway. Its protection
//! is the file mode: 0600 root, and a key others can read is refused.

use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use minisign::{PublicKeyBox, SecretKeyBox, SignatureBox};

use super::SnapshotError;
use crate::config::SnapshotConfig;

/// The most a key file may be: a minisign key file is under 300 bytes.
const MAX_KEY_FILE_BYTES: u64 = 16 << 10;

/// A minisign key id: 8 bytes, shown as minisign shows it (16 upper-case hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; 8]);

impl KeyId {
    fn from_slice(bytes: &[u8]) -> Option<KeyId> {
        bytes.try_into().ok().map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

/// The publisher's secret key, read from `[publish] signing_key_file`.
pub struct SigningKey {
    secret: minisign::SecretKey,
    public: minisign::PublicKey,
    id: KeyId,
}

/// A host's trusted key, from `[snapshot] public_key_file` or `public_key`.
#[derive(Clone)]
pub struct PublicKey {
    key: minisign::PublicKey,
    id: KeyId,
    /// Which configuration key it came from, for messages.
    pub source: &'static str,
}

fn key_error(path: &Path, reason: impl fmt::Display) -> SnapshotError {
    SnapshotError::Key { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Writes a new key pair: the secret key 0600 (unencrypted, see the module's note), the
/// public key 0644. Refuses to overwrite either file: hosts trust the existing key.
pub fn keygen(secret_path: &Path, public_path: &Path) -> Result<KeyId, SnapshotError> {
    for path in [secret_path, public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(SnapshotError::KeyExists { path: path.to_path_buf() });
        }
    }
    let pair = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|e| key_error(secret_path, format!("cannot generate a key pair: {e}")))?;
    let id = KeyId::from_slice(pair.pk.keynum())
        .ok_or_else(|| key_error(public_path, "minisign returned a key id of the wrong size"))?;
    let secret = pair
        .sk
        .to_box(Some(&format!(
            "dircache snapshot signing key {id} (unencrypted: publish runs unattended)"
        )))
        .map_err(|e| key_error(secret_path, e))?;
    let public = pair.pk.to_box().map_err(|e| key_error(public_path, e))?;
    write_new(secret_path, &secret.to_bytes(), 0o600)?;
    if let Err(e) = write_new(public_path, &public.to_bytes(), 0o644) {
        // A secret key without its public half is of no use and must not linger.
        let _ = fs::remove_file(secret_path);
        return Err(e);
    }
    Ok(id)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(
        |e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                SnapshotError::KeyExists { path: path.to_path_buf() }
            }
            _ => io(e),
        },
    )?;
    file.set_permissions(Permissions::from_mode(mode)).map_err(io)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io)
}

/// Reads a small key file through an open descriptor: nobody but root (or the reader) may
/// be able to change it, and with `secret`, nobody else may read it.
fn read_key_file(path: &Path, secret: bool) -> Result<String, SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    crate::trust::check_writers(path, &metadata).map_err(|untrusted| {
        key_error(
            path,
            format!(
                "can be changed by others (mode {:04o}, owner uid {}): whoever can write it \
                 decides what hosts trust. Run {}",
                untrusted.mode, untrusted.owner, untrusted.fix
            ),
        )
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if secret && mode & 0o077 != 0 {
        return Err(SnapshotError::KeyReadable { path: path.to_path_buf(), mode });
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES).read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

impl SigningKey {
    pub fn load(path: &Path) -> Result<SigningKey, SnapshotError> {
        let text = read_key_file(path, true)?;
        let secret = SecretKeyBox::from_string(&text)
            .and_then(SecretKeyBox::into_unencrypted_secret_key)
            .map_err(|e| {
                key_error(
                    path,
                    format!(
                        "not an unencrypted minisign secret key ({e}); make one with \
                         `dircache-sync keygen` (or `minisign -G -W`)"
                    ),
                )
            })?;
        let public = minisign::PublicKey::from_secret_key(&secret)
            .map_err(|e| key_error(path, format!("cannot derive the public key: {e}")))?;
        let id = KeyId::from_slice(public.keynum())
            .ok_or_else(|| key_error(path, "the key id has the wrong size"))?;
        Ok(SigningKey { secret, public, id })
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A minisign signature file for `data`; `comment` becomes its trusted comment, which
    /// `minisign -V` prints.
    pub fn sign(&self, data: &[u8], comment: &str) -> Result<String, String> {
        let signature = minisign::sign(
            Some(&self.public),
            &self.secret,
            Cursor::new(data),
            Some(comment),
            Some("signature from dircache snapshot key"),
        )
        .map_err(|e| e.to_string())?;
        Ok(signature.into_string())
    }
}

impl PublicKey {
    /// The key `[snapshot]` names.
    pub fn from_config(config: &SnapshotConfig) -> Result<PublicKey, SnapshotError> {
        if let Some(text) = &config.public_key {
            let key = minisign::PublicKey::from_base64(text.trim()).map_err(|e| {
                SnapshotError::NotConfigured(format!(
                    "snapshot.public_key is not a minisign public key ({e}); give the second \
                     line of the publisher's publish.pub"
                ))
            })?;
            return PublicKey::new(key, "snapshot.public_key", Path::new("snapshot.public_key"));
        }
        let Some(path) = &config.public_key_file else {
            return Err(SnapshotError::NotConfigured(
                "[snapshot] needs public_key_file or public_key".to_string(),
            ));
        };
        PublicKey::from_file(path)
    }

    pub fn from_file(path: &Path) -> Result<PublicKey, SnapshotError> {
        let text = read_key_file(path, false)?;
        let key = PublicKeyBox::from_string(&text)
            .and_then(PublicKeyBox::into_public_key)
            .map_err(|e| key_error(path, format!("not a minisign public key file ({e})")))?;
        PublicKey::new(key, "snapshot.public_key_file", path)
    }

    fn new(
        key: minisign::PublicKey,
        source: &'static str,
        path: &Path,
    ) -> Result<PublicKey, SnapshotError> {
        let id = KeyId::from_slice(key.keynum())
            .ok_or_else(|| key_error(path, "the key id has the wrong size"))?;
        Ok(PublicKey { key, id, source })
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Checks `signature` (the text of a `.minisig` file) over `data`. Nothing of `data`
    /// is looked at before this has succeeded.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<(), VerifyError> {
        let signature = SignatureBox::from_string(signature)
            .map_err(|e| VerifyError::Bad(format!("not a minisign signature: {e}")))?;
        let signed_by = KeyId::from_slice(signature.keynum())
            .ok_or_else(|| VerifyError::Bad("the signature's key id has the wrong size".into()))?;
        if signed_by != self.id {
            return Err(VerifyError::OtherKey(signed_by));
        }
        // Legacy (non-prehashed) signatures are refused: `minisign` has made prehashed
        // ones for years, and one format is less to get wrong.
        minisign::verify(&self.key, &signature, Cursor::new(data), true, false, false)
            .map_err(|e| VerifyError::Bad(e.to_string()))
    }
}

#[derive(Debug)]
pub enum VerifyError {
    OtherKey(KeyId),
    Bad(String),
}
