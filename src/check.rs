//! `dircache-sync check`: is this host set up for dircache logins? Like `sssctl
//! config-check` and `nsscache verify`, every check gives one result with a status, what was
//! found and, when something is wrong, what to do about it.
//!
//! The checks only read: the configuration, the cache, the PAM stack, nsswitch.conf; the
//! directory is asked to log the administrator in (and out) or to list its users. Nothing is
//! ever written.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::cache::{CacheDir, CacheError, PublicUser};
use crate::config::{Config, DirectoryKind, DEFAULT_CACHE_DIR};
use crate::directory::{AppIntDirectory, Directory, DirectoryError, IcewarpDirectory, NoProgress};
use crate::sync::read_status;

/// The PAM files pam-auth-update writes on Debian, which every login service includes.
pub const PAM_COMMON_FILES: [&str; 3] = ["common-auth", "common-account", "common-password"];
pub const DEFAULT_PAM_DIR: &str = "/etc/pam.d";
pub const DEFAULT_NSSWITCH: &str = "/etc/nsswitch.conf";
/// The nsswitch.conf databases libnss_dircache answers for.
pub const NSS_DATABASES: [&str; 2] = ["passwd", "group"];
/// The variable through which the NSS module is pointed at another cache (tests).
const NSS_CACHE_DIR_VAR: &str = "DIRCACHE_CACHE_DIR";

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
}

