//! An embedded, crash-safe on-disk block store: block bytes appended once to segment files,
//! located through an index (multihash -> segment, offset, length) of sorted run files.
//!
//! A store is a directory:
//!
//! ```text
//! <store>/FORMAT             "ipfs-hamt block store v2"
//! <store>/lock               flock held by the process that has the store open (pid, command)
//! <store>/segments/N.seg     records (header, multihash, data), appended; ~1 GiB each
//! <store>/runs/N.run         sorted runs: multihash -> location (see `runs`)
//! <store>/index/             fjall keyspace: pins; counters; watermark; the list of runs
//! <store>/index.complete     written once the new index exists (an unfinished one is redone)
//! ```
//!
//! Blocks are keyed by their multihash bytes (code, length and digest), like Kubo's blockstore:
//! the same bytes under another codec are the same block. [`BlockStore::put_many`] appends
//! records and keeps their index entries in memory; every 512 Ki entries or 512 MiB, and at
//! every [`BlockStore::sync`] (which `Writer::commit` calls once the root is written), the
//! segments are fsynced *before* the index batch that refers to them is written, so an index
//! entry never points at bytes a crash could lose. On open, records past the index's watermark
//! are checked (each carries an xxh3 checksum) and indexed, and a torn tail is cut off. Every
//! [`BlockStore::get`] verifies the bytes it read against the requested CID, so a damaged file
//! yields [`StoreError::Verify`], never wrong data.
//!
//! Pins ([`DiskStore::pin_add`], [`DiskStore::pin_update`]) name the roots to keep;
//! [`DiskStore::gc`] removes every block no pinned root reaches and gives the space back.
//! A store file of the previous format (one redb file) is migrated on open (see `legacy`).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use ipfs_hamt::block::{Block, HashAlg, RAW};
//! use ipfs_hamt::store::{BlockStore, DiskStore};
//! let dir = tempfile::tempdir().unwrap();
//! let store = DiskStore::open(dir.path().join("store")).unwrap();
//! let b = Block::new(RAW, HashAlg::Blake3, b"hi".to_vec());
//! store.put_many(vec![b.clone()]).await.unwrap();
//! store.sync().await.unwrap(); // durable from here on
//! assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
//! assert_eq!(store.stats().await.unwrap().blocks, 1);
//! # });
//! ```

mod engine;
mod error;
mod gc;
mod index;
mod layout;
mod legacy;
mod lock;
mod overlay;
mod runs;
mod segment;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gc;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;

use super::{BlockStore, StoreError};
use crate::block::Block;
use engine::Engine;

pub use gc::GcReport;
pub use layout::{default_store_path, STORE_ENV};

/// Counts of what a [`DiskStore`] holds, kept in the store itself (O(1), crash-consistent).
///
/// ```
/// use ipfs_hamt::store::disk::DiskStats;
/// let s = DiskStats::default();
/// assert_eq!((s.blocks, s.bytes), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    /// Number of distinct blocks (by multihash).
    pub blocks: u64,
    /// Total bytes of their data.
    pub bytes: u64,
}

/// The result of [`DiskStore::verify_all`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskCheck {
    /// Blocks read.
    pub blocks: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Blocks whose bytes do not match their multihash (named as CIDv1 `raw`; the store keys
    /// blocks by multihash only), or whose index entry points at no readable record.
    pub corrupt: Vec<Cid>,
    /// Blocks under a hash function that cannot be checked here.
    pub unverifiable: Vec<Cid>,
    /// Entries whose key is not a multihash.
    pub bad_keys: u64,
    /// The counters the store keeps; they should equal `blocks` and `bytes`.
    pub counters: DiskStats,
}

impl DiskCheck {
    /// True if every block verified and the counters match.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty()
            && self.unverifiable.is_empty()
            && self.bad_keys == 0
            && self.counters.blocks == self.blocks
            && self.counters.bytes == self.bytes
    }
}

/// A [`BlockStore`] in a directory of segment files and an index, safe against crashes and
/// guarded against concurrent processes (a second open fails at once with a clear error naming
/// the holder). Cheap to clone (shared handle).
///
/// ```
/// use ipfs_hamt::store::DiskStore;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("nested/dir/store"); // parents are created
/// let store = DiskStore::open(&path).unwrap();
/// assert_eq!(store.path(), path.as_path());
/// ```
#[derive(Clone)]
pub struct DiskStore {
    engine: Arc<Engine>,
    /// `put_many` holds it shared, `gc` exclusively: a collection never runs in the middle of
    /// a write in this process.
    gc_lock: Arc<tokio::sync::RwLock<()>>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.engine.path)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`DiskStore`].
