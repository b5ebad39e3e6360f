//! zarrs on the store: py-hamt's golden dataset (plain and encrypted) decodes chunk for chunk,
//! and arrays with zstd and with the sharding codec round-trip through a committed root.

use std::path::PathBuf;
use std::sync::Arc;

use ipfs_hamt::crypt::{EncryptionKey, ValueCipher};
use ipfs_hamt::store::{CarStore, MemoryStore};
use ipfs_hamt::HamtConfig;
use ipfs_hamt_zarr::{sync_store, HamtZarrStore, SyncHamtZarrStore};
use sha2::Digest as _;
use zarrs::array::codec::{ShardingCodecBuilder, ZstdCodec};
use zarrs::array::{Array, ArrayBuilder, DataType};
use zarrs::array_subset::ArraySubset;
use zarrs::group::Group;

fn golden() -> PathBuf {
    std::env::var_os("IPFS_HAMT_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden"))
}

fn zarr_case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(golden().join("zarr_cases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Opens every array of the golden dataset with zarrs and checks every chunk and value.
fn check_golden(storage: Arc<SyncHamtZarrStore>, case: &serde_json::Value) {
    let group = Group::open(storage.clone(), "/").unwrap();
    assert_eq!(group.attributes()["title"], "py-hamt golden dataset");
    let shas = case["chunk_sha256"].as_object().unwrap();
    let mut chunks_checked = 0;
    for name in ["lat", "lon", "time", "temperature"] {
        let array = Array::open(storage.clone(), &format!("/{name}")).unwrap();
        assert_eq!(
            serde_json::to_value(array.shape()).unwrap(),
            case["metadata"][format!("{name}/zarr.json")]["shape"]
        );
        // Every stored chunk: the encoded bytes match py-hamt's sha256, and it decodes.
        let grid = array.chunk_grid_shape().clone();
        let all = ArraySubset::new_with_shape(grid);
        for idx in all.indices().iter() {
            let key = array.chunk_key(&idx).as_str().to_owned();
            let enc = array.retrieve_encoded_chunk(&idx).unwrap().unwrap();
            assert_eq!(
                hex(&sha2::Sha256::digest(&enc)),
                shas[&key].as_str().unwrap(),
                "{key}"
            );
            chunks_checked += 1;
        }
        let subset = array.subset_all();
        match name {
            "lat" => {
                let v = array
                    .retrieve_array_subset_elements::<f64>(&subset)
                    .unwrap();
                let want: Vec<f64> = (0..32).map(|i| -90.0 + 5.625 * i as f64).collect();
                assert_eq!(v, want);
            }
            "lon" => {
                let v = array
                    .retrieve_array_subset_elements::<f64>(&subset)
                    .unwrap();
                let want: Vec<f64> = (0..64).map(|i| 5.625 * i as f64).collect();
                assert_eq!(v, want);
            }
            "time" => {
                let v = array
                    .retrieve_array_subset_elements::<i64>(&subset)
                    .unwrap();
                assert_eq!(v, (0..24).collect::<Vec<i64>>());
            }
            _ => {
                let v = array
                    .retrieve_array_subset_elements::<f32>(&subset)
                    .unwrap();
                let mut want = Vec::with_capacity(24 * 32 * 64);
                for t in 0..24u64 {
                    for y in 0..32u64 {
                        for x in 0..64u64 {
                            want.push(
                                (((t * 2048 + y * 64 + x) % 1000) as f64 * 0.25 - 50.0) as f32,
                            );
                        }
                    }
                }
                assert_eq!(v, want);
                // A subset across chunk borders.
                let part = ArraySubset::new_with_ranges(&[5..8, 14..18, 30..34]);
                let got = array.retrieve_array_subset_elements::<f32>(&part).unwrap();
                let mut w2 = Vec::new();
                for t in 5..8usize {
                    for y in 14..18usize {
                        for x in 30..34usize {
                            w2.push(want[t * 2048 + y * 64 + x]);
                        }
                    }
                }
                assert_eq!(got, w2);
            }
        }
    }
    assert_eq!(chunks_checked, shas.len());
}

#[test]
fn zarrs_reads_py_hamt_golden_dataset() {
    let rt = runtime();
    let car = Arc::new(CarStore::open(golden().join("cars/zarr_plain.car")).unwrap());
    let root = car.roots()[0];
    let case = zarr_case("zarr_plain");
    assert_eq!(root.to_string(), case["root"].as_str().unwrap());
    let store = Arc::new(HamtZarrStore::open(car, root, HamtConfig::default()).unwrap());
    let storage = Arc::new(sync_store(store.clone(), rt.handle().clone()));
    check_golden(storage.clone(), &case);
    // Opening again reads zarr.json from the metadata cache.
    let hits = store.stats().metadata_hits;
    Array::open(storage, "/temperature").unwrap();
    assert_eq!(store.stats().metadata_hits, hits + 1);
}

#[test]
fn zarrs_reads_py_hamt_encrypted_dataset() {
    let rt = runtime();
    let car = Arc::new(CarStore::open(golden().join("cars/zarr_encrypted.car")).unwrap());
    let root = car.roots()[0];
    let key = EncryptionKey::from_slice(&(0u8..32).collect::<Vec<_>>()).unwrap();
    let store = Arc::new(
        HamtZarrStore::open(car, root, HamtConfig::default())
            .unwrap()
            .with_encryption(ValueCipher::new(key, b"golden-header".to_vec())),
    );
    check_golden(
        Arc::new(sync_store(store, rt.handle().clone())),
        &zarr_case("zarr_encrypted"),
    );
}

#[test]
fn zstd_and_sharded_arrays_round_trip_through_a_root_cid() {
    round_trip(None);
}

#[test]
fn encrypted_sharded_arrays_round_trip_with_ranges_after_decryption() {
    round_trip(Some(ValueCipher::new(
        EncryptionKey::from([5u8; 32]),
        b"h".to_vec(),
    )));
}

fn round_trip(cipher: Option<ValueCipher>) {
    let rt = runtime();
    let blocks = Arc::new(MemoryStore::new());
    let open = |s: HamtZarrStore| match &cipher {
        Some(c) => s.with_encryption(c.clone()),
        None => s,
    };
    let store = Arc::new(open(
        HamtZarrStore::create(blocks.clone(), HamtConfig::default()).unwrap(),
    ));
    let storage = Arc::new(sync_store(store.clone(), rt.handle().clone()));
    let data: Vec<u16> = (0..64 * 64u32).map(|i| (i * 7 % 65521) as u16).collect();

    let zstd = ArrayBuilder::new(vec![64, 64], vec![16, 16], DataType::UInt16, 0u16)
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))])
        .build(storage.clone(), "/zstd")
        .unwrap();
    zstd.store_metadata().unwrap();
    zstd.store_array_subset_elements(&zstd.subset_all(), &data)
        .unwrap();

    let mut sharding = ShardingCodecBuilder::new(vec![8, 8].try_into().unwrap());
    sharding.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, false))]);
    let sharded = ArrayBuilder::new(vec![64, 64], vec![32, 32], DataType::UInt16, 0u16)
        .array_to_bytes_codec(Arc::new(sharding.build()))
        .build(storage.clone(), "/sharded")
        .unwrap();
    sharded.store_metadata().unwrap();
    sharded
        .store_array_subset_elements(&sharded.subset_all(), &data)
        .unwrap();
    let root = rt.block_on(store.commit()).unwrap();

    // Reopen from the root CID alone, read-only.
    let ro = Arc::new(open(
        HamtZarrStore::open(blocks, root, HamtConfig::default()).unwrap(),
    ));
    let storage = Arc::new(sync_store(ro.clone(), rt.handle().clone()));
    let subset = ArraySubset::new_with_ranges(&[3..41, 17..50]);
    let want: Vec<u16> = (3..41usize)
        .flat_map(|y| (17..50usize).map(move |x| (y, x)))
        .map(|(y, x)| data[y * 64 + x])
        .collect();
    for path in ["/zstd", "/sharded"] {
        let a = Array::open(storage.clone(), path).unwrap();
        assert_eq!(
            a.retrieve_array_subset_elements::<u16>(&a.subset_all())
                .unwrap(),
            data
        );
        assert_eq!(
            a.retrieve_array_subset_elements::<u16>(&subset).unwrap(),
            want
        );
    }
    // An inner chunk of a shard: a partial read of the shard index (a suffix) and the chunk.
    let before = ro.stats();
    let a = Array::open(storage.clone(), "/sharded").unwrap();
    let inner = ArraySubset::new_with_ranges(&[40..48, 8..16]);
    let got = a.retrieve_array_subset_elements::<u16>(&inner).unwrap();
    let want: Vec<u16> = (40..48usize)
        .flat_map(|y| (8..16usize).map(move |x| (y, x)))
        .map(|(y, x)| data[y * 64 + x])
        .collect();
    assert_eq!(got, want);
    let after = ro.stats();
    assert!(
        after.suffix_reads > before.suffix_reads,
        "{before:?} {after:?}"
    );
    assert!(
        after.partial_reads >= before.partial_reads + 2,
        "{before:?} {after:?}"
    );
}
