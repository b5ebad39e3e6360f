//! [`ShardedReader`]: a read-only sharded store shared by many tasks (Clone + Send + Sync),
//! with a shard cache bounded in bytes and py-hamt's read modes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cid::Cid;
use futures::Stream;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::keys::{array_path_of_metadata_key, KeyKind};
use super::listing::{self, ShardSource};
use super::manifest::{normalize_path, Manifest};
use super::shard::{self, ShardEntries};
use super::writer::sharded;
use super::{meta, ShardedConfig, ShardedError, Version};
use crate::error::Result;
use crate::pyemu::json::PyJson;
use crate::range::ByteRange;
use crate::store::SharedStore;

/// How a read-only store resolves a chunk's entry in its shard (py-hamt's `shard_read_mode`).
/// Modes change only how many blocks are fetched, never what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Fetch, decode and cache whole shards: best for scans.
    Full,
    /// Fetch the shard and decode only the entry needed, caching nothing: best for a few
    /// point reads of huge shards.
    Sparse,
    /// Sparse until one shard has been read sparsely 256 times, then full for good.
    #[default]
    Auto,
}

impl std::str::FromStr for ReadMode {
    type Err = ShardedError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "full" => Ok(ReadMode::Full),
            "sparse" => Ok(ReadMode::Sparse),
            "auto" => Ok(ReadMode::Auto),
            other => Err(ShardedError::Invalid(format!(
                "Unsupported shard_read_mode: '{other}'. Expected 'full', 'sparse', or 'auto'."
            ))),
        }
    }
}

/// Sparse reads of one shard after which `Auto` switches the store to full reads.
const AUTO_LATCH_READS: u32 = 256;

#[derive(Clone)]
struct ShardWeight;

impl Weighter<(usize, u64), Arc<ShardEntries>> for ShardWeight {
    fn weight(&self, _k: &(usize, u64), v: &Arc<ShardEntries>) -> u64 {
        (v.len() * std::mem::size_of::<Option<Cid>>() + 64) as u64
    }
}

struct Inner {
    store: SharedStore,
    root: Cid,
    m: Manifest,
    mode: ReadMode,
    cache: Cache<(usize, u64), Arc<ShardEntries>, ShardWeight>,
    meta_cache: Mutex<HashMap<String, Bytes>>,
    latched: AtomicBool,
    sparse_counts: Mutex<HashMap<(usize, u64), u32>>,
    shard_fetches: AtomicU64,
}

/// A read-only view of one sharded root.
#[derive(Clone)]
pub struct ShardedReader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShardedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedReader")
            .field("root", &self.inner.root)
            .field("version", &self.inner.m.version)
            .field("mode", &self.inner.mode)
            .finish()
    }
}

/// Reads and decodes a root manifest (a root over 1 MiB may be a UnixFS file).
pub(crate) async fn load_manifest(store: &SharedStore, root: &Cid) -> Result<Manifest> {
    super::check_structure_codec(root, "root").map_err(sharded)?;
    let bytes = crate::value::read_value(store.as_ref(), root, ByteRange::Full).await?;
    Manifest::decode(&bytes).map_err(sharded)
}

fn json_dim_eq(v: &PyJson, d: u64) -> bool {
    match v {
        PyJson::Int(i) => i.to_i64() == i64::try_from(d).ok(),
        PyJson::Float(f) => *f == d as f64,
        PyJson::Bool(b) => u64::from(*b) == d,
        _ => false,
    }
}

