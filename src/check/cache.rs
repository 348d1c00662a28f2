//! The cache: its tables, its modes, the private login state, and the last sync.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{CheckResult, Status};
use crate::cache::{CacheDir, CacheError, PublicUser};
use crate::config::{Config, DirectoryKind};
use crate::sync::read_status;

/// A user of the cache, to look up through NSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleUser {
    pub name: String,
    pub uid: u32,
}

/// The cache: every table's checksums, the format version, the files' modes, and the
/// private state directory's modes.
pub fn check_cache(config: &Config, now: u64) -> (CheckResult, Option<SampleUser>) {
    const NAME: &str = "cache";
    let root = &config.cache.dir;
    let sync_hint = "run `dircache-sync sync` (or `dircache-sync user add`) to create it";
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let message = format!("{} does not exist yet", root.display());
            return (CheckResult::with(NAME, Status::Warn, message, sync_hint), None);
        }
        Err(e) => return (cache_io_failure(root, &e), None),
        Ok(meta) if meta.permissions().mode() & 0o022 != 0 => {
            let message = format!(
                "{} has mode {:04o}: group or others could replace the cache",
                root.display(),
                meta.permissions().mode() & 0o7777
            );
            let hint = format!("chmod 755 {}", root.display());
            return (CheckResult::with(NAME, Status::Fail, message, hint), None);
        }
        Ok(_) => {}
    }
    let cache = CacheDir::new(root);
    let verified = cache.load().and_then(|db| {
        if db.meta.generation == 0 {
            return Ok((db, Vec::new()));
        }
        // `load` checks the private tables; the public one NSS reads is checked here.
        let public = cache.open::<PublicUser>()?.read_all()?;
        Ok((db, public))
    });
    let (db, public) = match verified {
        Ok(found) => found,
        Err(e) => return (cache_failure(&e), None),
    };
    if db.meta.generation == 0 {
        let message = format!("no cache has been written in {} yet", root.display());
        return (CheckResult::with(NAME, Status::Warn, message, sync_hint), None);
    }
    if let Some(problem) = state_dir_problem(&root.join("state")) {
        return (problem, None);
    }
    let message = format!(
        "{}: generation {} (format version {}, written {} s ago), {} users and {} groups; \
         checksums and file modes verified",
        root.display(),
        db.meta.generation,
        db.meta.format_version,
        now.saturating_sub(db.meta.written_at),
        db.users.len(),
        db.groups.len()
    );
    let sample = public.first().map(|user| SampleUser { name: user.name.clone(), uid: user.uid });
    (CheckResult::ok(NAME, message), sample)
}

fn cache_failure(error: &CacheError) -> CheckResult {
    let hint = match error {
        // These messages already say what to do.
        CacheError::Corrupt { .. }
        | CacheError::Insecure { .. }
        | CacheError::LockTimeout { .. } => None,
        CacheError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            Some("run `dircache-sync check` as root: the cache's private part is root's only")
        }
        _ => Some(
            "run `dircache-sync sync` to write a new generation; if that fails too, move the \
             cache directory away and sync again",
        ),
    };
    CheckResult {
        name: "cache",
        status: Status::Fail,
        message: error.to_string(),
        hint: hint.map(str::to_string),
    }
}

fn cache_io_failure(path: &Path, error: &io::Error) -> CheckResult {
    cache_failure(&CacheError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(error.kind(), error.to_string()),
    })
}

/// The offline-credential and failure-count files must stay root's.
pub(super) fn state_dir_problem(dir: &Path) -> Option<CheckResult> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(cache_io_failure(dir, &e)),
        Ok(entries) => entries,
    };
    let too_open = |path: &Path, allowed: u32| -> Option<CheckResult> {
        let mode = fs::symlink_metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & !allowed != 0).then(|| {
            CheckResult::with(
                "cache",
                Status::Fail,
                format!(
                    "{} has mode {mode:04o}: it holds login state (offline password hashes), \
                     which only root may read",
                    path.display()
                ),
                format!("chmod {allowed:o} {}", path.display()),
            )
        })
    };
    if let Some(problem) = too_open(dir, 0o700) {
        return Some(problem);
    }
    entries.flatten().find_map(|entry| too_open(&entry.path(), 0o600))
}

/// The last sync run recorded by `sync` (or the timer, or the daemon).
/// For monitoring (`[status] max_sync_age_secs`): why the last successful sync is too old,
/// if it is. Without the key nothing is too old.
fn older_than_allowed(config: &Config, now: u64) -> Option<String> {
    let bound = config.status.max_sync_age_secs?;
    let last = read_status(&config.cache.dir).ok().flatten().and_then(|s| s.last_success_at);
    match last {
        None => Some(format!(
            "no successful sync is recorded, and status.max_sync_age_secs = {bound} asks for one"
        )),
        Some(at) if now.saturating_sub(at) > bound => Some(format!(
            "the last successful sync started {} s ago, more than status.max_sync_age_secs = \
             {bound}",
            now.saturating_sub(at)
        )),
        Some(_) => None,
    }
}

pub fn check_last_sync(config: &Config, now: u64) -> CheckResult {
    const NAME: &str = "last-sync";
    if config.directory.kind == DirectoryKind::None {
        return CheckResult::skip(NAME, "no directory is configured");
    }
    let journal = "see `dircache-sync status` and `journalctl -u dircache-sync.service`";
    if let Some(too_old) = older_than_allowed(config, now) {
        return CheckResult::with(NAME, Status::Fail, too_old, format!("sync again; {journal}"));
    }
    match read_status(&config.cache.dir) {
        Ok(None) => CheckResult::with(
            NAME,
            Status::Warn,
            "no sync has run yet",
            "run `dircache-sync sync --dry-run`, then `dircache-sync sync`; the timer \
             (dircache-sync.timer) then syncs every 15 minutes",
        ),
        Ok(Some(status)) if status.result != "success" => {
            let what = if status.result == "partial" {
                "wrote the cache but reported an error"
            } else {
                "failed; logins use the cache as it was"
            };
            CheckResult::with(
                NAME,
                Status::Warn,
                format!(
                    "the last sync ({} s ago) {what}: {}",
                    now.saturating_sub(status.started_at),
                    status.error.as_deref().unwrap_or("no error recorded")
                ),
                format!("fix the cause and run `dircache-sync sync`; {journal}"),
            )
        }
        Ok(Some(status)) => {
            let age = now.saturating_sub(status.started_at);
            // The timer runs every 15 minutes, the daemon every interval: three missed
            // runs in a row mean neither is running.
            let stale_after = config.sync.interval_secs.max(900).saturating_mul(3);
            if age > stale_after {
                CheckResult::with(
                    NAME,
                    Status::Warn,
                    format!("the last sync succeeded, but {} h ago", age / 3600),
                    format!(
                        "enable the timer: `systemctl enable --now dircache-sync.timer` \
                         (or the daemon); {journal}"
                    ),
                )
            } else {
                CheckResult::ok(
                    NAME,
                    format!(
                        "the last sync succeeded {age} s ago ({} users listed)",
                        status.listed_users
                    ),
                )
            }
        }
        Err(e) => CheckResult::with(
            NAME,
            Status::Warn,
            e.to_string(),
            "the next `dircache-sync sync` rewrites the status file",
        ),
    }
}
