//! Throughput benchmark of the HAMT on the memory store (run in release mode):
//!
//! ```sh
//! cargo bench -p ipfs-hamt --bench hamt              # 100k and 1M keys, one process each
//! cargo bench -p ipfs-hamt --bench hamt -- 250000    # one size
//! ```
//!
//! Each size runs in its own process so that its peak RSS (VmHWM) is its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{HamtConfig, Reader, Writer};

const VALUE_LEN: usize = 100;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(VALUE_LEN, b'x');
    v
}

fn rate(n: u64, d: Duration) -> String {
    let r = n as f64 / d.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2}M/s", r / 1e6)
    } else {
        format!("{:.0}k/s", r / 1e3)
    }
}

/// A fixed pseudo-random permutation of 0..n so gets do not follow insertion order.
fn shuffled(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

async fn gets(r: &Reader, order: &[u64], tasks: usize) -> Duration {
    let order = Arc::new(order.to_vec());
    let t = Instant::now();
    let mut handles = Vec::new();
    for t_i in 0..tasks {
        let (r, order) = (r.clone(), order.clone());
        handles.push(tokio::spawn(async move {
            for &i in order.iter().skip(t_i).step_by(tasks) {
                let v = r.get(&format!("key-{i}")).await.expect("get");
                assert!(v.is_some(), "key-{i} missing");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    t.elapsed()
}

async fn run(n: u64) {
    let store = Arc::new(MemoryStore::new());
    let config = HamtConfig::default();
    let mut w = Writer::new(store.clone(), config.clone()).expect("writer");
    let t = Instant::now();
    for i in 0..n {
        w.insert(&format!("key-{i}"), value(i))
            .await
            .expect("insert");
    }
    let insert = t.elapsed();
    let rss_after_insert = rss_mb();
    let t = Instant::now();
    let root = w.commit().await.expect("commit");
    let commit = t.elapsed();
    let rss_after_commit = rss_mb();
    drop(w);
    let order = shuffled(n);

    let cold_reader = Reader::new(store.clone(), root, config.clone()).expect("reader");
    let cold = gets(&cold_reader, &order, 1).await;
    let warm = gets(&cold_reader, &order, 1).await;
    let warm2 = gets(&cold_reader, &order, 2).await;
    let t = Instant::now();
    let count = cold_reader
        .keys()
        .try_fold(0u64, |c, _| async move { Ok(c + 1) })
        .await
        .expect("keys");
    let keys_time = t.elapsed();
    assert_eq!(count, n);

    eprintln!("[{n}] RSS after inserts {rss_after_insert:.0} MB, after commit {rss_after_commit:.0} MB, end {:.0} MB", rss_mb());
    println!(
        "| {n} | {} | {:.3} s | {} | {} | {} | {} | {:.0} MB | {} blocks, {:.0} MB |",
        rate(n, insert),
        commit.as_secs_f64(),
        rate(n, cold),
        rate(n, warm),
        rate(n, warm2),
        rate(n, keys_time),
        peak_rss_mb(),
        store.len(),
        store.total_bytes() as f64 / 1e6,
    );
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if args.len() == 1 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        rt.block_on(run(args[0]));
        return;
    }
    let sizes = if args.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        args
    };
    println!("| keys | inserts | commit | cold gets (1 task) | warm gets (1 task) | warm gets (2 tasks) | keys() | peak RSS | store |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("current exe");
    for n in sizes {
        let status = std::process::Command::new(&exe)
            .arg(n.to_string())
            .status()
            .expect("spawn bench child");
        assert!(status.success(), "bench child for {n} failed");
    }
}
