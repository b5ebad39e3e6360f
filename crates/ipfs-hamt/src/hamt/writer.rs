//! The writer: an in-memory dirty tree over a store, committed with [`Writer::commit`].
//!
//! Nodes load lazily, only those a key's path touches; a changed node is copied out of the
//! cache and becomes dirty. The tree is kept in canonical shape after every operation (a slot
//! is a link iff more than `max_bucket_size` keys share its hash prefix), so the same key ->
//! value map always commits to the same root, whatever the order of operations. Value blocks
//! are buffered and sent in batches; nodes are written only at commit, and only their final
//! versions.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;

use super::cache::NodeCache;
use super::lookup::find_stored;
use super::reader::Reader;
use super::HamtConfig;
use crate::block::{Block, DAG_CBOR};
use crate::error::{Error, Result};
use crate::key_hash::KeyHash;
use crate::node::{encode_id_into, Bucket, Entry, Link, Node, Slot};
use crate::range::ByteRange;
use crate::store::{BlockStore, SharedStore, StoreError};
use crate::value::{decode_ipld, encode_ipld, read_value};

/// Builds and changes a HAMT. See the module docs.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::{HamtConfig, Writer, store::MemoryStore};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
/// w.insert("key-0", b"value-0".to_vec()).await.unwrap();
/// let root = w.commit().await.unwrap();
/// assert_eq!(root.to_string(), "bafyr4ihgo2rrdjny6xteslywfrhqdevjolhvzszryjktgygg6xhsxutoti");
/// w.remove("key-0").await.unwrap();
/// assert!(w.remove("key-0").await.is_err()); // typed KeyNotFound
/// # });
/// ```
pub struct Writer {
    root: Link,
    cache: Arc<NodeCache>,
    config: HamtConfig,
    pending: Vec<Block>,
    pending_bytes: usize,
    /// The previous value batch, being written while the next one fills up.
    in_flight: Option<InFlight>,
    /// Reused buffers of [`Writer::insert_pointer`].
    scratch: Scratch,
}

/// Buffers reused by every insert.
#[derive(Default)]
struct Scratch {
    /// The encoded id item of the value.
    item: Vec<u8>,
    /// The encoding of the changed bucket.
    bucket: Vec<u8>,
}

/// A value batch handed to the store in a background task.
struct InFlight {
    /// The same blocks (clones share the bytes): readable until the write is done, and put
    /// back in the buffer if it fails, so a later flush or commit retries them.
    blocks: Vec<Block>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("root", &self.root_cid())
            .field("pending_values", &self.pending.len())
            .finish()
    }
}

/// The store as seen by this writer: buffered value blocks first, then the store.
struct PendingOverlay<'a> {
    pending: &'a [Block],
    in_flight: &'a [Block],
    store: &'a dyn BlockStore,
}

impl PendingOverlay<'_> {
    fn find(&self, cid: &Cid) -> Option<&Block> {
        let same = |b: &&Block| b.cid.hash() == cid.hash();
        self.pending
            .iter()
            .rev()
            .find(same)
            .or_else(|| self.in_flight.iter().find(same))
    }
}

#[async_trait]
impl BlockStore for PendingOverlay<'_> {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        match self.find(cid) {
            Some(b) => Ok(b.data.clone()),
            None => self.store.get(cid).await,
        }
    }
    async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, StoreError> {
        match self.find(cid) {
            Some(b) => Ok(range.apply(&b.data)),
            None => self.store.get_range(cid, range).await,
        }
    }
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.find(cid).is_some() || self.store.has(cid).await?)
    }
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        self.store.put_many(blocks).await
    }
}

/// The node behind `link`, loading it and marking it dirty if it was stored.
async fn dirty<'a>(link: &'a mut Link, cache: &NodeCache) -> Result<&'a mut Node> {
    if let Link::Stored(cid) = link {
        let node = cache.load(cid).await?;
        *link = Link::Dirty(Node::clone(&node));
    }
    match link {
        Link::Dirty(node) => Ok(node),
        Link::Stored(cid) => Err(Error::Value(format!("node {cid} could not be made dirty"))),
    }
}

