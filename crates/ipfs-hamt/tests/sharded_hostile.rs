//! Malformed, inconsistent and hostile sharded stores: every read path answers with a typed
//! error (or "absent" where py-hamt reads so), in bounded time and memory, never a panic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ipfs_hamt::block::{Block, HashAlg, DAG_CBOR, RAW};
use ipfs_hamt::dataset::{DatasetConfig, DatasetReader};
use ipfs_hamt::ipld::Ipld;
use ipfs_hamt::sharded::{shard, ShardedConfig, ShardedError, ShardedReader};
use ipfs_hamt::store::{BlockStore, CarStore, MemoryStore, SharedStore, StoreError};
use ipfs_hamt::{Cid, Error};

fn ints(v: &[u64]) -> Ipld {
    Ipld::List(v.iter().map(|&x| Ipld::Integer(x.into())).collect())
}

/// A v2 root with one array `a` of the given geometry and shard list.
fn v2_root(shape: &[u64], chunks: &[u64], cps: i128, shards: Vec<Ipld>) -> Vec<u8> {
    let mut cfg = BTreeMap::new();
    cfg.insert("chunks_per_shard".to_string(), Ipld::Integer(cps));
    cfg.insert("order".to_string(), Ipld::String("C".into()));
    let mut a = BTreeMap::new();
    a.insert("array_shape".to_string(), ints(shape));
    a.insert("chunk_shape".to_string(), ints(chunks));
    a.insert("sharding_config".to_string(), Ipld::Map(cfg));
    a.insert("shard_cids".to_string(), Ipld::List(shards));
    let mut arrays = BTreeMap::new();
    arrays.insert("a".to_string(), Ipld::Map(a));
    let mut root = BTreeMap::new();
    root.insert(
        "manifest_version".to_string(),
        Ipld::String("sharded_zarr_v2".into()),
    );
    root.insert("metadata".to_string(), Ipld::Map(BTreeMap::new()));
    root.insert("arrays".to_string(), Ipld::Map(arrays));
    serde_ipld_dagcbor::to_vec(&Ipld::Map(root)).unwrap()
}

async fn put(store: &MemoryStore, codec: u64, data: Vec<u8>) -> Cid {
    let b = Block::new(codec, HashAlg::Blake3, data);
    store.put(b.clone()).await.unwrap();
    b.cid
}

async fn open(store: &Arc<MemoryStore>, root: Cid) -> Result<ShardedReader, Error> {
    ShardedReader::open(store.clone(), root, ShardedConfig::default()).await
}

fn sharded_err(e: Error) -> ShardedError {
    match e {
        Error::Sharded(s) => s,
        other => panic!("expected a sharded error, got {other:?}"),
    }
}

#[tokio::test]
async fn absurd_geometries_are_refused_without_allocating() {
    let store = Arc::new(MemoryStore::new());
    // 10^12 chunks in shards of 6250: 1.6e8 shards would be ~13 GB of shard list.
    let root = put(
        &store,
        DAG_CBOR,
        v2_root(&[1_000_000, 1_000_000], &[1, 1], 6250, vec![]),
    )
    .await;
    let e = sharded_err(open(&store, root).await.unwrap_err());
    assert!(matches!(e, ShardedError::TooLarge(_)), "{e}");
    // More chunks than 64 bits count.
    let big = u64::MAX / 2;
    let root = put(
        &store,
        DAG_CBOR,
        v2_root(&[big, big, big], &[1, 1, 1], 1, vec![]),
    )
    .await;
    assert!(matches!(
        sharded_err(open(&store, root).await.unwrap_err()),
        ShardedError::TooLarge(_)
    ));
    // A chunks_per_shard that would make every new shard huge.
    let root = put(
        &store,
        DAG_CBOR,
        v2_root(&[10], &[1], 1 << 40, vec![Ipld::Null]),
    )
    .await;
    assert!(matches!(
        sharded_err(open(&store, root).await.unwrap_err()),
        ShardedError::TooLarge(_)
    ));
    // Through the dataset interface too: one typed error.
    let r = DatasetReader::open(
        store.clone() as SharedStore,
        root,
        &DatasetConfig::default(),
    )
    .await;
    assert!(matches!(r, Err(Error::Sharded(ShardedError::TooLarge(_)))));
}

