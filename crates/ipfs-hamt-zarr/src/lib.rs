//! # ipfs-hamt-zarr
//!
//! A Zarr v3 store on a py-hamt compatible dataset, for the [`zarrs`](https://docs.rs/zarrs)
//! crate: [`DatasetZarrStore`] (also named [`HamtZarrStore`], its name before datasets had
//! more than one layout) implements `zarrs_storage`'s async readable, writable and listable
//! traits, and the sync ones through [`sync_store`] (zarrs' `AsyncToSyncStorageAdapter` on a
//! tokio runtime).
//!
//! It works on [`ipfs_hamt::dataset`]'s [`DatasetReader`] and [`DatasetWriter`], so it serves
//! any layout the dataset interface reads ([`DatasetZarrStore::open_dataset`] detects it from
//! the root); today that is the HAMT. It follows py-hamt's `ZarrHAMTStore`: Zarr keys are
//! dataset keys verbatim (`zarr.json`, `temperature/c/0/1/3`), values are the bytes Zarr produces, unframed, so a dataset written
//! by py-hamt reads here and the reverse, with the same root CID for the same bytes. Optional
//! encryption ([`HamtZarrStore::with_encryption`]) is py-hamt's
//! `SimpleEncryptedZarrHAMTStore` format (see [`ipfs_hamt::crypt`]): values are sealed,
//! **keys stay in clear**.
//!
//! Differences from py-hamt, all on the side of correctness or speed:
//! * byte ranges are served from the value: for large values stored as UnixFS files only the
//!   leaves a range needs are read; on encrypted stores the range applies to the decrypted
//!   value (py-hamt returns the whole value);
//! * a range past the end of the value is an error, as zarrs expects (py-hamt clamps);
//! * listing uses a key index built by one scan and kept up to date by writes, so repeated
//!   `list`/`list_dir`/`size_prefix` calls do not walk the tree again;
//! * `zarr.json` values are cached after a full read, as py-hamt's `metadata_read_cache`.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use ipfs_hamt::{store::MemoryStore, HamtConfig};
//! use ipfs_hamt_zarr::HamtZarrStore;
//! use zarrs_storage::{AsyncReadableStorageTraits, AsyncWritableStorageTraits, StoreKey};
//! let blocks = Arc::new(MemoryStore::new());
//! let store = HamtZarrStore::create(blocks.clone(), HamtConfig::default()).unwrap();
//! let key = StoreKey::new("zarr.json").unwrap();
//! store.set(&key, bytes::Bytes::from_static(b"{}")).await.unwrap();
//! let root = store.commit().await.unwrap();
//! let read = HamtZarrStore::open(blocks, root, HamtConfig::default()).unwrap();
//! assert_eq!(read.get(&key).await.unwrap().as_deref(), Some(&b"{}"[..]));
//! # });
//! ```

#![warn(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use ipfs_hamt::block::DAG_PB;
use ipfs_hamt::crypt::{ValueCipher, OVERHEAD};
use ipfs_hamt::dataset::{DatasetConfig, DatasetReader, DatasetWriter, LayoutOptions};
use ipfs_hamt::store::SharedStore;
use ipfs_hamt::value::read_value;
use ipfs_hamt::{unixfs, ByteRange as HamtRange, Cid, Error, HamtConfig, Reader};
use zarrs_storage::byte_range::{ByteRange, ByteRangeIterator, InvalidByteRangeError};
use zarrs_storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_storage::{
    async_store_set_partial_many, AsyncListableStorageTraits, AsyncMaybeBytesIterator,
    AsyncReadableStorageTraits, AsyncWritableStorageTraits, MaybeBytes, OffsetBytesIterator,
    StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
};

/// Values read concurrently when sizes are computed for `size_prefix`.
const SIZE_CONCURRENCY: usize = 16;

/// The dataset behind the store: a shared reader, or a writer behind a lock.
enum Mode {
    ReadOnly(DatasetReader),
    Writable(Box<tokio::sync::Mutex<DatasetWriter>>),
}

/// Every key, with its value's size once known.
type KeyIndex = BTreeMap<String, Option<u64>>;

