//! A cheap, clonable, concurrent read handle on a committed root.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use futures::stream::{self, Stream};
use ipld_core::ipld::Ipld;

use super::cache::{CacheStats, NodeCache};
use super::lookup::find_stored;
use super::stats::TreeStats;
use super::{HamtConfig, Visited};
use crate::error::{Error, Result};
use crate::key_hash::KeyHasher;
use crate::node::{Link, Slot};
use crate::range::ByteRange;
use crate::store::SharedStore;
use crate::value::{decode_ipld, read_value};

struct Inner {
    root: Cid,
    cache: Arc<NodeCache>,
    hasher: Arc<dyn KeyHasher>,
    max_depth: usize,
}

/// A read-only view of the HAMT at one root. Cloning is cheap (an `Arc`); clones share the
/// node cache, and any number of tasks may read at once. It cannot write.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::{HamtConfig, Reader, Writer, store::MemoryStore};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
/// w.insert("a", b"1".to_vec()).await.unwrap();
/// let root = w.commit().await.unwrap();
/// let r = Reader::new(store, root, HamtConfig::default()).unwrap();
/// assert_eq!(r.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
/// assert_eq!(r.get("b").await.unwrap(), None);
/// # });
/// ```
#[derive(Clone)]
pub struct Reader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("root", &self.inner.root)
            .field("cache", &self.inner.cache.stats())
            .finish()
    }
}

impl Reader {
    /// A reader on `root` in `store`.
    pub fn new(store: SharedStore, root: Cid, config: HamtConfig) -> Result<Self> {
        config.validate()?;
        let cache = NodeCache::new(store, config.cache_bytes, config.bucket_limit);
        Ok(Self::with_cache(root, Arc::new(cache), &config))
    }

    pub(crate) fn with_cache(root: Cid, cache: Arc<NodeCache>, config: &HamtConfig) -> Self {
        Reader {
            inner: Arc::new(Inner {
                root,
                cache,
                hasher: config.hasher.clone(),
                max_depth: config.max_depth(),
            }),
        }
    }

    /// The root CID.
    pub fn root(&self) -> Cid {
        self.inner.root
    }

    /// The store read from.
    pub fn store(&self) -> &SharedStore {
        self.inner.cache.store()
    }

    /// The value CID stored for `key`, without loading the value.
    pub async fn get_pointer(&self, key: &str) -> Result<Option<Cid>> {
        let hash = self.inner.hasher.hash(key.as_bytes());
        find_stored(&self.inner.cache, self.inner.root, 0, &hash, key).await
    }

    /// Whether `key` is present (the value is not loaded).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.get_pointer(key).await?.is_some())
    }

    /// The value of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_range(key, ByteRange::Full).await
    }

    /// Part of the value of `key` (py-hamt's offset/length/suffix, see [`ByteRange`]).
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        match self.get_pointer(key).await? {
            None => Ok(None),
            Some(cid) => Ok(Some(read_value(&**self.store(), &cid, range).await?)),
        }
    }

    /// The value of `key` decoded from DAG-CBOR (py-hamt's `values_are_bytes=False`).
    pub async fn get_ipld(&self, key: &str) -> Result<Option<Ipld>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(b) => Ok(Some(decode_ipld(&b)?)),
        }
    }

    /// Every (key, value CID), in py-hamt's read-only `keys()` order: a node's bucket entries
    /// in slot order, then its children, last slot first.
    pub fn entries(&self) -> impl Stream<Item = Result<(String, Cid)>> + Send + 'static {
        struct State {
            reader: Reader,
            stack: Vec<(Cid, usize)>,
            ready: VecDeque<(String, Cid)>,
            visited: Visited,
        }
        let state = State {
            reader: self.clone(),
            stack: vec![(self.inner.root, 0)],
            ready: VecDeque::new(),
            visited: Visited::default(),
        };
        stream::try_unfold(state, |mut st| async move {
            loop {
                if let Some(e) = st.ready.pop_front() {
                    return Ok(Some((e, st)));
                }
                let Some((cid, depth)) = st.stack.pop() else {
                    return Ok(None);
                };
                if depth > 0 && depth >= st.reader.inner.max_depth {
                    return Err(Error::TooDeep { cid, depth });
                }
                let node = st.reader.inner.cache.load(&cid).await?;
                st.visited.check(&cid, &node)?;
                for (_, slot) in node.iter() {
                    match slot {
                        Slot::Bucket(b) => {
                            for e in b.iter() {
                                if let Some(c) = e.cid() {
                                    st.ready.push_back((e.key.to_owned(), c));
                                }
                            }
                        }
                        Slot::Link(Link::Stored(c)) => st.stack.push((*c, depth + 1)),
                        Slot::Link(Link::Dirty(_)) => {}
                    }
                }
            }
        })
    }

    /// Every key, in the order of [`Reader::entries`].
    pub fn keys(&self) -> impl Stream<Item = Result<String>> + Send + 'static {
        use futures::TryStreamExt;
        self.entries().map_ok(|(k, _)| k)
    }

    /// Number of keys (walks every node, as py-hamt's `len()`).
    pub async fn len(&self) -> Result<u64> {
        Ok(self.stats().await?.keys)
    }

    /// Shape of the tree: keys, nodes, depths, bucket sizes, node bytes.
    pub async fn stats(&self) -> Result<TreeStats> {
        TreeStats::collect(&self.inner.cache, self.inner.root, self.inner.max_depth).await
    }

    /// Node cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// Empties the node cache (py-hamt's read-only `cache_vacate`).
    pub fn clear_cache(&self) {
        self.inner.cache.clear()
    }
}
