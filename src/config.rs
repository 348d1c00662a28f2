//! The configuration file (`/etc/dircache/dircache.toml`): parsing, validation and the
//! permission rules for the directory password.
//!
//! Every mistake is reported with the file, the key and (for syntax and type errors) the line,
//! because the PAM module and the NSS module cannot ask the administrator anything: a vague
//! error at login time is much harder to act on than a precise one at `dircache-sync` time.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use thiserror::Error;
use toml::de::{DeTable, DeValue};
use zeroize::Zeroizing;

use crate::local_accounts::{LocalAccounts, LocalAccountsError};
use crate::names::NamePolicy;
use crate::privileges::Privilege;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/dircache/dircache.toml";
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/dircache";

/// `[directory] max_reply_mib` by default: 1,000,000 users of an Application Integration
/// listing take about 150 MB (the mock's users, 153 bytes each), and 1 GiB also lets
/// 1,048,576 accounts through the per-account charge of `directory::ListingBudget`.
const DEFAULT_MAX_REPLY_MIB: u64 = 1024;
/// The largest `max_reply_mib`: 64 GiB, far beyond any directory, and no overflow.
const MAX_MAX_REPLY_MIB: u64 = 64 * 1024;
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
const MIN_ARGON2_MEMORY_KIB: u32 = 8 * 1024;
const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// The longest `sync.interval_secs`: a week.
const MAX_INTERVAL_SECS: u64 = 7 * 86_400;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "cannot read the configuration file {}: {source}; check that it exists and that this \
         process may read it",
        path.display()
    )]
    Read { path: PathBuf, source: io::Error },

    /// `message` already names the line and, where it can be found, the key.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },

    #[error("{}: invalid `{key}`: {reason}", path.display())]
    Invalid { path: PathBuf, key: String, reason: String },

    #[error(
        "{} holds a directory password but is readable by group or others (mode {mode:04o}); \
         run `chmod 600 {}` or move the password to password_file",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },

    #[error(
        "{} can be changed by others (mode {mode:04o}, owner uid {owner}): whoever can write it \
         decides who logs in. Run {fix}",
        path.display()
    )]
    WritableByOthers { path: PathBuf, mode: u32, owner: u32, fix: String },

    #[error(
        "the directory password file {} (directory.password_file) is readable by group or \
         others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePasswordFile { path: PathBuf, mode: u32 },

    #[error(
        "cannot read the directory password file {} (directory.password_file): {source}; check \
         that it exists, holds UTF-8 text and that this process may read it",
        path.display()
    )]
    PasswordFile { path: PathBuf, source: io::Error },

    #[error(
        "the directory password file {} (directory.password_file) has an empty first line; \
         write the password on its first line",
        path.display()
    )]
    EmptyPasswordFile { path: PathBuf },

    /// A file the configuration names under `key` that someone else than root (or the
    /// reader) could have written.
    #[error(
        "{} ({key}) can be changed by others (mode {mode:04o}, owner uid {owner}): {why}. \
         Run {fix}",
        path.display()
    )]
    UntrustedFile {
        key: &'static str,
        path: PathBuf,
        mode: u32,
        owner: u32,
        why: &'static str,
        fix: String,
    },

    #[error(
        "cannot read the CA file {} (directory.ca_file): {source}; check that it exists and \
         that this process may read it",
        path.display()
    )]
    CaFile { path: PathBuf, source: io::Error },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub cache: CacheConfig,
    pub directory: DirectoryConfig,
    pub sync: SyncConfig,
    pub unix: UnixConfig,
    pub passwords: PasswordConfig,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub dir: PathBuf,
    pub lock_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectoryKind {
    Icewarp,
    ApplicationIntegration,
    #[default]
    None,
}

impl DirectoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::Icewarp => "icewarp",
            DirectoryKind::ApplicationIntegration => "application-integration",
            DirectoryKind::None => "none",
        }
    }
}

// `Debug` is written by hand so that the password never reaches a log line.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectoryConfig {
    #[serde(rename = "type")]
    pub kind: DirectoryKind,
    pub server: Option<String>,
    pub url: Option<String>,
    pub username: Option<String>,
    #[serde(deserialize_with = "deserialize_secret")]
    pub password: Option<Zeroizing<String>>,
    pub password_file: Option<PathBuf>,
    /// The deadline of one request as a whole: connect, TLS, sending, the whole reply.
    pub timeout_secs: u64,
    /// How long connecting (TCP and TLS handshake) may take, at most `timeout_secs`; use
    /// [`DirectoryConfig::connect_timeout_secs`]. Not getting a connection in time is the
    /// one kind of timeout that counts as unreachable.
    pub connect_timeout_secs: Option<u64>,
    pub ignore_ssl_warnings: bool,
    /// Extra CA certificates (PEM) to trust besides the system's, for a directory whose
    /// certificate comes from a private CA: safer than `ignore_ssl_warnings`.
    pub ca_file: Option<PathBuf>,
    /// The documented cap; use [`DirectoryConfig::reply_limit`].
    pub max_reply_mib: Option<u64>,
    /// The older spelling of the cap, in bytes; still accepted, not together with
    /// `max_reply_mib`.
    pub max_reply_bytes: Option<u64>,
}

/// The cap on what the directory may send, and the key that set it (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimit {
    pub bytes: u64,
    /// `max_reply_mib` or `max_reply_bytes`, without the section.
    pub key: &'static str,
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("kind", &self.kind)
            .field("server", &self.server)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("ignore_ssl_warnings", &self.ignore_ssl_warnings)
            .field("ca_file", &self.ca_file)
            .field("max_reply_mib", &self.max_reply_mib)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .finish()
    }
}

impl DirectoryConfig {
    /// `max_reply_mib`, or `max_reply_bytes`, or the default (1024 MiB).
    pub fn reply_limit(&self) -> ReplyLimit {
        match (self.max_reply_mib, self.max_reply_bytes) {
            (None, Some(bytes)) => ReplyLimit { bytes, key: "max_reply_bytes" },
            (mib, _) => ReplyLimit {
                bytes: mib.unwrap_or(DEFAULT_MAX_REPLY_MIB).saturating_mul(1 << 20),
                key: "max_reply_mib",
            },
        }
    }

