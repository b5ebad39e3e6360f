//! Large values as UnixFS files, byte-compatible with Kubo's
//! `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576 --hash=blake3`.
//!
//! A value of at most [`CHUNK_SIZE`] bytes is one raw block. A longer value is cut into raw
//! leaves of [`CHUNK_SIZE`] bytes (the last one shorter) joined by dag-pb nodes in the *balanced*
//! layout of Kubo (boxo `importer/balanced`) and js-ipfs (`ipfs-unixfs-importer`, `balanced`):
//! at most [`MAX_LINKS`] children per node, every leaf at the same depth, filled from the left.
//!
//! Every internal node is a canonical dag-pb `PBNode` whose links come first (field 2), each
//! `PBLink { Hash, Name: "", Tsize }` with the empty name encoded and `Tsize` the total encoded
//! bytes of the linked subtree, followed by `Data` (field 1): the UnixFS message
//! `{ Type: File, filesize, blocksizes... }` (blocksizes unpacked, one key per entry).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use ipfs_hamt::{block::{HashAlg, DAG_PB}, store::{BlockStore, MemoryStore}, unixfs, ByteRange};
//! let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
//! let (root, blocks) = unixfs::build_file(&data, HashAlg::Blake3);
//! assert_eq!(root.codec(), DAG_PB);
//! assert_eq!(blocks.len(), 4); // three raw leaves and the root
//! let store = MemoryStore::new();
//! store.put_many(blocks).await.unwrap();
//! assert_eq!(unixfs::file_size(&store, &root).await.unwrap(), 3_000_000);
//! let part = unixfs::read_file(&store, &root, ByteRange::Slice { offset: 1_048_570, length: 10 })
//!     .await
//!     .unwrap();
//! assert_eq!(&part[..], &data[1_048_570..1_048_580]);
//! # });
//! ```

use bytes::Bytes;
use cid::Cid;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::block::{Block, HashAlg, DAG_PB, IDENTITY_CODE, RAW};
use crate::range::ByteRange;
use crate::store::{BlockStore, StoreError};

/// Size of a leaf (Kubo's `--chunker=size-1048576`); values up to this size are one raw block.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Most children of one internal node (Kubo's and js-ipfs' default for the balanced layout).
pub const MAX_LINKS: usize = 174;

/// Deepest dag-pb node [`read_file`] follows (the root is at depth 0). Balanced files of 1 MiB
/// leaves need 4 levels for a petabyte; anything deeper is treated as hostile.
pub const MAX_DEPTH: usize = 32;

/// How many leaves [`read_file`] fetches concurrently.
const FETCH_CONCURRENCY: usize = 8;

/// UnixFS `Data.Type` of a file.
const UNIXFS_FILE: u64 = 2;
/// UnixFS `Data.Type` of a raw data node (old-style leaves, not raw blocks).
const UNIXFS_RAW: u64 = 0;

// ------------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------------

/// Appends `v` as a protobuf varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-delimited field (`key` already shifted with wire type 2).
fn put_bytes_field(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A child of an internal node under construction.
#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    /// Encoded bytes of the whole subtree (`PBLink.Tsize`).
    tsize: u64,
    /// Bytes of file content in the subtree (the parent's `blocksizes` entry).
    filesize: u64,
}

/// The dag-pb bytes of an internal file node over `children`, as Kubo and js-ipfs write them.
fn encode_file_node(children: &[Child]) -> Vec<u8> {
    let filesize: u64 = children.iter().map(|c| c.filesize).sum();
    // UnixFS Data: Type = File (field 1), filesize (field 3), blocksizes (field 4, unpacked).
    let mut data = Vec::with_capacity(4 + 11 + children.len() * 4);
    data.extend_from_slice(&[0x08, UNIXFS_FILE as u8, 0x18]);
    put_varint(&mut data, filesize);
    for c in children {
        data.push(0x20);
        put_varint(&mut data, c.filesize);
    }
    // PBNode: Links (field 2) first, then Data (field 1).
    let mut out = Vec::with_capacity(children.len() * 56 + data.len() + 4);
    let mut link = Vec::with_capacity(64);
    for c in children {
        link.clear();
        put_bytes_field(&mut link, 0x0a, &c.cid.to_bytes()); // Hash
        put_bytes_field(&mut link, 0x12, b""); // Name: "" (written, as both do)
        link.push(0x18); // Tsize
        put_varint(&mut link, c.tsize);
        put_bytes_field(&mut out, 0x12, &link);
    }
    put_bytes_field(&mut out, 0x0a, &data);
    out
}

/// Builds a UnixFS file incrementally, returning blocks as soon as they are complete, so a large
/// value need not be held in memory twice.
///
/// The result is identical to [`build_file`] on the concatenation of everything pushed.
///
/// ```
/// use ipfs_hamt::{block::HashAlg, unixfs::{build_file, FileBuilder}};
/// let data = vec![7u8; 2_500_000];
/// let mut fb = FileBuilder::new(HashAlg::Blake3);
/// let mut blocks = Vec::new();
/// for part in data.chunks(300_000) {
///     blocks.extend(fb.push(part));
/// }
/// let (root, rest) = fb.finish();
/// blocks.extend(rest);
/// let (root2, blocks2) = build_file(&data, HashAlg::Blake3);
/// assert_eq!(root, root2);
/// assert_eq!(blocks.len(), blocks2.len());
/// ```
#[derive(Debug)]
pub struct FileBuilder {
    alg: HashAlg,
    /// Bytes of the leaf being filled (always shorter than [`CHUNK_SIZE`] between calls).
    buf: Vec<u8>,
    /// `levels[k]`: completed children waiting for their parent at height `k + 1`.
    levels: Vec<Vec<Child>>,
    /// Leaves made so far.
    leaves: u64,
    /// Bytes pushed so far.
    len: u64,
}

impl FileBuilder {
    /// An empty file whose blocks are named with `alg`.
    pub fn new(alg: HashAlg) -> Self {
        FileBuilder {
            alg,
            buf: Vec::new(),
            levels: Vec::new(),
            leaves: 0,
            len: 0,
        }
    }