/// py-hamt's legacy v1 inference: the one non-coordinate array whose metadata declares the
/// global shape and chunk shape. Any load failure, or two matches, infers nothing.
pub(crate) async fn infer_v1_primary(store: &SharedStore, m: &Manifest) -> Result<Option<String>> {
    let Some(global) = m.arrays.get("") else {
        return Ok(None);
    };
    let candidates: Vec<(String, Cid)> = m
        .metadata
        .iter()
        .filter_map(|(k, c)| {
            array_path_of_metadata_key(k).map(|p| (normalize_path(p).to_string(), *c))
        })
        .filter(|(p, _)| {
            !super::keys::V1_COORDINATE_NAMES.contains(&p.rsplit('/').next().unwrap_or(""))
        })
        .collect();
    let mut matches: Vec<String> = Vec::new();
    for batch in candidates.chunks(8) {
        let loads = futures::future::join_all(
            batch
                .iter()
                .map(|(_, c)| crate::value::read_value(store.as_ref(), c, ByteRange::Full)),
        )
        .await;
        for ((path, _), got) in batch.iter().zip(loads) {
            let Ok(bytes) = got else { return Ok(None) };
            let Some(doc) = meta::object(&bytes) else {
                continue;
            };
            let (shape, chunks) = meta::declared_geometry(&doc);
            let eq = |v: Option<Vec<PyJson>>, want: &[u64]| {
                v.is_some_and(|v| {
                    v.len() == want.len() && v.iter().zip(want).all(|(a, b)| json_dim_eq(a, *b))
                })
            };
            if eq(shape, &global.array_shape)
                && eq(chunks, &global.chunk_shape)
                && !matches.contains(path)
            {
                matches.push(path.clone());
            }
        }
        if matches.len() > 1 {
            return Ok(None);
        }
    }
    Ok(matches.pop())
}

impl ShardedReader {
    /// Opens `root` read-only.
    pub async fn open(store: SharedStore, root: Cid, cfg: ShardedConfig) -> Result<Self> {
        let mut m = load_manifest(&store, &root).await?;
        if m.version == Version::V1 && !m.v1_has_recorded_key() {
            if let Some(p) = infer_v1_primary(&store, &m).await? {
                m.primary = Some(p);
                m.primary_inferred = true;
            }
        }
        Ok(Self::from_manifest(store, root, m, &cfg))
    }

    pub(crate) fn from_manifest(
        store: SharedStore,
        root: Cid,
        m: Manifest,
        cfg: &ShardedConfig,
    ) -> Self {
        let items = (cfg.cache_bytes / 4096).clamp(16, 1 << 20) as usize;
        ShardedReader {
            inner: Arc::new(Inner {
                store,
                root,
                m,
                mode: cfg.read_mode,
                cache: Cache::with_weighter(items, cfg.cache_bytes.max(1), ShardWeight),
                meta_cache: Mutex::new(HashMap::new()),
                latched: AtomicBool::new(false),
                sparse_counts: Mutex::new(HashMap::new()),
                shard_fetches: AtomicU64::new(0),
            }),
        }
    }

    /// The root CID.
    pub fn root(&self) -> Cid {
        self.inner.root
    }

