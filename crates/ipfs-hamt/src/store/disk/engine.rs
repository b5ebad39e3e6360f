//! The store's machinery: appending records, reading them, making them durable (segments
//! fsynced, then the index batch that refers to them) and recovering after a crash.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use cid::Cid;

use super::error::{corrupt, io_err};
use super::index::{Change, Index, Loc, Pos};
use super::lock::StoreLock;
use super::overlay::Overlay;
use super::runs::{key_hash, Key};
use super::segment::{self, Segment, HEADER};
use super::DiskStats;
use crate::block::{verify, Block};
use crate::store::StoreError;

/// Unindexed entries held in memory before they are written to the index (segments fsynced
/// first); bounds memory and what recovery must scan.
#[cfg(not(test))]
const FLUSH_ENTRIES: usize = 1 << 19;
/// Small in tests, so that they go through many flushes and merges of runs.
#[cfg(test)]
const FLUSH_ENTRIES: usize = 1 << 10;
/// How many blocks ahead `put_many` asks for the bloom filter lines a lookup will probe.
const LOOK_AHEAD: usize = 8;
/// Bytes appended before the same happens.
const FLUSH_BYTES: u64 = 512 << 20;
/// Bytes per write to a segment.
const WRITE_PIECE: usize = 1 << 20;

/// A block to append: hash of its key ([`key_hash`]), key (multihash bytes), data.
pub(super) type Item = (u64, Key, Bytes);

/// What only the writer touches.
pub(super) struct WriteState {
    /// The segment records are appended to.
    pub active: Arc<Segment>,
    /// Its length (the next record's offset).
    pub end: u64,
    /// The next record's ordinal in it.
    pub ordinal: u32,
    /// Segments written since they were last fsynced.
    pub dirty: Vec<Arc<Segment>>,
    /// A segment was created since the directory was last synced.
    pub dir_dirty: bool,
    /// Bytes appended since the last flush.
    pub unflushed: u64,
    /// The counters, including unflushed blocks.
    pub stats: DiskStats,
    /// The records of a `put_many` before they are written; kept to reuse its pages (a fresh
    /// 16 MiB buffer per batch costs as many page faults as it has pages).
    pub buf: Vec<u8>,
    /// Position of the last `sync` a user asked for: `gc` keeps every record past it (blocks
    /// of an import still running belong to no root yet).
    pub user_synced: Pos,
}

impl WriteState {
    fn pos(&self) -> Pos {
        Pos {
            seg: self.active.id,
            offset: self.end,
            ordinal: self.ordinal,
        }
    }
}

/// An open store.
pub(super) struct Engine {
    pub path: PathBuf,
    pub seg_dir: PathBuf,
    /// Always present; taken only by `Drop`, which closes it on another thread.
    index: Option<Index>,
    pub segments: RwLock<HashMap<u32, Arc<Segment>>>,
    /// Appended but not yet in the index (their segment bytes may not be durable yet).
    pub overlay: RwLock<Overlay>,
    pub state: Mutex<WriteState>,
    /// Released once the index is closed.
    lock: Option<StoreLock>,
}

fn poisoned(path: &Path) -> StoreError {
    StoreError::Backend(format!(
        "store {}: a writer panicked earlier; reopen the store",
        path.display()
    ))
}

