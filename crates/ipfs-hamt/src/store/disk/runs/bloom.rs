//! A blocked bloom filter: every key sets its bits inside one 64-byte block, so a lookup
//! touches one cache line (a run set is probed once per run for every block a bulk import
//! writes, nearly always for absent keys).

/// Bits set per key. With 14 bits per key and 512-bit blocks this gives ~0.3% false positives
/// (a false positive costs a read of the run: at 10 bits, ~1% per run, those reads were 2% of a
/// bulk import's time).
const K: u32 = 9;
/// Words of one block (512 bits).
const BLOCK_WORDS: usize = 8;
/// Bits per key a new filter is sized for.
pub const BITS_PER_KEY: u64 = 14;

/// A filter over 64-bit key hashes.
pub struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    /// An empty filter sized for `keys` keys.
    pub fn for_keys(keys: u64) -> Bloom {
        let blocks = (keys.saturating_mul(BITS_PER_KEY) / 512).max(1);
        Bloom {
            words: vec![0; blocks as usize * BLOCK_WORDS],
        }
    }

    /// A filter from its words as written by [`Bloom::words`]; `None` unless a whole, non-zero
    /// number of blocks.
    pub fn from_words(words: Vec<u64>) -> Option<Bloom> {
        (!words.is_empty() && words.len() % BLOCK_WORDS == 0).then_some(Bloom { words })
    }

    /// The filter's words, to be written.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Number of 64-byte blocks.
    pub fn blocks(&self) -> u64 {
        (self.words.len() / BLOCK_WORDS) as u64
    }

    /// The block of `h` and the bits inside it.
    fn probe(&self, h: u64) -> (usize, impl Iterator<Item = usize>) {
        let blocks = (self.words.len() / BLOCK_WORDS) as u64;
        // Upper half picks the block (multiply-shift instead of a modulo)...
        let block = (((h >> 32) * blocks) >> 32) as usize;
        // ... a remix of the whole hash picks the bits: 9 bits each out of successive products.
        let mut x = (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let bits = (0..K).map(move |_| {
            x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            (x >> 55) as usize
        });
        (block * BLOCK_WORDS, bits)
    }

    /// Adds the hash `h`.
    pub fn insert(&mut self, h: u64) {
        let (base, bits) = self.probe(h);
        for b in bits {
            self.words[base + b / 64] |= 1 << (b % 64);
        }
    }

    /// False if `h` was certainly never added.
    /// Asks the CPU to start loading the cache line `h` probes (a lookup a few keys later
    /// then finds it there instead of waiting for memory).
    pub fn prefetch(&self, h: u64) {
        let (base, _) = self.probe(h);
        let block = self.words.get(base..base + BLOCK_WORDS);
        if let Some(b) = block.and_then(|b| <&[u64; BLOCK_WORDS]>::try_from(b).ok()) {
            super::prefetch(b);
        }
    }

    pub fn may_contain(&self, h: u64) -> bool {
        let (base, mut bits) = self.probe(h);
        bits.all(|b| self.words[base + b / 64] & (1 << (b % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let hash = |i: u64| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
        let mut b = Bloom::for_keys(100_000);
        for i in 0..100_000 {
            b.insert(hash(i));
        }
        assert!((0..100_000).all(|i| b.may_contain(hash(i))));
        let fp = (100_000..200_000)
            .filter(|&i| b.may_contain(hash(i)))
            .count();
        // ~0.3% expected; 1% would mean the bits are badly spread.
        assert!(fp < 1_000, "{fp} false positives in 100,000");
        let again = Bloom::from_words(b.words().to_vec()).unwrap();
        assert!(again.may_contain(hash(7)));
        assert!(Bloom::from_words(vec![0; 7]).is_none());
    }
}
