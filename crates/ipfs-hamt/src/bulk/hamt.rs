//! [`BulkHamtBuilder`]: a new HAMT from many keys with memory independent of their number.
//!
//! py-hamt's tree has a canonical shape: a slot at hash prefix `p` is a link iff more than
//! `max_bucket_size` keys have hashes starting with `p`, else a bucket holding exactly those
//! keys. So once the keys are sorted by hash, every node can be written bottom-up as the
//! sorted stream passes it: a look-ahead of `max_bucket_size + 1` entries decides between
//! bucket and link, and only the nodes on the current path (at most one per hash byte) are in
//! memory. The keys are sorted with the external sort of [`super::extsort`].

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::Bytes;
use cid::Cid;

use super::extsort::{ExtSorter, Merged};
use super::{BlockBatcher, BulkPhase, BulkProgress};
use crate::block::{Block, DAG_CBOR};
use crate::error::{Error, Result};
use crate::hamt::HamtConfig;
use crate::node::{encode_id, Bucket, Entry, Link, Node};
use crate::store::SharedStore;

/// Settings of a bulk build.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Bytes of sort records kept in memory before a sorted run is written to disk.
    pub memory_budget: usize,
    /// Directory under which a private spill directory is made (removed when done).
    pub spill_dir: PathBuf,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            memory_budget: 64 << 20,
            spill_dir: std::env::temp_dir(),
        }
    }
}

/// A progress callback, called at phase changes and every few thousand keys.
pub type ProgressFn = Box<dyn FnMut(&BulkProgress) + Send>;

/// Builds a new HAMT from a stream of keys, in any order, with flat memory. The root equals
/// the root a [`crate::Writer`] with the same [`HamtConfig`] commits for the same keys
/// (the last value added for a key wins, as with repeated inserts).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::bulk::{BulkHamtBuilder, BulkOptions};
/// use ipfs_hamt::{HamtConfig, store::MemoryStore};
/// let store = Arc::new(MemoryStore::new());
/// let mut b = BulkHamtBuilder::new(store, HamtConfig::default(), BulkOptions::default()).unwrap();
/// b.add("key-0", b"value-0".to_vec()).await.unwrap();
/// let root = b.finish().await.unwrap();
/// assert_eq!(root.to_string(), "bafyr4ihgo2rrdjny6xteslywfrhqdevjolhvzszryjktgygg6xhsxutoti");
/// # });
/// ```
pub struct BulkHamtBuilder {
    config: HamtConfig,
    /// `None` once the keys have been merged.
    sorter: Option<ExtSorter>,
    hash_len: usize,
    values: BlockBatcher,
    scratch: Vec<u8>,
    progress: Option<ProgressFn>,
    stats: BulkProgress,
    options: BulkOptions,
}

impl std::fmt::Debug for BulkHamtBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkHamtBuilder")
            .field("sorter", &self.sorter)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Keys reported between progress calls.
const PROGRESS_EVERY: u64 = 4096;

/// One key of the sorted stream.
struct Sorted {
    hash: Vec<u8>,
    key: String,
    item: Vec<u8>,
}

impl BulkHamtBuilder {
    /// A builder writing to `store` under `config`.
    pub fn new(store: SharedStore, config: HamtConfig, options: BulkOptions) -> Result<Self> {
        config.validate()?;
        let hash_len = config.max_depth();
        let values = BlockBatcher::new(store, &config);
        Ok(BulkHamtBuilder {
            sorter: Some(ExtSorter::new(
                options.memory_budget,
                options.spill_dir.clone(),
            )),
            options,
            hash_len,
            values,
            config,
            scratch: Vec::new(),
            progress: None,
            stats: BulkProgress::default(),
        })
    }

    /// Calls `f` with the counters at phase changes and every few thousand keys.
    pub fn on_progress(&mut self, f: impl FnMut(&BulkProgress) + Send + 'static) {
        self.progress = Some(Box::new(f));
    }

    fn report(&mut self) {
        if let Some(f) = &mut self.progress {
            f(&self.stats);
        }
    }

    /// The counters so far.
    pub fn progress(&self) -> &BulkProgress {
        &self.stats
    }

    /// Sets `key` to the bytes `value`, stored exactly as [`crate::Writer::insert`] stores it.
    pub async fn add(&mut self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        let (cid, blocks) = self.config.value_blocks(value.into());
        for b in blocks {
            self.values.push(b).await?;
        }
        self.add_pointer(key, cid)
    }

