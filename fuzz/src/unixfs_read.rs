//! Fuzz target `unixfs_read`: UnixFS files (dag-pb nodes and raw leaves) read with
//! `unixfs::read_file`, `unixfs::file_size` and `value::read_value`.
//!
//! The input describes up to 6 blocks, built in order so that a node can link (with a real
//! CID) to blocks built before it: raw leaves, arbitrary bytes labelled dag-pb, and dag-pb
//! nodes assembled from fuzzed fields (UnixFS type, inline data, `filesize` and `blocksizes`
//! that may be true or lies, links to earlier blocks, to identity CIDs, to absent blocks, or
//! with other codecs). The last block is the file. Properties: no panic; a full read and the
//! file size agree; a ranged read equals the same range of the full read; `dag_pb_links`
//! never panics.

use std::sync::Arc;

use bytes::Bytes;
use ipfs_hamt::block::{cid_of, Block, HashAlg, DAG_CBOR, DAG_PB, IDENTITY_CODE, RAW};
use ipfs_hamt::store::{BlockStore, MemoryStore};
use ipfs_hamt::unixfs::{dag_pb_links, file_size, read_file};
use ipfs_hamt::value::read_value;
use ipfs_hamt::{ByteRange, Cid};

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u16(&mut self) -> u64 {
        u64::from(self.byte()) << 8 | u64::from(self.byte())
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn field_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

/// A CID that names no block of the store.
fn absent(codec: u64, seed: u8) -> Cid {
    cid_of(codec, HashAlg::Blake3, &[seed, 0xff, 0xfe])
}

/// Builds the blocks; returns them, with the last one as the file.
fn build(input: &mut Input<'_>) -> Vec<(Block, u64)> {
    let count = 1 + usize::from(input.byte() % 6);
    let mut blocks: Vec<(Block, u64)> = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = input.byte();
        let alg = if kind & 0x80 != 0 {
            HashAlg::Sha2_256
        } else {
            HashAlg::Blake3
        };
        let block = match kind % 4 {
            0 => {
                let len = usize::from(input.byte() % 64);
                let data = input.take(len).to_vec();
                let size = data.len() as u64;
                (Block::new(RAW, alg, data), size)
            }
            1 => {
                let len = usize::from(input.byte());
                (Block::new(DAG_PB, alg, input.take(len).to_vec()), 0)
            }
            _ => {
                let t = [2u64, 0, 1, 2, 5, 2, 0, 2][usize::from(input.byte() % 8)];
                let data_len = usize::from(input.byte() % 24);
                let data = input.take(data_len).to_vec();
                let nlinks = usize::from(input.byte() % 5);
                let mut links = Vec::new();
                let mut sizes = Vec::new();
                for _ in 0..nlinks {
                    let target = input.byte();
                    let (cid, true_size) = match (target % 16, blocks.len()) {
                        (13, _) | (_, 0) => {
                            let n = usize::from(target % 5);
                            let inline = vec![target; n];
                            (identity_raw(&inline), n as u64)
                        }
                        (14, _) => (absent([RAW, DAG_PB][usize::from(target & 1)], target), 1),
                        (15, _) => (absent(DAG_CBOR, target), 1),
                        (_, n) => {
                            let (b, s) = &blocks[usize::from(target) % n];
                            (b.cid, *s)
                        }
                    };
                    let lie = input.byte();
                    let size = if lie % 5 == 0 {
                        u64::from(lie) * 3
                    } else {
                        true_size
                    };
                    links.push((cid, lie));
                    sizes.push(size);
                }
                let total = data.len() as u64 + sizes.iter().sum::<u64>();
                let fs_mode = input.byte();
                let mut unixfs = Vec::new();
                field_varint(&mut unixfs, 1, t);
                if !data.is_empty() || fs_mode & 8 != 0 {
                    field_bytes(&mut unixfs, 2, &data);
                }
                match fs_mode % 4 {
                    0 => {}
                    1 => field_varint(&mut unixfs, 3, u64::from(fs_mode) << 8),
                    _ => field_varint(&mut unixfs, 3, total),
                }
                if fs_mode & 16 != 0 {
                    let mut packed = Vec::new();
                    for s in &sizes {
                        varint(&mut packed, *s);
                    }
                    field_bytes(&mut unixfs, 4, &packed);
                } else {
                    for s in &sizes {
                        field_varint(&mut unixfs, 4, *s);
                    }
                }
                if fs_mode & 32 != 0 {
                    sizes.pop(); // one blocksize fewer than links
                }
                let mut node = Vec::new();
                for (cid, lie) in &links {
                    let mut link = Vec::new();
                    field_bytes(&mut link, 1, &cid.to_bytes());
                    if lie & 1 != 0 {
                        field_bytes(&mut link, 2, b"");
                    }
                    field_varint(&mut link, 3, u64::from(*lie));
                    field_bytes(&mut node, 2, &link);
                }
                field_bytes(&mut node, 1, &unixfs);
                if fs_mode & 64 != 0 {
                    node.extend_from_slice(input.take(4));
                }
                (Block::new(DAG_PB, alg, node), total)
            }
        };
        blocks.push(block);
    }
    blocks
}

/// A raw CID with the identity hash: the bytes are inline, no block is fetched.
fn identity_raw(bytes: &[u8]) -> Cid {
    let mut b = vec![0x01, RAW as u8, IDENTITY_CODE as u8, bytes.len() as u8];
    b.extend_from_slice(bytes);
    Cid::try_from(b).expect("identity CID")
}

fn range(input: &mut Input<'_>) -> ByteRange {
    match input.byte() % 4 {
        0 => ByteRange::Full,
        1 => ByteRange::From(input.u16() % 512),
        2 => ByteRange::Slice {
            offset: input.u16() % 512,
            length: input.u16() % 512,
        },
        _ => ByteRange::Suffix(input.u16() % 512),
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let blocks = build(&mut input);
    let r = range(&mut input);
    let Some((file, _)) = blocks.last() else {
        return;
    };
    let root = file.cid;
    let root_bytes = file.data.clone();
    RT.with(|rt| {
        rt.block_on(async {
            let store = Arc::new(MemoryStore::new());
            let all: Vec<Block> = blocks.iter().map(|(b, _)| b.clone()).collect();
            store.put_many(all).await.expect("memory store put");
            let _ = dag_pb_links(&root, &root_bytes);
            let full = read_file(&*store, &root, ByteRange::Full).await;
            let size = file_size(&*store, &root).await;
            if let (Ok(f), Ok(s)) = (&full, &size) {
                assert_eq!(f.len() as u64, *s, "full read and file_size agree");
            }
            let part = read_file(&*store, &root, r).await;
            if let (Ok(f), Ok(p)) = (&full, &part) {
                assert_eq!(
                    *p,
                    r.apply(f),
                    "a range read is that range of the full read"
                );
            }
            let value = read_value(&*store, &root, r).await;
            if let (Ok(p), Ok(v)) = (&part, &value) {
                assert_eq!(p, v, "read_value agrees with read_file");
            }
            let _: Option<Bytes> = full.ok();
        })
    });
}
