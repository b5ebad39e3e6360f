//! [`SplitStore`]: structure blocks (DAG-CBOR) kept in memory, everything else written through
//! to another store. An import into the sharded layout builds py-hamt's intermediate HAMT
//! this way: its nodes are needed only to convert, so they never reach the disk, while the
//! value blocks, which the sharded store points at, are written once.

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;

use super::{BlockStore, MemoryStore, SharedStore, StoreError};
use crate::block::{Block, DAG_CBOR};
use crate::range::ByteRange;

/// DAG-CBOR blocks in memory, other blocks in `values`; reads look in memory first.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::block::{Block, HashAlg, DAG_CBOR, RAW};
/// use ipfs_hamt::store::{BlockStore, MemoryStore, SplitStore};
/// let disk = Arc::new(MemoryStore::new());
/// let split = SplitStore::new(disk.clone());
/// let node = Block::new(DAG_CBOR, HashAlg::Blake3, vec![0x80]);
/// let value = Block::new(RAW, HashAlg::Blake3, b"v".to_vec());
/// split.put_many(vec![node.clone(), value.clone()]).await.unwrap();
/// assert!(!disk.has(&node.cid).await.unwrap() && disk.has(&value.cid).await.unwrap());
/// assert_eq!(split.get(&node.cid).await.unwrap(), node.data);
/// # });
/// ```
pub struct SplitStore {
    structure: MemoryStore,
    values: SharedStore,
}

impl SplitStore {
    /// A split store writing values to `values`.
    pub fn new(values: SharedStore) -> Self {
        SplitStore {
            structure: MemoryStore::new(),
            values,
        }
    }

    /// The store values go to.
    pub fn values(&self) -> &SharedStore {
        &self.values
    }
}

#[async_trait]
impl BlockStore for SplitStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        if cid.codec() == DAG_CBOR {
            if let Ok(b) = self.structure.get(cid).await {
                return Ok(b);
            }
        }
        self.values.get(cid).await
    }
    async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, StoreError> {
        if cid.codec() == DAG_CBOR && self.structure.has(cid).await? {
            return self.structure.get_range(cid, range).await;
        }
        self.values.get_range(cid, range).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.structure.has(cid).await? || self.values.has(cid).await?)
    }
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        let (structure, values): (Vec<Block>, Vec<Block>) =
            blocks.into_iter().partition(|b| b.cid.codec() == DAG_CBOR);
        if !structure.is_empty() {
            self.structure.put_many(structure).await?;
        }
        if !values.is_empty() {
            self.values.put_many(values).await?;
        }
        Ok(())
    }
    async fn sync(&self) -> Result<(), StoreError> {
        self.values.sync().await
    }
}

impl std::fmt::Debug for SplitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitStore").finish_non_exhaustive()
    }
}
