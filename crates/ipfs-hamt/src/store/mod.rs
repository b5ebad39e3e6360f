//! Block stores: the async [`BlockStore`] trait and its implementations.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;

use crate::block::{Block, VerifyError};
use crate::range::ByteRange;

pub mod car;
pub mod disk;
pub mod kubo;
pub mod memory;
pub mod split;

pub use car::CarStore;
pub use disk::DiskStore;
pub use kubo::{KuboConfig, KuboStore};
pub use memory::MemoryStore;
pub use split::SplitStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store does not hold the block.
    #[error("block {0} not found in the store")]
    NotFound(Cid),
    /// A block's bytes do not match its CID.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The store's own data is malformed (a bad CAR section, a corrupt file...).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store cannot take writes.
    #[error("the store is read-only")]
    ReadOnly,
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A remote store (an IPFS node's RPC API or gateway) failed for good: the request was
    /// refused, or every attempt failed (retries exhausted).
    #[error("{what} via {url}: {reason} ({attempts} attempt{})", if *attempts == 1 { "" } else { "s" })]
    Remote {
        /// What was being done, naming the CID when there is one (`get bafy...`).
        what: String,
        /// The URL of the last attempt.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Why the last attempt failed.
        reason: String,
    },
    /// Any other failure of a backend (network, database...).
    #[error("{0}")]
    Backend(String),
}

impl StoreError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// An async content-addressed block store.
///
/// Stores that read bytes from outside the process (files, network) verify every block against
/// its CID before returning it.
///
/// ```
/// # tokio_test_block_on(async {
/// use ipfs_hamt::{block::{Block, HashAlg, RAW}, store::{BlockStore, MemoryStore}};
/// let store = MemoryStore::new();
/// let b = Block::new(RAW, HashAlg::Blake3, b"hi".to_vec());
/// store.put_many(vec![b.clone()]).await.unwrap();
/// assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait BlockStore: Send + Sync {
    /// The whole block; [`StoreError::NotFound`] if absent.
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError>;

    /// Part of a block. Stores that can fetch ranges natively override this.
    async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, StoreError> {
        Ok(range.apply(&self.get(cid).await?))
    }

    /// Whether the block is present.
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError>;

    /// Stores many blocks at once (one transaction or request where the backend allows).
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError>;

    /// Stores one block.
    async fn put(&self, block: Block) -> Result<(), StoreError> {
        self.put_many(vec![block]).await
    }

    /// Makes every block put so far durable (survives a crash). Stores that write durably on
    /// every put need not override this; `Writer::commit` calls it after the root is written.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl<T: BlockStore + ?Sized> BlockStore for Arc<T> {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        (**self).get(cid).await
    }
    async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, StoreError> {
        (**self).get_range(cid, range).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        (**self).has(cid).await
    }
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        (**self).put_many(blocks).await
    }
    async fn put(&self, block: Block) -> Result<(), StoreError> {
        (**self).put(block).await
    }
    async fn sync(&self) -> Result<(), StoreError> {
        (**self).sync().await
    }
}

/// A shared, dynamically typed store, as the HAMT holds it.
pub type SharedStore = Arc<dyn BlockStore>;
