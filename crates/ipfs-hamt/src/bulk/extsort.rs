//! External sort of (sort key, payload) records with a bounded memory budget.
//!
//! Records are packed into one buffer (no allocation per record) until the budget is reached;
//! the buffer is then sorted and written to a run file in a private temporary directory. At
//! the end the runs are merged (several passes if there are many, so few files are open at
//! once). Records with equal sort keys collapse to the one added last, like repeated inserts.
//!
//! Run files are read back with checked sizes: every length is bounded by the largest record
//! this sorter wrote, and the record count in the header must match, so a damaged or
//! truncated run is an [`Error::Spill`], never a panic or a huge allocation.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use crate::error::{Error, Result};

/// Magic bytes at the start of every run file.
const MAGIC: &[u8; 8] = b"HAMTRUN1";
/// Bytes of a record header in the buffer and in run files: key length, payload length
/// (u32 each) and the sequence number (u64).
const HEADER: usize = 16;
/// Most runs merged at once (each holds an open file and a read buffer).
const FAN_IN: usize = 64;
/// Read/write buffer of one run file.
const IO_BUF: usize = 64 << 10;

/// One merged record: its sort key and payload.
pub type Record = (Vec<u8>, Vec<u8>);

/// A record with its sequence number (its age: larger is newer).
type SeqRecord = (Vec<u8>, Vec<u8>, u64);

/// Distinguishes the spill directories of sorters in one process.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// An external sorter. See the module docs.
pub struct ExtSorter {
    budget: usize,
    base: PathBuf,
    dir: Option<PathBuf>,
    /// Packed records: header, key, payload.
    arena: Vec<u8>,
    /// Offsets of the records in `arena`.
    offsets: Vec<usize>,
    runs: Vec<PathBuf>,
    seq: u64,
    max_key: usize,
    max_payload: usize,
    records: u64,
}

impl std::fmt::Debug for ExtSorter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtSorter")
            .field("budget", &self.budget)
            .field("buffered", &self.offsets.len())
            .field("runs", &self.runs.len())
            .finish()
    }
}

