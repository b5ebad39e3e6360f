//! The sharded layout (py-hamt's `ShardedZarrStore`, sharded_zarr_v2) on the memory and disk
//! stores, next to a plain Zarr directory: the Rust half of `scripts/bench_sharded.sh`.
//!
//! ```sh
//! cargo bench -p ipfs-hamt-zarr --bench sharded -- DIR [RUNS] [CPS]
//! ```
//!
//! DIR is the dataset xarray wrote with `to_zarr(DIR, group='0')` (`scripts/bench_sharded.py
//! gen DIR`): float32 `0/precip` [200, 250, 500] in chunks [1, 50, 100] (5,000 chunks, 100 MB)
//! plus its coordinates. Every figure is the median of RUNS (default 5) runs, each on a fresh
//! store; one JSON line per store kind, then one for the directory.
//!
//! * `write_files_s`: `ShardedWriter::set` of every file of `DIR/0` as key `0/<path>` (bytes
//!   already in memory; metadata first, as zarr writes), then `flush` (for the disk store this
//!   includes the durable commit). Gives py-hamt's root for the same dataset.
//! * `write_zarrs_s`: zarrs encodes the same f32 array (bytes + zstd level 0, as xarray) into
//!   a `DatasetZarrStore` on a new sharded v2 dataset at `0/precip`, then commit: the same work
//!   as xarray's `to_zarr` (encode, compress, store, flush), without the coordinates.
//! * `read_raw_s`: a new `DatasetReader` (default read mode `Auto`), `get` of every key
//!   (5,009 values, one task); `read_raw16_s` the same with 16 gets in flight.
//!   `read_zarrs_s`: a new `DatasetZarrStore::open_dataset` and zarrs
//!   decoding the whole `0/precip` (the work of xarray's `open_zarr(...).load()`).
//! * `point_*_s`: cold point series: lat 137, lon 311 over all 200 time steps = 200 chunks. A
//!   new reader with an empty shard cache (disk: the redb file is reopened, the OS page cache
//!   is warm), zarrs `Array::open` + `retrieve_array_subset_elements`; per read mode.
//!   `point_raw_*_s`: the same 200 chunk values by `DatasetReader::get` (no decoding), one
//!   task; `point_raw_warm_*_s`: the same 200 gets again on that reader (shards cached, the
//!   disk store's redb pages cached).
//! * directory: zarrs on the files of DIR (a minimal filesystem store: one `std::fs::read` per
//!   key, as zarrs' `FilesystemStore` does for whole values): `point_s` and `read_zarrs_s`
//!   the same way; `point_raw_s` 200 `std::fs::read`s; `write_zarrs_memorystore_s` zarrs
//!   encoding the array into zarrs' own in-memory store (no hashing, no blocks: the floor of
//!   `write_zarrs_s`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ipfs_hamt::dataset::{DatasetConfig, DatasetReader, DatasetWriter, LayoutOptions};
use ipfs_hamt::sharded::{ReadMode, ShardedConfig, ShardedWriter};
use ipfs_hamt::store::{DiskStore, MemoryStore, SharedStore};
use ipfs_hamt::Cid;
use ipfs_hamt_zarr::{sync_store, DatasetZarrStore};
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{Array, ArrayBuilder, DataType};
use zarrs::array_subset::ArraySubset;
use zarrs_storage::byte_range::ByteRangeIterator;
use zarrs_storage::{
    MaybeBytes, MaybeBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
};

const SHAPE: [u64; 3] = [200, 250, 500];
const CHUNKS: [u64; 3] = [1, 50, 100];
const POINT: (u64, u64) = (137, 311);
const ARRAY: &str = "/0/precip";

/// A read-only Zarr store on a local directory: one file per key.
struct FsStore(PathBuf);

