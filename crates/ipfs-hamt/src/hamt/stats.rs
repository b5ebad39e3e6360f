//! Tree statistics (`ipfs-hamt stat`).

use std::collections::BTreeMap;

use cid::Cid;

use super::cache::NodeCache;
use super::Visited;
use crate::error::{Error, Result};
use crate::node::{Link, Slot};

/// The shape of a HAMT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Number of keys.
    pub keys: u64,
    /// Number of nodes.
    pub nodes: u64,
    /// Number of links between nodes.
    pub links: u64,
    /// Deepest node (root = 0).
    pub max_depth: usize,
    /// Nodes at each depth.
    pub nodes_per_depth: Vec<u64>,
    /// Keys stored in buckets of nodes at each depth.
    pub keys_per_depth: Vec<u64>,
    /// Number of non-empty buckets of each size.
    pub bucket_sizes: BTreeMap<usize, u64>,
    /// Encoded bytes of all nodes.
    pub node_bytes: u64,
}

impl TreeStats {
    pub(crate) async fn collect(cache: &NodeCache, root: Cid, max_depth: usize) -> Result<Self> {
        let mut s = TreeStats::default();
        let mut stack = vec![(root, 0usize)];
        let mut visited = Visited::default();
        while let Some((cid, depth)) = stack.pop() {
            if depth > 0 && depth >= max_depth {
                return Err(Error::TooDeep { cid, depth });
            }
            let node = cache.load(&cid).await?;
            visited.check(&cid, &node)?;
            s.nodes += 1;
            s.node_bytes += node.encoded_len() as u64;
            s.max_depth = s.max_depth.max(depth);
            if s.nodes_per_depth.len() <= depth {
                s.nodes_per_depth.resize(depth + 1, 0);
                s.keys_per_depth.resize(depth + 1, 0);
            }
            s.nodes_per_depth[depth] += 1;
            for (_, slot) in node.iter() {
                match slot {
                    Slot::Bucket(b) => {
                        let n = b.len();
                        s.keys += n as u64;
                        s.keys_per_depth[depth] += n as u64;
                        *s.bucket_sizes.entry(n).or_default() += 1;
                    }
                    Slot::Link(l) => {
                        s.links += 1;
                        if let Link::Stored(c) = l {
                            stack.push((*c, depth + 1));
                        }
                    }
                }
            }
        }
        Ok(s)
    }
}
