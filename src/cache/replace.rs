//! Replacing one small file atomically: temp file beside it, fsync, rename, fsync of the
//! directory. A reader (NSS, `status`, a web server serving a snapshot) sees the old file or
//! the new one, never half of one; a full disk leaves no temp file behind.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::CacheError;

/// Writes `bytes` as `dir/name` with `mode`. The temp file is `.NAME.tmp`: hidden, so that
/// upload tools and directory listings skip it.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), CacheError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let _ = fs::remove_file(&tmp);
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(io(&tmp))?;
    // Whatever the umask took away.
    file.set_permissions(Permissions::from_mode(mode)).map_err(io(&tmp))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        let _ = fs::remove_file(&tmp);
        return Err(CacheError::Io { path: tmp, source: e });
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// [`replace_file`] with `value` as pretty JSON, 0644: for files that hold no secret
/// (`what` names the file in an error).
pub fn replace_json(
    dir: &Path,
    name: &str,
    what: &str,
    value: &impl Serialize,
) -> Result<(), CacheError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CacheError::BadRecord {
        path: dir.join(name),
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    replace_file(dir, name, &json, 0o644)
}

/// The JSON file `dir/name` written by [`replace_json`], or `None` when there is none; a
/// file that does not parse is an error naming `what`, followed by `remedy`.
pub fn read_json<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
    what: &str,
    remedy: &str,
) -> Result<Option<T>, CacheError> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CacheError::Io { path, source }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| CacheError::BadRecord {
        path,
        what: what.to_string(),
        reason: format!("{e}{remedy}"),
    })
}