impl ReadableStorageTraits for FsStore {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        match std::fs::read(self.0.join(key.as_str())) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::IOError(Arc::new(e))),
        }
    }
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let Some(data) = self.get(key)? else {
            return Ok(None);
        };
        Ok(Some(Box::new(byte_ranges.map(move |r| {
            let len = data.len() as u64;
            Ok(data.slice(r.start(len) as usize..r.end(len) as usize))
        }))))
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        Ok(std::fs::metadata(self.0.join(key.as_str()))
            .ok()
            .map(|m| m.len()))
    }
    fn supports_get_partial(&self) -> bool {
        true
    }
}

fn is_metadata(key: &str) -> bool {
    key.ends_with("zarr.json")
}

/// Every file under `dir/0` as (`0/<relative path>`, bytes): metadata first, then sorted.
fn load_files(dir: &Path) -> Vec<(String, Bytes)> {
    fn walk(base: &Path, p: &Path, out: &mut Vec<(String, Bytes)>) {
        for e in std::fs::read_dir(p).expect("read_dir") {
            let e = e.expect("entry");
            let path = e.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("prefix");
                let key = rel.to_str().expect("utf-8").replace('\\', "/");
                out.push((key, Bytes::from(std::fs::read(&path).expect("read"))));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &dir.join("0"), &mut out);
    out.sort_by(|a, b| (!is_metadata(&a.0), &a.0).cmp(&(!is_metadata(&b.0), &b.0)));
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn point_subset() -> ArraySubset {
    ArraySubset::new_with_ranges(&[0..SHAPE[0], POINT.0..POINT.0 + 1, POINT.1..POINT.1 + 1])
}

fn point_keys() -> Vec<String> {
    (0..SHAPE[0])
        .map(|t| {
            format!(
                "0/precip/c/{t}/{}/{}",
                POINT.0 / CHUNKS[1],
                POINT.1 / CHUNKS[2]
            )
        })
        .collect()
}

struct Env {
    rt: tokio::runtime::Runtime,
    kind: String,
    dir: tempfile::TempDir,
    n: usize,
    mem: Option<SharedStore>,
}

impl Env {
    /// A new, empty store.
    fn fresh(&mut self) -> SharedStore {
        self.n += 1;
        match self.kind.as_str() {
            "memory" => {
                let s: SharedStore = Arc::new(MemoryStore::new());
                self.mem = Some(s.clone());
                s
            }
            _ => Arc::new(
                DiskStore::open(self.dir.path().join(format!("blocks-{}.redb", self.n)))
                    .expect("disk store"),
            ),
        }
    }
    /// The store the last `fresh` made, for a cold read (disk: reopened, so redb's own cache
    /// is empty; memory: the same store).
    fn reopen_last(&self) -> SharedStore {
        match self.kind.as_str() {
            "memory" => self.mem.clone().expect("memory store"),
            _ => Arc::new(
                DiskStore::open(self.dir.path().join(format!("blocks-{}.redb", self.n)))
                    .expect("disk store"),
            ),
        }
    }
}

fn cfg(mode: ReadMode) -> DatasetConfig {
    DatasetConfig {
        sharded: ShardedConfig {
            read_mode: mode,
            ..ShardedConfig::default()
        },
        ..DatasetConfig::default()
    }
}

fn json_num(v: f64) -> String {
    format!("{v:.4}")
}

fn run_store(
    kind: &str,
    files: &[(String, Bytes)],
    data: &[f32],
    want_point: &[f32],
    runs: usize,
    cps: u64,
) {
    let mut env = Env {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
        kind: kind.to_string(),
        dir: tempfile::tempdir_in(std::env::var("BENCH_TMP").unwrap_or_else(|_| "target".into()))
            .expect("tempdir"),
        n: 0,
        mem: None,
    };
    let modes = [
        ("full", ReadMode::Full),
        ("sparse", ReadMode::Sparse),
        ("auto", ReadMode::Auto),
    ];
    let mut w_files = Vec::new();
    let mut w_zarrs = Vec::new();
    let mut r_raw = Vec::new();
    let mut r_raw16 = Vec::new();
    let mut r_zarrs = Vec::new();
    let mut pts: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut pts_raw: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut pts_warm: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut fetches: Vec<u64> = vec![0; modes.len()];
    let mut roots = std::collections::BTreeSet::new();
    let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
    let total: usize = files.iter().map(|(_, v)| v.len()).sum();

    for _ in 0..runs {
        // --- write: the directory's bytes through ShardedWriter ---
        let store = env.fresh();
        let t = Instant::now();
        let root: Cid = env.rt.block_on(async {
            let mut w = ShardedWriter::create_v2(store.clone(), ShardedConfig::default(), cps)
                .expect("writer");
            for (k, v) in files {
                w.set(k, v.clone()).await.expect("set");
            }
            w.flush().await.expect("flush")
        });
        w_files.push(t.elapsed().as_secs_f64());
        roots.insert(root.to_string());
        drop(store);

        // --- full read, raw values ---
        let store = env.reopen_last();
        let t = Instant::now();
        let got: usize = env.rt.block_on(async {
            let r = DatasetReader::open(store.clone(), root, &DatasetConfig::default())
                .await
                .expect("open");
            let mut n = 0;
            for k in &keys {
                n += r.get(k).await.expect("get").expect("present").len();
            }
            n
        });
        r_raw.push(t.elapsed().as_secs_f64());
        assert_eq!(got, total);
        drop(store);

        // --- full read, raw values, 16 gets in flight ---
        let store = env.reopen_last();
        let t = Instant::now();
        let got: usize = env.rt.block_on(async {
            use futures::{StreamExt, TryStreamExt};
            let r = DatasetReader::open(store.clone(), root, &DatasetConfig::default())
                .await
                .expect("open");
            futures::stream::iter(keys.iter().map(|k| {
                let r = r.clone();
                let k = k.to_string();
                async move { r.get(&k).await.map(|v| v.expect("present").len()) }
            }))
            .buffer_unordered(16)
            .try_fold(0, |a, n| async move { Ok(a + n) })
            .await
            .expect("get")
        });
        r_raw16.push(t.elapsed().as_secs_f64());
        assert_eq!(got, total);
        drop(store);

        // --- full read, zarrs decoding every chunk ---
        let store = env.reopen_last();
        let t = Instant::now();
        let back = {
            let z = env
                .rt
                .block_on(DatasetZarrStore::open_dataset(
                    store.clone(),
                    root,
                    &DatasetConfig::default(),
                ))
                .expect("open");
            let storage = Arc::new(sync_store(Arc::new(z), env.rt.handle().clone()));
            let array = Array::open(storage, ARRAY).expect("array");
            array
                .retrieve_array_subset_elements::<f32>(&array.subset_all())
                .expect("read")
        };
        r_zarrs.push(t.elapsed().as_secs_f64());
        assert!(back == data, "full read differs");
        drop(store);

        // --- cold point series per read mode ---
        for (i, (_, mode)) in modes.iter().enumerate() {
            let store = env.reopen_last();
            let t = Instant::now();
            let (series, f) = {
                let reader = env
                    .rt
                    .block_on(DatasetReader::open(store.clone(), root, &cfg(*mode)))
                    .expect("open");
                let z = DatasetZarrStore::from_reader(reader.clone());
                let storage = Arc::new(sync_store(Arc::new(z), env.rt.handle().clone()));
                let array = Array::open(storage, ARRAY).expect("array");
                let s = array
                    .retrieve_array_subset_elements::<f32>(&point_subset())
                    .expect("point");
                (s, reader.as_sharded().map_or(0, |r| r.shard_fetches()))
            };
            pts[i].push(t.elapsed().as_secs_f64());
            fetches[i] = f;
            assert!(series == want_point, "point series differs");
            drop(store);

            let store = env.reopen_last();
            let t = Instant::now();
            let warm = env.rt.block_on(async {
                let r = DatasetReader::open(store.clone(), root, &cfg(*mode))
                    .await
                    .expect("open");
                for k in point_keys() {
                    r.get(&k).await.expect("get").expect("present");
                }
                let t = Instant::now();
                for k in point_keys() {
                    r.get(&k).await.expect("get").expect("present");
                }
                t.elapsed().as_secs_f64()
            });
            pts_raw[i].push(t.elapsed().as_secs_f64() - warm);
            pts_warm[i].push(warm);
            drop(store);
        }

        // --- write: zarrs encoding the array into a new sharded dataset ---
        let store = env.fresh();
        let t = Instant::now();
        {
            let w = DatasetWriter::create(
                store.clone(),
                LayoutOptions::ShardedV2 {
                    config: ShardedConfig::default(),
                    chunks_per_shard: cps,
                },
            )
            .expect("writer");
            let z = Arc::new(DatasetZarrStore::from_writer(w));
            let storage = Arc::new(sync_store(z.clone(), env.rt.handle().clone()));
            let array = ArrayBuilder::new(SHAPE.to_vec(), CHUNKS.to_vec(), DataType::Float32, 0f32)
                .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(0, false))])
                .build(storage, ARRAY)
                .expect("array");
            array.store_metadata().expect("metadata");
            array
                .store_array_subset_elements(&array.subset_all(), data)
                .expect("write");
            env.rt.block_on(z.commit()).expect("commit");
        }
        w_zarrs.push(t.elapsed().as_secs_f64());
        drop(store);
    }
    assert_eq!(roots.len(), 1, "roots differ between runs: {roots:?}");
    let mut line = format!(
        "{{\"impl\":\"ipfs-hamt\",\"store\":\"{kind}\",\"cps\":{cps},\"runs\":{runs},\"root\":\"{}\",\"write_files_s\":{},\"write_zarrs_s\":{},\"read_raw_s\":{},\"read_raw16_s\":{},\"read_zarrs_s\":{}",
        roots.iter().next().expect("root"),
        json_num(median(w_files.clone())),
        json_num(median(w_zarrs.clone())),
        json_num(median(r_raw.clone())),
        json_num(median(r_raw16.clone())),
        json_num(median(r_zarrs.clone())),
    );
    for (i, (name, _)) in modes.iter().enumerate() {
        line += &format!(
            ",\"point_{name}_s\":{},\"point_raw_{name}_s\":{},\"point_raw_warm_{name}_s\":{},\"point_{name}_shard_fetches\":{}",
            json_num(median(pts[i].clone())),
            json_num(median(pts_raw[i].clone())),
            json_num(median(pts_warm[i].clone())),
            fetches[i]
        );
    }
    let all = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    line += &format!(
        ",\"write_files_runs\":[{}],\"write_zarrs_runs\":[{}],\"read_zarrs_runs\":[{}],\"point_full_runs\":[{}],\"point_auto_runs\":[{}]}}",
        all(&w_files),
        all(&w_zarrs),
        all(&r_zarrs),
        all(&pts[0]),
        all(&pts[2])
    );
    println!("{line}");
}

