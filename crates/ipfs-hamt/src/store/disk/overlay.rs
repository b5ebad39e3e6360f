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
use super::runs::{Entry, Found};

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

/// Entries not yet in the index.
#[derive(Default)]
pub struct Overlay {
    map: HashMap<u64, (Vec<u8>, Loc), BuildHasherDefault<IdHasher>>,
    /// Entries whose hash another key already holds in `map`.
    clashes: Vec<(u64, Vec<u8>, Loc)>,
}

impl Overlay {
    /// Makes room for `n` entries in all, once: a map growing by doubling to half a million
    /// entries rehashes (moves) every entry several times.
    pub fn reserve_total(&mut self, n: usize) {
        self.map.reserve(n.saturating_sub(self.map.len()));
    }

    /// Where `key` (hash `h`) is, if appended since the last flush.
    pub fn get(&self, h: u64, key: &[u8]) -> Option<Loc> {
        match self.map.get(&h) {
            Some((k, loc)) if k == key => Some(*loc),
            Some(_) => self
                .clashes
                .iter()
                .find(|(ch, k, _)| *ch == h && k == key)
                .map(|(_, _, l)| *l),
            None => None,
        }
    }

    /// Adds or repoints `key`.
    pub fn insert(&mut self, h: u64, key: Vec<u8>, loc: Loc) {
        match self.map.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((key, loc));
            }
            std::collections::hash_map::Entry::Occupied(mut o) if o.get().0 == key => {
                o.get_mut().1 = loc;
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                match self
                    .clashes
                    .iter_mut()
                    .find(|(ch, k, _)| *ch == h && *k == key)
                {
                    Some(c) => c.2 = loc,
                    None => self.clashes.push((h, key, loc)),
                }
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len() + self.clashes.len()
    }

    /// Takes every entry out (the map keeps its capacity).
    pub fn take(&mut self) -> Vec<Entry> {
        let mut out = Vec::with_capacity(self.len());
        let entry = |h, key, loc| Entry {
            h,
            key,
            found: Found::At(loc),
        };
        out.extend(self.map.drain().map(|(h, (k, l))| entry(h, k, l)));
        out.extend(self.clashes.drain(..).map(|(h, k, l)| entry(h, k, l)));
        out
    }

    /// Puts back entries [`Overlay::take`] took (after a failed flush).
    pub fn restore(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if let Found::At(loc) = e.found {
                self.insert(e.h, e.key, loc);
            }
        }
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
        ov.insert(7, b"a".to_vec(), loc(1));
        ov.insert(7, b"b".to_vec(), loc(2));
        ov.insert(8, b"c".to_vec(), loc(3));
        ov.insert(7, b"b".to_vec(), loc(4));
        assert_eq!(ov.len(), 3);
        assert_eq!(ov.get(7, b"a"), Some(loc(1)));
        assert_eq!(ov.get(7, b"b"), Some(loc(4)));
        assert_eq!(ov.get(7, b"c"), None);
        assert_eq!(ov.get(9, b"a"), None);
        let taken = ov.take();
        assert_eq!((taken.len(), ov.len()), (3, 0));
        ov.restore(taken);
        assert_eq!(ov.get(8, b"c"), Some(loc(3)));
    }
}
