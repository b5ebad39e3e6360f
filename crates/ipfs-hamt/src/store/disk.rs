//! An embedded, crash-safe on-disk block store on [redb](https://docs.rs/redb).
//!
//! Blocks are keyed by their multihash bytes (code, length and digest), like Kubo's blockstore:
//! the same bytes under another codec are the same block. Every [`BlockStore::put_many`] is one
//! atomic write transaction, made durable by [`BlockStore::sync`] (which `Writer::commit` calls
//! once the root is written) or after 256 MiB of unsynced writes: skipping an fsync per value
//! batch halves import time, and blocks not yet synced belong to no committed root, so a crash
//! that loses them loses nothing committed (the store opens at its last durable state). Every
//! [`BlockStore::get`] verifies the bytes it read against the requested CID, so a damaged file
//! yields [`StoreError::Verify`], never wrong data.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use ipfs_hamt::block::{Block, HashAlg, RAW};
//! use ipfs_hamt::store::{BlockStore, DiskStore};
//! let dir = tempfile::tempdir().unwrap();
//! let store = DiskStore::open(dir.path().join("blocks.redb")).unwrap();
//! let b = Block::new(RAW, HashAlg::Blake3, b"hi".to_vec());
//! store.put_many(vec![b.clone()]).await.unwrap();
//! store.sync().await.unwrap(); // durable from here on
//! assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
//! assert_eq!(store.stats().await.unwrap().blocks, 1);
//! # });
//! ```

use std::ffi::OsString;
use std::fmt::Display;
use std::io::ErrorKind;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;
use redb::{
    Database, DatabaseError, ReadableTable, StorageError, TableDefinition, TableError,
    TransactionError,
};

use super::{BlockStore, StoreError};
use crate::block::{verify, Block};

/// Multihash bytes -> block bytes.
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// Counters ([`BLOCKS_KEY`], [`BYTES_KEY`]), updated in the same transaction as [`BLOCKS`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const BLOCKS_KEY: &str = "blocks";
const BYTES_KEY: &str = "bytes";

/// Environment variable naming the store file, overriding the XDG default.
pub const STORE_ENV: &str = "IPFS_HAMT_STORE";

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
    /// blocks by multihash only).
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

/// A [`BlockStore`] in one redb file, safe against crashes and guarded against concurrent
/// processes (a second open fails at once with a clear error). Cheap to clone (shared handle).
///
/// ```
/// use ipfs_hamt::store::DiskStore;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("nested/dir/blocks.redb"); // parents are created
/// let store = DiskStore::open(&path).unwrap();
/// assert_eq!(store.path(), path.as_path());
/// ```
#[derive(Clone)]
pub struct DiskStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    /// Bytes put since the last durable commit.
    unsynced: Arc<AtomicU64>,
}

/// Unsynced bytes after which a `put_many` commits durably anyway (bounds what a crash can
/// lose, and lets redb reuse the pages freed by earlier transactions).
const SYNC_EVERY_BYTES: u64 = 256 << 20;

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The key of a block: its multihash bytes (varint code, varint length, digest).
fn key_of(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

fn storage_error(path: &Path, e: StorageError) -> StoreError {
    match e {
        StorageError::Corrupted(msg) => StoreError::Corrupt(format!("{}: {msg}", path.display())),
        StorageError::Io(source) => StoreError::io(format!("store {}", path.display()), source),
        other => StoreError::Backend(format!("store {}: {other}", path.display())),
    }
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Backend(format!(
            "store {} is in use by another process (or already open in this one)",
            path.display()
        )),
        DatabaseError::Storage(StorageError::Corrupted(msg)) => StoreError::Corrupt(format!(
            "{} is not a readable ipfs-hamt block store (redb): {msg}",
            path.display()
        )),
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::InvalidData => {
            StoreError::Corrupt(format!(
                "{} is not an ipfs-hamt block store (not a redb database file)",
                path.display()
            ))
        }
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
            StoreError::Corrupt(format!(
                "{} is not a readable ipfs-hamt block store (truncated: shorter than its header)",
                path.display()
            ))
        }
        DatabaseError::Storage(e) => storage_error(path, e),
        other => StoreError::Backend(format!("cannot open store {}: {other}", path.display())),
    }
}

