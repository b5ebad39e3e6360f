//! A block store backed by one CAR file (CARv1 or CARv2), and a CAR exporter.
//!
//! Why a CAR store: a CAR is the interchange format for IPFS DAGs (Kubo imports and exports
//! it, the golden py-hamt data is shipped as CARs). [`CarStore::open`] scans the file once and
//! keeps only an index `multihash -> (offset, length)`; block bytes stay on disk and are read
//! on demand with positioned reads, so stores far larger than memory can be served and
//! concurrent readers never contend on a file cursor. Because the bytes come from outside the
//! process, **every block is verified against its CID** before [`BlockStore::get`] returns it,
//! and every malformed input (truncated section, varint overflow, bad CID, bad header, length
//! fields pointing past the end of the file) is reported as [`StoreError::Corrupt`] naming what
//! is wrong and at which offset. No length field read from the file is trusted for an
//! allocation before it has been checked against the file size.
//!
//! Writing: [`CarStore::create`] starts a CARv1 whose header holds a *placeholder* root of the
//! length of a CIDv1 dag-cbor/blake3-256 (the roots this crate makes). [`BlockStore::put_many`]
//! appends one section per new block (blocks already present are skipped), and
//! [`CarStore::finish`] writes the real header `{roots: [root], version: 1}`: in place when its
//! encoded length equals the placeholder's, otherwise by rewriting the file through a temporary
//! file renamed over the original (correctness over speed). Until `finish` the file is a valid
//! CAR whose root is the placeholder.
//!
//! Export: [`write_car`] streams a CARv1 of everything reachable from a root, in the golden
//! order (pre-order depth-first search following every CID in dag-cbor and dag-pb blocks in
//! encoding order, each block once).
//!
//! File I/O is synchronous (positioned reads and writes on a local file); the async methods
//! do not yield while reading a block.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;
use multihash::Multihash;

use super::{BlockStore, StoreError};
use crate::block::{verify, Block, BLAKE3_CODE, DAG_CBOR, DAG_PB, IDENTITY_CODE};

/// The 11 bytes that open a CARv2 file (a CARv1 header `{version: 2}`).
const V2_PRAGMA: [u8; 11] = [
    0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02,
];
/// Size of the CARv2 header that follows the pragma.
const V2_HEADER_LEN: u64 = 40;
/// Largest CARv1 header we accept.
const MAX_HEADER_LEN: u64 = 1 << 20;
/// Largest section (CID + block) we accept: far above any IPFS block limit.
const MAX_SECTION_LEN: u64 = 1 << 32;
/// Longest CID bytes we parse: four 9-byte varints and a 64-byte digest.
const MAX_CID_LEN: usize = 4 * 9 + 64;
/// Longest multiformats varint.
const MAX_VARINT_LEN: usize = 9;
/// Size of the read-ahead buffer used while scanning.
const SCAN_BUF: usize = 64 * 1024;

fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

/// Where a block lives in the file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    cid: Cid,
    /// Offset of the block bytes (after the CID).
    offset: u64,
    /// Length of the block bytes.
    len: u64,
}

#[derive(Debug)]
struct State {
    file: File,
    roots: Vec<Cid>,
    /// Blocks in file order (first occurrence of each multihash).
    entries: Vec<Entry>,
    /// Multihash -> position in `entries`.
    index: HashMap<Multihash<64>, usize>,
}

impl State {
    fn lookup(&self, cid: &Cid) -> Option<Entry> {
        self.index
            .get(cid.hash())
            .and_then(|&i| self.entries.get(i))
            .copied()
    }
}

/// Bookkeeping of a writable store.
#[derive(Debug)]
struct Writer {
    /// Length of `varint(header_len) + header`, where sections start.
    prefix_len: u64,
    /// End of the last written section.
    end: u64,
}