/// Every check, in order. A check whose input is missing (no valid configuration, no
/// nsswitch entry) is reported as skipped rather than left out, so the report always has
/// the same lines.
pub fn run_all(paths: &CheckPaths, now: u64) -> Vec<CheckResult> {
    let (config_result, config) = check_config(&paths.config);
    let mut results = vec![config_result];
    let sample = match &config {
        Some(config) => {
            results.push(check_directory(config));
            let (cache_result, sample) = check_cache(config, now);
            results.push(cache_result);
            results.push(check_last_sync(config, now));
            sample
        }
        None => {
            for name in ["directory", "cache", "last-sync"] {
                results.push(CheckResult::skip(name, "needs a valid configuration"));
            }
            None
        }
    };
    results.push(check_pam(&paths.pam_dir));
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

/// The configuration parses and is valid.
pub fn check_config(path: &Path) -> (CheckResult, Option<Config>) {
    match Config::load(path) {
        Ok(config) => {
            let what = match config.directory.kind {
                DirectoryKind::None => "no directory (type = \"none\")".to_string(),
                kind => format!(
                    "{} directory at {}",
                    kind.as_str(),
                    directory_address(&config).unwrap_or("?")
                ),
            };
            let message = format!("{} is valid: {what}", path.display());
            let result = match short_icewarp_deadline(&config) {
                Some(warning) => CheckResult::with(
                    "config",
                    Status::Warn,
                    format!("{message}, but {warning}"),
                    format!(
                        "raise directory.timeout_secs to at least {MIN_ICEWARP_TIMEOUT_SECS} \
                         (the default is 60)"
                    ),
                ),
                None => CheckResult::ok("config", message),
            };
            (result, Some(config))
        }
        Err(e) => {
            let result = CheckResult::with(
                "config",
                Status::Fail,
                e.to_string(),
                format!(
                    "correct {} (every key is described in dircache.toml(5) and in the commented \
                     example /usr/share/doc/dircache/examples/dircache.toml)",
                    path.display()
                ),
            );
            (result, None)
        }
    }
}

/// The shortest `timeout_secs` that leaves room for IceWarp's tarpit: it answers a wrong
/// password only after 24–30 s (README, PAM), so a shorter deadline turns every mistyped
/// password into "directory unavailable" (and a possible-attack log line).
pub const MIN_ICEWARP_TIMEOUT_SECS: u64 = 35;

fn short_icewarp_deadline(config: &Config) -> Option<String> {
    let secs = config.directory.timeout_secs;
    if config.directory.kind != DirectoryKind::Icewarp || secs >= MIN_ICEWARP_TIMEOUT_SECS {
        return None;
    }
    Some(format!(
        "directory.timeout_secs = {secs} is below {MIN_ICEWARP_TIMEOUT_SECS} s: IceWarp delays \
         wrong passwords by up to 30 s, so a mistyped password would look like an unavailable \
         directory"
    ))
}

fn directory_address(config: &Config) -> Option<&str> {
    match config.directory.kind {
        DirectoryKind::Icewarp => config.directory.server.as_deref(),
        DirectoryKind::ApplicationIntegration => config.directory.url.as_deref(),
        DirectoryKind::None => None,
    }
}

/// Whether the configuration names a directory at all (for systemd's `ExecCondition=`).
pub fn directory_configured(config: &Config) -> bool {
    config.directory.kind != DirectoryKind::None
}

/// The directory answers and accepts the administrator: IceWarp `authenticate` and
/// `logout`; Application Integration `cmd=list` (it has no login of its own).
pub fn check_directory(config: &Config) -> CheckResult {
    const NAME: &str = "directory";
    let outcome = match config.directory.kind {
        DirectoryKind::None => {
            return CheckResult::with(
                NAME,
                Status::Warn,
                "directory.type is \"none\": nothing is synchronized; only users made with \
                 `dircache-sync user add` can log in",
                "to log in with directory accounts, set [directory] type, server (or url), \
                 username and password_file, then run `dircache-sync sync --dry-run`",
            );
        }
        DirectoryKind::Icewarp => IcewarpDirectory::new(config).and_then(|mut directory| {
            let warnings = directory.check_admin_login()?;
            let user = config.directory.username.as_deref().unwrap_or("?");
            Ok((
                format!(
                    "{}: logged in as the administrator {user} and out again",
                    directory.server()
                ),
                warnings,
            ))
        }),
        DirectoryKind::ApplicationIntegration => {
            AppIntDirectory::new(config).and_then(|mut directory| {
                let listing = directory.list(&mut NoProgress)?;
                Ok((
                    format!(
                        "{}: cmd=list answered with {} users",
                        directory.server(),
                        listing.users.len()
                    ),
                    Vec::new(),
                ))
            })
        }
    };
    match outcome {
        Ok((message, warnings)) if warnings.is_empty() => CheckResult::ok(NAME, message),
        Ok((message, warnings)) => CheckResult::with(
            NAME,
            Status::Warn,
            format!("{message}, but: {}", warnings.join("; ")),
            "nothing needs to change for logins; tell the directory's administrator if it \
             persists",
        ),
        Err(e) => CheckResult::with(NAME, Status::Fail, e.to_string(), directory_hint(&e)),
    }
}

fn directory_hint(error: &DirectoryError) -> String {
    match error {
        DirectoryError::Connect { .. } => "check directory.server (IceWarp) or directory.url \
            (Application Integration), and that this host reaches it: DNS, firewall, the \
            server running"
            .to_string(),
        DirectoryError::Timeout { .. } => {
            "check that the server is up and not overloaded, or raise directory.timeout_secs"
                .to_string()
        }
        DirectoryError::Tls { .. } => "install the server's CA certificate and name it in \
            directory.ca_file, or (for a self-signed certificate you trust) set \
            ignore_ssl_warnings = true"
            .to_string(),
        DirectoryError::Transport { .. } => "check the server's log, and for a proxy or \
            firewall between this host and the directory that cuts connections"
            .to_string(),
        DirectoryError::Redirect { .. } => "configure the final URL the server redirects to \
            (directory.server or directory.url)"
            .to_string(),
        DirectoryError::HttpStatus { status: 401 | 403, .. } => {
            "check directory.username and directory.password / password_file (HTTP Basic \
             authentication)"
                .to_string()
        }
        DirectoryError::HttpStatus { .. } => {
            "check the URL (IceWarp: https://HOST/icewarpapi/) and the server's log".to_string()
        }
        DirectoryError::AdminLogin { .. } => "check directory.username (an IceWarp \
            administrator address) and directory.password / password_file"
            .to_string(),
        DirectoryError::NotConfigured(_) => {
            "complete the [directory] section (see dircache.toml(5))".to_string()
        }
        DirectoryError::FilterNotFound { .. } => "correct sync.domains / sync.groups".to_string(),
        DirectoryError::TooLarge { key, .. } | DirectoryError::TooMany { key, .. } => {
            format!("raise directory.{key} if the directory is that large")
        }
        DirectoryError::Api { .. }
        | DirectoryError::Malformed { .. }
        | DirectoryError::Other { .. } => {
            "check that the address is an IceWarp server's API (or an Application Integration \
             endpoint) and look at the server's log"
                .to_string()
        }
    }
}

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
fn state_dir_problem(dir: &Path) -> Option<CheckResult> {
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
pub fn check_last_sync(config: &Config, now: u64) -> CheckResult {
    const NAME: &str = "last-sync";
    if config.directory.kind == DirectoryKind::None {
        return CheckResult::skip(NAME, "no directory is configured");
    }
    let journal = "see `dircache-sync status` and `journalctl -u dircache-sync.service`";
    match read_status(&config.cache.dir) {
        Ok(None) => CheckResult::with(
            NAME,
            Status::Warn,
            "no sync has run yet",
            "run `dircache-sync sync --dry-run`, then `dircache-sync sync`; the timer \
             (dircache-sync.timer) then syncs every 15 minutes",
        ),
        Ok(Some(status)) if status.result != "success" => CheckResult::with(
            NAME,
            Status::Warn,
            format!(
                "the last sync ({} s ago) failed: {}; logins use the cache as it was",
                now.saturating_sub(status.started_at),
                status.error.as_deref().unwrap_or("no error recorded")
            ),
            format!("fix the cause and run `dircache-sync sync`; {journal}"),
        ),
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

/// Whether a PAM service file has an active line using pam_dircache.
fn pam_file_uses_dircache(text: &str) -> bool {
    text.lines().map(|line| line.split('#').next().unwrap_or("")).any(|line| {
        line.split_whitespace()
            .any(|word| word.trim_start_matches('-').ends_with("pam_dircache.so"))
    })
}

/// pam_dircache in the common PAM files that pam-auth-update maintains.
pub fn check_pam(pam_dir: &Path) -> CheckResult {
    const NAME: &str = "pam";
    let enable = "run `pam-auth-update --enable dircache` (see pam_dircache(8))";
    let mut missing = Vec::new();
    for file in PAM_COMMON_FILES {
        let path = pam_dir.join(file);
        match fs::read_to_string(&path) {
            Ok(text) if pam_file_uses_dircache(&text) => {}
            Ok(_) => missing.push(file),
            Err(e) => {
                return CheckResult::with(
                    NAME,
                    Status::Fail,
                    format!("cannot read {}: {e}", path.display()),
                    "on a system without pam-auth-update, add pam_dircache.so to the PAM \
                     services by hand (see pam_dircache(8))",
                );
            }
        }
    }
    if missing.is_empty() {
        return CheckResult::ok(
            NAME,
            format!("pam_dircache.so is in {}", PAM_COMMON_FILES.join(", ")),
        );
    }
    let message = if missing.len() == PAM_COMMON_FILES.len() {
        format!("pam_dircache.so is not in the PAM stack ({})", missing.join(", "))
    } else {
        format!("pam_dircache.so is missing from {}", missing.join(", "))
    };
    CheckResult::with(NAME, Status::Fail, format!("{message} in {}", pam_dir.display()), enable)
}

/// The services (sources) of one nsswitch.conf database, in order, without `[…]`
/// actions and comments; `None` when the file has no line for it.
pub fn nsswitch_sources(text: &str, database: &str) -> Option<Vec<String>> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let (name, rest) = line.split_once(':')?;
        (name.trim() == database).then(|| {
            rest.split_whitespace()
                .filter(|word| !word.starts_with('['))
                .map(str::to_string)
                .collect()
        })
    })
}

/// The passwd and group lines of nsswitch.conf name dircache.
pub fn check_nsswitch(path: &Path) -> CheckResult {
    const NAME: &str = "nsswitch";
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                format!("cannot read {}: {e}", path.display()),
                "create it with at least `passwd: files dircache` and `group: files dircache`",
            );
        }
    };
    let mut lines = Vec::new();
    let mut missing = Vec::new();
    let mut not_last = Vec::new();
    for database in NSS_DATABASES {
        match nsswitch_sources(&text, database) {
            Some(sources) if sources.iter().any(|s| s == "dircache") => {
                if sources.last().is_some_and(|last| last != "dircache") {
                    not_last.push(database);
                }
                lines.push(format!("{database}: {}", sources.join(" ")));
            }
            _ => missing.push(database),
        }
    }
    if missing.is_empty() && not_last.is_empty() {
        return CheckResult::ok(NAME, format!("{} ({})", path.display(), lines.join("; ")));
    }
    if missing.is_empty() {
        return CheckResult::with(
            NAME,
            Status::Warn,
            format!(
                "dircache is not the last source on the {} line(s) of {} ({})",
                not_last.join(" and "),
                path.display(),
                lines.join("; ")
            ),
            "move `dircache` to the end, so that no dircache user can hide an account of \
             another source (see SECURITY.md)",
        );
    }
    let (lines, verb) = if missing.len() == 1 { ("line", "does") } else { ("lines", "do") };
    let missing = missing.join(" and ");
    CheckResult::with(
        NAME,
        Status::Fail,
        format!("the {missing} {lines} of {} {verb} not name dircache", path.display()),
        format!(
            "add `dircache` at the end of the {missing} {lines}, after `files` and every other \
             source (installing the package does this unless a line was edited by hand; see \
             libnss_dircache(8))"
        ),
    )
}