    /// Sets `key` to point at `value`, a block already stored (or added with this builder).
    pub fn add_pointer(&mut self, key: &str, value: Cid) -> Result<()> {
        let hash = self.config.hasher.hash(key.as_bytes());
        let hash = hash.as_bytes();
        if hash.len() != self.hash_len {
            return Err(Error::InvalidConfig(format!(
                "the bulk builder needs a fixed-length key hash: {} bytes for {key:?}, {} for \"\"",
                hash.len(),
                self.hash_len
            )));
        }
        // Sort key: the hash, then the key (so a repeated key meets its earlier values).
        self.scratch.clear();
        self.scratch.extend_from_slice(hash);
        self.scratch.extend_from_slice(key.as_bytes());
        let item = encode_id(&value, self.config.ids);
        let Some(sorter) = &mut self.sorter else {
            return Err(Error::Value(format!(
                "cannot add {key:?}: the bulk build has started"
            )));
        };
        sorter.push(&self.scratch, &item)?;
        self.stats.keys_added += 1;
        self.stats.runs = sorter.runs();
        if self.stats.keys_added % PROGRESS_EVERY == 0 {
            self.report();
        }
        Ok(())
    }

    /// Writes the remaining values, sorts the keys and writes the tree bottom-up; returns the
    /// root CID (after a store sync, like [`crate::Writer::commit`]).
    pub async fn finish(mut self) -> Result<Cid> {
        self.values.flush().await?;
        let merged = self.merge()?;
        let root = self.build(merged, None).await?;
        self.stats.phase = BulkPhase::Done;
        self.report();
        root.ok_or_else(|| Error::Value("bulk build wrote no root".into()))
    }

    /// Writes the remaining values and waits for them.
    pub(crate) async fn finish_values(&mut self) -> Result<()> {
        self.values.flush().await
    }

    /// The sort budget and spill directory (for the sorts that follow the HAMT's).
    pub(crate) fn options(&self) -> &BulkOptions {
        &self.options
    }

    /// Merges the sorted runs (after [`Self::finish_values`]) and enters the build phase.
    pub(crate) fn merge(&mut self) -> Result<Merged> {
        let sorter = self
            .sorter
            .take()
            .ok_or_else(|| Error::Value("the bulk build was already merged".into()))?;
        self.stats.phase = BulkPhase::Merging;
        self.stats.runs = sorter.runs();
        self.report();
        let merged = sorter.finish()?;
        self.stats.phase = BulkPhase::Building;
        self.report();
        Ok(merged)
    }

    /// Walks the tree's shape without writing nodes, calling `on_place` for every key with
    /// its position in py-hamt's `keys()` order (see [`order_key`]), its key and id item.
    pub(crate) async fn place(&mut self, merged: Merged, on_place: &mut OnPlace<'_>) -> Result<()> {
        self.build(merged, Some(on_place)).await?;
        self.stats.phase = BulkPhase::Done;
        self.report();
        Ok(())
    }

    /// Reads the next sorted key into `ahead`; false at the end.
    fn pull(&self, merged: &mut Merged, ahead: &mut VecDeque<Sorted>) -> Result<bool> {
        let Some((mut sort_key, item)) = merged.next_record()? else {
            return Ok(false);
        };
        let key_bytes = sort_key.split_off(self.hash_len.min(sort_key.len()));
        let key = String::from_utf8(key_bytes).map_err(|_| Error::Spill {
            path: PathBuf::new(),
            reason: "a sorted key is not UTF-8".into(),
        })?;
        ahead.push_back(Sorted {
            hash: sort_key,
            key,
            item,
        });
        Ok(true)
    }

    fn encode(&self, node: &Node) -> Result<Block> {
        let bytes = node
            .encode_with(&mut std::iter::empty(), self.config.ids)
            .map_err(|e| Error::Value(e.to_string()))?;
        Ok(Block::new(DAG_CBOR, self.config.block_hash, bytes))
    }

    /// Writes the node on top of `stack` and links it from its parent.
    async fn close_top(
        &mut self,
        stack: &mut Vec<Node>,
        path: &mut Vec<u8>,
        nodes: &mut BlockBatcher,
    ) -> Result<()> {
        let (Some(node), Some(idx)) = (stack.pop(), path.pop()) else {
            return Ok(());
        };
        let block = self.encode(&node)?;
        let cid = block.cid;
        nodes.push(block).await?;
        self.stats.nodes_written += 1;
        if let Some(parent) = stack.last_mut() {
            parent.set_link(idx, Link::Stored(cid));
        }
        Ok(())
    }