    /// Bytes pushed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if nothing has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`; returns the blocks (leaves and internal nodes) it completed.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Block> {
        let mut out = Vec::new();
        self.len += data.len() as u64;
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= CHUNK_SIZE {
                // A whole leaf straight from the input: one copy only.
                let (leaf, rest) = data.split_at(CHUNK_SIZE);
                self.leaf(Bytes::copy_from_slice(leaf), &mut out);
                data = rest;
                continue;
            }
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(CHUNK_SIZE);
            }
            self.buf.extend_from_slice(head);
            data = rest;
            if self.buf.len() == CHUNK_SIZE {
                let leaf = std::mem::take(&mut self.buf);
                self.leaf(Bytes::from(leaf), &mut out);
            }
        }
        out
    }

    /// Completes the file: returns its root CID and the blocks not yet returned (the root last).
    pub fn finish(mut self) -> (Cid, Vec<Block>) {
        let mut out = Vec::new();
        if self.leaves == 0 || !self.buf.is_empty() {
            let leaf = std::mem::take(&mut self.buf);
            self.leaf(Bytes::from(leaf), &mut out);
        }
        // Reduce the partial groups bottom-up, as js-ipfs' `reduceToParents` does: a group becomes
        // a node unless it is a lone child with nothing pending above it (then it is the root).
        let mut root = None;
        let mut k = 0;
        while k < self.levels.len() {
            let group = std::mem::take(&mut self.levels[k]);
            let above = self.levels.iter().skip(k + 1).any(|l| !l.is_empty());
            match group.as_slice() {
                [] => {}
                [only] if !above => {
                    root = Some(only.cid);
                    break;
                }
                _ => self.reduce(k, &group, &mut out),
            }
            k += 1;
        }
        // At least one leaf was made, so the loop always finds a root; fall back to the empty raw
        // block for completeness.
        let root = root.unwrap_or_else(|| crate::block::cid_of(RAW, self.alg, b""));
        (root, out)
    }

    fn leaf(&mut self, data: Bytes, out: &mut Vec<Block>) {
        let block = Block::new(RAW, self.alg, data);
        let len = block.data.len() as u64;
        self.leaves += 1;
        self.add(
            0,
            Child {
                cid: block.cid,
                tsize: len,
                filesize: len,
            },
            out,
        );
        out.push(block);
    }

    /// Adds a child at height `level`, building parents of full groups eagerly.
    fn add(&mut self, mut level: usize, mut child: Child, out: &mut Vec<Block>) {
        loop {
            while self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(MAX_LINKS));
            }
            let group = &mut self.levels[level];
            group.push(child);
            if group.len() < MAX_LINKS {
                return;
            }
            let group = std::mem::take(group);
            child = self.node(&group, out);
            level += 1;
        }
    }

    /// Builds the parent of `group` and adds it at height `level + 1`.
    fn reduce(&mut self, level: usize, group: &[Child], out: &mut Vec<Block>) {
        let child = self.node(group, out);
        self.add(level + 1, child, out);
    }

    fn node(&self, group: &[Child], out: &mut Vec<Block>) -> Child {
        let bytes = encode_file_node(group);
        let tsize = bytes.len() as u64 + group.iter().map(|c| c.tsize).sum::<u64>();
        let filesize = group.iter().map(|c| c.filesize).sum();
        let block = Block::new(DAG_PB, self.alg, bytes);
        let child = Child {
            cid: block.cid,
            tsize,
            filesize,
        };
        out.push(block);
        child
    }
}

/// Stores `data` as Kubo's `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576` with
/// hash `alg` does: returns the root CID and every block (leaves first, the root last).
///
/// Up to [`CHUNK_SIZE`] bytes (including none) give one raw block, whose CID is the root.
pub fn build_file(data: &[u8], alg: HashAlg) -> (Cid, Vec<Block>) {
    let mut fb = FileBuilder::new(alg);
    let mut blocks = fb.push(data);
    let (root, rest) = fb.finish();
    blocks.extend(rest);
    (root, blocks)
}

// ------------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------------

/// Why a UnixFS file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum UnixfsError {
    /// The store failed (including a missing block).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block is not valid dag-pb / UnixFS, or disagrees with its parent about sizes.
    #[error("malformed UnixFS block {cid}: {reason}")]
    Malformed {
        /// The offending block.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// A block of a codec other than raw or dag-pb.
    #[error("block {cid} has codec {codec:#x}; UnixFS files are raw or dag-pb")]
    UnsupportedCodec {
        /// The block.
        cid: Cid,
        /// Its codec.
        codec: u64,
    },
    /// A UnixFS node that is not a file (a directory, symlink, HAMT shard...).
    #[error("UnixFS node {cid} has type {kind}, not a file")]
    NotAFile {
        /// The node.
        cid: Cid,
        /// Its `Data.Type`.
        kind: u64,
    },
    /// The range asked for does not fit in memory (a file, or a hostile DAG that reuses its
    /// blocks, claiming more bytes than can be allocated).
    #[error("cannot read {len} bytes of UnixFS file {cid} into memory")]
    TooLarge {
        /// The file.
        cid: Cid,
        /// Bytes asked for.
        len: u64,
    },
    /// The DAG is deeper than [`MAX_DEPTH`].
    #[error("UnixFS DAG is deeper than {MAX_DEPTH} at block {cid}")]
    TooDeep {
        /// The block past the limit.
        cid: Cid,
    },
}

fn malformed(cid: &Cid, reason: impl Into<String>) -> UnixfsError {
    UnixfsError::Malformed {
        cid: *cid,
        reason: reason.into(),
    }
}

/// A bounds-checked protobuf reader over one buffer.
struct PbReader<'a> {
    buf: &'a [u8],
}

impl<'a> PbReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        PbReader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return Ok(v);
            }
        }
        if self.buf.len() >= 10 {
            Err("varint longer than 10 bytes")
        } else {
            Err("truncated varint")
        }
    }

    /// A field key: (field number, wire type).
    fn key(&mut self) -> Result<(u64, u8), &'static str> {
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err("field number 0");
        }
        Ok((field, (k & 7) as u8))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| "length exceeds the block")?;
        if n > self.buf.len() {
            return Err("length exceeds the block");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.varint()?;
        self.take(n)
    }

    fn skip(&mut self, wire: u8) -> Result<(), &'static str> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            _ => Err("unsupported wire type"),
        }
    }
}

/// A decoded dag-pb link (the name is ignored).
struct PbLink {
    hash: Cid,
}

/// A decoded dag-pb node.
struct PbNode<'a> {
    links: Vec<PbLink>,
    data: Option<&'a [u8]>,
}