impl Engine {
    /// Opens the store whose lock is held, recovering records past the watermark.
    pub fn open(path: &Path, lock: StoreLock, cache_bytes: u64) -> Result<Engine, StoreError> {
        let seg_dir = path.join("segments");
        std::fs::create_dir_all(&seg_dir).map_err(io_err(&seg_dir, "creating"))?;
        let index = Index::open(&path.join("index"), &path.join("runs"), cache_bytes)?;
        let mut ids = segment::list(&seg_dir)?;
        let watermark = index.watermark()?;
        if ids.is_empty() {
            if watermark.is_some() {
                return Err(corrupt(path, "its segment files are missing"));
            }
            Segment::create(&seg_dir, 1)?;
            segment::sync_dir(&seg_dir);
            ids.push(1);
        }
        let wm = watermark.unwrap_or(Pos {
            seg: ids[0],
            offset: segment::FILE_MAGIC.len() as u64,
            ordinal: 0,
        });
        let mut segments = HashMap::new();
        for &id in &ids {
            segments.insert(id, Arc::new(Segment::open(&seg_dir, id)?));
        }
        if !segments.contains_key(&wm.seg) {
            return Err(corrupt(
                &seg_dir,
                format_args!("segment {} is missing", segment::file_name(wm.seg)),
            ));
        }
        let mut stats = index.stats()?;
        let mut overlay = Overlay::default();
        let (mut end, mut ordinal) = (0, 0);
        let last = *ids.last().unwrap_or(&wm.seg);
        for &id in ids.iter().filter(|&&id| id >= wm.seg) {
            let seg = &segments[&id];
            let (start, first) = if id == wm.seg {
                (wm.offset, wm.ordinal)
            } else {
                (segment::FILE_MAGIC.len() as u64, 0)
            };
            let (e, o) = recover_segment(seg, start, first, &index, &mut overlay, &mut stats)?;
            if id == last {
                (end, ordinal) = (e, o);
            }
        }
        let active = segments[&last].clone();
        let dirty = segments
            .values()
            .filter(|s| s.id >= wm.seg)
            .cloned()
            .collect();
        let state = WriteState {
            active,
            end,
            ordinal,
            dirty,
            dir_dirty: false,
            unflushed: 0,
            stats,
            buf: Vec::new(),
            user_synced: Pos {
                seg: last,
                offset: end,
                ordinal,
            },
        };
        let engine = Engine {
            path: path.to_path_buf(),
            seg_dir,
            index: Some(index),
            segments: RwLock::new(segments),
            overlay: RwLock::new(overlay),
            state: Mutex::new(state),
            lock: Some(lock),
        };
        {
            let mut st = engine.lock_state()?;
            engine.flush(&mut st, true)?;
        }
        Ok(engine)
    }

    /// The index.
    pub fn index(&self) -> &Index {
        match &self.index {
            Some(ix) => ix,
            // Only `Drop` takes it, and nothing runs on an engine being dropped.
            None => unreachable!("the index of an open store is present"),
        }
    }