    /// `connect_timeout_secs`, or the default (5 s, at most `timeout_secs`).
    pub fn connect_timeout_secs(&self) -> u64 {
        self.connect_timeout_secs.unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS.min(self.timeout_secs))
    }

    /// `ca_file`, opened and checked like the configuration itself (nobody but root or the
    /// reader may be able to change it; reading is fine: it holds no secret), or `None`
    /// when none is configured.
    pub fn open_ca_file(&self) -> Result<Option<File>, ConfigError> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let read_error = |source| ConfigError::CaFile { path: path.clone(), source };
        let (file, _) = open_named_file(
            path,
            "directory.ca_file",
            "whoever can write it decides which server is trusted as the directory",
            read_error,
        )?;
        Ok(Some(file))
    }
}

/// Opens a file the configuration names under `key` and refuses it when someone else
/// than root or the reader could have written it ([`crate::trust::check_writers`]);
/// `why` says what such a writer could do. The metadata is the open file's.
fn open_named_file(
    path: &Path,
    key: &'static str,
    why: &'static str,
    read_error: impl Fn(io::Error) -> ConfigError,
) -> Result<(File, std::fs::Metadata), ConfigError> {
    let file = File::open(path).map_err(&read_error)?;
    let metadata = file.metadata().map_err(&read_error)?;
    crate::trust::check_writers(path, &metadata).map_err(|untrusted| {
        ConfigError::UntrustedFile {
            key,
            path: path.to_path_buf(),
            mode: untrusted.mode,
            owner: untrusted.owner,
            why,
            fix: untrusted.fix,
        }
    })?;
    Ok((file, metadata))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginNameStyle {
    #[default]
    Email,
    Mailbox,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    pub domains: Vec<String>,
    pub groups: Vec<String>,
    pub delete_missing_users: bool,
    pub max_delete_percent: u8,
    pub default_privileges: Vec<Privilege>,
    pub login_name: LoginNameStyle,
    pub interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnixConfig {
    /// Inclusive `[low, high]`.
    #[serde(deserialize_with = "deserialize_id_pair")]
    pub uid_range: [u32; 2],
    /// `{name}` is replaced by the login name.
    pub home: String,
    pub shell: String,
    pub local_passwd: PathBuf,
    pub local_group: PathBuf,
    /// The subordinate ids of local users (`owner:start:count` lines), never handed out.
    pub local_subuid: PathBuf,
    pub local_subgid: PathBuf,
    /// Names that never become dircache users or groups, besides the built-in names with
    /// system meaning (see `names::NamePolicy`).
    pub reserved_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keep an argon2id hash of a directory user's password after each successful directory
    /// login, usable only while the directory is unreachable.
    pub cache_credentials: bool,
    pub offline_days: u32,
    /// Consecutive failed logins of one user after which every further attempt waits.
    pub failure_threshold: u32,
    /// The wait after the threshold; it doubles with every further failure…
    pub failure_delay_secs: u64,
    /// …up to this bound (no unbounded wait inside sshd).
    pub max_failure_delay_secs: u64,
    /// For tests and development only: accept a config file (or password file) holding the
    /// directory password even when group or others can read it.
    pub allow_readable_config: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { dir: PathBuf::from(DEFAULT_CACHE_DIR), lock_timeout_secs: 30 }
    }
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            kind: DirectoryKind::None,
            server: None,
            url: None,
            username: None,
            password: None,
            password_file: None,
            timeout_secs: 60,
            connect_timeout_secs: None,
            ignore_ssl_warnings: false,
            ca_file: None,
            max_reply_mib: None,
            max_reply_bytes: None,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            domains: Vec::new(),
            groups: Vec::new(),
            delete_missing_users: false,
            max_delete_percent: 10,
            default_privileges: Privilege::defaults(),
            login_name: LoginNameStyle::Email,
            interval_secs: 900,
        }
    }
}

impl Default for UnixConfig {
    fn default() -> Self {
        UnixConfig {
            uid_range: [200_000, 299_999],
            home: "/home/{name}".to_string(),
            shell: "/bin/bash".to_string(),
            local_passwd: PathBuf::from("/etc/passwd"),
            local_group: PathBuf::from("/etc/group"),
            local_subuid: PathBuf::from("/etc/subuid"),
            local_subgid: PathBuf::from("/etc/subgid"),
            reserved_names: Vec::new(),
        }
    }
}

/// About 50 ms per hash on a 2-core machine (`cargo run --release --example argon2_cost`).
impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig { argon2_memory_kib: 32768, argon2_iterations: 2, argon2_parallelism: 1 }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cache_credentials: false,
            offline_days: 7,
            failure_threshold: 5,
            failure_delay_secs: 2,
            max_failure_delay_secs: 30,
            allow_readable_config: false,
        }
    }
}

fn deserialize_secret<'de, D>(deserializer: D) -> Result<Option<Zeroizing<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?.map(Zeroizing::new))
}

// toml silently drops extra elements when filling a fixed-size array, so `[1, 2, 3]` would be
// accepted as `[1, 2]`; going through a Vec makes that a reported mistake.
fn deserialize_id_pair<'de, D>(deserializer: D) -> Result<[u32; 2], D::Error>
where
    D: Deserializer<'de>,
{
    let ids = Vec::<u32>::deserialize(deserializer)?;
    match ids.as_slice() {
        [low, high] => Ok([*low, *high]),
        _ => Err(serde::de::Error::invalid_length(ids.len(), &"two ids, [low, high]")),
    }
}

impl Config {
    /// Parses and validates `text`; `origin` is only used in error messages. No file
    /// permissions are checked (there is no file).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: describe_toml_error(text, &err),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads, parses and validates the file at `path`, then refuses it if it holds the
    /// directory password and group or others can read it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(read_error)?;
        // The mode comes from the open file, not the path, so a file swapped in between the
        // check and the read cannot slip through.
        let metadata = file.metadata().map_err(read_error)?;
        let mode = metadata.permissions().mode();
        crate::trust::check_writers(path, &metadata).map_err(|untrusted| {
            ConfigError::WritableByOthers {
                path: path.to_path_buf(),
                mode: untrusted.mode,
                owner: untrusted.owner,
                fix: untrusted.fix,
            }
        })?;
        // The text may hold the password; wipe it once parsed.
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(read_error)?;

