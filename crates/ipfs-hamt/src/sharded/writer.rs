//! [`ShardedWriter`]: builds and changes a sharded store in memory and writes the changed
//! shards and the root on [`ShardedWriter::flush`], block for block as py-hamt 3.6.0 does.

use std::collections::HashMap;

use bytes::Bytes;
use cid::Cid;

use super::geometry::ArrayIndex;
use super::keys::{array_path_of_metadata_key, group_path_of_metadata_key, KeyKind};
use super::manifest::{normalize_path, Manifest};
use super::reader::ShardedReader;
use super::shard::{self, ShardEntries};
use super::{meta, ShardedConfig, ShardedError, Version};
use crate::block::{Block, DAG_CBOR, RAW};
use crate::error::{Error, Result};
use crate::range::ByteRange;
use crate::store::SharedStore;
use crate::unixfs;

/// What [`ShardedWriter::set`] did with a value.
#[derive(Debug)]
pub enum SetOutcome {
    /// The value was stored under the key.
    Stored,
    /// v2 drops writes to keys it cannot place (out-of-bounds or malformed chunk keys)
    /// without an error, as py-hamt does; the reason is kept here for callers that care.
    Ignored(ShardedError),
}

#[derive(Debug)]
pub(crate) struct CachedShard {
    pub(crate) entries: ShardEntries,
    pub(crate) dirty: bool,
}

/// A writable sharded store (py-hamt's `ShardedZarrStore` with `read_only=False`).
pub struct ShardedWriter {
    pub(crate) store: SharedStore,
    pub(crate) cfg: ShardedConfig,
    pub(crate) m: Manifest,
    pub(crate) shards: HashMap<(String, u64), CachedShard>,
    pub(crate) meta_cache: HashMap<String, Bytes>,
    pub(crate) dirty_root: bool,
    pub(crate) root: Option<Cid>,
    pending_group: bool,
    pending: Vec<Block>,
    pending_bytes: usize,
    pending_index: HashMap<Cid, Bytes>,
}

impl std::fmt::Debug for ShardedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedWriter")
            .field("version", &self.m.version)
            .field("root", &self.root)
            .field("arrays", &self.m.arrays.len())
            .field("cached_shards", &self.shards.len())
            .finish()
    }
}

pub(crate) fn sharded(e: ShardedError) -> Error {
    Error::Sharded(e)
}

impl ShardedWriter {
    fn with_manifest(
        store: SharedStore,
        cfg: ShardedConfig,
        m: Manifest,
        root: Option<Cid>,
    ) -> Self {
        ShardedWriter {
            store,
            cfg,
            m,
            shards: HashMap::new(),
            meta_cache: HashMap::new(),
            dirty_root: root.is_none(),
            root,
            pending_group: false,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_index: HashMap::new(),
        }
    }

    /// A new, empty v2 store whose arrays get `chunks_per_shard` entries per shard.
    pub fn create_v2(
        store: SharedStore,
        cfg: ShardedConfig,
        chunks_per_shard: u64,
    ) -> Result<Self> {
        let m = Manifest::new_v2(chunks_per_shard).map_err(sharded)?;
        Ok(Self::with_manifest(store, cfg, m, None))
    }

    /// A new v2 store with one array index seeded at `path` (py-hamt's `open` with shapes and
    /// `manifest_version="sharded_zarr_v2"`).
    pub fn create_v2_seeded(
        store: SharedStore,
        cfg: ShardedConfig,
        chunks_per_shard: u64,
        path: &str,
        array_shape: Vec<u64>,
        chunk_shape: Vec<u64>,
    ) -> Result<Self> {
        let mut m = Manifest::new_v2(chunks_per_shard).map_err(sharded)?;
        let path = normalize_path(path).to_string();
        let index = ArrayIndex::new(array_shape, chunk_shape, chunks_per_shard).map_err(sharded)?;
        m.arrays.insert(path.clone(), index);
        m.primary = Some(path);
        Ok(Self::with_manifest(store, cfg, m, None))
    }