fn decode_link(buf: &[u8]) -> Result<PbLink, &'static str> {
    let mut r = PbReader::new(buf);
    let (mut hash, mut name, mut tsize) = (None, false, false);
    while !r.is_empty() {
        match r.key()? {
            (1, 2) if hash.is_none() => {
                let bytes = r.bytes()?;
                hash = Some(Cid::try_from(bytes).map_err(|_| "invalid CID in link")?);
            }
            (2, 2) if !name => {
                std::str::from_utf8(r.bytes()?).map_err(|_| "link name is not UTF-8")?;
                name = true;
            }
            (3, 0) if !tsize => {
                r.varint()?;
                tsize = true;
            }
            (1..=3, _) => return Err("duplicate or mistyped PBLink field"),
            _ => return Err("unknown PBLink field"),
        }
    }
    Ok(PbLink {
        hash: hash.ok_or("link without Hash")?,
    })
}

/// Decodes a dag-pb `PBNode`. Fields may come in either order (canonical blocks have the links
/// first); unknown fields are rejected as the dag-pb spec requires.
fn decode_pbnode(buf: &[u8]) -> Result<PbNode<'_>, &'static str> {
    let mut r = PbReader::new(buf);
    let mut node = PbNode {
        links: Vec::new(),
        data: None,
    };
    while !r.is_empty() {
        match r.key()? {
            (1, 2) if node.data.is_none() => node.data = Some(r.bytes()?),
            (2, 2) => node.links.push(decode_link(r.bytes()?)?),
            (1 | 2, _) => return Err("duplicate or mistyped PBNode field"),
            _ => return Err("unknown PBNode field"),
        }
    }
    Ok(node)
}

/// The UnixFS `Data` message, as far as reading files needs it.
struct UnixfsData<'a> {
    kind: u64,
    data: &'a [u8],
    filesize: Option<u64>,
    blocksizes: Vec<u64>,
}

fn decode_unixfs(buf: &[u8]) -> Result<UnixfsData<'_>, &'static str> {
    let mut r = PbReader::new(buf);
    let mut kind = None;
    let mut out = UnixfsData {
        kind: 0,
        data: &[],
        filesize: None,
        blocksizes: Vec::new(),
    };
    while !r.is_empty() {
        match r.key()? {
            (1, 0) => kind = Some(r.varint()?),
            (2, 2) => out.data = r.bytes()?,
            (3, 0) => out.filesize = Some(r.varint()?),
            (4, 0) => out.blocksizes.push(r.varint()?),
            (4, 2) => {
                // Packed blocksizes (not what Kubo writes, but valid protobuf).
                let mut p = PbReader::new(r.bytes()?);
                while !p.is_empty() {
                    out.blocksizes.push(p.varint()?);
                }
            }
            (1..=4, _) => return Err("mistyped UnixFS field"),
            (_, wire) => r.skip(wire)?, // hashType, fanout, mode, mtime, extensions
        }
    }
    out.kind = kind.ok_or("UnixFS Data without Type")?;
    Ok(out)
}

/// The CIDs a dag-pb block links to, in link order (any dag-pb node, not only files).
///
/// ```
/// use ipfs_hamt::{block::HashAlg, unixfs};
/// let (root, blocks) = unixfs::build_file(&vec![1u8; 2_100_000], HashAlg::Blake3);
/// let top = blocks.iter().find(|b| b.cid == root).unwrap();
/// assert_eq!(unixfs::dag_pb_links(&root, &top.data).unwrap().len(), 3);
/// ```
pub fn dag_pb_links(cid: &Cid, block: &[u8]) -> Result<Vec<Cid>, UnixfsError> {
    let node = decode_pbnode(block).map_err(|r| malformed(cid, r))?;
    Ok(node.links.into_iter().map(|l| l.hash).collect())
}

/// A decoded, checked file node.
struct FileNode<'a> {
    /// Content held in the node itself (comes before the children's).
    data: &'a [u8],
    /// Children with their content sizes.
    children: Vec<(Cid, u64)>,
    /// Total content size.
    size: u64,
}

fn decode_file_node<'a>(cid: &Cid, block: &'a [u8]) -> Result<FileNode<'a>, UnixfsError> {
    let node = decode_pbnode(block).map_err(|r| malformed(cid, r))?;
    let data = node
        .data
        .ok_or_else(|| malformed(cid, "dag-pb node without UnixFS Data"))?;
    let fs = decode_unixfs(data).map_err(|r| malformed(cid, r))?;
    if fs.kind != UNIXFS_FILE && fs.kind != UNIXFS_RAW {
        return Err(UnixfsError::NotAFile {
            cid: *cid,
            kind: fs.kind,
        });
    }
    if fs.blocksizes.len() != node.links.len() {
        return Err(malformed(
            cid,
            format!(
                "{} links but {} blocksizes",
                node.links.len(),
                fs.blocksizes.len()
            ),
        ));
    }
    let mut size = fs.data.len() as u64;
    for &b in &fs.blocksizes {
        size = size
            .checked_add(b)
            .ok_or_else(|| malformed(cid, "file size overflows"))?;
    }
    if let Some(fsz) = fs.filesize {
        if fsz != size {
            return Err(malformed(
                cid,
                format!("filesize {fsz} but data and blocksizes add up to {size}"),
            ));
        }
    }
    let children = node
        .links
        .into_iter()
        .zip(fs.blocksizes)
        .map(|(l, s)| (l.hash, s))
        .collect();
    Ok(FileNode {
        data: fs.data,
        children,
        size,
    })
}

/// The bytes of an identity CID, or `None` if the CID names a hashed block.
fn inline_bytes(cid: &Cid) -> Option<Bytes> {
    (cid.hash().code() == IDENTITY_CODE).then(|| Bytes::copy_from_slice(cid.hash().digest()))
}

async fn fetch(store: &dyn BlockStore, cid: &Cid) -> Result<Bytes, StoreError> {
    match inline_bytes(cid) {
        Some(b) => Ok(b),
        None => store.get(cid).await,
    }
}

async fn fetch_range(
    store: &dyn BlockStore,
    cid: &Cid,
    range: ByteRange,
) -> Result<Bytes, StoreError> {
    match inline_bytes(cid) {
        Some(b) => Ok(range.apply(&b)),
        None if range == ByteRange::Full => store.get(cid).await,
        None => store.get_range(cid, range).await,
    }
}

