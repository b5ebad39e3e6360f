//! Segment files: block records appended once, never rewritten in place.
//!
//! A segment starts with a 16-byte file header ([`FILE_MAGIC`]), then records:
//!
//! ```text
//! magic "HBK1" | data_len u32 | key_len u16 | 0u16 | xxh3-64(key ‖ data) u64 | key | data
//! ```
//! (little endian). The key is the block's multihash bytes, so the index can be rebuilt by a
//! scan, and the checksum tells a whole record from a torn or damaged one.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::io_err;
use crate::store::StoreError;

/// First bytes of every segment file.
pub const FILE_MAGIC: &[u8; 16] = b"ipfs-hamt seg v1";
/// First bytes of every record.
const RECORD_MAGIC: &[u8; 4] = b"HBK1";
/// Size of a record header.
pub const HEADER: u64 = 20;
/// Longest multihash accepted as a key (code, length varints and a 64-byte digest).
pub const MAX_KEY: usize = 80;
/// A segment is closed once it holds this much; the next record starts a new one.
pub const ROLL_AT: u64 = 1 << 30;

/// The file name of segment `id`.
pub fn file_name(id: u32) -> String {
    super::layout::numbered_name(id.into(), 8, "seg")
}

/// The segment id a file name denotes, if it is one.
pub fn parse_name(name: &str) -> Option<u32> {
    super::layout::parse_numbered(name, 8, "seg").and_then(|id| u32::try_from(id).ok())
}

/// Every segment id in `dir`, ascending.
pub fn list(dir: &Path) -> Result<Vec<u32>, StoreError> {
    let mut ids = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_err(dir, "listing segments in"))?;
    for e in entries {
        let e = e.map_err(io_err(dir, "listing segments in"))?;
        if let Some(id) = e.file_name().to_str().and_then(parse_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn checksum(key: &[u8], data: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(key);
    h.update(data);
    h.digest()
}

/// Appends the record of (`key`, `data`) to `out`.
pub fn encode(out: &mut Vec<u8>, key: &[u8], data: &[u8]) {
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&checksum(key, data).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(data);
}

/// A record's size on disk.
pub fn record_len(key_len: usize, data_len: usize) -> u64 {
    HEADER + key_len as u64 + data_len as u64
}

/// A parsed record header.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Length of the block data.
    pub data_len: u32,
    /// Length of the key.
    pub key_len: u16,
    /// The stored checksum.
    pub sum: u64,
}

impl Header {
    /// Parses a header; None if it is not one.
    pub fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER as usize || &b[..4] != RECORD_MAGIC || b[10..12] != [0, 0] {
            return None;
        }
        let data_len = u32::from_le_bytes(b[4..8].try_into().ok()?);
        let key_len = u16::from_le_bytes(b[8..10].try_into().ok()?);
        let sum = u64::from_le_bytes(b[12..20].try_into().ok()?);
        (key_len > 0 && usize::from(key_len) <= MAX_KEY).then_some(Header {
            data_len,
            key_len,
            sum,
        })
    }
    /// The whole record's size.
    pub fn record_len(&self) -> u64 {
        record_len(usize::from(self.key_len), self.data_len as usize)
    }
    /// Whether `key` and `data` are what this header promised.
    pub fn check(&self, key: &[u8], data: &[u8]) -> bool {
        checksum(key, data) == self.sum
    }
}

/// An open segment file.
#[derive(Debug)]
pub struct Segment {
    /// Its id.
    pub id: u32,
    /// Its path, for messages.
    pub path: PathBuf,
    /// The file.
    pub file: File,
}

