//! The configuration, the directory it names, and how that directory is reached.

use std::path::Path;

use super::{CheckResult, Status};
use crate::config::{Config, DirectoryKind};
use crate::directory::{AppIntDirectory, Directory, DirectoryError, IcewarpDirectory, NoProgress};

/// The configuration parses, is valid, and holds what a sync needs (address, readable
/// credentials): a missing `username` or a password file others can read is a mistake in
/// the configuration, reported with its key, not a directory that "is not configured".
pub fn check_config(path: &Path) -> (CheckResult, Option<Config>) {
    match Config::load(path) {
        Ok(config) => {
            // A fleet host never lists: it needs no administrator credentials.
            if config.snapshot.is_none() {
                if let Err(error) = crate::directory::ready_to_list(&config) {
                    return (incomplete(path, error), Some(config));
                }
            }
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
                     example {})",
                    path.display(),
                    commented_example(Path::new(INSTALLED_EXAMPLE))
                ),
            );
            (result, None)
        }
    }
}

/// A configuration a sync cannot start with: the reason names the key.
fn incomplete(path: &Path, error: DirectoryError) -> CheckResult {
    let reason = match error {
        DirectoryError::NotConfigured(reason) => reason,
        other => other.to_string(),
    };
    CheckResult::with(
        "config",
        Status::Fail,
        format!("{}: {reason}", path.display()),
        format!("complete the [directory] section of {} (see dircache.toml(5))", path.display()),
    )
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

/// Whether the configuration names a directory, or a snapshot to pull, at all (for
/// systemd's `ExecCondition=`).
pub fn directory_configured(config: &Config) -> bool {
    config.directory.kind != DirectoryKind::None || config.snapshot.is_some()
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

/// Where the package installs the commented example configuration.
const INSTALLED_EXAMPLE: &str = "/usr/share/doc/dircache/examples/dircache.toml";

/// The commented example an administrator can read: the installed one, or, where dircache
/// runs from a checkout without the package, the one in the source tree.
pub(super) fn commented_example(installed: &Path) -> String {
    if installed.exists() {
        installed.display().to_string()
    } else {
        "conf/dircache.toml in the dircache source tree".to_string()
    }
}
