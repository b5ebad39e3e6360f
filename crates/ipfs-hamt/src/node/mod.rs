//! HAMT nodes and their exact DAG-CBOR encoding.
//!
//! A node is a CBOR array of exactly 256 slots. A slot is a bucket (a map of key text to the
//! tag-42 CID of the value, in canonical DAG-CBOR key order; the empty map `a0` is an empty
//! slot) or a link (a one-element array holding the tag-42 CID of a child node). The bytes are
//! identical to py-hamt's, so the same tree has the same CID.
//!
//! In memory a node keeps only its non-empty slots (a bitmap plus a dense vector), and each
//! bucket keeps its encoded bytes: decoding a block slices it without copying, and encoding a
//! node is a concatenation. Decoding validates everything once (structure, minimal CBOR heads,
//! UTF-8 keys, canonical key order, CIDs), so later reads of a bucket cannot fail.
//!
//! ```
//! use ipfs_hamt::node::Node;
//! let empty = Node::default();
//! let bytes = empty.encode_stored().unwrap();
//! assert_eq!(bytes.len(), 259);
//! let back = Node::decode(bytes.into(), 4).unwrap();
//! assert!(back.is_empty());
//! ```

use std::cmp::Ordering;

use bytes::Bytes;
use cid::Cid;
use smallvec::SmallVec;

/// Number of slots in a node (fan-out 256, one hash byte per level).
pub const SLOTS: usize = 256;

/// Why bytes are not a valid HAMT node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The bytes end inside an item.
    #[error("node truncated at byte {offset}")]
    Truncated {
        /// Where the missing item starts.
        offset: usize,
    },
    /// Bytes follow the 256th slot.
    #[error("{count} trailing bytes after the node at byte {offset}")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// The top-level item is not an array.
    #[error("node is not a CBOR array (major type {major})")]
    NotAnArray {
        /// The CBOR major type found.
        major: u8,
    },
    /// The array does not have 256 slots.
    #[error("node has {0} slots, expected 256")]
    WrongSlotCount(u64),
    /// A CBOR head is not in its shortest form, or uses indefinite length (not DAG-CBOR).
    #[error("non-canonical CBOR head at byte {offset}")]
    NonCanonical {
        /// Where the head starts.
        offset: usize,
    },
    /// A slot is neither a map (bucket) nor an array (link).
    #[error("slot {slot} has CBOR major type {major}, expected a map or an array")]
    WrongSlotType {
        /// The slot index.
        slot: usize,
        /// The CBOR major type found.
        major: u8,
    },
    /// A link array does not hold exactly one item.
    #[error("slot {slot}: a link must be an array of one CID, found {len} items")]
    BadLinkLength {
        /// The slot index.
        slot: usize,
        /// Number of items.
        len: u64,
    },
    /// A bucket key is not a text string.
    #[error("slot {slot}: bucket key is not a text string")]
    KeyNotText {
        /// The slot index.
        slot: usize,
    },
    /// A bucket key is not valid UTF-8.
    #[error("slot {slot}: bucket key is not valid UTF-8")]
    KeyNotUtf8 {
        /// The slot index.
        slot: usize,
    },
    /// Bucket keys are not in canonical DAG-CBOR order, or repeat.
    #[error("slot {slot}: bucket keys are not in canonical order or repeat")]
    KeyOrder {
        /// The slot index.
        slot: usize,
    },
    /// A bucket holds more entries than allowed.
    #[error("slot {slot}: bucket holds {len} entries, more than the limit {max}")]
    OversizedBucket {
        /// The slot index.
        slot: usize,
        /// Entries found.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Where a CID was expected, something else is.
    #[error("slot {slot}: expected a tag-42 CID at byte {offset}")]
    NotACid {
        /// The slot index.
        slot: usize,
        /// Where the item starts.
        offset: usize,
    },
    /// A tag-42 byte string is not a valid CID.
    #[error("slot {slot}: invalid CID at byte {offset}: {reason}")]
    BadCid {
        /// The slot index.
        slot: usize,
        /// Where the CID bytes start.
        offset: usize,
        /// What the CID parser said.
        reason: String,
    },
    /// Encoding was asked for a node that still has unsaved children.
    #[error("cannot encode a node with unsaved (dirty) children")]
    DirtyChild,
}

// ---------------------------------------------------------------- CBOR heads

const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const TAG_CID: [u8; 2] = [0xd8, 0x2a];