fn spill_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Spill {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn u32_at(buf: &[u8], at: usize) -> usize {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b) as usize
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The first 8 bytes of `key` as a big-endian number (zero-padded): ordering by it agrees with
/// ordering by the key wherever the two differ.
fn prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// (key, payload, seq) of the record at `off` in a packed buffer written by [`ExtSorter::push`].
fn record_at(arena: &[u8], off: usize) -> (&[u8], &[u8], u64) {
    let klen = u32_at(arena, off);
    let plen = u32_at(arena, off + 4);
    let seq = u64_at(arena, off + 8);
    let k = off + HEADER;
    (&arena[k..k + klen], &arena[k + klen..k + klen + plen], seq)
}

impl ExtSorter {
    /// A sorter keeping about `budget` bytes of records in memory, spilling runs to a new
    /// directory under `base` (created on the first spill, removed on drop).
    pub fn new(budget: usize, base: PathBuf) -> Self {
        ExtSorter {
            budget: budget.max(1),
            base,
            dir: None,
            arena: Vec::new(),
            offsets: Vec::new(),
            runs: Vec::new(),
            seq: 0,
            max_key: 0,
            max_payload: 0,
            records: 0,
        }
    }

    /// Records added so far (duplicates included).
    pub fn len(&self) -> u64 {
        self.records
    }

    /// True if nothing was added.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds a record. Later records win over earlier ones with the same `key`.
    pub fn push(&mut self, key: &[u8], payload: &[u8]) -> Result<()> {
        let (klen, plen) = match (u32::try_from(key.len()), u32::try_from(payload.len())) {
            (Ok(k), Ok(p)) => (k, p),
            _ => {
                return Err(spill_err(
                    &self.base,
                    "a record over 4 GiB cannot be sorted",
                ))
            }
        };
        self.offsets.push(self.arena.len());
        self.arena.extend_from_slice(&klen.to_le_bytes());
        self.arena.extend_from_slice(&plen.to_le_bytes());
        self.arena.extend_from_slice(&self.seq.to_le_bytes());
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(payload);
        self.seq += 1;
        self.records += 1;
        self.max_key = self.max_key.max(key.len());
        self.max_payload = self.max_payload.max(payload.len());
        if self.arena.len() + self.offsets.len() * 8 >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the buffer by key (stable, so equal keys stay in the order added) and drops all
    /// but the last of each key.
    fn sort_buffer(&mut self) {
        let arena = &self.arena;
        // Sorted by the keys' first 8 bytes held beside each offset: for the random hashes the
        // builders sort by, nearly every comparison is one integer compare on contiguous
        // memory instead of two lookups into the arena and a memcmp. Ties fall back to the
        // whole key, then to the offset, which keeps equal keys in the order they came (the
        // loop below keeps the last).
        let mut keyed: Vec<(u64, usize)> = self
            .offsets
            .iter()
            .map(|&o| (prefix(record_at(arena, o).0), o))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| record_at(arena, a.1).0.cmp(record_at(arena, b.1).0))
                .then(a.1.cmp(&b.1))
        });
        let mut kept: Vec<usize> = Vec::with_capacity(self.offsets.len());
        for off in keyed.into_iter().map(|(_, o)| o) {
            match kept.last_mut() {
                Some(last) if record_at(arena, *last).0 == record_at(arena, off).0 => *last = off,
                _ => kept.push(off),
            }
        }
        self.offsets = kept;
    }

    fn spill_dir(&mut self) -> Result<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        for _ in 0..100 {
            let n = NEXT_DIR.fetch_add(1, AtomicOrdering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let d = self.base.join(format!(
                "ipfs-hamt-sort-{}-{n}-{nanos:x}",
                std::process::id()
            ));
            match std::fs::create_dir(&d) {
                Ok(()) => {
                    self.dir = Some(d.clone());
                    return Ok(d);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(spill_err(&d, e)),
            }
        }
        Err(spill_err(&self.base, "cannot create a spill directory"))
    }

    /// Writes the buffer as a sorted run.
    fn spill(&mut self) -> Result<()> {
        if self.offsets.is_empty() {
            return Ok(());
        }
        self.sort_buffer();
        let dir = self.spill_dir()?;
        let path = dir.join(format!("run-{}", self.runs.len()));
        let mut w = RunWriter::create(&path)?;
        for &off in &self.offsets {
            let (k, p, seq) = record_at(&self.arena, off);
            w.write(k, p, seq)?;
        }
        w.finish()?;
        self.runs.push(path);
        self.arena.clear();
        self.offsets.clear();
        Ok(())
    }

    /// Sorts everything added and returns the records in key order, one per key.
    pub fn finish(mut self) -> Result<Merged> {
        if self.runs.is_empty() {
            // Everything fits in memory: no file is written.
            self.sort_buffer();
            let arena = std::mem::take(&mut self.arena);
            let offsets = std::mem::take(&mut self.offsets);
            return Ok(Merged {
                source: Source::Memory {
                    arena,
                    offsets: offsets.into_iter(),
                },
                _sorter: self,
            });
        }
        self.spill()?;
        // Merge the oldest runs first, keeping the merged run in front: a run's records are
        // all older than those of the runs after it (sequence numbers decide anyway).
        let limits = (self.max_key, self.max_payload);
        let mut pass = 0usize;
        while self.runs.len() > FAN_IN {
            let group: Vec<PathBuf> = self.runs.drain(..FAN_IN).collect();
            let dir = self.spill_dir()?;
            let path = dir.join(format!("merged-{pass}"));
            pass += 1;
            let mut merger = Merger::open(&group, limits)?;
            let mut w = RunWriter::create(&path)?;
            while let Some((k, p, seq)) = merger.next()? {
                w.write(&k, &p, seq)?;
            }
            w.finish()?;
            for g in &group {
                let _ = std::fs::remove_file(g);
            }
            self.runs.insert(0, path);
        }
        let merger = Merger::open(&self.runs, limits)?;
        Ok(Merged {
            source: Source::Runs(merger),
            _sorter: self,
        })
    }
}

impl Drop for ExtSorter {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Writes one run file: magic, record count, records.
struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
    count: u64,
}

