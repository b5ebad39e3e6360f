//! Measures the disk store (`DiskStore`): `put_many` rate, random `get` latency (warm and
//! with the store's files evicted from the page cache), and size on disk.
//!
//! ```text
//! cargo run --release -p ipfs-hamt --example disk_store_bench -- put DIR N [SIZE]
//! cargo run --release -p ipfs-hamt --example disk_store_bench -- size DIR MB [CHUNK]
//! ```
//! `put`: N blocks of SIZE bytes (default 100) in batches of 10,000, then `sync`; then 20,000
//! random verified gets, warm, and again after reopening with every file of the store evicted
//! (`posix_fadvise(DONTNEED)`: dropping all caches needs a privilege this machine lacks).
//! `size`: MB megabytes of CHUNK-byte blocks (default 20,000); prints `du` apparent and
//! allocated sizes against the data. DIR is replaced.

mod common;

use std::path::Path;
use std::time::Instant;

use ipfs_hamt::block::{Block, HashAlg, RAW};
use ipfs_hamt::store::{BlockStore, DiskStore};

const BATCH: u64 = 10_000;
const GETS: u64 = 20_000;

fn block(i: u64, size: usize) -> Block {
    let mut data = vec![0u8; size];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    data[..8.min(size)].copy_from_slice(&i.to_le_bytes()[..8.min(size)]);
    Block::new(RAW, HashAlg::Blake3, data)
}

/// (apparent, allocated) bytes of the files under `dir`.
fn du(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut a, mut b) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            let (x, y) = du(&e.path());
            a += x;
            b += y;
        } else {
            a += m.len();
            b += m.blocks() * 512;
        }
    }
    (a, b)
}

async fn gets(store: &DiskStore, n: u64, size: usize, seed: u64) -> (f64, f64) {
    let mut x = seed | 1;
    let mut lat = Vec::with_capacity(GETS as usize);
    for _ in 0..GETS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = block(x % n, size);
        let t = Instant::now();
        let got = store.get(&b.cid).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(got, b.data);
    }
    common::p50_p99(&mut lat)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: disk_store_bench put DIR N [SIZE] | size DIR MB [CHUNK]";
    let (Some(mode), Some(dir), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let _ = std::fs::remove_dir_all(dir);
    let n: u64 = n.parse().expect("N");
    match mode.as_str() {
        "put" => {
            let size: usize = args.get(4).map_or(100, |s| s.parse().expect("SIZE"));
            let store = DiskStore::open(dir).unwrap();
            let mut put_secs = 0.0;
            let t = Instant::now();
            let mut i = 0;
            while i < n {
                let batch: Vec<Block> = (i..(i + BATCH).min(n)).map(|j| block(j, size)).collect();
                let tp = Instant::now();
                store.put_many(batch).await.unwrap();
                put_secs += tp.elapsed().as_secs_f64();
                i += BATCH;
            }
            let ts = Instant::now();
            store.sync().await.unwrap();
            put_secs += ts.elapsed().as_secs_f64();
            let total = t.elapsed().as_secs_f64();
            let (warm50, warm99) = {
                gets(&store, n, size, 7).await;
                gets(&store, n, size, 7).await
            };
            drop(store);
            common::evict(dir);
            let store = DiskStore::open(dir).unwrap();
            let (cold50, cold99) = gets(&store, n, size, 99).await;
            let (apparent, alloc) = du(dir);
            println!(
                "n={n} size={size} put_many_per_s={:.0} (store time {put_secs:.1}s; with block \
                 creation {:.0}/s) warm_get_p50_us={warm50:.1} warm_get_p99_us={warm99:.1} \
                 cold_get_p50_us={cold50:.1} cold_get_p99_us={cold99:.1} store_apparent_mb={} \
                 store_alloc_mb={} peak_rss_mb={:.0}",
                n as f64 / put_secs,
                n as f64 / total,
                apparent >> 20,
                alloc >> 20,
                common::peak_rss_mib().unwrap_or(f64::NAN)
            );
        }
        "size" => {
            let chunk: usize = args.get(4).map_or(20_000, |s| s.parse().expect("CHUNK"));
            let count = n * 1_000_000 / chunk as u64;
            let store = DiskStore::open(dir).unwrap();
            let mut data_bytes = 0u64;
            let mut i = 0;
            while i < count {
                let batch: Vec<Block> =
                    (i..(i + 500).min(count)).map(|j| block(j, chunk)).collect();
                data_bytes += batch.iter().map(|b| b.data.len() as u64).sum::<u64>();
                store.put_many(batch).await.unwrap();
                i += 500;
            }
            store.sync().await.unwrap();
            drop(store);
            let (apparent, alloc) = du(dir);
            println!(
                "blocks={count} chunk={chunk} data_bytes={data_bytes} apparent={apparent} ({:.4}x) \
                 allocated={alloc} ({:.4}x)",
                apparent as f64 / data_bytes as f64,
                alloc as f64 / data_bytes as f64
            );
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
