//! The Rust work behind Python's `HAMT.set` on `InMemoryCAS`, per key:
//!
//! ```sh
//! cargo run --release -p ipfs-hamt --example insert_cost -- 100000 [rounds]
//! ```
//!
//! Repeats exactly what the `ipfs_hamt` package's set worker (`crates/ipfs-hamt-py/src/
//! pipeline.rs`) does with a batch of 512 queued sets: the keys and values back to back in one
//! buffer, each value hashed into a raw BLAKE3 block that is a slice of that buffer, one
//! `put_many` into a `MemoryStore`, then `insert_pointer` for each key, in order. The workload
//! is `bench_pyhamt.py`'s (keys `key-{i}`, 100-byte values, `max_bucket_size` 4, ids as bare
//! multihashes like py-hamt's `InMemoryCAS`). Prints the median ns per key over the rounds,
//! each phase apart, and the root (the same for every version of the code).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipfs_hamt::block::{Block, HashAlg, RAW};
use ipfs_hamt::node::IdEncoding;
use ipfs_hamt::store::{BlockStore, MemoryStore};
use ipfs_hamt::{HamtConfig, Writer};

const BATCH: usize = 512;

/// One queued batch: keys and values back to back, and their lengths.
type Batch = (Vec<u8>, Vec<(usize, usize)>);

/// `bench_pyhamt.py`'s `value_for`.
fn value_for(i: usize, size: usize) -> Vec<u8> {
    let v = format!("value-{i:012}-").into_bytes();
    v.iter().copied().cycle().take(size).collect()
}

/// One round: returns (blocks, put_many, insert) times and the root.
fn round(rt: &tokio::runtime::Runtime, n: usize) -> (Duration, Duration, Duration, String) {
    // The queued batches, built before the clock starts (Python's side of the work).
    let batches: Vec<Batch> = (0..n)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|is| {
            let mut data = Vec::new();
            let mut lens = Vec::new();
            for &i in is {
                let key = format!("key-{i}");
                let value = value_for(i, 100);
                data.extend_from_slice(key.as_bytes());
                data.extend_from_slice(&value);
                lens.push((key.len(), value.len()));
            }
            (data, lens)
        })
        .collect();
    let config = HamtConfig {
        max_bucket_size: 4,
        bucket_limit: 1024,
        ids: IdEncoding::Multihash,
        block_hash: HashAlg::Blake3,
        ..HamtConfig::default()
    };
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), config).unwrap();
    let (mut t_blocks, mut t_put, mut t_insert) = Default::default();
    rt.block_on(async {
        for (data, lens) in batches {
            let t = Instant::now();
            let data = Bytes::from(data);
            let mut pointers = Vec::with_capacity(lens.len());
            let mut blocks = Vec::with_capacity(lens.len());
            let mut at = 0;
            for (klen, vlen) in lens {
                let block = Block::new(
                    RAW,
                    HashAlg::Blake3,
                    data.slice(at + klen..at + klen + vlen),
                );
                pointers.push((at..at + klen, block.cid));
                blocks.push(block);
                at += klen + vlen;
            }
            t_blocks += t.elapsed();
            let t = Instant::now();
            store.put_many(blocks).await.unwrap();
            t_put += t.elapsed();
            let t = Instant::now();
            for (key, cid) in pointers {
                let key = String::from_utf8_lossy(&data[key]);
                w.insert_pointer(&key, cid).await.unwrap();
            }
            t_insert += t.elapsed();
        }
    });
    let root = rt.block_on(w.commit()).unwrap();
    (t_blocks, t_put, t_insert, root.to_string())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results = Vec::new();
    let mut roots = Vec::new();
    for _ in 0..rounds {
        let (b, p, i, root) = round(&rt, n);
        let ns = |d: Duration| d.as_nanos() as f64 / n as f64;
        let r = (ns(b), ns(p), ns(i), ns(b + p + i));
        println!(
            "round: blocks {:.0} + put_many {:.0} + insert {:.0} = {:.0} ns/key",
            r.0, r.1, r.2, r.3
        );
        results.push(r);
        roots.push(root);
    }
    let median = |f: fn(&(f64, f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median over {rounds} rounds, {n} keys: blocks {:.0} + put_many {:.0} + insert {:.0}; total {:.0} ns/key",
        median(|r| r.0),
        median(|r| r.1),
        median(|r| r.2),
        median(|r| r.3)
    );
    roots.dedup();
    println!("root {}", roots.join(" / "));
}
