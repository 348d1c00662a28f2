//! Directory clients: what dircache reads from an IceWarp Server or an Application
//! Integration server. Read-only: nothing here ever changes the directory.
//!
//! Both clients implement [`Directory`]; the sync engine and the PAM module use only the
//! trait. A client is made per use and dropped afterwards (sshd forks; a client made before
//! a fork would be dead after it).

use thiserror::Error;

use crate::config::{Config, DirectoryKind};
use crate::user::Origin;

pub mod appint;
pub mod http;
pub mod icewarp;
pub mod icewarp_xml;
#[cfg(test)]
mod test_server;

pub use appint::AppIntDirectory;
pub use icewarp::IcewarpDirectory;

/// One account as the directory describes it, already normalized by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The Linux login name the client derived (`login_name = "email" | "mailbox"` for
    /// IceWarp; `userName` for Application Integration). Not yet validated as a Unix name:
    /// the sync planner does that and skips invalid ones with a reason.
    pub login_name: String,
    /// A stable, case-folded identity for id allocation and matching across runs, e.g.
    /// `icewarp:alice@example.com` or `application-integration:john.doe`.
    pub identity: String,
    pub full_name: String,
    /// Primary address first, then aliases; no duplicates.
    pub emails: Vec<String>,
    pub enabled: bool,
    /// Names (addresses for IceWarp) of the directory groups the user is a member of.
    pub groups: Vec<String>,
    pub distinguished_name: Option<String>,
}

/// A directory group (IceWarp type-7 account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// The group's address, e.g. `staff@example.com`; becomes the Unix group name.
    pub name: String,
    pub identity: String,
    /// `identity` values of the member users (resolved; `[domain]` tokens expanded; unknown
    /// and external members dropped with a warning).
    pub members: Vec<String>,
}

/// Everything one listing returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub origin: Origin,
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    /// Things worth telling the administrator that did not stop the listing (an external
    /// group member, a case-only duplicate, …).
    pub warnings: Vec<String>,
}

/// The directory's answer to "is this the user's password?". Anything that is not an
/// answer (network, TLS, HTTP status, garbage) is a [`DirectoryError`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Accepted,
    Rejected,
    /// Right password, but the directory says the account is disabled.
    AccountDisabled,
    /// The directory wants a second factor, which PAM cannot give it yet.
    SecondFactorRequired,
    /// Refused without asking the directory: an empty login or password, or one the
    /// protocol cannot carry. Not the directory's answer, so it says nothing about a
    /// password cached for offline logins.
    NotAsked,
}

/// How far a listing has come, for a progress line on a terminal.
pub trait Progress {
    fn step(&mut self, what: &str, done: u64, total: Option<u64>);
}

/// A progress sink that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&mut self, _what: &str, _done: u64, _total: Option<u64>) {}
}

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("{server}: {command}: cannot connect: {reason}")]
    Connect { server: String, command: String, reason: String },
    #[error("{server}: {command}: no answer within {secs} s (raise [directory] timeout_secs for large directories)")]
    Timeout { server: String, command: String, secs: u64 },
    #[error("{server}: {command}: TLS failure: {reason} (set ignore_ssl_warnings = true only for a self-signed certificate you trust)")]
    Tls { server: String, command: String, reason: String },
    #[error("{server}: {command}: HTTP status {status}")]
    HttpStatus { server: String, command: String, status: u16 },
    #[error("{server}: {command}: the reply is larger than max_reply_bytes ({limit} bytes)")]
    TooLarge { server: String, command: String, limit: u64 },
    #[error("{server}: {command}: the server answered with error {uid:?}")]
    Api { server: String, command: String, uid: String },
    #[error("{server}: {command}: malformed reply: {reason}")]
    Malformed { server: String, command: String, reason: String },
    #[error("{server}: administrator login failed: {reason}")]
    AdminLogin { server: String, reason: String },
    #[error("{server}: the filter names {kind} {name:?}, which does not exist (a typo here with delete_missing_users would empty the cache)")]
    FilterNotFound { server: String, kind: &'static str, name: String },
    #[error("{server}: {command}: {reason}")]
    Other { server: String, command: String, reason: String },
    #[error("the directory is not configured: {0}")]
    NotConfigured(String),
}

