//! What `stat` shows of a sharded store, and the structure `verify` walks.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use cid::Cid;

use super::manifest::Manifest;
use super::reader::ShardedReader;
use super::{shard, Version};
use crate::block::DAG_PB;
use crate::error::Result;
use crate::verify::{Child, Structure};

/// One array index as `stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayStats {
    /// Array path (`""` is the root array; v1's global index).
    pub path: String,
    /// Array shape.
    pub shape: Vec<u64>,
    /// Chunk shape.
    pub chunk_shape: Vec<u64>,
    /// Chunks per shard.
    pub chunks_per_shard: u64,
    /// Chunks in the grid.
    pub grid_chunks: u64,
    /// Shards in the index.
    pub shards: u64,
    /// Shards that have a block.
    pub shards_filled: u64,
    /// Chunks that have a value.
    pub chunks: u64,
}

/// A sharded store's manifest and fill, for `stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedStats {
    /// Manifest version.
    pub version: Version,
    /// Keys in the metadata map.
    pub metadata_keys: u64,
    /// The primary array (v1: the array the shards belong to).
    pub primary: Option<String>,
    /// Every array index.
    pub arrays: Vec<ArrayStats>,
    /// Keys in all (metadata and chunks, as `list()` yields them).
    pub keys: u64,
}

impl ShardedReader {
    /// Counts every array's filled shards and chunks (reads every shard).
    pub async fn stats(&self) -> Result<ShardedStats> {
        let m = self.manifest();
        let mut arrays = Vec::new();
        let mut keys = m.metadata.len() as u64;
        for (path, index) in &m.arrays {
            let mut chunks = 0;
            for s in 0..index.num_shards() {
                let entries = super::listing::shard_entries(self, path, s).await?;
                chunks += entries.len() as u64;
                keys += entries
                    .iter()
                    .filter(|(k, _)| !m.metadata.contains_key(k))
                    .count() as u64;
            }
            arrays.push(ArrayStats {
                path: path.clone(),
                shape: index.array_shape.clone(),
                chunk_shape: index.chunk_shape.clone(),
                chunks_per_shard: index.chunks_per_shard,
                grid_chunks: index.total_chunks(),
                shards: index.num_shards(),
                shards_filled: index.filled_shards() as u64,
                chunks,
            });
        }
        Ok(ShardedStats {
            version: m.version,
            metadata_keys: m.metadata.len() as u64,
            primary: m.primary.clone(),
            arrays,
            keys,
        })
    }
}

/// The sharded layout's structure for `verify`: the manifest links to metadata values and to
/// shards; shards link to chunk values. Shards are checked against their array's
/// `chunks_per_shard`.
#[derive(Debug, Default)]
pub struct ShardedStructure {
    /// Shard CID -> (shard index, chunks per shard), learnt from the manifest.
    shards: Mutex<HashMap<Cid, (u64, u64)>>,
}

impl ShardedStructure {
    /// A structure walker for one root.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Structure for ShardedStructure {
    fn children(
        &self,
        cid: &Cid,
        depth: usize,
        data: Bytes,
    ) -> std::result::Result<Vec<Child>, String> {
        if cid.codec() == DAG_PB {
            return Err(
                "a sharded manifest or shard over 1 MiB (a UnixFS file) is not walked by verify"
                    .into(),
            );
        }
        if depth == 0 {
            let m = Manifest::decode(&data)
                .map_err(|e| format!("not a valid sharded manifest: {e}"))?;
            let mut out: Vec<Child> = m.metadata.values().map(|c| Child::Value(*c)).collect();
            let mut known = self
                .shards
                .lock()
                .map_err(|_| "verify state poisoned".to_string())?;
            for index in m.arrays.values() {
                for (i, c) in index.shard_cids.iter().enumerate() {
                    if let Some(c) = c {
                        known.insert(*c, (i as u64, index.chunks_per_shard));
                        out.push(Child::Structure(*c));
                    }
                }
            }
            return Ok(out);
        }
        let (idx, cps) = self
            .shards
            .lock()
            .map_err(|_| "verify state poisoned".to_string())?
            .get(cid)
            .copied()
            .ok_or_else(|| {
                "a block below a shard (sharded stores are two levels deep)".to_string()
            })?;
        let entries = shard::decode(&data, idx, cps).map_err(|e| e.to_string())?;
        Ok(entries.into_iter().flatten().map(Child::Value).collect())
    }
}
