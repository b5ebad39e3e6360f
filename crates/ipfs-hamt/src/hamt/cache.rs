//! A node cache bounded in bytes, shared by the tasks that read one tree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cid::Cid;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::block::DAG_CBOR;
use crate::error::{Error, Result};
use crate::node::Node;
use crate::store::SharedStore;

/// CIDs end in a cryptographic digest: fold the written bytes cheaply instead of SipHash.
#[derive(Default, Clone)]
struct CidHasher(u64);

impl std::hash::Hasher for CidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

type CidHashBuilder = std::hash::BuildHasherDefault<CidHasher>;

#[derive(Clone)]
struct NodeWeight;

impl Weighter<Cid, Arc<Node>> for NodeWeight {
    fn weight(&self, _key: &Cid, val: &Arc<Node>) -> u64 {
        val.weight()
    }
}

/// Counters of a [`NodeCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Loads served from the cache.
    pub hits: u64,
    /// Loads that went to the store.
    pub misses: u64,
    /// Nodes held.
    pub nodes: u64,
    /// Approximate bytes held.
    pub bytes: u64,
}

/// Loads nodes from a store through a bounded cache of decoded nodes.
pub struct NodeCache {
    store: SharedStore,
    cache: Cache<Cid, Arc<Node>, NodeWeight, CidHashBuilder>,
    hits: AtomicU64,
    misses: AtomicU64,
    bucket_limit: usize,
}

impl std::fmt::Debug for NodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl NodeCache {
    /// A cache over `store` holding about `bytes` of nodes.
    pub fn new(store: SharedStore, bytes: u64, bucket_limit: usize) -> Self {
        // A node weighs about 1-10 KiB; quick_cache wants an item estimate.
        let items = (bytes / 2048).clamp(16, 1 << 20) as usize;
        NodeCache {
            store,
            cache: Cache::with(
                items,
                bytes.max(1),
                NodeWeight,
                CidHashBuilder::default(),
                Default::default(),
            ),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bucket_limit,
        }
    }

    /// The store behind the cache.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The node `cid`, from the cache or decoded from the store.
    pub async fn load(&self, cid: &Cid) -> Result<Arc<Node>> {
        if let Some(n) = self.cache.get(cid) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(n);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        if cid.codec() != DAG_CBOR {
            return Err(Error::NotANode {
                cid: *cid,
                codec: cid.codec(),
            });
        }
        let data = self.store.get(cid).await?;
        let node = Node::decode(data, self.bucket_limit).map_err(|source| Error::Node {
            cid: *cid,
            source: Box::new(source),
        })?;
        let node = Arc::new(node);
        self.cache.insert(*cid, node.clone());
        Ok(node)
    }

    /// Puts a node known to be stored under `cid` in the cache.
    pub fn insert(&self, cid: Cid, node: Arc<Node>) {
        self.cache.insert(cid, node);
    }

    /// Hit/miss counters and size.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            nodes: self.cache.len() as u64,
            bytes: self.cache.weight(),
        }
    }

    /// Empties the cache (counters are kept).
    pub fn clear(&self) {
        self.cache.clear();
    }
}
