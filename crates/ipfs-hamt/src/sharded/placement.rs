//! Placing chunk pointers without the shard cache, for bulk builds: where a chunk key's
//! pointer goes, and writing a whole shard at once.

use bytes::Bytes;
use cid::Cid;

use super::keys::KeyKind;
use super::shard;
use super::writer::{sharded, ShardedWriter};
use super::ShardedError;
use crate::block::DAG_CBOR;
use crate::error::Result;

/// Where [`ShardedWriter::set_pointer`] would put a key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Entry `offset` of shard `shard` of the array index at `path`.
    Chunk {
        /// The array index's path (as the manifest keys it).
        path: String,
        /// The shard.
        shard: u64,
        /// The entry in the shard.
        offset: u64,
    },
    /// A metadata key (kept in the manifest, not in a shard).
    Metadata,
    /// A v2 write py-hamt drops silently (a key it cannot place).
    Ignored,
}

impl ShardedWriter {
    /// Where `set_pointer(key, _)` would store the pointer, with the same errors, without
    /// changing anything.
    pub(crate) fn place(&self, key: &str) -> Result<Placement> {
        let (path, coords) = match self.classify_for_write(key)? {
            Err(_) => return Ok(Placement::Ignored),
            Ok(KeyKind::Metadata) => return Ok(Placement::Metadata),
            Ok(KeyKind::Chunk { path, coords }) => (path, coords),
        };
        let index = self.index(&path).map_err(sharded)?;
        let coords = index.validate(&coords).map_err(sharded)?;
        let (shard, offset) = index.shard_of(index.linear(&coords));
        if shard as usize >= index.shard_cids.len() {
            return Err(sharded(ShardedError::Invalid(format!(
                "Shard index {shard} out of bounds."
            ))));
        }
        Ok(Placement::Chunk {
            path: self.cache_path(&path).to_string(),
            shard,
            offset,
        })
    }

    /// Writes shard `shard` of the array at `path` with exactly `entries` (a shard never
    /// loaded or cached: a new store's shards are all null) and records it in the index.
    pub(crate) async fn write_shard(
        &mut self,
        path: &str,
        shard: u64,
        entries: &[Option<Cid>],
    ) -> Result<()> {
        let bytes = Bytes::from(shard::encode(entries));
        let cid = self.save(bytes, DAG_CBOR).await?;
        if let Some(index) = self.m.arrays.get_mut(path) {
            if let Some(slot) = index.shard_cids.get_mut(shard as usize) {
                if *slot != Some(cid) {
                    *slot = Some(cid);
                    self.dirty_root = true;
                }
            }
        }
        Ok(())
    }
}