        let config = Config::from_toml_str(&text, path)?;
        if config.directory.password.is_some()
            && !config.auth.allow_readable_config
            && mode & 0o044 != 0
        {
            return Err(ConfigError::InsecurePermissions {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
        Ok(config)
    }

    /// The directory password: the inline `password`, or the first line of `password_file`
    /// (without its line ending), or `None` if neither is configured.
    pub fn directory_password(&self) -> Result<Option<Zeroizing<String>>, ConfigError> {
        if let Some(password) = &self.directory.password {
            return Ok(Some(password.clone()));
        }
        let Some(path) = &self.directory.password_file else {
            return Ok(None);
        };
        let read_error = |source| ConfigError::PasswordFile { path: path.clone(), source };
        let (mut file, metadata) = open_named_file(
            path,
            "directory.password_file",
            "it holds the directory password: whoever owns it can read it, whoever can \
             write it chooses the password dircache sends",
            read_error,
        )?;
        let mode = metadata.permissions().mode();
        if !self.auth.allow_readable_config && mode & 0o044 != 0 {
            return Err(ConfigError::InsecurePasswordFile {
                path: path.clone(),
                mode: mode & 0o7777,
            });
        }
        // Sized up front so the buffer is not reallocated, which would leave unwiped copies.
        let capacity = usize::try_from(metadata.len()).unwrap_or(0).saturating_add(1);
        let mut text = Zeroizing::new(String::with_capacity(capacity));
        file.read_to_string(&mut text).map_err(read_error)?;
        let first_line = text.lines().next().unwrap_or("");
        if first_line.is_empty() {
            return Err(ConfigError::EmptyPasswordFile { path: path.clone() });
        }
        Ok(Some(Zeroizing::new(first_line.to_string())))
    }

    /// Which names may become dircache users and groups on this host.
    pub fn name_policy(&self) -> NamePolicy {
        NamePolicy::new(&self.unix.reserved_names)
    }

    /// The local accounts with their subordinate ids: what everything that hands out ids
    /// (sync, `user add`) and `check` read.
    pub fn local_accounts(&self) -> Result<LocalAccounts, LocalAccountsError> {
        let unix = &self.unix;
        LocalAccounts::load(&unix.local_passwd, &unix.local_group)?
            .with_subordinate_ids(&unix.local_subuid, &unix.local_subgid)
    }

    /// The home directory for `name`: `unix.home` with every `{name}` replaced.
    pub fn home_for(&self, name: &str) -> String {
        self.unix.home.replace("{name}", name)
    }

    /// The semantic checks `from_toml_str` and `load` apply; public so that a `Config` built
    /// in code can be checked the same way.
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key: key.to_string(),
            reason,
        };

        if !self.cache.dir.is_absolute() {
            return Err(invalid(
                "cache.dir",
                format!(
                    "{:?} is not an absolute path; use one such as \"{DEFAULT_CACHE_DIR}\"",
                    self.cache.dir
                ),
            ));
        }

        self.validate_directory(&invalid)?;

        for (key, entries) in
            [("sync.domains", &self.sync.domains), ("sync.groups", &self.sync.groups)]
        {
            if entries.iter().any(|entry| entry.trim().is_empty()) {
                return Err(invalid(
                    key,
                    "contains an empty entry; remove it (an empty list means no filter)"
                        .to_string(),
                ));
            }
        }
        if self.sync.max_delete_percent > 100 {
            return Err(invalid(
                "sync.max_delete_percent",
                format!(
                    "{} is more than 100; give a percentage from 0 to 100",
                    self.sync.max_delete_percent
                ),
            ));
        }
        if self.sync.interval_secs < 60 {
            return Err(invalid(
                "sync.interval_secs",
                format!("{} is less than 60; sync at most once a minute", self.sync.interval_secs),
            ));
        }
        if self.sync.interval_secs > MAX_INTERVAL_SECS {
            return Err(invalid(
                "sync.interval_secs",
                format!(
                    "{} is more than {MAX_INTERVAL_SECS} (7 days); a directory change would \
                     take too long to arrive",
                    self.sync.interval_secs
                ),
            ));
        }

        self.validate_unix(&invalid)?;

        let argon2 = &self.passwords;
        if !(MIN_ARGON2_MEMORY_KIB..=MAX_ARGON2_MEMORY_KIB).contains(&argon2.argon2_memory_kib) {
            return Err(invalid(
                "passwords.argon2_memory_kib",
                format!(
                    "{} is outside {MIN_ARGON2_MEMORY_KIB}..={MAX_ARGON2_MEMORY_KIB} (8 MiB to \
                     4 GiB); the default is 32768",
                    argon2.argon2_memory_kib
                ),
            ));
        }
        for (key, value) in [
            ("passwords.argon2_iterations", argon2.argon2_iterations),
            ("passwords.argon2_parallelism", argon2.argon2_parallelism),
        ] {
            if !(1..=16).contains(&value) {
                return Err(invalid(key, format!("{value} is outside 1..=16")));
            }
        }

        if !(1..=365).contains(&self.auth.offline_days) {
            return Err(invalid(
                "auth.offline_days",
                format!(
                    "{} is outside 1..=365 (days a cached password stays usable offline)",
                    self.auth.offline_days
                ),
            ));
        }
        if !(1..=1000).contains(&self.auth.failure_threshold) {
            let value = self.auth.failure_threshold;
            return Err(invalid("auth.failure_threshold", format!("{value} is outside 1..=1000")));
        }
        if self.auth.max_failure_delay_secs > 60 {
            let value = self.auth.max_failure_delay_secs;
            return Err(invalid(
                "auth.max_failure_delay_secs",
                format!("{value} is more than 60 (a login must not hang for minutes)"),
            ));
        }
        if self.auth.failure_delay_secs > self.auth.max_failure_delay_secs {
            let value = self.auth.failure_delay_secs;
            return Err(invalid(
                "auth.failure_delay_secs",
                format!("{value} is more than max_failure_delay_secs"),
            ));
        }
        Ok(())
    }

