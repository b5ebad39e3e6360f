//! Checking a whole tree: every block reachable from a root is read and its bytes are checked
//! against its CID.
//!
//! The walk is the same for every layout: a [`Structure`] says where a layout's structure
//! blocks lead ([`HamtStructure`] for the HAMT). Datasets of any layout are checked with
//! [`crate::dataset::verify`], which picks the structure from the root block.
//!
//! The walk covers every HAMT node, every value block, and for values stored as UnixFS files
//! (dag-pb), every node and leaf of the file. Each distinct block is read once. A block the
//! store does not have is reported as *missing*; a block whose bytes do not hash to its CID, or
//! that cannot be decoded as what its parent says it is, is reported as *corrupt*; the walk goes
//! on past both, so one run lists every problem. Only failures of the store itself (I/O errors,
//! a broken backend) stop it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use ipfs_hamt::{HamtConfig, Writer, store::MemoryStore, verify::verify_tree};
//! let store = Arc::new(MemoryStore::new());
//! let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
//! w.insert("a", b"1".to_vec()).await.unwrap();
//! let root = w.commit().await.unwrap();
//! let report = verify_tree(&*store, &root, &HamtConfig::default(), &mut |_| {}).await.unwrap();
//! assert!(report.is_ok());
//! assert_eq!((report.nodes, report.values, report.blocks), (1, 1, 2));
//! # });
//! ```

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt as _;

use crate::block::{verify, DAG_CBOR, DAG_PB, IDENTITY_CODE};
use crate::error::{Error, Result};
use crate::hamt::HamtConfig;
use crate::node::{Link, Node, Slot};
use crate::store::{BlockStore, StoreError};
use crate::unixfs;

/// Blocks fetched concurrently.
const CONCURRENCY: usize = 16;

/// What [`verify_tree`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// HAMT nodes read and verified.
    pub nodes: u64,
    /// Value blocks read and verified (raw values, and every block of UnixFS values).
    pub values: u64,
    /// Distinct blocks read and verified (`nodes + values`).
    pub blocks: u64,
    /// Bytes of those blocks.
    pub bytes: u64,
    /// Reachable blocks the store does not hold.
    pub missing: Vec<Cid>,
    /// Reachable blocks that are present but wrong, with the reason.
    pub corrupt: Vec<(Cid, String)>,
}

impl VerifyReport {
    /// True if nothing is missing or corrupt.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty()
    }
}

/// What a block is expected to be.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A structure block (a HAMT node) at this depth.
    Node(usize),
    /// A value block, or a block of a UnixFS value at this dag-pb depth.
    Value(usize),
}

/// A block a structure block links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// Another structure block of the layout, one level deeper.
    Structure(Cid),
    /// A value block (raw, or the root of a UnixFS file).
    Value(Cid),
}

/// How a layout's structure blocks (HAMT nodes; a sharded manifest and its shards) link to
/// each other and to values: what [`verify_structure`] needs to walk a layout.
pub trait Structure: Send + Sync {
    /// The children of the structure block `cid` (bytes `data`, verified against `cid`) found
    /// at `depth` (the root is 0), or why it is not a valid block of the layout.
    fn children(&self, cid: &Cid, depth: usize, data: Bytes) -> Result<Vec<Child>, String>;
}

/// The HAMT's structure: nodes link to child nodes and to values.
#[derive(Debug, Clone)]
pub struct HamtStructure {
    bucket_limit: usize,
    max_depth: usize,
}

impl HamtStructure {
    /// The structure of HAMTs written with `config`.
    pub fn new(config: &HamtConfig) -> Self {
        HamtStructure {
            bucket_limit: config.bucket_limit,
            max_depth: config.max_depth(),
        }
    }
}

