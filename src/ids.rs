//! Choosing uids and gids.
//!
//! An id is derived from a hash of a stable identity (so two hosts syncing the same
//! directory usually agree), moved on deterministically past collisions, and then kept
//! forever by the cache. Reserved ids ([`RESERVED`]) are never handed out.

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
#[error("no free id left in uid_range {low}..={high}; widen [unix] uid_range")]
pub struct IdsExhausted {
    pub low: u32,
    pub high: u32,
}

/// Hands out ids from `range`, never one in `taken` (ids of the cache, retired ids, ids of
/// /etc/passwd and /etc/group) and never a reserved one.
pub struct IdAllocator {
    low: u32,
    high: u32,
    taken: BTreeSet<u32>,
}

impl IdAllocator {
    pub fn new(range: [u32; 2], taken: impl IntoIterator<Item = u32>) -> IdAllocator {
        IdAllocator { low: range[0], high: range[1], taken: taken.into_iter().collect() }
    }

    /// An id for the identity `seed` (e.g. "icewarp:alice@example.com"); the same seed
    /// gets the same id on every host where that id is free.
    pub fn allocate(&mut self, seed: &str) -> Result<u32, IdsExhausted> {
        let span = u64::from(self.high - self.low) + 1;
        let start = stable_hash(seed) % span;
        for step in 0..span {
            let id = self.low + ((start + step) % span) as u32;
            if !is_reserved(id) && !self.taken.contains(&id) {
                self.taken.insert(id);
                return Ok(id);
            }
        }
        Err(IdsExhausted { low: self.low, high: self.high })
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
mod tests {
    use super::*;

    #[test]
    fn reserved_ranges() {
        for id in [0, 999, 61184, 65519, 65534, 65535, u32::MAX] {
            assert!(is_reserved(id), "{id}");
        }
        for id in [1000, 61183, 65520, 65533, 65536, 200_000] {
            assert!(!is_reserved(id), "{id}");
        }
    }

    #[test]
    fn same_seed_same_id_and_collisions_move_on() {
        let mut a = IdAllocator::new([200_000, 299_999], []);
        let mut b = IdAllocator::new([200_000, 299_999], []);
        let id = a.allocate("manual:alice").unwrap();
        assert_eq!(b.allocate("manual:alice").unwrap(), id);
        assert!((200_000..=299_999).contains(&id));
        let mut c = IdAllocator::new([200_000, 299_999], [id]);
        let moved = c.allocate("manual:alice").unwrap();
        assert_ne!(moved, id);
    }

    #[test]
    fn never_hands_out_reserved_or_taken_ids_and_reports_exhaustion() {
        // 65534 is reserved and 65535 taken: only 65533 is free.
        let mut alloc = IdAllocator::new([65533, 65535], [65535]);
        assert_eq!(alloc.allocate("first"), Ok(65533));
        assert_eq!(alloc.allocate("second"), Err(IdsExhausted { low: 65533, high: 65535 }));
    }
}