/// A new subtree at `depth` holding `entries` (more than `max` of them), in canonical shape.
fn build_subtree(entries: Vec<(Entry<'_>, KeyHash)>, depth: usize, max: usize) -> Result<Node> {
    let mut groups: Vec<Vec<(Entry<'_>, KeyHash)>> = Vec::new();
    let mut idxs: Vec<u8> = Vec::new();
    for (e, h) in entries {
        let idx = h.slot(depth).ok_or_else(|| Error::HashExhausted {
            key: e.key.to_owned(),
            depth,
        })?;
        match idxs.iter().position(|&i| i == idx) {
            Some(p) => groups[p].push((e, h)),
            None => {
                idxs.push(idx);
                groups.push(vec![(e, h)]);
            }
        }
    }
    let mut node = Node::default();
    for (idx, group) in idxs.into_iter().zip(groups) {
        if group.len() <= max {
            let mut es: Vec<Entry<'_>> = group.into_iter().map(|(e, _)| e).collect();
            node.set_bucket(idx, &Bucket::encode(&mut es));
        } else {
            node.set_link(idx, Link::Dirty(build_subtree(group, depth + 1, max)?));
        }
    }
    Ok(node)
}

/// Removes `key` below `node` (whose path is dirty) and collapses small subtrees into
/// buckets on the way back up. Returns whether the key was found.
fn remove_rec(node: &mut Node, hash: &KeyHash, depth: usize, key: &str, max: usize) -> bool {
    let Some(idx) = hash.slot(depth) else {
        return false;
    };
    match node.get(idx) {
        None => false,
        Some(Slot::Bucket(b)) => match b.without(key) {
            None => false,
            Some(smaller) => {
                node.set_bucket(idx, &smaller);
                true
            }
        },
        Some(Slot::Link(_)) => {
            let Some(Link::Dirty(child)) = node.link_mut(idx) else {
                return false;
            };
            if !remove_rec(child, hash, depth + 1, key, max) {
                return false;
            }
            if let Some(bucket) = child.collapse(max) {
                node.set_bucket(idx, &bucket);
            }
            true
        }
    }
}

/// Encodes the dirty nodes below and including `node`, children first. Pushes each block and
/// returns the node's CID.
fn encode_dirty(node: &Node, config: &HamtConfig, out: &mut Vec<Block>) -> Result<Cid> {
    let mut child_cids = Vec::new();
    for (_, slot) in node.iter() {
        if let Slot::Link(Link::Dirty(child)) = slot {
            child_cids.push(encode_dirty(child, config, out)?);
        }
    }
    let bytes = node
        .encode_with(&mut child_cids.into_iter(), config.ids)
        .map_err(|e| Error::Value(e.to_string()))?;
    let block = Block::new(DAG_CBOR, config.block_hash, bytes);
    let cid = block.cid;
    out.push(block);
    Ok(cid)
}

/// After a successful write, turns the dirty tree into stored links (in the same order as
/// [`encode_dirty`]) and hands the nodes to the cache.
fn mark_stored(
    mut node: Node,
    cids: &mut impl Iterator<Item = Cid>,
    cache: &NodeCache,
) -> Option<Cid> {
    for link in node.links_mut() {
        if let Link::Dirty(child) = link {
            let child = std::mem::take(child);
            *link = Link::Stored(mark_stored(child, cids, cache)?);
        }
    }
    let cid = cids.next()?;
    node.shrink();
    cache.insert(cid, Arc::new(node));
    Some(cid)
}

impl Writer {
    /// A writer on an empty HAMT.
    pub fn new(store: SharedStore, config: HamtConfig) -> Result<Self> {
        Self::with_root(store, Link::Dirty(Node::default()), config)
    }

    /// A writer on the HAMT at `root`; nodes load when an operation needs them.
    pub fn open(store: SharedStore, root: Cid, config: HamtConfig) -> Result<Self> {
        Self::with_root(store, Link::Stored(root), config)
    }

    fn with_root(store: SharedStore, root: Link, config: HamtConfig) -> Result<Self> {
        config.validate()?;
        let cache = NodeCache::new(store, config.cache_bytes, config.bucket_limit);
        Ok(Writer {
            root,
            cache: Arc::new(cache),
            config,
            pending: Vec::new(),
            pending_bytes: 0,
            in_flight: None,
            scratch: Scratch::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &HamtConfig {
        &self.config
    }

    /// The store written to.
    pub fn store(&self) -> &SharedStore {
        self.cache.store()
    }

    /// The root CID if nothing changed since the last commit or open.
    pub fn root_cid(&self) -> Option<Cid> {
        match &self.root {
            Link::Stored(cid) => Some(*cid),
            Link::Dirty(_) => None,
        }
    }

    /// Sets `key` to the bytes `value` (a raw block).
    pub async fn insert(&mut self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        let (cid, blocks) = self.config.value_blocks(value.into());
        self.buffer_values(blocks).await?;
        self.insert_pointer(key, cid).await
    }

    /// Sets `key` to an IPLD value stored as DAG-CBOR in a block labelled `raw`, exactly like
    /// py-hamt's `values_are_bytes=False`.
    pub async fn insert_ipld(&mut self, key: &str, value: &Ipld) -> Result<()> {
        let bytes = encode_ipld(value)?;
        self.insert(key, bytes).await
    }

    async fn buffer_values(&mut self, blocks: Vec<Block>) -> Result<()> {
        for b in blocks {
            self.pending_bytes += b.data.len();
            self.pending.push(b);
        }
        if self.pending.len() >= self.config.value_batch_blocks
            || self.pending_bytes >= self.config.value_batch_bytes
        {
            self.start_flush().await?;
        }
        Ok(())
    }

    /// Waits for the batch being written, if any.
    async fn finish_in_flight(&mut self) -> Result<()> {
        let Some(f) = self.in_flight.take() else {
            return Ok(());
        };
        let result = match f.task.await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Backend(format!("value write task failed: {e}"))),
        };
        if let Err(e) = result {
            // Not stored: back in front of the buffer, to be retried by the next flush.
            self.pending_bytes += f.blocks.iter().map(|b| b.data.len()).sum::<usize>();
            let newer = std::mem::replace(&mut self.pending, f.blocks);
            self.pending.extend(newer);
            return Err(e.into());
        }
        Ok(())
    }

    /// Hands the buffered values to the store in the background, so that hashing the next
    /// batch overlaps with writing this one (at most one batch in flight).
    async fn start_flush(&mut self) -> Result<()> {
        self.finish_in_flight().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let blocks = batch.clone();
        let store = self.store().clone();
        let task = tokio::spawn(async move { store.put_many(batch).await });
        self.in_flight = Some(InFlight { blocks, task });
        Ok(())
    }

    /// Writes every buffered value block to the store and waits for it.
    pub async fn flush_values(&mut self) -> Result<()> {
        self.start_flush().await?;
        self.finish_in_flight().await
    }

    /// Sets `key` to point at `value`, a block already stored (or buffered).
    pub async fn insert_pointer(&mut self, key: &str, value: Cid) -> Result<()> {
        // The id item and the new bucket are built in buffers kept across inserts: an insert
        // is a few hundred nanoseconds, and an allocation each was a noticeable part of it.
        let hash = self.config.hasher.hash(key.as_bytes());
        self.insert_pointer_hashed(key, &hash, value).await
    }

    /// [`Writer::insert_pointer`] for a key already hashed with this writer's
    /// [`HamtConfig::hasher`], so that the hashing can run on another thread (Python's set
    /// pipeline does). A hash from another function files the key where no lookup finds it.
    pub async fn insert_pointer_hashed(
        &mut self,
        key: &str,
        hash: &KeyHash,
        value: Cid,
    ) -> Result<()> {
        debug_assert_eq!(
            self.config.hasher.hash(key.as_bytes()).as_bytes(),
            hash.as_bytes()
        );
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.insert_with(key, hash, value, &mut scratch).await;
        self.scratch = scratch;
        result
    }

    async fn insert_with(
        &mut self,
        key: &str,
        hash: &KeyHash,
        value: Cid,
        scratch: &mut Scratch,
    ) -> Result<()> {
        let hash = *hash;
        scratch.item.clear();
        encode_id_into(&value, self.config.ids, &mut scratch.item);
        let item = &scratch.item[..];
        let bucket_buf = &mut scratch.bucket;
        let max = self.config.max_bucket_size;
        let hasher = &*self.config.hasher;
        let mut node = dirty(&mut self.root, &self.cache).await?;
        let mut depth = 0;
        loop {
            let idx = hash.slot(depth).ok_or_else(|| Error::HashExhausted {
                key: key.to_owned(),
                depth,
            })?;
            let cur = node;
            match cur.get(idx) {
                None => {
                    Bucket::encode_into(&mut [Entry { key, item }], bucket_buf);
                    cur.set_bucket(idx, bucket_buf);
                    return Ok(());
                }
                Some(Slot::Bucket(bucket)) => {
                    if bucket.with_entry_into(key, item, max, bucket_buf) {
                        cur.set_bucket(idx, bucket_buf);
                        return Ok(());
                    }
                    // Full: the bucket and the new key move into a new child node. Built
                    // aside first, so a hash that runs out leaves the tree unchanged.
                    let mut entries = vec![(Entry { key, item }, hash)];
                    for e in bucket.iter() {
                        entries.push((e, hasher.hash(e.key.as_bytes())));
                    }
                    let child = build_subtree(entries, depth + 1, max)?;
                    cur.set_link(idx, Link::Dirty(child));
                    return Ok(());
                }
                Some(Slot::Link(l)) => {
                    // A stored child below the last hash level: a hostile tree, not a full hash.
                    if let (Link::Stored(c), None) = (l, hash.slot(depth + 1)) {
                        return Err(Error::TooDeep {
                            cid: *c,
                            depth: depth + 1,
                        });
                    }
                    let Some(link) = cur.link_mut(idx) else {
                        return Ok(());
                    };
                    node = dirty(link, &self.cache).await?;
                    depth += 1;
                }
            }
        }
    }

    /// Removes `key`; returns its value CID. [`Error::KeyNotFound`] (and no change) if absent.
    pub async fn remove(&mut self, key: &str) -> Result<Cid> {
        let hash = self.config.hasher.hash(key.as_bytes());
        let Some(old) = self.pointer_at(&hash, key).await? else {
            return Err(Error::KeyNotFound(key.to_owned()));
        };
        // Make the whole path dirty first (all loads happen before any change).
        let mut node = dirty(&mut self.root, &self.cache).await?;
        let mut depth = 0;
        while let Some(idx) = hash.slot(depth) {
            let cur = node;
            match cur.link_mut(idx) {
                Some(link) => {
                    node = dirty(link, &self.cache).await?;
                    depth += 1;
                }
                None => break,
            }
        }
        let Link::Dirty(root) = &mut self.root else {
            return Err(Error::KeyNotFound(key.to_owned()));
        };
        if remove_rec(root, &hash, 0, key, self.config.max_bucket_size) {
            Ok(old)
        } else {
            Err(Error::KeyNotFound(key.to_owned()))
        }
    }

    /// The value CID stored for `key`.
    pub async fn get_pointer(&self, key: &str) -> Result<Option<Cid>> {
        let hash = self.config.hasher.hash(key.as_bytes());
        self.pointer_at(&hash, key).await
    }

    /// [`Writer::get_pointer`] for a key already hashed.
    async fn pointer_at(&self, hash: &KeyHash, key: &str) -> Result<Option<Cid>> {
        let mut node = match &self.root {
            Link::Stored(cid) => return find_stored(&self.cache, *cid, 0, hash, key).await,
            Link::Dirty(n) => n,
        };
        let mut depth = 0;
        loop {
            let Some(idx) = hash.slot(depth) else {
                return Ok(None);
            };
            match node.get(idx) {
                None => return Ok(None),
                Some(Slot::Bucket(b)) => return Ok(b.find(key).and_then(|e| e.cid())),
                Some(Slot::Link(link)) => match link {
                    Link::Dirty(child) => {
                        node = child;
                        depth += 1;
                    }
                    Link::Stored(cid) => {
                        return find_stored(&self.cache, *cid, depth + 1, hash, key).await
                    }
                },
            }
        }
    }

    /// Whether `key` is present.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.get_pointer(key).await?.is_some())
    }

    /// The value of `key`, including values not yet flushed to the store.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_range(key, ByteRange::Full).await
    }

    /// Part of the value of `key`.
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        let Some(cid) = self.get_pointer(key).await? else {
            return Ok(None);
        };
        let overlay = PendingOverlay {
            pending: &self.pending,
            in_flight: self.in_flight.as_ref().map_or(&[], |f| &f.blocks),
            store: &**self.store(),
        };
        Ok(Some(read_value(&overlay, &cid, range).await?))
    }

    /// The value of `key` decoded from DAG-CBOR.
    pub async fn get_ipld(&self, key: &str) -> Result<Option<Ipld>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(b) => Ok(Some(decode_ipld(&b)?)),
        }
    }

    /// Writes buffered values and the changed nodes, and returns the root CID. Only the final
    /// version of each changed node is written. If the store fails, the tree stays dirty and
    /// a later commit can retry; the previous root stays readable.
    pub async fn commit(&mut self) -> Result<Cid> {
        self.flush_values().await?;
        let root = match &self.root {
            Link::Stored(cid) => return Ok(*cid),
            Link::Dirty(node) => node,
        };
        // Each dirty child subtree of the root is encoded on its own and written in batches of
        // about `value_batch_blocks` blocks or `value_batch_bytes` bytes (small subtrees
        // share a batch, so a remote store gets few large requests), so only a fraction of the
        // new nodes' bytes is in memory at once. Children are written before parents, so a
        // partial write never leaves a stored node pointing at a missing child.
        let mut cids = Vec::new();
        let mut child_cids = Vec::new();
        let (mut batch, mut batch_bytes) = (Vec::new(), 0usize);
        for (_, slot) in root.iter() {
            if let Slot::Link(Link::Dirty(child)) = slot {
                let mut blocks = Vec::new();
                child_cids.push(encode_dirty(child, &self.config, &mut blocks)?);
                cids.extend(blocks.iter().map(|b| b.cid));
                batch_bytes += blocks.iter().map(|b| b.data.len()).sum::<usize>();
                batch.extend(blocks);
                if batch.len() >= self.config.value_batch_blocks
                    || batch_bytes >= self.config.value_batch_bytes
                {
                    self.put_batches(std::mem::take(&mut batch)).await?;
                    batch_bytes = 0;
                }
            }
        }
        self.put_batches(batch).await?;
        let bytes = root
            .encode_with(&mut child_cids.into_iter(), self.config.ids)
            .map_err(|e| Error::Value(e.to_string()))?;
        let block = Block::new(DAG_CBOR, self.config.block_hash, bytes);
        let root_cid = block.cid;
        cids.push(root_cid);
        self.store().put(block).await?;
        // A committed root survives a crash, with everything below it.
        self.store().sync().await?;
        if let Link::Dirty(node) = std::mem::replace(&mut self.root, Link::Stored(root_cid)) {
            mark_stored(node, &mut cids.into_iter(), &self.cache);
        }
        Ok(root_cid)
    }

    async fn put_batches(&self, mut blocks: Vec<Block>) -> Result<()> {
        let batch = self.config.value_batch_blocks.max(1);
        while !blocks.is_empty() {
            let rest = blocks.split_off(blocks.len().min(batch));
            self.store()
                .put_many(std::mem::replace(&mut blocks, rest))
                .await?;
        }
        Ok(())
    }

    /// Commits and returns a reader on the new root that shares this writer's node cache.
    pub async fn reader(&mut self) -> Result<Reader> {
        let root = self.commit().await?;
        Ok(Reader::with_cache(root, self.cache.clone(), &self.config))
    }

    /// Every key in the current tree (committed or not), in py-hamt's traversal order.
    pub async fn keys(&self) -> Result<Vec<String>> {
        enum Item<'a> {
            Dirty(&'a Node, usize),
            Stored(Cid, usize),
        }
        let max_depth = self.config.max_depth();
        let mut out = Vec::new();
        let mut visited = super::Visited::default();
        let mut stack = vec![match &self.root {
            Link::Dirty(n) => Item::Dirty(n, 0),
            Link::Stored(c) => Item::Stored(*c, 0),
        }];
        while let Some(item) = stack.pop() {
            match item {
                Item::Dirty(node, depth) => {
                    for (_, slot) in node.iter() {
                        match slot {
                            Slot::Bucket(b) => out.extend(b.iter().map(|e| e.key.to_owned())),
                            Slot::Link(l) => stack.push(match l {
                                Link::Stored(c) => Item::Stored(*c, depth + 1),
                                Link::Dirty(child) => Item::Dirty(child, depth + 1),
                            }),
                        }
                    }
                }
                Item::Stored(cid, depth) => {
                    if depth > 0 && depth >= max_depth {
                        return Err(Error::TooDeep { cid, depth });
                    }
                    let node = self.cache.load(&cid).await?;
                    visited.check(&cid, &node)?;
                    for (_, slot) in node.iter() {
                        match slot {
                            Slot::Bucket(b) => out.extend(b.iter().map(|e| e.key.to_owned())),
                            Slot::Link(Link::Stored(c)) => stack.push(Item::Stored(*c, depth + 1)),
                            Slot::Link(Link::Dirty(_)) => {}
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Node cache counters of this writer.
    pub fn cache_stats(&self) -> super::CacheStats {
        self.cache.stats()
    }
}