impl DirectoryError {
    /// Whether the directory could not be reached at all (as opposed to answering
    /// something), the only case in which offline credentials may be used. A timeout is not
    /// one: IceWarp answers a wrong password slowly on purpose.
    pub fn is_unreachable(&self) -> bool {
        match self {
            DirectoryError::Connect { .. } | DirectoryError::Tls { .. } => true,
            DirectoryError::HttpStatus { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A directory server, read-only.
pub trait Directory {
    /// Lists every user (and group) the configured filters select.
    fn list(&mut self, progress: &mut dyn Progress) -> Result<Listing, DirectoryError>;

    /// Asks the directory whether `password` is `login`'s password. `login` is the
    /// address (IceWarp) or user name (Application Integration) the cache recorded.
    fn check_password(
        &mut self,
        login: &str,
        password: &[u8],
    ) -> Result<PasswordCheck, DirectoryError>;

    /// For messages: the server or URL.
    fn server(&self) -> &str;
}

/// The configured directory client. Contacts nothing yet: the first request happens in
/// [`Directory::list`] or [`Directory::check_password`]. Call it where the client is used
/// (after any `fork()`), and drop the client afterwards.
///
/// An IceWarp client needs `directory.server`; the administrator credentials are only
/// needed (and only reported missing) by `list`. An Application Integration client needs
/// `directory.url`, and the password as soon as `directory.username` is set.
pub fn connect(config: &Config) -> Result<Box<dyn Directory>, DirectoryError> {
    match config.directory.kind {
        DirectoryKind::None => Err(not_configured()),
        DirectoryKind::Icewarp => Ok(Box::new(IcewarpDirectory::new(config)?)),
        DirectoryKind::ApplicationIntegration => Ok(Box::new(AppIntDirectory::new(config)?)),
    }
}

/// The client for [`Directory::check_password`] at login (the PAM module), which reads no
/// more secrets than the check needs. IceWarp checks a password with the user's own
/// credentials (`getauthtoken`), so the administrator password is never read: a process
/// answering a login never holds it. An Application Integration server that requires
/// authentication wants the configured HTTP Basic credentials on every request, `cmd=auth`
/// included, so there the password is still read when `directory.username` is set.
pub fn connect_for_login(config: &Config) -> Result<Box<dyn Directory>, DirectoryError> {
    match config.directory.kind {
        DirectoryKind::None => Err(not_configured()),
        DirectoryKind::Icewarp => Ok(Box::new(IcewarpDirectory::for_login(config)?)),
        DirectoryKind::ApplicationIntegration => Ok(Box::new(AppIntDirectory::new(config)?)),
    }
}

fn not_configured() -> DirectoryError {
    DirectoryError::NotConfigured(
        "directory.type is \"none\"; set it to \"icewarp\" or \"application-integration\""
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_configured(config: &Config) -> String {
        match connect(config) {
            Err(DirectoryError::NotConfigured(reason)) => reason,
            Err(other) => panic!("expected NotConfigured, got {other:?}"),
            Ok(_) => panic!("expected NotConfigured, got a client"),
        }
    }

    #[test]
    fn connect_follows_the_configured_type() {
        let mut config = Config::default();
        assert!(not_configured(&config).contains("none"));

        config.directory.kind = DirectoryKind::Icewarp;
        assert!(not_configured(&config).contains("directory.server"));
        config.directory.server = Some("mail.example.com".to_string());
        let directory = connect(&config).unwrap();
        assert_eq!(directory.server(), "mail.example.com");

        config.directory.kind = DirectoryKind::ApplicationIntegration;
        assert!(not_configured(&config).contains("directory.url"));
        config.directory.url = Some("https://apps.example.com/integration/index.php".to_string());
        let directory = connect(&config).unwrap();
        assert_eq!(directory.server(), "https://apps.example.com/integration/index.php");
    }

    #[test]
    fn icewarp_without_administrator_can_check_but_not_list() {
        let mut config = Config::default();
        config.directory.kind = DirectoryKind::Icewarp;
        config.directory.server = Some("http://127.0.0.1:9/icewarpapi/".to_string());
        let mut directory = connect(&config).unwrap();
        match directory.list(&mut NoProgress) {
            Err(DirectoryError::NotConfigured(reason)) => {
                assert!(reason.contains("directory.username"), "{reason}")
            }
            other => panic!("expected NotConfigured, got {other:?}"),
        }
    }
}
