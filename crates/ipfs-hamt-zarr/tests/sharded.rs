//! zarrs on py-hamt's sharded layout: the golden `v2_group0` store (written by py-hamt with
//! xarray) decodes value for value through the same store type as a HAMT, and zarrs writes a
//! sharded v2 store that reads back through a new root.

use std::path::PathBuf;
use std::sync::Arc;

use ipfs_hamt::dataset::{DatasetConfig, DatasetWriter, LayoutOptions};
use ipfs_hamt::sharded::ShardedConfig;
use ipfs_hamt::store::{CarStore, MemoryStore};
use ipfs_hamt_zarr::{sync_store, DatasetZarrStore};
use zarrs::array::{Array, ArrayBuilder, DataType};
use zarrs::array_subset::ArraySubset;
use zarrs::group::{Group, GroupBuilder};

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/sharded")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn zarrs_reads_py_hamts_sharded_golden_dataset() {
    let rt = runtime();
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden().join("sharded_cases.json")).unwrap())
            .unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "v2_group0")
        .unwrap();
    let car = Arc::new(CarStore::open(golden().join("cars/v2_group0.car")).unwrap());
    let root = car.roots()[0];
    let store = rt
        .block_on(DatasetZarrStore::open_dataset(
            car,
            root,
            &DatasetConfig::default(),
        ))
        .unwrap();
    let storage = Arc::new(sync_store(Arc::new(store), rt.handle().clone()));
    let group = Group::open(storage.clone(), "/0").unwrap();
    assert_eq!(group.attributes()["title"], "sharded golden");
    let temp = Array::open(storage.clone(), "/0/temp").unwrap();
    assert_eq!(temp.shape(), &[8, 6, 8]);
    let mut checked = 0;
    for (key, want) in case["chunk_values"].as_object().unwrap() {
        if !key.starts_with("0/temp/c/") {
            continue;
        }
        checked += 1;
        let coords: Vec<u64> = key
            .rsplit("/c/")
            .next()
            .unwrap()
            .split('/')
            .map(|c| c.parse().unwrap())
            .collect();
        let got: Vec<f32> = temp.retrieve_chunk_elements(&coords).unwrap();
        let want: Vec<f32> = want["values"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| {
                a.as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|b| b.as_array().unwrap().iter())
            })
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, want, "{key}");
    }
    assert!(checked >= 2);
    // The whole array: t*100 + y*10 + x, NaN at the all-NaN time steps 4 and 5.
    let all: Vec<f32> = temp
        .retrieve_array_subset_elements(&ArraySubset::new_with_shape(vec![8, 6, 8]))
        .unwrap();
    for t in 0..8 {
        for y in 0..6 {
            for x in 0..8 {
                let v = all[t * 48 + y * 8 + x];
                if t == 4 || t == 5 {
                    assert!(v.is_nan());
                } else {
                    assert_eq!(v, (t * 100 + y * 10 + x) as f32);
                }
            }
        }
    }
}

#[test]
fn zarrs_writes_a_sharded_store() {
    let rt = runtime();
    let blocks = Arc::new(MemoryStore::new());
    let writer = DatasetWriter::create(
        blocks.clone(),
        LayoutOptions::ShardedV2 {
            config: ShardedConfig::default(),
            chunks_per_shard: 5,
        },
    )
    .unwrap();
    let store = Arc::new(DatasetZarrStore::from_writer(writer));
    let storage = Arc::new(sync_store(store.clone(), rt.handle().clone()));
    GroupBuilder::new()
        .build(storage.clone(), "/g")
        .unwrap()
        .store_metadata()
        .unwrap();
    let array = ArrayBuilder::new(vec![10, 9], vec![3, 4], DataType::UInt16, 0u16)
        .build(storage.clone(), "/g/a")
        .unwrap();
    array.store_metadata().unwrap();
    let data: Vec<u16> = (0..90).collect();
    array
        .store_array_subset_elements(&ArraySubset::new_with_shape(vec![10, 9]), &data)
        .unwrap();
    let root = rt.block_on(store.commit()).unwrap();
    let reopened = rt
        .block_on(DatasetZarrStore::open_dataset(
            blocks,
            root,
            &DatasetConfig::default(),
        ))
        .unwrap();
    let storage = Arc::new(sync_store(Arc::new(reopened), rt.handle().clone()));
    let back = Array::open(storage, "/g/a").unwrap();
    let got: Vec<u16> = back
        .retrieve_array_subset_elements(&ArraySubset::new_with_shape(vec![10, 9]))
        .unwrap();
    assert_eq!(got, data);
}
