//! An in-memory block store.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;

use super::{BlockStore, StoreError};
use crate::block::Block;

/// Blocks are keyed by multihash, like Kubo's blockstore: the same bytes under another codec
/// are the same block. Keys with a 32-byte digest (every hash we make) are stored inline.
#[derive(Clone, PartialEq, Eq, Hash)]
enum MhKey {
    D32(u64, [u8; 32]),
    Other(u64, Box<[u8]>),
}

impl MhKey {
    fn of(cid: &Cid) -> Self {
        let mh = cid.hash();
        match <[u8; 32]>::try_from(mh.digest()) {
            Ok(d) => MhKey::D32(mh.code(), d),
            Err(_) => MhKey::Other(mh.code(), mh.digest().into()),
        }
    }
}

/// The keys are already uniformly distributed digests: hash by taking their first bytes.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = self.0.rotate_left(5) ^ i;
    }
}

type Shard = RwLock<HashMap<MhKey, Bytes, BuildHasherDefault<DigestHasher>>>;

const SHARDS: usize = 16;

/// A thread-safe in-memory [`BlockStore`] (sharded locks), for tests, benchmarks and staging.
///
/// ```
/// use ipfs_hamt::store::MemoryStore;
/// let store = MemoryStore::new();
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Default)]
pub struct MemoryStore {
    shards: [Shard; SHARDS],
    bytes: AtomicU64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("blocks", &self.len())
            .field("bytes", &self.total_bytes())
            .finish()
    }
}

fn shard_of(key: &MhKey) -> usize {
    match key {
        MhKey::D32(_, d) => d[31] as usize % SHARDS,
        MhKey::Other(_, d) => d.last().copied().unwrap_or(0) as usize % SHARDS,
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &MhKey) -> &Shard {
        &self.shards[shard_of(key)]
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// True if the store holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bytes of the blocks held.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn poisoned() -> StoreError {
        StoreError::Backend("memory store lock poisoned".into())
    }
}

#[async_trait]
impl BlockStore for MemoryStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let key = MhKey::of(cid);
        let map = self.shard(&key).read().map_err(|_| Self::poisoned())?;
        map.get(&key).cloned().ok_or(StoreError::NotFound(*cid))
    }

    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        let key = MhKey::of(cid);
        let map = self.shard(&key).read().map_err(|_| Self::poisoned())?;
        Ok(map.contains_key(&key))
    }

    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        // Group by shard so each lock is taken once per batch.
        let mut groups: [Vec<(MhKey, Bytes)>; SHARDS] = Default::default();
        for b in blocks {
            let key = MhKey::of(&b.cid);
            groups[shard_of(&key)].push((key, b.data));
        }
        let mut added = 0u64;
        for (i, group) in groups.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let mut map = self.shards[i].write().map_err(|_| Self::poisoned())?;
            map.reserve(group.len());
            for (k, v) in group {
                let len = v.len() as u64;
                if map.insert(k, v).is_none() {
                    added += len;
                }
            }
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{HashAlg, DAG_CBOR, RAW};

    #[tokio::test]
    async fn put_get_has() {
        let s = MemoryStore::new();
        let a = Block::new(RAW, HashAlg::Blake3, b"a".to_vec());
        let b = Block::new(RAW, HashAlg::Sha2_256, b"b".to_vec());
        assert!(!s.has(&a.cid).await.unwrap());
        assert!(matches!(s.get(&a.cid).await, Err(StoreError::NotFound(c)) if c == a.cid));
        s.put_many(vec![a.clone(), b.clone(), a.clone()])
            .await
            .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.total_bytes(), 2);
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
        // Same multihash, other codec: same block.
        let relabelled = Cid::new_v1(DAG_CBOR, *a.cid.hash());
        assert_eq!(s.get(&relabelled).await.unwrap(), a.data);
    }
}
