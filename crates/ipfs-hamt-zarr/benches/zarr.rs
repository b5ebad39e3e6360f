//! zarrs writing and reading 100 MB of float32 in 5,000 chunks through the HAMT, the shape of
//! py-hamt's `bench_pyhamt.py zarr` (shape 100x500x500, chunks 1x100x50, bytes + zstd level 0,
//! no checksum), on the memory and the disk store.
//!
//! ```sh
//! cargo bench -p ipfs-hamt-zarr --bench zarr                # memory and disk
//! cargo bench -p ipfs-hamt-zarr --bench zarr -- disk        # one store
//! scripts/bench_zarr.sh                                      # with py-hamt in the same run
//! ```
//!
//! Write = zarrs encodes and stores every chunk, then the HAMT commits; read = a fresh store on
//! the root CID (empty caches), zarrs retrieves the whole array, compared with what was written.

use std::sync::Arc;
use std::time::Instant;

use ipfs_hamt::store::{DiskStore, MemoryStore, SharedStore};
use ipfs_hamt::HamtConfig;
use ipfs_hamt_zarr::{sync_store, HamtZarrStore};
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{Array, ArrayBuilder, DataType};

const SHAPE: [u64; 3] = [100, 500, 500];
const CHUNKS: [u64; 3] = [1, 100, 50];

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Roughly normal float32 values (sum of uniforms), like the Python bench's standard normal.
fn data() -> Vec<f32> {
    let n = SHAPE.iter().product::<u64>() as usize;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| next() + next() + next() + next() - 2.0)
        .collect()
}

fn run(kind: &str, data: &[f32]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks: SharedStore = match kind {
        "memory" => Arc::new(MemoryStore::new()),
        _ => Arc::new(DiskStore::open(dir.path().join("blocks.redb")).expect("disk store")),
    };
    let mb = (data.len() * 4) as f64 / 1e6;

    let t = Instant::now();
    let store =
        Arc::new(HamtZarrStore::create(blocks.clone(), HamtConfig::default()).expect("create"));
    let storage = Arc::new(sync_store(store.clone(), rt.handle().clone()));
    let array = ArrayBuilder::new(SHAPE.to_vec(), CHUNKS.to_vec(), DataType::Float32, 0f32)
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(0, false))])
        .build(storage.clone(), "/precip")
        .expect("array");
    array.store_metadata().expect("metadata");
    array
        .store_array_subset_elements(&array.subset_all(), data)
        .expect("write");
    let root = rt.block_on(store.commit()).expect("commit");
    let write = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let ro = Arc::new(HamtZarrStore::open(blocks, root, HamtConfig::default()).expect("open"));
    let storage = Arc::new(sync_store(ro, rt.handle().clone()));
    let array = Array::open(storage, "/precip").expect("open array");
    let back = array
        .retrieve_array_subset_elements::<f32>(&array.subset_all())
        .expect("read");
    let read = t.elapsed().as_secs_f64();
    assert!(back == data, "read back differs");

    println!(
        "| ipfs-hamt + zarrs, {kind} store | {mb:.0} | 5,000 | {write:.2} | {:.0} | {read:.2} | {:.0} | {:.0} |",
        mb / write,
        mb / read,
        peak_rss_mb()
    );
}

fn main() {
    let kinds: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a == "memory" || a == "disk")
        .collect();
    let kinds = if kinds.is_empty() {
        vec!["memory".to_string(), "disk".to_string()]
    } else {
        kinds
    };
    if kinds.len() > 1 {
        // One process per store so each peak RSS is its own.
        let exe = std::env::current_exe().expect("exe");
        for k in kinds {
            let ok = std::process::Command::new(&exe)
                .arg(&k)
                .status()
                .expect("spawn");
            assert!(ok.success(), "{k} run failed");
        }
        return;
    }
    let data = data();
    run(&kinds[0], &data);
}