    pub fn lock_state(&self) -> Result<MutexGuard<'_, WriteState>, StoreError> {
        self.state.lock().map_err(|_| poisoned(&self.path))
    }

    /// Where `key` is, if present.
    pub fn locate(&self, key: &[u8]) -> Result<Option<Loc>, StoreError> {
        let h = key_hash(key);
        if let Some(l) = self
            .overlay
            .read()
            .map_err(|_| poisoned(&self.path))?
            .get(h, key)
        {
            return Ok(Some(l));
        }
        // The hash is already known: not `Index::get`, which would compute it again.
        Index::get_in(&self.index().runs()?, h, key)
    }

    pub fn segment(&self, id: u32) -> Result<Arc<Segment>, StoreError> {
        self.segments
            .read()
            .map_err(|_| poisoned(&self.path))?
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                corrupt(
                    &self.seg_dir,
                    format_args!("segment {} is missing", segment::file_name(id)),
                )
            })
    }

    /// Reads the data at `loc` (unverified), for a key of `key_len` bytes.
    pub fn read_at(&self, loc: &Loc, key_len: usize) -> Result<Vec<u8>, StoreError> {
        let seg = self.segment(loc.seg)?;
        let at = loc.offset + HEADER + key_len as u64;
        let len = seg.len()?;
        if at.saturating_add(u64::from(loc.len)) > len {
            return Err(corrupt(
                &seg.path,
                "an index entry points past the end of the segment (truncated or damaged)",
            ));
        }
        let mut data = vec![0u8; loc.len as usize];
        seg.file
            .read_exact_at(&mut data, at)
            .map_err(io_err(&seg.path, "reading"))?;
        Ok(data)
    }

    /// The verified block `cid`.
    pub fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let key = cid.hash().to_bytes();
        let loc = self.locate(&key)?.ok_or(StoreError::NotFound(*cid))?;
        let data = match self.read_at(&loc, key.len()) {
            Ok(data) => data,
            Err(e) => {
                let gone = self
                    .segments
                    .read()
                    .is_ok_and(|m| !m.contains_key(&loc.seg));
                if !gone {
                    return Err(e);
                }
                // A gc moved the block and deleted its old segment since the lookup: look again.
                let loc = self.locate(&key)?.ok_or(StoreError::NotFound(*cid))?;
                self.read_at(&loc, key.len())?
            }
        };
        verify(cid, &data)?;
        Ok(Bytes::from(data))
    }

    /// Appends the blocks not yet present.
    pub fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        let mut items: Vec<Item> = Vec::with_capacity(blocks.len());
        for b in blocks {
            let key = Key::of_multihash(b.cid.hash()).ok_or_else(|| {
                StoreError::Backend(format!(
                    "store {}: a multihash of {} bytes is longer than {} bytes",
                    self.path.display(),
                    b.cid.hash().encoded_len(),
                    segment::MAX_KEY
                ))
            })?;
            items.push((key_hash(&key), key, b.data));
        }
        // Repeats within the batch, found by sorting (hash, index) pairs: 16 bytes moved per
        // swap instead of a whole item, and an integer comparison for nearly every pair.
        let mut order: Vec<(u64, u32)> = (0..items.len() as u32)
            .map(|i| (items[i as usize].0, i))
            .collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| items[a.1 as usize].1[..].cmp(&items[b.1 as usize].1[..]))
        });
        let mut repeat = vec![false; items.len()];
        for w in order.windows(2) {
            let (a, b) = (&items[w[0].1 as usize], &items[w[1].1 as usize]);
            if a.0 == b.0 && a.1 == b.1 {
                repeat[w[1].1 as usize] = true;
            }
        }
        let mut st = self.lock_state()?;
        let mut fresh = Vec::with_capacity(items.len());
        // One look at the run list and one overlay lock for the whole batch (this writer holds
        // the state lock: nothing else changes either meanwhile).
        let runs = self.index().runs()?;
        let ov = self.overlay.read().map_err(|_| poisoned(&self.path))?;
        let hashes: Vec<u64> = items.iter().map(|i| i.0).collect();
        for (n, ((h, key, data), repeat)) in items.into_iter().zip(repeat).enumerate() {
            // Nearly every key of a bulk load is new: each lookup then probes every run's
            // bloom filter, a cache miss apiece; asking for a later key's lines now overlaps
            // those misses.
            if let Some(&ahead) = hashes.get(n + LOOK_AHEAD) {
                for r in runs.iter() {
                    r.prefetch(ahead);
                }
            }
            if repeat {
                continue;
            }
            if u32::try_from(data.len()).is_err() {
                return Err(StoreError::Backend(format!(
                    "store {}: a block of {} bytes is too large (4 GiB at most)",
                    self.path.display(),
                    data.len()
                )));
            }
            if ov.get(h, &key).is_none() && Index::get_in(&runs, h, &key)?.is_none() {
                fresh.push((h, key, data));
            }
        }
        drop(ov);
        self.append(&mut st, fresh)?;
        if self.overlay_len()? >= FLUSH_ENTRIES || st.unflushed >= FLUSH_BYTES {
            self.flush(&mut st, false)?;
        }
        Ok(())
    }

    fn overlay_len(&self) -> Result<usize, StoreError> {
        Ok(self.overlay.read().map_err(|_| poisoned(&self.path))?.len())
    }

    /// Appends records (the caller checked they are absent) and adds them to the overlay.
    pub fn append(&self, st: &mut WriteState, items: Vec<Item>) -> Result<(), StoreError> {
        let mut buf = std::mem::take(&mut st.buf);
        buf.clear();
        let mut entries = Vec::with_capacity(items.len());
        let (mut end, mut ordinal) = (st.end, st.ordinal);
        let mut added = DiskStats::default();
        for (h, key, data) in items {
            let len = segment::record_len(key.len(), data.len());
            if end + len > segment::ROLL_AT && end > segment::FILE_MAGIC.len() as u64 {
                self.write_out(st, &buf, end, ordinal)?;
                self.publish(&mut entries, added, st)?;
                added = DiskStats::default();
                buf.clear();
                self.roll(st)?;
                (end, ordinal) = (st.end, st.ordinal);
            }
            let loc = Loc {
                seg: st.active.id,
                ordinal,
                offset: end,
                len: data.len() as u32,
            };
            segment::encode(&mut buf, &key, &data);
            end += len;
            ordinal += 1;
            added.blocks += 1;
            added.bytes += data.len() as u64;
            entries.push((h, key, loc));
        }
        self.write_out(st, &buf, end, ordinal)?;
        self.publish(&mut entries, added, st)?;
        // Kept for the next batch unless it is unusually large.
        if buf.capacity() <= 64 << 20 {
            st.buf = buf;
        }
        Ok(())
    }

    /// Writes `buf` at the active segment's end; on success moves the end to `end`.
    fn write_out(
        &self,
        st: &mut WriteState,
        buf: &[u8],
        end: u64,
        ordinal: u32,
    ) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        // A failed write (disk full) leaves at most a partial record past `st.end`, which the
        // next write overwrites and recovery cuts off.
        // In pieces: one 16 MiB `pwrite` cost this VM 7x the kernel time of the same bytes
        // in 1 MiB writes (`dd bs=16M` vs `bs=1M` after a pause: 0.29 s vs 0.04 s of system
        // time for 100 MB, all of it copying into freshly allocated large page-cache folios).
        let mut at = st.end;
        for piece in buf.chunks(WRITE_PIECE) {
            st.active
                .file
                .write_all_at(piece, at)
                .map_err(io_err(&st.active.path, "writing"))?;
            at += piece.len() as u64;
        }
        if !st.dirty.iter().any(|s| s.id == st.active.id) {
            st.dirty.push(st.active.clone());
        }
        st.end = end;
        st.ordinal = ordinal;
        st.unflushed += buf.len() as u64;
        Ok(())
    }

    fn publish(
        &self,
        entries: &mut Vec<(u64, Key, Loc)>,
        added: DiskStats,
        st: &mut WriteState,
    ) -> Result<(), StoreError> {
        let mut ov = self.overlay.write().map_err(|_| poisoned(&self.path))?;
        ov.reserve_total(FLUSH_ENTRIES);
        for (h, key, loc) in entries.drain(..) {
            ov.insert(h, key, loc);
        }
        st.stats.blocks += added.blocks;
        st.stats.bytes += added.bytes;
        Ok(())
    }

    /// Starts a new active segment.
    pub fn roll(&self, st: &mut WriteState) -> Result<(), StoreError> {
        let id = st.active.id.checked_add(1).ok_or_else(|| {
            StoreError::Backend(format!("store {}: out of segment ids", self.path.display()))
        })?;
        let seg = Arc::new(Segment::create(&self.seg_dir, id)?);
        self.segments
            .write()
            .map_err(|_| poisoned(&self.path))?
            .insert(id, seg.clone());
        st.dirty.push(seg.clone());
        st.dir_dirty = true;
        st.active = seg;
        st.end = segment::FILE_MAGIC.len() as u64;
        st.ordinal = 0;
        Ok(())
    }

    /// Fsyncs the segments written since the last flush, then writes the in-memory entries,
    /// the watermark and the counters to the index in one batch (and makes it durable if
    /// `persist`).
    pub fn flush(&self, st: &mut WriteState, persist: bool) -> Result<(), StoreError> {
        self.flush_with(st, persist, Vec::new())
    }

    /// [`Engine::flush`], also removing `remove` from the index in the same batch.
    pub fn flush_with(
        &self,
        st: &mut WriteState,
        persist: bool,
        remove: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        for seg in st.dirty.drain(..) {
            seg.file.sync_data().map_err(io_err(&seg.path, "syncing"))?;
        }
        if st.dir_dirty {
            segment::sync_dir(&self.seg_dir);
            st.dir_dirty = false;
        }
        let mut ov = self.overlay.write().map_err(|_| poisoned(&self.path))?;
        let mut change = Change {
            put: ov.entries(),
            remove,
            watermark: Some(st.pos()),
            stats: Some(st.stats),
        };
        // On failure the entries stay in the overlay, readable, for the next flush.
        self.index().apply(&mut change)?;
        ov.clear();
        drop(ov);
        st.unflushed = 0;
        if persist {
            self.index().persist()?;
        }
        // Readers need not wait for merges: the overlay lock is released.
        self.index().compact()
    }

    /// What a user's `sync` does.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut st = self.lock_state()?;
        self.flush(&mut st, true)?;
        st.user_synced = st.pos();
        Ok(())
    }
}