/// Appends a CBOR head in its shortest form (DAG-CBOR's rule; shared by every encoder here).
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    if v < 24 {
        out.push(m | v as u8);
    } else if v <= u8::MAX as u64 {
        out.extend_from_slice(&[m | 24, v as u8]);
    } else if v <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A bounds-checked reader over CBOR bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(NodeError::Truncated { offset: self.pos })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn peek_major(&self) -> Result<u8, NodeError> {
        self.buf
            .get(self.pos)
            .map(|b| b >> 5)
            .ok_or(NodeError::Truncated { offset: self.pos })
    }

    /// Reads a head; rejects indefinite lengths and non-shortest forms (DAG-CBOR rules).
    fn head(&mut self) -> Result<(u8, u64), NodeError> {
        let start = self.pos;
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let (v, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => {
                let b = self.take(2)?;
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 0x100)
            }
            26 => {
                let b = self.take(4)?;
                (
                    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                    0x1_0000,
                )
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 0x1_0000_0000)
            }
            _ => return Err(NodeError::NonCanonical { offset: start }),
        };
        if v < min {
            return Err(NodeError::NonCanonical { offset: start });
        }
        Ok((major, v))
    }

    /// Reads an id item (a tag-42 CID, or the byte string of a multihash as py-hamt's
    /// `InMemoryCAS` writes) and returns the whole item's bytes.
    fn cid_item(&mut self, slot: usize) -> Result<&'a [u8], NodeError> {
        let start = self.pos;
        let not_cid = NodeError::NotACid {
            slot,
            offset: start,
        };
        if self.peek_major()? == MAJOR_BYTES {
            let (_, len) = self.head()?;
            let len =
                usize::try_from(len).map_err(|_| NodeError::Truncated { offset: self.pos })?;
            let body_at = self.pos;
            let body = self.take(len)?;
            parse_multihash(body).map_err(|reason| NodeError::BadCid {
                slot,
                offset: body_at,
                reason,
            })?;
            return Ok(&self.buf[start..self.pos]);
        }
        if self.take(2)? != TAG_CID {
            return Err(not_cid);
        }
        let (major, len) = self.head()?;
        if major != MAJOR_BYTES || len == 0 {
            return Err(not_cid);
        }
        let len = usize::try_from(len).map_err(|_| NodeError::Truncated { offset: self.pos })?;
        let body_at = self.pos;
        let body = self.take(len)?;
        // The DAG-CBOR CID form is a 0x00 multibase prefix, then the binary CID.
        if body[0] != 0 {
            return Err(NodeError::BadCid {
                slot,
                offset: body_at,
                reason: "missing 0x00 multibase prefix".into(),
            });
        }
        parse_cid(&body[1..]).map_err(|reason| NodeError::BadCid {
            slot,
            offset: body_at,
            reason,
        })?;
        Ok(&self.buf[start..self.pos])
    }
}

/// Parses a whole binary CID (v0 or v1). Hand-written for speed (the `cid` crate reads through
/// `io::Read` a byte at a time); varints must be minimal, nothing may follow the digest.
fn parse_cid(bytes: &[u8]) -> Result<Cid, String> {
    use unsigned_varint::decode;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    if bytes.len() == 34 && bytes[0] == 0x12 && bytes[1] == 0x20 {
        let mh = multihash::Multihash::<64>::wrap(0x12, &bytes[2..]).map_err(|e| err(&e))?;
        return Cid::new_v0(mh).map_err(|e| err(&e));
    }
    let (version, rest) = decode::u64(bytes).map_err(|e| err(&e))?;
    if version != 1 {
        return Err(format!("unsupported CID version {version}"));
    }
    let (codec, rest) = decode::u64(rest).map_err(|e| err(&e))?;
    let (code, rest) = decode::u64(rest).map_err(|e| err(&e))?;
    let (size, digest) = decode::u64(rest).map_err(|e| err(&e))?;
    if size != digest.len() as u64 {
        return Err(format!(
            "multihash declares {size} digest bytes, {} present",
            digest.len()
        ));
    }
    let mh = multihash::Multihash::<64>::wrap(code, digest).map_err(|e| err(&e))?;
    Ok(Cid::new_v1(codec, mh))
}

