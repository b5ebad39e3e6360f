//! The block map (multihash -> location) as a set of immutable sorted runs, newest last.
//!
//! Each flush of the store writes its in-memory entries as one new run (sorted by a 64-bit
//! hash of the key, then the key); runs of one size class are merged four at a time, so an
//! entry is rewritten about log4(N / 512 Ki) times and a lookup probes a few dozen runs at
//! most (at 10^8 entries, about a dozen). Only each run's fence index (16 bytes per 32 entries)
//! and bloom filter (14 bits per entry) stay in memory: ~2.3 bytes per entry. A lookup asks
//! the runs newest first; the first that knows the key (an entry or a removal) answers.
//!
//! Which runs make up the map is recorded by the caller (the index's metadata, in the same
//! atomic batch as the watermark): a run file not listed there is left over from a crash and
//! deleted on open. This replaced fjall for the block map: its memtable (a skiplist searched
//! once per block to skip duplicates and again to insert) capped `put_many` at ~200k blocks/s
//! and its memory grew ~20 bytes per entry (see BENCHMARKS.md).

mod bloom;
mod file;
mod merger;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub use file::Run;
pub use file::{key_hash, Entry, Found, Key};
use file::{RunReader, RunWriter};
pub use merger::{Commit, Merger};

use super::error::io_err;
use super::index::Loc;
use crate::store::StoreError;

/// Runs merged at once (runs of one size class).
const FANOUT: usize = 4;
/// Entries of the smallest size class (a flush of the store writes up to 512 Ki).
const BASE: u64 = 1 << 19;

/// How many entries ahead a gather in hash order asks for its entry.
const AHEAD: usize = 12;

/// Asks the CPU to start loading `e` (every cache line it may span) without waiting for it.
#[inline(always)]
pub(crate) fn prefetch<T>(e: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = (e as *const T).cast::<i8>();
        let size = std::mem::size_of::<T>().max(1);
        // SAFETY: SSE is part of every x86_64 CPU; a prefetch only hints (it never faults,
        // whatever the address) and nothing is read through the pointer.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            if size > 64 {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
            }
            if size > 1 {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(size - 1));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = e;
}

/// The size class of a run of `n` entries.
fn level(n: u64) -> u32 {
    let (mut l, mut cap) = (0, BASE);
    while n > cap {
        cap = cap.saturating_mul(FANOUT as u64);
        l += 1;
    }
    l
}

/// The runs of one store.
pub struct RunSet {
    dir: PathBuf,
    /// Oldest first.
    runs: RwLock<Arc<Vec<Arc<Run>>>>,
    next_id: AtomicU64,
    /// Held while the list is changed and the change recorded (a flush adding a run, a merge
    /// replacing runs), so that the recorded lists follow one another.
    edit: Mutex<()>,
}

fn poisoned() -> StoreError {
    StoreError::Backend("the index's run list lock is poisoned".into())
}

