//! Key hashing: which slot a key takes at each depth.
//!
//! py-hamt hashes the UTF-8 key with BLAKE3-256 and reads the hash 8 bits at a time from the
//! most significant bit, so the slot at depth `d` is simply hash byte `d`. The hash function is
//! pluggable, as py-hamt's `hash_fn` is.
//!
//! ```
//! use ipfs_hamt::key_hash::{Blake3Hasher, KeyHasher};
//! let h = Blake3Hasher.hash(b"key-0");
//! assert_eq!(h.slot(0), Some(0x3f)); // blake3("key-0") starts with 3f
//! assert_eq!(h.slot(32), None);      // a 32-byte hash has 32 levels
//! ```

use std::fmt;

/// Longest hash kept; longer hashes are cut here (64 levels are never reached in practice).
pub const MAX_HASH_LEN: usize = 64;

/// The hash of one key.
#[derive(Clone, Copy)]
pub struct KeyHash {
    len: u8,
    buf: [u8; MAX_HASH_LEN],
}

impl KeyHash {
    /// Wraps hash bytes (at most [`MAX_HASH_LEN`] are used).
    pub fn from_slice(bytes: &[u8]) -> Self {
        let n = bytes.len().min(MAX_HASH_LEN);
        let mut buf = [0u8; MAX_HASH_LEN];
        buf[..n].copy_from_slice(&bytes[..n]);
        KeyHash { len: n as u8, buf }
    }

    /// The slot index at `depth` (hash byte `depth`), or `None` when the hash is used up.
    #[inline]
    pub fn slot(&self, depth: usize) -> Option<u8> {
        if depth < self.len as usize {
            Some(self.buf[depth])
        } else {
            None
        }
    }

    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A hash function for keys. Implement it to replace BLAKE3, like py-hamt's `hash_fn`.
pub trait KeyHasher: Send + Sync + fmt::Debug {
    /// Hashes the UTF-8 bytes of a key.
    fn hash(&self, key: &[u8]) -> KeyHash;
}

/// BLAKE3-256, py-hamt's default (`blake3_hashfn`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Blake3Hasher;

impl KeyHasher for Blake3Hasher {
    #[inline]
    fn hash(&self, key: &[u8]) -> KeyHash {
        KeyHash::from_slice(blake3::hash(key).as_bytes())
    }
}

/// py-hamt's `blake3_hashfn`: the 32-byte BLAKE3 digest.
pub fn blake3_hashfn(input: &[u8]) -> [u8; 32] {
    *blake3::hash(input).as_bytes()
}

/// A key hasher made from a function.
///
/// ```
/// use ipfs_hamt::key_hash::{FnHasher, KeyHasher};
/// let one_byte = FnHasher::new("first-byte", |k: &[u8]| vec![k.first().copied().unwrap_or(0)]);
/// assert_eq!(one_byte.hash(b"a").slot(0), Some(b'a'));
/// ```
pub struct FnHasher<F> {
    name: &'static str,
    f: F,
}

impl<F: Fn(&[u8]) -> Vec<u8> + Send + Sync> FnHasher<F> {
    /// Wraps `f`; `name` is shown in debug output.
    pub fn new(name: &'static str, f: F) -> Self {
        FnHasher { name, f }
    }
}

impl<F> fmt::Debug for FnHasher<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FnHasher({})", self.name)
    }
}

impl<F: Fn(&[u8]) -> Vec<u8> + Send + Sync> KeyHasher for FnHasher<F> {
    fn hash(&self, key: &[u8]) -> KeyHash {
        KeyHash::from_slice(&(self.f)(key))
    }
}

/// py-hamt's `extract_bits`: bits `[depth*nbits, depth*nbits + nbits)` of `hash` read as a
/// big-endian number, or `None` when fewer bits remain (py-hamt raises `IndexError`).
///
/// ```
/// use ipfs_hamt::key_hash::extract_bits;
/// assert_eq!(extract_bits(&[0xb3, 0x0f], 0, 4), Some(0xb));
/// assert_eq!(extract_bits(&[0xb3, 0x0f], 1, 4), Some(3));
/// assert_eq!(extract_bits(&[0xb3, 0x0f], 1, 3), Some(4));
/// assert_eq!(extract_bits(&[0xb3, 0x0f], 4, 4), None);
/// ```
pub fn extract_bits(hash: &[u8], depth: usize, nbits: usize) -> Option<u64> {
    if nbits == 0 || nbits > 64 {
        return None;
    }
    let total = hash.len().checked_mul(8)?;
    let start = depth.checked_mul(nbits)?;
    if total.checked_sub(start)? < nbits {
        return None;
    }
    let mut out = 0u64;
    for bit in start..start + nbits {
        let byte = hash.get(bit / 8)?;
        out = (out << 1) | u64::from((byte >> (7 - bit % 8)) & 1);
    }
    Some(out)
}
