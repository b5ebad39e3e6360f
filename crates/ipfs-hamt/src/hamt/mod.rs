//! The HAMT: a [`Writer`] that builds and changes a tree in memory and commits it to a
//! store, and a [`Reader`] that serves a committed root to many tasks at once.

use std::sync::Arc;

use cid::Cid;

use crate::block::HashAlg;
use crate::error::{Error, Result};
use crate::key_hash::{Blake3Hasher, KeyHasher};
use crate::node::IdEncoding;

mod cache;
mod diff;
mod lookup;
mod reader;
mod stats;
mod writer;

pub use cache::{CacheStats, NodeCache};
pub use diff::{diff, ChangeKind, KeyChange};
pub use reader::Reader;
pub use stats::TreeStats;
pub use writer::Writer;

/// The nodes a walk of a tree has reached (16-byte fingerprints of their CIDs).
///
/// In a HAMT every node has exactly one place: its position is fixed by the hashes of the
/// keys below it. A node reached twice is a hostile or corrupt tree (a DAG that reuses a
/// subtree), and walking it as a tree would visit the shared subtrees again and again: 30
/// honest blocks can make 256^30 visits. Walks that visit whole trees refuse such a node with
/// [`Error::RepeatedNode`]. Empty nodes are not counted (they have no subtree to repeat).
#[derive(Default)]
pub(crate) struct Visited(hashbrown::HashSet<[u8; 16]>);

impl Visited {
    /// Records `cid` (holding `node`); an error if it was reached before.
    pub(crate) fn check(&mut self, cid: &Cid, node: &crate::node::Node) -> Result<()> {
        if node.is_empty() {
            return Ok(());
        }
        let h = blake3::hash(&cid.to_bytes());
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&h.as_bytes()[..16]);
        if self.0.insert(fp) {
            Ok(())
        } else {
            Err(Error::RepeatedNode { cid: *cid })
        }
    }
}

/// Settings shared by writers and readers.
///
/// ```
/// use ipfs_hamt::HamtConfig;
/// let config = HamtConfig { max_bucket_size: 16, ..HamtConfig::default() };
/// assert!(config.validate().is_ok());
/// assert!(HamtConfig { max_bucket_size: 0, ..HamtConfig::default() }.validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct HamtConfig {
    /// Most entries a bucket holds before it splits into a child node (py-hamt default 4).
    pub max_bucket_size: usize,
    /// Key hash function (BLAKE3-256 by default, as py-hamt).
    pub hasher: Arc<dyn KeyHasher>,
    /// Hash used to name new node and value blocks.
    pub block_hash: HashAlg,
    /// Bytes of decoded nodes kept in the node cache.
    pub cache_bytes: u64,
    /// Largest bucket accepted when decoding nodes from a store (a tree written with a larger
    /// `max_bucket_size` needs a larger limit).
    pub bucket_limit: usize,
    /// Value blocks buffered before they are sent to the store in one `put_many`.
    pub value_batch_blocks: usize,
    /// Value bytes buffered before they are sent to the store in one `put_many`.
    pub value_batch_bytes: usize,
    /// How ids are written into nodes: tag-42 CIDs (py-hamt's `KuboCAS`, the default) or bare
    /// multihash byte strings (py-hamt's `InMemoryCAS`).
    pub ids: IdEncoding,
    /// Values over 1 MiB become UnixFS files (1 MiB raw leaves, Kubo's balanced layout), as
    /// Kubo's `add` stores them for py-hamt's `KuboCAS` (the default). When false every value
    /// is one raw block, as py-hamt's `InMemoryCAS` and other stores keep it.
    pub unixfs_values: bool,
}

impl Default for HamtConfig {
    fn default() -> Self {
        HamtConfig {
            max_bucket_size: 4,
            hasher: Arc::new(Blake3Hasher),
            block_hash: HashAlg::Blake3,
            cache_bytes: 256 << 20,
            bucket_limit: 1024,
            value_batch_blocks: 4096,
            value_batch_bytes: 16 << 20,
            ids: IdEncoding::Cid,
            unixfs_values: true,
        }
    }
}

impl HamtConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.max_bucket_size < 1 {
            return Err(Error::InvalidConfig(
                "max_bucket_size must be a positive integer".into(),
            ));
        }
        if self.bucket_limit < self.max_bucket_size {
            return Err(Error::InvalidConfig(format!(
                "bucket_limit ({}) must be at least max_bucket_size ({})",
                self.bucket_limit, self.max_bucket_size
            )));
        }
        Ok(())
    }

    /// The blocks that store the value `data` under these settings and the pointer to put in
    /// the bucket: one raw block, or a UnixFS file for values over 1 MiB when
    /// `unixfs_values` is set. Shared by [`Writer`] and the bulk builder so both name values
    /// identically.
    pub fn value_blocks(&self, data: bytes::Bytes) -> (Cid, Vec<crate::block::Block>) {
        if self.unixfs_values {
            crate::value::value_blocks(data, self.block_hash)
        } else {
            let block = crate::block::Block::new(crate::block::RAW, self.block_hash, data);
            (block.cid, vec![block])
        }
    }

    /// Number of levels the key hash allows (hash length in bytes).
    pub(crate) fn max_depth(&self) -> usize {
        self.hasher.hash(b"").as_bytes().len()
    }
}
