//! The planner's lookups over every cached and listed user: sets of positions into a slice,
//! found by a string key that each element has (an identity, a folded name, a home).
//!
//! A `HashMap` from the key to the element holds a key (a string reference or a folded
//! copy, 16 to 24 bytes) and a reference (8) per entry, in a table at most seven-eighths
//! full: at a million users each such map took 50 to 70 MB, and the planner had six. This
//! holds a 4-byte position per entry and reads the key from the element when it compares.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Positions are stored in 4 bytes. A sync holds every listed and cached user in memory at
/// hundreds of bytes each, so no slice it indexes reaches 2^32 elements; `sync::run_sync` refuses
/// a larger one before planning ([`holds_positions`]), so the saturation here is never reached.
pub(super) fn position32(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// Whether slices of `entries` elements in all can be indexed by 4-byte positions.
pub(super) fn holds_positions(entries: usize) -> bool {
    entries < u32::MAX as usize
}

/// A set of positions into a slice, at most one per key. The caller passes `key_of`, which
/// gives the key of the element at a position, to every call: the same function each time.
pub(super) struct KeyIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl KeyIndex {
    /// An index that takes `capacity` positions without growing (growing rehashes every
    /// key, which for folded names may mean folding them again).
    pub fn with_capacity(capacity: usize) -> KeyIndex {
        KeyIndex { table: HashTable::with_capacity(capacity), hasher: RandomState::new() }
    }

    /// The position whose key is `key`.
    pub fn get<K: AsRef<str>>(&self, key: &str, key_of: impl Fn(usize) -> K) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        let found = self.table.find(hash, |at| key_of(*at as usize).as_ref() == key)?;
        Some(*found as usize)
    }

    pub fn contains<K: AsRef<str>>(&self, key: &str, key_of: impl Fn(usize) -> K) -> bool {
        self.get(key, key_of).is_some()
    }

    /// Puts `position` under `key`, in place of the position there before if any (the last
    /// one inserted wins, as when a `HashMap` is collected).
    pub fn insert<K: AsRef<str>>(
        &mut self,
        key: &str,
        position: usize,
        key_of: impl Fn(usize) -> K,
    ) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(key);
        let entry = self.table.entry(
            hash,
            |at| key_of(*at as usize).as_ref() == key,
            |at| hasher.hash_one(key_of(*at as usize).as_ref()),
        );
        *entry.or_insert(position32(position)).get_mut() = position32(position);
    }

    /// Puts `position` under `key` unless the key has one already; whether it did (as
    /// `HashSet::insert`).
    pub fn insert_new<K: AsRef<str>>(
        &mut self,
        key: &str,
        position: usize,
        key_of: impl Fn(usize) -> K,
    ) -> bool {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(key);
        match self.table.entry(
            hash,
            |at| key_of(*at as usize).as_ref() == key,
            |at| hasher.hash_one(key_of(*at as usize).as_ref()),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(position32(position));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_fit_in_four_bytes_only_below_two_to_the_32() {
        assert!(holds_positions(0));
        assert!(holds_positions(u32::MAX as usize - 1));
        assert!(!holds_positions(u32::MAX as usize));
        assert!(!holds_positions(usize::MAX));
        assert_eq!(position32(u32::MAX as usize - 1), u32::MAX - 1);
    }

    #[test]
    fn the_last_position_inserted_under_a_key_wins_and_insert_new_keeps_the_first() {
        let keys = ["a", "b", "a", "c"];
        let mut index = KeyIndex::with_capacity(1);
        for (at, key) in keys.iter().enumerate() {
            index.insert(key, at, |at| keys[at]);
        }
        assert_eq!(index.get("a", |at| keys[at]), Some(2));
        assert_eq!(index.get("b", |at| keys[at]), Some(1));
        assert_eq!(index.get("d", |at| keys[at]), None);
        let mut first = KeyIndex::with_capacity(1);
        let fresh: Vec<bool> = keys
            .iter()
            .enumerate()
            .map(|(at, key)| first.insert_new(key, at, |at| keys[at]))
            .collect();
        assert_eq!(fresh, [true, true, false, true]);
        assert_eq!(first.get("a", |at| keys[at]), Some(0));
        assert!(first.contains("c", |at| keys[at]));
    }
}
