//! One run file: index entries sorted by (hash of the key, key), written once and never
//! changed, followed by the fence index and bloom filter that are kept in memory.
//!
//! ```text
//! "ipfs-hamt run v1" (16 bytes)
//! entries:  h u64 | tombstone bit 0x80 + key length u8 | key | location (20 bytes)
//! fences:   per group of >= GROUP entries: first h u64 | offset u64
//! bloom:    words u64
//! trailer:  entries u64 | groups u64 | bloom blocks u64 | end of entries u64 |
//!           xxh3-64 of fences and bloom u64 | "runfoot1"
//! ```
//! (little endian). Entries with equal `h` never straddle two groups, so a lookup reads one
//! group. Damage is caught by the footer's checksum, by the entry parser (lengths checked) and,
//! for a location that is wrong yet well formed, by the store's verification of every read.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::bloom::Bloom;
use crate::store::disk::error::{corrupt, io_err};
use crate::store::disk::index::Loc;
use crate::store::disk::segment::MAX_KEY;
use crate::store::StoreError;

const MAGIC: &[u8; 16] = b"ipfs-hamt run v1";
const FOOT_MAGIC: &[u8; 8] = b"runfoot1";
const TRAILER: u64 = 48;
/// Entries per fence group (at least; a group ends where `h` changes).
const GROUP: u32 = 32;
const TOMBSTONE: u8 = 0x80;
/// Bytes of an encoded location.
const LOC: usize = 20;
/// Bytes of footer read or written at a time (a multiple of 16).
const FOOTER_PIECE: usize = 1 << 20;

/// A damaged run, and what to do about it.
fn damaged(path: &Path, what: &str) -> StoreError {
    corrupt(
        path,
        format_args!(
            "damaged index run: {what} (the block data is in the segment files: move the \
             store's index directory away and reopen to rebuild the index by a scan; pins must \
             then be added again)"
        ),
    )
}

/// The hash that orders and filters entries.
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// The file name of run `id`.
pub fn file_name(id: u64) -> String {
    crate::store::disk::layout::numbered_name(id, 16, "run")
}

/// The run id a file name denotes, if it is one.
pub fn parse_name(name: &str) -> Option<u64> {
    crate::store::disk::layout::parse_numbered(name, 16, "run")
}

/// What a run says about a key: where it is, or that it was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Present at this location.
    At(Loc),
    /// Removed (shadows older runs).
    Removed,
}

/// A key (multihash bytes, at most [`MAX_KEY`]) held inline: entries in memory carry their
/// key in place, so a flush writes its run from one array without a separately allocated
/// (and cache-missing) key per entry, and merges read entries without allocating.
#[derive(Clone, Copy)]
pub struct Key {
    len: u8,
    bytes: [u8; MAX_KEY],
}

impl Key {
    /// `key`, if it is 1 to [`MAX_KEY`] bytes long.
    pub fn new(key: &[u8]) -> Option<Key> {
        if key.is_empty() || key.len() > MAX_KEY {
            return None;
        }
        let mut bytes = [0u8; MAX_KEY];
        bytes[..key.len()].copy_from_slice(key);
        Some(Key {
            len: key.len() as u8,
            bytes,
        })
    }

    /// The bytes of `mh`, if they fit (1 to [`MAX_KEY`] bytes), without allocating.
    pub fn of_multihash<const S: usize>(mh: &multihash::Multihash<S>) -> Option<Key> {
        let mut bytes = [0u8; MAX_KEY];
        let mut rest: &mut [u8] = &mut bytes;
        let len = mh.write(&mut rest).ok()?;
        (len > 0 && len <= MAX_KEY).then_some(Key {
            len: len as u8,
            bytes,
        })
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:02x?})", &**self)
    }
}

/// One entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// [`key_hash`] of the key.
    pub h: u64,
    /// The key (multihash bytes).
    pub key: Key,
    /// Its value.
    pub found: Found,
}

impl Entry {
    /// The order of entries in a run.
    pub fn order(&self) -> (u64, &[u8]) {
        (self.h, &self.key[..])
    }
}