/// A [`BlockStore`] over one CAR file: read-only ([`CarStore::open`]) or append-only
/// ([`CarStore::create`] then [`CarStore::finish`]). See the [module docs](self).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use ipfs_hamt::block::{Block, HashAlg, DAG_CBOR, RAW};
/// use ipfs_hamt::store::{BlockStore, CarStore};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("x.car");
/// let store = CarStore::create(&path)?;
/// let leaf = Block::new(RAW, HashAlg::Blake3, b"hi".to_vec());
/// store.put_many(vec![leaf.clone()]).await?;
/// store.finish(leaf.cid)?;
/// let reopened = CarStore::open(&path)?;
/// assert_eq!(reopened.roots(), vec![leaf.cid]);
/// assert_eq!(reopened.get(&leaf.cid).await?, leaf.data);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })
/// # }
/// ```
#[derive(Debug)]
pub struct CarStore {
    path: PathBuf,
    state: RwLock<State>,
    /// `Some` for a store made by [`CarStore::create`].
    writer: Option<Mutex<Writer>>,
}

impl CarStore {
    /// Opens a CARv1 or CARv2 file read-only, scanning it once to index its blocks.
    ///
    /// Fails with [`StoreError::Corrupt`] on any malformed header or section.
    pub fn open(path: impl AsRef<Path>) -> Result<CarStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)
            .map_err(|e| StoreError::io(format!("opening CAR {}", path.display()), e))?;
        let scanned = scan(&file)?;
        let index = build_index(&scanned.entries);
        Ok(CarStore {
            path,
            state: RwLock::new(State {
                file,
                roots: scanned.roots,
                entries: scanned.entries,
                index,
            }),
            writer: None,
        })
    }

    /// Creates (or truncates) a CARv1 file to write blocks into.
    ///
    /// The header holds a placeholder root until [`CarStore::finish`].
    pub fn create(path: impl AsRef<Path>) -> Result<CarStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("creating CAR {}", path.display()), e))?;
        let prefix = header_prefix(&placeholder_root());
        file.write_all_at(&prefix, 0)
            .map_err(|e| StoreError::io(format!("writing CAR header to {}", path.display()), e))?;
        let prefix_len = prefix.len() as u64;
        Ok(CarStore {
            path,
            state: RwLock::new(State {
                file,
                roots: Vec::new(),
                entries: Vec::new(),
                index: HashMap::new(),
            }),
            writer: Some(Mutex::new(Writer {
                prefix_len,
                end: prefix_len,
            })),
        })
    }

    /// Writes the final header `{roots: [root], version: 1}` and flushes the file to disk.
    ///
    /// May be called again after more [`BlockStore::put_many`] calls. Fails with
    /// [`StoreError::ReadOnly`] on a store made by [`CarStore::open`].
    pub fn finish(&self, root: Cid) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let mut w = writer.lock().map_err(|_| poisoned())?;
        let prefix = header_prefix(&root);
        let new_prefix_len = prefix.len() as u64;
        let mut state = self.state.write().map_err(|_| poisoned())?;
        if new_prefix_len == w.prefix_len {
            state
                .file
                .write_all_at(&prefix, 0)
                .map_err(|e| self.io_err("writing CAR header", e))?;
        } else {
            self.rewrite(&mut state, &mut w, &prefix)?;
        }
        state
            .file
            .sync_all()
            .map_err(|e| self.io_err("syncing CAR", e))?;
        state.roots = vec![root];
        Ok(())
    }

    /// Replaces the file with one whose header is `prefix`, moving every section.
    fn rewrite(&self, state: &mut State, w: &mut Writer, prefix: &[u8]) -> Result<(), StoreError> {
        let mut tmp_name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(".rewrite-tmp");
        let tmp_path = self.path.with_file_name(tmp_name);
        let tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|e| StoreError::io(format!("creating {}", tmp_path.display()), e))?;
        let copy = || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(&tmp);
            out.write_all(prefix)?;
            let mut buf = vec![0u8; SCAN_BUF];
            let mut pos = w.prefix_len;
            while pos < w.end {
                let n = usize::try_from(w.end - pos).map_or(buf.len(), |r| r.min(buf.len()));
                let chunk = buf.get_mut(..n).unwrap_or_default();
                state.file.read_exact_at(chunk, pos)?;
                out.write_all(chunk)?;
                pos += n as u64;
            }
            out.flush()?;
            drop(out);
            tmp.sync_all()?;
            std::fs::rename(&tmp_path, &self.path)
        };
        if let Err(e) = copy() {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(self.io_err("rewriting CAR with its final header", e));
        }
        let new_prefix_len = prefix.len() as u64;
        for e in &mut state.entries {
            e.offset = e.offset - w.prefix_len + new_prefix_len;
        }
        w.end = w.end - w.prefix_len + new_prefix_len;
        w.prefix_len = new_prefix_len;
        state.file = tmp;
        Ok(())
    }

    /// The roots named in the header (empty for a created store before [`CarStore::finish`]).
    pub fn roots(&self) -> Vec<Cid> {
        self.state
            .read()
            .map(|s| s.roots.clone())
            .unwrap_or_default()
    }

    /// Number of distinct blocks (by multihash) in the file.
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.entries.len()).unwrap_or(0)
    }

    /// True if the file holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The CIDs of the blocks, in file order (first occurrence of each multihash).
    pub fn cids(&self) -> Vec<Cid> {
        self.state
            .read()
            .map(|s| s.entries.iter().map(|e| e.cid).collect())
            .unwrap_or_default()
    }

    /// The path of the CAR file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for a store made by [`CarStore::create`].
    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    fn io_err(&self, what: &str, e: std::io::Error) -> StoreError {
        StoreError::io(format!("{what} ({})", self.path.display()), e)
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("CAR store lock poisoned".into())
}

