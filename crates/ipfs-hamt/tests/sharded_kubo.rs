//! The sharded layout through a real IPFS node (`IPFS_RPC_URL`, `IPFS_GATEWAY_URL`;
//! scripts/test.sh starts one): py-hamt's golden dataset written through the node, in bulk and
//! in py-hamt's own `add` mode, gives py-hamt's root, and reads back through the gateway
//! (every block verified against its CID) exactly. Without the node the test prints "skipped".

use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;
use ipfs_hamt::sharded::{ReadMode, ShardedConfig, ShardedReader, ShardedWriter};
use ipfs_hamt::store::kubo::{KuboConfig, KuboStore, WriteMode};
use ipfs_hamt::store::{BlockStore, CarStore, MemoryStore};
use ipfs_hamt::Cid;

fn node() -> Option<(String, String)> {
    match (
        std::env::var("IPFS_RPC_URL").ok(),
        std::env::var("IPFS_GATEWAY_URL").ok(),
    ) {
        (Some(r), Some(g)) if !r.is_empty() && !g.is_empty() => Some((r, g)),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs these tests with a node (scripts/test.sh)"
            );
            println!("sharded_kubo: skipped (IPFS_RPC_URL / IPFS_GATEWAY_URL not set)");
            None
        }
    }
}

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/sharded")
}

#[tokio::test]
async fn golden_dataset_round_trips_through_the_node() {
    let Some((rpc, gw)) = node() else { return };
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden().join("sharded_cases.json")).unwrap())
            .unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "v2_group0")
        .unwrap();
    let want_root: Cid = case["root"].as_str().unwrap().parse().unwrap();
    let car = CarStore::open(golden().join("cars/v2_group0.car")).unwrap();
    let mem = Arc::new(MemoryStore::new());
    for c in car.cids() {
        mem.put(ipfs_hamt::Block::verified(c, car.get(&c).await.unwrap()).unwrap())
            .await
            .unwrap();
    }
    let src = ShardedReader::open(mem, want_root, ShardedConfig::default())
        .await
        .unwrap();
    let keys = src.list().await.unwrap();

    for mode in [WriteMode::Blocks, WriteMode::PyHamtAdd] {
        let mut cfg = KuboConfig::new(&rpc).unwrap();
        cfg.set_gateways([gw.as_str()]).unwrap();
        cfg.write_mode = mode;
        let kubo = Arc::new(KuboStore::new(cfg).unwrap());
        let mut w = ShardedWriter::create_v2(kubo.clone(), ShardedConfig::default(), 3).unwrap();
        for k in &keys {
            w.set(k, src.get(k).await.unwrap().unwrap()).await.unwrap();
        }
        let root = w.flush().await.unwrap();
        assert_eq!(root, want_root, "{mode:?}: py-hamt's root through the node");

        // A fresh store object: nothing cached, every block comes from the gateway.
        let mut cfg = KuboConfig::new(&rpc).unwrap();
        cfg.set_gateways([gw.as_str()]).unwrap();
        let fresh = Arc::new(KuboStore::new(cfg).unwrap());
        for read_mode in [ReadMode::Full, ReadMode::Sparse] {
            let r = ShardedReader::open(
                fresh.clone(),
                root,
                ShardedConfig {
                    read_mode,
                    ..ShardedConfig::default()
                },
            )
            .await
            .unwrap();
            let listed: Vec<String> = r.entries().map_ok(|(k, _)| k).try_collect().await.unwrap();
            assert_eq!(listed, keys);
            for k in &keys {
                assert_eq!(r.get(k).await.unwrap(), src.get(k).await.unwrap(), "{k}");
            }
            let ranged = r
                .get_range("0/temp/c/0/0/0", ipfs_hamt::ByteRange::Suffix(4))
                .await
                .unwrap()
                .unwrap();
            let whole = src.get("0/temp/c/0/0/0").await.unwrap().unwrap();
            assert_eq!(ranged, whole.slice(whole.len() - 4..));
        }
        // Reopen through the node and change it: the writer reads its shards back from the gateway.
        let mut w = ShardedWriter::open(fresh.clone(), root, ShardedConfig::default())
            .await
            .unwrap();
        w.delete("0/temp/c/0/0/0").await.unwrap();
        let changed = w.flush().await.unwrap();
        let r = ShardedReader::open(fresh.clone(), changed, ShardedConfig::default())
            .await
            .unwrap();
        assert!(r.get("0/temp/c/0/0/0").await.unwrap().is_none());
        assert!(r.get("0/temp/c/0/0/1").await.unwrap().is_some());
    }
}