/// For profiling: one write, then `runs` cold point series (full mode) through zarrs.
fn point_loop(kind: &str, files: &[(String, Bytes)], want_point: &[f32], runs: usize, cps: u64) {
    let mut env = Env {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
        kind: kind.to_string(),
        dir: tempfile::tempdir_in(std::env::var("BENCH_TMP").unwrap_or_else(|_| "target".into()))
            .expect("tempdir"),
        n: 0,
        mem: None,
    };
    let store = env.fresh();
    let root = env.rt.block_on(async {
        let mut w =
            ShardedWriter::create_v2(store.clone(), ShardedConfig::default(), cps).expect("w");
        for (k, v) in files {
            w.set(k, v.clone()).await.expect("set");
        }
        w.flush().await.expect("flush")
    });
    drop(store);
    let store = env.reopen_last();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let reader = env
            .rt
            .block_on(DatasetReader::open(
                store.clone(),
                root,
                &cfg(ReadMode::Full),
            ))
            .expect("open");
        let storage = Arc::new(sync_store(
            Arc::new(DatasetZarrStore::from_reader(reader)),
            env.rt.handle().clone(),
        ));
        let array = Array::open(storage, ARRAY).expect("array");
        let s = array
            .retrieve_array_subset_elements::<f32>(&point_subset())
            .expect("point");
        times.push(t.elapsed().as_secs_f64());
        assert!(s == want_point);
    }
    println!(
        "{{\"loop\":\"{kind}\",\"point_full_s\":{}}}",
        json_num(median(times))
    );
}

