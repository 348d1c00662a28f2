//! Fleets: one host syncs from the directory and publishes a signed snapshot of its cache
//! into a directory of static files; every other host pulls it over plain HTTP(S) from any
//! static server, CDN or object store. The format and every rule are in docs/snapshots.md.
//!
//! ```text
//! DIR/
//!   manifest.json          generation, publisher time, key id, each file's name, size, SHA-256
//!   manifest.json.minisig  minisign signature of manifest.json (`minisign -Vm manifest.json`)
//!   <sha256>.users.jsonl.gz   gzip of one cache user record (`user::User`) per line
//!   <sha256>.groups.jsonl.gz  gzip of one cache group record (`user::Group`) per line
//!   publish-history.json   the publisher's own note of what it may prune (hosts ignore it)
//! ```
//!
//! - `keys`: `keygen`, and reading the signing and public keys.
//! - `publish`: writing a snapshot of the cache.
//! - `pull`: fetching, verifying and installing one (what `sync` does on a fleet host).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::cache::CacheError;
use crate::directory::DirectoryError;

mod install;
pub mod keys;
mod publish;
mod pull;
mod state;

pub use keys::{keygen, KeyId, PublicKey, SigningKey};
pub use publish::{publish, PublishReport, KEEP_GENERATIONS, KEEP_SECS};
pub use pull::{
    http_fetcher, probe, pull, reply, retry_after_secs, Fetcher, PullReport, Reply, SnapshotOptions,
};
pub use state::{read_state, request_reapply, SnapshotState};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.json.minisig";
pub const HISTORY_FILE: &str = "publish-history.json";
/// The value of the manifest's `format`.
pub const FORMAT_NAME: &str = "dircache-snapshot";
/// The manifest's `version` this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// A manifest names two files; a megabyte is far beyond any real one.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// A minisign signature file is about 300 bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 4096;
/// How far in the future a publisher's clock may be before its snapshot is refused.
pub const MAX_FUTURE_SECS: u64 = 300;

/// What a snapshot file holds; part of its name (`<sha256>.<kind>.jsonl.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Users,
    Groups,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Users => "users",
            FileKind::Groups => "groups",
        }
    }
}

/// The signed description of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Strictly increasing from one publication to the next: hosts refuse a lower one.
    pub generation: u64,
    /// The publisher's clock at publication, seconds since the epoch.
    pub published_at: u64,
    /// The minisign key id of the signing key, as `minisign` prints it (16 hex digits).
    pub key_id: String,
    pub users: usize,
    pub groups: usize,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub kind: FileKind,
    pub name: String,
    /// Bytes of the file as served (gzip).
    pub size: u64,
    /// Lower-case hex SHA-256 of the file as served.
    pub sha256: String,
    /// Bytes once decompressed: decompression stops there (a gzip bomb gets no further).
    pub content_size: u64,
}

impl FileEntry {
    /// The only file name a host accepts for this entry: derived from its hash and kind,
    /// so no name from a manifest can point anywhere else (no `/`, no `..`).
    pub fn expected_name(&self) -> Option<String> {
        let hex = self.sha256.len() == 64
            && self.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then(|| data_file_name(&self.sha256, self.kind))
    }
}

pub fn data_file_name(sha256: &str, kind: FileKind) -> String {
    format!("{sha256}.{}.jsonl.gz", kind.as_str())
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{0}")]
    NotConfigured(String),
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{path} has mode {mode:04o}: the signing key must not be readable by others; run `chmod 600 {path}`")]
    KeyReadable { path: PathBuf, mode: u32 },
    #[error("{path} already exists; refusing to overwrite a key (hosts trust the old one): move it away first")]
    KeyExists { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Cache(#[from] CacheError),
    /// `hint` replaces the directory's advice where the snapshot has keys of its own.
    #[error("snapshot {url}: {source}{hint}")]
    Transport { url: String, source: DirectoryError, hint: &'static str },
    #[error("snapshot {url}: HTTP status {status}{hint}")]
    HttpStatus { url: String, status: u16, hint: String, retry_after: Option<u64> },
    #[error("snapshot {url}: {file} is missing (HTTP 404) although the signed manifest names it: the snapshot is half-uploaded (upload the data files before manifest.json) or was pruned; nothing was changed, the next pull retries")]
    HalfUploaded { url: String, file: String },
    #[error("snapshot {url}: {what} is larger than {limit} bytes{hint}; nothing was changed")]
    TooLarge { url: String, what: String, limit: u64, hint: &'static str },
    #[error("snapshot {url}: {what} is an HTML page, not a dircache snapshot (an error page, a login portal or a wrong snapshot.url?); nothing was changed")]
    HtmlPage { url: String, what: String },
    #[error("snapshot {url}: the signature does not verify with the trusted key ({reason}): the files were changed after signing, or the publisher was uploading just now (the next pull retries); nothing was changed")]
    BadSignature { url: String, reason: String },
    #[error("snapshot {url}: signed by key id {signed_by}, but this host trusts key id {trusted} ({key}); after a key rotation install the publisher's new public key. Nothing was changed")]
    WrongKey { url: String, signed_by: String, trusted: String, key: &'static str },
    #[error("snapshot {url}: {reason}; nothing was changed")]
    Malformed { url: String, reason: String },
    #[error("snapshot {url}: generation {offered} is older than generation {installed}, installed on this host: refusing a rollback (an old snapshot replayed, or a publisher that lost its state: see docs/snapshots.md). Nothing was changed")]
    Rollback { url: String, offered: u64, installed: u64 },
    #[error("snapshot {url}: generation {generation} was published {age} s ago, more than snapshot.max_age_secs = {max}: the publisher has stopped publishing, or the server serves a frozen copy. The cache keeps the last snapshot")]
    Stale { url: String, generation: u64, age: u64, max: u64 },
    #[error("snapshot {url}: generation {generation} claims to be published {ahead} s in the future (more than {MAX_FUTURE_SECS} s): check the clocks of the publisher and of this host. Nothing was changed")]
    Future { url: String, generation: u64, ahead: u64 },
    #[error("snapshot {url}: {file}: {reason}: the file was changed after signing (or is still being uploaded); nothing was changed")]
    FileMismatch { url: String, file: String, reason: String },
}

impl SnapshotError {
    pub fn transport(url: String, source: DirectoryError) -> SnapshotError {
        let hint = match source {
            DirectoryError::Tls { .. } => {
                " (for the snapshot server: its private CA belongs in snapshot.ca_file)"
            }
            DirectoryError::Timeout { .. } => " (for the snapshot server: snapshot.timeout_secs)",
            _ => "",
        };
        SnapshotError::Transport { url, source, hint }
    }

    /// Seconds a server asked us to wait (`Retry-After` with a 429 or 5xx), for the daemon.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            SnapshotError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the server itself is failing (5xx, 429, no connection): the daemon backs off.
    pub fn server_trouble(&self) -> bool {
        match self {
            SnapshotError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            // A certificate that does not verify is no outage to wait out: it stays wrong
            // (or is an interception) until someone acts.
            SnapshotError::Transport { source: DirectoryError::Tls { .. }, .. } => false,
            SnapshotError::Transport { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model_tests;

#[cfg(test)]
mod rules_tests;