impl RunSet {
    /// Opens the runs `ids` (oldest first) in `dir`, creating it if absent; deletes every other
    /// run file there (left by a crash before the list naming it was written).
    pub fn open(dir: &Path, ids: &[u64]) -> Result<RunSet, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "creating"))?;
        let mut max = ids.iter().copied().max().unwrap_or(0);
        for e in std::fs::read_dir(dir).map_err(io_err(dir, "listing"))? {
            let e = e.map_err(io_err(dir, "listing"))?;
            let Some(id) = e.file_name().to_str().and_then(file::parse_name) else {
                continue;
            };
            max = max.max(id);
            if !ids.contains(&id) {
                let p = e.path();
                std::fs::remove_file(&p).map_err(io_err(&p, "removing the unused run"))?;
            }
        }
        let runs = ids
            .iter()
            .map(|&id| Run::open(dir, id).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RunSet {
            dir: dir.to_path_buf(),
            runs: RwLock::new(Arc::new(runs)),
            next_id: AtomicU64::new(max + 1),
            edit: Mutex::new(()),
        })
    }

    /// The current runs, oldest first.
    pub fn list(&self) -> Result<Arc<Vec<Arc<Run>>>, StoreError> {
        Ok(self.runs.read().map_err(|_| poisoned())?.clone())
    }

    /// Ids of `runs`, oldest first.
    pub fn ids(runs: &[Arc<Run>]) -> Vec<u64> {
        runs.iter().map(|r| r.id).collect()
    }

    /// Excludes other changes of the list until dropped.
    pub fn edit(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        self.edit.lock().map_err(|_| poisoned())
    }

    /// Puts `merged` in the place of `inputs` (side by side in the current list), records the
    /// new list with `commit`, then makes it current.
    pub fn replace(
        &self,
        inputs: &[Arc<Run>],
        merged: Option<Arc<Run>>,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        let _edit = self.edit()?;
        let cur = self.list()?;
        let at = inputs
            .first()
            .and_then(|first| cur.iter().position(|r| r.id == first.id));
        let Some(at) = at.filter(|&at| {
            cur.get(at..at + inputs.len())
                .is_some_and(|s| s.iter().zip(inputs).all(|(a, b)| a.id == b.id))
        }) else {
            return Err(StoreError::Backend(
                "the index's run list changed under a merge".into(),
            ));
        };
        let mut new = cur[..at].to_vec();
        new.extend(merged);
        new.extend_from_slice(&cur[at + inputs.len()..]);
        commit(&RunSet::ids(&new))?;
        self.install(new)
    }

    /// Makes `runs` the current set.
    pub fn install(&self, runs: Vec<Arc<Run>>) -> Result<(), StoreError> {
        *self.runs.write().map_err(|_| poisoned())? = Arc::new(runs);
        Ok(())
    }

    /// Where `key` is, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Loc>, StoreError> {
        RunSet::get_in(&self.list()?, key_hash(key), key)
    }

    /// Where the key with hash `h` is in `runs` (oldest first), if present.
    pub fn get_in(runs: &[Arc<Run>], h: u64, key: &[u8]) -> Result<Option<Loc>, StoreError> {
        for run in runs.iter().rev() {
            match run.get(h, key)? {
                Some(Found::At(loc)) => return Ok(Some(loc)),
                Some(Found::Removed) => return Ok(None),
                None => {}
            }
        }
        Ok(None)
    }

    /// Writes `entries` (in order, keys unique) as a new run, not yet in the set.
    pub fn write(&self, entries: &[Entry]) -> Result<Arc<Run>, StoreError> {
        self.write_iter(entries.len() as u64, entries.iter())
    }

    /// Writes `entries` (in order, keys unique, at most `capacity`) as a new run, not yet in
    /// the set.
    pub fn write_iter<'a>(
        &self,
        capacity: u64,
        entries: impl Iterator<Item = &'a Entry>,
    ) -> Result<Arc<Run>, StoreError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut w = RunWriter::create(&self.dir, id, capacity)?;
        for e in entries {
            w.push(e)?;
        }
        Ok(Arc::new(w.finish()?))
    }

    /// Writes `entries` (any order; a key present twice is written once, its removal winning)
    /// as a new run, not yet in the set. Sorts (hash, index) pairs rather than the entries:
    /// 16 bytes moved per swap instead of 128 (a flush sorts half a million), then gathers the
    /// entries in that order, fetching each a few places ahead: the entries are in insertion
    /// order, so nearly every one is a cache miss, and overlapping them is what makes the
    /// gather cheap.
    pub fn write_unsorted(&self, entries: &[Entry]) -> Result<Arc<Run>, StoreError> {
        let removed = |i: u32| matches!(entries[i as usize].found, Found::Removed);
        let mut order: Vec<(u64, u32)> = (0..entries.len() as u32)
            .map(|i| (entries[i as usize].h, i))
            .collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| entries[a.1 as usize].key[..].cmp(&entries[b.1 as usize].key[..]))
                .then_with(|| removed(b.1).cmp(&removed(a.1)))
        });
        let mut last: Option<&Entry> = None;
        let unique = order.iter().enumerate().filter_map(|(n, &(_, i))| {
            if let Some(&(_, ahead)) = order.get(n + AHEAD) {
                prefetch(&entries[ahead as usize]);
            }
            let e = &entries[i as usize];
            if last.is_some_and(|l| l.order() == e.order()) {
                return None;
            }
            last = Some(e);
            Some(e)
        });
        self.write_iter(entries.len() as u64, unique)
    }

    /// The merge the shape of `runs` calls for: the newest runs of one size class once there
    /// are [`FANOUT`] of them.
    pub fn plan(runs: &[Arc<Run>]) -> Option<Range<usize>> {
        let n = runs.len();
        let l = level(runs.last()?.entries);
        let mut i = n - 1;
        while i > 0 && level(runs[i - 1].entries) <= l {
            i -= 1;
        }
        (n - i >= FANOUT).then_some(i..n)
    }

    /// Merges `runs[range]` into one new run; returns the list with it in their place (not
    /// installed). Removals are dropped when nothing older remains to shadow.
    pub fn merge(
        &self,
        runs: &[Arc<Run>],
        range: Range<usize>,
    ) -> Result<Vec<Arc<Run>>, StoreError> {
        let merged = self.merge_runs(
            &runs[range.clone()],
            range.start > 0,
            &AtomicBool::new(false),
        )?;
        let mut out = runs[..range.start].to_vec();
        out.extend(merged);
        out.extend_from_slice(&runs[range.end..]);
        Ok(out)
    }

    /// Merges `inputs` (oldest first, side by side in a list) into one new run, `None` if
    /// nothing remains; keeps removals if `keep_removed` (older runs exist). Gives up, leaving
    /// no file, once `stop` is set.
    pub fn merge_runs(
        &self,
        inputs: &[Arc<Run>],
        keep_removed: bool,
        stop: &AtomicBool,
    ) -> Result<Option<Arc<Run>>, StoreError> {
        let capacity = inputs.iter().map(|r| r.entries).sum();
        let mut merged = Merged::new(inputs, keep_removed)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(file::file_name(id));
        let mut w = RunWriter::create(&self.dir, id, capacity)?;
        let mut n = 0u32;
        let discard = |w: RunWriter| {
            drop(w);
            std::fs::remove_file(&path).map_err(io_err(&path, "removing"))
        };
        while let Some(e) = merged.next_entry()? {
            w.push(&e)?;
            n = n.wrapping_add(1);
            if n % 65536 == 0 && stop.load(Ordering::Relaxed) {
                discard(w)?;
                return Ok(None);
            }
        }
        if w.len() == 0 {
            discard(w)?;
            return Ok(None);
        }
        Ok(Some(Arc::new(w.finish()?)))
    }

    /// Deletes the files of runs no longer in the set (open handles keep working).
    pub fn remove_files(&self, runs: &[Arc<Run>]) -> Result<(), StoreError> {
        for r in runs {
            std::fs::remove_file(r.path()).map_err(io_err(r.path(), "removing"))?;
        }
        super::segment::sync_dir(&self.dir);
        Ok(())
    }

    /// Every present entry of the set, in run order.
    pub fn live(&self) -> Result<Merged, StoreError> {
        Merged::new(&self.list()?, false)
    }
}

