//! Every py-hamt golden case in tests/golden/cases.json reproduces its root CID exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipfs_hamt::ipld::Ipld;
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{HamtConfig, Reader, Writer};
use serde_json::Value;

mod common;

fn load_json(name: &str) -> Value {
    common::golden_json(name)
}

fn config(mbs: usize) -> HamtConfig {
    HamtConfig {
        max_bucket_size: mbs,
        ..HamtConfig::default()
    }
}

fn cbor_value(i: u64) -> Ipld {
    let mut m = BTreeMap::new();
    m.insert("i".to_string(), Ipld::Integer(i.into()));
    m.insert("s".to_string(), Ipld::String(format!("v{i}")));
    Ipld::Map(m)
}

async fn build_case(case: &Value) -> String {
    let p = &case["params"];
    let name = case["name"].as_str().unwrap();
    let n = p["n"].as_u64().unwrap();
    let mbs = p["max_bucket_size"].as_u64().unwrap() as usize;
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), config(mbs)).unwrap();
    let order: Vec<u64> = match p.get("order_file") {
        Some(f) => serde_json::from_value(load_json(f.as_str().unwrap())).unwrap(),
        None => (0..n).collect(),
    };
    for &i in &order {
        let key = format!("key-{i}");
        if p["values_are_bytes"].as_bool().unwrap() {
            w.insert(&key, format!("value-{i}").into_bytes())
                .await
                .unwrap();
        } else {
            w.insert_ipld(&key, &cbor_value(i)).await.unwrap();
        }
    }
    if name.starts_with("delete_all") {
        w.commit().await.unwrap();
        for i in 0..n {
            w.remove(&format!("key-{i}")).await.unwrap();
        }
    } else if name.starts_with("delete_") {
        w.commit().await.unwrap();
        for i in (0..n).step_by(3) {
            w.remove(&format!("key-{i}")).await.unwrap();
        }
    } else if name.starts_with("overwrite") {
        w.commit().await.unwrap();
        for i in 0..10 {
            w.insert(&format!("key-{i}"), format!("new-{i}").into_bytes())
                .await
                .unwrap();
        }
    }
    let root = w.commit().await.unwrap();
    // The committed tree reads back through a fresh reader.
    let r = Reader::new(store, root, config(mbs)).unwrap();
    let st = r.stats().await.unwrap();
    let tree = &case["tree"];
    assert_eq!(
        st.nodes,
        tree["hamt_nodes"].as_u64().unwrap(),
        "{name} nodes"
    );
    assert_eq!(st.links, tree["links"].as_u64().unwrap(), "{name} links");
    assert_eq!(
        st.max_depth as u64,
        tree["max_depth"].as_u64().unwrap(),
        "{name} depth"
    );
    let hist: BTreeMap<String, u64> = st
        .bucket_sizes
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let want: BTreeMap<String, u64> =
        serde_json::from_value(tree["bucket_size_histogram"].clone()).unwrap();
    assert_eq!(hist, want, "{name} bucket sizes");
    assert_eq!(st.keys, case["key_count"].as_u64().unwrap(), "{name} keys");
    root.to_string()
}

#[tokio::test]
async fn every_golden_case_reproduces_its_root() {
    let cases = load_json("cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 20);
    for case in cases {
        let got = build_case(case).await;
        assert_eq!(got, case["root"].as_str().unwrap(), "case {}", case["name"]);
    }
}

#[tokio::test]
async fn descending_and_two_phase_builds_give_the_same_root() {
    let want = "bafyr4ia2aizx3pgai4453sfcvmfv2jhieuyu76lp3wfcdmgzsaoiqnhn2e"; // n1000 mbs4
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), config(4)).unwrap();
    for i in (0..1000).rev() {
        w.insert(&format!("key-{i}"), format!("value-{i}").into_bytes())
            .await
            .unwrap();
    }
    assert_eq!(w.commit().await.unwrap().to_string(), want);

    let mut w = Writer::new(store.clone(), config(4)).unwrap();
    for i in 0..500 {
        w.insert(&format!("key-{i}"), format!("value-{i}").into_bytes())
            .await
            .unwrap();
    }
    let mid = w.commit().await.unwrap();
    let mut w = Writer::open(store, mid, config(4)).unwrap();
    for i in 500..1000 {
        w.insert(&format!("key-{i}"), format!("value-{i}").into_bytes())
            .await
            .unwrap();
    }
    assert_eq!(w.commit().await.unwrap().to_string(), want);
}

#[tokio::test]
async fn delete_within_one_session_equals_fresh_build() {
    let want = "bafyr4ifyuiqfr2lfdhkjwegjwhwswymwkahmwgsvy3l2l6c4s3i5dz6rb4"; // delete mbs4
    let mut w = Writer::new(Arc::new(MemoryStore::new()), config(4)).unwrap();
    for i in 0..1000 {
        w.insert(&format!("key-{i}"), format!("value-{i}").into_bytes())
            .await
            .unwrap();
    }
    for i in (0..1000).step_by(3) {
        w.remove(&format!("key-{i}")).await.unwrap();
    }
    assert_eq!(w.commit().await.unwrap().to_string(), want);
}

/// py-hamt's own benchmark (`bench_pyhamt.py`, InMemoryCAS) recorded its roots: 34-byte
/// multihash ids in the nodes, and the root id is the root node's multihash.
#[tokio::test]
async fn inmemory_cas_ids_match_py_hamt_bench_roots() {
    use ipfs_hamt::node::IdEncoding;
    let results = load_json("bench_results.json");
    let mut checked = 0;
    for r in results["results"].as_array().unwrap() {
        if r["bench"] != "hamt" || r["cas"] != "inmemory" {
            continue;
        }
        let n = r["n"].as_u64().unwrap();
        let size = r["value_size"].as_u64().unwrap() as usize;
        let config = HamtConfig {
            max_bucket_size: r["max_bucket_size"].as_u64().unwrap() as usize,
            ids: IdEncoding::Multihash,
            unixfs_values: false,
            ..HamtConfig::default()
        };
        let store = Arc::new(MemoryStore::new());
        let mut w = Writer::new(store.clone(), config.clone()).unwrap();
        for i in 0..n {
            let v = format!("value-{i:012}-").into_bytes();
            let value: Vec<u8> = v.iter().copied().cycle().take(size).collect();
            w.insert(&format!("key-{i}"), value).await.unwrap();
        }
        let root = w.commit().await.unwrap();
        let hex: String = root
            .hash()
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, r["root"].as_str().unwrap(), "n = {n}");
        // And the tree reads back through the multihash ids.
        let reader = Reader::new(store, root, config).unwrap();
        assert_eq!(reader.len().await.unwrap(), n);
        let v = reader.get("key-7").await.unwrap().unwrap();
        assert!(v.starts_with(b"value-000000000007-"));
        checked += 1;
    }
    assert_eq!(checked, 2);
}
