//! The entries appended since the last flush, in memory until their segments are fsynced and
//! they are written to the index as a run.
//!
//! Keyed by the 64-bit hash the runs are ordered by ([`key_hash`], computed once per block),
//! with an identity hasher: no SipHash, and no allocation to look a key up. Two keys with the
//! same hash (about one chance in 10^7 per flush of 512 Ki entries) are kept apart: the second
//! goes to a short list checked after the map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::index::Loc;
use super::runs::{Entry, Found, Key};

/// A hasher for keys that are already uniform 64-bit hashes.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by the overlay's keys; fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Entries not yet in the index: kept in one array in insertion order, keys inline (no
/// allocation per entry, and a flush writes its run straight from the array), found through a
/// map from hash to position.
#[derive(Default)]
pub struct Overlay {
    entries: Vec<Entry>,
    /// Hash -> position in `entries` of the first key with that hash.
    map: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    /// Positions of entries whose hash another key already holds in `map`.
    clashes: Vec<u32>,
}

impl Overlay {
    /// Makes room for `n` entries in all, once: a map growing by doubling to half a million
    /// entries rehashes (moves) every entry several times.
    pub fn reserve_total(&mut self, n: usize) {
        self.map.reserve(n.saturating_sub(self.map.len()));
        self.entries.reserve(n.saturating_sub(self.entries.len()));
    }

    /// The position of `key` (hash `h`), if present.
    fn find(&self, h: u64, key: &[u8]) -> Option<usize> {
        let at = *self.map.get(&h)? as usize;
        if self.entries.get(at).is_some_and(|e| *e.key == *key) {
            return Some(at);
        }
        self.clashes.iter().map(|&c| c as usize).find(|&c| {
            self.entries
                .get(c)
                .is_some_and(|e| e.h == h && *e.key == *key)
        })
    }

    /// Where `key` (hash `h`) is, if appended since the last flush.
    pub fn get(&self, h: u64, key: &[u8]) -> Option<Loc> {
        match self.entries.get(self.find(h, key)?)?.found {
            Found::At(loc) => Some(loc),
            Found::Removed => None,
        }
    }

    /// Adds or repoints `key`.
    pub fn insert(&mut self, h: u64, key: Key, loc: Loc) {
        if let Some(at) = self.find(h, &key) {
            if let Some(e) = self.entries.get_mut(at) {
                e.found = Found::At(loc);
            }
            return;
        }
        let at = self.entries.len() as u32;
        self.entries.push(Entry {
            h,
            key,
            found: Found::At(loc),
        });
        match self.map.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(at);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.clashes.push(at),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every entry, in insertion order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Removes every entry (keeping the capacity).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.map.clear();
        self.clashes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(i: u32) -> Loc {
        Loc {
            seg: 1,
            ordinal: i,
            offset: u64::from(i),
            len: i,
        }
    }

    #[test]
    fn keys_with_one_hash_are_kept_apart() {
        let mut ov = Overlay::default();
        ov.reserve_total(4);
        let k = |b: &[u8]| Key::new(b).unwrap();
        ov.insert(7, k(b"a"), loc(1));
        ov.insert(7, k(b"b"), loc(2));
        ov.insert(8, k(b"c"), loc(3));
        ov.insert(7, k(b"b"), loc(4));
        assert_eq!(ov.len(), 3);
        assert_eq!(ov.get(7, b"a"), Some(loc(1)));
        assert_eq!(ov.get(7, b"b"), Some(loc(4)));
        assert_eq!(ov.get(7, b"c"), None);
        assert_eq!(ov.get(9, b"a"), None);
        let keys: Vec<&[u8]> = ov.entries().iter().map(|e| &e.key[..]).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
        ov.clear();
        assert_eq!((ov.len(), ov.get(8, b"c")), (0, None));
        ov.insert(8, k(b"c"), loc(5));
        assert_eq!(ov.get(8, b"c"), Some(loc(5)));
    }
}