/// The entries of several runs merged in order, the newest run's entry winning.
pub struct Merged {
    /// Newest first, each with its next entry.
    sources: Vec<(RunReader, Option<Entry>)>,
    keep_removed: bool,
}

impl Merged {
    /// Merges `runs` (oldest first); removals are yielded only if `keep_removed`.
    pub fn new(runs: &[Arc<Run>], keep_removed: bool) -> Result<Merged, StoreError> {
        let mut sources = Vec::with_capacity(runs.len());
        for r in runs.iter().rev() {
            let mut rd = r.reader()?;
            let first = rd.next_entry()?;
            sources.push((rd, first));
        }
        Ok(Merged {
            sources,
            keep_removed,
        })
    }

    /// The next entry, `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, StoreError> {
        loop {
            let mut best: Option<usize> = None;
            for (i, (_, e)) in self.sources.iter().enumerate() {
                let Some(e) = e else { continue };
                let better = match best.and_then(|b| self.sources[b].1.as_ref()) {
                    Some(b) => e.order() < b.order(),
                    None => true,
                };
                if better {
                    best = Some(i);
                }
            }
            let Some(b) = best else { return Ok(None) };
            let (rd, slot) = &mut self.sources[b];
            let Some(e) = std::mem::replace(slot, rd.next_entry()?) else {
                return Ok(None);
            };
            // Older runs' entries for the same key are shadowed (a run holds a key once).
            for (rd, slot) in self.sources.iter_mut() {
                if slot.as_ref().is_some_and(|o| o.order() == e.order()) {
                    *slot = rd.next_entry()?;
                }
            }
            if self.keep_removed || matches!(e.found, Found::At(_)) {
                return Ok(Some(e));
            }
        }
    }
}