fn build_index(entries: &[Entry]) -> HashMap<Multihash<64>, usize> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| (*e.cid.hash(), i))
        .collect()
}

/// The root a created store's header names until [`CarStore::finish`]: a CIDv1
/// dag-cbor/blake3-256 of zeros, as long as the roots this crate makes.
fn placeholder_root() -> Cid {
    Cid::new_v1(
        DAG_CBOR,
        Multihash::wrap(BLAKE3_CODE, &[0u8; 32]).unwrap_or_default(),
    )
}

#[async_trait]
impl BlockStore for CarStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let data = {
            let state = self.state.read().map_err(|_| poisoned())?;
            let entry = state.lookup(cid).ok_or(StoreError::NotFound(*cid))?;
            // The length was checked against the file size when indexed (or written by us).
            let len = usize::try_from(entry.len).map_err(|_| {
                corrupt(format!(
                    "block {cid} at offset {} is too large",
                    entry.offset
                ))
            })?;
            let mut buf = vec![0u8; len];
            state
                .file
                .read_exact_at(&mut buf, entry.offset)
                .map_err(|e| self.io_err(&format!("reading block {cid}"), e))?;
            buf
        };
        verify(cid, &data)?;
        Ok(Bytes::from(data))
    }

    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(state.index.contains_key(cid.hash()))
    }

    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        // The writer lock serialises appends; readers only wait for the index update.
        let mut w = writer.lock().map_err(|_| poisoned())?;
        let mut buf = Vec::new();
        let mut new_entries = Vec::new();
        {
            let state = self.state.read().map_err(|_| poisoned())?;
            let mut pending = HashSet::new();
            for b in &blocks {
                if state.index.contains_key(b.cid.hash()) || !pending.insert(*b.cid.hash()) {
                    continue;
                }
                let cid_bytes = b.cid.to_bytes();
                let section_len = (cid_bytes.len() + b.data.len()) as u64;
                let mut vbuf = unsigned_varint::encode::u64_buffer();
                buf.extend_from_slice(unsigned_varint::encode::u64(section_len, &mut vbuf));
                buf.extend_from_slice(&cid_bytes);
                let offset = w.end + buf.len() as u64;
                buf.extend_from_slice(&b.data);
                new_entries.push(Entry {
                    cid: b.cid,
                    offset,
                    len: b.data.len() as u64,
                });
            }
            if buf.is_empty() {
                return Ok(());
            }
            state
                .file
                .write_all_at(&buf, w.end)
                .map_err(|e| self.io_err("appending CAR sections", e))?;
        }
        w.end += buf.len() as u64;
        let mut state = self.state.write().map_err(|_| poisoned())?;
        for e in new_entries {
            let i = state.entries.len();
            state.index.insert(*e.cid.hash(), i);
            state.entries.push(e);
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------------

/// What a scan of a CAR file found.
struct Scanned {
    roots: Vec<Cid>,
    entries: Vec<Entry>,
}

/// A read-ahead window over a file, for scanning sections without reading block bytes.
struct Window<'a> {
    file: &'a File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
}

