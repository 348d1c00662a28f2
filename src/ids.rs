//! Choosing uids and gids.
//!
//! An id is derived from a hash of a stable identity (so two hosts syncing the same
//! directory usually agree), moved on deterministically past collisions, and then kept
//! forever by the cache. Reserved ids ([`RESERVED`]) and the subordinate ids of local users
//! are never handed out.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use thiserror::Error;

/// Ids no dircache user or group may ever have, with what they are: a collision would hand
/// a directory user the files (or the powers) of a system account, or produce an id that
/// tools treat as "none". The one list: the allocator, the configuration check of
/// `uid_range` and the NSS module all use it.
pub const RESERVED: [(RangeInclusive<u32>, &str); 5] = [
    (0..=999, "the system accounts (0-999)"),
    (61184..=65519, "systemd's dynamic users (61184-65519)"),
    (65534..=65534, "nobody (65534)"),
    (65535..=65535, "the 16-bit -1 (65535)"),
    (u32::MAX..=u32::MAX, "the invalid id -1 (4294967295)"),
];

/// The default `unix.uid_range`: 268,304,384 ids, room for millions of users and groups
/// with the range still sparse enough that hashed ids rarely collide. It lies clear of what
/// other tools hand out or reserve (systemd's "Users, Groups, UIDs and GIDs on systemd
/// Systems"; shadow's login.defs):
/// - 0-999 system users, 1000-60000 regular local users, 60001-60513 systemd-homed,
///   60514-60577 `systemd-nspawn --bind-user`, 61184-65519 DynamicUser, 65534 nobody,
///   65535 the 16-bit -1;
/// - 100000-600100000, where useradd gives local users subordinate ids (`SUB_UID_MIN`,
///   `SUB_UID_MAX`, `SUB_GID_*`) for rootless containers: a local user can act as any of
///   its subordinate ids from a user namespace;
/// - 524288-1879048191, systemd-nspawn's container ranges; the range starts right above;
/// - 2147352576-2147418111 (0x7FFE0000-0x7FFEFFFF), systemd's foreign UID range, and
///   2^31 and above, which programs that keep ids in signed 32-bit integers see as
///   negative; the range ends right below.
///
/// The default was [200000, 299999] before: 100,000 ids, inside useradd's subordinate
/// band. Existing users and groups keep the ids they have (an id, once given, is kept);
/// only new ones get ids from the new range.
pub const DEFAULT_UID_RANGE: [u32; 2] = [1_879_048_192, 2_147_352_575];

pub fn is_reserved(id: u32) -> bool {
    RESERVED.iter().any(|(range, _)| range.contains(&id))
}

/// What the first reserved id in `low..=high` is, if the range holds one.
pub fn reserved_overlap(low: u32, high: u32) -> Option<&'static str> {
    RESERVED
        .iter()
        .find(|(range, _)| low <= *range.end() && *range.start() <= high)
        .map(|(_, what)| *what)
}

#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
#[error(
    "no free id left in unix.uid_range [{low}, {high}] (ids of cache users and groups, of \
     deleted ones, of local accounts, of their subordinate ids in /etc/subuid and /etc/subgid, \
     and reserved ids are never given); widen or move unix.uid_range"
)]
pub struct IdsExhausted {
    pub low: u32,
    pub high: u32,
}

/// Hands out ids from `range`, never one in `taken` (ids of the cache, retired ids, ids of
/// /etc/passwd and /etc/group), never a reserved one and never one inside an excluded range
/// (the subordinate ids of local users, see [`crate::local_accounts`]).
///
/// The ids of the range that cannot be given are kept as runs of consecutive ids, merged
/// with their neighbours: the first free id at or after any id is the end of one run plus
/// one, found in O(log runs) however full the range is, and a count of the free ids says
/// at once that none is left. (A walk id by id cost every allocation past a full range a
/// scan of all of it.)
pub struct IdAllocator {
    low: u32,
    high: u32,
    /// Start → end (inclusive) of each run of ids inside `low..=high` that cannot be
    /// given: taken, reserved or excluded. Runs neither overlap nor touch.
    runs: BTreeMap<u32, u32>,
    /// How many ids of `low..=high` are in no run.
    free: u64,
}