/// Counters, for tests and tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZarrStoreStats {
    /// Full scans of the HAMT's keys made to build the key index.
    pub index_builds: u64,
    /// Reads of `zarr.json` values answered from the metadata cache.
    pub metadata_hits: u64,
    /// Byte ranges served (other than whole values).
    pub partial_reads: u64,
    /// Of those, suffix ranges (`ByteRange::Suffix`, as the sharding codec reads its index).
    pub suffix_reads: u64,
}

#[derive(Default)]
struct Counters {
    index_builds: AtomicU64,
    metadata_hits: AtomicU64,
    partial_reads: AtomicU64,
    suffix_reads: AtomicU64,
}

/// A Zarr v3 store on a dataset over any [`ipfs_hamt::BlockStore`]. See the crate docs.
///
/// Writable stores buffer changes in a [`DatasetWriter`]; [`DatasetZarrStore::commit`] writes
/// them and returns the root CID to reopen the dataset from.
pub struct DatasetZarrStore {
    store: SharedStore,
    mode: Mode,
    cipher: Option<ValueCipher>,
    metadata: Mutex<HashMap<String, Bytes>>,
    index: Mutex<Option<KeyIndex>>,
    /// Held while the index is built, so concurrent listings scan the tree once.
    index_build: tokio::sync::Mutex<()>,
    counters: Counters,
}

/// The store's name before datasets had more than one layout; the same type.
pub type HamtZarrStore = DatasetZarrStore;

impl std::fmt::Debug for DatasetZarrStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HamtZarrStore")
            .field("read_only", &self.is_read_only())
            .field("encrypted", &self.cipher.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Any error of the HAMT as a storage error.
fn storage_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Other(e.to_string())
}

/// True for keys whose full values are kept in the metadata cache (as py-hamt: the key ends
/// with `zarr.json`).
fn is_metadata(key: &str) -> bool {
    key.ends_with("zarr.json")
}

/// The `[start, end)` of `range` in a value of `size` bytes, or zarrs' error if it does not fit.
fn window(range: ByteRange, size: u64) -> Result<(u64, u64), StorageError> {
    let bad = || StorageError::InvalidByteRangeError(InvalidByteRangeError::new(range, size));
    match range {
        ByteRange::FromStart(offset, None) if offset <= size => Ok((offset, size)),
        ByteRange::FromStart(offset, Some(len)) => match offset.checked_add(len) {
            Some(end) if end <= size => Ok((offset, end)),
            _ => Err(bad()),
        },
        ByteRange::Suffix(len) if len <= size => Ok((size - len, size)),
        _ => Err(bad()),
    }
}

/// A value located for reading.
enum Located {
    /// The whole (decrypted) value in memory.
    Bytes(Bytes),
    /// An unencrypted UnixFS file: ranges read only the leaves they need.
    File { cid: Cid, size: u64 },
}

impl DatasetZarrStore {
    fn with_mode(store: SharedStore, mode: Mode) -> Self {
        HamtZarrStore {
            store,
            mode,
            cipher: None,
            metadata: Mutex::new(HashMap::new()),
            index: Mutex::new(None),
            index_build: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        }
    }

    /// A read-only store on the HAMT at `root` (nothing is read yet; see
    /// [`DatasetZarrStore::open_dataset`] for a root of any layout).
    pub fn open(store: SharedStore, root: Cid, config: HamtConfig) -> Result<Self, Error> {
        let config = DatasetConfig::hamt(config);
        let reader = DatasetReader::from_hamt(
            Reader::new(store.clone(), root, config.hamt.clone())?,
            &config,
        );
        Ok(Self::from_reader(reader))
    }

    /// A read-only store on the dataset at `root`, whatever its layout (read from the root
    /// block; a layout this build cannot read is [`Error::UnsupportedLayout`]).
    pub async fn open_dataset(
        store: SharedStore,
        root: Cid,
        config: &DatasetConfig,
    ) -> Result<Self, Error> {
        Ok(Self::from_reader(
            DatasetReader::open(store, root, config).await?,
        ))
    }

    /// A read-only store on an open dataset.
    pub fn from_reader(reader: DatasetReader) -> Self {
        Self::with_mode(reader.store().clone(), Mode::ReadOnly(reader))
    }

    /// A writable store on an open dataset writer.
    pub fn from_writer(writer: DatasetWriter) -> Self {
        Self::with_mode(
            writer.store().clone(),
            Mode::Writable(Box::new(tokio::sync::Mutex::new(writer))),
        )
    }