    fn validate_directory(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let dir = &self.directory;
        if dir.password.is_some() && dir.password_file.is_some() {
            return Err(invalid(
                "directory.password",
                "is set together with `directory.password_file`; keep only one of them".to_string(),
            ));
        }
        // A relative path would be resolved against whatever directory the process calling
        // PAM happens to run in.
        for (key, path) in
            [("directory.password_file", &dir.password_file), ("directory.ca_file", &dir.ca_file)]
        {
            if let Some(path) = path {
                if !path.is_absolute() {
                    return Err(invalid(key, format!("{path:?} is not an absolute path")));
                }
            }
        }
        match dir.kind {
            DirectoryKind::Icewarp => match dir.server.as_deref() {
                None => {
                    return Err(invalid(
                        "directory.server",
                        "is required when directory.type is \"icewarp\"; give the host name, \
                         IP address or full https:// URL of the IceWarp server"
                            .to_string(),
                    ))
                }
                Some(server) => check_server(server).map_err(|reason| {
                    invalid("directory.server", format!("{server:?} {reason}"))
                })?,
            },
            DirectoryKind::ApplicationIntegration => match dir.url.as_deref() {
                None => {
                    return Err(invalid(
                        "directory.url",
                        "is required when directory.type is \"application-integration\"; give \
                         the full http:// or https:// URL of the integration endpoint"
                            .to_string(),
                    ))
                }
                Some(url) => check_url(url)
                    .map_err(|reason| invalid("directory.url", format!("{url:?} {reason}")))?,
            },
            DirectoryKind::None => {}
        }
        if dir.timeout_secs < 1 {
            return Err(invalid(
                "directory.timeout_secs",
                "is 0; give at least 1 second".to_string(),
            ));
        }
        if let Some(secs) = dir.connect_timeout_secs {
            if !(1..=dir.timeout_secs).contains(&secs) {
                return Err(invalid(
                    "directory.connect_timeout_secs",
                    format!(
                        "{secs} is not between 1 and directory.timeout_secs ({}); the default \
                         is {DEFAULT_CONNECT_TIMEOUT_SECS}",
                        dir.timeout_secs
                    ),
                ));
            }
        }
        match (dir.max_reply_mib, dir.max_reply_bytes) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "directory.max_reply_mib",
                    "and directory.max_reply_bytes are both given; keep max_reply_mib (the \
                     older max_reply_bytes says the same in bytes)"
                        .to_string(),
                ))
            }
            (Some(mib), None) if !(1..=MAX_MAX_REPLY_MIB).contains(&mib) => {
                return Err(invalid(
                    "directory.max_reply_mib",
                    format!(
                        "{mib} is not between 1 and {MAX_MAX_REPLY_MIB}; the default is \
                         {DEFAULT_MAX_REPLY_MIB}"
                    ),
                ))
            }
            (None, Some(bytes)) if !(1024..=MAX_MAX_REPLY_MIB << 20).contains(&bytes) => {
                return Err(invalid(
                    "directory.max_reply_bytes",
                    format!(
                        "{bytes} is not between 1024 and {}; better use max_reply_mib (default \
                         {DEFAULT_MAX_REPLY_MIB})",
                        MAX_MAX_REPLY_MIB << 20
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_unix(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let unix = &self.unix;
        let [low, high] = unix.uid_range;
        if low > high {
            return Err(invalid(
                "unix.uid_range",
                format!("[{low}, {high}] has its low end above its high end; write [low, high]"),
            ));
        }
        if let Some(what) = crate::ids::reserved_overlap(low, high) {
            return Err(invalid(
                "unix.uid_range",
                format!(
                    "[{low}, {high}] overlaps {what}; choose a range clear of 0-999, \
                     61184-65519, 65534-65535 and 4294967295, such as [200000, 299999]"
                ),
            ));
        }
        if !unix.home.starts_with('/') || !unix.home.contains("{name}") {
            return Err(invalid(
                "unix.home",
                format!(
                    "{:?} must be an absolute path containing {{name}}, such as \"/home/{{name}}\"",
                    unix.home
                ),
            ));
        }
        if !unix.shell.starts_with('/') {
            return Err(invalid(
                "unix.shell",
                format!("{:?} is not an absolute path; use one such as \"/bin/bash\"", unix.shell),
            ));
        }
        for (key, path) in [
            ("unix.local_passwd", &unix.local_passwd),
            ("unix.local_group", &unix.local_group),
            ("unix.local_subuid", &unix.local_subuid),
            ("unix.local_subgid", &unix.local_subgid),
        ] {
            if !path.is_absolute() {
                return Err(invalid(key, format!("{path:?} is not an absolute path")));
            }
        }
        // An entry no name can match (" finance", "x;y") would reserve nothing, silently.
        for name in &unix.reserved_names {
            if let Err(e) = crate::names::validate_name(name) {
                return Err(invalid(
                    "unix.reserved_names",
                    format!("{name:?} can never be a name ({e}); list names such as \"finance\""),
                ));
            }
        }
        Ok(())
    }
}

/// Accepts a host name, an IP address (IPv6 in brackets), either with an optional port, or a
/// full http(s) URL. Returns the reason for refusing otherwise.
fn check_server(server: &str) -> Result<(), String> {
    if server.contains("://") {
        return check_url(server);
    }
    if server.is_empty() {
        return Err("is empty; give a host name, IP address or full https:// URL".to_string());
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if let Some(bad) = server.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "contains {bad:?}; give a bare host name or IP address (optionally with :port), or \
             a full https:// URL"
        ));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Err("does not start with http:// or https://".to_string()),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Err("has no host after the scheme".to_string())
        }
        Some(_) if url.chars().any(char::is_whitespace) => {
            Err("contains white space; percent-encode it as %20".to_string())
        }
        Some(_) => Ok(()),
    }
}