impl Drop for Engine {
    /// Flushes (best effort: what was put is then indexed at once on the next open, without a
    /// scan), then closes the index: here, or on another thread if
    /// [`set_close_in_background`](super::set_close_in_background) asked for it (fjall's close
    /// waits for its background threads, up to a quarter of a second, which a command about to
    /// exit need not spend; an exit mid-close is as safe as a crash). The store lock is held
    /// until the close ends; an open of the same store in this process waits for it, one in
    /// another process too (see [`closing`] and the lock file's "closing" state).
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.lock() {
            let _ = self.flush(&mut st, true);
        }
        let (index, mut lock) = (self.index.take(), self.lock.take());
        if !closing::IN_BACKGROUND.load(std::sync::atomic::Ordering::Relaxed) {
            drop((index, lock));
            return;
        }
        if let Some(l) = &mut lock {
            l.mark_closing();
        }
        closing::close_later(&self.path, move || drop((index, lock)));
    }
}

/// Stores of this process whose index is being closed.
pub(super) mod closing {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::thread::JoinHandle;

    static CLOSING: Mutex<Vec<(PathBuf, JoinHandle<()>)>> = Mutex::new(Vec::new());

    /// Whether stores close their index on a background thread.
    pub static IN_BACKGROUND: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);

    fn key(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// Runs `close` on a new thread, registered under `path`.
    pub fn close_later(path: &Path, close: impl FnOnce() + Send + 'static) {
        let Ok(mut list) = CLOSING.lock() else {
            close();
            return;
        };
        list.retain(|(_, h)| !h.is_finished());
        // Without a thread to be had, the failed spawn drops the closure: the close runs here.
        if let Ok(h) = std::thread::Builder::new()
            .name("ipfs-hamt-close".into())
            .spawn(close)
        {
            list.push((key(path), h));
        }
    }

    /// Waits until every close of the store at `path` started by this process has ended.
    pub fn wait_for(path: &Path) {
        let k = key(path);
        let pending: Vec<JoinHandle<()>> = match CLOSING.lock() {
            Ok(mut list) => {
                let (mine, rest) = std::mem::take(&mut *list)
                    .into_iter()
                    .partition(|(p, _)| *p == k);
                *list = rest;
                mine.into_iter().map(|(_, h)| h).collect()
            }
            Err(_) => Vec::new(),
        };
        for h in pending {
            let _ = h.join();
        }
    }
}

