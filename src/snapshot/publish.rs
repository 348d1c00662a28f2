//! `dircache-sync publish DIR`: the current cache, signed, as static files.
//!
//! Data files are content-addressed and written first; the manifest and its signature last.
//! Whatever order an upload tool copies them in, a host sees the old manifest (whose files
//! are still there: old files are kept for [`KEEP_GENERATIONS`] publications and at least
//! [`KEEP_SECS`]) or the new one (whose files are there, or missing and then refused as
//! half-uploaded): never a mix.

use std::collections::BTreeSet;
use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::keys::SigningKey;
use super::{
    data_file_name, sha256_hex, FileEntry, FileKind, Manifest, SnapshotError, FORMAT_NAME,
    FORMAT_VERSION, HISTORY_FILE, MANIFEST_FILE, SIGNATURE_FILE,
};
use crate::cache::{CacheDir, CacheError, Db};
use crate::config::Config;
use crate::user::{AuthMethod, Group, User};

/// Data files of this many publications (the new one included) are kept…
pub const KEEP_GENERATIONS: usize = 3;
/// …and every data file younger than this, so a host that fetched an older manifest a
/// moment ago still finds its files.
pub const KEEP_SECS: u64 = 3600;

#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub dir: PathBuf,
    pub generation: u64,
    pub published_at: u64,
    pub key_id: String,
    pub users: usize,
    pub groups: usize,
    /// Users whose password hash was left out (manual users, without
    /// `include_local_passwords`).
    pub hashes_withheld: usize,
    pub files: Vec<FileEntry>,
    /// Data files this run wrote (the others were there already).
    pub written: Vec<String>,
    pub pruned: Vec<String>,
    pub duration_secs: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    /// Newest last.
    publications: Vec<Publication>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Publication {
    generation: u64,
    published_at: u64,
    files: Vec<String>,
}