    /// A new v1 store (deprecated layout: one global index for the primary array).
    pub fn create_v1(
        store: SharedStore,
        cfg: ShardedConfig,
        array_shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        chunks_per_shard: u64,
    ) -> Result<Self> {
        let m = Manifest::new_v1(array_shape, chunk_shape, chunks_per_shard).map_err(sharded)?;
        Ok(Self::with_manifest(store, cfg, m, None))
    }

    /// Opens an existing root for changes. A v1 root without a recorded primary array gets it
    /// inferred and recorded (the root is then dirty), as py-hamt's writable open does.
    pub async fn open(store: SharedStore, root: Cid, cfg: ShardedConfig) -> Result<Self> {
        let m = super::reader::load_manifest(&store, &root).await?;
        let mut w = Self::with_manifest(store, cfg, m, Some(root));
        if w.m.version == Version::V1 && !w.m.v1_has_recorded_key() {
            if let Some(p) = super::reader::infer_v1_primary(&w.store, &w.m).await? {
                w.m.primary_inferred = true;
                w.m.record_v1_primary(&p);
                w.dirty_root = true;
            }
        }
        Ok(w)
    }

    /// A writer at a reader's root, without loading anything (py-hamt's
    /// `with_read_only(False)` on a read-only store). A v1 primary the reader inferred is
    /// recorded, which makes the root dirty, as py-hamt's writable clone does.
    pub fn from_reader(reader: &ShardedReader, cfg: ShardedConfig) -> Self {
        let m = reader.manifest().clone();
        let mut w = Self::with_manifest(reader.store().clone(), cfg, m, Some(reader.root()));
        if w.m.version == Version::V1 && !w.m.v1_has_recorded_key() && w.m.primary_inferred {
            if let Some(p) = w.m.primary.clone() {
                w.m.record_v1_primary(&p);
                w.dirty_root = true;
            }
        }
        w
    }

    /// Names the blocks written from now on with `hash` (a Python store that turns out to
    /// hash with SHA2-256 is only known by the first id it returns). Blocks not yet written
    /// are dropped: they were named with the old hash, so the failed operation that revealed
    /// the store's hash must be run again.
    pub fn set_block_hash(&mut self, hash: crate::block::HashAlg) {
        self.cfg.block_hash = hash;
        self.pending.clear();
        self.pending_index.clear();
        self.pending_bytes = 0;
    }

    /// The manifest as it stands (unflushed changes included).
    pub fn manifest(&self) -> &Manifest {
        &self.m
    }

    /// The last flushed (or opened) root; `None` before the first flush of a new store.
    pub fn root_cid(&self) -> Option<Cid> {
        self.root
    }

    /// True when there are changes that `flush` would write.
    pub fn is_dirty(&self) -> bool {
        self.dirty_root || self.shards.values().any(|s| s.dirty)
    }

    /// The shards changed since the last flush, as `(array path, shard index)` (v1: path "").
    pub fn dirty_shards(&self) -> Vec<(String, u64)> {
        let mut out: Vec<_> = self
            .shards
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// The store blocks are written to.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    // ---- blocks ------------------------------------------------------------------------

    /// Saves `data` as one block of `codec` (or a UnixFS file when over 1 MiB, as Kubo's
    /// `add` does for py-hamt's KuboCAS) and returns its CID.
    pub(crate) async fn save(&mut self, data: Bytes, codec: u64) -> Result<Cid> {
        let (cid, blocks) = if self.cfg.unixfs_values && data.len() > unixfs::CHUNK_SIZE {
            unixfs::build_file(&data, self.cfg.block_hash)
        } else {
            let b = Block::new(codec, self.cfg.block_hash, data);
            (b.cid, vec![b])
        };
        for b in blocks {
            self.pending_bytes += b.data.len();
            self.pending_index.insert(b.cid, b.data.clone());
            self.pending.push(b);
        }
        if self.pending_bytes >= self.cfg.batch_bytes {
            self.write_pending().await?;
        }
        Ok(cid)
    }

    async fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(e) = self.store.put_many(batch.clone()).await {
            self.pending = batch;
            return Err(e.into());
        }
        self.pending_bytes = 0;
        self.pending_index.clear();
        Ok(())
    }