/// An open run: its file and what lookups need in memory.
pub struct Run {
    /// Its id (runs with higher ids are newer).
    pub id: u64,
    path: PathBuf,
    file: File,
    /// Number of entries.
    pub entries: u64,
    fence_h: Vec<u64>,
    fence_off: Vec<u64>,
    entries_end: u64,
    bloom: Bloom,
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Parses the entry at the start of `b`; returns it and its length, `None` if malformed.
fn parse(b: &[u8]) -> Option<(Entry, usize)> {
    if b.len() < 9 {
        return None;
    }
    let h = read_u64(b, 0);
    let klen = usize::from(b[8] & !TOMBSTONE);
    let len = 9 + klen + LOC;
    if klen == 0 || klen > MAX_KEY || b.len() < len {
        return None;
    }
    let key = Key::new(&b[9..9 + klen])?;
    let found = if b[8] & TOMBSTONE != 0 {
        Found::Removed
    } else {
        Found::At(Loc::decode(&b[9 + klen..len])?)
    };
    Some((Entry { h, key, found }, len))
}

impl Run {
    /// Opens run `id` in `dir`, loading its fences and bloom filter.
    pub fn open(dir: &Path, id: u64) -> Result<Run, StoreError> {
        let path = dir.join(file_name(id));
        let file = File::open(&path).map_err(io_err(&path, "opening"))?;
        let len = file
            .metadata()
            .map_err(io_err(&path, "reading the size of"))?
            .len();
        let bad = |what: &str| damaged(&path, what);
        if len < MAGIC.len() as u64 + TRAILER {
            return Err(bad("too short"));
        }
        let mut head = [0u8; 16];
        file.read_exact_at(&mut head, 0)
            .map_err(io_err(&path, "reading"))?;
        let mut t = [0u8; TRAILER as usize];
        file.read_exact_at(&mut t, len - TRAILER)
            .map_err(io_err(&path, "reading"))?;
        if &head != MAGIC || &t[40..] != FOOT_MAGIC {
            return Err(bad("not a run file (magic)"));
        }
        let (entries, groups, blocks, entries_end, sum) = (
            read_u64(&t, 0),
            read_u64(&t, 8),
            read_u64(&t, 16),
            read_u64(&t, 24),
            read_u64(&t, 32),
        );
        // The sizes must add up to the file's length before any of them sizes a buffer.
        let footer = groups
            .checked_mul(16)
            .and_then(|f| blocks.checked_mul(64).and_then(|b| b.checked_add(f)));
        let fits = footer
            .and_then(|f| f.checked_add(entries_end))
            .and_then(|s| s.checked_add(TRAILER));
        if fits != Some(len) || entries_end < MAGIC.len() as u64 || blocks == 0 {
            return Err(bad("its sizes do not match the file"));
        }
        // Every entry takes at least 9 + 1 + LOC bytes; a group holds at least one.
        let entry_bytes = entries_end - MAGIC.len() as u64;
        if entries
            .checked_mul(10 + LOC as u64)
            .is_none_or(|b| b > entry_bytes)
            || groups > entries
            || (entries > 0) != (groups > 0)
        {
            return Err(bad("its entry count does not match the file"));
        }
        // Read in pieces straight into the fences and filter: a run of 10^8 entries has a
        // ~225 MB footer, which a whole-footer buffer would hold twice over.
        let (mut fence_h, mut fence_off) = (
            Vec::with_capacity(groups as usize),
            Vec::with_capacity(groups as usize),
        );
        let mut words = Vec::with_capacity((blocks * 8) as usize);
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; FOOTER_PIECE];
        let fences_end = entries_end + groups * 16;
        let mut at = entries_end;
        while at < len - TRAILER {
            // A multiple of 16 bytes, so a fence never straddles two pieces.
            let n = (FOOTER_PIECE as u64).min(len - TRAILER - at) as usize;
            let piece = &mut buf[..n];
            file.read_exact_at(piece, at)
                .map_err(io_err(&path, "reading"))?;
            hasher.update(piece);
            for (i, w) in piece.chunks_exact(8).enumerate() {
                let (v, pos) = (read_u64(w, 0), at + 8 * i as u64);
                if pos >= fences_end {
                    words.push(v);
                } else if (pos - entries_end) % 16 == 0 {
                    fence_h.push(v);
                } else {
                    fence_off.push(v);
                }
            }
            at += n as u64;
        }
        if hasher.digest() != sum {
            return Err(bad("footer checksum mismatch"));
        }
        let sorted = fence_h.windows(2).all(|w| w[0] < w[1])
            && fence_off.windows(2).all(|w| w[0] < w[1])
            && fence_off
                .iter()
                .all(|&o| o >= MAGIC.len() as u64 && o < entries_end);
        if !sorted {
            return Err(bad("fence index out of order"));
        }
        let bloom = Bloom::from_words(words).ok_or_else(|| bad("bloom filter"))?;
        Ok(Run {
            id,
            path,
            file,
            entries,
            fence_h,
            fence_off,
            entries_end,
            bloom,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts loading what a lookup of hash `h` reads first (its bloom filter's block).
    pub fn prefetch(&self, h: u64) {
        self.bloom.prefetch(h);
    }

    /// What this run says about `key` (hash `h`).
    pub fn get(&self, h: u64, key: &[u8]) -> Result<Option<Found>, StoreError> {
        if !self.bloom.may_contain(h) {
            return Ok(None);
        }
        let g = self.fence_h.partition_point(|&f| f <= h);
        if g == 0 {
            return Ok(None);
        }
        let start = self.fence_off[g - 1];
        let end = self.fence_off.get(g).copied().unwrap_or(self.entries_end);
        let mut buf = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(io_err(&self.path, "reading"))?;
        let mut at = 0;
        while at < buf.len() {
            let (e, n) = parse(&buf[at..]).ok_or_else(|| damaged(&self.path, "malformed entry"))?;
            if e.h == h && *e.key == *key {
                return Ok(Some(e.found));
            }
            if e.h > h {
                break;
            }
            at += n;
        }
        Ok(None)
    }

    /// Reads the entries in order.
    pub fn reader(&self) -> Result<RunReader, StoreError> {
        let mut f = self
            .file
            .try_clone()
            .map_err(io_err(&self.path, "opening"))?;
        f.seek(SeekFrom::Start(MAGIC.len() as u64))
            .map_err(io_err(&self.path, "reading"))?;
        Ok(RunReader {
            path: self.path.clone(),
            inner: BufReader::with_capacity(1 << 20, f.take(self.entries_end - MAGIC.len() as u64)),
        })
    }
}

/// A run's entries, in order.
pub struct RunReader {
    path: PathBuf,
    inner: BufReader<std::io::Take<File>>,
}

impl RunReader {
    /// The next entry, `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, StoreError> {
        let mut b = [0u8; 9 + MAX_KEY + LOC];
        match self.inner.read_exact(&mut b[..9]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_err(&self.path, "reading")(e)),
        }
        let klen = usize::from(b[8] & !TOMBSTONE);
        let bad = || damaged(&self.path, "malformed entry");
        if klen == 0 || klen > MAX_KEY {
            return Err(bad());
        }
        let len = 9 + klen + LOC;
        self.inner.read_exact(&mut b[9..len]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad()
            } else {
                io_err(&self.path, "reading")(e)
            }
        })?;
        parse(&b[..len]).map(|(e, _)| Some(e)).ok_or_else(bad)
    }
}

