//! Property test: random operations on a sharded writer and on a plain map model give the
//! same reads and listings, before a flush (the writer's reads), and after flush + reopen
//! (a reader in every read mode, and a writer reopened from the root).

use std::collections::BTreeMap;
use std::sync::Arc;

use ipfs_hamt::sharded::{ReadMode, ShardedConfig, ShardedReader, ShardedWriter};
use ipfs_hamt::store::MemoryStore;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Set { a: bool, i: u64, j: u64, v: u8 },
    Delete { a: bool, i: u64, j: u64 },
    Attr(u8),
    Resize(u64),
    FlushReopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0..5u64, 0..3u64, any::<u8>()).prop_map(|(a, i, j, v)| Op::Set { a, i, j, v }),
        3 => (any::<bool>(), 0..5u64, 0..3u64).prop_map(|(a, i, j)| Op::Delete { a, i, j }),
        1 => any::<u8>().prop_map(Op::Attr),
        1 => (0..9u64).prop_map(Op::Resize),
        1 => Just(Op::FlushReopen),
    ]
}

/// `g/a`: 2-d, chunks (2,2) over a resizable first dimension; `g/b`: 1-d, 3 chunks.
fn key(a: bool, i: u64, j: u64) -> String {
    if a {
        format!("g/a/c/{i}/{j}")
    } else {
        format!("g/b/c/{i}")
    }
}

const META_A: &str = r#"{"zarr_format": 3, "node_type": "array", "shape": [5, 4], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}}}"#;
const META_B: &str = r#"{"zarr_format": 3, "node_type": "array", "shape": [7], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [3]}}}"#;

struct Model {
    map: BTreeMap<String, Vec<u8>>,
    a_rows: u64,
}

impl Model {
    fn in_bounds(&self, a: bool, i: u64, j: u64) -> bool {
        if a {
            i < self.a_rows && j < 2
        } else {
            i < 3
        }
    }
}

async fn check(
    model: &Model,
    w: &ShardedWriter,
    r: Option<&ShardedReader>,
) -> Result<(), TestCaseError> {
    for a in [true, false] {
        for i in 0..6 {
            for j in 0..3 {
                let k = key(a, i, j);
                let want = model.map.get(&k).cloned();
                let got = w.get(&k).await.unwrap().map(|b| b.to_vec());
                prop_assert_eq!(&got, &want, "writer get {}", k);
                if let Some(r) = r {
                    let got = r.get(&k).await.unwrap().map(|b| b.to_vec());
                    prop_assert_eq!(&got, &want, "reader get {}", k);
                    prop_assert_eq!(r.exists(&k).await.unwrap(), want.is_some(), "exists {}", k);
                }
            }
        }
    }
    let mut listed: Vec<String> = w.list().await.unwrap();
    listed.sort();
    let mut want: Vec<String> = model.map.keys().cloned().collect();
    want.sort();
    prop_assert_eq!(&listed, &want);
    if let Some(r) = r {
        let mut listed = r.list().await.unwrap();
        listed.sort();
        prop_assert_eq!(&listed, &want);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn writer_matches_a_map(cps in 1..5u64, ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async move {
            let store = Arc::new(MemoryStore::new());
            let cfg = ShardedConfig::default();
            let mut w = ShardedWriter::create_v2(store.clone(), cfg.clone(), cps).unwrap();
            let mut model = Model { map: BTreeMap::new(), a_rows: 3 };
            for (k, v) in [("g/a/zarr.json", META_A), ("g/b/zarr.json", META_B)] {
                w.set(k, v.as_bytes().to_vec()).await.unwrap();
                model.map.insert(k.to_string(), v.as_bytes().to_vec());
            }
            model.map.insert("zarr.json".into(), ipfs_hamt_v3_group());
            model.map.insert("g/zarr.json".into(), ipfs_hamt_v3_group());
            for op in ops {
                match op {
                    Op::Set { a, i, j, v } => {
                        let k = key(a, i, j);
                        w.set(&k, vec![v; 1 + (i + j) as usize]).await.unwrap();
                        if model.in_bounds(a, i, j) {
                            model.map.insert(k, vec![v; 1 + (i + j) as usize]);
                        }
                    }
                    Op::Delete { a, i, j } => {
                        let k = key(a, i, j);
                        w.delete(&k).await.unwrap();
                        model.map.remove(&k);
                    }
                    Op::Attr(v) => {
                        w.set("g/a/.zattrs", vec![v]).await.unwrap();
                        model.map.insert("g/a/.zattrs".into(), vec![v]);
                    }
                    Op::Resize(rows) => {
                        w.resize_store(vec![rows * 2, 4], Some("g/a")).await.unwrap();
                        model.a_rows = rows;
                        model.map.retain(|k, _| match k.strip_prefix("g/a/c/") {
                            Some(rest) => rest.split('/').next().unwrap().parse::<u64>().unwrap() < rows,
                            None => true,
                        });
                    }
                    Op::FlushReopen => {
                        let root = w.flush().await.unwrap();
                        w = ShardedWriter::open(store.clone(), root, cfg.clone()).await.unwrap();
                    }
                }
                check(&model, &w, None).await?;
            }
            let root = w.flush().await.unwrap();
            for mode in [ReadMode::Full, ReadMode::Sparse, ReadMode::Auto] {
                let r = ShardedReader::open(store.clone(), root, ShardedConfig { read_mode: mode, ..cfg.clone() }).await.unwrap();
                check(&model, &w, Some(&r)).await?;
            }
            let reopened = ShardedWriter::open(store.clone(), root, cfg.clone()).await.unwrap();
            check(&model, &reopened, None).await?;
            prop_assert_eq!(reopened.root_cid(), Some(root));
            prop_assert!(!reopened.is_dirty());
            Ok(())
        })?;
    }
}

fn ipfs_hamt_v3_group() -> Vec<u8> {
    br#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#.to_vec()
}