/// A piece of work of [`read_file`], in file order.
enum Task {
    /// A dag-pb node whose content starts at `offset` and must be `size` bytes long.
    Node {
        cid: Cid,
        offset: u64,
        size: u64,
        depth: usize,
    },
    /// A run of sibling raw leaves.
    Leaves(Vec<LeafRead>),
}

/// The part `[start, end)` of a raw leaf of `size` bytes to read.
struct LeafRead {
    cid: Cid,
    start: u64,
    end: u64,
    size: u64,
}

/// Collects the output: a single piece is returned without copying. When a second piece
/// comes, the whole expected length is reserved at once, fallibly: a file claiming more bytes
/// than can be allocated (a hostile DAG reusing its blocks can claim exabytes) is
/// [`UnixfsError::TooLarge`], not an abort, and the output never holds more than it claims.
struct Output {
    cid: Cid,
    /// Bytes the output will hold.
    want: u64,
    first: Option<Bytes>,
    rest: Option<Vec<u8>>,
}

impl Output {
    fn new(cid: Cid, want: u64) -> Self {
        Output {
            cid,
            want,
            first: None,
            rest: None,
        }
    }

    fn push(&mut self, piece: Bytes) -> Result<(), UnixfsError> {
        if piece.is_empty() {
            return Ok(());
        }
        let too_large = || UnixfsError::TooLarge {
            cid: self.cid,
            len: self.want,
        };
        let longer = || malformed(&self.cid, "file content longer than its sizes say");
        if let Some(buf) = &mut self.rest {
            if (buf.len() + piece.len()) as u64 > self.want {
                return Err(longer());
            }
            buf.extend_from_slice(&piece);
        } else if let Some(first) = self.first.take() {
            let want = usize::try_from(self.want).map_err(|_| too_large())?;
            if first.len() + piece.len() > want {
                return Err(longer());
            }
            let mut buf = Vec::new();
            buf.try_reserve_exact(want).map_err(|_| too_large())?;
            buf.extend_from_slice(&first);
            buf.extend_from_slice(&piece);
            self.rest = Some(buf);
        } else {
            self.first = Some(piece);
        }
        Ok(())
    }

    fn finish(self) -> Bytes {
        match (self.rest, self.first) {
            (Some(buf), _) => Bytes::from(buf),
            (None, Some(b)) => b,
            (None, None) => Bytes::new(),
        }
    }
}

/// Reads `range` of the UnixFS file (or raw block) `cid`, fetching only the leaves that overlap
/// the range.
///
/// Sizes are checked throughout: every node's `filesize`, `blocksizes` and links must agree, and
/// every node and leaf must hold exactly the bytes its parent says. A leaf read only in part is
/// fetched with [`BlockStore::get_range`] and checked to return the expected length (a leaf
/// longer than its parent says is caught only when the range reaches the leaf's end). An empty
/// range ([`ByteRange::is_empty`]) is answered without I/O.
pub async fn read_file(
    store: &dyn BlockStore,
    cid: &Cid,
    range: ByteRange,
) -> Result<Bytes, UnixfsError> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    match cid.codec() {
        RAW => return Ok(fetch_range(store, cid, range).await?),
        DAG_PB => {}
        codec => return Err(UnixfsError::UnsupportedCodec { cid: *cid, codec }),
    }
    let root = fetch(store, cid).await?;
    let node = decode_file_node(cid, &root)?;
    let (start, end) = range.window(node.size);
    if start >= end {
        return Ok(Bytes::new());
    }
    let mut out = Output::new(*cid, end - start);
    let mut stack = Vec::new();
    plan(cid, &node, 0, 0, start, end, &mut out, &mut stack)?;
    while let Some(task) = stack.pop() {
        match task {
            Task::Node {
                cid,
                offset,
                size,
                depth,
            } => {
                if depth > MAX_DEPTH {
                    return Err(UnixfsError::TooDeep { cid });
                }
                let block = fetch(store, &cid).await?;
                let node = decode_file_node(&cid, &block)?;
                if node.size != size {
                    return Err(malformed(
                        &cid,
                        format!("holds {} bytes, its parent says {size}", node.size),
                    ));
                }
                plan(&cid, &node, offset, depth, start, end, &mut out, &mut stack)?;
            }
            Task::Leaves(leaves) => {
                let mut pieces = futures::stream::iter(leaves)
                    .map(|leaf| read_leaf(store, leaf))
                    .buffered(FETCH_CONCURRENCY);
                while let Some(piece) = pieces.try_next().await? {
                    out.push(piece)?;
                }
            }
        }
    }
    let out = out.finish();
    if out.len() as u64 != end - start {
        return Err(malformed(cid, "file content shorter than its sizes say"));
    }
    Ok(out)
}

/// Reads the wanted part of one raw leaf and checks its length.
async fn read_leaf(store: &dyn BlockStore, leaf: LeafRead) -> Result<Bytes, UnixfsError> {
    let LeafRead {
        cid,
        start,
        end,
        size,
    } = leaf;
    let whole = start == 0 && end == size;
    let range = if whole {
        ByteRange::Full
    } else if end == size {
        // Open-ended, so that a leaf longer than its parent says shows.
        ByteRange::From(start)
    } else {
        ByteRange::Slice {
            offset: start,
            length: end - start,
        }
    };
    let bytes = fetch_range(store, &cid, range).await?;
    let got = bytes.len() as u64;
    if got == end - start {
        return Ok(bytes);
    }
    let reason = if whole {
        format!("raw leaf of {got} bytes, its parent says {size}")
    } else {
        format!("raw leaf gave {got} bytes at {start}..{end}, its parent says it holds {size}")
    };
    Err(malformed(&cid, reason))
}