/// Parses a whole binary multihash (minimal varints, nothing after the digest).
fn parse_multihash(bytes: &[u8]) -> Result<multihash::Multihash<64>, String> {
    use unsigned_varint::decode;
    let (code, rest) = decode::u64(bytes).map_err(|e| e.to_string())?;
    let (size, digest) = decode::u64(rest).map_err(|e| e.to_string())?;
    if size != digest.len() as u64 {
        return Err(format!(
            "multihash declares {size} digest bytes, {} present",
            digest.len()
        ));
    }
    multihash::Multihash::<64>::wrap(code, digest).map_err(|e| e.to_string())
}

/// How block ids are written into nodes.
///
/// py-hamt stores whatever its CAS returns: `KuboCAS` returns CIDs (tag 42), `InMemoryCAS` the
/// bare 34-byte multihash as a byte string. The same map therefore has a different root under
/// each; pick the one the other side uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdEncoding {
    /// Tag-42 CIDs (KuboCAS, IPFS tools).
    #[default]
    Cid,
    /// The multihash as a CBOR byte string (py-hamt's `InMemoryCAS`).
    Multihash,
}

/// The node encoding of `cid` as an id item under `ids`.
///
/// ```
/// use ipfs_hamt::block::{cid_of, HashAlg, RAW};
/// use ipfs_hamt::node::{encode_id, IdEncoding};
/// let cid = cid_of(RAW, HashAlg::Blake3, b"value-0");
/// assert_eq!(&encode_id(&cid, IdEncoding::Multihash)[..4], &[0x58, 0x22, 0x1e, 0x20]);
/// assert_eq!(&encode_id(&cid, IdEncoding::Cid)[..2], &[0xd8, 0x2a]);
/// ```
pub fn encode_id(cid: &Cid, ids: IdEncoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_id_len(cid, ids));
    encode_id_into(cid, ids, &mut out);
    out
}

/// Appends [`encode_id`]'s output to `out` (a reused buffer: no allocation per insert).
pub fn encode_id_into(cid: &Cid, ids: IdEncoding, out: &mut Vec<u8>) {
    match ids {
        IdEncoding::Cid => encode_cid_into(cid, out),
        IdEncoding::Multihash => {
            // The multihash's bytes written in place (`Multihash::to_bytes` allocates).
            let mh = cid.hash();
            write_head(out, MAJOR_BYTES, mh.encoded_len() as u64);
            write_multihash(mh, out);
        }
    }
}

/// Appends the binary multihash: code and digest size as varints, then the digest.
fn write_multihash(mh: &multihash::Multihash<64>, out: &mut Vec<u8>) {
    let mut h = unsigned_varint::encode::u64_buffer();
    let mut sz = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(mh.code(), &mut h));
    out.extend_from_slice(unsigned_varint::encode::u64(u64::from(mh.size()), &mut sz));
    out.extend_from_slice(mh.digest());
}

/// Length of [`encode_id`]'s output.
fn encoded_id_len(cid: &Cid, ids: IdEncoding) -> usize {
    match ids {
        IdEncoding::Cid => {
            let raw = cid.encoded_len();
            // tag 42, bytes head, 0x00 prefix, CID.
            2 + head_len(raw as u64 + 1) + 1 + raw
        }
        IdEncoding::Multihash => {
            let mh = cid.hash().encoded_len();
            head_len(mh as u64) + mh
        }
    }
}

/// The DAG-CBOR encoding of a CID item: tag 42 around `0x00 || binary CID`.
pub fn encode_cid(cid: &Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_id_len(cid, IdEncoding::Cid));
    encode_cid_into(cid, &mut out);
    out
}

