//! The sharded bulk build against today's path (HAMT built by the writer, then py-hamt's
//! `convert_hamt_to_sharded`): same root, or the same error.

use std::sync::Arc;

use ipfs_hamt::bulk::{BulkOptions, BulkShardedBuilder};
use ipfs_hamt::sharded::{convert_hamt_to_sharded, ShardedConfig};
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{HamtConfig, Writer};
use proptest::prelude::*;

const GROUP: &str = r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#;
const META_A: &str = r#"{"zarr_format": 3, "node_type": "array", "shape": [5, 4], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}}}"#;
const META_B: &str = r#"{"zarr_format": 3, "node_type": "array", "shape": [7], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}}}"#;
const META_W: &str = r#"{"zarr_format": 2, "shape": [4, 4], "chunks": [2, 2], "dtype": "<f4"}"#;

/// Chunk keys: v3 keys of two arrays, zarr-v2 dotted keys, and dotted keys of a v3 array
/// that normalize onto the same entry as a `/c/` key (the later in `keys()` order wins).
fn chunk_key(n: u16) -> String {
    match n % 4 {
        0 => format!("g/a/c/{}/{}", n / 4 % 3, n / 12 % 2),
        1 => format!("g/b/c/{}", n / 4 % 7),
        2 => format!("w/{}.{}", n / 4 % 2, n / 8 % 2),
        _ => format!("g/a/{}.{}", n / 4 % 3, n / 12 % 2),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn bulk_sharded_root_equals_convert_root(
        chunks in prop::collection::vec((0u16..200, any::<u8>()), 0..80),
        with_root_group in any::<bool>(),
        bad in prop_oneof![8 => Just(None), 1 => Just(Some("g/a/c/9/0")), 1 => Just(Some("junk"))],
        mbs in prop_oneof![Just(1usize), Just(4)],
        cps in prop_oneof![Just(1u64), Just(3), Just(4)],
        budget in prop_oneof![Just(150usize), Just(64 << 20)],
    ) {
        let mut items: Vec<(String, Vec<u8>)> = vec![
            ("g/zarr.json".into(), GROUP.into()),
            ("g/a/zarr.json".into(), META_A.into()),
            ("g/b/zarr.json".into(), META_B.into()),
            ("w/.zarray".into(), META_W.into()),
        ];
        if with_root_group {
            items.push(("zarr.json".into(), GROUP.into()));
        }
        items.extend(chunks.iter().map(|(n, v)| (chunk_key(*n), vec![*v; 3])));
        if let Some(b) = bad {
            items.push((b.to_string(), b"x".to_vec()));
        }
        let cfg = HamtConfig { max_bucket_size: mbs, ..HamtConfig::default() };
        let tmp = tempfile::tempdir().unwrap();
        let (want, got) = rt().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let mut w = Writer::new(store.clone(), cfg.clone()).unwrap();
            for (k, v) in &items {
                w.insert(k, v.clone()).await.unwrap();
            }
            let hamt = w.commit().await.unwrap();
            let want = convert_hamt_to_sharded(store, hamt, cps, ShardedConfig::default(), |_| {})
                .await
                .map_err(|e| e.to_string());
            let options = BulkOptions { memory_budget: budget, spill_dir: tmp.path().to_path_buf() };
            let store = Arc::new(MemoryStore::new());
            let mut b = BulkShardedBuilder::new(store, cfg, cps, ShardedConfig::default(), options)
                .unwrap();
            for (k, v) in &items {
                b.add(k, v.clone()).await.unwrap();
            }
            (want, b.finish().await.map_err(|e| e.to_string()))
        });
        prop_assert_eq!(got, want);
    }
}
