//! The index: multihash bytes -> block location in a set of sorted run files (`runs`), plus
//! the pins, the store's counters, its watermark and the list of runs in a
//! [fjall](https://docs.rs/fjall) keyspace.
//!
//! Entries reach the index only after the segment bytes they point at were fsynced
//! (`DiskStore` keeps newer ones in memory), so an entry that survives a crash always points at
//! durable bytes. The watermark (the segment position up to which every record is indexed) and
//! the list of runs are written in the same atomic batch, so recovery scans only what lies past
//! the watermark, and a run written just before a crash but not listed is deleted on open.
//!
//! Stores made before the runs existed kept the block map in a fjall partition `blocks`: it is
//! copied into runs when such a store is opened, then deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cid::Cid;
use fjall::{Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::error::{corrupt, index_err};
use super::runs::{key_hash, Commit, Entry, Found, Key, Merger, Run, RunSet};
use super::DiskStats;
use crate::store::StoreError;

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Segment id.
    pub seg: u32,
    /// Ordinal of the record in its segment (0-based), for the mark bitmaps of `gc`.
    pub ordinal: u32,
    /// Offset of the record (its header) in the segment file.
    pub offset: u64,
    /// Length of the block data.
    pub len: u32,
}

impl Loc {
    /// The 20-byte form stored in the index.
    pub fn encode(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&self.seg.to_le_bytes());
        b[4..8].copy_from_slice(&self.ordinal.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..].copy_from_slice(&self.len.to_le_bytes());
        b
    }
    /// Reads [`Loc::encode`]'s form.
    pub fn decode(b: &[u8]) -> Option<Loc> {
        if b.len() != 20 {
            return None;
        }
        Some(Loc {
            seg: u32::from_le_bytes(b[..4].try_into().ok()?),
            ordinal: u32::from_le_bytes(b[4..8].try_into().ok()?),
            offset: u64::from_le_bytes(b[8..16].try_into().ok()?),
            len: u32::from_le_bytes(b[16..].try_into().ok()?),
        })
    }
}

/// A position in the segments: everything before it is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Segment id.
    pub seg: u32,
    /// Offset in that segment.
    pub offset: u64,
    /// Ordinal of the record at `offset`.
    pub ordinal: u32,
}

const WATERMARK: &str = "watermark";
const BLOCKS: &str = "blocks";
const BYTES: &str = "bytes";
/// The ids of the runs making up the block map, oldest first (u64 each).
const RUNS: &str = "runs";
/// The block map of stores made before the runs.
const OLD_BLOCKS: &str = "blocks";
/// Entries per run when an old block map is copied into runs.
const MIGRATE_CHUNK: usize = 1 << 20;

/// The index of one store.
pub struct Index {
    /// First: stopped (its thread joined) before the rest closes.
    merger: Merger,
    dir: PathBuf,
    ks: Keyspace,
    runs: Arc<RunSet>,
    pins: PartitionHandle,
    meta: PartitionHandle,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("dir", &self.dir).finish()
    }
}

/// One atomic change to the index.
#[derive(Default)]
pub struct Change<'a> {
    /// Entries to add or repoint (any order; [`Index::apply`] sorts them).
    pub put: &'a [Entry],
    /// Entries to remove.
    pub remove: Vec<Vec<u8>>,
    /// The new watermark.
    pub watermark: Option<Pos>,
    /// The new counters.
    pub stats: Option<DiskStats>,
}

