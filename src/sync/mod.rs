//! Directory synchronization: fetch, plan, check the safety limits, apply atomically.
//!
//! The seeds' "Synchronize now" is [`run_sync`]; "Test Settings" is the same with
//! `dry_run`, which fetches and plans but writes nothing at all.

mod apply;
mod index;
pub mod metrics;
mod plan;
mod report;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use thiserror::Error;

pub use apply::{apply, apply_cached};
pub use plan::{plan, plan_consuming, Plan, PlannedGroup, Skipped, UserUpdate};
pub use report::{read_status, write_status, SyncReport, SyncStatus};

use crate::cache::{CacheDir, CacheError, CacheLock, Db};
use crate::config::{Config, ConfigError};
use crate::directory::{Directory, DirectoryError, Listing, Progress};
use crate::local_accounts::{LocalAccounts, LocalAccountsError};
use crate::login_state::LoginStates;
use crate::user::HeldUser;
use crate::user_edits::EditError;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("{0}")]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    Cache(#[from] CacheError),
    #[error("{0}")]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error("{0}")]
    LocalAccounts(#[from] LocalAccountsError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("applying the plan failed: {0}")]
    Apply(#[from] EditError),
    #[error("the directory (or the snapshot) returned no users; refusing to sync an empty listing (a broken filter or server would otherwise empty the cache). Use --force if it is really empty")]
    EmptyListing,
    #[error("the sync would delete {would} of {of} directory users, more than max_delete_percent = {limit}%; nothing was changed. Check the directory and the filters, then use --force if this is intended")]
    TooManyDeletes { would: usize, of: usize, limit: u8 },
    #[error("the directory listed and the cache holds {entries} users and groups in all, more than one sync can plan (fewer than 2^32); nothing was changed. Narrow the directory's filters")]
    TooManyEntries { entries: usize },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// "Test Settings": fetch and plan, write nothing (not even a lock file or status).
    pub dry_run: bool,
    /// Accept an empty listing and deletions beyond the limit.
    pub force: bool,
}

/// What a run produced: the report, and for dry runs what the directory returned.
#[derive(Debug)]
pub struct SyncOutcome {
    pub report: SyncReport,
    /// Kept only for dry runs, which print it; a real run frees it before writing.
    pub listing: Option<Listing>,
}

/// One sync run. Any fetch error aborts before anything is written; the previous cache
/// stays as it was.
pub fn run_sync(
    config: &Config,
    directory: &mut dyn Directory,
    options: SyncOptions,
    now: u64,
    progress: &mut dyn Progress,
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    let cache = CacheDir::new(&config.cache.dir);
    let lock_wait = Duration::from_secs(config.cache.lock_timeout_secs);
    let _sync_lock = if options.dry_run { None } else { Some(cache.sync_lock(lock_wait)?) };

    let listing = directory.list(progress)?;
    if listing.users.is_empty() && !options.force {
        return Err(SyncError::EmptyListing);
    }
    let local = config.local_accounts()?;
    // A mapping to a local group that is gone (or gid 0) stops the sync before anything is
    // written: the administrator must decide, not the sync.
    crate::grants::targets(config, &local)?;

    let write_lock = if options.dry_run { None } else { Some(cache.lock(lock_wait)?) };
    // The users in their compact form, from the plan to the commit (see `CachedUser`).
    let db = cache.load_cached()?;
    let entries = [listing.users.len(), listing.groups.len(), db.users.len(), db.groups.len()]
        .iter()
        .fold(0usize, |sum, count| sum.saturating_add(*count));
    if !index::holds_positions(entries) {
        return Err(SyncError::TooManyEntries { entries });
    }
    let (listed_users, listed_groups, origin) =
        (listing.users.len(), listing.groups.len(), listing.origin);
    // A dry run prints the listing; a real run hands it to the plan, which moves what new
    // users take from it instead of holding it twice, and frees the rest before the plan is
    // applied and written.
    let (plan, listing) = if options.dry_run {
        (plan(&db, &listing, config, &local, now), Some(listing))
    } else {
        (plan_consuming(&db, listing, config, &local, now), None)
    };
    let mut report = SyncReport::from_plan(&plan, options.dry_run);
    // A real run names its new users again after the commit, from the cache they went into:
    // a list of every name beside the users and the table writer's indexes would add to
    // the peak of a first sync (see `created_names`).
    let created = plan.creates.len();
    if !options.dry_run {
        report.created = Vec::new();
    }
    report.listed_users = listed_users;
    report.listed_groups = listed_groups;

    if let Err(refusal) = check_delete_limit(&plan, config, options) {
        if !options.dry_run {
            return Err(refusal);
        }
        report.errors.push(refusal.to_string());
    }
    // Returning users are no longer marked once applied: remember them now.
    let plan_empty = plan.is_empty();
    let landing = Landing { cache: &cache, lock: write_lock.as_ref(), config, local: &local, now };
    let db =
        landing.install(db, plan_empty, &mut report, |db| Ok(apply_cached(db, plan, origin)?))?;
    if !options.dry_run {
        report.created = created_names(&db, created);
    }
    drop(db);
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(SyncOutcome { report, listing })
}

/// Where a planned sync or pull lands: the cache, the write lock (None: a dry run), the
/// rules of this host and the clock.
pub(crate) struct Landing<'a> {
    pub cache: &'a CacheDir,
    pub lock: Option<&'a CacheLock>,
    pub config: &'a Config,
    pub local: &'a LocalAccounts,
    pub now: u64,
}

impl Landing<'_> {
    /// What a sync and a pull do once the plan is made: apply it (a dry run too, to memory
    /// only, so that it shows the grants and revocations the real run would make),
    /// recompute this host's local-group grants, and with the lock commit a new generation
    /// when anything changed and drop the login state of accounts that vanished. Returns
    /// the cache as installed.
    pub(crate) fn install<U: HeldUser>(
        &self,
        mut db: Db<U>,
        plan_empty: bool,
        report: &mut SyncReport,
        apply_plan: impl FnOnce(&mut Db<U>) -> Result<(), SyncError>,
    ) -> Result<Db<U>, SyncError> {
        let mut fresh_start: HashSet<u32> = vanished(&db).collect();
        if !plan_empty {
            apply_plan(&mut db)?;
        }
        let grants =
            crate::grants::refresh(&db.users, &db.groups, &db.grants, self.config, self.local)?;
        let grants_changed = grants.grants != db.grants;
        db.grants = grants.grants;
        report.add_grants(grants.changes, grants.warnings);
        db.local_seal = db.seal_against(self.local, self.now);
        if let Some(lock) = self.lock {
            // A new seal alone (the local files changed since the last generation) is worth
            // a new generation: until then every process's first lookup reads them. Losing
            // one is not: a seal that no longer matches the files is never trusted.
            let resealed = db.local_seal != 0 && db.local_seal != self.current_local_seal();
            if !plan_empty || grants_changed || resealed {
                report.generation = Some(self.cache.commit(lock, &db, self.now)?);
            }
            fresh_start.extend(vanished(&db));
            report.errors.extend(prune_login_states(self.config, &db, &fresh_start, self.now));
        }
        Ok(db)
    }

    /// The local seal of the current generation; 0 when there is none or it cannot be read
    /// (the commit then writes one).
    pub(crate) fn current_local_seal(&self) -> u64 {
        self.cache.open::<crate::cache::PublicUser>().map_or(0, |users| users.local_seal())
    }

    /// Whether a run that installs nothing (a pull of an unchanged snapshot) should still
    /// write a generation: this host's local files changed since the current one was sealed,
    /// and have settled. Until then every process's first lookup reads them.
    pub(crate) fn needs_reseal(&self) -> Result<bool, SyncError> {
        Ok(self.cache.current_dir()?.is_some()
            && self.local.settled_before(self.now)
            && self.local.files_seal() != self.current_local_seal())
    }

    /// The current generation written again, unchanged but for its seal for this host's
    /// local files: nothing else, so that nothing changes unreported (grants and login
    /// states wait for a run that reports them). `None` when it cannot be sealed (a record
    /// collides with a local account, or the files have not settled) or is sealed already.
    pub(crate) fn reseal(&self) -> Result<Option<u64>, SyncError> {
        let Some(lock) = self.lock else {
            return Ok(None);
        };
        let mut db = self.cache.load()?;
        db.local_seal = db.seal_against(self.local, self.now);
        if db.local_seal == 0 || db.local_seal == self.current_local_seal() {
            return Ok(None);
        }
        Ok(Some(self.cache.commit(lock, &db, self.now)?))
    }
}