fn table_error(path: &Path, e: TableError) -> StoreError {
    match e {
        TableError::Storage(e) => storage_error(path, e),
        other => StoreError::Corrupt(format!(
            "{} is not an ipfs-hamt block store: {other}",
            path.display()
        )),
    }
}

fn txn_error(path: &Path, e: TransactionError) -> StoreError {
    match e {
        TransactionError::Storage(e) => storage_error(path, e),
        other => StoreError::Backend(format!("store {}: {other}", path.display())),
    }
}

fn other_error(path: &Path, e: impl Display) -> StoreError {
    StoreError::Backend(format!("store {}: {e}", path.display()))
}

/// Reads a counter, treating a missing one as zero.
fn counter(table: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StorageError> {
    Ok(table.get(key)?.map(|g| g.value()).unwrap_or(0))
}

/// Opens (or creates) a redb file, turning errors and panics into clear [`StoreError`]s.
fn open_db(
    path: &Path,
    open: impl FnOnce(&Path) -> Result<Database, DatabaseError>,
) -> Result<Database, StoreError> {
    // redb asserts on some malformed inputs; a panic here must become an error.
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| open(path))).map_err(|_| {
        StoreError::Corrupt(format!(
            "{} is not a readable ipfs-hamt block store (damaged or truncated: redb failed an \
             internal check while opening it)",
            path.display()
        ))
    })?;
    opened.map_err(|e| open_error(path, e))
}

/// Creates the tables if absent (a redb file made elsewhere); checks their types otherwise.
fn ensure_tables(db: &Database, path: &Path) -> Result<(), StoreError> {
    let read = db.begin_read().map_err(|e| txn_error(path, e))?;
    let blocks = read.open_table(BLOCKS);
    let meta = read.open_table(META);
    match (blocks, meta) {
        (Ok(_), Ok(_)) => return Ok(()),
        (Err(TableError::TableDoesNotExist(_)), _) | (_, Err(TableError::TableDoesNotExist(_))) => {
        }
        (Err(e), _) | (_, Err(e)) => return Err(table_error(path, e)),
    }
    drop(read);
    let write = db.begin_write().map_err(|e| txn_error(path, e))?;
    write.open_table(BLOCKS).map_err(|e| table_error(path, e))?;
    write.open_table(META).map_err(|e| table_error(path, e))?;
    write.commit().map_err(|e| other_error(path, e))
}

