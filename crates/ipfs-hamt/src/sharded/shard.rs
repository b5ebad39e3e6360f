//! Shard blocks: a DAG-CBOR list of exactly `chunks_per_shard` entries, each a CID (tag 42) or
//! null. Decoding is strict and hand-written: a shard can hold tens of thousands of entries,
//! and its list header is checked against `chunks_per_shard` before anything is allocated.

use crate::node::write_head;
use cid::Cid;

/// A shard's entries: chunk `s * cps + k` is entry `k` of shard `s`.
pub type ShardEntries = Vec<Option<Cid>>;

/// Why shard bytes could not be read (py-hamt's messages, §3 of the format notes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardDecodeError {
    /// The bytes are not a list.
    #[error("Shard {0} did not decode to a list.")]
    NotAList(u64),
    /// The list has the wrong number of entries.
    #[error("Shard {shard} contains {found} entries; expected {expected}.")]
    Length {
        /// The shard.
        shard: u64,
        /// Entries in the block.
        found: u64,
        /// `chunks_per_shard`.
        expected: u64,
    },
    /// An entry is neither a CID nor null.
    #[error("Shard {0} contains a non-CID entry.")]
    NonCid(u64),
    /// The CBOR is malformed (truncated, indefinite lengths, non-canonical heads, trailing bytes).
    #[error("Shard {shard} is malformed CBOR: {reason}")]
    Malformed {
        /// The shard.
        shard: u64,
        /// What was wrong.
        reason: &'static str,
    },
}

/// CBOR item head: major type and argument.
struct Head {
    major: u8,
    arg: u64,
}

/// Reads a head at `*pos`, strictly: definite lengths, shortest form (DAG-CBOR).
fn read_head(data: &[u8], pos: &mut usize) -> Result<Head, &'static str> {
    let b = *data.get(*pos).ok_or("truncated CBOR item")?;
    *pos += 1;
    let major = b >> 5;
    let info = b & 0x1f;
    let len = match info {
        0..=23 => {
            return Ok(Head {
                major,
                arg: u64::from(info),
            })
        }
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return Err("indefinite or reserved CBOR item length"),
    };
    let end = pos.checked_add(len).ok_or("truncated CBOR item")?;
    let bytes = data.get(*pos..end).ok_or("truncated CBOR item")?;
    *pos = end;
    let arg = bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let min = match len {
        1 => 24,
        2 => 1 << 8,
        4 => 1 << 16,
        _ => 1 << 32,
    };
    // Major type 7 with 2/4/8 bytes are floats, which never occur in a shard.
    if arg < min && major != 7 {
        return Err("non-canonical CBOR integer head");
    }
    Ok(Head { major, arg })
}

/// Reads one entry (null or tag-42 CID) at `*pos`.
fn read_entry(data: &[u8], pos: &mut usize, shard: u64) -> Result<Option<Cid>, ShardDecodeError> {
    let malformed = |reason| ShardDecodeError::Malformed { shard, reason };
    if data.get(*pos) == Some(&0xf6) {
        *pos += 1;
        return Ok(None);
    }
    let head = read_head(data, pos).map_err(malformed)?;
    if head.major != 6 || head.arg != 42 {
        skip_rest(data, pos, head, 0).map_err(malformed)?;
        return Err(ShardDecodeError::NonCid(shard));
    }
    let inner = read_head(data, pos).map_err(malformed)?;
    if inner.major != 2 {
        return Err(ShardDecodeError::NonCid(shard));
    }
    let len = usize::try_from(inner.arg).map_err(|_| malformed("byte string too long"))?;
    let end = pos
        .checked_add(len)
        .ok_or(malformed("truncated CBOR byte string"))?;
    let bytes = data
        .get(*pos..end)
        .ok_or(malformed("truncated CBOR byte string"))?;
    *pos = end;
    match bytes.split_first() {
        Some((0, cid)) => Cid::try_from(cid)
            .ok()
            .filter(|c| c.to_bytes().len() == cid.len())
            .map(Some)
            .ok_or(ShardDecodeError::NonCid(shard)),
        _ => Err(ShardDecodeError::NonCid(shard)),
    }
}

/// Skips the body of an item whose head was read.
fn skip_rest(data: &[u8], pos: &mut usize, head: Head, depth: u32) -> Result<(), &'static str> {
    if depth > 64 {
        return Err("CBOR nested too deeply");
    }
    match head.major {
        0 | 1 | 7 => Ok(()),
        2 | 3 => {
            let len =
                usize::try_from(head.arg).map_err(|_| "truncated CBOR byte or text string")?;
            let end = pos
                .checked_add(len)
                .ok_or("truncated CBOR byte or text string")?;
            if end > data.len() {
                return Err("truncated CBOR byte or text string");
            }
            *pos = end;
            Ok(())
        }
        4 | 5 => {
            let items = if head.major == 5 {
                head.arg.saturating_mul(2)
            } else {
                head.arg
            };
            for _ in 0..items {
                // Each item takes at least one byte: a bogus count fails here, not by looping.
                let h = read_head(data, pos)?;
                skip_rest(data, pos, h, depth + 1)?;
            }
            Ok(())
        }
        _ => {
            let h = read_head(data, pos)?;
            skip_rest(data, pos, h, depth + 1)
        }
    }
}