/// Emits the part of `node`'s own data inside `[start, end)` and pushes tasks for the children
/// that overlap it (in reverse, so that they pop in file order).
#[allow(clippy::too_many_arguments)]
fn plan(
    cid: &Cid,
    node: &FileNode<'_>,
    offset: u64,
    depth: usize,
    start: u64,
    end: u64,
    out: &mut Output,
    stack: &mut Vec<Task>,
) -> Result<(), UnixfsError> {
    let overflow = || malformed(cid, "file offsets overflow");
    let data_end = offset
        .checked_add(node.data.len() as u64)
        .ok_or_else(overflow)?;
    if start < data_end && end > offset {
        let s = start.max(offset) - offset;
        let e = end.min(data_end) - offset;
        // s < e <= data.len(), both from u64 values bounded by a usize length.
        let piece = node
            .data
            .get(s as usize..e as usize)
            .ok_or_else(|| malformed(cid, "inline data window out of bounds"))?;
        out.push(Bytes::copy_from_slice(piece))?;
    }
    let mut tasks = Vec::new();
    let mut leaves = Vec::new();
    let mut pos = data_end;
    for &(child, size) in &node.children {
        let child_start = pos;
        pos = pos.checked_add(size).ok_or_else(overflow)?;
        if size == 0 || pos <= start || child_start >= end {
            continue;
        }
        match child.codec() {
            RAW => {
                leaves.push(LeafRead {
                    cid: child,
                    start: start.max(child_start) - child_start,
                    end: end.min(pos) - child_start,
                    size,
                });
            }
            DAG_PB => {
                if !leaves.is_empty() {
                    tasks.push(Task::Leaves(std::mem::take(&mut leaves)));
                }
                tasks.push(Task::Node {
                    cid: child,
                    offset: child_start,
                    size,
                    depth: depth + 1,
                });
            }
            codec => return Err(UnixfsError::UnsupportedCodec { cid: child, codec }),
        }
    }
    if !leaves.is_empty() {
        tasks.push(Task::Leaves(leaves));
    }
    stack.extend(tasks.into_iter().rev());
    Ok(())
}