    /// Reads (part of) a block written by this writer or already in the store.
    pub(crate) async fn load(&self, cid: &Cid, range: ByteRange) -> Result<Bytes> {
        if let Some(b) = self.pending_index.get(cid) {
            return Ok(range.apply(b));
        }
        if cid.codec() == crate::block::DAG_PB && !self.pending_index.is_empty() {
            // A UnixFS file written in this session: its leaves may be pending too.
            let overlay = PendingOverlay { w: self };
            return crate::value::read_value(&overlay, cid, range).await;
        }
        crate::value::read_value(self.store.as_ref(), cid, range).await
    }

    // ---- shards ------------------------------------------------------------------------

    pub(crate) fn index(&self, path: &str) -> std::result::Result<&ArrayIndex, ShardedError> {
        let key = if self.m.version == Version::V1 {
            ""
        } else {
            path
        };
        self.m
            .arrays
            .get(key)
            .ok_or_else(|| ShardedError::NoIndex(normalize_path(path).to_string()))
    }

    pub(crate) fn cache_path<'a>(&self, path: &'a str) -> &'a str {
        if self.m.version == Version::V1 {
            ""
        } else {
            path
        }
    }

    /// Loads a shard into the cache (or an all-null one for a null shard).
    pub(crate) async fn ensure_shard(&mut self, path: &str, idx: u64) -> Result<()> {
        let path = self.cache_path(path).to_string();
        if self.shards.contains_key(&(path.clone(), idx)) {
            return Ok(());
        }
        let index = self.index(&path).map_err(sharded)?;
        let cps = index.chunks_per_shard;
        let entries = match index.shard_cids.get(idx as usize) {
            None => {
                return Err(sharded(ShardedError::Invalid(format!(
                    "Shard index {idx} out of bounds."
                ))))
            }
            Some(None) => vec![None; cps as usize],
            Some(Some(cid)) => {
                let cid = *cid;
                super::check_structure_codec(&cid, "shard").map_err(sharded)?;
                let bytes = self.load(&cid, ByteRange::Full).await?;
                shard::decode(&bytes, idx, cps).map_err(|e| sharded(e.into()))?
            }
        };
        self.shards.insert(
            (path, idx),
            CachedShard {
                entries,
                dirty: false,
            },
        );
        Ok(())
    }

    /// Sets one shard entry; the shard becomes dirty only if the entry changed.
    pub(crate) async fn update_entry(
        &mut self,
        path: &str,
        idx: u64,
        offset: u64,
        value: Option<Cid>,
    ) -> Result<()> {
        self.ensure_shard(path, idx).await?;
        let key = (self.cache_path(path).to_string(), idx);
        if let Some(s) = self.shards.get_mut(&key) {
            if let Some(slot) = s.entries.get_mut(offset as usize) {
                if *slot != value {
                    *slot = value;
                    s.dirty = true;
                }
            }
        }
        Ok(())
    }

    /// The entry for a chunk, reading the shard if it is not cached (the writer's reads).
    pub(crate) async fn entry(&self, path: &str, idx: u64, offset: u64) -> Result<Option<Cid>> {
        let cpath = self.cache_path(path);
        if let Some(s) = self.shards.get(&(cpath.to_string(), idx)) {
            return Ok(s.entries.get(offset as usize).copied().flatten());
        }
        let index = self.index(cpath).map_err(sharded)?;
        match index.shard_cids.get(idx as usize).copied().flatten() {
            None => Ok(None),
            Some(cid) => {
                super::check_structure_codec(&cid, "shard").map_err(sharded)?;
                let bytes = self.load(&cid, ByteRange::Full).await?;
                let entries = shard::decode(&bytes, idx, index.chunks_per_shard)
                    .map_err(|e| sharded(e.into()))?;
                Ok(entries.get(offset as usize).copied().flatten())
            }
        }
    }

    // ---- metadata rules ----------------------------------------------------------------

    /// §7.1: v2 writes of top-level arrays after a root group write need an explicit group.
    fn check_group_rule(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        if self.m.version != Version::V2 {
            return Ok(());
        }
        let Some(doc) = meta::object(bytes) else {
            return Ok(());
        };
        let geometry = meta::array_geometry(&doc).ok().flatten();
        let group_path = group_path_of_metadata_key(key);
        if let (Some(g), None) = (group_path, &geometry) {
            self.pending_group = g.is_empty();
            return Ok(());
        }
        let (Some(apath), Some(_)) = (array_path_of_metadata_key(key), geometry) else {
            return Ok(());
        };
        if normalize_path(apath).contains('/') {
            self.pending_group = false;
            return Ok(());
        }
        if self.pending_group {
            self.pending_group = false;
            return Err(sharded(ShardedError::Invalid(
                "sharded_zarr_v2 writes require an explicit Zarr group. Write the dataset with ds.to_zarr(..., group='0') or another group name.".into(),
            )));
        }
        Ok(())
    }

    /// §8.1: array metadata registers or resizes its index.
    pub(crate) async fn register_array(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        let Some(apath) = array_path_of_metadata_key(key) else {
            return Ok(());
        };
        let Some(doc) = meta::object(bytes) else {
            return Ok(());
        };
        let geometry = meta::array_geometry(&doc).map_err(sharded)?;
        if self.m.version == Version::V2 {
            let Some((shape, chunks)) = geometry else {
                return Ok(());
            };
            let path = normalize_path(apath).to_string();
            match self.m.arrays.get(&path) {
                None => {
                    let shape = meta::to_dims(&shape, false).map_err(sharded)?;
                    let chunks = meta::to_dims(&chunks, true).map_err(sharded)?;
                    let cps = self.m.default_cps.ok_or_else(|| {
                        sharded(ShardedError::State(
                            "Store is missing a default chunks_per_shard value.".into(),
                        ))
                    })?;
                    let index = ArrayIndex::new(shape, chunks, cps).map_err(sharded)?;
                    self.m.arrays.insert(path.clone(), index);
                    if self.m.primary.is_none() {
                        self.m.primary = Some(path);
                    }
                    self.dirty_root = true;
                }
                Some(existing) => {
                    let same_chunks = chunks.len() == existing.chunk_shape.len()
                        && chunks
                            .iter()
                            .zip(&existing.chunk_shape)
                            .all(|(a, b)| *a == i128::from(*b));
                    if !same_chunks {
                        return Err(sharded(ShardedError::Invalid(format!(
                            "Cannot change chunk_shape for existing array index '{path}'."
                        ))));
                    }
                    let same_shape = shape.len() == existing.array_shape.len()
                        && shape
                            .iter()
                            .zip(&existing.array_shape)
                            .all(|(a, b)| *a == i128::from(*b));
                    if !same_shape {
                        let shape = meta::to_dims(&shape, false).map_err(sharded)?;
                        self.resize_index(&path, shape).await?;
                    }
                }
            }
            return Ok(());
        }
        // v1: any array of the global rank with another shape resizes the global index.
        let shape = match geometry {
            Some((s, _)) => Some(s),
            None => meta::array_shape_only(&doc).map_err(sharded)?,
        };
        let Some(shape) = shape else {
            return Ok(());
        };
        let global = self.index("").map_err(sharded)?;
        let differs = shape.len() == global.array_shape.len()
            && shape
                .iter()
                .zip(&global.array_shape)
                .any(|(a, b)| *a != i128::from(*b));
        if differs {
            let shape = meta::to_dims(&shape, false).map_err(sharded)?;
            self.resize_index("", shape).await?;
        }
        Ok(())
    }

    /// §7.2: v2 array/group documents get missing parent group documents.
    async fn ensure_parent_groups(&mut self, key: &str) -> Result<()> {
        if self.m.version != Version::V2 {
            return Ok(());
        }
        let Some(apath) = array_path_of_metadata_key(key) else {
            return Ok(());
        };
        let v2 = key == ".zarray" || key.ends_with("/.zarray");
        let (doc_name, doc) = if v2 {
            (".zgroup", meta::V2_GROUP)
        } else {
            ("zarr.json", meta::V3_GROUP)
        };
        let path = normalize_path(apath);
        let mut parents = vec![String::new()];
        if !path.is_empty() {
            let parts: Vec<&str> = path.split('/').collect();
            parents.extend((1..parts.len()).map(|i| parts[..i].join("/")));
        }
        for p in parents {
            let k = if p.is_empty() {
                doc_name.to_string()
            } else {
                format!("{p}/{doc_name}")
            };
            if self.m.metadata.contains_key(&k) {
                continue;
            }
            let cid = self.save(Bytes::from_static(doc), RAW).await?;
            self.m.metadata.insert(k.clone(), cid);
            self.meta_cache.insert(k, Bytes::from_static(doc));
            self.dirty_root = true;
        }
        Ok(())
    }

    /// §7.3: a grouped-only store's root `zarr.json` loses `consolidated_metadata`.
    fn strip_root_consolidated(&self, key: &str, bytes: Bytes) -> Bytes {
        if key != "zarr.json" || !self.m.grouped_only() {
            return bytes;
        }
        meta::strip_consolidated(&bytes)
            .map(Bytes::from)
            .unwrap_or(bytes)
    }

    /// Classifies a key for a write: v2 parse errors become `Ok(None)` (the write is dropped).
    pub(crate) fn classify_for_write(
        &self,
        key: &str,
    ) -> Result<std::result::Result<KeyKind, ShardedError>> {
        match self.m.classify(key) {
            Ok(k) => Ok(Ok(k)),
            Err(e @ (ShardedError::Invalid(_) | ShardedError::Index(_)))
                if self.m.version == Version::V2 =>
            {
                Ok(Err(e))
            }
            Err(e) => Err(sharded(e)),
        }
    }

    // ---- the store API -----------------------------------------------------------------

    /// Stores `value` under `key` (py-hamt's `set`).
    pub async fn set(&mut self, key: &str, value: impl Into<Bytes>) -> Result<SetOutcome> {
        let bytes = self.strip_root_consolidated(key, value.into());
        self.check_group_rule(key, &bytes)?;
        self.register_array(key, &bytes).await?;
        self.ensure_parent_groups(key).await?;
        let kind = match self.classify_for_write(key)? {
            Ok(k) => k,
            Err(e) => return Ok(SetOutcome::Ignored(e)),
        };
        let wrap = |e: Error| {
            let inner = match &e {
                Error::Sharded(ShardedError::NoIndex(p)) => {
                    format!("\"No array index registered for chunk path '{p}'.\"")
                }
                other => other.to_string(),
            };
            sharded(ShardedError::State(format!(
                "Failed to save data for key {key}: {inner}"
            )))
        };
        let cid = self.save(bytes.clone(), RAW).await.map_err(wrap)?;
        let is_meta = kind == KeyKind::Metadata;
        self.put_pointer(key, kind, cid).await.map_err(wrap)?;
        if is_meta {
            self.meta_cache.insert(key.to_string(), bytes);
        }
        Ok(SetOutcome::Stored)
    }

    /// Points `key` at an existing block (py-hamt's `set_pointer`): metadata documents are
    /// read to register arrays and parent groups; no data is copied.
    pub async fn set_pointer(&mut self, key: &str, cid: Cid) -> Result<SetOutcome> {
        let kind = match self.classify_for_write(key)? {
            Ok(k) => k,
            Err(e) => return Ok(SetOutcome::Ignored(e)),
        };
        let mut cid = cid;
        if kind == KeyKind::Metadata {
            let v2 = self.m.version == Version::V2;
            let registers = array_path_of_metadata_key(key).is_some();
            if v2 || registers {
                // One read of the document serves both the stripping and the registration.
                let mut raw = self.load(&cid, ByteRange::Full).await?;
                if v2 {
                    let stripped = self.strip_root_consolidated(key, raw.clone());
                    if stripped != raw {
                        cid = self.save(stripped.clone(), RAW).await?;
                        raw = stripped;
                    }
                }
                if registers {
                    self.register_array(key, &raw).await?;
                }
            }
            self.ensure_parent_groups(key).await?;
        }
        self.put_pointer(key, kind, cid).await?;
        Ok(SetOutcome::Stored)
    }

    /// Puts a classified key's pointer in place (py-hamt's `_set_pointer_cid`).
    async fn put_pointer(&mut self, key: &str, kind: KeyKind, cid: Cid) -> Result<()> {
        let (path, coords) = match kind {
            KeyKind::Metadata => {
                self.m.metadata.insert(key.to_string(), cid);
                self.meta_cache.remove(key);
                self.dirty_root = true;
                return Ok(());
            }
            KeyKind::Chunk { path, coords } => (path, coords),
        };
        let index = self.index(&path).map_err(sharded)?;
        let coords = index.validate(&coords).map_err(sharded)?;
        let (idx, offset) = index.shard_of(index.linear(&coords));
        self.update_entry(&path, idx, offset, Some(cid)).await?;
        if self.m.metadata.shift_remove(key).is_some() {
            self.meta_cache.remove(key);
            self.dirty_root = true;
        }
        if self.m.version == Version::V1
            && !self.m.primary_inferred
            && !self.m.v1_has_recorded_key()
        {
            self.m.record_v1_primary(&path);
            self.dirty_root = true;
        }
        Ok(())
    }

    /// Removes `key` (py-hamt's `delete`; a chunk's entry becomes null, its shard stays).
    pub async fn delete(&mut self, key: &str) -> Result<()> {
        let kind = match self.classify_for_write(key)? {
            Ok(k) => k,
            Err(_) => return Ok(()),
        };
        let chunk = match kind {
            KeyKind::Chunk { path, coords } => self
                .index(&path)
                .ok()
                .map(|i| (path.clone(), i.validate(&coords))),
            KeyKind::Metadata => None,
        };
        if let Some((path, coords)) = chunk {
            let index = self.index(&path).map_err(sharded)?;
            let coords = coords.map_err(sharded)?;
            let (idx, offset) = index.shard_of(index.linear(&coords));
            self.update_entry(&path, idx, offset, None).await?;
        }
        if self.m.metadata.shift_remove(key).is_some() {
            self.meta_cache.remove(key);
            self.dirty_root = true;
        }
        Ok(())
    }

    /// The CID stored for `key` (metadata or chunk), reading as py-hamt's writable `get` does.
    pub async fn get_pointer(&self, key: &str) -> Result<Option<Cid>> {
        let k = self.m.effective_read_key(key);
        let kind = match self.m.classify(&k) {
            Ok(kind) => kind,
            Err(e @ (ShardedError::Invalid(_) | ShardedError::Index(_))) => {
                return if self.m.version == Version::V2 {
                    Ok(None)
                } else {
                    Err(sharded(e))
                }
            }
            Err(e) => return Err(sharded(e)),
        };
        let (path, coords) = match kind {
            KeyKind::Metadata => return Ok(self.m.metadata.get(&k).copied()),
            KeyKind::Chunk { path, coords } => (path, coords),
        };
        let Ok(index) = self.index(&path) else {
            return Ok(self.m.metadata.get(&k).copied());
        };
        let coords = index.validate(&coords).map_err(sharded)?;
        let (idx, offset) = index.shard_of(index.linear(&coords));
        match self.entry(&path, idx, offset).await? {
            Some(c) => Ok(Some(c)),
            None => Ok(self.m.metadata.get(&k).copied()),
        }
    }

    /// The value of `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_range(key, ByteRange::Full).await
    }

    /// Part of the value of `key`.
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        if range == ByteRange::Full {
            if let Some(b) = self.meta_cache.get(&self.m.effective_read_key(key)) {
                return Ok(Some(b.clone()));
            }
        }
        match self.get_pointer(key).await? {
            None => Ok(None),
            Some(cid) => self.load(&cid, range).await.map(Some),
        }
    }

    /// Writes every dirty shard, then the root if it changed, and returns the root CID.
    pub async fn flush(&mut self) -> Result<Cid> {
        let mut dirty: Vec<(String, u64)> = self
            .shards
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        dirty.sort();
        for key in dirty {
            let Some(s) = self.shards.get(&key) else {
                continue;
            };
            let bytes = Bytes::from(shard::encode(&s.entries));
            let cid = self.save(bytes, DAG_CBOR).await?;
            let vpath = self.cache_path(&key.0).to_string();
            if let Some(index) = self.m.arrays.get_mut(&vpath) {
                if let Some(slot) = index.shard_cids.get_mut(key.1 as usize) {
                    if *slot != Some(cid) {
                        *slot = Some(cid);
                        self.dirty_root = true;
                    }
                }
            }
            if let Some(s) = self.shards.get_mut(&key) {
                s.dirty = false;
            }
        }
        if self.dirty_root || self.root.is_none() {
            let bytes = self.m.encode().map_err(sharded)?;
            let cid = self.save(Bytes::from(bytes), DAG_CBOR).await?;
            self.root = Some(cid);
            self.dirty_root = false;
        }
        self.write_pending().await?;
        self.store.sync().await?;
        self.root
            .ok_or_else(|| sharded(ShardedError::State("flush produced no root".into())))
    }
}