/// Makes a new, empty store at `path` crash-atomically: initializes it under a temporary name
/// in the same directory, then links it in (never clobbering a store another process created
/// meanwhile; `replace` allows replacing an empty file). A crash leaves either no store or a
/// complete one (plus, at worst, a stray `.<name>.creating-*` file).
fn create_atomically(path: &Path, replace: bool) -> Result<(), StoreError> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| StoreError::Backend(format!("{} is not a file path", path.display())))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.creating-{}-{nanos}", std::process::id()));
    remove_stale_temporaries(&dir, &name);
    let result = (|| {
        {
            let db = open_db(&tmp, |p| Database::create(p))?;
            ensure_tables(&db, &tmp)?; // commits durably
        }
        let io = |e| StoreError::io(format!("creating store {}", path.display()), e);
        if replace {
            std::fs::rename(&tmp, path).map_err(io)?;
        } else {
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {}
                // Another process created it first: use theirs.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                // No hard links on this file system: a plain rename (may race, rarely).
                Err(_) if !path.exists() => std::fs::rename(&tmp, path).map_err(io)?,
                Err(e) => return Err(io(e)),
            }
        }
        sync_dir(&dir);
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Removes `.<name>.creating-*` files left by a crash during a creation long ago (a creation
/// in progress takes well under a minute).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.creating-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(&prefix)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(600));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes a new directory entry durable (best effort; not possible on every platform).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

impl DiskStore {
    /// Opens the store at `path`, creating it (and its parent directories) if absent.
    ///
    /// Fails immediately with [`StoreError::Backend`] naming the path if another process (or
    /// another handle in this process) holds the store, and with [`StoreError::Corrupt`] if the
    /// file is not a redb database. This call blocks (file I/O, crash recovery); from async code
    /// call it inside [`tokio::task::spawn_blocking`] if that matters.
    ///
    /// ```
    /// use ipfs_hamt::store::{DiskStore, StoreError};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("blocks.redb");
    /// let store = DiskStore::open(&path).unwrap();
    /// // A second open while the first is alive is refused.
    /// assert!(matches!(DiskStore::open(&path), Err(StoreError::Backend(_))));
    /// drop(store);
    /// assert!(DiskStore::open(&path).is_ok());
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<DiskStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::io(format!("creating directory {}", parent.display()), e)
            })?;
        }
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => create_atomically(&path, false)?,
            Ok(m) if m.is_file() && m.len() == 0 => create_atomically(&path, true)?,
            _ => {}
        }
        // Never `Database::create` in place: a crash while redb initializes a file leaves one
        // it refuses to open. New stores are made aside and linked in by `create_atomically`.
        let db = open_db(&path, |p| Database::open(p))?;
        ensure_tables(&db, &path)?;
        Ok(DiskStore {
            db: Arc::new(db),
            path: Arc::new(path),
            unsynced: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The file this store lives in.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("s.redb");
    /// let store = ipfs_hamt::store::DiskStore::open(&path).unwrap();
    /// assert!(store.path().ends_with("s.redb"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of blocks and bytes held, read from counters kept in the store (O(1)).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ipfs_hamt::store::DiskStore::open(dir.path().join("s.redb")).unwrap();
    /// assert_eq!(store.stats().await.unwrap(), Default::default());
    /// # });
    /// ```
    pub async fn stats(&self) -> Result<DiskStats, StoreError> {
        self.blocking(|db, path| {
            let read = db.begin_read().map_err(|e| txn_error(path, e))?;
            let meta = read.open_table(META).map_err(|e| table_error(path, e))?;
            Ok(DiskStats {
                blocks: counter(&meta, BLOCKS_KEY).map_err(|e| storage_error(path, e))?,
                bytes: counter(&meta, BYTES_KEY).map_err(|e| storage_error(path, e))?,
            })
        })
        .await
    }

    /// Reads every block in the store and checks its bytes against its key (the multihash),
    /// whether or not any root reaches it: the check to run after a crash. `progress` is called
    /// (on a blocking thread) with the size of each block read. Also checks that the block and
    /// byte counters match what the store holds.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ipfs_hamt::block::{Block, HashAlg, RAW};
    /// use ipfs_hamt::store::{BlockStore, DiskStore};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(dir.path().join("s.redb")).unwrap();
    /// store.put(Block::new(RAW, HashAlg::Blake3, b"x".to_vec())).await.unwrap();
    /// let check = store.verify_all(|_| {}).await.unwrap();
    /// assert!(check.is_ok());
    /// assert_eq!(check.blocks, 1);
    /// # });
    /// ```
    pub async fn verify_all(
        &self,
        mut progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<DiskCheck, StoreError> {
        self.blocking(move |db, path| {
            let read = db.begin_read().map_err(|e| txn_error(path, e))?;
            let table = read.open_table(BLOCKS).map_err(|e| table_error(path, e))?;
            let meta = read.open_table(META).map_err(|e| table_error(path, e))?;
            let mut check = DiskCheck {
                counters: DiskStats {
                    blocks: counter(&meta, BLOCKS_KEY).map_err(|e| storage_error(path, e))?,
                    bytes: counter(&meta, BYTES_KEY).map_err(|e| storage_error(path, e))?,
                },
                ..DiskCheck::default()
            };
            for item in table.iter().map_err(|e| storage_error(path, e))? {
                let (key, value) = item.map_err(|e| storage_error(path, e))?;
                let data = value.value();
                check.blocks += 1;
                check.bytes += data.len() as u64;
                progress(data.len() as u64);
                match multihash::Multihash::<64>::from_bytes(key.value()) {
                    Ok(mh) => {
                        let cid = Cid::new_v1(crate::block::RAW, mh);
                        match verify(&cid, data) {
                            Ok(()) => {}
                            Err(crate::block::VerifyError::Mismatch(_)) => check.corrupt.push(cid),
                            Err(crate::block::VerifyError::UnsupportedHash { .. }) => {
                                check.unverifiable.push(cid)
                            }
                        }
                    }
                    Err(_) => check.bad_keys += 1,
                }
            }
            Ok(check)
        })
        .await
    }

    /// Runs a redb operation on the blocking thread pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || f(&db, &path))
            .await
            .map_err(|e| other_error(&self.path, format!("disk store task failed: {e}")))?
    }
}

#[async_trait]
impl BlockStore for DiskStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let cid = *cid;
        self.blocking(move |db, path| {
            let read = db.begin_read().map_err(|e| txn_error(path, e))?;
            let table = read.open_table(BLOCKS).map_err(|e| table_error(path, e))?;
            let data = match table.get(key_of(&cid).as_slice()) {
                Ok(Some(guard)) => guard.value().to_vec(),
                Ok(None) => return Err(StoreError::NotFound(cid)),
                Err(e) => return Err(storage_error(path, e)),
            };
            verify(&cid, &data)?;
            Ok(Bytes::from(data))
        })
        .await
    }

    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        let key = key_of(cid);
        self.blocking(move |db, path| {
            let read = db.begin_read().map_err(|e| txn_error(path, e))?;
            let table = read.open_table(BLOCKS).map_err(|e| table_error(path, e))?;
            let found = table
                .get(key.as_slice())
                .map_err(|e| storage_error(path, e))?;
            Ok(found.is_some())
        })
        .await
    }

    /// Writes all new blocks in one atomic transaction; blocks already present are skipped.
    /// Durable after [`BlockStore::sync`] (or once 256 MiB are unsynced).
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let size: u64 = blocks.iter().map(|b| b.data.len() as u64).sum();
        let total = self.unsynced.fetch_add(size, Ordering::Relaxed) + size;
        let durable = total >= SYNC_EVERY_BYTES;
        if durable {
            self.unsynced.store(0, Ordering::Relaxed);
        }
        let mut items: Vec<(Vec<u8>, Bytes)> = blocks
            .into_iter()
            .map(|b| (key_of(&b.cid), b.data))
            .collect();
        // Sorted keys make the B-tree inserts sequential.
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.blocking(move |db, path| {
            let mut write = db.begin_write().map_err(|e| txn_error(path, e))?;
            if !durable {
                write.set_durability(redb::Durability::None);
            }
            {
                let mut table = write.open_table(BLOCKS).map_err(|e| table_error(path, e))?;
                let mut meta = write.open_table(META).map_err(|e| table_error(path, e))?;
                let (mut added, mut added_bytes) = (0u64, 0u64);
                for (key, data) in &items {
                    let present = table
                        .get(key.as_slice())
                        .map_err(|e| storage_error(path, e))?
                        .is_some();
                    if present {
                        continue;
                    }
                    table
                        .insert(key.as_slice(), data.as_ref())
                        .map_err(|e| storage_error(path, e))?;
                    added += 1;
                    added_bytes += data.len() as u64;
                }
                if added > 0 {
                    let blocks = counter(&meta, BLOCKS_KEY).map_err(|e| storage_error(path, e))?;
                    let bytes = counter(&meta, BYTES_KEY).map_err(|e| storage_error(path, e))?;
                    meta.insert(BLOCKS_KEY, blocks.saturating_add(added))
                        .map_err(|e| storage_error(path, e))?;
                    meta.insert(BYTES_KEY, bytes.saturating_add(added_bytes))
                        .map_err(|e| storage_error(path, e))?;
                }
            }
            write.commit().map_err(|e| other_error(path, e))
        })
        .await
    }

    /// Commits durably (an empty transaction persists every earlier one).
    async fn sync(&self) -> Result<(), StoreError> {
        self.unsynced.store(0, Ordering::Relaxed);
        self.blocking(|db, path| {
            let write = db.begin_write().map_err(|e| txn_error(path, e))?;
            write.commit().map_err(|e| other_error(path, e))
        })
        .await
    }
}