/// The size of the UnixFS file (or raw block) `cid`: from the root's UnixFS `Data` for dag-pb,
/// from the block itself for raw.
pub async fn file_size(store: &dyn BlockStore, cid: &Cid) -> Result<u64, UnixfsError> {
    match cid.codec() {
        RAW => Ok(fetch(store, cid).await?.len() as u64),
        DAG_PB => {
            let block = fetch(store, cid).await?;
            Ok(decode_file_node(cid, &block)?.size)
        }
        codec => Err(UnixfsError::UnsupportedCodec { cid: *cid, codec }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use multihash::Multihash;
    use proptest::prelude::*;

    use super::*;
    use crate::block::{cid_of, DAG_CBOR};
    use crate::store::MemoryStore;

    const MIB: usize = CHUNK_SIZE;

    /// Deterministic pseudo-random bytes (xorshift64), as the real-node test uses.
    fn xorshift_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A store that counts reads.
    #[derive(Default)]
    struct Counting {
        inner: MemoryStore,
        gets: AtomicUsize,
        ranges: AtomicUsize,
    }

    impl Counting {
        async fn with(blocks: Vec<Block>) -> Self {
            let s = Counting::default();
            s.inner.put_many(blocks).await.unwrap();
            s
        }
        fn take(&self) -> (usize, usize) {
            (
                self.gets.swap(0, Ordering::SeqCst),
                self.ranges.swap(0, Ordering::SeqCst),
            )
        }
        fn fetches(&self) -> usize {
            let (g, r) = self.take();
            g + r
        }
    }

    #[async_trait]
    impl BlockStore for Counting {
        async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(cid).await
        }
        async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, StoreError> {
            self.ranges.fetch_add(1, Ordering::SeqCst);
            self.inner.get_range(cid, range).await
        }
        async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
            self.inner.has(cid).await
        }
        async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
            self.inner.put_many(blocks).await
        }
    }

    fn root_node(blocks: &[Block], root: &Cid) -> (Vec<Cid>, Vec<u64>, Option<u64>) {
        let b = blocks.iter().find(|b| b.cid == *root).unwrap();
        let n = decode_pbnode(&b.data).unwrap();
        let fs = decode_unixfs(n.data.unwrap()).unwrap();
        assert_eq!(fs.kind, UNIXFS_FILE);
        assert!(fs.data.is_empty());
        (
            n.links.iter().map(|l| l.hash).collect(),
            fs.blocksizes,
            fs.filesize,
        )
    }

    fn leaf_sizes(blocks: &[Block]) -> Vec<usize> {
        blocks
            .iter()
            .filter(|b| b.cid.codec() == RAW)
            .map(|b| b.data.len())
            .collect()
    }

    #[tokio::test]
    async fn small_values_are_one_raw_block() {
        for len in [0, 1, 1000, MIB - 1, MIB] {
            let data = xorshift_bytes(len, 1);
            let (root, blocks) = build_file(&data, HashAlg::Blake3);
            assert_eq!(blocks.len(), 1, "len {len}");
            assert_eq!(root, cid_of(RAW, HashAlg::Blake3, &data));
            assert_eq!(blocks[0].cid, root);
            let s = Counting::with(blocks).await;
            assert_eq!(file_size(&s, &root).await.unwrap(), len as u64);
            assert_eq!(read_file(&s, &root, ByteRange::Full).await.unwrap(), data);
            let r = ByteRange::Slice {
                offset: 3,
                length: 7,
            };
            let want = r.apply(&Bytes::from(data.clone()));
            assert_eq!(read_file(&s, &root, r).await.unwrap(), want);
        }
        // The empty value's CID as the real node gives it.
        let (root, _) = build_file(b"", HashAlg::Blake3);
        assert_eq!(
            root.to_string(),
            "bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi"
        );
        let (root, _) = build_file(b"x", HashAlg::Sha2_256);
        assert_eq!(root, cid_of(RAW, HashAlg::Sha2_256, b"x"));
    }

    #[test]
    fn one_mib_plus_one_exact_bytes() {
        let data = xorshift_bytes(MIB + 1, 2);
        let (root, blocks) = build_file(&data, HashAlg::Blake3);
        assert_eq!(root.codec(), DAG_PB);
        assert_eq!(leaf_sizes(&blocks), vec![MIB, 1]);
        let leaf0 = cid_of(RAW, HashAlg::Blake3, &data[..MIB]);
        let leaf1 = cid_of(RAW, HashAlg::Blake3, &data[MIB..]);
        // The layout the real node writes (see the module docs).
        let mut want = Vec::new();
        for (cid, tsize) in [(leaf0, &[0x80, 0x80, 0x40][..]), (leaf1, &[0x01][..])] {
            let cb = cid.to_bytes();
            want.extend_from_slice(&[0x12, (2 + cb.len() + 2 + 1 + tsize.len()) as u8]);
            want.extend_from_slice(&[0x0a, cb.len() as u8]);
            want.extend_from_slice(&cb);
            want.extend_from_slice(&[0x12, 0x00, 0x18]);
            want.extend_from_slice(tsize);
        }
        want.extend_from_slice(&[
            0x0a, 0x0c, 0x08, 0x02, 0x18, 0x81, 0x80, 0x40, 0x20, 0x80, 0x80, 0x40, 0x20, 0x01,
        ]);
        let root_block = blocks.last().unwrap();
        assert_eq!(root_block.cid, root);
        assert_eq!(&root_block.data[..], &want[..]);
        assert_eq!(root, cid_of(DAG_PB, HashAlg::Blake3, &want));
    }

    #[test]
    fn three_million_bytes() {
        let data = xorshift_bytes(3_000_000, 0x9E37_79B9_7F4A_7C15);
        let (root, blocks) = build_file(&data, HashAlg::Blake3);
        assert_eq!(leaf_sizes(&blocks), vec![MIB, MIB, 902_848]);
        assert_eq!(blocks.len(), 4);
        let (links, sizes, filesize) = root_node(&blocks, &root);
        assert_eq!(links.len(), 3);
        assert!(links.iter().all(|c| c.codec() == RAW));
        assert_eq!(sizes, vec![1_048_576, 1_048_576, 902_848]);
        assert_eq!(filesize, Some(3_000_000));
        // What js-ipfs 0.66.1 (`add --hash=blake3 --cid-version=1 --raw-leaves
        // --chunker=size-1048576`) answered for these bytes.
        assert_eq!(root.to_string(), GOLDEN_3M);
    }

    const GOLDEN_3M: &str = "bafyb4icmta62d2ahyj4whoyxzeb3edfxgtsaolvvjfhnxkqhdsqn5ewss4";

    #[test]
    fn balanced_layout_shapes() {
        // Exactly 174 leaves: one level.
        let data = vec![5u8; MAX_LINKS * MIB];
        let (root, blocks) = build_file(&data, HashAlg::Blake3);
        let (links, sizes, _) = root_node(&blocks, &root);
        assert_eq!(links.len(), MAX_LINKS);
        assert!(sizes.iter().all(|&s| s == MIB as u64));
        // 175 leaves: a second level whose last child wraps the lone leaf.
        let data = vec![5u8; (MAX_LINKS + 1) * MIB];
        let (root, blocks) = build_file(&data, HashAlg::Blake3);
        let (links, sizes, _) = root_node(&blocks, &root);
        assert_eq!(sizes, vec![(MAX_LINKS * MIB) as u64, MIB as u64]);
        assert!(links.iter().all(|c| c.codec() == DAG_PB));
        let (l1, s1, _) = root_node(&blocks, &links[1]);
        assert_eq!((l1.len(), s1), (1, vec![MIB as u64]));
    }

    /// 175 MiB + 1 byte: 176 leaves under two levels; reads fetch only what they need.
    #[tokio::test]
    async fn two_levels_and_their_reads() {
        let len = 175 * MIB + 1;
        let mut data = vec![0u8; len];
        for (i, leaf) in data.chunks_mut(MIB).enumerate() {
            leaf.fill(i as u8);
            leaf[0] = 0xff;
            for (j, b) in leaf.iter_mut().enumerate().take(64) {
                *b ^= j as u8;
            }
        }
        let (root, blocks) = build_file(&data, HashAlg::Blake3);
        assert_eq!(leaf_sizes(&blocks).len(), 176);
        assert_eq!(blocks.len(), 176 + 3);
        let (links, sizes, filesize) = root_node(&blocks, &root);
        assert_eq!(links.len(), 2);
        assert_eq!(sizes, vec![(174 * MIB) as u64, (MIB + 1) as u64]);
        assert_eq!(filesize, Some(len as u64));
        let (l0, s0, _) = root_node(&blocks, &links[0]);
        assert_eq!(l0.len(), 174);
        assert!(s0.iter().all(|&s| s == MIB as u64));
        let (l1, s1, _) = root_node(&blocks, &links[1]);
        assert_eq!(l1.len(), 2);
        assert_eq!(s1, vec![MIB as u64, 1]);
        // Tsize of the root's links: encoded subtree bytes.
        let root_block = blocks.iter().find(|b| b.cid == root).unwrap();
        let child0 = blocks.iter().find(|b| b.cid == links[0]).unwrap();
        let mut tsize = Vec::new();
        put_varint(&mut tsize, (child0.data.len() + 174 * MIB) as u64);
        let pos = root_block
            .data
            .windows(tsize.len() + 3)
            .position(|w| w[..3] == [0x12, 0x00, 0x18] && w[3..] == tsize[..]);
        assert!(pos.is_some(), "Tsize of the first child");

        let whole = Bytes::from(data);
        let s = Counting::with(blocks).await;
        assert_eq!(file_size(&s, &root).await.unwrap(), len as u64);
        assert_eq!(s.fetches(), 1);
        let cases = [
            // Across the boundary between the two second-level subtrees: root, both children,
            // leaves 173 and 174.
            (
                ByteRange::Slice {
                    offset: (174 * MIB - 3) as u64,
                    length: 6,
                },
                5,
            ),
            // The last byte: root, child 1, its last leaf.
            (ByteRange::Suffix(1), 3),
            // Two leaves in the first subtree.
            (
                ByteRange::Slice {
                    offset: (10 * MIB + 5) as u64,
                    length: MIB as u64,
                },
                4,
            ),
            (ByteRange::From((175 * MIB) as u64), 3),
            (ByteRange::From(len as u64), 1),
        ];
        for (r, fetches) in cases {
            let got = read_file(&s, &root, r).await.unwrap();
            assert_eq!(got, r.apply(&whole), "{r:?}");
            assert_eq!(s.fetches(), fetches, "{r:?}");
        }
        let got = read_file(&s, &root, ByteRange::Full).await.unwrap();
        assert!(got == whole);
        assert_eq!(s.fetches(), 3 + 176);
    }

    #[tokio::test]
    async fn range_reads_fetch_only_overlapping_leaves() {
        let len = 3_000_000u64;
        let data = Bytes::from(xorshift_bytes(len as usize, 3));
        let (root, blocks) = build_file(&data, HashAlg::Blake3);
        let s = Counting::with(blocks).await;
        let m = MIB as u64;
        let leaves = [(0, m), (m, 2 * m), (2 * m, len)];
        let overlapping = |(a, b): (u64, u64)| {
            leaves
                .iter()
                .filter(|&&(s, e)| a < b && s < b && a < e)
                .count()
        };
        let mut ranges = vec![
            ByteRange::Full,
            ByteRange::From(0),
            ByteRange::From(len),
            ByteRange::From(len + 10),
            ByteRange::Suffix(1),
            ByteRange::Suffix(len),
            ByteRange::Suffix(u64::MAX),
            ByteRange::Slice {
                offset: u64::MAX,
                length: u64::MAX,
            },
        ];
        let points = [
            0,
            1,
            m - 1,
            m,
            m + 1,
            2 * m - 1,
            2 * m,
            2 * m + 1,
            len - 1,
            len,
        ];
        for &a in &points {
            ranges.push(ByteRange::From(a));
            ranges.push(ByteRange::Suffix(len - a));
            for &b in &points {
                if b > a {
                    ranges.push(ByteRange::Slice {
                        offset: a,
                        length: b - a,
                    });
                }
            }
        }
        for r in ranges {
            let got = read_file(&s, &root, r).await.unwrap();
            assert!(got == r.apply(&data), "{r:?}");
            let (gets, partial) = s.take();
            let window = r.window(len);
            let n = overlapping(window);
            if r.is_empty() {
                assert_eq!(gets + partial, 0, "{r:?}");
            } else {
                assert_eq!(gets + partial, 1 + n, "{r:?}");
            }
            // Leaves read in part go through get_range; whole ones through get.
            let whole = leaves
                .iter()
                .filter(|&&(s, e)| window.0 <= s && e <= window.1)
                .count();
            assert_eq!(partial, n - whole, "{r:?}");
        }
        for r in [
            ByteRange::Slice {
                offset: 5,
                length: 0,
            },
            ByteRange::Suffix(0),
        ] {
            assert!(read_file(&s, &root, r).await.unwrap().is_empty());
            assert_eq!(s.fetches(), 0);
        }
    }

    #[test]
    fn streaming_matches_build_file() {
        for len in [0, 5, MIB, 2 * MIB, 2 * MIB + 7, 3_000_000] {
            let data = xorshift_bytes(len, 4);
            let (root, blocks) = build_file(&data, HashAlg::Blake3);
            for step in [1usize << 16, MIB - 1, MIB, MIB + 1, 3 * MIB] {
                let mut fb = FileBuilder::new(HashAlg::Blake3);
                let mut got = Vec::new();
                for part in data.chunks(step) {
                    got.extend(fb.push(part));
                    got.extend(fb.push(&[]));
                }
                assert_eq!(fb.len(), len as u64);
                let (r, rest) = fb.finish();
                got.extend(rest);
                assert_eq!(r, root, "len {len} step {step}");
                assert_eq!(got, blocks, "len {len} step {step}");
            }
        }
        // Blocks come out as soon as leaves fill.
        let mut fb = FileBuilder::new(HashAlg::Blake3);
        assert!(fb.push(&[1; 1000]).is_empty());
        assert_eq!(fb.push(&vec![1; MIB]).len(), 1);
    }

    // ------------------------------------------------------------------- malformed input

    fn pb_node(links: &[(Cid, u64)], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (cid, tsize) in links {
            let mut l = Vec::new();
            put_bytes_field(&mut l, 0x0a, &cid.to_bytes());
            put_bytes_field(&mut l, 0x12, b"");
            l.push(0x18);
            put_varint(&mut l, *tsize);
            put_bytes_field(&mut out, 0x12, &l);
        }
        put_bytes_field(&mut out, 0x0a, data);
        out
    }

    fn unixfs(kind: u64, data: &[u8], filesize: Option<u64>, sizes: &[u64]) -> Vec<u8> {
        let mut out = vec![0x08];
        put_varint(&mut out, kind);
        if !data.is_empty() {
            put_bytes_field(&mut out, 0x12, data);
        }
        if let Some(f) = filesize {
            out.push(0x18);
            put_varint(&mut out, f);
        }
        for &s in sizes {
            out.push(0x20);
            put_varint(&mut out, s);
        }
        out
    }

    async fn read_block(store: &MemoryStore, bytes: Vec<u8>) -> Result<Bytes, UnixfsError> {
        let b = Block::new(DAG_PB, HashAlg::Blake3, bytes);
        let cid = b.cid;
        store.put(b).await.unwrap();
        let full = read_file(store, &cid, ByteRange::Full).await;
        let part = read_file(store, &cid, ByteRange::Suffix(1)).await;
        let size = file_size(store, &cid).await;
        assert_eq!(full.is_ok(), part.is_ok());
        if full.is_ok() {
            assert!(size.is_ok());
        }
        full
    }

    fn is_malformed(r: &Result<Bytes, UnixfsError>) -> bool {
        matches!(r, Err(UnixfsError::Malformed { .. }))
    }

    #[tokio::test]
    async fn malformed_nodes_are_errors() {
        let s = MemoryStore::new();
        let leaf = Block::new(RAW, HashAlg::Blake3, b"hello".to_vec());
        let lc = leaf.cid;
        s.put(leaf).await.unwrap();

        // Sanity: a hand-made valid node with inline data and a leaf.
        let ok = pb_node(&[(lc, 5)], &unixfs(2, b"ab", Some(7), &[5]));
        assert_eq!(&read_block(&s, ok).await.unwrap()[..], b"abhello");
        // Packed blocksizes are accepted too.
        let mut packed = vec![0x08, 0x02, 0x22, 0x01, 0x05];
        packed.extend_from_slice(&[0x28, 0x01]); // unknown hashType field: skipped
        assert_eq!(
            &read_block(&s, pb_node(&[(lc, 5)], &packed)).await.unwrap()[..],
            b"hello"
        );

        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("empty block", vec![]),
            ("truncated varint", vec![0x0a, 0x80]),
            ("length past end", vec![0x0a, 0x05, 0x08]),
            ("unknown PBNode field", vec![0x1a, 0x00]),
            ("field zero", vec![0x02, 0x00]),
            ("wire type 3", vec![0x0b]),
            (
                "duplicate data",
                vec![0x0a, 0x02, 0x08, 0x02, 0x0a, 0x02, 0x08, 0x02],
            ),
            ("no Type", pb_node(&[], &[0x18, 0x00])),
            (
                "links without blocksizes",
                pb_node(&[(lc, 5)], &unixfs(2, b"", None, &[])),
            ),
            (
                "blocksizes without links",
                pb_node(&[], &unixfs(2, b"", None, &[5])),
            ),
            (
                "filesize mismatch",
                pb_node(&[(lc, 5)], &unixfs(2, b"", Some(6), &[5])),
            ),
            (
                "size overflow",
                pb_node(&[(lc, 5), (lc, 5)], &unixfs(2, b"", None, &[u64::MAX, 1])),
            ),
            (
                "leaf shorter",
                pb_node(&[(lc, 9)], &unixfs(2, b"", None, &[9])),
            ),
            (
                "leaf longer",
                pb_node(&[(lc, 3)], &unixfs(2, b"", None, &[3])),
            ),
            (
                "11-byte varint",
                vec![
                    0x0a, 0x0c, 0x08, 0x02, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0xff, 0x02,
                ],
            ),
            ("bad link CID", {
                let mut v = vec![0x12, 0x04, 0x0a, 0x02, 0x01, 0x99];
                v.extend(pb_node(&[], &unixfs(2, b"", None, &[1])));
                v
            }),
            ("link without hash", {
                let mut v = vec![0x12, 0x02, 0x18, 0x01];
                v.extend(pb_node(&[], &unixfs(2, b"", None, &[1])));
                v
            }),
            ("bad UTF-8 name", {
                let cb = lc.to_bytes();
                let mut l = Vec::new();
                put_bytes_field(&mut l, 0x0a, &cb);
                put_bytes_field(&mut l, 0x12, &[0xff]);
                let mut v = Vec::new();
                put_bytes_field(&mut v, 0x12, &l);
                v.extend(pb_node(&[], &unixfs(2, b"", None, &[5])));
                v
            }),
            ("mistyped filesize", pb_node(&[], &[0x08, 0x02, 0x1a, 0x00])),
        ];
        for (what, bytes) in bad {
            let r = read_block(&s, bytes).await;
            assert!(is_malformed(&r), "{what}: {r:?}");
        }

        // Not a file.
        let r = read_block(&s, pb_node(&[], &unixfs(1, b"", None, &[]))).await;
        assert!(
            matches!(r, Err(UnixfsError::NotAFile { kind: 1, .. })),
            "{r:?}"
        );

        // A child node holding other than its parent says.
        let child = Block::new(
            DAG_PB,
            HashAlg::Blake3,
            pb_node(&[(lc, 5)], &unixfs(2, b"", Some(5), &[5])),
        );
        let cc = child.cid;
        s.put(child).await.unwrap();
        let r = read_block(&s, pb_node(&[(cc, 60)], &unixfs(2, b"", None, &[4]))).await;
        assert!(is_malformed(&r), "{r:?}");
        let r = read_block(&s, pb_node(&[(cc, 60)], &unixfs(2, b"", None, &[5]))).await;
        assert_eq!(&r.unwrap()[..], b"hello");

        // Codecs.
        let cbor = Cid::new_v1(DAG_CBOR, *lc.hash());
        let r = read_file(&s, &cbor, ByteRange::Full).await;
        assert!(matches!(
            r,
            Err(UnixfsError::UnsupportedCodec { codec: 0x71, .. })
        ));
        assert!(file_size(&s, &cbor).await.is_err());
        let r = read_block(&s, pb_node(&[(cbor, 5)], &unixfs(2, b"", None, &[5]))).await;
        assert!(
            matches!(r, Err(UnixfsError::UnsupportedCodec { .. })),
            "{r:?}"
        );

        // Missing blocks.
        let gone = cid_of(RAW, HashAlg::Blake3, b"gone");
        let r = read_block(&s, pb_node(&[(gone, 4)], &unixfs(2, b"", None, &[4]))).await;
        assert!(matches!(r, Err(UnixfsError::Store(StoreError::NotFound(c))) if c == gone));

        // Identity leaves are read inline.
        let id = Cid::new_v1(RAW, Multihash::wrap(IDENTITY_CODE, b"inline").unwrap());
        let r = read_block(&s, pb_node(&[(id, 6)], &unixfs(2, b"", None, &[6]))).await;
        assert_eq!(&r.unwrap()[..], b"inline");

        // Too deep: a chain of single-child nodes.
        // Nodes at depths 0..=MAX_DEPTH are followed; one more level is refused.
        let mut chain = vec![lc];
        for _ in 0..MAX_DEPTH + 2 {
            let below = chain[chain.len() - 1];
            let b = Block::new(
                DAG_PB,
                HashAlg::Blake3,
                pb_node(&[(below, 1)], &unixfs(2, b"", None, &[5])),
            );
            chain.push(b.cid);
            s.put(b).await.unwrap();
        }
        let r = read_file(&s, &chain[MAX_DEPTH + 1], ByteRange::Full).await;
        assert_eq!(&r.unwrap()[..], b"hello");
        let r = read_file(&s, &chain[MAX_DEPTH + 2], ByteRange::Full).await;
        assert!(matches!(r, Err(UnixfsError::TooDeep { .. })), "{r:?}");
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes as a dag-pb root: an error or some content, never a panic.
        #[test]
        fn arbitrary_roots_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = MemoryStore::new();
            let b = Block::new(DAG_PB, HashAlg::Blake3, bytes);
            let cid = b.cid;
            run(s.put(b)).unwrap();
            let _ = run(read_file(&s, &cid, ByteRange::Full));
            let _ = run(read_file(&s, &cid, ByteRange::Suffix(3)));
            let _ = run(file_size(&s, &cid));
        }

        /// Mutations of a valid root (over real leaves): errors or content, never a panic.
        #[test]
        fn mutated_roots_never_panic(
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
            offset in 0u64..40,
            length in 0u64..40,
        ) {
            let s = MemoryStore::new();
            let a = Block::new(RAW, HashAlg::Blake3, b"0123456789".to_vec());
            let c = Block::new(RAW, HashAlg::Blake3, b"abcdefghij".to_vec());
            let links = [(a.cid, 10), (c.cid, 10)];
            let mut root = pb_node(&links, &unixfs(2, b"xy", Some(22), &[10, 10]));
            run(s.put_many(vec![a, c])).unwrap();
            if truncate {
                root.truncate(cut.index(root.len()));
            } else {
                let i = pos.index(root.len());
                root[i] = byte;
            }
            let b = Block::new(DAG_PB, HashAlg::Blake3, root);
            let cid = b.cid;
            run(s.put(b)).unwrap();
            let r = ByteRange::Slice { offset, length };
            if let Ok(got) = run(read_file(&s, &cid, r)) {
                prop_assert!(got.len() as u64 <= length);
            }
            let _ = run(file_size(&s, &cid));
        }
    }
}