///
/// ```
/// use ipfs_hamt::store::disk::DiskOptions;
/// assert_eq!(DiskOptions::default().index_cache_bytes, DiskOptions::READ_CACHE_BYTES);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    /// Bytes of cache for the fjall keyspace (pins, counters). The block map's runs are read
    /// through the OS page cache and keep only their fences and bloom filters in memory
    /// (~2.3 bytes per block), so this no longer sizes the block lookups' cache; it is an
    /// upper bound, filled only as the keyspace is read.
    pub index_cache_bytes: u64,
}

impl DiskOptions {
    /// The default: for serving reads.
    pub const READ_CACHE_BYTES: u64 = 256 << 20;
    /// For imports and other bulk writes.
    pub const WRITE_CACHE_BYTES: u64 = 32 << 20;
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            index_cache_bytes: DiskOptions::READ_CACHE_BYTES,
        }
    }
}

impl DiskStore {
    /// Opens the store at `path` (a directory), creating it (and its parents) if absent.
    ///
    /// If `path` is a store file of the previous format (one redb file), it is migrated first:
    /// the new store is built beside it, then the old file is renamed to `<path>.v1.redb` and
    /// the new store takes its place (a note goes to stderr). Fails immediately with
    /// [`StoreError::Backend`] naming the path (and the holder's pid and command) if another
    /// process, or another handle in this process, holds the store, and with
    /// [`StoreError::Corrupt`] if `path` is not an ipfs-hamt store. This call blocks (file
    /// I/O, crash recovery); from async code call it inside [`tokio::task::spawn_blocking`].
    ///
    /// ```
    /// use ipfs_hamt::store::{DiskStore, StoreError};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("store");
    /// let store = DiskStore::open(&path).unwrap();
    /// // A second open while the first is alive is refused.
    /// assert!(matches!(DiskStore::open(&path), Err(StoreError::Backend(_))));
    /// drop(store);
    /// assert!(DiskStore::open(&path).is_ok());
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<DiskStore, StoreError> {
        DiskStore::open_with(path, DiskOptions::default())
    }