/// Appends [`encode_cid`]'s output to `out`.
fn encode_cid_into(cid: &Cid, out: &mut Vec<u8>) {
    let mh = cid.hash();
    // Binary CID: v0 is the bare multihash; v1 is version, codec, then the multihash. Written
    // by hand: `Cid::to_bytes` allocates and was a tenth of an insert.
    let mut v = unsigned_varint::encode::u64_buffer();
    let mut c = unsigned_varint::encode::u64_buffer();
    let mut h = unsigned_varint::encode::u64_buffer();
    let mut sz = unsigned_varint::encode::u64_buffer();
    let prefix: [&[u8]; 2] = match cid.version() {
        cid::Version::V0 => [&[], &[]],
        cid::Version::V1 => [
            unsigned_varint::encode::u64(1, &mut v),
            unsigned_varint::encode::u64(cid.codec(), &mut c),
        ],
    };
    let code = unsigned_varint::encode::u64(mh.code(), &mut h);
    let size = unsigned_varint::encode::u64(u64::from(mh.size()), &mut sz);
    let raw_len = prefix[0].len() + prefix[1].len() + code.len() + size.len() + mh.digest().len();
    out.extend_from_slice(&TAG_CID);
    write_head(out, MAJOR_BYTES, raw_len as u64 + 1);
    out.push(0);
    for part in prefix.iter().chain([&code, &size]) {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(mh.digest());
}

/// Decodes an id item that [`encode_id`] made or a validated node holds; a bare multihash
/// becomes a CIDv1 with `codec` (the id itself does not say).
fn decode_cid_item(item: &[u8], codec: u64) -> Option<Cid> {
    let mut r = Reader { buf: item, pos: 0 };
    if r.peek_major().ok()? == MAJOR_BYTES {
        let (_, len) = r.head().ok()?;
        let body = r.take(usize::try_from(len).ok()?).ok()?;
        return Some(Cid::new_v1(codec, parse_multihash(body).ok()?));
    }
    if r.take(2).ok()? != TAG_CID {
        return None;
    }
    let (_, len) = r.head().ok()?;
    let body = r.take(usize::try_from(len).ok()?).ok()?;
    parse_cid(body.get(1..)?).ok()
}

/// Canonical DAG-CBOR map key order: shorter keys first, then bytewise.
pub fn canonical_key_cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

// ---------------------------------------------------------------- buckets

/// One bucket entry: a key and the encoded CID item of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The key.
    pub key: &'a str,
    /// The id item (tag-42 CID or multihash byte string), exactly as encoded.
    pub item: &'a [u8],
}

impl Entry<'_> {
    /// The value's CID (a bare multihash id counts as a `raw` block).
    pub fn cid(&self) -> Option<Cid> {
        decode_cid_item(self.item, crate::block::RAW)
    }
}

/// A view of one bucket: its validated DAG-CBOR map bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bucket<'a>(&'a [u8]);

impl std::fmt::Debug for Bucket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|e| (e.key, e.cid())))
            .finish()
    }
}