#[tokio::test]
async fn inconsistent_manifests_get_py_hamts_errors() {
    let store = Arc::new(MemoryStore::new());
    let root = put(&store, DAG_CBOR, v2_root(&[4], &[1], 2, vec![Ipld::Null])).await;
    assert_eq!(
        open(&store, root).await.unwrap_err().to_string(),
        "Inconsistent number of shards for array 'a'. Inconsistent number of shards. Expected 2, found 1."
    );
    let root = put(&store, DAG_CBOR, v2_root(&[4], &[0], 2, vec![])).await;
    assert_eq!(
        open(&store, root).await.unwrap_err().to_string(),
        "All chunk_shape dimensions must be positive."
    );
    let root = put(&store, DAG_CBOR, v2_root(&[4], &[1], 0, vec![])).await;
    assert_eq!(
        open(&store, root).await.unwrap_err().to_string(),
        "chunks_per_shard must be a positive integer."
    );
    let root = put(&store, DAG_CBOR, v2_root(&[4, 4], &[1], 2, vec![])).await;
    assert_eq!(
        open(&store, root).await.unwrap_err().to_string(),
        "array_shape and chunk_shape must have the same rank."
    );
    // Not CBOR, not a map, no version.
    for (bytes, want) in [
        (vec![0xff], "Failed to decode root object"),
        (
            vec![0x80],
            "Failed to decode root object: Root object is not a valid dictionary.",
        ),
        (vec![0xa0], "Incompatible manifest version: None."),
    ] {
        let root = put(&store, DAG_CBOR, bytes).await;
        let e = open(&store, root).await.unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}

#[tokio::test]
async fn bad_shards_are_typed_errors_in_every_read_mode() {
    let store = Arc::new(MemoryStore::new());
    let chunk = put(&store, RAW, b"chunk".to_vec()).await;
    // (shard bytes, codec, key read, error). Sparse reads decode only the entry they need, as
    // py-hamt's do, so each key reaches the damage.
    let cases: Vec<(Vec<u8>, u64, &str, &str)> = vec![
        (
            shard::encode(&[Some(chunk), None]),
            DAG_CBOR,
            "a/c/0",
            "contains 2 entries; expected 3",
        ),
        (
            vec![0x83, 0x01, 0xf6, 0xf6],
            DAG_CBOR,
            "a/c/0",
            "non-CID entry",
        ),
        (vec![0xa0], DAG_CBOR, "a/c/0", "did not decode to a list"),
        (vec![0x83, 0xf6], DAG_CBOR, "a/c/2", "truncated"),
        (
            shard::encode(&[Some(chunk), None, None]),
            RAW,
            "a/c/0",
            "codec 0x55",
        ),
    ];
    for (bytes, codec, key, want) in cases {
        let shard_cid = put(&store, codec, bytes).await;
        let root = put(
            &store,
            DAG_CBOR,
            v2_root(&[3], &[1], 3, vec![Ipld::Link(shard_cid)]),
        )
        .await;
        for mode in ["full", "sparse", "auto"] {
            let cfg = ShardedConfig {
                read_mode: mode.parse().unwrap(),
                ..ShardedConfig::default()
            };
            let r = ShardedReader::open(store.clone(), root, cfg).await.unwrap();
            let e = r.get(key).await.unwrap_err().to_string();
            assert!(e.contains(want), "{mode}: {e}");
            assert!(
                r.exists(key).await.is_err(),
                "{mode}: exists reads the whole shard"
            );
            assert!(r.list().await.is_err(), "{mode}: listing reads the shard");
        }
    }
}

#[tokio::test]
async fn hostile_keys_are_absent_not_errors_in_v2() {
    let store = Arc::new(MemoryStore::new());
    let root = put(
        &store,
        DAG_CBOR,
        v2_root(&[4], &[1], 2, vec![Ipld::Null, Ipld::Null]),
    )
    .await;
    let r = open(&store, root).await.unwrap();
    for key in [
        "a/c/99999999999999999999999999999999999999999999",
        "a/c/-1",
        "a/c/",
        "a/c/1/2/3/4/5/6/7/8",
        "a/c/\u{0660}",
        "a/c/ 1_0",
        "../../etc/passwd",
        "",
        "/",
    ] {
        assert_eq!(r.get(key).await.unwrap(), None, "{key:?}");
        assert!(!r.exists(key).await.unwrap(), "{key:?}");
    }
}

#[tokio::test]
async fn tampered_blocks_from_a_file_are_refused() {
    // py-hamt's golden v2 store in a CAR, with one byte of a shard flipped: the CAR store
    // verifies every block against its CID before the shard decoder sees it.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/sharded");
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("sharded_cases.json")).unwrap()).unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "v2_group0")
        .unwrap();
    let shard_hex = case["shards"]["0/temp"][0]["hex"].as_str().unwrap();
    let shard: Vec<u8> = (0..shard_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&shard_hex[i..i + 2], 16).unwrap())
        .collect();
    let mut car = std::fs::read(dir.join("cars/v2_group0.car")).unwrap();
    let at = car
        .windows(shard.len())
        .position(|w| w == shard.as_slice())
        .unwrap();
    car[at + shard.len() - 1] ^= 0x01;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tampered.car");
    std::fs::write(&path, &car).unwrap();
    let store = Arc::new(CarStore::open(&path).unwrap());
    let root: Cid = case["root"].as_str().unwrap().parse().unwrap();
    let r = ShardedReader::open(store, root, ShardedConfig::default())
        .await
        .unwrap();
    match r.get("0/temp/c/0/0/0").await {
        Err(Error::Store(StoreError::Verify(_))) => {}
        other => panic!("{other:?}"),
    }
    // Other shards still read.
    assert!(r.get("0/time/c/0").await.unwrap().is_some());
}
