//! The sync's status as Prometheus metrics, in the text format node_exporter's textfile
//! collector reads (`dircache-sync status --prometheus`, `[status] prometheus_textfile`).

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::report::SyncStatus;
use crate::cache::{CacheDir, CacheError, PublicUser};
use crate::user::Group;

/// What the cache holds now, for the metrics: users, groups, generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub users: u64,
    pub groups: u64,
    pub generation: u64,
}

impl CacheCounts {
    /// Read from the tables' headers (no record is read); `None` without a cache.
    pub fn read(cache_dir: &Path) -> Result<Option<CacheCounts>, CacheError> {
        let cache = CacheDir::new(cache_dir);
        let users = match cache.open::<PublicUser>() {
            Ok(users) => users,
            Err(CacheError::NotInitialized { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let groups = cache.open::<Group>()?;
        Ok(Some(CacheCounts {
            users: users.len(),
            groups: groups.len(),
            generation: users.generation(),
        }))
    }
}

/// The metrics text. Without a sync yet, `dircache_last_sync_success` is 0 and the
/// timestamp 0, so that an alert on either fires.
pub fn prometheus_text(status: Option<&SyncStatus>, cache: Option<CacheCounts>) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP dircache_{name} {help}\n# TYPE dircache_{name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "dircache_{name}{labels} {value}");
        }
    };
    let success = status.is_some_and(|s| s.result == "success");
    let started = status.map_or(0, |s| s.started_at);
    gauge(
        "last_sync_timestamp_seconds",
        "When the last sync started (0: none has run).",
        &[("", started as f64)],
    );
    gauge(
        "last_sync_success",
        "1 if the last sync succeeded.",
        &[("", f64::from(u8::from(success)))],
    );
    gauge(
        "last_success_timestamp_seconds",
        "When the last successful sync started (0: none yet).",
        &[("", status.and_then(|s| s.last_success_at).unwrap_or(0) as f64)],
    );
    if let Some(status) = status {
        gauge(
            "last_sync_duration_seconds",
            "How long the last sync took.",
            &[("", status.duration_secs)],
        );
        gauge(
            "last_sync_listed_users",
            "Users the directory listed in the last sync.",
            &[("", status.listed_users as f64)],
        );
        gauge(
            "last_sync_changes",
            "What the last sync did to users.",
            &[
                ("{change=\"created\"}", status.created as f64),
                ("{change=\"updated\"}", status.updated as f64),
                ("{change=\"deleted\"}", status.deleted as f64),
                ("{change=\"unchanged\"}", status.unchanged as f64),
                ("{change=\"skipped\"}", status.skipped as f64),
            ],
        );
    }
    if let Some(cache) = cache {
        gauge("cache_users", "Users in the cache.", &[("", cache.users as f64)]);
        gauge("cache_groups", "Directory groups in the cache.", &[("", cache.groups as f64)]);
        gauge(
            "cache_generation",
            "The cache generation NSS and PAM read.",
            &[("", cache.generation as f64)],
        );
    }
    out
}

/// Writes `text` to `path` the way node_exporter's textfile collector wants it: a temporary
/// file in the same directory, then a rename, so that it never reads half a file.
pub fn write_textfile(path: &Path, text: &str) -> Result<(), CacheError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = fs::remove_file(&tmp);
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp).map_err(io(&tmp))?;
    let written = file
        .set_permissions(Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(CacheError::Io { path: tmp, source });
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}