/// Bytes of a CBOR head for `v`.
fn head_len(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends one bucket entry: the key as a text string, then its id item as encoded.
fn write_entry(out: &mut Vec<u8>, key: &str, item: &[u8]) {
    write_head(out, MAJOR_TEXT, key.len() as u64);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(item);
}

impl<'a> Bucket<'a> {
    /// A view of bucket bytes made by [`Bucket::encode`] or validated by a node decode.
    fn new(bytes: &'a [u8]) -> Self {
        Bucket(bytes)
    }

    /// Encodes entries with distinct keys (sorted here into canonical order). No entries
    /// gives the empty map `a0`, the empty slot.
    pub fn encode(entries: &mut [Entry<'_>]) -> Vec<u8> {
        let size: usize = head_len(entries.len() as u64)
            + entries
                .iter()
                .map(|e| head_len(e.key.len() as u64) + e.key.len() + e.item.len())
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        Self::encode_into(entries, &mut out);
        out
    }

    /// [`Bucket::encode`] into `out` (cleared first), a buffer reused across inserts.
    pub fn encode_into(entries: &mut [Entry<'_>], out: &mut Vec<u8>) {
        entries.sort_unstable_by(|a, b| canonical_key_cmp(a.key.as_bytes(), b.key.as_bytes()));
        out.clear();
        write_head(out, MAJOR_MAP, entries.len() as u64);
        for e in entries.iter() {
            write_entry(out, e.key, e.item);
        }
    }

    /// The encoded map.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        let mut r = Reader {
            buf: self.0,
            pos: 0,
        };
        r.head().map(|(_, n)| n as usize).unwrap_or(0)
    }

    /// True if the bucket has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, in canonical key order.
    pub fn iter(&self) -> BucketIter<'a> {
        let mut r = Reader {
            buf: self.0,
            pos: 0,
        };
        let left = r.head().map(|(_, n)| n).unwrap_or(0);
        BucketIter { r, left }
    }

    /// The entry for `key`.
    pub fn find(&self, key: &str) -> Option<Entry<'a>> {
        for e in self.iter() {
            match canonical_key_cmp(e.key.as_bytes(), key.as_bytes()) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(e),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// This bucket with `key` set to `item`, or `None` if the key is new and the bucket
    /// already holds `max` entries.
    pub fn with_entry(&self, key: &str, item: &[u8], max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.0.len() + key.len() + item.len() + 2);
        self.with_entry_into(key, item, max, &mut out)
            .then_some(out)
    }

    /// [`Bucket::with_entry`] into `out` (cleared first, a buffer reused across inserts);
    /// false (and `out` unspecified) if the key is new and the bucket is full.
    ///
    /// The entries are already in canonical order: the new entry is spliced in at its place
    /// (or replaces the old one) and the other entries' bytes are copied as they are, without
    /// decoding, collecting or sorting them.
    pub fn with_entry_into(&self, key: &str, item: &[u8], max: usize, out: &mut Vec<u8>) -> bool {
        let mut entries = self.iter();
        let body = entries.r.pos;
        let count = entries.left;
        // The byte range the new entry takes the place of: empty for a new key.
        let (cut_start, cut_end) = loop {
            let start = entries.r.pos;
            let Some(e) = entries.next() else {
                break (start, start);
            };
            match canonical_key_cmp(e.key.as_bytes(), key.as_bytes()) {
                Ordering::Less => continue,
                Ordering::Equal => break (start, entries.r.pos),
                Ordering::Greater => break (start, start),
            }
        };
        let replaced = cut_end > cut_start;
        if !replaced && count >= max as u64 {
            return false;
        }
        let (Some(before), Some(after)) = (self.0.get(body..cut_start), self.0.get(cut_end..))
        else {
            return false;
        };
        out.clear();
        write_head(out, MAJOR_MAP, if replaced { count } else { count + 1 });
        out.extend_from_slice(before);
        write_entry(out, key, item);
        out.extend_from_slice(after);
        true
    }

    /// This bucket without `key` (possibly the empty map), or `None` if the key is absent.
    pub fn without(&self, key: &str) -> Option<Vec<u8>> {
        let mut entries: SmallVec<[Entry<'_>; 8]> = self.iter().collect();
        let at = entries.iter().position(|e| e.key == key)?;
        entries.remove(at);
        Some(Bucket::encode(&mut entries))
    }

    /// Validates one bucket map at the reader's position; returns its byte range.
    fn validate(r: &mut Reader<'_>, slot: usize, max: usize) -> Result<(usize, usize), NodeError> {
        let start = r.pos;
        let (_, n) = r.head()?;
        if n as usize > max || n > u64::from(u32::MAX) {
            return Err(NodeError::OversizedBucket { slot, len: n, max });
        }
        let mut prev: Option<&[u8]> = None;
        for _ in 0..n {
            let (major, klen) = r.head()?;
            if major != MAJOR_TEXT {
                return Err(NodeError::KeyNotText { slot });
            }
            let klen = usize::try_from(klen).map_err(|_| NodeError::Truncated { offset: r.pos })?;
            let key = r.take(klen)?;
            if std::str::from_utf8(key).is_err() {
                return Err(NodeError::KeyNotUtf8 { slot });
            }
            if let Some(p) = prev {
                if canonical_key_cmp(p, key) != Ordering::Less {
                    return Err(NodeError::KeyOrder { slot });
                }
            }
            prev = Some(key);
            r.cid_item(slot)?;
        }
        Ok((start, r.pos))
    }
}

/// Iterator over a bucket's entries.
pub struct BucketIter<'a> {
    r: Reader<'a>,
    left: u64,
}

impl<'a> Iterator for BucketIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The bytes were validated when the bucket was built: skip the id without parsing.
        let (_, klen) = self.r.head().ok()?;
        let key = self.r.take(usize::try_from(klen).ok()?).ok()?;
        let key = std::str::from_utf8(key).ok()?;
        let start = self.r.pos;
        if self.r.peek_major().ok()? != MAJOR_BYTES {
            self.r.take(2).ok()?; // tag 42
        }
        let (_, len) = self.r.head().ok()?;
        self.r.take(usize::try_from(len).ok()?).ok()?;
        Some(Entry {
            key,
            item: &self.r.buf[start..self.r.pos],
        })
    }
}

// ---------------------------------------------------------------- nodes

/// A link to a child node.
#[derive(Debug, Clone)]
pub enum Link {
    /// A node already in the store.
    Stored(Cid),
    /// A node changed in memory and not yet written.
    Dirty(Node),
}

