//! Compares index designs for `DiskStore`: a map from multihash bytes (34 bytes for a
//! BLAKE3/SHA-256 multihash, random) to a block location (segment, offset, length).
//!
//! ```text
//! cargo run --release --manifest-path tools/index-bench/Cargo.toml -- DESIGN N DIR
//! ```
//! DESIGN is `redb` (a redb B-tree holding only locations, batches sorted, one transaction
//! per batch, durable one in 20 and at the end) or `fjall` (the fjall LSM tree, one write batch
//! per batch, journal persisted at the end), or `fjall-compacted` (the same, lookups after a
//! major compaction). Run each design in its own process so that the
//! peak RSS (VmHWM) is its own. Prints one line of `key=value` pairs.
//!
//! "Cold" lookups first evict the index files from the page cache with
//! `posix_fadvise(DONTNEED)` (dropping all caches needs a privilege this machine lacks), after
//! closing and reopening the index so that its own caches are empty too.

use std::path::{Path, PathBuf};
use std::time::Instant;

const BATCH: u64 = 10_000;
const LOOKUPS: u64 = 20_000;

/// Key `i`: a BLAKE3 multihash prefix (0x1e, 0x20) and a 32-byte pseudo-random digest.
fn key(i: u64) -> [u8; 34] {
    let mut k = [0u8; 34];
    k[0] = 0x1e;
    k[1] = 0x20;
    let h = blake3::hash(&i.to_le_bytes());
    k[2..].copy_from_slice(h.as_bytes());
    k
}

fn loc(i: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&((i / 10_000_000) as u32).to_le_bytes());
    v[4..12].copy_from_slice(&(i * 100).to_le_bytes());
    v[12..].copy_from_slice(&100u32.to_le_bytes());
    v
}

trait Index {
    fn insert_batch(&mut self, items: &mut Vec<([u8; 34], [u8; 16])>);
    fn finish(&mut self);
    fn get(&self, k: &[u8]) -> Option<Vec<u8>>;
    fn reopen(self: Box<Self>, dir: &Path) -> Box<dyn Index>;
    fn compact(&mut self) {}
}

struct Redb {
    db: redb::Database,
    batches: u64,
}
const T: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("index");

impl Redb {
    fn open(dir: &Path) -> Redb {
        std::fs::create_dir_all(dir).unwrap();
        let db = redb::Database::create(dir.join("index.redb")).unwrap();
        Redb { db, batches: 0 }
    }
}

impl Index for Redb {
    fn insert_batch(&mut self, items: &mut Vec<([u8; 34], [u8; 16])>) {
        items.sort_unstable();
        let mut w = self.db.begin_write().unwrap();
        // Pages freed by non-durable transactions are reused only after a durable one: one
        // durable commit in 20 keeps the file from growing without bound.
        self.batches += 1;
        if self.batches % 20 != 0 {
            w.set_durability(redb::Durability::None);
        }
        {
            let mut t = w.open_table(T).unwrap();
            for (k, v) in items.iter() {
                t.insert(&k[..], &v[..]).unwrap();
            }
        }
        w.commit().unwrap();
    }
    fn finish(&mut self) {
        let w = self.db.begin_write().unwrap();
        w.commit().unwrap();
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        let r = self.db.begin_read().unwrap();
        let t = r.open_table(T).unwrap();
        t.get(k).unwrap().map(|g| g.value().to_vec())
    }
    fn reopen(self: Box<Self>, dir: &Path) -> Box<dyn Index> {
        drop(self);
        evict(dir);
        Box::new(Redb {
            db: redb::Database::open(dir.join("index.redb")).unwrap(),
            batches: 0,
        })
    }
}

struct Fjall {
    ks: fjall::Keyspace,
    part: fjall::PartitionHandle,
}

impl Fjall {
    fn open(dir: &Path) -> Fjall {
        let ks = fjall::Config::new(dir).manual_journal_persist(true).open().unwrap();
        let part = ks
            .open_partition("index", fjall::PartitionCreateOptions::default())
            .unwrap();
        Fjall { ks, part }
    }
}