    /// [`DiskStore::open`] with settings.
    ///
    /// ```
    /// use ipfs_hamt::store::disk::{DiskOptions, DiskStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let options = DiskOptions { index_cache_bytes: DiskOptions::WRITE_CACHE_BYTES };
    /// let store = DiskStore::open_with(dir.path().join("store"), options).unwrap();
    /// # drop(store);
    /// ```
    pub fn open_with(
        path: impl AsRef<Path>,
        options: DiskOptions,
    ) -> Result<DiskStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock = layout::prepare(&path)?;
        let engine = Engine::open(&path, lock, options.index_cache_bytes)?;
        Ok(DiskStore {
            engine: Arc::new(engine),
            gc_lock: Arc::new(tokio::sync::RwLock::new(())),
        })
    }

    /// The directory this store lives in.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("s");
    /// let store = ipfs_hamt::store::DiskStore::open(&path).unwrap();
    /// assert!(store.path().ends_with("s"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.engine.path
    }

    /// Number of blocks and bytes held, from counters kept in the store (O(1)).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ipfs_hamt::store::DiskStore::open(dir.path().join("s")).unwrap();
    /// assert_eq!(store.stats().await.unwrap(), Default::default());
    /// # });
    /// ```
    pub async fn stats(&self) -> Result<DiskStats, StoreError> {
        self.blocking(|e| Ok(e.lock_state()?.stats)).await
    }

    /// Reads every block in the store and checks its bytes against its key (the multihash),
    /// whether or not any root reaches it: the check to run after a crash. `progress` is called
    /// (on a blocking thread) with the size of each block read. Also checks that the counters
    /// match what the store holds.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ipfs_hamt::block::{Block, HashAlg, RAW};
    /// use ipfs_hamt::store::{BlockStore, DiskStore};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(dir.path().join("s")).unwrap();
    /// store.put(Block::new(RAW, HashAlg::Blake3, b"x".to_vec())).await.unwrap();
    /// let check = store.verify_all(|_| {}).await.unwrap();
    /// assert!(check.is_ok());
    /// assert_eq!(check.blocks, 1);
    /// # });
    /// ```
    pub async fn verify_all(
        &self,
        progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<DiskCheck, StoreError> {
        let _gc = self.gc_lock.read().await;
        self.blocking(move |e| gc::verify_all(e, progress)).await
    }

    /// Pins `root`: [`DiskStore::gc`] keeps every block it reaches. The root block must be in
    /// the store. Durable when this returns (the blocks written so far are synced first).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ipfs_hamt::block::{Block, HashAlg, RAW};
    /// use ipfs_hamt::store::{BlockStore, DiskStore};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(dir.path().join("s")).unwrap();
    /// let b = Block::new(RAW, HashAlg::Blake3, b"x".to_vec());
    /// store.put(b.clone()).await.unwrap();
    /// store.pin_add(&b.cid).await.unwrap();
    /// assert_eq!(store.pins().await.unwrap(), vec![b.cid]);
    /// assert!(store.pin_rm(&b.cid).await.unwrap());
    /// # });
    /// ```
    pub async fn pin_add(&self, root: &Cid) -> Result<(), StoreError> {
        self.pin_update(None, root).await
    }

    /// Pins `new` and, if `old` is pinned, unpins it in the same durable step (Kubo's
    /// `pin update`): a dataset updated daily keeps one pin, so `gc` frees the old versions.
    pub async fn pin_update(&self, old: Option<&Cid>, new: &Cid) -> Result<(), StoreError> {
        let (old, new) = (old.copied(), *new);
        self.blocking(move |e| {
            if !is_identity(&new) && e.locate(&new.hash().to_bytes())?.is_none() {
                return Err(StoreError::NotFound(new));
            }
            e.sync()?;
            let remove: Vec<Cid> = match old {
                Some(o) if o != new && e.index().is_pinned(&o)? => vec![o],
                _ => Vec::new(),
            };
            e.index().set_pins(&[new], &remove)
        })
        .await
    }

    /// Unpins `root`; false if it was not pinned.
    pub async fn pin_rm(&self, root: &Cid) -> Result<bool, StoreError> {
        let root = *root;
        self.blocking(move |e| {
            if !e.index().is_pinned(&root)? {
                return Ok(false);
            }
            e.index().set_pins(&[], &[root])?;
            Ok(true)
        })
        .await
    }

    /// Every pinned root.
    pub async fn pins(&self) -> Result<Vec<Cid>, StoreError> {
        self.blocking(|e| e.index().pins()).await
    }

    /// Whether `root` is pinned.
    pub async fn is_pinned(&self, root: &Cid) -> Result<bool, StoreError> {
        let root = *root;
        self.blocking(move |e| e.index().is_pinned(&root)).await
    }

    /// Removes every block that no pinned root reaches (following dag-cbor and dag-pb links)
    /// and gives the space back: segments holding dead records are rewritten (live records
    /// copied to the active segment, fsynced, index repointed and committed durably) and then
    /// deleted. Blocks written since the last [`BlockStore::sync`] are kept (an import still
    /// running has not committed its root yet); a root must be pinned once committed to be
    /// kept. Writers of this handle wait while it runs. Crash-safe at every step.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ipfs_hamt::block::{Block, HashAlg, RAW};
    /// use ipfs_hamt::store::{BlockStore, DiskStore};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(dir.path().join("s")).unwrap();
    /// let keep = Block::new(RAW, HashAlg::Blake3, b"keep".to_vec());
    /// let drop_me = Block::new(RAW, HashAlg::Blake3, b"drop".to_vec());
    /// store.put_many(vec![keep.clone(), drop_me.clone()]).await.unwrap();
    /// store.pin_add(&keep.cid).await.unwrap();
    /// let report = store.gc().await.unwrap();
    /// assert_eq!((report.blocks, report.bytes), (1, 4));
    /// assert!(store.has(&keep.cid).await.unwrap());
    /// assert!(!store.has(&drop_me.cid).await.unwrap());
    /// # });
    /// ```
    pub async fn gc(&self) -> Result<GcReport, StoreError> {
        let _gc = self.gc_lock.write().await;
        self.blocking(gc::collect).await
    }

    /// Runs an operation on the blocking thread pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "store {}: disk store task failed: {e}",
                    self.engine.path.display()
                ))
            })?
    }
}

/// Makes every [`DiskStore`] dropped from now on close its index on a background thread, so
/// that the drop returns at once instead of waiting up to a quarter of a second for the index's
/// own threads. For programs that exit right after (the CLI): files stay open, and the store
/// locked, until the close ends (other processes opening the store wait for it; an open in this
/// process waits too). Off by default.
///
/// ```
/// ipfs_hamt::store::disk::set_close_in_background(false);
/// ```
pub fn set_close_in_background(on: bool) {
    engine::closing::IN_BACKGROUND.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn is_identity(cid: &Cid) -> bool {
    cid.hash().code() == crate::block::IDENTITY_CODE
}

/// Reads run on the calling task, not on the blocking pool: an index lookup and a read from the
/// page cache take microseconds, less than the hand-off to another thread (measured in
/// BENCHMARKS.md); a read that misses the cache holds its worker thread for one disk read.
#[async_trait]
impl BlockStore for DiskStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        self.engine.get(cid)
    }

    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.engine.locate(&cid.hash().to_bytes())?.is_some())
    }

    /// Appends the new blocks (blocks already present are skipped). Durable after
    /// [`BlockStore::sync`] (or once 512 Ki blocks or 512 MiB are unsynced).
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let _gc = self.gc_lock.read().await;
        self.blocking(move |e| e.put_many(blocks)).await
    }

    /// Fsyncs the segments, then commits the index durably.
    async fn sync(&self) -> Result<(), StoreError> {
        self.blocking(|e| e.sync()).await
    }
}