    /// The decoded manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.m
    }

    /// The store read from.
    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    /// Shard blocks fetched from the store so far (for tests and tuning).
    pub fn shard_fetches(&self) -> u64 {
        self.inner.shard_fetches.load(Ordering::Relaxed)
    }

    /// Whether `Auto` mode has switched to full reads.
    pub fn full_mode_latched(&self) -> bool {
        self.inner.latched.load(Ordering::Relaxed)
    }

    /// Shards held in the cache.
    pub fn cached_shards(&self) -> usize {
        self.inner.cache.len()
    }

    fn array_pos(&self, path: &str) -> Option<(usize, &super::ArrayIndex)> {
        let key = if self.inner.m.version == Version::V1 {
            ""
        } else {
            path
        };
        self.inner.m.arrays.get_full(key).map(|(i, _, a)| (i, a))
    }

    async fn fetch_shard_bytes(&self, cid: &Cid) -> Result<Bytes> {
        super::check_structure_codec(cid, "shard").map_err(sharded)?;
        self.inner.shard_fetches.fetch_add(1, Ordering::Relaxed);
        crate::value::read_value(self.inner.store.as_ref(), cid, ByteRange::Full).await
    }

    /// Shard `s` of the array at position `pos`, decoded and cached (`None` for a null shard).
    async fn full_shard(&self, pos: usize, s: u64) -> Result<Option<Arc<ShardEntries>>> {
        let Some((_, index)) = self.inner.m.arrays.get_index(pos) else {
            return Ok(None);
        };
        let Some(cid) = index.shard_cids.get(s as usize).copied().flatten() else {
            return Ok(None);
        };
        let cps = index.chunks_per_shard;
        let entries = self
            .inner
            .cache
            .get_or_insert_async(&(pos, s), async {
                let bytes = self.fetch_shard_bytes(&cid).await?;
                let entries = shard::decode(&bytes, s, cps).map_err(|e| sharded(e.into()))?;
                Ok::<_, crate::Error>(Arc::new(entries))
            })
            .await?;
        Ok(Some(entries))
    }

    /// The entry at `offset` of shard `s`, by the read mode (ranges force full reads).
    async fn entry(&self, pos: usize, s: u64, offset: u64, ranged: bool) -> Result<Option<Cid>> {
        let Some((_, index)) = self.inner.m.arrays.get_index(pos) else {
            return Ok(None);
        };
        let Some(cid) = index.shard_cids.get(s as usize).copied().flatten() else {
            return Ok(None);
        };
        if let Some(hit) = self.inner.cache.get(&(pos, s)) {
            return Ok(hit.get(offset as usize).copied().flatten());
        }
        let sparse = !ranged
            && match self.inner.mode {
                ReadMode::Full => false,
                ReadMode::Sparse => true,
                ReadMode::Auto => !self.auto_latches(pos, s),
            };
        if sparse {
            let bytes = self.fetch_shard_bytes(&cid).await?;
            return shard::decode_entry(&bytes, s, index.chunks_per_shard, offset)
                .map_err(|e| sharded(e.into()));
        }
        Ok(self
            .full_shard(pos, s)
            .await?
            .and_then(|e| e.get(offset as usize).copied().flatten()))
    }

    /// Counts a sparse-eligible read; true when the store is (now) in full mode.
    fn auto_latches(&self, pos: usize, s: u64) -> bool {
        if self.inner.latched.load(Ordering::Relaxed) {
            return true;
        }
        let Ok(mut counts) = self.inner.sparse_counts.lock() else {
            return true;
        };
        let n = counts.entry((pos, s)).or_insert(0);
        *n += 1;
        if *n >= AUTO_LATCH_READS {
            self.inner.latched.store(true, Ordering::Relaxed);
            counts.clear();
            return true;
        }
        false
    }

    /// Classifies a read key: v2 parse errors mean "absent", v1 raises them.
    fn classify(&self, key: &str) -> Result<Option<KeyKind>> {
        match self.inner.m.classify(key) {
            Ok(k) => Ok(Some(k)),
            Err(ShardedError::Invalid(_) | ShardedError::Index(_))
                if self.inner.m.version == Version::V2 =>
            {
                Ok(None)
            }
            Err(e) => Err(sharded(e)),
        }
    }

    /// The CID stored for `key` (metadata document or chunk), or `None`.
    pub async fn get_pointer(&self, key: &str) -> Result<Option<Cid>> {
        let k = self.inner.m.effective_read_key(key);
        Ok(self.lookup(&k, false).await?.0)
    }

    /// The CID an effective read key `k` resolves to, and whether `k` is a metadata key.
    async fn lookup(&self, k: &str, ranged: bool) -> Result<(Option<Cid>, bool)> {
        let legacy = || self.inner.m.metadata.get(k).copied();
        let (path, coords) = match self.classify(k)? {
            None => return Ok((None, false)),
            Some(KeyKind::Metadata) => return Ok((legacy(), true)),
            Some(KeyKind::Chunk { path, coords }) => (path, coords),
        };
        let Some((pos, index)) = self.array_pos(&path) else {
            return Ok((legacy(), false));
        };
        let coords = index.validate(&coords).map_err(sharded)?;
        let (s, offset) = index.shard_of(index.linear(&coords));
        Ok((
            self.entry(pos, s, offset, ranged).await?.or_else(legacy),
            false,
        ))
    }

    /// The value of `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_range(key, ByteRange::Full).await
    }

    /// Part of the value of `key` (py-hamt slice semantics), or `None`. Whole metadata
    /// documents are cached.
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        let k = self.inner.m.effective_read_key(key);
        let whole = range == ByteRange::Full;
        if whole {
            if let Some(b) = self
                .inner
                .meta_cache
                .lock()
                .ok()
                .and_then(|c| c.get(&k).cloned())
            {
                return Ok(Some(b));
            }
        }
        let (Some(cid), is_meta) = self.lookup(&k, !whole).await? else {
            return Ok(None);
        };
        let bytes = crate::value::read_value(self.inner.store.as_ref(), &cid, range).await?;
        if is_meta && whole {
            if let Ok(mut c) = self.inner.meta_cache.lock() {
                c.insert(k, bytes.clone());
            }
        }
        Ok(Some(bytes))
    }

    /// Whether `key` has a value (py-hamt's `exists`: chunk lookups read whole shards).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let k = self.inner.m.effective_read_key(key);
        let (path, coords) = match self.inner.m.classify(&k) {
            Err(_) => return Ok(false),
            Ok(KeyKind::Metadata) => return Ok(self.inner.m.metadata.contains_key(&k)),
            Ok(KeyKind::Chunk { path, coords }) => (path, coords),
        };
        let Some((pos, index)) = self.array_pos(&path) else {
            return Ok(self.inner.m.metadata.contains_key(&k));
        };
        let Ok(coords) = index.validate(&coords) else {
            return Ok(false);
        };
        let (s, offset) = index.shard_of(index.linear(&coords));
        let entry = self
            .full_shard(pos, s)
            .await?
            .and_then(|e| e.get(offset as usize).copied().flatten());
        Ok(entry.is_some() || self.inner.m.metadata.contains_key(&k))
    }

    /// Every key in py-hamt's `list()` order (metadata first, then chunks by array, shard and
    /// entry), with the CID of its value. Shards are fetched as the stream reaches them.
    pub fn entries(&self) -> impl Stream<Item = Result<(String, Cid)>> + Send + 'static {
        let meta: Vec<(String, Cid)> = self
            .inner
            .m
            .metadata
            .iter()
            .map(|(k, c)| (k.clone(), *c))
            .collect();
        let shards: Vec<(String, u64)> = self
            .inner
            .m
            .arrays
            .iter()
            .flat_map(|(p, a)| {
                (0..a.num_shards())
                    .filter(|s| a.shard_cids[*s as usize].is_some())
                    .map(move |s| (p.clone(), s))
            })
            .collect();
        let this = self.clone();
        let chunks = futures::stream::iter(shards)
            .then(move |(p, s)| {
                let this = this.clone();
                async move { listing::shard_entries(&this, &p, s).await }
            })
            .map_ok({
                let r = self.clone();
                move |v| {
                    let r = r.clone();
                    futures::stream::iter(
                        v.into_iter()
                            .filter(move |(k, _)| !r.inner.m.metadata.contains_key(k))
                            .map(Ok),
                    )
                }
            })
            .try_flatten();
        futures::stream::iter(meta.into_iter().map(Ok)).chain(chunks)
    }

    /// Every key in `list()` order.
    pub async fn list(&self) -> Result<Vec<String>> {
        Ok(listing::list_all(self)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Distinct next path components under `prefix` (sorted).
    pub async fn list_dir(&self, prefix: &str) -> Result<Vec<String>> {
        listing::list_dir(self, prefix, true).await
    }

    /// The entry of shard `s`, offset `k` of `index` (full reads; for grafting).
    pub(crate) async fn shard_entry_full(
        &self,
        path: &str,
        _index: &super::ArrayIndex,
        s: u64,
        k: u64,
    ) -> Result<Option<Cid>> {
        let Some((pos, _)) = self.array_pos(path) else {
            return Ok(None);
        };
        Ok(self
            .full_shard(pos, s)
            .await?
            .and_then(|e| e.get(k as usize).copied().flatten()))
    }
}

use futures::{StreamExt, TryStreamExt};

#[async_trait::async_trait]
impl ShardSource for ShardedReader {
    fn manifest(&self) -> &Manifest {
        &self.inner.m
    }
    async fn shard(&self, array: &str, s: u64) -> Result<Option<Arc<ShardEntries>>> {
        match self.inner.m.arrays.get_index_of(array) {
            Some(pos) => self.full_shard(pos, s).await,
            None => Ok(None),
        }
    }
}