    /// Builds the tree from the sorted stream. With `on_place`, only the shape is computed
    /// (nothing is written, no root is returned) and every key is reported instead.
    async fn build(
        &mut self,
        mut merged: Merged,
        mut on_place: Option<&mut OnPlace<'_>>,
    ) -> Result<Option<Cid>> {
        let write = on_place.is_none();
        let max = self.config.max_bucket_size;
        let mut nodes = BlockBatcher::new(self.values.store().clone(), &self.config);
        let mut ahead: VecDeque<Sorted> = VecDeque::with_capacity(max + 1);
        let mut done = false;
        // stack[d] is the node being filled at depth d; path[d] is the slot of stack[d + 1]
        // in stack[d], so path is the hash prefix of the deepest open node.
        let mut stack = vec![Node::default()];
        let mut path: Vec<u8> = Vec::new();
        loop {
            while !done && ahead.len() < max + 1 {
                done = !self.pull(&mut merged, &mut ahead)?;
            }
            let Some(front) = ahead.front() else {
                break;
            };
            // Close the nodes the next key is not below.
            while !path.is_empty() && front.hash[..path.len()] != path[..] {
                if write {
                    self.close_top(&mut stack, &mut path, &mut nodes).await?;
                } else {
                    path.pop();
                }
            }
            let d = path.len();
            let prefix = &front.hash[..=d];
            let count = ahead
                .iter()
                .take(max + 1)
                .take_while(|e| &e.hash[..=d] == prefix)
                .count();
            let idx = front.hash[d];
            if count <= max {
                let group: Vec<Sorted> = ahead.drain(..count).collect();
                let mut entries: Vec<Entry<'_>> = group
                    .iter()
                    .map(|s| Entry {
                        key: &s.key,
                        item: &s.item,
                    })
                    .collect();
                let bytes = Bucket::encode(&mut entries);
                match &mut on_place {
                    // `encode` sorted the entries into the bucket's (canonical) order.
                    Some(f) => {
                        for (j, e) in entries.iter().enumerate() {
                            f(&order_key(&path, idx, j), e.key, e.item)?;
                        }
                    }
                    None => {
                        if let Some(node) = stack.last_mut() {
                            node.set_bucket(idx, &bytes);
                        }
                    }
                }
                let before = self.stats.keys_placed / PROGRESS_EVERY;
                self.stats.keys_placed += count as u64;
                if self.stats.keys_placed / PROGRESS_EVERY != before {
                    self.report();
                }
            } else {
                // More than `max` keys share this prefix: a child node, unless the hash is
                // used up (the Writer's error for the same keys).
                if d + 1 >= self.hash_len {
                    return Err(Error::HashExhausted {
                        key: front.key.clone(),
                        depth: d + 1,
                    });
                }
                path.push(idx);
                if write {
                    stack.push(Node::default());
                }
            }
        }
        if !write {
            return Ok(None);
        }
        while stack.len() > 1 {
            self.close_top(&mut stack, &mut path, &mut nodes).await?;
        }
        // Children are all written before the root, then the store is synced: a crash
        // before this point leaves only unreferenced blocks.
        nodes.flush().await?;
        let root = self.encode(stack.first().unwrap_or(&Node::default()))?;
        let cid = root.cid;
        let store = nodes.store().clone();
        store.put(root).await?;
        store.sync().await?;
        self.stats.nodes_written += 1;
        Ok(Some(cid))
    }
}

/// Receives every placed key: its [`order_key`], the key and its id item.
pub(crate) type OnPlace<'a> = dyn FnMut(&[u8], &str, &[u8]) -> Result<()> + Send + 'a;

/// A byte string that sorts keys into py-hamt's read-only `keys()` order (a pre-order walk
/// that yields a node's buckets in slot order, then visits its children last slot first), for
/// a key at position `j` of the bucket in slot `slot` of the node at hash prefix `path`.
pub(crate) fn order_key(path: &[u8], slot: u8, j: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(path.len() * 2 + 6);
    for &p in path {
        // 1 after 0: a node's own buckets come before its children; 255 - p: last slot first.
        k.extend_from_slice(&[1, 255 - p]);
    }
    k.extend_from_slice(&[0, slot]);
    k.extend_from_slice(&(j as u32).to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::TryStreamExt;

    use super::*;
    use crate::store::MemoryStore;
    use crate::{Reader, Writer};

    /// Sorting by `order_key` gives exactly the reader's `keys()` order of the same tree.
    #[test]
    fn order_key_is_the_readers_key_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for (n, mbs) in [(0, 4), (1, 1), (300, 1), (2000, 4), (700, 16)] {
                let config = HamtConfig {
                    max_bucket_size: mbs,
                    ..HamtConfig::default()
                };
                let store = Arc::new(MemoryStore::new());
                let mut w = Writer::new(store.clone(), config.clone()).unwrap();
                let mut b =
                    BulkHamtBuilder::new(store.clone(), config.clone(), BulkOptions::default())
                        .unwrap();
                for i in 0..n {
                    let k = format!("k{i}");
                    w.insert(&k, vec![1]).await.unwrap();
                    b.add(&k, vec![1]).await.unwrap();
                }
                let root = w.commit().await.unwrap();
                let want: Vec<String> = Reader::new(store, root, config)
                    .unwrap()
                    .keys()
                    .try_collect()
                    .await
                    .unwrap();
                let mut placed = Vec::new();
                let mut f = |o: &[u8], k: &str, _: &[u8]| -> Result<()> {
                    placed.push((o.to_vec(), k.to_string()));
                    Ok(())
                };
                b.finish_values().await.unwrap();
                let merged = b.merge().unwrap();
                b.place(merged, &mut f).await.unwrap();
                placed.sort();
                let got: Vec<String> = placed.into_iter().map(|(_, k)| k).collect();
                assert_eq!(got, want, "n {n} mbs {mbs}");
            }
        });
    }
}
