//! Layout-specific statistics (`ipfs-hamt stat`), rendered here so front ends need no `match`.

use std::collections::BTreeMap;

use cid::Cid;
use serde_json::json;

use crate::hamt::TreeStats;

/// The shape of a dataset, per layout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatasetStats {
    /// A HAMT: keys, nodes, depths, bucket sizes.
    Hamt(TreeStats),
}

impl DatasetStats {
    /// Number of keys.
    pub fn keys(&self) -> u64 {
        match self {
            DatasetStats::Hamt(s) => s.keys,
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
        }
    }
}