impl<'a> Window<'a> {
    fn new(file: &'a File) -> Self {
        Window {
            file,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Up to `want` bytes at `pos` (fewer only if `pos + want` exceeds `end`).
    fn at(&mut self, pos: u64, want: usize, end: u64) -> Result<&[u8], StoreError> {
        let avail = usize::try_from(end.saturating_sub(pos)).map_or(want, |a| a.min(want));
        let in_buf = pos >= self.start
            && pos.saturating_add(avail as u64) <= self.start.saturating_add(self.buf.len() as u64);
        if !in_buf {
            let n = usize::try_from(end.saturating_sub(pos))
                .map_or(SCAN_BUF, |a| a.min(SCAN_BUF.max(want)));
            self.buf.resize(n, 0);
            self.file
                .read_exact_at(&mut self.buf, pos)
                .map_err(|e| StoreError::io(format!("reading CAR at offset {pos}"), e))?;
            self.start = pos;
        }
        let from = usize::try_from(pos - self.start).map_err(|_| corrupt("offset overflow"))?;
        self.buf
            .get(from..from.saturating_add(avail))
            .ok_or_else(|| corrupt(format!("internal read window error at offset {pos}")))
    }
}

/// Decodes a multiformats varint at the start of `bytes`: (value, bytes used).
fn read_varint(bytes: &[u8], what: &str, pos: u64) -> Result<(u64, usize), StoreError> {
    match unsigned_varint::decode::u64(bytes) {
        Ok((v, rest)) => Ok((v, bytes.len() - rest.len())),
        Err(unsigned_varint::decode::Error::Insufficient) if bytes.len() < MAX_VARINT_LEN => {
            Err(corrupt(format!("truncated {what} varint at offset {pos}")))
        }
        Err(unsigned_varint::decode::Error::Insufficient) => Err(corrupt(format!(
            "{what} varint at offset {pos} is longer than {MAX_VARINT_LEN} bytes"
        ))),
        Err(e) => Err(corrupt(format!("bad {what} varint at offset {pos}: {e}"))),
    }
}

fn scan(file: &File) -> Result<Scanned, StoreError> {
    let file_len = file
        .metadata()
        .map_err(|e| StoreError::io("reading CAR file metadata", e))?
        .len();
    let mut win = Window::new(file);
    let head = win.at(0, V2_PRAGMA.len(), file_len)?;
    let (start, end) = if head == V2_PRAGMA {
        let hdr = win.at(V2_PRAGMA.len() as u64, V2_HEADER_LEN as usize, file_len)?;
        let field = |i: usize| -> Result<u64, StoreError> {
            hdr.get(i..i + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| corrupt("truncated CARv2 header at offset 11"))
        };
        let data_offset = field(16)?;
        let data_size = field(24)?;
        let header_end = V2_PRAGMA.len() as u64 + V2_HEADER_LEN;
        let data_end = data_offset.checked_add(data_size);
        match data_end {
            Some(e) if data_offset >= header_end && e <= file_len => (data_offset, e),
            _ => {
                return Err(corrupt(format!(
                    "CARv2 data payload (offset {data_offset}, size {data_size}) is outside the \
                     file ({file_len} bytes, header ends at {header_end})"
                )))
            }
        }
    } else {
        (0, file_len)
    };
    scan_v1(&mut win, start, end)
}

/// Scans the CARv1 in `[start, end)` of the file.
fn scan_v1(win: &mut Window<'_>, start: u64, end: u64) -> Result<Scanned, StoreError> {
    // Header.
    let bytes = win.at(start, MAX_VARINT_LEN, end)?;
    let (header_len, used) = read_varint(bytes, "CAR header length", start)?;
    let header_start = start + used as u64;
    if header_len == 0 || header_len > MAX_HEADER_LEN {
        return Err(corrupt(format!(
            "CAR header length {header_len} at offset {start} is out of range (1..={MAX_HEADER_LEN})"
        )));
    }
    if header_len > end - header_start {
        return Err(corrupt(format!(
            "CAR header at offset {header_start} claims {header_len} bytes, only {} remain",
            end - header_start
        )));
    }
    // header_len <= 1 MiB: the cast is lossless.
    let header_bytes = win.at(header_start, header_len as usize, end)?;
    let roots = parse_header(header_bytes, header_start)?;

    // Sections.
    let mut entries = Vec::new();
    let mut seen: HashSet<Multihash<64>> = HashSet::new();
    let mut pos = header_start + header_len;
    while pos < end {
        let bytes = win.at(pos, MAX_VARINT_LEN + MAX_CID_LEN, end)?;
        let (section_len, used) = read_varint(bytes, "section length", pos)?;
        let body = pos + used as u64;
        if section_len == 0 {
            return Err(corrupt(format!("empty CAR section at offset {pos}")));
        }
        if section_len > MAX_SECTION_LEN {
            return Err(corrupt(format!(
                "CAR section at offset {pos} claims an absurd length {section_len}"
            )));
        }
        if section_len > end - body {
            return Err(corrupt(format!(
                "truncated CAR section at offset {pos}: claims {section_len} bytes, only {} remain",
                end - body
            )));
        }
        let cid_area_len = usize::try_from(section_len).map_or(MAX_CID_LEN, |l| l.min(MAX_CID_LEN));
        let cid_area = bytes
            .get(used..used.saturating_add(cid_area_len))
            .ok_or_else(|| corrupt(format!("truncated CID at offset {body}")))?;
        let mut reader = cid_area;
        let cid = Cid::read_bytes(&mut reader)
            .map_err(|e| corrupt(format!("bad CID at offset {body}: {e}")))?;
        let cid_len = (cid_area.len() - reader.len()) as u64;
        let entry = Entry {
            cid,
            offset: body + cid_len,
            len: section_len - cid_len,
        };
        if seen.insert(*cid.hash()) {
            entries.push(entry);
        }
        pos = body + section_len;
    }
    Ok(Scanned { roots, entries })
}

/// Decodes and checks a CARv1 header, returning its roots.
fn parse_header(bytes: &[u8], at: u64) -> Result<Vec<Cid>, StoreError> {
    let header: Ipld = serde_ipld_dagcbor::from_slice(bytes)
        .map_err(|e| corrupt(format!("CAR header at offset {at} is not DAG-CBOR: {e}")))?;
    let Ipld::Map(map) = header else {
        return Err(corrupt(format!("CAR header at offset {at} is not a map")));
    };
    match map.get("version") {
        Some(Ipld::Integer(1)) => {}
        Some(Ipld::Integer(v)) => {
            return Err(corrupt(format!(
                "CAR header at offset {at}: unsupported version {v}"
            )))
        }
        _ => {
            return Err(corrupt(format!(
                "CAR header at offset {at}: missing or non-integer version"
            )))
        }
    }
    let Some(Ipld::List(roots)) = map.get("roots") else {
        return Err(corrupt(format!(
            "CAR header at offset {at}: roots missing or not a list"
        )));
    };
    roots
        .iter()
        .map(|r| match r {
            Ipld::Link(c) => Ok(*c),
            _ => Err(corrupt(format!(
                "CAR header at offset {at}: a root is not a CID"
            ))),
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Writing and export
// ------------------------------------------------------------------------------------------

/// `varint(len) + header` for the canonical DAG-CBOR header `{roots: [root], version: 1}`
/// ("roots" sorts before "version": shorter key first).
pub(crate) fn header_prefix(root: &Cid) -> Vec<u8> {
    let cid = root.to_bytes();
    let mut h = Vec::with_capacity(cid.len() + 32);
    h.push(0xa2); // map(2)
    h.push(0x65); // text(5)
    h.extend_from_slice(b"roots");
    h.push(0x81); // array(1)
    h.extend_from_slice(&[0xd8, 0x2a]); // tag(42)
    crate::node::write_head(&mut h, 2, cid.len() as u64 + 1); // bytes(len + 1)
    h.push(0x00); // multibase identity prefix
    h.extend_from_slice(&cid);
    h.push(0x67); // text(7)
    h.extend_from_slice(b"version");
    h.push(0x01); // 1
    let mut out = Vec::with_capacity(h.len() + MAX_VARINT_LEN);
    let mut vbuf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(h.len() as u64, &mut vbuf));
    out.extend_from_slice(&h);
    out
}

/// The CIDs a block links to, in encoding order: every CID inside a dag-cbor block, every link
/// of a dag-pb block; none for other codecs (raw...).
///
/// ```
/// use ipfs_hamt::block::{Block, HashAlg, RAW};
/// let leaf = Block::new(RAW, HashAlg::Blake3, b"x".to_vec());
/// assert!(ipfs_hamt::store::car::block_links(&leaf.cid, &leaf.data).unwrap().is_empty());
/// ```
pub fn block_links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, StoreError> {
    match cid.codec() {
        DAG_CBOR => dag_cbor_links(data).map_err(|e| corrupt(format!("dag-cbor block {cid}: {e}"))),
        DAG_PB => dag_pb_links(data).map_err(|e| corrupt(format!("dag-pb block {cid}: {e}"))),
        _ => Ok(Vec::new()),
    }
}

/// Writes a CARv1 of every block reachable from `root` to `out`; returns the number of blocks.
///
/// The header is `{roots: [root], version: 1}`; the blocks come in pre-order depth-first order
/// from `root`, following every CID inside dag-cbor blocks (in encoding order) and every link
/// of dag-pb blocks (in link order), each block once (first visit wins). Other codecs (raw...)
/// are leaves. Every block is verified against its CID; identity-hash CIDs are written from
/// their digest without asking the store. This is the order of the golden CARs.
pub async fn write_car<W: Write>(
    store: &dyn BlockStore,
    root: &Cid,
    out: W,
) -> Result<u64, StoreError> {
    let io = |e| StoreError::io("writing CAR", e);
    let mut out = std::io::BufWriter::new(out);
    out.write_all(&header_prefix(root)).map_err(io)?;
    let mut seen: HashSet<Cid> = HashSet::new();
    let mut stack = vec![*root];
    let mut count = 0u64;
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = if cid.hash().code() == IDENTITY_CODE {
            Bytes::copy_from_slice(cid.hash().digest())
        } else {
            store.get(&cid).await?
        };
        verify(&cid, &data)?;
        let cid_bytes = cid.to_bytes();
        let mut vbuf = unsigned_varint::encode::u64_buffer();
        let len = unsigned_varint::encode::u64((cid_bytes.len() + data.len()) as u64, &mut vbuf);
        out.write_all(len).map_err(io)?;
        out.write_all(&cid_bytes).map_err(io)?;
        out.write_all(&data).map_err(io)?;
        count += 1;
        let children = match cid.codec() {
            DAG_CBOR => {
                dag_cbor_links(&data).map_err(|e| corrupt(format!("dag-cbor block {cid}: {e}")))?
            }
            DAG_PB => {
                dag_pb_links(&data).map_err(|e| corrupt(format!("dag-pb block {cid}: {e}")))?
            }
            _ => Vec::new(),
        };
        stack.extend(children.into_iter().rev().filter(|c| !seen.contains(c)));
    }
    out.flush().map_err(io)?;
    Ok(count)
}

/// A bounds-checked cursor over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| format!("length {n} at offset {} exceeds the block", self.pos))?;
        let s = self
            .bytes
            .get(self.pos..self.pos + n)
            .ok_or_else(|| format!("truncated at offset {}", self.pos))?;
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn be(&mut self, n: u64) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn varint(&mut self) -> Result<u64, String> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let (v, after) = unsigned_varint::decode::u64(rest)
            .map_err(|e| format!("bad varint at offset {}: {e}", self.pos))?;
        self.pos += rest.len() - after.len();
        Ok(v)
    }
}

/// Reads a CID that must fill `bytes` exactly.
fn cid_exact(bytes: &[u8]) -> Result<Cid, String> {
    let mut r = bytes;
    let cid = Cid::read_bytes(&mut r).map_err(|e| format!("bad CID: {e}"))?;
    if r.is_empty() {
        Ok(cid)
    } else {
        Err(format!("{} trailing bytes after a CID", r.len()))
    }
}

/// The CIDs (tag 42) inside a DAG-CBOR block, in encoding order.
///
/// Iterative, so nesting depth cannot exhaust the stack: it only counts the items still to
/// read, and every item needs at least one byte, so that count is bounded by the block length.
/// Indefinite lengths (forbidden in DAG-CBOR) and trailing bytes are errors.
fn dag_cbor_links(bytes: &[u8]) -> Result<Vec<Cid>, String> {
    let mut c = Cursor::new(bytes);
    let mut links = Vec::new();
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let at = c.pos;
        let (major, arg) = cbor_item_head(&mut c)?;
        match major {
            0 | 1 => {}
            2 | 3 => {
                c.take(arg)?;
            }
            4 | 5 => {
                let items = if major == 5 {
                    arg.checked_mul(2)
                } else {
                    Some(arg)
                };
                pending = items
                    .and_then(|n| pending.checked_add(n))
                    .filter(|&p| p <= c.remaining() as u64)
                    .ok_or_else(|| format!("container at offset {at} has more items than bytes"))?;
            }
            6 if arg == 42 => {
                let at = c.pos;
                let (major, len) = cbor_item_head(&mut c)?;
                if major != 2 {
                    return Err(format!("tag 42 at offset {at} not on a byte string"));
                }
                let b = c.take(len)?;
                let Some((&0, cid)) = b.split_first() else {
                    return Err(format!("CID at offset {at} lacks the 0x00 prefix"));
                };
                links.push(cid_exact(cid).map_err(|e| format!("at offset {at}: {e}"))?);
            }
            6 => {
                pending = pending
                    .checked_add(1)
                    .ok_or_else(|| format!("too many items at offset {at}"))?;
            }
            _ => {} // major 7: simple values and floats, already consumed.
        }
    }
    if c.remaining() != 0 {
        return Err(format!("{} trailing bytes", c.remaining()));
    }
    Ok(links)
}

