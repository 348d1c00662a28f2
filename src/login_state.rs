//! Per-user login state kept beside the cache: consecutive failures (for the failure delay)
//! and, when `[auth] cache_credentials` is on, an argon2id hash of the last password the
//! directory accepted (for offline logins).
//!
//! One small file per user in `<cache dir>/state/` (0700; files 0600), replaced atomically, so
//! that a login never rewrites the whole cache. A record is bound to the user's uid, which
//! is never reused: a later account with the same name never inherits it, a renamed
//! account keeps it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, Permissions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::AuthConfig;
use crate::user::User;

const STATE_DIR: &str = "state";

/// How long a login waits for another login of the same user to finish writing its record.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);
const LOCK_POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Error)]
#[error("login state {path}: {source}")]
pub struct LoginStateError {
    pub path: PathBuf,
    pub source: io::Error,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginState {
    pub name: String,
    pub uid: u32,
    /// Consecutive failed logins.
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<u64>,
    /// Argon2id PHC string of the last password the directory accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_stored_at: Option<u64>,
}

impl LoginState {
    pub fn fresh(user: &User) -> LoginState {
        LoginState { name: user.name.clone(), uid: user.uid, ..LoginState::default() }
    }

    /// How long the next attempt must wait: nothing below the threshold, then the delay,
    /// doubling with every further failure, bounded.
    pub fn delay(&self, config: &AuthConfig) -> Duration {
        let Some(excess) = self.failures.checked_sub(config.failure_threshold) else {
            return Duration::ZERO;
        };
        let factor = 1u64 << excess.min(16);
        let secs =
            config.failure_delay_secs.saturating_mul(factor).min(config.max_failure_delay_secs);
        Duration::from_secs(secs)
    }

    /// The cached hash, if present and younger than `offline_days`.
    pub fn usable_offline_hash(&self, config: &AuthConfig, now: u64) -> Option<&str> {
        if !config.cache_credentials {
            return None;
        }
        let stored_at = self.offline_stored_at?;
        let max_age = u64::from(config.offline_days) * 86_400;
        if now.saturating_sub(stored_at) > max_age || stored_at > now {
            return None;
        }
        self.offline_hash.as_deref()
    }

    pub fn record_failure(&mut self, now: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure_at = Some(now);
    }

    pub fn record_success(&mut self) {
        self.failures = 0;
        self.last_failure_at = None;
    }

    pub fn forget_offline_hash(&mut self) {
        self.offline_hash = None;
        self.offline_stored_at = None;
    }

    /// Deletes a cached hash that can no longer log anyone in (older than `offline_days`,
    /// from the future, or `cache_credentials` is off): an unusable credential is not kept
    /// on disk. Returns whether there was one.
    pub fn forget_unusable_offline_hash(&mut self, config: &AuthConfig, now: u64) -> bool {
        let unusable = self.has_unusable_offline_hash(config, now);
        if unusable {
            self.forget_offline_hash();
        }
        unusable
    }

    fn has_unusable_offline_hash(&self, config: &AuthConfig, now: u64) -> bool {
        (self.offline_hash.is_some() || self.offline_stored_at.is_some())
            && self.usable_offline_hash(config, now).is_none()
    }

    /// Nothing worth a file: no failures, no cached credential.
    fn is_empty(&self) -> bool {
        self.failures == 0
            && self.last_failure_at.is_none()
            && self.offline_hash.is_none()
            && self.offline_stored_at.is_none()
    }
}

/// What [`LoginStates::prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Accounts whose whole state was deleted.
    pub dropped: usize,
    /// Offline credentials deleted because they could no longer be used.
    pub expired: usize,
    /// What could not be read or deleted.
    pub errors: Vec<LoginStateError>,
}

/// The `state/` directory of a cache.
pub struct LoginStates {
    dir: PathBuf,
}

impl LoginStates {
    pub fn new(cache_dir: &Path) -> LoginStates {
        LoginStates { dir: cache_dir.join(STATE_DIR) }
    }

    /// Named by uid, which the cache keeps unique: a name chosen to collide with another
    /// user's under a hash could overwrite that user's record.
    fn path_for(&self, uid: u32) -> PathBuf {
        self.dir.join(format!("{uid}.json"))
    }