impl RunWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| spill_err(path, e))?;
        let mut out = BufWriter::with_capacity(IO_BUF, file);
        out.write_all(MAGIC)
            .and_then(|()| out.write_all(&0u64.to_le_bytes()))
            .map_err(|e| spill_err(path, e))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            out,
            count: 0,
        })
    }

    fn write(&mut self, key: &[u8], payload: &[u8], seq: u64) -> Result<()> {
        // Lengths fit in u32: `push` refused anything larger.
        let mut head = [0u8; HEADER];
        head[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[8..].copy_from_slice(&seq.to_le_bytes());
        self.out
            .write_all(&head)
            .and_then(|()| self.out.write_all(key))
            .and_then(|()| self.out.write_all(payload))
            .map_err(|e| spill_err(&self.path, e))?;
        self.count += 1;
        Ok(())
    }

    /// Writes the record count into the header.
    fn finish(self) -> Result<()> {
        let path = self.path;
        let mut file = self.out.into_inner().map_err(|e| spill_err(&path, e))?;
        file.seek(SeekFrom::Start(MAGIC.len() as u64))
            .and_then(|_| file.write_all(&self.count.to_le_bytes()))
            .map_err(|e| spill_err(&path, e))
    }
}

/// Reads one run file back, checking every size.
struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
    left: u64,
    limits: (usize, usize),
}

impl RunReader {
    fn open(path: &Path, limits: (usize, usize)) -> Result<Self> {
        let file = File::open(path).map_err(|e| spill_err(path, e))?;
        let mut input = BufReader::with_capacity(IO_BUF, file);
        let mut head = [0u8; 16];
        input
            .read_exact(&mut head)
            .map_err(|e| spill_err(path, format!("header: {e}")))?;
        if &head[..8] != MAGIC {
            return Err(spill_err(path, "not a run file (bad magic)"));
        }
        Ok(RunReader {
            path: path.to_path_buf(),
            input,
            left: u64_at(&head, 8),
            limits,
        })
    }

    fn next(&mut self) -> Result<Option<SeqRecord>> {
        if self.left == 0 {
            // The count says the run is over: anything after it is damage.
            let mut extra = [0u8; 1];
            return match self.input.read(&mut extra) {
                Ok(0) => Ok(None),
                Ok(_) => Err(spill_err(
                    &self.path,
                    "trailing bytes after the last record",
                )),
                Err(e) => Err(spill_err(&self.path, e)),
            };
        }
        let mut head = [0u8; HEADER];
        self.input
            .read_exact(&mut head)
            .map_err(|e| spill_err(&self.path, format!("record header: {e}")))?;
        let (klen, plen) = (u32_at(&head, 0), u32_at(&head, 4));
        if klen > self.limits.0 || plen > self.limits.1 {
            return Err(spill_err(
                &self.path,
                format!(
                    "record sizes {klen}/{plen} exceed the largest written ({}/{})",
                    self.limits.0, self.limits.1
                ),
            ));
        }
        let mut key = vec![0u8; klen];
        let mut payload = vec![0u8; plen];
        self.input
            .read_exact(&mut key)
            .and_then(|()| self.input.read_exact(&mut payload))
            .map_err(|e| spill_err(&self.path, format!("record body: {e}")))?;
        self.left -= 1;
        Ok(Some((key, payload, u64_at(&head, 8))))
    }
}

/// A head of one run in the merge heap: ordered by key, then sequence number (smallest
/// first, as `BinaryHeap` is a max-heap the order is reversed).
struct Head {
    /// [`prefix`] of `key`, compared first.
    prefix: u64,
    key: Vec<u8>,
    payload: Vec<u8>,
    seq: u64,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .prefix
            .cmp(&self.prefix)
            .then_with(|| other.key.cmp(&self.key))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A k-way merge of runs, one record per key (the newest).
struct Merger {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Head>,
}

impl Merger {
    fn open(paths: &[PathBuf], limits: (usize, usize)) -> Result<Self> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (run, p) in paths.iter().enumerate() {
            let mut r = RunReader::open(p, limits)?;
            if let Some((key, payload, seq)) = r.next()? {
                heap.push(Head {
                    prefix: prefix(&key),
                    key,
                    payload,
                    seq,
                    run,
                });
            }
            readers.push(r);
        }
        Ok(Merger { readers, heap })
    }

