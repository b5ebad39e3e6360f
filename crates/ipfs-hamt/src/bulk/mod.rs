//! Bulk builds: a new tree from many keys with memory independent of their number.
//!
//! The incremental [`crate::Writer`] keeps every changed node in memory until commit, so its
//! memory grows with the dataset. A bulk build instead sorts the keys with an external sort
//! ([`extsort`]) and writes the tree bottom-up as the sorted stream passes, holding only the
//! nodes on the current path. The result is the same root. [`BulkShardedBuilder`] does the
//! same for py-hamt's HAMT -> sharded conversion of a new dataset.

pub mod extsort;
mod hamt;
mod sharded;

pub use hamt::{BulkHamtBuilder, BulkOptions, ProgressFn};
pub use sharded::BulkShardedBuilder;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::hamt::HamtConfig;
use crate::store::{SharedStore, StoreError};

/// What a bulk build is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BulkPhase {
    /// Taking keys and writing value blocks (sorted runs spill to disk).
    #[default]
    Adding,
    /// Merging the sorted runs.
    Merging,
    /// Writing the tree's nodes from the merged stream.
    Building,
    /// The root is written.
    Done,
}

/// Counters of a bulk build, for progress output.
#[derive(Debug, Clone, Default)]
pub struct BulkProgress {
    /// Current phase.
    pub phase: BulkPhase,
    /// Keys added (repeats included).
    pub keys_added: u64,
    /// Sorted runs written to disk.
    pub runs: usize,
    /// Distinct keys placed in the tree so far.
    pub keys_placed: u64,
    /// Node blocks written so far.
    pub nodes_written: u64,
}

/// Buffers blocks and writes them with `put_many` in batches, one batch in flight in the
/// background while the next fills (hashing overlaps with writing).
pub(crate) struct BlockBatcher {
    store: SharedStore,
    max_blocks: usize,
    max_bytes: usize,
    pending: Vec<Block>,
    pending_bytes: usize,
    in_flight: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl BlockBatcher {
    pub(crate) fn new(store: SharedStore, config: &HamtConfig) -> Self {
        BlockBatcher {
            store,
            max_blocks: config.value_batch_blocks.max(1),
            max_bytes: config.value_batch_bytes.max(1),
            pending: Vec::new(),
            pending_bytes: 0,
            in_flight: None,
        }
    }

    pub(crate) fn store(&self) -> &SharedStore {
        &self.store
    }

    pub(crate) async fn push(&mut self, block: Block) -> Result<()> {
        self.pending_bytes += block.data.len();
        self.pending.push(block);
        if self.pending.len() >= self.max_blocks || self.pending_bytes >= self.max_bytes {
            self.start().await?;
        }
        Ok(())
    }

    async fn wait(&mut self) -> Result<()> {
        if let Some(task) = self.in_flight.take() {
            match task.await {
                Ok(r) => r?,
                Err(e) => {
                    return Err(Error::Store(StoreError::Backend(format!(
                        "block write task failed: {e}"
                    ))))
                }
            }
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<()> {
        self.wait().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let store = self.store.clone();
        self.in_flight = Some(tokio::spawn(async move { store.put_many(batch).await }));
        Ok(())
    }

    /// Writes everything buffered and waits for it.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.start().await?;
        self.wait().await
    }
}