fn run_dir(dir: &Path, data: &[f32], want_point: &[f32], runs: usize) {
    let mut pt = Vec::new();
    let mut pt_raw = Vec::new();
    let mut rd = Vec::new();
    let mut wr = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mem = Arc::new(zarrs_storage::store::MemoryStore::new());
        let array = ArrayBuilder::new(SHAPE.to_vec(), CHUNKS.to_vec(), DataType::Float32, 0f32)
            .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(0, false))])
            .build(mem, ARRAY)
            .expect("array");
        array.store_metadata().expect("metadata");
        array
            .store_array_subset_elements(&array.subset_all(), data)
            .expect("write");
        wr.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let array = Array::open(Arc::new(FsStore(dir.to_path_buf())), ARRAY).expect("array");
        let s = array
            .retrieve_array_subset_elements::<f32>(&point_subset())
            .expect("point");
        pt.push(t.elapsed().as_secs_f64());
        assert!(s == want_point);

        let t = Instant::now();
        for k in point_keys() {
            std::fs::read(dir.join(k)).expect("read");
        }
        pt_raw.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let array = Array::open(Arc::new(FsStore(dir.to_path_buf())), ARRAY).expect("array");
        let all = array
            .retrieve_array_subset_elements::<f32>(&array.subset_all())
            .expect("read");
        rd.push(t.elapsed().as_secs_f64());
        assert!(all == data);
    }
    println!(
        "{{\"impl\":\"zarrs on the directory\",\"runs\":{runs},\"point_s\":{},\"point_raw_s\":{},\"read_zarrs_s\":{},\"write_zarrs_memorystore_s\":{}}}",
        json_num(median(pt)),
        json_num(median(pt_raw)),
        json_num(median(rd)),
        json_num(median(wr))
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = PathBuf::from(
        args.first()
            .expect("usage: sharded DIR [RUNS] [CPS] [memory|disk|dir]..."),
    );
    let runs: usize = args.get(1).map_or(5, |s| s.parse().expect("RUNS"));
    let cps: u64 = args.get(2).map_or(1000, |s| s.parse().expect("CPS"));
    let kinds: Vec<&str> = args.iter().skip(3).map(String::as_str).collect();
    let kinds = if kinds.is_empty() {
        vec!["memory", "disk", "dir"]
    } else {
        kinds
    };
    let files = load_files(&dir);
    // The array's values, decoded once from the directory.
    let data = Array::open(Arc::new(FsStore(dir.clone())), ARRAY)
        .expect("array")
        .retrieve_array_subset_elements::<f32>(&ArraySubset::new_with_shape(SHAPE.to_vec()))
        .expect("decode");
    let want_point: Vec<f32> = (0..SHAPE[0])
        .map(|t| data[((t * SHAPE[1] + POINT.0) * SHAPE[2] + POINT.1) as usize])
        .collect();
    for k in kinds {
        match k {
            "dir" => run_dir(&dir, &data, &want_point, runs),
            "loop-memory" | "loop-disk" => point_loop(&k[5..], &files, &want_point, runs, cps),
            kind => run_store(kind, &files, &data, &want_point, runs, cps),
        }
    }
}