/// Signs the current cache into `dir` (created if missing). `now` is the publisher's time.
pub fn publish(config: &Config, dir: &Path, now: u64) -> Result<PublishReport, SnapshotError> {
    let started = std::time::Instant::now();
    let Some(settings) = &config.publish else {
        return Err(SnapshotError::NotConfigured(
            "publishing needs [publish] signing_key_file in the configuration (make a key pair \
             with `dircache-sync keygen`)"
                .to_string(),
        ));
    };
    if config.snapshot.is_some() {
        return Err(SnapshotError::NotConfigured(
            "this host pulls snapshots ([snapshot]); publish from the host that syncs from the \
             directory"
                .to_string(),
        ));
    }
    let key = SigningKey::load(&settings.signing_key_file)?;
    let db = read_consistent(config)?;

    let (users, hashes_withheld) = encode_users(&db, settings.include_local_passwords)?;
    let hashes_included = settings.include_local_passwords
        && db.users.iter().any(|u| u.auth == AuthMethod::Local && u.password_hash.is_some());
    let groups = encode_groups(&db.groups)?;
    ensure_dir(dir)?;
    let mut files = Vec::new();
    let mut written = Vec::new();
    for (kind, content) in [(FileKind::Users, &users), (FileKind::Groups, &groups)] {
        let bytes = &compress(content)?;
        let sha256 = sha256_hex(bytes);
        let name = data_file_name(&sha256, kind);
        let path = dir.join(&name);
        // Content-addressed: a file of that name already holds these bytes, unless someone
        // changed it in place (hosts would refuse it forever): then it is written again.
        // Password hashes (only with include_local_passwords) are files 0600 root, here as
        // in the cache: whoever serves them must decide to (docs/snapshots.md).
        let mode = if kind == FileKind::Users && hashes_included { 0o600 } else { 0o644 };
        let present = fs::read(&path).is_ok_and(|old| old == *bytes);
        if present {
            fs::set_permissions(&path, Permissions::from_mode(mode)).map_err(io_error(&path))?;
        } else {
            write_file(dir, &name, bytes, mode)?;
            written.push(name.clone());
        }
        let content_size = content.len() as u64;
        files.push(FileEntry { kind, name, size: bytes.len() as u64, sha256, content_size });
    }

    let previous = previous_generation(dir);
    let generation = previous.map_or(now, |g| g.saturating_add(1).max(now));
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        generation,
        published_at: now,
        key_id: key.id().to_string(),
        users: db.users.len(),
        groups: db.groups.len(),
        files: files.clone(),
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| SnapshotError::NotConfigured(format!("cannot encode the manifest: {e}")))?;
    manifest_bytes.push(b'\n');
    let comment =
        format!("dircache snapshot generation {generation} published_at {now} key {}", key.id());
    let signature = key.sign(&manifest_bytes, &comment).map_err(|reason| SnapshotError::Key {
        path: settings.signing_key_file.clone(),
        reason: format!("signing failed: {reason}"),
    })?;
    // The signature first: a host that reads the new manifest then finds its signature.
    let previous_mtime = fs::metadata(dir.join(MANIFEST_FILE)).and_then(|m| m.modified()).ok();
    write_atomic(dir, SIGNATURE_FILE, signature.as_bytes())?;
    write_atomic(dir, MANIFEST_FILE, &manifest_bytes)?;
    later_than(&dir.join(MANIFEST_FILE), previous_mtime)?;

    let pruned = record_and_prune(dir, generation, now, &files)?;
    sync_dir(dir)?;
    Ok(PublishReport {
        dir: dir.to_path_buf(),
        generation,
        published_at: now,
        key_id: key.id().to_string(),
        users: db.users.len(),
        groups: db.groups.len(),
        hashes_withheld,
        files,
        written,
        pruned,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

/// The cache as one generation: read under the writers' lock, which is released at once.
fn read_consistent(config: &Config) -> Result<Db, SnapshotError> {
    let cache = CacheDir::new(&config.cache.dir);
    if cache.current_dir()?.is_none() {
        return Err(CacheError::NotInitialized { dir: config.cache.dir.clone() }.into());
    }
    let _lock = cache.lock(Duration::from_secs(config.cache.lock_timeout_secs))?;
    Ok(cache.load()?)
}

/// What of a user travels. Never: offline credentials and login state (they are files of
/// their own beside the cache, never in a user record), the publisher's local `--disable`
/// mark (its effect, `enabled = false`, travels), and manual users' password hashes unless
/// asked for. Returns the lines and how many hashes were withheld.
pub(super) fn encode_users(
    db: &Db,
    include_local_passwords: bool,
) -> Result<(Vec<u8>, usize), SnapshotError> {
    let mut out = Vec::new();
    let mut withheld = 0;
    let mut users: Vec<&User> = db.users.iter().collect();
    users.sort_by_key(|u| u.uid);
    for user in users {
        let mut user = user.clone();
        user.disabled_by_admin = false;
        if user.password_hash.is_some()
            && !(include_local_passwords && user.auth == AuthMethod::Local)
        {
            user.password_hash = None;
            withheld += 1;
        }
        push_line(&mut out, &user)?;
    }
    Ok((out, withheld))
}

pub(super) fn encode_groups(groups: &[Group]) -> Result<Vec<u8>, SnapshotError> {
    let mut out = Vec::new();
    let mut groups: Vec<&Group> = groups.iter().collect();
    groups.sort_by_key(|g| g.gid);
    for group in groups {
        push_line(&mut out, group)?;
    }
    Ok(out)
}

/// gzip at the default level: JSON lines shrink about tenfold, and the same input always
/// gives the same bytes (no time or name in the header), so content addressing holds.
fn compress(content: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(content)
        .and_then(|()| encoder.finish())
        .map_err(|e| SnapshotError::NotConfigured(format!("cannot compress a snapshot file: {e}")))
}

fn push_line(out: &mut Vec<u8>, record: &impl Serialize) -> Result<(), SnapshotError> {
    serde_json::to_writer(&mut *out, record)
        .map_err(|e| SnapshotError::NotConfigured(format!("cannot encode a record: {e}")))?;
    out.push(b'\n');
    Ok(())
}

/// The generation of the manifest already in `dir`, if any: the new one must be higher,
/// or hosts that installed it would refuse the new one as a rollback. (The publisher's
/// clock is the floor, so a lost `dir` does not restart at 1 either.)
fn previous_generation(dir: &Path) -> Option<u64> {
    let bytes = fs::read(dir.join(MANIFEST_FILE)).ok()?;
    serde_json::from_slice::<Manifest>(&bytes).ok().map(|m| m.generation)
}

fn record_and_prune(
    dir: &Path,
    generation: u64,
    now: u64,
    files: &[FileEntry],
) -> Result<Vec<String>, SnapshotError> {
    let path = dir.join(HISTORY_FILE);
    let mut history: History =
        fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    history.publications.push(Publication {
        generation,
        published_at: now,
        files: files.iter().map(|f| f.name.clone()).collect(),
    });
    let excess = history.publications.len().saturating_sub(KEEP_GENERATIONS);
    history.publications.drain(..excess);
    let json = serde_json::to_vec_pretty(&history)
        .map_err(|e| SnapshotError::NotConfigured(format!("cannot encode the history: {e}")))?;
    write_atomic(dir, HISTORY_FILE, &json)?;

    let keep: BTreeSet<&str> =
        history.publications.iter().flat_map(|p| p.files.iter().map(String::as_str)).collect();
    let mut pruned = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_error(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_data_file_name(&name) || keep.contains(name.as_str()) {
            continue;
        }
        let modified = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_secs());
        if now.saturating_sub(modified) >= KEEP_SECS {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
            pruned.push(name);
        }
    }
    pruned.sort();
    Ok(pruned)
}

/// `<64 hex>.users.jsonl.gz` or `<64 hex>.groups.jsonl.gz`: the only files publish ever
/// deletes.
fn is_data_file_name(name: &str) -> bool {
    let Some((hash, rest)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 64
        && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && (rest == "users.jsonl.gz" || rest == "groups.jsonl.gz")
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

fn ensure_dir(dir: &Path) -> Result<(), SnapshotError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        fs::set_permissions(dir, Permissions::from_mode(0o755)).map_err(io_error(dir))?;
    }
    Ok(())
}

/// Temp file beside the target, fsync, rename: a reader (a web server) sees the old file or
/// the new one. Files are 0644: everything in a snapshot is meant to be served.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
    write_file(dir, name, bytes, 0o644)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), SnapshotError> {
    Ok(crate::cache::replace_file(dir, name, bytes, mode)?)
}

/// Static servers derive a manifest's validators from its modification time (nginx: ETag
/// "mtime-size" and Last-Modified, both to the second): two publications within one
/// second, of the same size, would look unchanged to a conditional GET. The new manifest's
/// time is therefore moved past the previous one's whole second when needed.
fn later_than(path: &Path, previous: Option<std::time::SystemTime>) -> Result<(), SnapshotError> {
    let Some(previous) = previous else {
        return Ok(());
    };
    let seconds =
        |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let file = File::options().write(true).open(path).map_err(io_error(path))?;
    let now = file.metadata().and_then(|m| m.modified()).map_err(io_error(path))?;
    if seconds(now) > seconds(previous) {
        return Ok(());
    }
    let next = UNIX_EPOCH + Duration::from_secs(seconds(previous) + 1);
    file.set_modified(next).map_err(io_error(path))
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}
