//! `dircache-sync check`: is this host set up for dircache logins? Like `sssctl
//! config-check` and `nsscache verify`, every check gives one result with a status, what was
//! found and, when something is wrong, what to do about it.
//!
//! The checks only read: the configuration, the cache, the local account and subordinate-id
//! files, login.defs, the PAM stack, nsswitch.conf; the
//! directory is asked to log the administrator in (and out) or to list its users. Nothing is
//! ever written.
//!
//! The checks, by what they look at:
//! - `directory`: the configuration, the directory it names and how it is reached;
//! - `cache`: the cache files, the login state and the last sync;
//! - `ids`: `unix.uid_range` against the subordinate ids of local users;
//! - `grants`: `[unix.local_groups]` against /etc/group and the cache, and nscd, which
//!   delays revocations;
//! - `system`: the PAM stack, nsswitch.conf and a lookup through NSS.

use std::path::PathBuf;

use serde::Serialize;

mod cache;
mod directory;
mod fleet;
mod grants;
mod ids;
mod system;
#[cfg(test)]
mod tests;

pub use cache::{check_cache, check_last_sync, SampleUser};
pub use directory::{
    check_config, check_directory, check_transport, directory_configured, MIN_ICEWARP_TIMEOUT_SECS,
};
pub use fleet::check_fleet;
pub use grants::{check_local_groups, check_nscd, DEFAULT_NSCD_CONF, DEFAULT_NSCD_SOCKET};
pub use ids::{check_ids, UID_RANGE_CLEAR_OF_SUBORDINATE_IDS};
pub use system::{
    check_nss_lookup, check_nsswitch, check_pam, nsswitch_sources, NSS_DATABASES, PAM_COMMON_FILES,
};

pub const DEFAULT_PAM_DIR: &str = "/etc/pam.d";
pub const DEFAULT_NSSWITCH: &str = "/etc/nsswitch.conf";
/// Where useradd reads which subordinate ids it gives new users.
pub const DEFAULT_LOGIN_DEFS: &str = "/etc/login.defs";
pub const DEFAULT_NEWUIDMAP: &str = "/usr/bin/newuidmap";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not run, because a check it depends on did not pass.
    Skip,
}

impl Status {
    /// How the status is shown in the one-line report.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do about it; none when there is nothing to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl CheckResult {
    fn ok(name: &'static str, message: impl Into<String>) -> CheckResult {
        CheckResult { name, status: Status::Ok, message: message.into(), hint: None }
    }

    fn with(
        name: &'static str,
        status: Status,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> CheckResult {
        CheckResult { name, status, message: message.into(), hint: Some(hint.into()) }
    }

    fn skip(name: &'static str, why: impl Into<String>) -> CheckResult {
        CheckResult { name, status: Status::Skip, message: why.into(), hint: None }
    }
}

/// Where the checks look. Everything but `config` is fixed on a real host; tests point
/// them at files of their own.
#[derive(Debug, Clone)]
pub struct CheckPaths {
    pub config: PathBuf,
    pub pam_dir: PathBuf,
    pub nsswitch: PathBuf,
    pub login_defs: PathBuf,
    /// newuidmap: without it subordinate ids grant nothing yet.
    pub newuidmap: PathBuf,
    /// nscd's socket and configuration ([`DEFAULT_NSCD_SOCKET`], [`DEFAULT_NSCD_CONF`]).
    pub nscd_socket: PathBuf,
    pub nscd_conf: PathBuf,
}

/// Every check, in order. A check whose input is missing (no valid configuration, no
/// nsswitch entry) is reported as skipped rather than left out, so the report always has
/// the same lines.
pub fn run_all(paths: &CheckPaths, now: u64) -> Vec<CheckResult> {
    let (config_result, config) = check_config(&paths.config);
    let config_failed = config_result.status == Status::Fail;
    let mut results = vec![config_result];
    let sample = match &config {
        Some(config) => {
            if config_failed {
                results.push(CheckResult::skip("directory", "needs a complete configuration"));
            } else if config.snapshot.is_some() {
                results.push(CheckResult::skip(
                    "directory",
                    "this host pulls snapshots ([snapshot]) and needs no administrator login; \
                     the directory is only asked to check passwords at login",
                ));
            } else {
                results.push(check_directory(config));
            }
            results.push(check_transport(config));
            let (cache_result, sample) = check_cache(config, now);
            results.push(cache_result);
            results.push(check_ids(config, &paths.login_defs, &paths.newuidmap));
            results.push(check_local_groups(config));
            results.push(check_last_sync(config, now));
            if !config_failed {
                results.extend(check_fleet(config, now));
            }
            sample
        }
        None => {
            for name in ["directory", "transport", "cache", "ids", "local-groups", "last-sync"] {
                results.push(CheckResult::skip(name, "needs a valid configuration"));
            }
            None
        }
    };
    results.push(check_pam(&paths.pam_dir));
    results.push(check_nscd(&paths.nscd_socket, &paths.nscd_conf));
    let nss = check_nsswitch(&paths.nsswitch);
    let nss_ok = nss.status == Status::Ok;
    results.push(nss);
    results.push(match (&config, nss_ok, sample) {
        (None, _, _) => CheckResult::skip("nss-lookup", "needs a valid configuration"),
        (Some(_), false, _) => {
            CheckResult::skip("nss-lookup", "nsswitch.conf does not name dircache yet")
        }
        (Some(_), true, None) => {
            CheckResult::skip("nss-lookup", "the cache holds no user to look up")
        }
        (Some(config), true, Some(user)) => check_nss_lookup(config, &user),
    });
    results
}

/// Whether any check failed.
pub fn any_failed(results: &[CheckResult]) -> bool {
    results.iter().any(|r| r.status == Status::Fail)
}