    /// The state of `user`; a missing, unreadable-as-JSON or foreign (another uid) record
    /// counts as a fresh one. A rename keeps the record: uids are never reused (deleted
    /// users' uids are retired), so the uid alone names the account.
    pub fn load(&self, user: &User) -> Result<LoginState, LoginStateError> {
        let path = self.path_for(user.uid);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LoginState::fresh(user)),
            Err(source) => return Err(LoginStateError { path, source }),
        };
        Ok(serde_json::from_slice::<LoginState>(&bytes)
            .ok()
            .filter(|state| state.uid == user.uid)
            .unwrap_or_else(|| LoginState::fresh(user)))
    }

    /// Re-reads the record of `user` under an exclusive lock of its own, lets `change`
    /// modify it and stores it if it changed: logins of one user running in parallel never
    /// lose each other's failures. Waits at most [`LOCK_WAIT`] for the lock (a stopped
    /// `su`, or a child forked while a thread held it, can keep it): then the record is not
    /// updated and the error says so; the login's outcome does not depend on it.
    pub fn update(
        &self,
        user: &User,
        change: impl FnOnce(&mut LoginState),
    ) -> Result<(), LoginStateError> {
        self.update_within(user, LOCK_WAIT, change)
    }

    fn update_within(
        &self,
        user: &User,
        wait: Duration,
        change: impl FnOnce(&mut LoginState),
    ) -> Result<(), LoginStateError> {
        self.ensure_dir()?;
        let path = self.lock_path(user.uid);
        let lock = lock_within(&path, wait).map_err(|source| LoginStateError { path, source })?;
        let mut state = self.load(user)?;
        let before = state.clone();
        change(&mut state);
        let stored = if state == before {
            Ok(())
        } else if state.is_empty() {
            self.remove_files(&[self.path_for(user.uid)]).map(|_| ())
        } else {
            self.store(&state)
        };
        drop(lock);
        stored
    }

    /// Deletes the whole state of every uid that `current` does not map to a user
    /// (deleted accounts, accounts the directory no longer lists, accounts listed again
    /// after they vanished), and of the others the offline credentials that can no longer
    /// be used ([`LoginState::forget_unusable_offline_hash`]). Each uid's files are
    /// deleted under its lock, so a login writing its record at the same moment is not
    /// undone half-way. Files that do not belong to a uid are left alone.
    pub fn prune<'u>(
        &self,
        current: impl Fn(u32) -> Option<Cow<'u, User>>,
        config: &AuthConfig,
        now: u64,
    ) -> Pruned {
        let mut pruned = Pruned::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return pruned,
            Err(source) => {
                pruned.errors.push(LoginStateError { path: self.dir.clone(), source });
                return pruned;
            }
        };
        // `<uid>.json`, `<uid>.lock`, `<uid>.tmp.<pid>` (left by a killed login).
        let mut files: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(source) => {
                    pruned.errors.push(LoginStateError { path: self.dir.clone(), source });
                    continue;
                }
            };
            let uid = path.file_name().and_then(|n| n.to_str()).and_then(uid_of_file);
            if let Some(uid) = uid {
                files.entry(uid).or_default().push(path);
            }
        }
        for (uid, paths) in files {
            let outcome = match current(uid) {
                None => self.drop_all(uid, &paths).map(|dropped| {
                    pruned.dropped += usize::from(dropped);
                }),
                // Read without the lock first: most records have nothing to delete.
                Some(user) => match self.load(&user) {
                    Ok(state) if state.has_unusable_offline_hash(config, now) => {
                        let mut expired = false;
                        let updated = self.update(&user, |state| {
                            expired = state.forget_unusable_offline_hash(config, now);
                        });
                        pruned.expired += usize::from(expired);
                        updated
                    }
                    other => other.map(|_| ()),
                },
            };
            if let Err(e) = outcome {
                pruned.errors.push(e);
            }
        }
        pruned
    }

    /// Deletes `paths` (all files of `uid`) under the uid's lock, the lock file last;
    /// returns whether a record was among them.
    fn drop_all(&self, uid: u32, paths: &[PathBuf]) -> Result<bool, LoginStateError> {
        let lock_path = self.lock_path(uid);
        let lock = lock_within(&lock_path, LOCK_WAIT)
            .map_err(|source| LoginStateError { path: lock_path.clone(), source })?;
        let record = self.path_for(uid);
        let others: Vec<PathBuf> = paths.iter().filter(|p| **p != lock_path).cloned().collect();
        let had_record = others.contains(&record);
        self.remove_files(&others)?;
        let removed = self.remove_files(&[lock_path]);
        drop(lock);
        removed.map(|_| had_record)
    }

    /// Removes `paths` (a missing one is fine) and makes the removal durable.
    fn remove_files(&self, paths: &[PathBuf]) -> Result<(), LoginStateError> {
        for path in paths {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(LoginStateError { path: path.clone(), source: e });
                }
                _ => {}
            }
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| LoginStateError { path: self.dir.clone(), source })
    }

    /// The lock of one user's record: a regular file opened for writing (flock on NFS
    /// needs a writable descriptor), never a symlink.
    pub fn lock_path(&self, uid: u32) -> PathBuf {
        self.dir.join(format!("{uid}.lock"))
    }

    fn ensure_dir(&self) -> Result<(), LoginStateError> {
        let err = |source| LoginStateError { path: self.dir.clone(), source };
        match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(err(e)),
            _ => {}
        }
        let mode = fs::metadata(&self.dir).map_err(err)?.permissions().mode() & 0o7777;
        if mode != 0o700 {
            fs::set_permissions(&self.dir, Permissions::from_mode(0o700)).map_err(err)?;
        }
        Ok(())
    }

    /// Replaces the record atomically (temp, fsync, rename, fsync of the directory).
    /// Callers hold the directory lock (see [`LoginStates::update`]).
    fn store(&self, state: &LoginState) -> Result<(), LoginStateError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LoginStateError { path, source }
        };
        let path = self.path_for(state.uid);
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let json = serde_json::to_vec(state)
            .map_err(|e| LoginStateError { path: path.clone(), source: e.into() })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err(&tmp))?;
        file.write_all(&json).and_then(|()| file.sync_all()).map_err(err(&tmp))?;
        fs::rename(&tmp, &path).map_err(err(&path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(err(&self.dir))
    }
}

/// The uid a file of the state directory belongs to: the digits before the first dot.
fn uid_of_file(name: &str) -> Option<u32> {
    let (uid, _) = name.split_once('.')?;
    if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    uid.parse().ok()
}

/// Opens and exclusively locks `path`, polling until `wait` has passed.
fn lock_within(path: &Path, wait: Duration) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL)
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "another login of this user held the lock for over {} ms; this attempt is not recorded",
                        wait.as_millis()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