impl Index {
    /// Opens (or creates) the index in `dir`.
    ///
    /// fjall makes a new index's files one by one, and one killed meanwhile would not open:
    /// until `<dir>.complete` exists, an index that fails to open is discarded and made again
    /// (nothing can be lost: the marker is written as soon as a new index is made, before any
    /// entry goes in, and a new store's records are found again by the scan past the watermark).
    /// The runs live in `runs_dir`, beside it (they are named by the index's metadata).
    pub fn open(dir: &Path, runs_dir: &Path, cache_bytes: u64) -> Result<Index, StoreError> {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(".complete");
        let marker = dir.with_file_name(name);
        if marker.exists() {
            return Index::open_raw(dir, runs_dir, cache_bytes);
        }
        let ix = match Index::open_raw(dir, runs_dir, cache_bytes) {
            Ok(ix) => ix,
            Err(_) => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .map_err(super::error::io_err(dir, "removing the unfinished index"))?;
                }
                Index::open_raw(dir, runs_dir, cache_bytes)?
            }
        };
        ix.persist()?;
        std::fs::write(&marker, b"").map_err(super::error::io_err(&marker, "writing"))?;
        if let Ok(f) = std::fs::File::open(&marker) {
            let _ = f.sync_all();
        }
        if let Some(parent) = dir.parent() {
            super::segment::sync_dir(parent);
        }
        Ok(ix)
    }

    /// Opens the index in `dir`, letting fjall create it in place if absent.
    fn open_raw(dir: &Path, runs_dir: &Path, cache_bytes: u64) -> Result<Index, StoreError> {
        let e = |e| index_err(dir, e);
        // fjall asserts on some damaged files; a panic must become an error.
        let ks = std::panic::catch_unwind(|| {
            fjall::Config::new(dir)
                .manual_journal_persist(true)
                // Filled only as index blocks are read (DiskOptions says why its size).
                .cache_size(cache_bytes)
                .open()
        })
        .map_err(|_| corrupt(dir, "the index is damaged (it failed an internal check)"))?
        .map_err(e)?;
        // The journal need not reach the OS at every batch: the store's own watermark and
        // segments are the record of what was written (see the module doc).
        let part = |name| {
            let o = PartitionCreateOptions::default().manual_journal_persist(true);
            ks.open_partition(name, o).map_err(e)
        };
        let (pins, meta) = (part("pins")?, part("meta")?);
        let listed = match meta.get(RUNS).map_err(e)? {
            None => None,
            Some(v) if v.len() % 8 == 0 => Some(
                v.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect::<Vec<u64>>(),
            ),
            Some(_) => return Err(corrupt(dir, "the list of index runs is malformed")),
        };
        let old = ks
            .partition_exists(OLD_BLOCKS)
            .then(|| part(OLD_BLOCKS))
            .transpose()?;
        let runs = Arc::new(RunSet::open(runs_dir, listed.as_deref().unwrap_or(&[]))?);
        let commit: Commit = {
            let (ks, meta, dir) = (ks.clone(), meta.clone(), dir.to_path_buf());
            Box::new(move |ids: &[u64]| {
                record_runs(&ks, &meta, ids).map_err(|e| index_err(&dir, e))
            })
        };
        let ix = Index {
            merger: Merger::start(runs.clone(), commit),
            runs,
            pins,
            meta,
            ks,
            dir: dir.to_path_buf(),
        };
        if let Some(blocks) = old {
            if listed.is_none() {
                ix.migrate(&blocks)?;
            }
            // Copied (now, or before a crash that came before this deletion).
            ix.ks.delete_partition(blocks).map_err(e)?;
        }
        Ok(ix)
    }

    /// Copies the block map of a store made before the runs into runs, durably.
    fn migrate(&self, blocks: &PartitionHandle) -> Result<(), StoreError> {
        let mut list = Vec::new();
        let mut chunk: Vec<Entry> = Vec::new();
        let mut iter = blocks.iter();
        loop {
            let next = iter.next().transpose().map_err(self.e())?;
            if let Some((k, v)) = &next {
                let loc = Loc::decode(v)
                    .ok_or_else(|| corrupt(&self.dir, "an index entry is not a location"))?;
                chunk.push(Entry {
                    h: key_hash(k),
                    key: Key::new(k)
                        .ok_or_else(|| corrupt(&self.dir, "an index key has a bad length"))?,
                    found: Found::At(loc),
                });
            }
            if chunk.len() >= MIGRATE_CHUNK || (next.is_none() && !chunk.is_empty()) {
                chunk.sort_unstable_by(|a, b| a.order().cmp(&b.order()));
                list.push(self.runs.write(&chunk)?);
                chunk.clear();
            }
            if next.is_none() {
                break;
            }
        }
        // Nothing names these runs yet: a merge's inputs can go at once.
        while let Some(range) = RunSet::plan(&list) {
            let old = list[range.clone()].to_vec();
            list = self.runs.merge(&list, range)?;
            self.runs.remove_files(&old)?;
        }
        record_runs(&self.ks, &self.meta, &RunSet::ids(&list)).map_err(self.e())?;
        self.runs.install(list)
    }

    fn e(&self) -> impl Fn(fjall::Error) -> StoreError + '_ {
        move |e| index_err(&self.dir, e)
    }

    /// Where the block with multihash `key` is, if indexed.
    pub fn get(&self, key: &[u8]) -> Result<Option<Loc>, StoreError> {
        self.runs.get(key)
    }

    /// The runs as they are now, for [`Index::get_in`].
    pub fn runs(&self) -> Result<Arc<Vec<Arc<Run>>>, StoreError> {
        self.runs.list()
    }

    /// [`Index::get`] of the key with hash `h` in `runs`.
    pub fn get_in(runs: &[Arc<Run>], h: u64, key: &[u8]) -> Result<Option<Loc>, StoreError> {
        RunSet::get_in(runs, h, key)
    }

    /// Applies `change` atomically (durable only after [`Index::persist`]): its entries become
    /// a new run, listed in the same batch as the watermark and counters (its removals are
    /// consumed; `change.put` is only borrowed, so a caller keeps its entries if this fails).
    /// Call [`Index::compact`] after.
    pub fn apply(&self, change: &mut Change) -> Result<(), StoreError> {
        let _edit = self.runs.edit()?;
        let mut list: Vec<_> = self.runs.list()?.to_vec();
        let with_removed: Vec<Entry>;
        let entries = if change.remove.is_empty() {
            change.put
        } else {
            let mut all = change.put.to_vec();
            for key in change.remove.drain(..) {
                all.push(Entry {
                    h: key_hash(&key),
                    key: Key::new(&key)
                        .ok_or_else(|| corrupt(&self.dir, "a key to remove has a bad length"))?,
                    found: Found::Removed,
                });
            }
            with_removed = all;
            &with_removed
        };
        if !entries.is_empty() {
            // A key both put and removed ends removed, as in one fjall batch before.
            list.push(self.runs.write_unsorted(entries)?);
        }
        let mut b = self.ks.batch();
        b.insert(&self.meta, RUNS, encode_ids(&RunSet::ids(&list)));
        if let Some(w) = change.watermark {
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&w.seg.to_le_bytes());
            v[4..12].copy_from_slice(&w.offset.to_le_bytes());
            v[12..].copy_from_slice(&w.ordinal.to_le_bytes());
            b.insert(&self.meta, WATERMARK, v);
        }
        if let Some(s) = change.stats {
            b.insert(&self.meta, BLOCKS, s.blocks.to_le_bytes());
            b.insert(&self.meta, BYTES, s.bytes.to_le_bytes());
        }
        b.commit().map_err(self.e())?;
        self.runs.install(list)
    }

    /// Starts the merges the runs' shape calls for (on a background thread); waits only if
    /// runs pile up faster than they are merged. Reports a background merge that failed.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.merger.after_change()
    }

    /// Waits for the background merges.
    #[cfg(test)]
    pub fn wait_merged(&self) {
        self.merger.wait_idle()
    }

    /// Makes every applied change durable.
    pub fn persist(&self) -> Result<(), StoreError> {
        self.ks.persist(PersistMode::SyncAll).map_err(self.e())
    }

    /// The watermark, if any was written.
    pub fn watermark(&self) -> Result<Option<Pos>, StoreError> {
        let Some(v) = self.meta.get(WATERMARK).map_err(self.e())? else {
            return Ok(None);
        };
        if v.len() != 16 {
            return Err(corrupt(&self.dir, "the watermark is malformed"));
        }
        Ok(Some(Pos {
            seg: u32::from_le_bytes([v[0], v[1], v[2], v[3]]),
            offset: u64::from_le_bytes([v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]]),
            ordinal: u32::from_le_bytes([v[12], v[13], v[14], v[15]]),
        }))
    }

    /// The counters as last applied.
    pub fn stats(&self) -> Result<DiskStats, StoreError> {
        let read = |k: &str| -> Result<u64, StoreError> {
            match self.meta.get(k).map_err(self.e())? {
                None => Ok(0),
                Some(v) => {
                    Ok(u64::from_le_bytes(v.as_ref().try_into().map_err(|_| {
                        corrupt(&self.dir, "a counter is malformed")
                    })?))
                }
            }
        };
        Ok(DiskStats {
            blocks: read(BLOCKS)?,
            bytes: read(BYTES)?,
        })
    }

    /// Number of block entries (a full scan of the index).
    pub fn count(&self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let mut live = self.runs.live()?;
        while live.next_entry()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Every block entry (in the runs' order: by a hash of the key).
    pub fn entries(&self) -> impl Iterator<Item = Result<(Vec<u8>, Loc), StoreError>> + '_ {
        let mut live = Some(self.runs.live());
        std::iter::from_fn(move || {
            let next = match live.as_mut()? {
                Ok(m) => m.next_entry().transpose()?,
                Err(_) => match live.take() {
                    Some(Err(e)) => Err(e),
                    _ => return None,
                },
            };
            match next {
                Ok(Entry {
                    key,
                    found: Found::At(loc),
                    ..
                }) => Some(Ok((key.to_vec(), loc))),
                // `live` yields present entries only.
                Ok(_) => None,
                Err(e) => {
                    live = None;
                    Some(Err(e))
                }
            }
        })
    }

    /// Adds and removes pins in one durable step.
    pub fn set_pins(&self, add: &[Cid], remove: &[Cid]) -> Result<(), StoreError> {
        let mut b = self.ks.batch();
        for c in remove {
            b.remove(&self.pins, c.to_bytes());
        }
        for c in add {
            b.insert(&self.pins, c.to_bytes(), []);
        }
        b.commit().map_err(self.e())?;
        self.persist()
    }

    /// Whether `cid` is pinned.
    pub fn is_pinned(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.pins.contains_key(cid.to_bytes()).map_err(self.e())
    }

    /// Every pin.
    pub fn pins(&self) -> Result<Vec<Cid>, StoreError> {
        let mut out = Vec::new();
        for k in self.pins.keys() {
            let k = k.map_err(self.e())?;
            let cid = Cid::try_from(k.as_ref())
                .map_err(|e| corrupt(&self.dir, format_args!("a pin is not a CID: {e}")))?;
            out.push(cid);
        }
        Ok(out)
    }
}