impl Index for Fjall {
    fn insert_batch(&mut self, items: &mut Vec<([u8; 34], [u8; 16])>) {
        let mut b = self.ks.batch();
        for (k, v) in items.iter() {
            b.insert(&self.part, &k[..], &v[..]);
        }
        b.commit().unwrap();
    }
    fn finish(&mut self) {
        self.ks.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        self.part.get(k).unwrap().map(|v| v.to_vec())
    }
    fn compact(&mut self) {
        self.part.major_compact().unwrap();
    }
    fn reopen(self: Box<Self>, dir: &Path) -> Box<dyn Index> {
        drop(self);
        // fjall flushes and compacts in background threads; give them a moment to stop.
        std::thread::sleep(std::time::Duration::from_secs(2));
        evict(dir);
        Box::new(Fjall::open(dir))
    }
}

/// Evicts every file under `dir` from the page cache.
fn evict(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            evict(&p);
        } else if let Ok(f) = std::fs::File::open(&p) {
            use std::os::fd::AsRawFd;
            let _ = f.sync_all();
            // SAFETY: a plain syscall on an open descriptor.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

fn du(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut alloc) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            let (a, b) = du(&e.path());
            apparent += a;
            alloc += b;
        } else {
            apparent += m.len();
            alloc += m.blocks() * 512;
        }
    }
    (apparent, alloc)
}

fn peak_rss_mb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn lookups(idx: &dyn Index, n: u64, seed: u64) -> (f64, f64) {
    let mut x = seed | 1;
    let mut lat = Vec::with_capacity(LOOKUPS as usize);
    for _ in 0..LOOKUPS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = x % n;
        let k = key(i);
        let t = Instant::now();
        let v = idx.get(&k);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(v.as_deref(), Some(&loc(i)[..]), "key {i}");
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    (p(0.5), p(0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: index-bench redb|fjall N DIR");
        std::process::exit(2);
    }
    let n: u64 = args[2].parse().unwrap();
    let dir = PathBuf::from(&args[3]);
    let _ = std::fs::remove_dir_all(&dir);
    let mut idx: Box<dyn Index> = match args[1].as_str() {
        "redb" => Box::new(Redb::open(&dir)),
        "fjall" | "fjall-compacted" => Box::new(Fjall::open(&dir)),
        other => panic!("unknown design {other}"),
    };
    let t = Instant::now();
    let mut items = Vec::with_capacity(BATCH as usize);
    let mut last_report = Instant::now();
    let mut i = 0;
    while i < n {
        items.clear();
        for j in i..(i + BATCH).min(n) {
            items.push((key(j), loc(j)));
        }
        idx.insert_batch(&mut items);
        i += BATCH;
        if last_report.elapsed().as_secs() >= 30 {
            eprintln!("{i} inserted, {:.0}/s", i as f64 / t.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
    }
    idx.finish();
    let secs = t.elapsed().as_secs_f64();
    let mut compact_s = 0.0;
    if args[1] == "fjall-compacted" {
        // Lookups against a fully compacted tree (one sorted run), as after a quiet period.
        let t = Instant::now();
        idx.compact();
        compact_s = t.elapsed().as_secs_f64();
    }
    let (warm50, warm99) = {
        // Warm: one pass to load, then measure.
        lookups(&*idx, n, 7);
        lookups(&*idx, n, 7)
    };
    let idx = idx.reopen(&dir);
    let (cold50, cold99) = lookups(&*idx, n, 99);
    let (apparent, alloc) = du(&dir);
    println!(
        "design={} n={n} insert_s={secs:.1} insert_per_s={:.0} peak_rss_mb={} \
         index_apparent_mb={} index_alloc_mb={} bytes_per_entry={:.1} \
         compact_s={compact_s:.1} warm_p50_us={warm50:.1} warm_p99_us={warm99:.1} cold_p50_us={cold50:.1} cold_p99_us={cold99:.1}",
        args[1],
        n as f64 / secs,
        peak_rss_mb(),
        apparent >> 20,
        alloc >> 20,
        alloc as f64 / n as f64,
    );
}
