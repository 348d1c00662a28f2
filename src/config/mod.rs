//! The configuration file (`/etc/dircache/dircache.toml`): its keys, their defaults, and what
//! the configuration decides for everyone (names, homes, local accounts).
//!
//! Every mistake is reported with the file, the key and (for syntax and type errors) the line,
//! because the PAM module and the NSS module cannot ask the administrator anything: a vague
//! error at login time is much harder to act on than a precise one at `dircache-sync` time.
//!
//! - `load`: reading the file, and the permission rules for it, the password file and the CA
//!   file ([`Config::load`], [`Config::directory_password`], [`DirectoryConfig::open_ca_file`]).
//! - `validate`: the semantic checks of every key ([`Config::validate`]).
//! - `toml_error`: syntax and type errors as one line naming the line and the key.

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::local_accounts::{LocalAccounts, LocalAccountsError};
use crate::names::NamePolicy;
use crate::privileges::Privilege;

mod load;
#[cfg(test)]
mod tests;
mod toml_error;
mod validate;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/dircache/dircache.toml";
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/dircache";

/// `[directory] max_reply_mib` by default: 1,000,000 users of an Application Integration
/// listing take about 150 MB (the mock's users, 153 bytes each), and 1 GiB also lets
/// 1,048,576 accounts through the per-account charge of `directory::ListingBudget`.
const DEFAULT_MAX_REPLY_MIB: u64 = 1024;
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;

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

    #[error("{}: line {line}, invalid `{key}`: {reason}", path.display())]
    InvalidAt { path: PathBuf, line: usize, key: String, reason: String },

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
    pub status: StatusConfig,
    /// On the one host that syncs from the directory and signs snapshots for the others.
    pub publish: Option<PublishConfig>,
    /// On every other host of a fleet: `sync` pulls the publisher's signed snapshot instead
    /// of asking the directory (see docs/snapshots.md).
    pub snapshot: Option<SnapshotConfig>,
}

/// `[publish]`: what `dircache-sync publish DIR` signs with and ships.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// The minisign secret key (`dircache-sync keygen`), unencrypted, mode 0600.
    pub signing_key_file: PathBuf,
    /// Ship manual users' password hashes too (never offline credentials or login state).
    #[serde(default)]
    pub include_local_passwords: bool,
}

/// `[snapshot]`: where a fleet host pulls from, and whom it trusts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// The directory URL the publisher's files are served under (`…/manifest.json`).
    pub url: String,
    /// The publisher's minisign public key file (`publish.pub`)…
    pub public_key_file: Option<PathBuf>,
    /// …or the key itself (the base64 line of that file, `RW…`).
    pub public_key: Option<String>,
    /// Snapshots published longer ago than this are refused (a frozen server).
    pub max_age_secs: u64,
    /// The deadline of one request as a whole, as `directory.timeout_secs`.
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Extra CA certificates (PEM) for the snapshot server's certificate.
    pub ca_file: Option<PathBuf>,
    pub ignore_ssl_warnings: bool,
    /// The most one snapshot file may be.
    pub max_file_mib: u64,
    /// Install the password hashes of manual (`local`) users that a publisher ships with
    /// `include_local_passwords`. Off by default: a stolen signing key must not be enough to
    /// give every host a password login of its choosing (SECURITY.md, issue 13).
    pub accept_local_passwords: bool,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            url: String::new(),
            public_key_file: None,
            public_key: None,
            max_age_secs: 86_400,
            timeout_secs: 60,
            connect_timeout_secs: DEFAULT_CONNECT_TIMEOUT_SECS,
            ca_file: None,
            ignore_ssl_warnings: false,
            max_file_mib: 1024,
            accept_local_passwords: false,
        }
    }
}

/// Monitoring: what a sync leaves for node_exporter, and when `check` calls the last sync
/// too old.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusConfig {
    /// Written after every sync (`*.prom` in node_exporter's textfile directory).
    pub prometheus_textfile: Option<PathBuf>,
    /// `check` fails (exit status 1) when the last successful sync is older than this.
    pub max_sync_age_secs: Option<u64>,
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
    /// How many requests of a listing may be in flight at once within the one
    /// administrator session (IceWarp's per-account `getaccountproperties` and group
    /// member lists); 1 sends them one after another. Range [`PARALLEL_REQUESTS`], checked
    /// while parsing so that the error names the line.
    #[serde(deserialize_with = "deserialize_parallel_requests")]
    pub max_parallel_requests: usize,
}