/// The writer's unflushed blocks in front of its store (for UnixFS values read back before a
/// flush).
struct PendingOverlay<'a> {
    w: &'a ShardedWriter,
}

#[async_trait::async_trait]
impl crate::store::BlockStore for PendingOverlay<'_> {
    async fn get(&self, cid: &Cid) -> std::result::Result<Bytes, crate::StoreError> {
        match self.w.pending_index.get(cid) {
            Some(b) => Ok(b.clone()),
            None => self.w.store.get(cid).await,
        }
    }
    async fn has(&self, cid: &Cid) -> std::result::Result<bool, crate::StoreError> {
        Ok(self.w.pending_index.contains_key(cid) || self.w.store.has(cid).await?)
    }
    async fn put_many(&self, _blocks: Vec<Block>) -> std::result::Result<(), crate::StoreError> {
        Err(crate::StoreError::ReadOnly)
    }
}

#[async_trait::async_trait]
impl super::listing::ShardSource for ShardedWriter {
    fn manifest(&self) -> &Manifest {
        &self.m
    }
    async fn shard(&self, array: &str, s: u64) -> Result<Option<std::sync::Arc<ShardEntries>>> {
        if let Some(c) = self.shards.get(&(array.to_string(), s)) {
            return Ok(Some(std::sync::Arc::new(c.entries.clone())));
        }
        let Some(index) = self.m.arrays.get(array) else {
            return Ok(None);
        };
        match index.shard_cids.get(s as usize).copied().flatten() {
            None => Ok(None),
            Some(cid) => {
                super::check_structure_codec(&cid, "shard").map_err(sharded)?;
                let bytes = self.load(&cid, ByteRange::Full).await?;
                let e = shard::decode(&bytes, s, index.chunks_per_shard)
                    .map_err(|e| sharded(e.into()))?;
                Ok(Some(std::sync::Arc::new(e)))
            }
        }
    }
}

impl ShardedWriter {
    /// Every key in py-hamt's `list()` order, unflushed changes included.
    pub async fn list(&self) -> Result<Vec<String>> {
        Ok(super::listing::list_all(self)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Distinct next path components under `prefix` (a writable store lists every group).
    pub async fn list_dir(&self, prefix: &str) -> Result<Vec<String>> {
        super::listing::list_dir(self, prefix, false).await
    }
}