    /// A writable store on the HAMT at `root` (see [`DatasetZarrStore::open_dataset_writable`]
    /// for a root of any layout).
    pub fn open_writable(store: SharedStore, root: Cid, config: HamtConfig) -> Result<Self, Error> {
        let writer = DatasetWriter::from_hamt(ipfs_hamt::Writer::open(store, root, config)?);
        Ok(Self::from_writer(writer))
    }

    /// A writable store on the dataset at `root`, whatever its layout.
    pub async fn open_dataset_writable(
        store: SharedStore,
        root: Cid,
        config: &DatasetConfig,
    ) -> Result<Self, Error> {
        Ok(Self::from_writer(
            DatasetWriter::open(store, root, config).await?,
        ))
    }

    /// A writable store on an empty HAMT dataset.
    pub fn create(store: SharedStore, config: HamtConfig) -> Result<Self, Error> {
        let writer = DatasetWriter::create(store.clone(), LayoutOptions::Hamt(config))?;
        let s = Self::with_mode(
            store,
            Mode::Writable(Box::new(tokio::sync::Mutex::new(writer))),
        );
        // An empty tree: the index is known without a scan.
        if let Ok(mut idx) = s.index.lock() {
            *idx = Some(KeyIndex::new());
        }
        Ok(s)
    }

    /// Encrypts and decrypts every value with `cipher` (py-hamt's
    /// `SimpleEncryptedZarrHAMTStore`). Keys are not encrypted.
    pub fn with_encryption(mut self, cipher: ValueCipher) -> Self {
        self.cipher = Some(cipher);
        if let Ok(mut m) = self.metadata.lock() {
            m.clear();
        }
        if let Ok(mut idx) = self.index.lock() {
            if let Some(idx) = idx.as_mut() {
                idx.values_mut().for_each(|v| *v = None);
            }
        }
        self
    }

    /// True if the store cannot be written.
    pub fn is_read_only(&self) -> bool {
        matches!(self.mode, Mode::ReadOnly(_))
    }

    /// True if values are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Writes pending changes and returns the root CID (a read-only store returns its root).
    pub async fn commit(&self) -> Result<Cid, Error> {
        match &self.mode {
            Mode::ReadOnly(r) => Ok(r.root()),
            Mode::Writable(w) => w.lock().await.commit().await,
        }
    }

    /// Counters: index scans, metadata cache hits, partial reads.
    pub fn stats(&self) -> ZarrStoreStats {
        let c = &self.counters;
        ZarrStoreStats {
            index_builds: c.index_builds.load(Ordering::Relaxed),
            metadata_hits: c.metadata_hits.load(Ordering::Relaxed),
            partial_reads: c.partial_reads.load(Ordering::Relaxed),
            suffix_reads: c.suffix_reads.load(Ordering::Relaxed),
        }
    }

    /// Empties the metadata cache.
    pub fn clear_metadata_cache(&self) {
        if let Ok(mut m) = self.metadata.lock() {
            m.clear();
        }
    }

    fn poisoned() -> StorageError {
        StorageError::Other("ipfs-hamt-zarr: lock poisoned".into())
    }

    /// The value CID of `key`. Writable stores first flush buffered values, so the blocks
    /// can be read from the store.
    async fn pointer(&self, key: &str) -> Result<Option<Cid>, StorageError> {
        match &self.mode {
            Mode::ReadOnly(r) => r.get_pointer(key).await.map_err(storage_err),
            Mode::Writable(w) => {
                let mut w = w.lock().await;
                w.flush_values().await.map_err(storage_err)?;
                w.get_pointer(key).await.map_err(storage_err)
            }
        }
    }