fn encode_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

/// Records `ids` (oldest first) as the runs making up the block map, durably.
fn record_runs(ks: &Keyspace, meta: &PartitionHandle, ids: &[u64]) -> Result<(), fjall::Error> {
    let mut b = ks.batch();
    b.insert(meta, RUNS, encode_ids(ids));
    b.commit()?;
    ks.persist(PersistMode::SyncAll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_round_trip() {
        let l = Loc {
            seg: 7,
            ordinal: 9,
            offset: 1 << 33,
            len: 5,
        };
        assert_eq!(Loc::decode(&l.encode()), Some(l));
        assert_eq!(Loc::decode(&[0; 19]), None);
    }

    #[test]
    fn changes_and_pins_persist() {
        let dir = tempfile::tempdir().unwrap();
        let l = Loc {
            seg: 1,
            ordinal: 0,
            offset: 16,
            len: 3,
        };
        let cid =
            crate::block::Block::new(crate::block::RAW, crate::block::HashAlg::Blake3, vec![1]).cid;
        {
            let ix = Index::open(
                &dir.path().join("index"),
                &dir.path().join("runs"),
                64 << 20,
            )
            .unwrap();
            ix.apply(&mut Change {
                put: &[Entry {
                    h: key_hash(b"k"),
                    key: Key::new(b"k").unwrap(),
                    found: Found::At(l),
                }],
                watermark: Some(Pos {
                    seg: 1,
                    offset: 99,
                    ordinal: 1,
                }),
                stats: Some(DiskStats {
                    blocks: 1,
                    bytes: 3,
                }),
                ..Change::default()
            })
            .unwrap();
            ix.set_pins(&[cid], &[]).unwrap();
        }
        let ix = Index::open(
            &dir.path().join("index"),
            &dir.path().join("runs"),
            64 << 20,
        )
        .unwrap();
        assert_eq!(ix.get(b"k").unwrap(), Some(l));
        assert_eq!(ix.watermark().unwrap().unwrap().offset, 99);
        assert_eq!(ix.stats().unwrap().bytes, 3);
        assert_eq!(ix.pins().unwrap(), vec![cid]);
        assert_eq!(ix.count().unwrap(), 1);
        ix.set_pins(&[], &[cid]).unwrap();
        assert!(!ix.is_pinned(&cid).unwrap());
    }

    fn loc(i: u32) -> Loc {
        Loc {
            seg: 1,
            ordinal: i,
            offset: 16 + u64::from(i),
            len: i,
        }
    }

    fn key(i: u32) -> Vec<u8> {
        let mut k = vec![0x1e, 0x20];
        k.extend_from_slice(blake3::hash(&i.to_le_bytes()).as_bytes());
        k
    }

    #[test]
    fn many_flushes_are_merged_in_the_background_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (ixd, runs) = (dir.path().join("index"), dir.path().join("runs"));
        {
            let ix = Index::open(&ixd, &runs, 1 << 20).unwrap();
            for batch in 0..20u32 {
                let put: Vec<Entry> = (batch * 100..batch * 100 + 100)
                    .map(|i| Entry {
                        h: key_hash(&key(i)),
                        key: Key::new(&key(i)).unwrap(),
                        found: Found::At(loc(i)),
                    })
                    .collect();
                // Every fifth batch also removes ten keys of the first.
                let remove = if batch % 5 == 4 {
                    (batch..batch + 10).map(key).collect()
                } else {
                    Vec::new()
                };
                let mut change = Change {
                    put: &put,
                    remove,
                    ..Change::default()
                };
                ix.apply(&mut change).unwrap();
                ix.compact().unwrap();
            }
            ix.wait_merged();
            // 20 small runs, merged four at a time.
            assert!(ix.runs().unwrap().len() < 8, "{}", ix.runs().unwrap().len());
            ix.persist().unwrap();
        }
        let ix = Index::open(&ixd, &runs, 1 << 20).unwrap();
        let removed = |i: u32| [4, 9, 14, 19].iter().any(|&b| (b..b + 10).contains(&i));
        for i in 0..2000 {
            let want = (!removed(i)).then(|| loc(i));
            assert_eq!(ix.get(&key(i)).unwrap(), want, "key {i}");
        }
        let expect = (0..2000).filter(|&i| !removed(i)).count() as u64;
        assert_eq!(ix.count().unwrap(), expect);
        assert_eq!(ix.entries().count() as u64, expect);
        // Only the listed runs are left on disk.
        let files = std::fs::read_dir(&runs).unwrap().count();
        assert_eq!(files, ix.runs().unwrap().len());
    }

    #[test]
    fn an_old_fjall_block_map_is_copied_into_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (ixd, runs) = (dir.path().join("index"), dir.path().join("runs"));
        {
            // The layout of stores made before the runs: entries in a partition "blocks".
            let ks = fjall::Config::new(&ixd).open().unwrap();
            let blocks = ks
                .open_partition(OLD_BLOCKS, PartitionCreateOptions::default())
                .unwrap();
            for i in 0..500 {
                blocks.insert(key(i), loc(i).encode()).unwrap();
            }
            ks.persist(PersistMode::SyncAll).unwrap();
        }
        std::fs::write(dir.path().join("index.complete"), b"").unwrap();
        {
            let ix = Index::open(&ixd, &runs, 1 << 20).unwrap();
            assert_eq!(ix.get(&key(123)).unwrap(), Some(loc(123)));
            assert_eq!(ix.count().unwrap(), 500);
        }
        let ix = Index::open(&ixd, &runs, 1 << 20).unwrap();
        assert!(!ix.ks.partition_exists(OLD_BLOCKS));
        assert_eq!(ix.get(&key(499)).unwrap(), Some(loc(499)));
        assert_eq!(ix.get(&key(500)).unwrap(), None);
    }
}
