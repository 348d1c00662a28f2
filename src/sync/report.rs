//! What a sync tells the administrator: the `--json` object of the interface contract and
//! the status file that `dircache-sync status` reads.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::{Plan, Skipped};
use crate::cache::CacheError;
use crate::grants::{Changes, GrantChange};

/// The result of one sync, printed by `sync --json` (fields per the interface contract,
/// plus extensions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub dry_run: bool,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: usize,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<String>,
    /// Manual `directory` users adopted by this sync (also listed in `updated`).
    pub linked: Vec<String>,
    /// Users listed again after they vanished from the directory (also listed in
    /// `updated`): possibly a new person under the old address, so their privileges went
    /// back to the defaults and no offline credential of the old holder remains.
    pub returned: Vec<String>,
    pub groups_created: Vec<String>,
    pub groups_updated: Vec<String>,
    pub groups_deleted: Vec<String>,
    pub warnings: Vec<String>,
    /// Local groups granted to users by `[unix.local_groups]` in this sync (would be, for a
    /// dry run), and taken away.
    pub granted: Vec<GrantChange>,
    pub revoked: Vec<GrantChange>,
    /// How many users and groups the directory returned.
    pub listed_users: usize,
    pub listed_groups: usize,
    /// The cache generation written, if anything was written.
    pub generation: Option<u64>,
    pub duration_secs: f64,
    /// On a fleet host: the snapshot this run pulled (see docs/snapshots.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<crate::snapshot::PullReport>,
}

impl SyncReport {
    pub fn from_plan(plan: &Plan, dry_run: bool) -> SyncReport {
        SyncReport {
            dry_run,
            created: plan.creates.iter().map(|u| u.name().to_string()).collect(),
            updated: plan.updates.iter().map(|u| u.after.name.clone()).collect(),
            deleted: plan.deletes.clone(),
            unchanged: plan.unchanged,
            skipped: plan.skipped.clone(),
            linked: plan
                .updates
                .iter()
                .filter(|u| u.linked)
                .map(|u| u.after.name.clone())
                .collect(),
            returned: plan.returned.clone(),
            groups_created: plan.groups_created.clone(),
            groups_updated: plan.groups_updated.clone(),
            groups_deleted: plan.groups_deleted.clone(),
            warnings: plan.warnings.clone(),
            errors: plan.ids_exhausted.iter().map(exhausted_error).collect(),
            ..SyncReport::default()
        }
    }
}

impl SyncReport {
    /// The grants and revocations of `grants::refresh`, and its warnings.
    pub fn add_grants(&mut self, changes: Changes, warnings: Vec<String>) {
        self.granted = changes.granted;
        self.revoked = changes.revoked;
        self.warnings.extend(warnings);
    }
}

/// The run's error when `unix.uid_range` ran out: the cache holds everyone who got an id,
/// and the report says how many did not (they are among the skipped).
fn exhausted_error((exhausted, count): &(crate::ids::IdsExhausted, usize)) -> String {
    let what = if *count == 1 { "user or group was" } else { "users and groups were" };
    format!("{count} {what} not created (see skipped): {exhausted}")
}

/// The last sync as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Seconds since the epoch when the run started.
    pub started_at: u64,
    pub duration_secs: f64,
    /// "success"; "partial" when the run wrote the cache but reported errors (ids ran out
    /// and users or groups were left out, a login state could not be pruned: see `error`;
    /// the command exits non-zero); or "failure" (nothing written).
    pub result: String,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub listed_users: usize,
    pub generation: Option<u64>,
    pub error: Option<String>,
    /// When the last successful sync started, carried over failed runs (see
    /// `sync::record_status`); older status files lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<u64>,
}

impl SyncStatus {
    /// A run that got as far as writing (or finding nothing to write): "success", or
    /// "partial" with the errors it reported, never a success that left someone out.
    pub fn finished(report: &SyncReport, started_at: u64) -> SyncStatus {
        let result = if report.errors.is_empty() { "success" } else { "partial" };
        SyncStatus {
            started_at,
            duration_secs: report.duration_secs,
            result: result.to_string(),
            created: report.created.len(),
            updated: report.updated.len(),
            deleted: report.deleted.len(),
            unchanged: report.unchanged,
            skipped: report.skipped.len(),
            listed_users: report.listed_users,
            generation: report.generation,
            // Written, but with an error the run reported (e.g. ids ran out).
            error: report.errors.first().cloned(),
            last_success_at: Some(started_at),
        }
    }

    pub fn failure(error: String, started_at: u64, duration_secs: f64) -> SyncStatus {
        SyncStatus {
            started_at,
            duration_secs,
            result: "failure".to_string(),
            created: 0,
            updated: 0,
            deleted: 0,
            unchanged: 0,
            skipped: 0,
            listed_users: 0,
            generation: None,
            error: Some(error),
            last_success_at: None,
        }
    }
}

const STATUS_FILE: &str = "status.json";

/// Replaces the status file atomically (`cache::replace_json`). It holds no secret: 0644.
pub fn write_status(cache_dir: &Path, status: &SyncStatus) -> Result<(), CacheError> {
    fs::create_dir_all(cache_dir)
        .map_err(|source| CacheError::Io { path: cache_dir.to_path_buf(), source })?;
    crate::cache::replace_json(cache_dir, STATUS_FILE, "status", status)
}

/// The last status, or None if no sync has run.
pub fn read_status(cache_dir: &Path) -> Result<Option<SyncStatus>, CacheError> {
    crate::cache::read_json(cache_dir, STATUS_FILE, "status", "")
}