/// Looks one cached user up the way every program does, through `getent` and glibc's NSS,
/// which loads libnss_dircache.so.2.
pub fn check_nss_lookup(config: &Config, user: &SampleUser) -> CheckResult {
    const NAME: &str = "nss-lookup";
    // The NSS module cannot read the configuration: it reads the compiled-in directory.
    let nss_dir = std::env::var_os(NSS_CACHE_DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));
    if nss_dir != config.cache.dir {
        return CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "[cache] dir is {}, but the NSS module reads {}",
                config.cache.dir.display(),
                nss_dir.display()
            ),
            format!("set [cache] dir = \"{DEFAULT_CACHE_DIR}\" and run `dircache-sync sync`"),
        );
    }
    let output = match Command::new("getent").args(["passwd", &user.name]).output() {
        Ok(output) => output,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                format!("cannot run getent: {e}"),
                "getent comes with libc-bin; check PATH",
            );
        }
    };
    let line = String::from_utf8_lossy(&output.stdout);
    let uid = line.split(':').nth(2).and_then(|field| field.trim().parse::<u32>().ok());
    match uid {
        Some(uid) if output.status.success() && uid == user.uid => CheckResult::ok(
            NAME,
            format!("`getent passwd {}` answers uid {uid} from the cache", user.name),
        ),
        Some(uid) if output.status.success() => CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "`getent passwd {}` answers uid {uid}, but the cache has uid {}: another source \
                 before dircache in nsswitch.conf has the same name",
                user.name, user.uid
            ),
            "rename or remove the other account; local accounts always win",
        ),
        _ => CheckResult::with(
            NAME,
            Status::Fail,
            format!(
                "`getent passwd {}` does not find a user the cache has (exit status {})",
                user.name,
                output.status.code().map_or("none".to_string(), |code| code.to_string())
            ),
            "check that libnss_dircache.so.2 is installed in /lib/<multiarch triplet>/ \
             (reinstall the package) and that /var/lib/dircache is readable (mode 0755)",
        ),
    }
}