/// The allowed `directory.max_parallel_requests`: more than 64 connections to one server
/// from one sync is a load no listing needs.
pub const PARALLEL_REQUESTS: std::ops::RangeInclusive<usize> = 1..=64;
/// The default `directory.max_parallel_requests` (README, "Performance": measured against
/// the mock directory with an injected latency).
pub const DEFAULT_PARALLEL_REQUESTS: usize = 8;

/// Why `n` is no `directory.max_parallel_requests`, if it is not one.
pub fn check_parallel_requests(n: usize) -> Result<(), String> {
    if PARALLEL_REQUESTS.contains(&n) {
        return Ok(());
    }
    Err(format!(
        "{n} is not between {} and {}; 1 sends one request at a time, the default is \
         {DEFAULT_PARALLEL_REQUESTS}",
        PARALLEL_REQUESTS.start(),
        PARALLEL_REQUESTS.end()
    ))
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
            .field("max_parallel_requests", &self.max_parallel_requests)
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
    /// `[unix.local_groups]`: local group name → directory groups whose members join it.
    pub local_groups: LocalGroupsConfig,
}

/// `[unix.local_groups]`: which local groups of /etc/group directory groups grant, and to
/// whom (`sudo = ["it-admins@example.com"]`). Only groups named here can ever be granted;
/// see `grants` for the rules. Remembers where each key was written, because whether the
/// local group exists (and is not gid 0) is only known when /etc/group is read, at sync and
/// `check` time, and that error must still name the key and line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct LocalGroupsConfig {
    pub map: std::collections::BTreeMap<String, Vec<String>>,
    /// The configuration file, for messages.
    #[serde(skip)]
    pub origin: PathBuf,
    /// The line of each key (filled by `Config::from_toml_str`).
    #[serde(skip)]
    pub lines: std::collections::BTreeMap<String, usize>,
}

/// Two mappings are equal when they map the same: where they were written is no part of it.
impl PartialEq for LocalGroupsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl Eq for LocalGroupsConfig {}

impl LocalGroupsConfig {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A refusal of the mapping of `local`, naming its key and line.
    pub fn invalid(&self, local: &str, reason: String) -> ConfigError {
        let key = format!("unix.local_groups.{local}");
        match self.lines.get(local) {
            Some(line) => {
                ConfigError::InvalidAt { path: self.origin.clone(), line: *line, key, reason }
            }
            None => ConfigError::Invalid { path: self.origin.clone(), key, reason },
        }
    }
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
            max_parallel_requests: DEFAULT_PARALLEL_REQUESTS,
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
            uid_range: crate::ids::DEFAULT_UID_RANGE,
            home: "/home/{name}".to_string(),
            shell: "/bin/bash".to_string(),
            local_passwd: PathBuf::from("/etc/passwd"),
            local_group: PathBuf::from("/etc/group"),
            local_subuid: PathBuf::from("/etc/subuid"),
            local_subgid: PathBuf::from("/etc/subgid"),
            reserved_names: Vec::new(),
            local_groups: LocalGroupsConfig::default(),
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

fn deserialize_parallel_requests<'de, D>(deserializer: D) -> Result<usize, D::Error>
where
    D: Deserializer<'de>,
{
    let n = u64::deserialize(deserializer)?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    check_parallel_requests(n).map_err(serde::de::Error::custom)?;
    Ok(n)
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

    /// The home directory for a new user: `unix.home` for its name, or, when that path is
    /// taken (`homes_taken`, from [`crate::cache::Db::homes_taken`]: another cache user kept
    /// it through a rename, or a deleted user left it, maybe with its files), the path with
    /// `.UID` appended, and when that is taken too (a user named `NAME.UID` has it: names
    /// may hold dots and uids are predictable), `.UID.2`, `.UID.3`…: two accounts must never
    /// share a home, not even one after the other. `is_taken` says whether a path is in that
    /// set (the sync asks its own index of it).
    pub fn free_home(&self, name: &str, uid: u32, is_taken: impl Fn(&str) -> bool) -> String {
        let wanted = self.home_for(name);
        if !is_taken(&wanted) {
            return wanted;
        }
        let suffixed = format!("{wanted}.{uid}");
        if !is_taken(&suffixed) {
            return suffixed;
        }
        // Every path tried is taken, so each holds a distinct home: one of the next
        // (taken + 1) numbers is free. The taken set is finite, so this ends.
        (2u64..)
            .map(|n| format!("{suffixed}.{n}"))
            .find(|candidate| !is_taken(candidate))
            .unwrap_or(suffixed)
    }
}