impl Structure for HamtStructure {
    fn children(&self, cid: &Cid, depth: usize, data: Bytes) -> Result<Vec<Child>, String> {
        if cid.codec() != DAG_CBOR {
            let e = Error::NotANode {
                cid: *cid,
                codec: cid.codec(),
            };
            return Err(e.to_string());
        }
        if depth > 0 && depth >= self.max_depth {
            return Err(Error::TooDeep { cid: *cid, depth }.to_string());
        }
        let node = Node::decode(data, self.bucket_limit)
            .map_err(|e| format!("not a valid HAMT node: {e}"))?;
        let mut out = Vec::new();
        for (_, slot) in node.iter() {
            match slot {
                Slot::Bucket(b) => out.extend(b.iter().filter_map(|e| e.cid()).map(Child::Value)),
                Slot::Link(Link::Stored(c)) => out.push(Child::Structure(*c)),
                Slot::Link(Link::Dirty(_)) => {}
            }
        }
        Ok(out)
    }
}

/// Reads every block reachable from the HAMT `root` and checks it. `progress` is called with
/// the size of each block verified. See the module docs.
pub async fn verify_tree(
    store: &dyn BlockStore,
    root: &Cid,
    config: &HamtConfig,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<VerifyReport> {
    config.validate()?;
    verify_structure(store, root, &HamtStructure::new(config), progress).await
}

/// Reads every block reachable from `root`, a structure block of a layout described by
/// `structure`, and checks it: [`verify_tree`] for any layout. Structure blocks are counted
/// as `nodes`.
pub async fn verify_structure(
    store: &dyn BlockStore,
    root: &Cid,
    structure: &dyn Structure,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut seen: HashSet<Cid> = HashSet::new();
    seen.insert(*root);
    let mut stack = vec![(*root, Kind::Node(0))];
    while !stack.is_empty() {
        let batch: Vec<(Cid, Kind)> = stack.split_off(stack.len().saturating_sub(CONCURRENCY * 4));
        let fetched: Vec<_> = futures::stream::iter(batch)
            .map(|(cid, kind)| async move { (cid, kind, fetch(store, &cid).await) })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for (cid, kind, got) in fetched {
            let data = match got {
                Ok(data) => data,
                Err(StoreError::NotFound(_)) => {
                    report.missing.push(cid);
                    continue;
                }
                Err(StoreError::Verify(e)) => {
                    report.corrupt.push((cid, e.to_string()));
                    continue;
                }
                Err(e) => return Err(Error::Store(e)),
            };
            // Stores that do not verify on read (memory) are checked here.
            if let Err(e) = verify(&cid, &data) {
                report.corrupt.push((cid, e.to_string()));
                continue;
            }
            report.blocks += 1;
            report.bytes += data.len() as u64;
            progress(data.len() as u64);
            let mut push = |c: Cid, k: Kind| {
                if seen.insert(c) {
                    stack.push((c, k));
                }
            };
            match kind {
                Kind::Node(depth) => {
                    report.nodes += 1;
                    match structure.children(&cid, depth, data) {
                        Ok(children) => {
                            for child in children {
                                match child {
                                    Child::Structure(c) => push(c, Kind::Node(depth + 1)),
                                    Child::Value(c) => push(c, Kind::Value(0)),
                                }
                            }
                        }
                        Err(why) => report.corrupt.push((cid, why)),
                    }
                }
                Kind::Value(depth) => {
                    report.values += 1;
                    if cid.codec() != DAG_PB {
                        continue;
                    }
                    if depth > unixfs::MAX_DEPTH {
                        report
                            .corrupt
                            .push((cid, "UnixFS DAG deeper than allowed".into()));
                        continue;
                    }
                    match unixfs::dag_pb_links(&cid, &data) {
                        Ok(links) => {
                            for c in links {
                                push(c, Kind::Value(depth + 1));
                            }
                        }
                        Err(e) => report.corrupt.push((cid, e.to_string())),
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The block's bytes; identity CIDs carry their own.
async fn fetch(store: &dyn BlockStore, cid: &Cid) -> Result<Bytes, StoreError> {
    if cid.hash().code() == IDENTITY_CODE {
        return Ok(Bytes::copy_from_slice(cid.hash().digest()));
    }
    store.get(cid).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::block::{cid_of, Block, HashAlg, RAW};
    use crate::hamt::Writer;
    use crate::store::MemoryStore;

    /// A store that returns wrong bytes for one CID and forgets another.
    struct Damaged {
        inner: Arc<MemoryStore>,
        corrupt: Option<Cid>,
        missing: Option<Cid>,
    }

    #[async_trait]
    impl BlockStore for Damaged {
        async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
            if Some(*cid) == self.missing {
                return Err(StoreError::NotFound(*cid));
            }
            let data = self.inner.get(cid).await?;
            if Some(*cid) == self.corrupt {
                let mut v = data.to_vec();
                v[0] ^= 1;
                return Ok(v.into());
            }
            Ok(data)
        }
        async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
            self.inner.has(cid).await
        }
        async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
            self.inner.put_many(blocks).await
        }
    }

    async fn sample() -> (Arc<MemoryStore>, Cid, Cid, Cid) {
        let store = Arc::new(MemoryStore::new());
        let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
        for i in 0..300 {
            w.insert(&format!("k{i}"), format!("v{}", i % 250).into_bytes())
                .await
                .unwrap();
        }
        let big: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
        w.insert("big", big.clone()).await.unwrap();
        let root = w.commit().await.unwrap();
        let (file_root, blocks) = unixfs::build_file(&big, HashAlg::Blake3);
        let leaf = blocks[1].cid;
        assert_eq!(leaf.codec(), RAW);
        (store, root, file_root, leaf)
    }

    #[tokio::test]
    async fn walks_every_block_once() {
        let (store, root, _, _) = sample().await;
        let mut seen_bytes = 0u64;
        let report = verify_tree(&*store, &root, &HamtConfig::default(), &mut |n| {
            seen_bytes += n
        })
        .await
        .unwrap();
        assert!(report.is_ok(), "{report:?}");
        // 250 distinct small values, 3 leaves + 1 dag-pb root for the big one.
        assert_eq!(report.values, 250 + 4);
        assert_eq!(report.blocks, report.nodes + report.values);
        assert_eq!(report.blocks as usize, store.len());
        assert_eq!(report.bytes, store.total_bytes());
        assert_eq!(seen_bytes, report.bytes);
    }

    #[tokio::test]
    async fn reports_missing_and_corrupt_blocks_and_goes_on() {
        let (store, root, file_root, leaf) = sample().await;
        let small = cid_of(RAW, HashAlg::Blake3, b"v7");
        let damaged = Damaged {
            inner: store.clone(),
            corrupt: Some(small),
            missing: Some(leaf),
        };
        let report = verify_tree(&damaged, &root, &HamtConfig::default(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.missing, vec![leaf]);
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(report.corrupt[0].0, small);
        assert!(report.corrupt[0].1.contains("verification"));
        assert!(!report.is_ok());
        // Everything else was still read.
        assert_eq!(report.blocks as usize, store.len() - 2);
        // A missing file root hides its leaves, a missing HAMT root hides everything.
        let damaged = Damaged {
            inner: store.clone(),
            corrupt: None,
            missing: Some(file_root),
        };
        let report = verify_tree(&damaged, &root, &HamtConfig::default(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.missing, vec![file_root]);
        let ghost = cid_of(DAG_CBOR, HashAlg::Blake3, b"ghost");
        let report = verify_tree(&*store, &ghost, &HamtConfig::default(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.missing, vec![ghost]);
        assert_eq!(report.blocks, 0);
    }

    #[tokio::test]
    async fn a_value_that_is_not_a_node_is_corrupt() {
        let store = MemoryStore::new();
        let b = Block::new(DAG_CBOR, HashAlg::Blake3, b"\x01".to_vec());
        store.put(b.clone()).await.unwrap();
        let report = verify_tree(&store, &b.cid, &HamtConfig::default(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.corrupt.len(), 1);
        assert!(report.corrupt[0].1.contains("not a valid HAMT node"));
    }
}