/// Scans `seg` from `start`: indexes whole records not yet indexed, cuts off a torn or damaged
/// tail. Returns the end and the next ordinal.
fn recover_segment(
    seg: &Segment,
    start: u64,
    first: u32,
    index: &Index,
    overlay: &mut Overlay,
    stats: &mut DiskStats,
) -> Result<(u64, u32), StoreError> {
    let len = seg.len()?;
    if len < start {
        return Err(corrupt(
            &seg.path,
            "the segment is shorter than its indexed part (truncated)",
        ));
    }
    let (mut off, mut ordinal) = (start, first);
    // Recovery only adds to the overlay: the runs stay as they are throughout.
    let runs = index.runs()?;
    while off < len {
        let Some((h, body)) = seg.read_record(off, len)? else {
            break;
        };
        let (key, data) = body.split_at(usize::from(h.key_len));
        if !h.check(key, data) {
            break;
        }
        let hash = key_hash(key);
        if overlay.get(hash, key).is_none() && Index::get_in(&runs, hash, key)?.is_none() {
            let key = Key::new(key)
                .ok_or_else(|| corrupt(&seg.path, "a record's key has a bad length"))?;
            overlay.insert(
                hash,
                key,
                Loc {
                    seg: seg.id,
                    ordinal,
                    offset: off,
                    len: h.data_len,
                },
            );
            stats.blocks += 1;
            stats.bytes += u64::from(h.data_len);
        }
        off += h.record_len();
        ordinal += 1;
    }
    if off < len {
        // A torn write (a crash before the fsync): nothing indexed refers to it.
        seg.file
            .set_len(off)
            .map_err(io_err(&seg.path, "cutting the torn tail of"))?;
    }
    Ok((off, ordinal))
}