/// A non-empty slot, as seen through [`Node::get`].
#[derive(Debug, Clone, Copy)]
pub enum Slot<'a> {
    /// Up to `max_bucket_size` entries.
    Bucket(Bucket<'a>),
    /// A child node.
    Link(&'a Link),
}

/// What a node holds for a non-empty slot.
#[derive(Debug, Clone)]
enum Held {
    /// A bucket's bytes at `off..off+len` of the node buffer.
    Bucket {
        off: u32,
        len: u32,
    },
    Link(Box<Link>),
}

/// A HAMT node: 256 slots, of which only the non-empty ones are held. All bucket bytes of a
/// node live in one buffer, so a million keys cost about their encoded size, not an
/// allocation each.
///
/// Aligned to a cache line: the struct is two lines then, not three, and an insert that
/// reaches a node not touched for a while waits for one memory load less.
#[derive(Debug, Clone, Default)]
#[repr(align(64))]
pub struct Node {
    bitmap: [u64; 4],
    held: Vec<Held>,
    /// For a decoded node: the whole block, shared without a copy; bucket offsets point into
    /// it. Dropped (after copying the buckets into `buf`) on the first change.
    shared: Option<Bytes>,
    /// Bucket encodings of a changed node. Replaced buckets leave garbage behind (so a change
    /// touches only the end of the buffer); it is compacted away when it reaches half.
    buf: Vec<u8>,
    garbage: u32,
}

impl Node {
    /// True if slot `idx` is not empty.
    pub fn has(&self, idx: u8) -> bool {
        self.bitmap[(idx >> 6) as usize] & (1u64 << (idx & 63)) != 0
    }

    /// Position of slot `idx` in the dense vector.
    fn pos(&self, idx: u8) -> usize {
        let word = (idx >> 6) as usize;
        let below: u32 = self.bitmap[..word].iter().map(|w| w.count_ones()).sum();
        let mask = (1u64 << (idx & 63)) - 1;
        (below + (self.bitmap[word] & mask).count_ones()) as usize
    }

    fn bytes(&self) -> &[u8] {
        self.shared.as_deref().unwrap_or(&self.buf)
    }

    fn view<'a>(&'a self, h: &'a Held) -> Slot<'a> {
        match h {
            Held::Bucket { off, len } => {
                let (o, l) = (*off as usize, *len as usize);
                Slot::Bucket(Bucket::new(self.bytes().get(o..o + l).unwrap_or(&[0xa0])))
            }
            Held::Link(l) => Slot::Link(l),
        }
    }

    /// The slot at `idx`, if not empty.
    pub fn get(&self, idx: u8) -> Option<Slot<'_>> {
        if self.has(idx) {
            self.held.get(self.pos(idx)).map(|h| self.view(h))
        } else {
            None
        }
    }

    /// The link at `idx` for changing, if the slot holds a link.
    pub fn link_mut(&mut self, idx: u8) -> Option<&mut Link> {
        if !self.has(idx) {
            return None;
        }
        let p = self.pos(idx);
        match self.held.get_mut(p) {
            Some(Held::Link(l)) => Some(l),
            _ => None,
        }
    }

    /// The non-empty slots with their indices, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, Slot<'_>)> {
        let idxs = (0..=255u8).filter(|&i| self.has(i));
        idxs.zip(self.held.iter().map(|h| self.view(h)))
    }

    /// The links, in slot order, for changing.
    pub fn links_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.held.iter_mut().filter_map(|h| match h {
            Held::Link(l) => Some(&mut **l),
            Held::Bucket { .. } => None,
        })
    }

    /// True if every slot is empty.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Copies the live bucket bytes of `src` into a new buffer, renumbering the offsets.
    fn compacted(src: &[u8], held: &mut [Held]) -> Vec<u8> {
        let mut v = Vec::with_capacity(src.len());
        for h in held {
            if let Held::Bucket { off, len } = h {
                let (o, l) = (*off as usize, *len as usize);
                let at = v.len() as u32;
                v.extend_from_slice(src.get(o..o + l).unwrap_or(&[0xa0]));
                *off = at;
            }
        }
        v
    }

    /// The owned bucket buffer, copying only the bucket bytes out of a shared block.
    fn owned(&mut self) -> &mut Vec<u8> {
        if let Some(block) = self.shared.take() {
            self.buf = Self::compacted(&block, &mut self.held);
            self.garbage = 0;
        }
        &mut self.buf
    }

    /// Marks the bucket bytes of slot `p` (if any) as garbage.
    fn release(&mut self, p: usize) {
        if let Some(Held::Bucket { len, .. }) = self.held.get(p) {
            let len = *len;
            self.owned();
            self.garbage += len;
        }
    }

    /// Drops the garbage once it is half the buffer.
    fn maybe_compact(&mut self) {
        if self.garbage as usize > 256 && self.garbage as usize * 2 > self.buf.len() {
            self.buf = Self::compacted(&self.buf, &mut self.held);
            self.garbage = 0;
        }
    }

    /// Stores `held` at slot `idx`; the slot's old bucket bytes must already be released.
    ///
    /// Inlined: called out of line, `held` went through the stack with a store-to-load
    /// forwarding failure, so the insert waited for the bucket bytes just appended to a cold
    /// cache line to reach memory (a third of `insert_pointer`'s time in `perf`).
    #[inline(always)]
    fn put(&mut self, idx: u8, held: Held) {
        let p = self.pos(idx);
        if self.has(idx) {
            self.held[p] = held;
        } else {
            self.bitmap[(idx >> 6) as usize] |= 1u64 << (idx & 63);
            self.held.insert(p, held);
        }
    }

    /// Sets slot `idx` to the bucket `bytes` (from [`Bucket::encode`]); the empty map empties
    /// the slot.
    pub fn set_bucket(&mut self, idx: u8, bytes: &[u8]) {
        if Bucket::new(bytes).is_empty() {
            self.clear(idx);
            return;
        }
        let len = bytes.len() as u32;
        if self.has(idx) {
            let p = self.pos(idx);
            // Same size (a changed pointer): overwrite in place.
            if let Some(Held::Bucket { len: old, .. }) = self.held.get(p) {
                if *old == len {
                    self.owned();
                    if let Some(Held::Bucket { off, .. }) = self.held.get(p) {
                        let o = *off as usize;
                        if let Some(dst) = self.buf.get_mut(o..o + len as usize) {
                            dst.copy_from_slice(bytes);
                            return;
                        }
                    }
                }
            }
            self.release(p);
        }
        let buf = self.owned();
        let off = buf.len() as u32;
        buf.extend_from_slice(bytes);
        self.put(idx, Held::Bucket { off, len });
        self.maybe_compact();
    }

    /// Sets slot `idx` to a link.
    pub fn set_link(&mut self, idx: u8, link: Link) {
        if self.has(idx) {
            let p = self.pos(idx);
            self.release(p);
        }
        self.put(idx, Held::Link(Box::new(link)));
        self.maybe_compact();
    }

    /// Empties slot `idx`.
    pub fn clear(&mut self, idx: u8) {
        if self.has(idx) {
            let p = self.pos(idx);
            self.release(p);
            self.held.remove(p);
            self.bitmap[(idx >> 6) as usize] &= !(1u64 << (idx & 63));
            self.maybe_compact();
        }
    }

    /// Drops garbage and spare capacity (before a node is kept for long, e.g. in a cache).
    pub fn shrink(&mut self) {
        if self.garbage > 0 {
            self.buf = Self::compacted(&self.buf, &mut self.held);
            self.garbage = 0;
        }
        self.buf.shrink_to_fit();
        self.held.shrink_to_fit();
    }

    /// If this node holds no links and at most `max` entries, the bucket bytes that replace
    /// it in its parent (the empty map when it is empty). This is py-hamt's delete collapse.
    pub fn collapse(&self, max: usize) -> Option<Vec<u8>> {
        let mut entries: SmallVec<[Entry<'_>; 8]> = SmallVec::new();
        for (_, slot) in self.iter() {
            match slot {
                Slot::Link(_) => return None,
                Slot::Bucket(b) => {
                    entries.extend(b.iter());
                    if entries.len() > max {
                        return None;
                    }
                }
            }
        }
        Some(Bucket::encode(&mut entries))
    }

    /// Approximate memory held, for cache accounting.
    pub fn weight(&self) -> u64 {
        let links = self
            .held
            .iter()
            .filter(|h| matches!(h, Held::Link(_)))
            .count();
        (64 + self.bytes().len() + self.held.len() * 16 + links * 128) as u64
    }

    /// Decodes and validates a node block. `max_bucket` bounds bucket sizes.
    pub fn decode(data: Bytes, max_bucket: usize) -> Result<Node, NodeError> {
        let mut r = Reader { buf: &data, pos: 0 };
        let (major, n) = r.head()?;
        if major != MAJOR_ARRAY {
            return Err(NodeError::NotAnArray { major });
        }
        if n != SLOTS as u64 {
            return Err(NodeError::WrongSlotCount(n));
        }
        let mut bitmap = [0u64; 4];
        let mut held = Vec::new();
        for slot in 0..SLOTS {
            match r.peek_major()? {
                MAJOR_MAP => {
                    let (start, end) = Bucket::validate(&mut r, slot, max_bucket)?;
                    if end - start > 1 {
                        bitmap[slot >> 6] |= 1u64 << (slot & 63);
                        held.push(Held::Bucket {
                            off: start as u32,
                            len: (end - start) as u32,
                        });
                    }
                }
                MAJOR_ARRAY => {
                    let (_, len) = r.head()?;
                    if len != 1 {
                        return Err(NodeError::BadLinkLength { slot, len });
                    }
                    let item = r.cid_item(slot)?;
                    let cid = decode_cid_item(item, crate::block::DAG_CBOR).ok_or(
                        NodeError::NotACid {
                            slot,
                            offset: r.pos,
                        },
                    )?;
                    bitmap[slot >> 6] |= 1u64 << (slot & 63);
                    held.push(Held::Link(Box::new(Link::Stored(cid))));
                }
                major => return Err(NodeError::WrongSlotType { slot, major }),
            }
        }
        if r.pos != data.len() {
            return Err(NodeError::TrailingBytes {
                offset: r.pos,
                count: data.len() - r.pos,
            });
        }
        if u32::try_from(data.len()).is_err() {
            return Err(NodeError::TrailingBytes {
                offset: u32::MAX as usize,
                count: data.len() - u32::MAX as usize,
            });
        }
        Ok(Node {
            bitmap,
            held,
            shared: Some(data),
            buf: Vec::new(),
            garbage: 0,
        })
    }

    /// Bytes of the encoded node with tag-42 CID links, without encoding it (a dirty child
    /// counts as a 36-byte CID, the size of every CID this crate makes).
    pub fn encoded_len(&self) -> usize {
        self.encoded_len_with(IdEncoding::Cid)
    }

    /// [`Node::encoded_len`] with links written as `ids`.
    pub fn encoded_len_with(&self, ids: IdEncoding) -> usize {
        let filled: usize = self
            .held
            .iter()
            .map(|h| match h {
                Held::Bucket { len, .. } => *len as usize,
                Held::Link(l) => {
                    let id = match &**l {
                        Link::Stored(cid) => encoded_id_len(cid, ids),
                        Link::Dirty(_) => match ids {
                            IdEncoding::Cid => 41,
                            IdEncoding::Multihash => 36,
                        },
                    };
                    // 0x81, then the id.
                    1 + id
                }
            })
            .sum();
        3 + (SLOTS - self.held.len()) + filled
    }

    /// Encodes the node with links written as `ids`; dirty children take their CIDs, in slot
    /// order, from `child_cids`.
    pub fn encode_with(
        &self,
        child_cids: &mut dyn Iterator<Item = Cid>,
        ids: IdEncoding,
    ) -> Result<Vec<u8>, NodeError> {
        let mut out = Vec::with_capacity(self.encoded_len_with(ids));
        write_head(&mut out, MAJOR_ARRAY, SLOTS as u64);
        let mut slots = self.held.iter();
        for idx in 0..=255u8 {
            if !self.has(idx) {
                out.push(0xa0);
                continue;
            }
            match slots.next().map(|h| self.view(h)) {
                Some(Slot::Bucket(b)) => out.extend_from_slice(b.as_bytes()),
                Some(Slot::Link(link)) => {
                    let cid = match link {
                        Link::Stored(cid) => *cid,
                        Link::Dirty(_) => child_cids.next().ok_or(NodeError::DirtyChild)?,
                    };
                    out.push(0x81);
                    out.extend_from_slice(&encode_id(&cid, ids));
                }
                None => out.push(0xa0),
            }
        }
        Ok(out)
    }

    /// Encodes a node whose children are all stored.
    pub fn encode_stored(&self) -> Result<Vec<u8>, NodeError> {
        self.encode_with(&mut std::iter::empty(), IdEncoding::Cid)
    }

    /// The CIDs this node references, in encoding order (slot order, bucket key order).
    pub fn cids(&self) -> Vec<Cid> {
        let mut out = Vec::new();
        for (_, slot) in self.iter() {
            match slot {
                Slot::Bucket(b) => out.extend(b.iter().filter_map(|e| e.cid())),
                Slot::Link(Link::Stored(c)) => out.push(*c),
                Slot::Link(Link::Dirty(_)) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
