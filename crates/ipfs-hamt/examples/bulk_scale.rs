//! A bulk build at scale: N generated keys with 100-byte values into the disk store (or the
//! memory store), timing each phase and reporting the peak RSS.
//!
//! ```sh
//! cargo run --release -p ipfs-hamt --example bulk_scale -- --keys 10000000 --store /tmp/bs/store
//! cargo run --release -p ipfs-hamt --example bulk_scale -- --keys 1000000 --memory
//! cargo run --release -p ipfs-hamt --example bulk_scale -- --keys 1000000 --store S --writer
//! cargo run --release -p ipfs-hamt --example bulk_scale -- --keys 10000000 --null
//! cargo run --release -p ipfs-hamt --example bulk_scale -- --keys 10000000 --null --sharded 6250
//! cargo run --release -p ipfs-hamt --example bulk_scale -- --keys 10000000 --store S --reopen
//! ```
//!
//! Options: `--keys N` (default 1,000,000), `--value-bytes B` (100), `--budget MIB` (sort
//! memory, 64), `--spill DIR` (default: the temp dir), `--bucket-size M` (4), `--writer` (the
//! incremental `Writer` instead, for comparison), `--memory` (no disk store), `--null` (a
//! store that drops every block but JSON documents: the builder's own speed and memory),
//! `--sharded CPS` (a `BulkShardedBuilder` with CPS chunks per shard: an array `arr` of shape
//! `[keys]` with one-element chunks, its `zarr.json` first, then chunk keys `arr/c/{i}`),
//! `--reopen` (build nothing: open the store an earlier run built with the same `--keys` and
//! `--value-bytes`, report the time and memory to open it, and the latency of 20,000 random
//! verified gets of its values, warm and after evicting its files from the page cache). Keys are
//! `key/{i}`, values `value-{i}-` padded with `x`, so every value is a distinct block. The
//! store must be new (the disk size is reported as bytes per key).

// The allocator the CLI uses: glibc's per-thread arenas fragment under the store's batch
// allocations (peak RSS 684 MiB at 4 M keys, 489 MiB with MALLOC_ARENA_MAX=2).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ipfs_hamt::block::Block;
use ipfs_hamt::store::BlockStore;
use ipfs_hamt::{Cid, StoreError};
use std::time::Instant;

use ipfs_hamt::bulk::{BulkHamtBuilder, BulkOptions, BulkPhase, BulkShardedBuilder};
use ipfs_hamt::sharded::ShardedConfig;
use ipfs_hamt::store::disk::DiskOptions;
use ipfs_hamt::store::{DiskStore, MemoryStore, SharedStore};
use ipfs_hamt::{HamtConfig, Writer};

struct Args {
    keys: u64,
    value_bytes: usize,
    budget_mib: usize,
    spill: Option<String>,
    store: Option<String>,
    bucket: usize,
    writer: bool,
    null: bool,
    sharded: Option<u64>,
    reopen: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        keys: 1_000_000,
        value_bytes: 100,
        budget_mib: 64,
        spill: None,
        store: None,
        bucket: 4,
        writer: false,
        null: false,
        sharded: None,
        reopen: false,
    };
    let mut it = std::env::args().skip(1);
    let mut memory = false;
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
        match flag.as_str() {
            "--keys" => a.keys = num(val()?)?,
            "--value-bytes" => a.value_bytes = num(val()?)? as usize,
            "--budget" => a.budget_mib = num(val()?)? as usize,
            "--bucket-size" => a.bucket = num(val()?)? as usize,
            "--spill" => a.spill = Some(val()?),
            "--store" => a.store = Some(val()?),
            "--writer" => a.writer = true,
            "--sharded" => a.sharded = Some(num(val()?)?),
            "--memory" => memory = true,
            "--reopen" => a.reopen = true,
            "--null" => {
                memory = true;
                a.null = true;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.reopen && a.store.is_none() {
        return Err("--reopen needs --store PATH (a store an earlier run built)".into());
    }
    if a.store.is_none() && !memory {
        return Err("pass --store PATH (a new disk store) or --memory".into());
    }
    Ok(a)
}

/// A store that keeps nothing but JSON documents (the sharded build reads the array's
/// `zarr.json` back), and counts what it was given: the builder alone.
#[derive(Default)]
struct NullStore {
    blocks: AtomicU64,
    json: Mutex<HashMap<Cid, Bytes>>,
}

#[async_trait::async_trait]
impl BlockStore for NullStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let json = self
            .json
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        json.get(cid).cloned().ok_or(StoreError::NotFound(*cid))
    }
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        let json = self
            .json
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(json.contains_key(cid))
    }
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        self.blocks
            .fetch_add(blocks.len() as u64, Ordering::Relaxed);
        let mut json = self
            .json
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        for b in blocks.into_iter().filter(|b| b.data.first() == Some(&b'{')) {
            json.insert(b.cid, b.data);
        }
        Ok(())
    }
}