/// Reads a CBOR item head: (major type, argument). For major 7 the argument bytes (floats,
/// simple values) are consumed and the argument is meaningless.
fn cbor_item_head(c: &mut Cursor<'_>) -> Result<(u8, u64), String> {
    let at = c.pos;
    let b = c.byte()?;
    let major = b >> 5;
    let info = b & 0x1f;
    let arg = match info {
        0..=23 => u64::from(info),
        24 => c.be(1)?,
        25 => c.be(2)?,
        26 => c.be(4)?,
        27 => c.be(8)?,
        _ => {
            return Err(format!(
                "unsupported CBOR item head {b:#04x} at offset {at}"
            ))
        }
    };
    Ok((major, arg))
}

/// The link CIDs of a dag-pb node (`PBNode.Links[].Hash`), in encoding order.
fn dag_pb_links(bytes: &[u8]) -> Result<Vec<Cid>, String> {
    let mut links = Vec::new();
    let mut c = Cursor::new(bytes);
    while c.remaining() > 0 {
        let (field, value) = pb_field(&mut c)?;
        if let (2, Some(link)) = (field, value) {
            let mut l = Cursor::new(link);
            let mut hash = None;
            while l.remaining() > 0 {
                if let (1, Some(h)) = pb_field(&mut l)? {
                    hash = Some(cid_exact(h)?);
                }
            }
            links.push(hash.ok_or("PBLink without Hash")?);
        }
    }
    Ok(links)
}