    fn cached_metadata(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        if !is_metadata(key) {
            return Ok(None);
        }
        let hit = self
            .metadata
            .lock()
            .map_err(|_| Self::poisoned())?
            .get(key)
            .cloned();
        if hit.is_some() {
            self.counters.metadata_hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(hit)
    }

    /// Finds `key`'s value: in memory (decrypted), or as a UnixFS file to read by ranges.
    async fn locate(&self, key: &str) -> Result<Option<Located>, StorageError> {
        if let Some(b) = self.cached_metadata(key)? {
            return Ok(Some(Located::Bytes(b)));
        }
        let Some(cid) = self.pointer(key).await? else {
            return Ok(None);
        };
        if self.cipher.is_none() && cid.codec() == DAG_PB {
            let size = unixfs::file_size(&*self.store, &cid)
                .await
                .map_err(storage_err)?;
            return Ok(Some(Located::File { cid, size }));
        }
        let stored = read_value(&*self.store, &cid, HamtRange::Full)
            .await
            .map_err(storage_err)?;
        let plain = match &self.cipher {
            Some(c) => c
                .open(&stored)
                .map_err(|e| StorageError::Other(format!("{key}: {e}")))?,
            None => stored,
        };
        if is_metadata(key) {
            self.metadata
                .lock()
                .map_err(|_| Self::poisoned())?
                .insert(key.to_owned(), plain.clone());
        }
        Ok(Some(Located::Bytes(plain)))
    }

    /// One range of a located value.
    async fn read_range(&self, value: &Located, range: ByteRange) -> Result<Bytes, StorageError> {
        if range != ByteRange::FromStart(0, None) {
            self.counters.partial_reads.fetch_add(1, Ordering::Relaxed);
            if matches!(range, ByteRange::Suffix(_)) {
                self.counters.suffix_reads.fetch_add(1, Ordering::Relaxed);
            }
        }
        match value {
            Located::Bytes(b) => {
                let (s, e) = window(range, b.len() as u64)?;
                // Both ends are within the value, whose length is a usize.
                Ok(b.slice(s as usize..e as usize))
            }
            Located::File { cid, size } => {
                let (s, e) = window(range, *size)?;
                read_value(
                    &*self.store,
                    cid,
                    HamtRange::Slice {
                        offset: s,
                        length: e - s,
                    },
                )
                .await
                .map_err(storage_err)
            }
        }
    }

    /// Size of the (decrypted) value at `cid`.
    async fn value_size(&self, key: &str, cid: &Cid) -> Result<u64, StorageError> {
        let stored = if cid.codec() == DAG_PB {
            unixfs::file_size(&*self.store, cid)
                .await
                .map_err(storage_err)?
        } else {
            self.store.get(cid).await.map_err(storage_err)?.len() as u64
        };
        if self.cipher.is_some() {
            stored.checked_sub(OVERHEAD as u64).ok_or_else(|| {
                StorageError::Other(format!("{key}: encrypted value too short ({stored} bytes)"))
            })
        } else {
            Ok(stored)
        }
    }

    /// Size of `key`'s value, without reading it when the index or cache knows it.
    async fn size_of(&self, key: &str) -> Result<Option<u64>, StorageError> {
        if let Some(b) = self.cached_metadata(key)? {
            return Ok(Some(b.len() as u64));
        }
        let Some(cid) = self.pointer(key).await? else {
            return Ok(None);
        };
        self.value_size(key, &cid).await.map(Some)
    }

    /// Builds the key index if it is not built yet (one scan of the tree).
    async fn ensure_index(&self) -> Result<(), StorageError> {
        if self.index.lock().map_err(|_| Self::poisoned())?.is_some() {
            return Ok(());
        }
        // One builder at a time; writers are held off while a writable tree is scanned, so no
        // write can slip between the scan and the index.
        let _building = self.index_build.lock().await;
        let keys: Vec<String> = match &self.mode {
            Mode::ReadOnly(r) => {
                if self.index.lock().map_err(|_| Self::poisoned())?.is_some() {
                    return Ok(());
                }
                r.keys().try_collect().await.map_err(storage_err)?
            }
            Mode::Writable(w) => {
                let w = w.lock().await;
                if self.index.lock().map_err(|_| Self::poisoned())?.is_some() {
                    return Ok(());
                }
                let keys = w.keys().await.map_err(storage_err)?;
                self.set_index(keys)?;
                return Ok(());
            }
        };
        self.set_index(keys)
    }

    fn set_index(&self, keys: Vec<String>) -> Result<(), StorageError> {
        let mut idx = self.index.lock().map_err(|_| Self::poisoned())?;
        if idx.is_none() {
            *idx = Some(keys.into_iter().map(|k| (k, None)).collect());
            self.counters.index_builds.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs `f` on the index entries whose key starts with `prefix` (the index is built first).
    async fn with_prefix<T>(
        &self,
        prefix: &str,
        f: impl FnOnce(&mut dyn Iterator<Item = (&String, &Option<u64>)>) -> T,
    ) -> Result<T, StorageError> {
        self.ensure_index().await?;
        let idx = self.index.lock().map_err(|_| Self::poisoned())?;
        let empty = KeyIndex::new();
        let idx = idx.as_ref().unwrap_or(&empty);
        let mut it = idx
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix));
        Ok(f(&mut it))
    }

    fn writer(&self) -> Result<&tokio::sync::Mutex<DatasetWriter>, StorageError> {
        match &self.mode {
            Mode::ReadOnly(_) => Err(StorageError::ReadOnly),
            Mode::Writable(w) => Ok(w),
        }
    }

    fn index_update(&self, key: &str, size: Option<Option<u64>>) -> Result<(), StorageError> {
        let mut idx = self.index.lock().map_err(|_| Self::poisoned())?;
        if let Some(idx) = idx.as_mut() {
            match size {
                Some(s) => {
                    idx.insert(key.to_owned(), s);
                }
                None => {
                    idx.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Removes `key` with the writer locked; absent keys are fine.
    async fn remove_locked(&self, w: &mut DatasetWriter, key: &str) -> Result<(), StorageError> {
        match w.remove(key).await {
            Ok(_) | Err(Error::KeyNotFound(_)) => {}
            Err(e) => return Err(storage_err(e)),
        }
        self.index_update(key, None)?;
        if is_metadata(key) {
            self.metadata
                .lock()
                .map_err(|_| Self::poisoned())?
                .remove(key);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl AsyncReadableStorageTraits for DatasetZarrStore {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        match self.locate(key.as_str()).await? {
            None => Ok(None),
            Some(Located::Bytes(b)) => Ok(Some(b)),
            Some(v @ Located::File { .. }) => Ok(Some(
                self.read_range(&v, ByteRange::FromStart(0, None)).await?,
            )),
        }
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        let Some(value) = self.locate(key.as_str()).await? else {
            return Ok(None);
        };
        // Ranges of a UnixFS value fetch their leaves concurrently.
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        let value = &value;
        let out =
            futures::future::try_join_all(ranges.into_iter().map(|r| self.read_range(value, r)))
                .await?;
        Ok(Some(futures::stream::iter(out.into_iter().map(Ok)).boxed()))
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        let known = self
            .index
            .lock()
            .map_err(|_| Self::poisoned())?
            .as_ref()
            .map(|idx| idx.get(key.as_str()).copied());
        match known {
            // Indexed and absent.
            Some(None) => Ok(None),
            Some(Some(Some(size))) => Ok(Some(size)),
            _ => {
                let size = self.size_of(key.as_str()).await?;
                if let Some(s) = size {
                    let mut idx = self.index.lock().map_err(|_| Self::poisoned())?;
                    if let Some(e) = idx.as_mut().and_then(|i| i.get_mut(key.as_str())) {
                        *e = Some(s);
                    }
                }
                Ok(size)
            }
        }
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

#[async_trait::async_trait]
impl AsyncListableStorageTraits for DatasetZarrStore {
    async fn list(&self) -> Result<StoreKeys, StorageError> {
        self.list_prefix(&StorePrefix::root()).await
    }

    async fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        // Keys that are not valid Zarr keys (e.g. written by other tools) are not listed.
        self.with_prefix(prefix.as_str(), |it| {
            it.filter_map(|(k, _)| StoreKey::new(k.as_str()).ok())
                .collect()
        })
        .await
    }

    async fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        let p = prefix.as_str();
        let (keys, prefixes) = self
            .with_prefix(p, |it| {
                let mut keys = Vec::new();
                let mut prefixes = BTreeSet::new();
                for (k, _) in it {
                    let rest = &k[p.len()..];
                    match rest.split_once('/') {
                        Some((first, _)) => {
                            prefixes.insert(format!("{p}{first}/"));
                        }
                        None => keys.push(k.clone()),
                    }
                }
                (keys, prefixes)
            })
            .await?;
        let keys = keys.into_iter().filter_map(|k| StoreKey::new(k).ok());
        let prefixes = prefixes
            .into_iter()
            .filter_map(|p| StorePrefix::new(p).ok());
        Ok(StoreKeysPrefixes::new(keys.collect(), prefixes.collect()))
    }

    async fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        let (mut total, unknown) = self
            .with_prefix(prefix.as_str(), |it| {
                let mut total = 0u64;
                let mut unknown = Vec::new();
                for (k, size) in it {
                    match size {
                        Some(s) => total += s,
                        None => unknown.push(k.clone()),
                    }
                }
                (total, unknown)
            })
            .await?;
        let sizes: Vec<(String, Option<u64>)> = futures::stream::iter(unknown)
            .map(|k| async move {
                let s = self.size_of(&k).await?;
                Ok::<_, StorageError>((k, s))
            })
            .buffer_unordered(SIZE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut idx = self.index.lock().map_err(|_| Self::poisoned())?;
        for (k, s) in sizes {
            total += s.unwrap_or(0);
            if let (Some(s), Some(e)) = (s, idx.as_mut().and_then(|i| i.get_mut(&k))) {
                *e = Some(s);
            }
        }
        Ok(total)
    }
}

#[async_trait::async_trait]
impl AsyncWritableStorageTraits for DatasetZarrStore {
    async fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        let mut w = self.writer()?.lock().await;
        let k = key.as_str();
        let stored = match &self.cipher {
            Some(c) => c.seal(&value).map_err(storage_err)?,
            None => value.clone(),
        };
        w.insert(k, stored).await.map_err(storage_err)?;
        self.index_update(k, Some(Some(value.len() as u64)))?;
        if is_metadata(k) {
            self.metadata
                .lock()
                .map_err(|_| Self::poisoned())?
                .insert(k.to_owned(), value);
        }
        Ok(())
    }

    async fn set_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator<'a>,
    ) -> Result<(), StorageError> {
        self.writer()?;
        async_store_set_partial_many(self, key, offset_values).await
    }

    async fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        let mut w = self.writer()?.lock().await;
        self.remove_locked(&mut w, key.as_str()).await
    }

    async fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.writer()?;
        let keys: Vec<String> = self
            .with_prefix(prefix.as_str(), |it| it.map(|(k, _)| k.clone()).collect())
            .await?;
        let mut w = self.writer()?.lock().await;
        for k in keys {
            self.remove_locked(&mut w, &k).await?;
        }
        Ok(())
    }

    fn supports_set_partial(&self) -> bool {
        // A HAMT value is replaced whole (py-hamt: supports_partial_writes = False);
        // set_partial works by read-modify-write.
        false
    }
}

/// Runs futures on a tokio runtime for [`AsyncToSyncStorageAdapter`]. Its `block_on` must not
/// be called from inside an async context (zarrs' sync API on a plain thread is fine).
#[derive(Debug, Clone)]
pub struct TokioBlockOn(pub tokio::runtime::Handle);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

/// The store with zarrs' sync traits (`ReadableStorageTraits`, `WritableStorageTraits`,
/// `ListableStorageTraits`), for zarrs' sync `Array` API.
pub type SyncHamtZarrStore = AsyncToSyncStorageAdapter<DatasetZarrStore, TokioBlockOn>;

/// Wraps `store` for zarrs' sync API, running its futures on `handle` (a multi-thread runtime;
/// call the sync API from outside async code, e.g. in `spawn_blocking`).
pub fn sync_store(
    store: Arc<DatasetZarrStore>,
    handle: tokio::runtime::Handle,
) -> SyncHamtZarrStore {
    AsyncToSyncStorageAdapter::new(store, TokioBlockOn(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_zarrs() {
        assert_eq!(window(ByteRange::FromStart(1, Some(2)), 4).unwrap(), (1, 3));
        assert_eq!(window(ByteRange::FromStart(4, None), 4).unwrap(), (4, 4));
        assert_eq!(window(ByteRange::Suffix(4), 4).unwrap(), (0, 4));
        assert!(window(ByteRange::FromStart(1, Some(10)), 4).is_err());
        assert!(window(ByteRange::FromStart(5, None), 4).is_err());
        assert!(window(ByteRange::Suffix(5), 4).is_err());
        assert!(window(ByteRange::FromStart(u64::MAX, Some(2)), 4).is_err());
    }
}