/// CPU seconds (user + system, every thread) this process has used so far.
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` fills the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Bytes this process has caused to be written to storage so far (`/proc/self/io`): with the
/// keys, the write amplification of each stretch of the build.
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes on disk under `path`: a store file, or every file of a store directory.
fn disk_bytes(path: &std::path::Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| disk_bytes(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn value(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(len.max(v.len()), b'x');
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    if args.reopen {
        return rt.block_on(reopen(&args));
    }
    rt.block_on(async move {
        let (store, disk): (SharedStore, Option<Arc<DiskStore>>) = match &args.store {
            Some(p) => {
                // Opened as `import` opens it: a small index cache for a bulk writer.
                let options = DiskOptions {
                    index_cache_bytes: DiskOptions::WRITE_CACHE_BYTES,
                };
                let d = Arc::new(DiskStore::open_with(p, options)?);
                (d.clone(), Some(d))
            }
            None if args.null => (Arc::new(NullStore::default()), None),
            None => (Arc::new(MemoryStore::new()), None),
        };
        let config = HamtConfig {
            max_bucket_size: args.bucket,
            ..HamtConfig::default()
        };
        let start = Instant::now();
        let options = BulkOptions {
            memory_budget: args.budget_mib << 20,
            spill_dir: args
                .spill
                .clone()
                .map(Into::into)
                .unwrap_or_else(std::env::temp_dir),
        };
        let root = if let Some(cps) = args.sharded {
            let mut b =
                BulkShardedBuilder::new(store.clone(), config, cps, ShardedConfig::default(), options)?;
            let meta = format!(
                r#"{{"zarr_format": 3, "node_type": "array", "shape": [{}], "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": [1]}}}}}}"#,
                args.keys
            );
            b.add("arr/zarr.json", meta.into_bytes()).await?;
            for i in 0..args.keys {
                b.add(&format!("arr/c/{i}"), value(i, args.value_bytes)).await?;
            }
            println!("added: {:.2} s", start.elapsed().as_secs_f64());
            b.finish().await?
        } else if args.writer {
            let mut w = Writer::new(store.clone(), config)?;
            for i in 0..args.keys {
                w.insert(&format!("key/{i}"), value(i, args.value_bytes))
                    .await?;
            }
            println!("inserted: {:.2} s", start.elapsed().as_secs_f64());
            w.commit().await?
        } else {
            let mut b = BulkHamtBuilder::new(store.clone(), config, options)?;
            // The rate of each tenth of the keys: flat, or falling as the store grows?
            let tenth = (args.keys / 10).max(1);
            let mut lap = Instant::now();
            let mut written = written_bytes().unwrap_or(0);
            let mut cpu = cpu_seconds();
            for i in 0..args.keys {
                b.add(&format!("key/{i}"), value(i, args.value_bytes))
                    .await?;
                if (i + 1) % tenth == 0 {
                    let (now, cpu_now) = (written_bytes().unwrap_or(0), cpu_seconds());
                    println!(
                        "  keys {}..{}: {:.0} keys/s, {:.0} bytes written/key, {:.2} CPU us/key, \
                         peak RSS {:.0} MiB",
                        i + 1 - tenth,
                        i + 1,
                        tenth as f64 / lap.elapsed().as_secs_f64(),
                        now.saturating_sub(written) as f64 / tenth as f64,
                        (cpu_now - cpu) * 1e6 / tenth as f64,
                        common::peak_rss_mib().unwrap_or(f64::NAN)
                    );
                    (written, cpu) = (now, cpu_now);
                    lap = Instant::now();
                }
            }
            println!(
                "added (values written, {} runs spilled): {:.2} s",
                b.progress().runs,
                start.elapsed().as_secs_f64()
            );
            let t = start;
            let mut last = BulkPhase::Adding;
            b.on_progress(move |p| {
                // Once per phase (the callback also runs every few thousand keys).
                if p.phase != last {
                    last = p.phase;
                    println!(
                        "{:?} at {:.2} s ({} nodes), RSS {:.0} MiB, peak {:.0} MiB",
                        p.phase,
                        t.elapsed().as_secs_f64(),
                        p.nodes_written,
                        common::status_mib("VmRSS:").unwrap_or(f64::NAN),
                        common::peak_rss_mib().unwrap_or(f64::NAN)
                    );
                }
            });
            b.finish().await?
        };
        let secs = start.elapsed().as_secs_f64();
        println!("root {root}");
        println!(
            "{} keys in {secs:.2} s: {:.0} keys/s; peak RSS {:.0} MiB",
            args.keys,
            args.keys as f64 / secs,
            common::peak_rss_mib().unwrap_or(f64::NAN)
        );
        if let Some(d) = disk {
            let st = d.stats().await?;
            let file = disk_bytes(d.path());
            println!(
                "store: {} blocks, {} bytes of blocks, file {} bytes = {:.0} B/key",
                st.blocks,
                st.bytes,
                file,
                file as f64 / args.keys.max(1) as f64
            );
        }
        Ok(())
    })
}

/// p50 and p99 of 20,000 verified gets of random values, in microseconds.
async fn random_gets(
    store: &DiskStore,
    config: &HamtConfig,
    args: &Args,
    seed: u64,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let mut x = seed | 1;
    let mut lat = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let data = Bytes::from(value(x % args.keys.max(1), args.value_bytes));
        let (cid, _) = config.value_blocks(data.clone());
        let t = Instant::now();
        let got = store.get(&cid).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        if got != data {
            return Err(format!("{cid}: wrong bytes").into());
        }
    }
    Ok(common::p50_p99(&mut lat))
}

/// `--reopen`: the cost of opening a built store and of random gets from it.
async fn reopen(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let path = std::path::PathBuf::from(args.store.as_deref().unwrap_or_default());
    let config = HamtConfig::default();
    let t = Instant::now();
    let store = DiskStore::open(&path)?;
    let open_s = t.elapsed().as_secs_f64();
    let rss = common::status_mib("VmRSS:").unwrap_or(f64::NAN);
    let blocks = store.stats().await?.blocks;
    random_gets(&store, &config, args, 7).await?;
    let (w50, w99) = random_gets(&store, &config, args, 7).await?;
    drop(store);
    common::evict(&path);
    let t = Instant::now();
    let store = DiskStore::open(&path)?;
    let cold_open_s = t.elapsed().as_secs_f64();
    let (c50, c99) = random_gets(&store, &config, args, 99).await?;
    println!(
        "{blocks} blocks: open {open_s:.2} s (RSS after open {rss:.0} MiB), open with the files \
         evicted {cold_open_s:.2} s; get p50/p99 warm {w50:.1}/{w99:.1} us, cold \
         {c50:.1}/{c99:.1} us; peak RSS {:.0} MiB",
        common::peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