/// The names of the `created` users a plan added, in its order: `apply` puts them after
/// every other user, and nothing after it moves a user.
fn created_names<U: HeldUser>(db: &Db<U>, created: usize) -> Vec<String> {
    let first = db.users.len().saturating_sub(created);
    let users = db.users.get(first..).unwrap_or_default();
    users.iter().map(|u| u.facts().name.to_string()).collect()
}

/// Users the directory no longer lists (kept, disabled).
pub(crate) fn vanished<U: HeldUser>(db: &Db<U>) -> impl Iterator<Item = u32> + '_ {
    db.users.iter().map(HeldUser::facts).filter(|u| u.missing_since.is_some()).map(|u| u.uid)
}

/// After the commit (a failed or dry run drops nothing), every sync deletes the login
/// state (offline credentials, failure count) of accounts that are gone (deleted: their
/// uid is no longer in the cache), that vanished from the directory, or that returned to
/// it in this sync (`fresh_start`: whoever holds the address now starts afresh), and the
/// offline credentials of everyone else that can no longer be used. Returns what could
/// not be deleted, for the report's errors.
pub(crate) fn prune_login_states<U: HeldUser>(
    config: &Config,
    db: &Db<U>,
    fresh_start: &HashSet<u32>,
    now: u64,
) -> Vec<String> {
    let current: HashMap<u32, &U> = (db.users.iter().map(|u| (u.facts().uid, u)))
        .filter(|(uid, _)| !fresh_start.contains(uid))
        .collect();
    let states = LoginStates::new(&config.cache.dir);
    // Only the users with a login state are opened up.
    let user = |uid| current.get(&uid).map(|u| u.user());
    let pruned = states.prune(user, &config.auth, now);
    pruned
        .errors
        .iter()
        .map(|e| format!("{e}; delete it by hand: it may hold an offline credential"))
        .collect()
}

/// Records a run: `status.json`, and the Prometheus textfile when one is configured. The
/// metrics are best effort once the status is written: a textfile that cannot be written is
/// returned as the error, the status file stays.
pub fn record_status(config: &Config, status: &SyncStatus) -> Result<(), CacheError> {
    let mut status = status.clone();
    if status.last_success_at.is_none() {
        let previous = read_status(&config.cache.dir).ok().flatten();
        status.last_success_at = previous.and_then(|p| p.last_success_at);
    }
    let status = &status;
    write_status(&config.cache.dir, status)?;
    let Some(path) = &config.status.prometheus_textfile else {
        return Ok(());
    };
    let cache = metrics::CacheCounts::read(&config.cache.dir).ok().flatten();
    metrics::write_textfile(path, &metrics::prometheus_text(Some(status), cache))
}

fn check_delete_limit(plan: &Plan, config: &Config, options: SyncOptions) -> Result<(), SyncError> {
    let would = plan.deletes.len();
    let of = plan.directory_users_before;
    let limit = config.sync.max_delete_percent;
    if options.force || would == 0 || would * 100 <= usize::from(limit) * of {
        return Ok(());
    }
    Err(SyncError::TooManyDeletes { would, of, limit })
}

#[cfg(test)]
mod tests;
