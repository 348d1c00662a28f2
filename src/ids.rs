//! Choosing uids and gids.
//!
//! An id is derived from a hash of a stable identity (so two hosts syncing the same
//! directory usually agree), moved on deterministically past collisions, and then kept
//! forever by the cache. Reserved ids ([`RESERVED`]) and the subordinate ids of local users
//! are never handed out.

use std::collections::BTreeSet;
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

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "no free id left in uid_range {low}..={high} (ids of local accounts, of their subordinate \
     ids in /etc/subuid and /etc/subgid, and reserved ids are never given); widen or move \
     [unix] uid_range"
)]
pub struct IdsExhausted {
    pub low: u32,
    pub high: u32,
}

/// Hands out ids from `range`, never one in `taken` (ids of the cache, retired ids, ids of
/// /etc/passwd and /etc/group), never a reserved one and never one inside an excluded range
/// (the subordinate ids of local users, see [`crate::local_accounts`]).
pub struct IdAllocator {
    low: u32,
    high: u32,
    taken: BTreeSet<u32>,
    /// The reserved and the excluded ranges, sorted and merged, so that probing skips
    /// each in one step (a subordinate range is 65536 ids or more).
    excluded: Vec<(u32, u32)>,
}

impl IdAllocator {
    pub fn new(
        range: [u32; 2],
        taken: impl IntoIterator<Item = u32>,
        excluded: impl IntoIterator<Item = RangeInclusive<u32>>,
    ) -> IdAllocator {
        let mut spans: Vec<(u32, u32)> = RESERVED
            .iter()
            .map(|(range, _)| range.clone())
            .chain(excluded)
            .filter(|range| !range.is_empty())
            .map(|range| (*range.start(), *range.end()))
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        IdAllocator {
            low: range[0],
            high: range[1],
            taken: taken.into_iter().collect(),
            excluded: merged,
        }
    }

    /// An id for the identity `seed` (e.g. "icewarp:alice@example.com"); the same seed
    /// gets the same id on every host where that id is free. Probing walks the range from
    /// the seed's hash, wrapping at its end, and steps over an excluded range at once: the
    /// id found is the one an id-by-id walk would find.
    pub fn allocate(&mut self, seed: &str) -> Result<u32, IdsExhausted> {
        let exhausted = IdsExhausted { low: self.low, high: self.high };
        let Some(width) = self.high.checked_sub(self.low) else {
            return Err(exhausted);
        };
        let span = u64::from(width) + 1;
        let mut offset = stable_hash(seed) % span;
        let mut walked = 0;
        while walked < span {
            // offset < span, so the id is within low..=high.
            let id = self.low + offset as u32;
            let step = match self.excluded_until(id) {
                Some(end) => u64::from(end.min(self.high) - id) + 1,
                None if self.taken.insert(id) => return Ok(id),
                None => 1,
            };
            walked += step;
            offset = (offset + step) % span;
        }
        Err(exhausted)
    }

    /// The last id of the reserved or excluded range holding `id`, if one does.
    fn excluded_until(&self, id: u32) -> Option<u32> {
        let after = self.excluded.partition_point(|&(start, _)| start <= id);
        let (_, end) = *self.excluded.get(after.checked_sub(1)?)?;
        (id <= end).then_some(end)
    }

    /// Marks `id` as used (e.g. an id a user already has).
    pub fn reserve(&mut self, id: u32) {
        self.taken.insert(id);
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