    fn advance(&mut self, run: usize) -> Result<()> {
        if let Some(r) = self.readers.get_mut(run) {
            if let Some((key, payload, seq)) = r.next()? {
                self.heap.push(Head {
                    prefix: prefix(&key),
                    key,
                    payload,
                    seq,
                    run,
                });
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<SeqRecord>> {
        let Some(mut best) = self.heap.pop() else {
            return Ok(None);
        };
        self.advance(best.run)?;
        // Later records of the same key replace it.
        while self
            .heap
            .peek()
            .is_some_and(|h| h.prefix == best.prefix && h.key == best.key)
        {
            if let Some(h) = self.heap.pop() {
                self.advance(h.run)?;
                if h.seq > best.seq {
                    best = h;
                }
            }
        }
        Ok(Some((best.key, best.payload, best.seq)))
    }
}

enum Source {
    Memory {
        arena: Vec<u8>,
        offsets: std::vec::IntoIter<usize>,
    },
    Runs(Merger),
}

/// The sorted records, one per key, read as they are needed.
pub struct Merged {
    source: Source,
    /// Kept so the spill directory lives until the merge is done.
    _sorter: ExtSorter,
}

impl std::fmt::Debug for Merged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merged").finish_non_exhaustive()
    }
}

impl Merged {
    /// The next record in key order.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        match &mut self.source {
            Source::Memory { arena, offsets } => Ok(offsets.next().map(|off| {
                let (k, p, _) = record_at(arena, off);
                (k.to_vec(), p.to_vec())
            })),
            Source::Runs(m) => Ok(m.next()?.map(|(k, p, _)| (k, p))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(mut m: Merged) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(r) = m.next_record().unwrap() {
            out.push(r);
        }
        out
    }

    /// The expected output: sorted by key, last payload per key.
    fn model(input: &[(Vec<u8>, Vec<u8>)]) -> Vec<Record> {
        let mut map = std::collections::BTreeMap::new();
        for (k, p) in input {
            map.insert(k.clone(), p.clone());
        }
        map.into_iter().collect()
    }

    fn input(n: u32, modulo: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let k = (i.wrapping_mul(2_654_435_761) % modulo)
                    .to_be_bytes()
                    .to_vec();
                (k, format!("v{i}").into_bytes())
            })
            .collect()
    }

    #[test]
    fn in_memory_and_spilled_sorts_agree_with_a_map() {
        let tmp = tempfile::tempdir().unwrap();
        let data = input(5000, 1500);
        for budget in [1 << 30, 4096, 64] {
            let mut s = ExtSorter::new(budget, tmp.path().to_path_buf());
            for (k, p) in &data {
                s.push(k, p).unwrap();
            }
            if budget == 64 {
                // Enough runs for a multi-pass merge.
                assert!(s.runs() > FAN_IN, "{} runs", s.runs());
            }
            assert_eq!(
                collect(s.finish().unwrap()),
                model(&data),
                "budget {budget}"
            );
        }
        // Spill directories are gone after the merge.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn empty_input() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ExtSorter::new(64, tmp.path().to_path_buf());
        assert!(collect(s.finish().unwrap()).is_empty());
    }

    /// Damages the first run of a spilling sorter with `damage` and returns the merge result.
    fn merge_damaged(damage: impl Fn(&mut Vec<u8>)) -> Result<Vec<Record>> {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = ExtSorter::new(2048, tmp.path().to_path_buf());
        for (k, p) in input(1000, 100_000) {
            s.push(&k, &p).unwrap();
        }
        let run = s.runs[0].clone();
        let mut bytes = std::fs::read(&run).unwrap();
        damage(&mut bytes);
        std::fs::write(&run, bytes).unwrap();
        let mut m = s.finish()?;
        let mut out = Vec::new();
        while let Some(r) = m.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn damaged_runs_are_errors() {
        // Truncated in the middle of a record.
        let e = merge_damaged(|b| b.truncate(b.len() - 3)).unwrap_err();
        assert!(matches!(e, Error::Spill { .. }), "{e}");
        // Truncated at a record boundary: the count does not match.
        let e = merge_damaged(|b| {
            let first = 16 + HEADER + u32_at(b, 16) + u32_at(b, 20);
            b.truncate(first);
        });
        assert!(matches!(e, Err(Error::Spill { .. })), "{e:?}");
        // A huge declared length is refused before any allocation.
        let e = merge_damaged(|b| b[16..20].copy_from_slice(&u32::MAX.to_le_bytes())).unwrap_err();
        assert!(e.to_string().contains("exceed"), "{e}");
        // Bad magic, and bytes after the last record.
        let e = merge_damaged(|b| b[0] ^= 1).unwrap_err();
        assert!(e.to_string().contains("magic"), "{e}");
        let e = merge_damaged(|b| b.push(0)).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }
}