/// The default store file: `$IPFS_HAMT_STORE` if set and non-empty, else
/// `$XDG_DATA_HOME/ipfs-hamt/blocks.redb` (if absolute, as the XDG spec requires), else
/// `$HOME/.local/share/ipfs-hamt/blocks.redb`.
///
/// ```
/// match ipfs_hamt::store::disk::default_store_path() {
///     Ok(path) => println!("store at {}", path.display()),
///     Err(e) => println!("no default store: {e}"),
/// }
/// ```
pub fn default_store_path() -> Result<PathBuf, StoreError> {
    default_store_path_from(
        std::env::var_os(STORE_ENV),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

fn default_store_path_from(
    store: Option<OsString>,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, StoreError> {
    let nonempty = |v: Option<OsString>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(p) = nonempty(store) {
        return Ok(p);
    }
    let tail = Path::new("ipfs-hamt").join("blocks.redb");
    if let Some(xdg) = nonempty(xdg_data_home).filter(|p| p.is_absolute()) {
        return Ok(xdg.join(tail));
    }
    if let Some(home) = nonempty(home) {
        return Ok(home.join(".local").join("share").join(tail));
    }
    Err(StoreError::Backend(format!(
        "no default block store path: set {STORE_ENV}, XDG_DATA_HOME or HOME"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{HashAlg, VerifyError, DAG_CBOR, RAW};
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn store_in(dir: &tempfile::TempDir) -> (DiskStore, PathBuf) {
        let path = dir.path().join("blocks.redb");
        (DiskStore::open(&path).unwrap(), path)
    }

    #[tokio::test]
    async fn round_trip_and_codec_independence() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = store_in(&dir);
        let a = Block::new(RAW, HashAlg::Blake3, b"a".to_vec());
        let b = Block::new(DAG_CBOR, HashAlg::Sha2_256, vec![7u8; 100_000]);
        assert!(!s.has(&a.cid).await.unwrap());
        assert!(matches!(s.get(&a.cid).await, Err(StoreError::NotFound(c)) if c == a.cid));
        s.put_many(vec![a.clone(), b.clone()]).await.unwrap();
        assert!(s.has(&a.cid).await.unwrap());
        assert_eq!(s.get(&a.cid).await.unwrap(), a.data);
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
        let relabelled = Cid::new_v1(DAG_CBOR, *a.cid.hash());
        assert_eq!(s.get(&relabelled).await.unwrap(), a.data);
        assert_eq!(
            s.get_range(&b.cid, crate::range::ByteRange::Full)
                .await
                .unwrap(),
            b.data
        );
        s.put_many(vec![]).await.unwrap();
        // Works through the trait object too.
        let shared: crate::store::SharedStore = Arc::new(s.clone());
        assert_eq!(shared.get(&a.cid).await.unwrap(), a.data);
    }

    #[tokio::test]
    async fn dedup_and_stats() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = store_in(&dir);
        let a = Block::new(RAW, HashAlg::Blake3, b"aaa".to_vec());
        let b = Block::new(RAW, HashAlg::Blake3, b"bbbbb".to_vec());
        let a_cbor = Block {
            cid: Cid::new_v1(DAG_CBOR, *a.cid.hash()),
            data: a.data.clone(),
        };
        s.put_many(vec![a.clone(), b.clone(), a.clone(), a_cbor])
            .await
            .unwrap();
        assert_eq!(
            s.stats().await.unwrap(),
            DiskStats {
                blocks: 2,
                bytes: 8
            }
        );
        s.put_many(vec![b.clone()]).await.unwrap();
        s.put(a.clone()).await.unwrap();
        assert_eq!(s.stats().await.unwrap().blocks, 2);
        let c = Block::new(RAW, HashAlg::Sha2_256, b"c".to_vec());
        s.put(c).await.unwrap();
        assert_eq!(
            s.stats().await.unwrap(),
            DiskStats {
                blocks: 3,
                bytes: 9
            }
        );
    }

    #[tokio::test]
    async fn reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c/blocks.redb");
        let blocks: Vec<Block> = (0..50u32)
            .map(|i| Block::new(RAW, HashAlg::Blake3, format!("block {i}").into_bytes()))
            .collect();
        {
            let s = DiskStore::open(&path).unwrap();
            s.put_many(blocks.clone()).await.unwrap();
        }
        let s = DiskStore::open(&path).unwrap();
        for b in &blocks {
            assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
        }
        assert_eq!(s.stats().await.unwrap().blocks, 50);
    }

    const LOCK_CHILD_ENV: &str = "IPFS_HAMT_DISK_LOCK_CHILD";

    /// Re-runs this test binary with only `test` selected and `env` set.
    fn child_command(test: &str, env: &str, value: &Path) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(env, value)
            .stdin(Stdio::null());
        cmd
    }

    /// Child mode of [`lock_held_by_another_process`]: opens the store, reports, waits.
    #[test]
    fn lock_child() {
        let Some(path) = std::env::var_os(LOCK_CHILD_ENV) else {
            return;
        };
        let _store = DiskStore::open(PathBuf::from(path)).unwrap();
        println!("@@opened");
        std::thread::sleep(Duration::from_secs(30));
    }

    #[test]
    fn lock_held_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.redb");
        let mut child = child_command("store::disk::tests::lock_child", LOCK_CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The harness may print "test ... " on the same line before ours.
        let opened = lines.any(|l| l.map(|l| l.ends_with("@@opened")).unwrap_or(false));
        assert!(opened, "child did not open the store");
        let start = Instant::now();
        let err = DiskStore::open(&path).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "open blocked");
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(msg.contains("in use by another process"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        child.kill().unwrap();
        child.wait().unwrap();
        // The lock dies with its process.
        DiskStore::open(&path).unwrap();
    }

    #[test]
    fn lock_held_in_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store_in(&dir);
        let start = Instant::now();
        let err = DiskStore::open(&path).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(err.to_string().contains("in use"), "{err}");
        drop(s);
        DiskStore::open(&path).unwrap();
    }

    fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
        haystack
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect()
    }

    #[tokio::test]
    async fn corrupted_block_gives_verify_error() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store_in(&dir);
        let data: Vec<u8> = (0..3000u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes())
            .collect();
        let victim = Block::new(RAW, HashAlg::Blake3, data.clone());
        let other = Block::new(RAW, HashAlg::Sha2_256, b"unharmed".to_vec());
        s.put_many(vec![victim.clone(), other.clone()])
            .await
            .unwrap();
        drop(s);
        let mut file = std::fs::read(&path).unwrap();
        let hits = find_all(&file, &data);
        assert!(!hits.is_empty(), "block bytes not found in the file");
        for at in hits {
            file[at + 1234] ^= 0x01;
        }
        std::fs::write(&path, &file).unwrap();
        let s = DiskStore::open(&path).unwrap();
        match s.get(&victim.cid).await {
            Err(StoreError::Verify(VerifyError::Mismatch(c))) => assert_eq!(c, victim.cid),
            other => panic!("expected a verify error, got {other:?}"),
        }
        assert_eq!(s.get(&other.cid).await.unwrap(), other.data);
    }

    #[test]
    fn garbage_file_gives_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [("small", 5usize), ("big", 256 * 1024)] {
            let path = dir.path().join(name);
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            std::fs::write(&path, &garbage).unwrap();
            let err = DiskStore::open(&path).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
            assert!(msg.contains("not an ipfs-hamt block store"), "{msg}");
            // The garbage is left alone.
            assert_eq!(std::fs::read(&path).unwrap(), garbage);
        }
        // A redb file of someone else's, with a table of the same name and other types.
        let foreign = dir.path().join("foreign.redb");
        {
            let db = Database::create(&foreign).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(TableDefinition::<u64, u64>::new("blocks"))
                .unwrap()
                .insert(1, 2)
                .unwrap();
            w.commit().unwrap();
        }
        let err = DiskStore::open(&foreign).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains("foreign.redb"), "{err}");
        // A directory where the file should be.
        let err = DiskStore::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[tokio::test]
    async fn empty_file_becomes_a_store_and_no_temporaries_remain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.redb");
        std::fs::write(&path, b"").unwrap();
        let s = DiskStore::open(&path).unwrap();
        let b = Block::new(RAW, HashAlg::Blake3, b"x".to_vec());
        s.put(b.clone()).await.unwrap();
        drop(s);
        let s = DiskStore::open(&path).unwrap();
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("blocks.redb")]);
    }

    #[test]
    fn default_path_logic() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_store_path_from(os("/s/x.redb"), os("/xdg"), os("/home/u")).unwrap(),
            PathBuf::from("/s/x.redb")
        );
        assert_eq!(
            default_store_path_from(os(""), os("/xdg"), os("/home/u")).unwrap(),
            PathBuf::from("/xdg/ipfs-hamt/blocks.redb")
        );
        assert_eq!(
            default_store_path_from(None, os(""), os("/home/u")).unwrap(),
            PathBuf::from("/home/u/.local/share/ipfs-hamt/blocks.redb")
        );
        assert_eq!(
            default_store_path_from(None, os("relative"), os("/home/u")).unwrap(),
            PathBuf::from("/home/u/.local/share/ipfs-hamt/blocks.redb")
        );
        assert!(default_store_path_from(None, None, None).is_err());
        assert!(default_store_path_from(os(""), os(""), os("")).is_err());
        // The public function reads the real environment.
        if let Ok(p) = default_store_path() {
            match std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
                Some(v) => assert_eq!(p, PathBuf::from(v)),
                None => assert!(p.ends_with("ipfs-hamt/blocks.redb")),
            }
        }
    }

    // ---- Crash safety ----

    const CRASH_CHILD_ENV: &str = "IPFS_HAMT_DISK_CRASH_CHILD";
    const BATCH_BLOCKS: u64 = 16;
    /// The child stops by itself after this many batches or this long.
    const CHILD_MAX_BATCHES: u64 = 5_000;
    const CHILD_MAX_TIME: Duration = Duration::from_secs(10);

    /// Deterministic block `i` of batch `batch`; block 0 of every batch is shared (dedup).
    fn crash_block(batch: u64, i: u64) -> Block {
        if i == 0 {
            return Block::new(RAW, HashAlg::Blake3, b"shared by every batch".to_vec());
        }
        let seed = batch.wrapping_mul(1_000_003).wrapping_add(i);
        let len = 64 + (seed.wrapping_mul(2_654_435_761) % 6_000) as usize;
        let mut data = Vec::with_capacity(len);
        let mut x = seed | 1;
        while data.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(len);
        let alg = if i % 2 == 0 {
            HashAlg::Blake3
        } else {
            HashAlg::Sha2_256
        };
        Block::new(RAW, alg, data)
    }

    fn crash_batch(batch: u64) -> Vec<Block> {
        (0..BATCH_BLOCKS).map(|i| crash_block(batch, i)).collect()
    }

    /// Child mode of [`survives_sigkill`]: writes batches `start..` and prints
    /// `@@committed <batch>` after each commit, until killed or bounded out.
    #[test]
    fn crash_writer_child() {
        let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
            return;
        };
        let start: u64 = std::env::var("IPFS_HAMT_DISK_CRASH_START")
            .unwrap()
            .parse()
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            let store = DiskStore::open(PathBuf::from(path)).unwrap();
            println!("@@opened");
            let began = Instant::now();
            for batch in start..start + CHILD_MAX_BATCHES {
                if began.elapsed() > CHILD_MAX_TIME {
                    break;
                }
                store.put_many(crash_batch(batch)).await.unwrap();
                // Odd batches stay unsynced; a sync makes them durable with the next even one,
                // and only synced batches are reported as committed.
                if batch % 2 == 1 {
                    continue;
                }
                store.sync().await.unwrap();
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                writeln!(out, "@@committed {batch}").unwrap();
                out.flush().unwrap();
            }
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_sigkill() {
        const ITERATIONS: u64 = 20;
        const STRIDE: u64 = 100_000; // batch numbers of iteration k start at k * STRIDE
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.redb");
        let began = Instant::now();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        // (first batch, last reported committed batch or None) per iteration.
        let mut runs: Vec<(u64, Option<u64>)> = Vec::new();
        for it in 0..ITERATIONS {
            let start = it * STRIDE;
            let mut child = child_command(
                "store::disk::tests::crash_writer_child",
                CRASH_CHILD_ENV,
                &path,
            )
            .env("IPFS_HAMT_DISK_CRASH_START", start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (opened_tx, opened_rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut last = None;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // The harness may print "test ... " on the same line before ours.
                    if let Some((_, n)) = line.split_once("@@committed ") {
                        last = Some(n.trim().parse::<u64>().unwrap());
                    } else if line.ends_with("@@opened") {
                        let _ = opened_tx.send(());
                    }
                }
                last
            });
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let delay = 5 + rng % 196;
            // Every fourth kill counts from the spawn (it may land during open and recovery);
            // the others count from the open, so they land among the commits.
            if it % 4 != 0 {
                let _ = opened_rx.recv_timeout(Duration::from_secs(20));
            }
            std::thread::sleep(Duration::from_millis(delay));
            child.kill().unwrap(); // SIGKILL on unix
            child.wait().unwrap();
            let last = reader.join().unwrap();
            eprintln!(
                "it {it} delay {delay}ms last {last:?} t={:?}",
                began.elapsed()
            );
            runs.push((start, last));

            // Reopen: everything reported must be there and verify; nothing may verify wrongly;
            // the counters must match what is actually present.
            let p = path.clone();
            let store = tokio::task::spawn_blocking(move || DiskStore::open(p))
                .await
                .unwrap()
                .unwrap();
            let mut present = std::collections::HashSet::new();
            for &(first, last) in &runs {
                let reported_end = last.map_or(first, |l| l + 1);
                // At most one batch can be committed but unreported; look a little further.
                for batch in first..reported_end + 2 {
                    let committed = batch < reported_end;
                    for b in crash_batch(batch) {
                        match store.get(&b.cid).await {
                            Ok(data) => {
                                assert_eq!(data, b.data);
                                present.insert(b.cid.hash().to_bytes());
                            }
                            Err(StoreError::NotFound(_)) if !committed => {}
                            other => panic!(
                                "iteration {it}: batch {batch} (committed: {committed}) block \
                                 {}: {other:?}",
                                b.cid
                            ),
                        }
                    }
                }
            }
            let stats = store.stats().await.unwrap();
            assert_eq!(stats.blocks, present.len() as u64, "iteration {it}");
            drop(store);
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "crash test too slow"
            );
        }
        let reported: u64 = runs
            .iter()
            .map(|&(first, last)| last.map_or(0, |l| l + 1 - first))
            .sum();
        eprintln!(
            "survives_sigkill: {ITERATIONS} kills, {reported} batches reported committed, \
             all present and verified"
        );
        assert!(reported > 0, "the child never committed anything");
    }

    /// Write throughput; run with
    /// `cargo test --release -p ipfs-hamt disk_throughput -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn disk_throughput() {
        const BLOCKS: u64 = 20_000;
        const SIZE: usize = 5 * 1024;
        const BATCH: u64 = 1000;
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store_in(&dir);
        let batches: Vec<Vec<Block>> = (0..BLOCKS / BATCH)
            .map(|b| {
                (0..BATCH)
                    .map(|i| {
                        let mut data = vec![0u8; SIZE];
                        data[..8].copy_from_slice(&(b * BATCH + i).to_le_bytes());
                        data[8..16].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
                        Block::new(RAW, HashAlg::Blake3, data)
                    })
                    .collect()
            })
            .collect();
        let start = Instant::now();
        for batch in batches.clone() {
            s.put_many(batch).await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let mb = (BLOCKS as f64 * SIZE as f64) / 1e6;
        println!(
            "disk put_many: {BLOCKS} blocks x {SIZE} B in batches of {BATCH}: {secs:.3}s, \
             {:.0} blocks/s, {:.1} MB/s; file {} MB",
            BLOCKS as f64 / secs,
            mb / secs,
            std::fs::metadata(&path).unwrap().len() / 1_000_000
        );
        let start = Instant::now();
        for batch in &batches {
            for b in batch {
                s.get(&b.cid).await.unwrap();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "disk get (verified, one at a time): {:.0} blocks/s, {:.1} MB/s",
            BLOCKS as f64 / secs,
            mb / secs
        );
        assert_eq!(s.stats().await.unwrap().blocks, BLOCKS);
    }
}