/// Writes a new run; entries must come in order.
pub struct RunWriter {
    id: u64,
    dir: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    off: u64,
    entries: u64,
    in_group: u32,
    last: Option<(u64, Key)>,
    fence_h: Vec<u64>,
    fence_off: Vec<u64>,
    bloom: Bloom,
}

impl RunWriter {
    /// Starts run `id` in `dir`, for at most `capacity` entries (sizes the filter).
    pub fn create(dir: &Path, id: u64, capacity: u64) -> Result<RunWriter, StoreError> {
        let path = dir.join(file_name(id));
        // Read as well: the finished run is looked up through the same handle.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path, "creating"))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        out.write_all(MAGIC).map_err(io_err(&path, "writing"))?;
        let fences = usize::try_from(capacity / u64::from(GROUP) + 1).unwrap_or(0);
        Ok(RunWriter {
            id,
            dir: dir.to_path_buf(),
            path,
            out,
            off: MAGIC.len() as u64,
            entries: 0,
            in_group: 0,
            last: None,
            // Sized once: doubling a 10^8-entry run's fences would copy them as they grow.
            fence_h: Vec::with_capacity(fences),
            fence_off: Vec::with_capacity(fences),
            bloom: Bloom::for_keys(capacity),
        })
    }

    /// Appends an entry; its (h, key) must be above the previous one's.
    pub fn push(&mut self, e: &Entry) -> Result<(), StoreError> {
        if e.key.is_empty() || e.key.len() > MAX_KEY {
            return Err(corrupt(&self.path, "an index key has a bad length"));
        }
        let new_h = match &self.last {
            Some((h, k)) if (*h, &**k) >= e.order() => {
                return Err(corrupt(&self.path, "index entries out of order"));
            }
            Some((h, _)) => *h != e.h,
            None => true,
        };
        if self.fence_h.is_empty() || (self.in_group >= GROUP && new_h) {
            self.fence_h.push(e.h);
            self.fence_off.push(self.off);
            self.in_group = 0;
        }
        let mut b = [0u8; 9 + MAX_KEY + LOC];
        b[..8].copy_from_slice(&e.h.to_le_bytes());
        let klen = e.key.len();
        b[9..9 + klen].copy_from_slice(&e.key);
        match e.found {
            Found::At(loc) => {
                b[8] = klen as u8;
                b[9 + klen..9 + klen + LOC].copy_from_slice(&loc.encode());
            }
            Found::Removed => b[8] = klen as u8 | TOMBSTONE,
        }
        let len = 9 + klen + LOC;
        self.out
            .write_all(&b[..len])
            .map_err(io_err(&self.path, "writing"))?;
        self.off += len as u64;
        self.entries += 1;
        self.in_group += 1;
        self.bloom.insert(e.h);
        self.last = Some((e.h, e.key));
        Ok(())
    }

