//! What a fleet host remembers of the snapshot it installed (`snapshot.json` in the cache
//! directory): the generation (rollback protection), the publisher's time (freshness while
//! the server answers "unchanged"), and the manifest's validators (conditional GET). No
//! secret: 0644, written atomically like `status.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cache::CacheError;

const STATE_FILE: &str = "snapshot.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    pub url: String,
    pub generation: u64,
    pub published_at: u64,
    pub key_id: String,
    /// Users in the installed snapshot (before this host's rules).
    #[serde(default)]
    pub users: usize,
    /// The data files of the installed snapshot: a newer publication of the same files is
    /// recorded (generation, time) without downloading or installing them again.
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    pub installed_at: u64,
    /// Set by a local `user set --enable` on this host: the next pull installs the
    /// snapshot again even if its generation is the one installed, so the publisher's
    /// enabled flag comes back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reapply: bool,
    /// The local files' seal (`LocalAccounts::files_seal`) for which the installed
    /// generation was found unsealable (a record collides with a local account): unchanged
    /// pulls do not load the cache again to find the same until the files or the data
    /// change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsealable_for: Option<u64>,
}

/// The installed snapshot's state, or None on a host that never pulled.
pub fn read_state(cache_dir: &Path) -> Result<Option<SnapshotState>, CacheError> {
    let remedy = "; delete it to accept any generation from the trusted publisher";
    crate::cache::read_json(cache_dir, STATE_FILE, "snapshot state", remedy)
}

/// Makes the next pull install the current generation again (see
/// [`SnapshotState::reapply`]). Nothing to do on a host that never pulled.
pub fn request_reapply(cache_dir: &Path) -> Result<(), CacheError> {
    match read_state(cache_dir)? {
        Some(state) if !state.reapply => {
            write_state(cache_dir, &SnapshotState { reapply: true, ..state })
        }
        _ => Ok(()),
    }
}

/// Replaces the state file atomically (`cache::replace_json`).
pub(super) fn write_state(cache_dir: &Path, state: &SnapshotState) -> Result<(), CacheError> {
    crate::cache::replace_json(cache_dir, STATE_FILE, "snapshot state", state)
}
