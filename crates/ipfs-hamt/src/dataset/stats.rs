//! Layout-specific statistics (`ipfs-hamt stat`), rendered here so front ends need no `match`.

use std::collections::BTreeMap;

use cid::Cid;
use serde_json::json;

use crate::hamt::TreeStats;
use crate::sharded::ShardedStats;

/// The shape of a dataset, per layout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatasetStats {
    /// A HAMT: keys, nodes, depths, bucket sizes.
    Hamt(TreeStats),
    /// A sharded store: manifest version, every array's geometry and how full it is.
    Sharded(ShardedStats),
}

impl DatasetStats {
    /// Number of keys.
    pub fn keys(&self) -> u64 {
        match self {
            DatasetStats::Hamt(s) => s.keys,
            DatasetStats::Sharded(s) => s.keys,
        }
    }

    /// The statistics as one JSON object (with the root), as `ipfs-hamt stat --json` prints.
    pub fn to_json(&self, root: &Cid) -> serde_json::Value {
        match self {
            DatasetStats::Hamt(st) => {
                let sizes: BTreeMap<String, u64> = st
                    .bucket_sizes
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect();
                json!({
                    "root": root.to_string(),
                    "keys": st.keys,
                    "nodes": st.nodes,
                    "links": st.links,
                    "max_depth": st.max_depth,
                    "nodes_per_depth": st.nodes_per_depth,
                    "keys_per_depth": st.keys_per_depth,
                    "bucket_sizes": sizes,
                    "node_bytes": st.node_bytes,
                })
            }
            DatasetStats::Sharded(st) => {
                let arrays: Vec<serde_json::Value> = st
                    .arrays
                    .iter()
                    .map(|a| {
                        json!({
                            "path": a.path,
                            "shape": a.shape,
                            "chunk_shape": a.chunk_shape,
                            "chunks_per_shard": a.chunks_per_shard,
                            "grid_chunks": a.grid_chunks,
                            "chunks": a.chunks,
                            "shards": a.shards,
                            "shards_filled": a.shards_filled,
                        })
                    })
                    .collect();
                json!({
                    "root": root.to_string(),
                    "layout": "sharded",
                    "version": st.version.to_string(),
                    "keys": st.keys,
                    "metadata_keys": st.metadata_keys,
                    "primary_array": st.primary,
                    "arrays": arrays,
                })
            }
        }
    }

    /// The statistics as text lines (with the root), as `ipfs-hamt stat` prints.
    pub fn to_text(&self, root: &Cid) -> String {
        match self {
            DatasetStats::Hamt(st) => {
                let mut t = String::new();
                t += &format!("root       {root}\n");
                t += &format!("keys       {}\n", st.keys);
                t += &format!("nodes      {}\n", st.nodes);
                t += &format!("links      {}\n", st.links);
                t += &format!("node bytes {}\n", st.node_bytes);
                t += "depth  nodes  keys\n";
                for (d, (n, k)) in st
                    .nodes_per_depth
                    .iter()
                    .zip(&st.keys_per_depth)
                    .enumerate()
                {
                    t += &format!("{d:>5}  {n:>5}  {k:>4}\n");
                }
                let sizes: Vec<String> = st
                    .bucket_sizes
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                t += &format!("bucket sizes (size:count) {}\n", sizes.join(" "));
                t
            }
            DatasetStats::Sharded(st) => {
                let mut t = String::new();
                t += &format!("root       {root}\n");
                t += &format!("layout     sharded ({})\n", st.version);
                t += &format!("keys       {}\n", st.keys);
                t += &format!("metadata   {}\n", st.metadata_keys);
                if let Some(p) = &st.primary {
                    t += &format!(
                        "primary    {}\n",
                        if p.is_empty() { "(root array)" } else { p }
                    );
                }
                t += "array  shape  chunks  per-shard  chunks-filled  shards-filled\n";
                for a in &st.arrays {
                    let name = if a.path.is_empty() { "(root)" } else { &a.path };
                    t += &format!(
                        "{name}  {:?}  {:?}  {}  {}/{}  {}/{}\n",
                        a.shape,
                        a.chunk_shape,
                        a.chunks_per_shard,
                        a.chunks,
                        a.grid_chunks,
                        a.shards_filled,
                        a.shards
                    );
                }
                t
            }
        }
    }
}
