//! Every golden CAR made by py-hamt loads, and every key returns its value.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use ipfs_hamt::ipld::Ipld;
use ipfs_hamt::store::CarStore;
use ipfs_hamt::{HamtConfig, Reader};
use sha2::Digest as _;

mod common;

fn reader_for(car: &str, max_bucket_size: usize) -> Reader {
    let store = CarStore::open(common::golden_dir().join(car)).unwrap();
    let root = store.roots()[0];
    let config = HamtConfig {
        max_bucket_size,
        ..HamtConfig::default()
    };
    Reader::new(Arc::new(store), root, config).unwrap()
}

#[tokio::test]
async fn every_hamt_case_car_returns_every_value() {
    let cases = common::golden_json("cases.json");
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let mbs = p["max_bucket_size"].as_u64().unwrap() as usize;
        let r = reader_for(case["car"].as_str().unwrap(), mbs);
        assert_eq!(r.root().to_string(), case["root"].as_str().unwrap());
        let keys: Vec<String> = r.keys().try_collect().await.unwrap();
        assert_eq!(
            keys.len() as u64,
            case["key_count"].as_u64().unwrap(),
            "{name}"
        );
        for key in keys {
            let i: u64 = key.strip_prefix("key-").unwrap().parse().unwrap();
            if name.starts_with("delete_") {
                assert!(i % 3 != 0, "{name}: deleted key {key} present");
            }
            if p["values_are_bytes"].as_bool().unwrap() {
                let want = if name.starts_with("overwrite") && i < 10 {
                    format!("new-{i}")
                } else {
                    format!("value-{i}")
                };
                let got = r.get(&key).await.unwrap().unwrap();
                assert_eq!(got, want.as_bytes(), "{name} {key}");
            } else {
                let got = r.get_ipld(&key).await.unwrap().unwrap();
                let mut m = BTreeMap::new();
                m.insert("i".to_string(), Ipld::Integer(i.into()));
                m.insert("s".to_string(), Ipld::String(format!("v{i}")));
                assert_eq!(got, Ipld::Map(m), "{name} {key}");
            }
        }
        assert!(r.get("key-absent").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn zarr_cars_hold_every_key_and_chunk() {
    let zc = common::golden_json("zarr_cases.json");
    for case in zc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let r = reader_for(case["car"].as_str().unwrap(), 4);
        let mut keys: Vec<String> = r.keys().try_collect().await.unwrap();
        keys.sort();
        let mut want: Vec<String> = serde_json::from_value(case["keys"].clone()).unwrap();
        want.sort();
        assert_eq!(keys, want, "{name}");
        for (key, len) in case["stored_value_len"].as_object().unwrap() {
            let v = r.get(key).await.unwrap().unwrap();
            assert_eq!(v.len() as u64, len.as_u64().unwrap(), "{name} {key}");
            let ptr = r.get_pointer(key).await.unwrap().unwrap();
            // The vectors print CIDs decoded from nodes in base58btc: compare decoded CIDs.
            let want = ipfs_hamt::Cid::try_from(case["value_cids"][key].as_str().unwrap()).unwrap();
            assert_eq!(ptr, want, "{name} {key}");
        }
        if name == "zarr_plain" {
            for (key, sha) in case["chunk_sha256"].as_object().unwrap() {
                let v = r.get(key).await.unwrap().unwrap();
                assert_eq!(
                    hex(&sha2::Sha256::digest(&v)),
                    sha.as_str().unwrap(),
                    "{key}"
                );
            }
            for (key, meta) in case["metadata"].as_object().unwrap() {
                let v = r.get(key).await.unwrap().unwrap();
                let got: serde_json::Value = serde_json::from_slice(&v).unwrap();
                assert_eq!(&got, meta, "{key}");
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