impl Segment {
    /// Opens segment `id` in `dir` for reading and writing, checking its file header.
    pub fn open(dir: &Path, id: u32) -> Result<Segment, StoreError> {
        let path = dir.join(file_name(id));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "opening segment"))?;
        let mut magic = [0u8; 16];
        match file.read_exact_at(&mut magic, 0) {
            Ok(()) if &magic == FILE_MAGIC => {}
            Ok(()) => {
                return Err(StoreError::Corrupt(format!(
                    "{} is not an ipfs-hamt segment (bad file header)",
                    path.display()
                )))
            }
            // A crash right after creating it, before its header reached the disk.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                file.write_all_at(FILE_MAGIC, 0)
                    .map_err(io_err(&path, "writing segment header of"))?;
            }
            Err(e) => return Err(io_err(&path, "reading segment")(e)),
        }
        Ok(Segment { id, path, file })
    }

    /// Creates segment `id` in `dir` (made durable by the next sync of the segment and dir).
    pub fn create(dir: &Path, id: u32) -> Result<Segment, StoreError> {
        let path = dir.join(file_name(id));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path, "creating segment"))?;
        file.write_all_at(FILE_MAGIC, 0)
            .map_err(io_err(&path, "writing segment header of"))?;
        Ok(Segment { id, path, file })
    }

    /// The file's length.
    pub fn len(&self) -> Result<u64, StoreError> {
        Ok(self
            .file
            .metadata()
            .map_err(io_err(&self.path, "reading size of"))?
            .len())
    }

    /// Reads the record at `offset`: (header, key, data), checking the header's lengths against
    /// the file (a damaged length never drives an allocation past the file's end) but not the
    /// checksum. None if the bytes there are not a record header.
    pub fn read_record(
        &self,
        offset: u64,
        file_len: u64,
    ) -> Result<Option<(Header, Vec<u8>)>, StoreError> {
        let mut head = [0u8; HEADER as usize];
        match self.file.read_exact_at(&mut head, offset) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err(&self.path, "reading segment")(e)),
        }
        let Some(h) = Header::parse(&head) else {
            return Ok(None);
        };
        if offset.saturating_add(h.record_len()) > file_len {
            return Ok(None);
        }
        let mut body = vec![0u8; (h.record_len() - HEADER) as usize];
        self.file
            .read_exact_at(&mut body, offset + HEADER)
            .map_err(io_err(&self.path, "reading segment"))?;
        Ok(Some((h, body)))
    }

    /// Reads only the header and key of the record at `offset` (for scans that skip data).
    pub fn read_key(
        &self,
        offset: u64,
        file_len: u64,
    ) -> Result<Option<(Header, Vec<u8>)>, StoreError> {
        let mut buf = [0u8; HEADER as usize + MAX_KEY];
        let want = (file_len.saturating_sub(offset)).min(buf.len() as u64) as usize;
        if want < HEADER as usize {
            return Ok(None);
        }
        self.file
            .read_exact_at(&mut buf[..want], offset)
            .map_err(io_err(&self.path, "reading segment"))?;
        let Some(h) = Header::parse(&buf[..want]) else {
            return Ok(None);
        };
        let key_end = HEADER as usize + usize::from(h.key_len);
        if key_end > want || offset.saturating_add(h.record_len()) > file_len {
            return Ok(None);
        }
        Ok(Some((h, buf[HEADER as usize..key_end].to_vec())))
    }
}

/// Syncs a directory so that new or removed entries in it are durable (best effort where the
/// platform cannot).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert_eq!(parse_name("00000001.seg"), Some(1));
        assert_eq!(parse_name("1.seg"), None);
        assert_eq!(parse_name("0000000a.seg"), None);
        assert_eq!(parse_name("00000001.tmp"), None);
    }

    #[test]
    fn record_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 1).unwrap();
        let mut buf = Vec::new();
        encode(&mut buf, b"key", b"some data");
        seg.file.write_all_at(&buf, 16).unwrap();
        let len = seg.len().unwrap();
        let (h, body) = seg.read_record(16, len).unwrap().unwrap();
        assert_eq!(&body[..3], b"key");
        assert!(h.check(&body[..3], &body[3..]));
        assert!(!h.check(&body[..3], b"some dataX"));
        let (_, key) = seg.read_key(16, len).unwrap().unwrap();
        assert_eq!(key, b"key");
        // Cut short: not a record.
        assert!(seg.read_record(16, len - 1).unwrap().is_none());
        assert!(seg.read_record(17, len).unwrap().is_none());
        // A foreign file.
        std::fs::write(dir.path().join(file_name(2)), b"0123456789abcdefXX").unwrap();
        assert!(matches!(
            Segment::open(dir.path(), 2),
            Err(StoreError::Corrupt(_))
        ));
    }
}