    /// Number of entries pushed.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Writes the footer, makes the file durable (and its name) and opens it.
    pub fn finish(mut self) -> Result<Run, StoreError> {
        // Streamed through a small buffer (a whole-footer copy would be ~225 MB at 10^8
        // entries, on top of the filter itself).
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut piece = Vec::with_capacity(FOOTER_PIECE);
        let fences = self.fence_h.iter().zip(&self.fence_off);
        let words = fences
            .flat_map(|(h, o)| [*h, *o])
            .chain(self.bloom.words().iter().copied());
        let w = |e| io_err(&self.path, "writing")(e);
        for v in words {
            piece.extend_from_slice(&v.to_le_bytes());
            if piece.len() == FOOTER_PIECE {
                hasher.update(&piece);
                self.out.write_all(&piece).map_err(w)?;
                piece.clear();
            }
        }
        hasher.update(&piece);
        self.out.write_all(&piece).map_err(w)?;
        let mut t = Vec::with_capacity(TRAILER as usize);
        for v in [
            self.entries,
            self.fence_h.len() as u64,
            self.bloom.blocks(),
            self.off,
            hasher.digest(),
        ] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(FOOT_MAGIC);
        self.out.write_all(&t).map_err(w)?;
        let f = self.out.into_inner().map_err(|e| w(e.into_error()))?;
        f.sync_all().map_err(io_err(&self.path, "syncing"))?;
        crate::store::disk::segment::sync_dir(&self.dir);
        Ok(Run {
            id: self.id,
            path: self.path,
            file: f,
            entries: self.entries,
            fence_h: self.fence_h,
            fence_off: self.fence_off,
            entries_end: self.off,
            bloom: self.bloom,
        })
    }
}
