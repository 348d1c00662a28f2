//! `dircache-sync check`: is this host set up for dircache logins? Like `sssctl
//! config-check` and `nsscache verify`, every check gives one result with a status, what was
//! found and, when something is wrong, what to do about it.
//!
//! The checks only read: the configuration, the cache, the local account and subordinate-id
//! files, login.defs, the PAM stack, nsswitch.conf; the
//! directory is asked to log the administrator in (and out) or to list its users. Nothing is
//! ever written.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
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
/// Where useradd reads which subordinate ids it gives new users.
pub const DEFAULT_LOGIN_DEFS: &str = "/etc/login.defs";
pub const DEFAULT_NEWUIDMAP: &str = "/usr/bin/newuidmap";
/// A `uid_range` clear of the subordinate ids useradd gives by default (100000-600100000),
/// of systemd's container ranges (524288-1879048191) and of its foreign range
/// (2147352576-2147418111), and below 2^31, which some programs read as negative.
pub const UID_RANGE_CLEAR_OF_SUBORDINATE_IDS: &str = "[1879048192, 2147352575]";
/// The nsswitch.conf databases libnss_dircache answers for.
pub const NSS_DATABASES: [&str; 2] = ["passwd", "group"];
/// The variable through which the NSS module is pointed at another cache (tests).

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
            results.push(check_transport(config));
            let (cache_result, sample) = check_cache(config, now);
            results.push(cache_result);
            results.push(check_ids(config, &paths.login_defs, &paths.newuidmap));
            results.push(check_last_sync(config, now));
            sample
        }
        None => {
            for name in ["directory", "transport", "cache", "ids", "last-sync"] {
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

/// How the directory is reached. Plain `http://` and `ignore_ssl_warnings` work, so they are
/// warnings, not failures; but on such a connection whoever sits on the network path reads
/// the passwords and can answer "yes" for any user.
pub fn check_transport(config: &Config) -> CheckResult {
    const NAME: &str = "transport";
    let directory = &config.directory;
    let (url, credentials) = match directory.kind {
        DirectoryKind::None => return CheckResult::skip(NAME, "no directory is configured"),
        DirectoryKind::Icewarp => (
            directory.server.as_deref().map(crate::directory::icewarp::api_url),
            "the administrator password (at every sync)",
        ),
        DirectoryKind::ApplicationIntegration => {
            (directory.url.clone(), "the HTTP Basic credentials (at every request)")
        }
    };
    let url = url.unwrap_or_default();
    let trusted = match &directory.ca_file {
        Some(ca_file) => format!("the system's CA certificates and {}", ca_file.display()),
        None => "the system's CA certificates".to_string(),
    };
    if url.starts_with("http://") {
        return CheckResult::with(
            NAME,
            Status::Warn,
            format!(
                "{url} is plain http://: {credentials} and every user's password at login \
                 cross the network in clear text, and anyone on the path can answer \
                 \"yes\" for any user"
            ),
            "use https:// (for IceWarp, a bare host name means https://HOST/icewarpapi/); \
             for a private CA, name its certificate in directory.ca_file",
        );
    }
    if directory.ignore_ssl_warnings {
        return CheckResult::with(
            NAME,
            Status::Warn,
            format!(
                "{url}: ignore_ssl_warnings = true accepts any certificate, so anyone on the \
                 network path can pose as the directory, read {credentials} and every \
                 user's password, and answer \"yes\" for any user"
            ),
            "put the server's CA certificate into directory.ca_file and set \
             ignore_ssl_warnings = false",
        );
    }
    CheckResult::ok(NAME, format!("{url}: https, the certificate verified against {trusted}"))
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

/// Subordinate ids (/etc/subuid, /etc/subgid) against `unix.uid_range`: a local user can act as any of its
/// subordinate ids from a user namespace (newuidmap), so a dircache user with such an id can
/// be impersonated. Warns about cache users and groups that already have one (the dangerous
/// case), about ranges of /etc/subuid and /etc/subgid that overlap `uid_range` (those ids are
/// never handed out), and about `uid_range` overlapping the ranges useradd gives new users
/// (`SUB_UID_MIN`…`SUB_GID_MAX` in login.defs).
pub fn check_ids(config: &Config, login_defs: &Path, newuidmap: &Path) -> CheckResult {
    const NAME: &str = "ids";
    const NAMED: usize = 3;
    let local = match config.local_accounts() {
        Ok(local) => local,
        Err(e) => {
            return CheckResult::with(
                NAME,
                Status::Fail,
                e.to_string(),
                "make it readable by root: syncs and `user add` fail on it too",
            );
        }
    };
    let [low, high] = config.unix.uid_range;
    let mut problems = Vec::new();
    let mut hints = Vec::new();

    // The cache's own problems are the cache check's; without a cache nobody has an id.
    let db = CacheDir::new(&config.cache.dir).load().unwrap_or_default();
    let inside = local.subordinate_id_warnings(&db.users, &db.groups);
    if !inside.is_empty() {
        problems.extend(inside);
        hints.push(
            "first give those local users other subordinate ids: until then they can act as \
             the dircache users and groups named"
                .to_string(),
        );
    }

    let overlapping: Vec<String> = local
        .subordinate_ranges()
        .iter()
        .filter(|range| range.overlaps(low, high))
        .map(|range| range.to_string())
        .collect();
    if !overlapping.is_empty() {
        let more = overlapping.len().saturating_sub(NAMED);
        let mut named = overlapping[..overlapping.len().min(NAMED)].join(", ");
        if more > 0 {
            named.push_str(&format!(" and {more} more"));
        }
        let verb = if overlapping.len() == 1 { "overlaps" } else { "overlap" };
        problems.push(format!(
            "{named} {verb} unix.uid_range [{low}, {high}]: ids there are never given to \
             dircache users, and a dircache user who already has one can be impersonated from \
             a user namespace"
        ));
        hints.push("move uid_range or the subordinate ids".to_string());
    }

    let defs = SubordinateDefaults::read(login_defs);
    let future: Vec<String> = defs
        .ranges
        .iter()
        .filter(|(_, min, max, count)| {
            *count > 0 && *min <= u64::from(high) && u64::from(low) <= *max
        })
        .map(|(kind, min, max, _)| format!("SUB_{kind}_MIN-SUB_{kind}_MAX {min}-{max}"))
        .collect();
    // Without newuidmap nobody can use subordinate ids: the range useradd would give is
    // said, not warned about, so that a stock host's check is clean.
    let usable = newuidmap.exists();
    let mut note = String::new();
    if !future.is_empty() && !usable {
        note = format!(
            "; useradd would give new local users subordinate ids in it ({} {}), which grant \
             nothing while {} is not installed",
            future.join(" and "),
            defs.source,
            newuidmap.display()
        );
    }
    if !future.is_empty() && usable {
        problems.push(format!(
            "unix.uid_range [{low}, {high}] overlaps the subordinate ids useradd gives new \
             local users ({} {}): a local user added later may be able to act as dircache users",
            future.join(" and "),
            defs.source,
        ));
        hints.push(format!(
            "where local users may run rootless containers (newuidmap), move unix.uid_range \
             clear of them (e.g. {UID_RANGE_CLEAR_OF_SUBORDINATE_IDS}; existing users keep \
             their ids) or set SUB_UID_MIN/SUB_UID_MAX and SUB_GID_MIN/SUB_GID_MAX in \
             login.defs clear of it"
        ));
    }

    if problems.is_empty() {
        let files = format!(
            "unix.uid_range [{low}, {high}] is clear of the subordinate ids in {} and {}",
            config.unix.local_subuid.display(),
            config.unix.local_subgid.display(),
        );
        let future = if note.is_empty() {
            format!(" and of those useradd gives new users ({})", defs.source)
        } else {
            note
        };
        return CheckResult::ok(NAME, format!("{files}{future}"));
    }
    CheckResult::with(NAME, Status::Warn, problems.join("; "), hints.join("; "))
}

/// The ranges useradd gives new users subordinate ids from (login.defs' `SUB_*` keys).
struct SubordinateDefaults {
    /// ("UID" or "GID", min, max, count).
    ranges: [(&'static str, u64, u64, u64); 2],
    /// Where they come from, for messages.
    source: String,
}

impl SubordinateDefaults {
    /// What useradd uses for a missing key; also for a file that cannot be read, so that a
    /// doubt warns rather than hides.
    const MIN: u64 = 100_000;
    const MAX: u64 = 600_100_000;
    const COUNT: u64 = 65_536;

    fn read(path: &Path) -> SubordinateDefaults {
        let text = fs::read_to_string(path).ok();
        let value = |key: &str, default: u64| -> u64 {
            let found = text.as_deref().and_then(|text| {
                text.lines().rev().find_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some(key)).then(|| words.next()?.parse().ok())?
                })
            });
            found.unwrap_or(default)
        };
        let range = |kind: &'static str| {
            (
                kind,
                value(&format!("SUB_{kind}_MIN"), Self::MIN),
                value(&format!("SUB_{kind}_MAX"), Self::MAX),
                value(&format!("SUB_{kind}_COUNT"), Self::COUNT),
            )
        };
        let source = match text {
            Some(_) => format!("in {}", path.display()),
            None => format!("by shadow's defaults: {} is absent or unreadable", path.display()),
        };
        SubordinateDefaults { ranges: [range("UID"), range("GID")], source }
    }
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
    let enable = "run `pam-auth-update --enable dircache dircache-password` (see pam_dircache(8))";
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
    let nss_dir = std::env::var_os(OsStr::from_bytes(crate::nss::ENV_CACHE_DIR.to_bytes()))
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
    fn plain_http_and_ignore_ssl_warnings_are_warnings() {
        let config = |text: &str| Config::from_toml_str(text, Path::new("t")).unwrap();
        let icewarp = |extra: &str| {
            config(&format!("[directory]\ntype = \"icewarp\"\nusername = \"a@b\"\n{extra}"))
        };
        let ok = check_transport(&icewarp("server = \"mail.example.com\""));
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert!(ok.message.starts_with("https://mail.example.com/icewarpapi/: https"), "{ok:?}");
        let ca = icewarp("server = \"mail.example.com\"\nca_file = \"/etc/dircache/ca.pem\"");
        assert!(check_transport(&ca).message.contains("/etc/dircache/ca.pem"));

        let http = check_transport(&icewarp("server = \"http://192.0.2.1:32000/icewarpapi/\""));
        assert_eq!(http.status, Status::Warn, "{http:?}");
        assert!(http.message.contains("plain http://"), "{http:?}");
        assert!(http.message.contains("administrator password"), "{http:?}");
        assert!(http.hint.as_deref().unwrap().starts_with("use https://"), "{http:?}");

        let ignore = icewarp("server = \"mail.example.com\"\nignore_ssl_warnings = true");
        let ignore = check_transport(&ignore);
        assert_eq!(ignore.status, Status::Warn, "{ignore:?}");
        assert!(ignore.message.contains("answer \"yes\" for any user"), "{ignore:?}");
        assert!(ignore.hint.as_deref().unwrap().contains("directory.ca_file"), "{ignore:?}");

        let appint = config(
            "[directory]\ntype = \"application-integration\"\nurl = \"http://apps.example.com/x\"",
        );
        let appint = check_transport(&appint);
        assert_eq!(appint.status, Status::Warn, "{appint:?}");
        assert!(appint.message.contains("HTTP Basic credentials"), "{appint:?}");
        assert_eq!(check_transport(&Config::default()).status, Status::Skip);
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

    #[test]
    fn login_defs_keys_are_read_and_missing_ones_are_shadows_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("login.defs");
        fs::write(
            &path,
            "# SUB_GID_MIN 5\nSUB_UID_MIN\t\t300000\nSUB_UID_MAX 400000\nSUB_GID_COUNT 0\n\
             SUB_GID_MAX nonsense\n",
        )
        .unwrap();
        let defs = SubordinateDefaults::read(&path);
        assert_eq!(
            defs.ranges,
            [("UID", 300_000, 400_000, 65_536), ("GID", 100_000, 600_100_000, 0)]
        );
        let missing = SubordinateDefaults::read(&dir.path().join("none"));
        assert_eq!(missing.ranges[0], ("UID", 100_000, 600_100_000, 65_536));
        assert!(missing.source.contains("shadow's defaults"), "{}", missing.source);
    }

    /// A configuration whose local files live in `dir`, with this login.defs text.
    fn ids_setup(dir: &Path, login_defs: &str) -> (Config, PathBuf) {
        let mut config = Config::default();
        config.cache.dir = dir.join("cache");
        for (field, name) in [
            (&mut config.unix.local_passwd, "passwd"),
            (&mut config.unix.local_group, "group"),
            (&mut config.unix.local_subuid, "subuid"),
            (&mut config.unix.local_subgid, "subgid"),
        ] {
            *field = dir.join(name);
        }
        let path = dir.join("login.defs");
        fs::write(&path, login_defs).unwrap();
        (config, path)
    }

    #[test]
    fn uid_range_clear_of_subordinate_ids_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        // useradd gives none (COUNT 0), or gives them above uid_range.
        let defs = "SUB_UID_COUNT 0\nSUB_GID_MIN 300000\n";
        let (config, login_defs) = ids_setup(dir.path(), defs);
        fs::write(&config.unix.local_subuid, "ben:100000:65536\ncarl:300000:65536\n").unwrap();
        let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
        assert_eq!(result.status, Status::Ok, "{result:?}");
        assert!(result.message.contains("[200000, 299999] is clear"), "{result:?}");
    }

    #[test]
    fn the_range_useradd_would_give_is_only_said_while_newuidmap_is_missing() {
        // A stock Debian host: login.defs' defaults cover the default uid_range, but nobody
        // can use subordinate ids without newuidmap.
        let dir = tempfile::tempdir().unwrap();
        let (config, login_defs) = ids_setup(dir.path(), "");
        let missing = dir.path().join("no-newuidmap");
        let result = check_ids(&config, &login_defs, &missing);
        assert_eq!(result.status, Status::Ok, "{result:?}");
        assert!(result.message.contains("which grant nothing while"), "{result:?}");
        let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
        assert_eq!(result.status, Status::Warn, "{result:?}");
    }

    #[test]
    fn subordinate_ids_over_uid_range_warn_and_name_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (config, login_defs) = ids_setup(dir.path(), "SUB_UID_MIN 1000000\n");
        let subgid = &config.unix.local_subgid;
        fs::write(subgid, "ben:165536:65536\n").unwrap();
        let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
        assert_eq!(result.status, Status::Warn, "{result:?}");
        let range =
            format!("local user ben's subordinate gids 165536-231071 ({})", subgid.display());
        assert!(result.message.starts_with(&format!("{range} overlaps unix.uid_range")));
        // SUB_GID_* keep their defaults (100000-600100000); SUB_UID_* are clear.
        assert!(result.message.contains("(SUB_GID_MIN-SUB_GID_MAX 100000-600100000 in"));
        assert!(!result.message.contains("SUB_UID_MIN"), "{result:?}");
        // An unreadable file is a failure, as for the sync.
        fs::remove_file(subgid).unwrap();
        fs::create_dir(subgid).unwrap();
        let result = check_ids(&config, &login_defs, Path::new("/bin/sh"));
        assert_eq!(result.status, Status::Fail, "{result:?}");
        assert!(result.message.contains(&format!("cannot read {}", subgid.display())));
    }
}
