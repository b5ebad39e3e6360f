//! Migrating a store of the previous format: one redb file with table `blocks` (multihash ->
//! block bytes) and table `meta` (counters).
//!
//! Crash-safe: the new store is built in `<target>.migrating` beside it, a marker naming the
//! old file is written once it is complete and synced, then the old file is renamed to
//! `<old>.v1-backup` and the new store renamed into place. A crash before the marker leaves
//! the old file as it was (the partial build is discarded and redone); a crash after it is
//! finished by [`resume`] on the next open.

use std::io::ErrorKind;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use cid::Cid;
use redb::{Database, DatabaseError, ReadableTable, StorageError, TableDefinition, TableError};

use super::engine::Engine;
use super::error::io_err;
use super::segment::sync_dir;
use super::{layout, DiskStats};
use crate::block::{Block, RAW};
use crate::store::StoreError;

/// The first bytes of a redb file.
pub const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// The previous format's block table.
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// Names the old file inside a complete migration directory.
const MARKER: &str = "MIGRATION-COMPLETE";

fn migrating_dir(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".migrating");
    target.with_file_name(name)
}

/// Where the old file is kept after a migration.
pub fn backup_path(old: &Path) -> PathBuf {
    let mut name = old.file_name().unwrap_or_default().to_os_string();
    name.push(".v1-backup");
    old.with_file_name(name)
}

fn not_a_store(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!(
        "{} is not a readable ipfs-hamt block store (previous format, redb): {why}",
        path.display()
    ))
}

fn open_redb(path: &Path) -> Result<Database, StoreError> {
    // redb asserts on some malformed inputs; a panic here must become an error.
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| Database::open(path)))
        .map_err(|_| not_a_store(path, "damaged or truncated (redb failed an internal check)"))?;
    opened.map_err(|e| match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Backend(format!(
            "store {} is in use by another process",
            path.display()
        )),
        DatabaseError::Storage(StorageError::Io(e))
            if matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof) =>
        {
            not_a_store(path, "damaged or truncated")
        }
        DatabaseError::Storage(StorageError::Io(e)) => io_err(path, "opening store")(e),
        other => not_a_store(path, other),
    })
}

/// Finishes a migration that a crash interrupted after its build completed.
pub fn resume(target: &Path) -> Result<(), StoreError> {
    let tmp = migrating_dir(target);
    let Ok(old) = std::fs::read_to_string(tmp.join(MARKER)) else {
        return Ok(());
    };
    let old = PathBuf::from(old);
    if old.is_file() {
        std::fs::rename(&old, backup_path(&old)).map_err(io_err(&old, "renaming"))?;
    }
    if !target.exists() {
        std::fs::rename(&tmp, target).map_err(io_err(&tmp, "renaming"))?;
        let _ = std::fs::remove_file(target.join(MARKER));
    }
    if let Some(parent) = target.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// Migrates the old store file `old` into a new store at `target` (which may be `old`'s own
/// path); says what it did on stderr.
pub fn migrate(old: &Path, target: &Path) -> Result<(), StoreError> {
    let tmp = migrating_dir(target);
    if tmp.exists() {
        // An earlier attempt that did not complete (no marker, or `resume` would have run).
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp, "removing stale"))?;
    }
    let db = open_redb(old)?;
    let read = db.begin_read().map_err(|e| not_a_store(old, e))?;
    let table = match read.open_table(BLOCKS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => {
            return Err(not_a_store(old, "it has no table \"blocks\""))
        }
        Err(e) => return Err(not_a_store(old, e)),
    };
    let stats = {
        let lock = layout::prepare(&tmp)?;
        let engine = Engine::open(&tmp, lock, super::DiskOptions::WRITE_CACHE_BYTES)?;
        let (mut batch, mut batch_bytes) = (Vec::new(), 0usize);
        let mut stats = DiskStats::default();
        let mut skipped = 0u64;
        for item in table.iter().map_err(|e| not_a_store(old, e))? {
            let (key, value) = item.map_err(|e| not_a_store(old, e))?;
            let Ok(mh) = multihash::Multihash::<64>::from_bytes(key.value()) else {
                skipped += 1;
                continue;
            };
            let data = value.value().to_vec();
            stats.blocks += 1;
            stats.bytes += data.len() as u64;
            batch_bytes += data.len();
            batch.push(Block {
                cid: Cid::new_v1(RAW, mh),
                data: data.into(),
            });
            if batch.len() >= 65_536 || batch_bytes >= 64 << 20 {
                engine.put_many(std::mem::take(&mut batch))?;
                batch_bytes = 0;
            }
        }
        engine.put_many(batch)?;
        engine.sync()?;
        if skipped > 0 {
            eprintln!(
                "ipfs-hamt: {skipped} entries of {} had keys that are not multihashes; not migrated",
                old.display()
            );
        }
        stats
    };
    drop(table);
    drop(read);
    drop(db);
    // The new store's index must be closed (and its lock released) before it moves.
    super::engine::closing::wait_for(&tmp);
    let marker = tmp.join(MARKER);
    let old_abs = std::path::absolute(old).map_err(io_err(old, "resolving"))?;
    std::fs::write(&marker, old_abs.as_os_str().as_encoded_bytes())
        .map_err(io_err(&marker, "writing"))?;
    if let Ok(f) = std::fs::File::open(&marker) {
        let _ = f.sync_all();
    }
    sync_dir(&tmp);
    resume(target)?;
    eprintln!(
        "ipfs-hamt: migrated the store {} (previous format: {} blocks, {} bytes) to {}; the \
         old file is kept as {} (delete it once satisfied)",
        old.display(),
        stats.blocks,
        stats.bytes,
        target.display(),
        backup_path(old).display()
    );
    Ok(())
}