/// The list header: entry count and where the first entry starts.
fn list_header(data: &[u8], shard: u64) -> Result<(u64, usize), ShardDecodeError> {
    let mut pos = 0;
    match data.first() {
        None => {
            return Err(ShardDecodeError::Malformed {
                shard,
                reason: "shard bytes are empty",
            })
        }
        Some(b) if b >> 5 != 4 => return Err(ShardDecodeError::NotAList(shard)),
        _ => {}
    }
    let head = read_head(data, &mut pos)
        .map_err(|reason| ShardDecodeError::Malformed { shard, reason })?;
    Ok((head.arg, pos))
}

/// Decodes a whole shard of `cps` entries (py-hamt's full read).
pub fn decode(data: &[u8], shard: u64, cps: u64) -> Result<ShardEntries, ShardDecodeError> {
    let (count, mut pos) = list_header(data, shard)?;
    if count != cps {
        return Err(ShardDecodeError::Length {
            shard,
            found: count,
            expected: cps,
        });
    }
    // Every entry takes at least one byte, so this bound keeps a lying header from allocating.
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(data.len()));
    for _ in 0..count {
        out.push(read_entry(data, &mut pos, shard)?);
    }
    if pos != data.len() {
        return Err(ShardDecodeError::Malformed {
            shard,
            reason: "trailing bytes after the shard list",
        });
    }
    Ok(out)
}

/// Decodes only entry `index` (py-hamt's sparse read): checks the header count against `cps`,
/// skips the entries before it, and reads that one.
pub fn decode_entry(
    data: &[u8],
    shard: u64,
    cps: u64,
    index: u64,
) -> Result<Option<Cid>, ShardDecodeError> {
    let (count, mut pos) = list_header(data, shard)?;
    if count != cps {
        return Err(ShardDecodeError::Length {
            shard,
            found: count,
            expected: cps,
        });
    }
    if index >= count {
        return Err(ShardDecodeError::Malformed {
            shard,
            reason: "shard entry index out of range",
        });
    }
    let malformed = |reason| ShardDecodeError::Malformed { shard, reason };
    for _ in 0..index {
        let h = read_head(data, &mut pos).map_err(malformed)?;
        skip_rest(data, &mut pos, h, 0).map_err(malformed)?;
    }
    read_entry(data, &mut pos, shard)
}

/// DAG-CBOR bytes of a shard (as py-hamt's `dag_cbor.encode(list)`).
pub fn encode(entries: &[Option<Cid>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 41 + 9);
    write_head(&mut out, 4, entries.len() as u64);
    for e in entries {
        match e {
            None => out.push(0xf6),
            Some(cid) => {
                let bytes = cid.to_bytes();
                out.extend_from_slice(&[0xd8, 42]);
                write_head(&mut out, 2, bytes.len() as u64 + 1);
                out.push(0);
                out.extend_from_slice(&bytes);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, HashAlg, RAW};

    #[test]
    fn round_trip_and_sparse() {
        let a = cid_of(RAW, HashAlg::Blake3, b"a");
        let entries = vec![Some(a), None, None];
        let bytes = encode(&entries);
        assert_eq!(bytes[0], 0x83);
        assert_eq!(&bytes[1..5], &[0xd8, 0x2a, 0x58, 0x25]);
        assert_eq!(decode(&bytes, 0, 3).unwrap(), entries);
        assert_eq!(decode_entry(&bytes, 0, 3, 0).unwrap(), Some(a));
        assert_eq!(decode_entry(&bytes, 0, 3, 2).unwrap(), None);
        assert!(matches!(
            decode(&bytes, 0, 4),
            Err(ShardDecodeError::Length { found: 3, .. })
        ));
    }

    #[test]
    fn rejects_hostile_shards() {
        // A header claiming 2^63 entries allocates nothing and fails on the count.
        let mut huge = vec![0x9b];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(matches!(
            decode(&huge, 1, 1 << 63),
            Err(ShardDecodeError::Malformed { .. })
        ));
        assert_eq!(decode(&[0xa0], 2, 0), Err(ShardDecodeError::NotAList(2)));
        assert!(matches!(
            decode(&[], 0, 0),
            Err(ShardDecodeError::Malformed { .. })
        ));
        assert_eq!(
            decode(&[0x81, 0x01], 3, 1),
            Err(ShardDecodeError::NonCid(3))
        );
        assert!(matches!(
            decode(&[0x9f, 0xff], 0, 0),
            Err(ShardDecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(&[0x81, 0xf6, 0x00], 0, 1),
            Err(ShardDecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(&[0x98, 0x01, 0xf6], 0, 1),
            Err(ShardDecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode_entry(&[0x82, 0xf6], 0, 2, 1),
            Err(ShardDecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn never_panics_on_random_bytes() {
        let mut x = 0x1234_5678_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            let _ = decode(&bytes, 0, x % 5);
            let _ = decode_entry(&bytes, 0, x % 5, x % 3);
        }
    }
}