/// Whether any check failed.
pub fn any_failed(results: &[CheckResult]) -> bool {
    results.iter().any(|r| r.status == Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_shorter_than_icewarps_tarpit_warns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dircache.toml");
        let check = |directory: &str| {
            fs::write(&path, format!("[directory]\n{directory}\n")).unwrap();
            check_config(&path).0
        };
        let icewarp = "type = \"icewarp\"\nserver = \"mail.example.com\"";
        let result = check(&format!("{icewarp}\ntimeout_secs = 34"));
        assert_eq!(result.status, Status::Warn, "{result:?}");
        assert!(
            result.message.contains("IceWarp delays wrong passwords by up to 30 s"),
            "{result:?}"
        );
        assert!(result.hint.unwrap().contains("directory.timeout_secs"));
        assert_eq!(check(&format!("{icewarp}\ntimeout_secs = 35")).status, Status::Ok);
        assert_eq!(check(icewarp).status, Status::Ok, "the default is 60");
        let appint = "type = \"application-integration\"\nurl = \"https://apps.example.com/\"";
        assert_eq!(check(&format!("{appint}\ntimeout_secs = 5")).status, Status::Ok);
    }

    #[test]
    fn nsswitch_sources_skip_actions_and_comments() {
        let text = "# passwd: dircache\npasswd:   files [NOTFOUND=return] systemd # c dircache\n\
                    group:\tfiles dircache\n";
        assert_eq!(nsswitch_sources(text, "passwd").unwrap(), ["files", "systemd"]);
        assert_eq!(nsswitch_sources(text, "group").unwrap(), ["files", "dircache"]);
        assert_eq!(nsswitch_sources(text, "shadow"), None);
    }

    #[test]
    fn pam_lines_in_comments_do_not_count() {
        assert!(!pam_file_uses_dircache("# auth sufficient pam_dircache.so\n"));
        assert!(!pam_file_uses_dircache("auth required pam_unix.so # pam_dircache.so\n"));
        assert!(pam_file_uses_dircache(
            "auth\t[success=1 default=ignore]\tpam_dircache.so use_first_pass\n"
        ));
        assert!(pam_file_uses_dircache("-auth optional /lib/security/pam_dircache.so\n"));
    }

    #[test]
    fn nsswitch_with_dircache_before_another_source_warns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsswitch.conf");
        fs::write(&path, "passwd: files dircache systemd\ngroup: files systemd dircache\n")
            .unwrap();
        let result = check_nsswitch(&path);
        assert_eq!(result.status, Status::Warn, "{result:?}");
        assert!(result.message.contains("the passwd line"), "{result:?}");
        fs::write(&path, "passwd: files systemd dircache\ngroup: files dircache # x\n").unwrap();
        assert_eq!(check_nsswitch(&path).status, Status::Ok);
    }

    #[test]
    fn nsswitch_without_dircache_fails_with_what_to_add() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsswitch.conf");
        fs::write(&path, "passwd: files dircache\ngroup: files systemd\n").unwrap();
        let result = check_nsswitch(&path);
        assert_eq!(result.status, Status::Fail);
        assert!(result.message.contains("the group line of"), "{result:?}");
        assert!(result.hint.unwrap().contains("at the end of"));
        fs::write(&path, "passwd: files dircache\ngroup: files systemd dircache\n").unwrap();
        assert_eq!(check_nsswitch(&path).status, Status::Ok);
    }

    #[test]
    fn pam_check_names_the_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        for file in PAM_COMMON_FILES {
            fs::write(dir.path().join(file), "auth required pam_unix.so\n").unwrap();
        }
        let result = check_pam(dir.path());
        assert_eq!(result.status, Status::Fail);
        assert!(result.hint.as_deref().unwrap().contains("pam-auth-update --enable dircache"));
        fs::write(dir.path().join("common-auth"), "auth sufficient pam_dircache.so\n").unwrap();
        let result = check_pam(dir.path());
        assert!(result.message.contains("missing from common-account, common-password"));
        for file in PAM_COMMON_FILES {
            fs::write(dir.path().join(file), "x [default=bad] pam_dircache.so\n").unwrap();
        }
        assert_eq!(check_pam(dir.path()).status, Status::Ok);
    }

    #[test]
    fn state_files_readable_by_others_fail() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        let file = state.join("0011.json");
        fs::write(&file, "{}").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(state_dir_problem(&state), None);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let problem = state_dir_problem(&state).unwrap();
        assert_eq!(problem.hint.as_deref(), Some(format!("chmod 600 {}", file.display()).as_str()));
    }
}