/// One line: where (line, column, and the dotted key when it can be located) and what.
/// toml's own `Display` spans several lines with a source excerpt, which suits a terminal but
/// not syslog or the one-line error contract of `dircache-sync`; it also omits the key for
/// type errors, where the span points at the value.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = match err.message().strip_prefix("unknown field ") {
        Some(rest) => format!("unknown key {rest}"),
        None => err.message().to_string(),
    };
    let Some(span) = err.span() else {
        return message;
    };
    let (line, column) = line_and_column(text, span.start);
    let key = DeTable::parse(text).ok().and_then(|table| key_at(table.get_ref(), &span));
    match key {
        // serde's type errors quote the value, and a password typed unquoted
        // (`password = 12345`) must not end up in a log.
        Some(key) if key == "directory.password" => format!(
            "line {line}, column {column}, at `{key}`: invalid value (not shown); write the \
             password as a quoted string"
        ),
        Some(key) => format!("line {line}, column {column}, at `{key}`: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_and_column(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted path of the key whose name or value covers `span`.
fn key_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    let covers = |outer: Range<usize>| {
        outer.start <= span.start && (span.start < outer.end || outer.start == outer.end)
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        if covers(key.span()) {
            return Some(name.to_string());
        }
        // Tables opened by a `[header]` do not cover their keys, so descend into every table
        // rather than trusting the table's own span.
        let inner = match value.get_ref() {
            DeValue::Table(inner) => key_at(inner, span),
            DeValue::Array(items) => items.iter().find_map(|item| match item.get_ref() {
                DeValue::Table(inner) => key_at(inner, span),
                _ => None,
            }),
            _ => None,
        };
        if let Some(inner) = inner {
            return Some(format!("{name}.{inner}"));
        }
        if covers(value.span()) {
            return Some(name.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Path::new("/test/dircache.toml"))
    }

    fn parse_error(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("expected an error for {text:?}, got {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    fn invalid_key(text: &str) -> String {
        match parse(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected ConfigError::Invalid for {text:?}, got {other:?}"),
        }
    }

    fn write_file(dir: &tempfile::TempDir, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = dir.path().join(name);
        let mut file = File::create(&path).unwrap();
        file.write_all(content.as_bytes()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    const INTERFACE_EXAMPLE: &str = r#"[cache]
dir = "/var/lib/dircache"

[directory]
type = "icewarp"                 # "icewarp" | "application-integration" | "none"
server = "mail.example.com"      # IceWarp: host or IP (→ https://HOST/icewarpapi/) or a full URL
url = "https://apps.example.com/integration/index.php"   # Application Integration
username = "admin@example.com"   # IceWarp: an administrator; AppInt: only if the server requires authentication
password = "…"                   # or password_file = "/etc/dircache/directory.secret"
timeout_secs = 60
ignore_ssl_warnings = false

[sync]
domains = []                     # IceWarp filter; empty with empty groups = everyone
groups = []                      # IceWarp filter (group addresses)
delete_missing_users = false
default_privileges = ["login", "read_own_archive"]
login_name = "email"             # IceWarp: "email" (alice@example.com) or "mailbox" (alice)
interval_secs = 900              # for `daemon`

[unix]
uid_range = [200000, 299999]     # ids for directory users; reserved ranges refused
home = "/home/{name}"
shell = "/bin/bash"
"#;

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.cache.dir, Path::new(DEFAULT_CACHE_DIR));
        assert_eq!(config.cache.lock_timeout_secs, 30);
        assert_eq!(config.directory.kind, DirectoryKind::None);
        assert_eq!(config.directory.timeout_secs, 60);
        assert_eq!(config.directory.connect_timeout_secs(), 5);
        assert_eq!(
            config.directory.reply_limit(),
            ReplyLimit { bytes: 1 << 30, key: "max_reply_mib" }
        );
        assert!(!config.directory.ignore_ssl_warnings);
        assert_eq!(config.sync.max_delete_percent, 10);
        assert_eq!(config.sync.default_privileges, Privilege::defaults());
        assert_eq!(config.sync.login_name, LoginNameStyle::Email);
        assert_eq!(config.sync.interval_secs, 900);
        assert_eq!(config.unix.uid_range, [200_000, 299_999]);
        assert_eq!(config.unix.home, "/home/{name}");
        assert_eq!(config.unix.shell, "/bin/bash");
        assert_eq!(config.unix.local_passwd, Path::new("/etc/passwd"));
        assert_eq!(config.unix.local_group, Path::new("/etc/group"));
        assert_eq!(config.unix.local_subuid, Path::new("/etc/subuid"));
        assert_eq!(config.unix.local_subgid, Path::new("/etc/subgid"));
        assert_eq!(config.passwords, PasswordConfig::default());
        assert_eq!(config.passwords.argon2_memory_kib, 32768);
        assert!(!config.auth.cache_credentials);
        assert_eq!(config.auth.offline_days, 7);
        assert!(!config.auth.allow_readable_config);
        Config::default().validate(Path::new("default")).expect("the defaults must be valid");
    }

    #[test]
    fn interface_example_parses() {
        let config = parse(INTERFACE_EXAMPLE).unwrap();
        assert_eq!(config.directory.kind, DirectoryKind::Icewarp);
        assert_eq!(config.directory.server.as_deref(), Some("mail.example.com"));
        assert_eq!(config.directory.username.as_deref(), Some("admin@example.com"));
        assert_eq!(config.directory.password.as_ref().map(|p| p.as_str()), Some("…"));
        assert_eq!(
            config.sync.default_privileges,
            vec![Privilege::Login, Privilege::ReadOwnArchive]
        );
        assert_eq!(config.unix.uid_range, [200_000, 299_999]);
    }

    #[test]
    fn every_section_and_variant_parses() {
        let config = parse(
            r#"
[cache]
dir = "/srv/cache"
lock_timeout_secs = 5
[directory]
type = "application-integration"
url = "http://apps.example.com/integration/index.php"
password_file = "/etc/dircache/directory.secret"
max_reply_bytes = 1024
[sync]
domains = ["example.com"]
groups = ["staff@example.com"]
delete_missing_users = true
max_delete_percent = 100
default_privileges = ["login", "change_password"]
login_name = "mailbox"
interval_secs = 60
[unix]
uid_range = [1000, 60000]
local_passwd = "/tmp/passwd"
local_group = "/tmp/group"
[passwords]
argon2_memory_kib = 8192
argon2_iterations = 16
argon2_parallelism = 16
[auth]
cache_credentials = true
offline_days = 365
allow_readable_config = true
"#,
        )
        .unwrap();
        assert_eq!(config.directory.kind, DirectoryKind::ApplicationIntegration);
        assert_eq!(config.sync.login_name, LoginNameStyle::Mailbox);
        assert_eq!(config.unix.uid_range, [1000, 60000]);
        assert!(config.auth.cache_credentials);
        assert_eq!(
            config.sync.default_privileges,
            vec![Privilege::Login, Privilege::ChangePassword]
        );
    }

    #[test]
    fn unknown_section_names_key_and_line() {
        let message = parse_error("[cache]\ndir = \"/var/lib/dircache\"\n\n[colour]\nred = 1\n");
        assert!(message.contains("/test/dircache.toml"), "{message}");
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("unknown key `colour`"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn unknown_key_in_sync_names_key_and_line() {
        let message = parse_error("[sync]\ndomains = []\ncolour = \"red\"\n");
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("`sync.colour`"), "{message}");
        assert!(message.contains("unknown key `colour`"), "{message}");
        // The list of valid keys helps with typos.
        assert!(message.contains("interval_secs"), "{message}");
    }

    #[test]
    fn unknown_key_in_dotted_and_inline_forms_is_located() {
        let message = parse_error("\nunix.colour = 1\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("`unix.colour`"), "{message}");
        let message = parse_error("auth = { offline_days = 3, colour = 1 }\n");
        assert!(message.contains("line 1"), "{message}");
        assert!(message.contains("`auth.colour`"), "{message}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let message = parse_error("[directory]\ntimeout_secs = \"sixty\"\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("`directory.timeout_secs`"), "{message}");
        assert!(message.contains("expected u64"), "{message}");

        let message =
            parse_error("[sync]\ndefault_privileges = [\n  \"login\",\n  \"logon\",\n]\n");
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("`sync.default_privileges`"), "{message}");
        assert!(message.contains("logon"), "{message}");

        let message = parse_error("[directory]\ntype = \"ldap\"\n");
        assert!(message.contains("`directory.type`"), "{message}");
        assert!(message.contains("application-integration"), "{message}");

        let message = parse_error("[unix]\nuid_range = [-1, 5]\n");
        assert!(message.contains("`unix.uid_range`"), "{message}");
    }

    #[test]
    fn wrongly_typed_password_is_not_echoed() {
        let message = parse_error("[directory]\npassword = 918273645\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("`directory.password`"), "{message}");
        assert!(!message.contains("918273645"), "{message}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let message = parse_error("[sync]\ninterval_secs = 60\ninterval_secs = 90\n");
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("duplicate key"), "{message}");
    }

    #[test]
    fn uid_range_must_have_two_elements() {
        let message = parse_error("[unix]\nuid_range = [200000, 299999, 399999]\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("`unix.uid_range`"), "{message}");
        assert!(message.contains("[low, high]"), "{message}");
        let message = parse_error("[unix]\nuid_range = [200000]\n");
        assert!(message.contains("`unix.uid_range`"), "{message}");
    }

    #[test]
    fn password_and_password_file_together_are_refused() {
        let err = parse(
            "[directory]\npassword = \"secret\"\npassword_file = \"/etc/dircache/directory.secret\"\n",
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("directory.password"), "{message}");
        assert!(message.contains("password_file"), "{message}");
        assert!(!message.contains("secret\""), "{message}");
        assert!(matches!(err, ConfigError::Invalid { .. }));
    }

    #[test]
    fn password_file_must_be_absolute() {
        assert_eq!(
            invalid_key("[directory]\npassword_file = \"directory.secret\"\n"),
            "directory.password_file"
        );
    }

    #[test]
    fn ca_file_must_be_absolute() {
        assert_eq!(invalid_key("[directory]\nca_file = \"private-ca.pem\"\n"), "directory.ca_file");
        let config = parse("[directory]\nca_file = \"/etc/dircache/private-ca.pem\"\n").unwrap();
        assert_eq!(
            config.directory.ca_file.as_deref(),
            Some(Path::new("/etc/dircache/private-ca.pem"))
        );
        assert!(format!("{:?}", config.directory).contains("private-ca.pem"));
        assert_eq!(Config::default().directory.ca_file, None);
    }

    #[test]
    fn icewarp_needs_a_valid_server() {
        assert_eq!(invalid_key("[directory]\ntype = \"icewarp\"\n"), "directory.server");
        let message = parse_error("[directory]\ntype = \"icewarp\"\n");
        assert!(message.contains("required"), "{message}");
        for bad in ["", "mail example.com", "mail.example.com/icewarpapi", "ftp://mail.example.com"]
        {
            let text = format!("[directory]\ntype = \"icewarp\"\nserver = \"{bad}\"\n");
            assert_eq!(invalid_key(&text), "directory.server", "{bad:?}");
        }
        for good in [
            "mail.example.com",
            "192.0.2.10",
            "[2001:db8::1]:8443",
            "mail.example.com:443",
            "https://mail.example.com/icewarpapi/",
            "http://192.0.2.10:32000/icewarpapi/",
        ] {
            let text = format!("[directory]\ntype = \"icewarp\"\nserver = \"{good}\"\n");
            parse(&text).unwrap_or_else(|err| panic!("{good:?}: {err}"));
        }
    }

    #[test]
    fn application_integration_needs_an_http_url() {
        assert_eq!(
            invalid_key("[directory]\ntype = \"application-integration\"\n"),
            "directory.url"
        );
        for bad in
            ["apps.example.com/index.php", "ftp://apps.example.com/", "https://", "https:///x"]
        {
            let text =
                format!("[directory]\ntype = \"application-integration\"\nurl = \"{bad}\"\n");
            assert_eq!(invalid_key(&text), "directory.url", "{bad:?}");
        }
        let message = parse_error(
            "[directory]\ntype = \"application-integration\"\nurl = \"apps.example.com\"\n",
        );
        assert!(message.contains("http:// or https://"), "{message}");
    }

    #[test]
    fn directory_none_needs_neither_server_nor_url() {
        let config = parse("[directory]\ntype = \"none\"\n").unwrap();
        assert_eq!(config.directory.kind, DirectoryKind::None);
    }

    #[test]
    fn numeric_limits_are_enforced() {
        let cases = [
            ("[directory]\ntimeout_secs = 0", "directory.timeout_secs"),
            ("[directory]\nconnect_timeout_secs = 0", "directory.connect_timeout_secs"),
            (
                "[directory]\ntimeout_secs = 30\nconnect_timeout_secs = 31",
                "directory.connect_timeout_secs",
            ),
            ("[directory]\nmax_reply_bytes = 1023", "directory.max_reply_bytes"),
            ("[directory]\nmax_reply_mib = 0", "directory.max_reply_mib"),
            ("[directory]\nmax_reply_mib = 65537", "directory.max_reply_mib"),
            (
                "[directory]\nmax_reply_mib = 8\nmax_reply_bytes = 8388608",
                "directory.max_reply_mib",
            ),
            ("[sync]\ninterval_secs = 59", "sync.interval_secs"),
            ("[sync]\nmax_delete_percent = 101", "sync.max_delete_percent"),
            ("[passwords]\nargon2_memory_kib = 8191", "passwords.argon2_memory_kib"),
            ("[passwords]\nargon2_memory_kib = 4194305", "passwords.argon2_memory_kib"),
            ("[passwords]\nargon2_iterations = 0", "passwords.argon2_iterations"),
            ("[passwords]\nargon2_iterations = 17", "passwords.argon2_iterations"),
            ("[passwords]\nargon2_parallelism = 0", "passwords.argon2_parallelism"),
            ("[passwords]\nargon2_parallelism = 17", "passwords.argon2_parallelism"),
            ("[auth]\noffline_days = 0", "auth.offline_days"),
            ("[auth]\noffline_days = 366", "auth.offline_days"),
            ("[auth]\nfailure_threshold = 0", "auth.failure_threshold"),
            ("[auth]\nmax_failure_delay_secs = 61", "auth.max_failure_delay_secs"),
            ("[auth]\nfailure_delay_secs = 31", "auth.failure_delay_secs"),
        ];
        for (text, key) in cases {
            assert_eq!(invalid_key(text), key, "{text}");
            let message = parse_error(text);
            assert!(message.contains(&format!("`{key}`")), "{message}");
        }
        let message = parse_error("[sync]\nmax_delete_percent = 150");
        assert!(message.contains("150 is more than 100"), "{message}");
    }

    #[test]
    fn the_reply_cap_is_max_reply_mib_or_the_older_max_reply_bytes_but_not_both() {
        let limit = |text: &str| parse(text).unwrap().directory.reply_limit();
        assert_eq!(
            limit("[directory]\nmax_reply_mib = 16\n"),
            ReplyLimit { bytes: 16 << 20, key: "max_reply_mib" }
        );
        assert_eq!(
            limit("[directory]\nmax_reply_bytes = 2000\n"),
            ReplyLimit { bytes: 2000, key: "max_reply_bytes" }
        );
        let message = parse_error("[directory]\nmax_reply_mib = 16\nmax_reply_bytes = 2000\n");
        assert!(message.contains("`directory.max_reply_mib`"), "{message}");
        assert!(message.contains("directory.max_reply_bytes are both given"), "{message}");
    }

    #[test]
    fn the_connect_timeout_stays_within_the_request_deadline() {
        let secs = |text: &str| parse(text).unwrap().directory.connect_timeout_secs();
        assert_eq!(secs(""), 5);
        assert_eq!(
            secs("[directory]\ntimeout_secs = 2\n"),
            2,
            "the default follows a short deadline"
        );
        assert_eq!(secs("[directory]\ntimeout_secs = 60\nconnect_timeout_secs = 60\n"), 60);
        let message = parse_error("[directory]\ntimeout_secs = 30\nconnect_timeout_secs = 31\n");
        assert!(
            message.contains("31 is not between 1 and directory.timeout_secs (30)"),
            "{message}"
        );
    }

    #[test]
    fn uid_range_must_be_ordered_and_clear_of_reserved_ids() {
        assert_eq!(invalid_key("[unix]\nuid_range = [300000, 200000]"), "unix.uid_range");
        let cases = [
            ("[500, 5000]", "system accounts"),
            ("[999, 999]", "system accounts"),
            ("[60000, 70000]", "dynamic users"),
            ("[65519, 65519]", "dynamic users"),
            ("[65534, 65534]", "nobody"),
            ("[65535, 65535]", "16-bit -1"),
            ("[4000000000, 4294967295]", "4294967295"),
        ];
        for (range, what) in cases {
            let text = format!("[unix]\nuid_range = {range}");
            assert_eq!(invalid_key(&text), "unix.uid_range", "{range}");
            let message = parse_error(&text);
            assert!(message.contains(what), "{range}: {message}");
        }
        for range in ["[1000, 61183]", "[65520, 65533]", "[65536, 4294967294]"] {
            let text = format!("[unix]\nuid_range = {range}");
            parse(&text).unwrap_or_else(|err| panic!("{range}: {err}"));
        }
    }

    #[test]
    fn reserved_names_extend_the_name_policy() {
        for bad in ["\" \"", "\" finance\"", "\"ops \"", "\"x;y\"", "\"\""] {
            let text = format!("[unix]\nreserved_names = [\"ok\", {bad}]");
            assert_eq!(invalid_key(&text), "unix.reserved_names", "{bad}");
        }
        let config = parse("[unix]\nreserved_names = [\"Finance\"]").unwrap();
        assert!(config.name_policy().check("finance").is_err());
        assert!(config.name_policy().check("admin").is_err(), "built-in names stay");
        assert!(Config::default().name_policy().check("finance").is_ok());
    }

    #[test]
    fn paths_must_be_absolute() {
        let cases = [
            ("[cache]\ndir = \"var/lib/dircache\"", "cache.dir"),
            ("[unix]\nhome = \"home/{name}\"", "unix.home"),
            ("[unix]\nhome = \"/home/alice\"", "unix.home"),
            ("[unix]\nshell = \"bash\"", "unix.shell"),
            ("[unix]\nlocal_passwd = \"passwd\"", "unix.local_passwd"),
            ("[unix]\nlocal_group = \"group\"", "unix.local_group"),
            ("[unix]\nlocal_subuid = \"subuid\"", "unix.local_subuid"),
            ("[unix]\nlocal_subgid = \"subgid\"", "unix.local_subgid"),
        ];
        for (text, key) in cases {
            assert_eq!(invalid_key(text), key, "{text}");
        }
        let message = parse_error("[unix]\nhome = \"/home/alice\"");
        assert!(message.contains("{name}"), "{message}");
    }

    #[test]
    fn the_sync_interval_is_between_a_minute_and_a_week() {
        assert_eq!(invalid_key("[sync]\ninterval_secs = 59"), "sync.interval_secs");
        assert_eq!(invalid_key("[sync]\ninterval_secs = 604801"), "sync.interval_secs");
        assert_eq!(
            invalid_key("[sync]\ninterval_secs = 9223372036854775807"),
            "sync.interval_secs"
        );
        let week = Config::from_toml_str("[sync]\ninterval_secs = 604800", Path::new("t")).unwrap();
        assert_eq!(week.sync.interval_secs, 604_800);
    }

    #[test]
    fn empty_filter_entries_are_refused() {
        assert_eq!(invalid_key("[sync]\ndomains = [\"\"]"), "sync.domains");
        assert_eq!(invalid_key("[sync]\ngroups = [\" \"]"), "sync.groups");
    }

    #[test]
    fn load_reports_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.toml");
        let err = Config::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }

    #[test]
    fn a_config_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o664, 0o646, 0o666] {
            let path = write_file(&dir, "dircache.toml", "", mode);
            let err = Config::load(&path).unwrap_err();
            assert!(
                matches!(err, ConfigError::WritableByOthers { mode: m, .. } if m == mode),
                "{mode:o}: {err:?}"
            );
            assert!(err.to_string().contains("decides who logs in"), "{err}");
            assert!(err.to_string().contains("`chmod go-w "), "{err}");
            assert!(!err.to_string().contains("chown"), "the owner is fine: {err}");
        }
        let path = write_file(&dir, "dircache.toml", "", 0o644);
        assert!(Config::load(&path).is_ok(), "no password: readable is fine");
        if crate::trust::effective_uid() == Some(0) {
            std::os::unix::fs::chown(&path, Some(1234), None).unwrap();
            let err = Config::load(&path).unwrap_err();
            assert!(matches!(err, ConfigError::WritableByOthers { owner: 1234, .. }), "{err:?}");
        }
    }

    #[test]
    fn readable_config_with_password_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[directory]\nusername = \"admin\"\npassword = \"hunter2\"\n";
        let path = write_file(&dir, "dircache.toml", text, 0o644);
        let err = Config::load(&path).unwrap_err();
        match &err {
            ConfigError::InsecurePermissions { mode, .. } => assert_eq!(*mode, 0o644),
            other => panic!("expected InsecurePermissions, got {other:?}"),
        }
        let message = err.to_string();
        let shown = path.display().to_string();
        assert_eq!(
            message,
            format!(
                "{shown} holds a directory password but is readable by group or others (mode \
                 0644); run `chmod 600 {shown}` or move the password to password_file"
            )
        );
        assert!(!message.contains("hunter2"));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Config::load(&path),
            Err(ConfigError::InsecurePermissions { mode: 0o640, .. })
        ));
    }

    #[test]
    fn private_config_with_password_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[directory]\npassword = \"hunter2\"\n";
        let path = write_file(&dir, "dircache.toml", text, 0o600);
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.directory_password().unwrap().as_deref().map(String::as_str),
            Some("hunter2")
        );
    }

    #[test]
    fn allow_readable_config_disables_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[directory]\npassword = \"hunter2\"\n[auth]\nallow_readable_config = true\n";
        let path = write_file(&dir, "dircache.toml", text, 0o644);
        Config::load(&path).unwrap();
    }

    #[test]
    fn readable_config_without_password_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[directory]\npassword_file = \"/etc/dircache/directory.secret\"\n";
        let path = write_file(&dir, "dircache.toml", text, 0o644);
        Config::load(&path).unwrap();
    }

    #[test]
    fn load_reports_parse_errors_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "dircache.toml", "[sync]\n\ncolour = 1\n", 0o600);
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(message.starts_with(&path.display().to_string()), "{message}");
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("colour"), "{message}");
    }

    fn config_with_password_file(path: &Path, allow_readable: bool) -> Config {
        let mut config = Config::default();
        config.directory.password_file = Some(path.to_path_buf());
        config.auth.allow_readable_config = allow_readable;
        config
    }

    #[test]
    fn password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("lf", "s3cret pass\nsecond line\n"),
            ("crlf", "s3cret pass\r\n"),
            ("bare", "s3cret pass"),
        ] {
            let path = write_file(&dir, name, content, 0o600);
            let password =
                config_with_password_file(&path, false).directory_password().unwrap().unwrap();
            assert_eq!(password.as_str(), "s3cret pass", "{name}");
        }
    }

    #[test]
    fn empty_password_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "empty", "\nsecond\n", 0o600);
        let err = config_with_password_file(&path, false).directory_password().unwrap_err();
        assert!(matches!(err, ConfigError::EmptyPasswordFile { .. }), "{err:?}");
        assert!(err.to_string().contains("first line"), "{err}");
    }

    #[test]
    fn missing_password_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.secret");
        let err = config_with_password_file(&path, false).directory_password().unwrap_err();
        assert!(matches!(err, ConfigError::PasswordFile { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.secret"), "{err}");
    }

    #[test]
    fn readable_password_file_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "directory.secret", "hunter2\n", 0o604);
        let err = config_with_password_file(&path, false).directory_password().unwrap_err();
        assert!(matches!(err, ConfigError::InsecurePasswordFile { mode: 0o604, .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains("0604"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");

        let password =
            config_with_password_file(&path, true).directory_password().unwrap().unwrap();
        assert_eq!(password.as_str(), "hunter2");
    }

    /// The key, mode, owner and fix of an [`ConfigError::UntrustedFile`].
    fn untrusted(err: ConfigError) -> (&'static str, u32, u32, String) {
        let message = err.to_string();
        match err {
            ConfigError::UntrustedFile { key, mode, owner, fix, .. } => {
                assert!(message.contains(key) && message.contains(&fix), "{message}");
                (key, mode, owner, fix)
            }
            other => panic!("expected UntrustedFile, got {other:?}"),
        }
    }

    #[test]
    fn password_file_others_can_write_or_own_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, allow_readable) in [(0o620, false), (0o602, false), (0o666, true)] {
            let path = write_file(&dir, "directory.secret", "hunter2\n", mode);
            let err =
                config_with_password_file(&path, allow_readable).directory_password().unwrap_err();
            let shown = path.display();
            assert!(!err.to_string().contains("hunter2"), "{err}");
            let found = untrusted(err);
            assert_eq!(found.0, "directory.password_file");
            assert_eq!(found.1, mode, "allow_readable_config never admits writers");
            assert_eq!(found.3, format!("`chmod go-w {shown}`"));
        }
        if crate::trust::effective_uid() == Some(0) {
            let path = write_file(&dir, "directory.secret", "hunter2\n", 0o600);
            std::os::unix::fs::chown(&path, Some(1234), None).unwrap();
            let err = config_with_password_file(&path, false).directory_password().unwrap_err();
            let (_, _, owner, fix) = untrusted(err);
            assert_eq!((owner, fix), (1234, format!("`chown root: {}`", path.display())));
        }
    }

    #[test]
    fn ca_file_must_not_be_writable_by_others_but_may_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut directory = DirectoryConfig::default();
        assert!(directory.open_ca_file().unwrap().is_none());
        let path = write_file(&dir, "private-ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o644);
        directory.ca_file = Some(path.clone());
        assert!(directory.open_ca_file().unwrap().is_some(), "readable by all is fine");
        for mode in [0o664, 0o646] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = directory.open_ca_file().unwrap_err();
            assert!(err.to_string().contains("which server is trusted"), "{err}");
            let (key, found, _, fix) = untrusted(err);
            assert_eq!((key, found), ("directory.ca_file", mode));
            assert_eq!(fix, format!("`chmod go-w {}`", path.display()));
        }
        if crate::trust::effective_uid() == Some(0) {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            std::os::unix::fs::chown(&path, Some(1234), None).unwrap();
            let (_, _, owner, fix) = untrusted(directory.open_ca_file().unwrap_err());
            assert_eq!((owner, fix), (1234, format!("`chown root: {}`", path.display())));
        }
        directory.ca_file = Some(dir.path().join("missing.pem"));
        let err = directory.open_ca_file().unwrap_err();
        assert!(matches!(err, ConfigError::CaFile { .. }), "{err:?}");
        assert!(err.to_string().contains("(directory.ca_file)"), "{err}");
    }

    #[test]
    fn no_password_configured_gives_none() {
        assert!(Config::default().directory_password().unwrap().is_none());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = parse("[directory]\npassword = \"hunter2\"\n").unwrap();
        let shown = format!("{config:?} {:?} {:#?}", config.directory, config.clone());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let shown = format!("{:?}", Config::default());
        assert!(shown.contains("password: None"), "{shown}");
    }

    #[test]
    fn home_for_expands_the_name() {
        let mut config = Config::default();
        assert_eq!(config.home_for("alice"), "/home/alice");
        config.unix.home = "/srv/home/{name}/{name}".to_string();
        assert_eq!(config.home_for("bob"), "/srv/home/bob/bob");
    }
}