impl IdAllocator {
    pub fn new(
        range: [u32; 2],
        taken: impl IntoIterator<Item = u32>,
        excluded: impl IntoIterator<Item = RangeInclusive<u32>>,
    ) -> IdAllocator {
        let [low, high] = range;
        let inside = |start: u32, end: u32| {
            (start <= high && low <= end && start <= end).then(|| (start.max(low), end.min(high)))
        };
        let mut spans: Vec<(u32, u32)> = RESERVED
            .iter()
            .map(|(range, _)| range.clone())
            .chain(excluded)
            .filter_map(|range| inside(*range.start(), *range.end()))
            .chain(taken.into_iter().filter_map(|id| inside(id, id)))
            .collect();
        spans.sort_unstable();
        // Merged in place: `spans[..merged]` are the runs so far (a sync passes a million ids).
        let mut merged: usize = 0;
        for at in 0..spans.len() {
            let (start, end) = spans[at];
            match merged.checked_sub(1).map(|last| &mut spans[last]) {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => {
                    spans[merged] = (start, end);
                    merged += 1;
                }
            }
        }
        spans.truncate(merged);
        let merged = spans;
        let covered: u64 = merged.iter().map(|(start, end)| u64::from(end - start) + 1).sum();
        let span = if low <= high { u64::from(high - low) + 1 } else { 0 };
        IdAllocator {
            low,
            high,
            runs: merged.into_iter().collect(),
            free: span - covered.min(span),
        }
    }

    /// An id for the identity `seed` (e.g. "icewarp:alice@example.com"); the same seed
    /// gets the same id on every host where that id is free. The id is the first free one
    /// at or after the seed's hash slot in the range, wrapping at its end: what a walk id
    /// by id from that slot would find, in O(log n) steps.
    pub fn allocate(&mut self, seed: &str) -> Result<u32, IdsExhausted> {
        if self.free == 0 {
            return Err(IdsExhausted { low: self.low, high: self.high });
        }
        // free > 0, so low <= high and the range holds a free id.
        let span = u64::from(self.high - self.low) + 1;
        let start = self.low + (stable_hash(seed) % span) as u32;
        let id = self
            .first_free_from(start)
            .or_else(|| self.first_free_from(self.low))
            .ok_or(IdsExhausted { low: self.low, high: self.high })?;
        self.take(id);
        Ok(id)
    }

    /// The first id at or after `id` (up to `high`) in no run.
    fn first_free_from(&self, id: u32) -> Option<u32> {
        match self.runs.range(..=id).next_back() {
            // Runs never touch: the id after a run is free, unless past the range.
            Some((_, &end)) if end >= id => end.checked_add(1).filter(|next| *next <= self.high),
            _ => Some(id),
        }
    }

    /// Puts `id` (free, inside the range) into a run, merging it with the runs it touches.
    fn take(&mut self, id: u32) {
        let before = self
            .runs
            .range(..id)
            .next_back()
            .filter(|(_, end)| end.checked_add(1) == Some(id))
            .map(|(start, _)| *start);
        let after = id.checked_add(1).and_then(|next| self.runs.remove(&next));
        let start = before.unwrap_or(id);
        self.runs.insert(start, after.unwrap_or(id));
        self.free -= 1;
    }

    /// Marks `id` as used (e.g. an id a user already has).
    pub fn reserve(&mut self, id: u32) {
        if (self.low..=self.high).contains(&id) && self.first_free_from(id) == Some(id) {
            self.take(id);
        }
    }
}

/// FNV-1a 64: stable across builds and hosts, unlike std's hasher.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