/// Reads one protobuf field: (field number, bytes if length-delimited).
fn pb_field<'a>(c: &mut Cursor<'a>) -> Result<(u64, Option<&'a [u8]>), String> {
    let at = c.pos;
    let key = c.varint()?;
    let field = key >> 3;
    match key & 7 {
        0 => {
            c.varint()?;
            Ok((field, None))
        }
        1 => {
            c.take(8)?;
            Ok((field, None))
        }
        2 => {
            let len = c.varint()?;
            Ok((field, Some(c.take(len)?)))
        }
        5 => {
            c.take(4)?;
            Ok((field, None))
        }
        wt => Err(format!(
            "unsupported protobuf wire type {wt} at offset {at}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{HashAlg, RAW};
    use proptest::prelude::*;

    #[test]
    fn header_prefix_is_canonical() {
        let root = placeholder_root();
        let p = header_prefix(&root);
        assert_eq!(p.len(), 59);
        let roots = parse_header(&p[1..], 1).unwrap();
        assert_eq!(roots, vec![root]);
        // serde_ipld_dagcbor agrees on the encoding.
        let mut m = std::collections::BTreeMap::new();
        m.insert("roots".to_string(), Ipld::List(vec![Ipld::Link(root)]));
        m.insert("version".to_string(), Ipld::Integer(1));
        assert_eq!(serde_ipld_dagcbor::to_vec(&Ipld::Map(m)).unwrap(), p[1..]);
    }

    #[test]
    fn cbor_scanner_finds_links_in_order() {
        let a = Block::new(RAW, HashAlg::Blake3, b"a".to_vec()).cid;
        let b = Block::new(RAW, HashAlg::Sha2_256, b"b".to_vec()).cid;
        let v = Ipld::List(vec![
            Ipld::Integer(-5),
            Ipld::Map(
                [
                    ("x".to_string(), Ipld::Link(b)),
                    ("yy".to_string(), Ipld::Float(1.5)),
                ]
                .into_iter()
                .collect(),
            ),
            Ipld::Bytes(vec![1; 300]),
            Ipld::Link(a),
            Ipld::Null,
            Ipld::Link(b),
        ]);
        let bytes = serde_ipld_dagcbor::to_vec(&v).unwrap();
        assert_eq!(dag_cbor_links(&bytes).unwrap(), vec![b, a, b]);
        for n in 0..bytes.len() {
            assert!(dag_cbor_links(&bytes[..n]).is_err());
        }
        // Deep nesting does not recurse.
        let mut deep = vec![0x81; 1_000_000];
        deep.push(0xf6);
        assert_eq!(dag_cbor_links(&deep).unwrap(), vec![]);
        // Absurd counts fail fast.
        assert!(dag_cbor_links(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(dag_cbor_links(&[0x9f, 0xff]).is_err());
    }

    #[test]
    fn dag_pb_links_in_order() {
        let a = Block::new(RAW, HashAlg::Sha2_256, b"a".to_vec()).cid;
        let b = Block::new(RAW, HashAlg::Blake3, b"b".to_vec()).cid;
        let node = pb_node(&[a, b], b"\x08\x02");
        assert_eq!(dag_pb_links(&node).unwrap(), vec![a, b]);
        for n in 0..node.len() {
            let _ = dag_pb_links(&node[..n]);
        }
    }

    /// A PBNode with the given links (Hash, Name "", Tsize 1) and Data.
    fn pb_node(links: &[Cid], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in links {
            let h = l.to_bytes();
            let mut link = vec![0x0a, h.len() as u8];
            link.extend_from_slice(&h);
            link.extend_from_slice(&[0x12, 0x00, 0x18, 0x01]);
            out.push(0x12);
            out.push(link.len() as u8);
            out.extend_from_slice(&link);
        }
        out.push(0x0a);
        out.push(data.len() as u8);
        out.extend_from_slice(data);
        out
    }

    proptest! {
        #[test]
        fn scanners_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = dag_cbor_links(&bytes);
            let _ = dag_pb_links(&bytes);
        }
    }
}
