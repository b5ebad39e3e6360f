//! Tests of the dataset interface over HAMTs (memory and disk stores), layout detection and
//! the generic diff.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt as _;
use ipld_core::ipld::Ipld;

use super::*;
use crate::block::{Block, HashAlg, DAG_CBOR, RAW};
use crate::error::Error;
use crate::store::{BlockStore, DiskStore, MemoryStore, SharedStore};
use crate::ByteRange;

fn hamt() -> LayoutOptions {
    LayoutOptions::Hamt(HamtConfig::default())
}

async fn sample(store: SharedStore) -> cid::Cid {
    let mut w = DatasetWriter::create(store, hamt()).unwrap();
    w.insert("zarr.json", b"{\"zarr_format\":3}".to_vec())
        .await
        .unwrap();
    for i in 0..40 {
        w.insert(
            &format!("temp/c/{}/{}", i / 8, i % 8),
            format!("v{i}").into_bytes(),
        )
        .await
        .unwrap();
    }
    w.insert("temp/zarr.json", b"{}".to_vec()).await.unwrap();
    w.commit().await.unwrap()
}

/// A sharded v2 manifest map as py-hamt writes an empty one (SHARDED.md §2.1).
fn sharded_manifest() -> Vec<u8> {
    let cfg: BTreeMap<String, Ipld> = [
        ("order".to_string(), Ipld::String("C".into())),
        ("chunks_per_shard".to_string(), Ipld::Integer(3)),
    ]
    .into_iter()
    .collect();
    let m: BTreeMap<String, Ipld> = [
        ("arrays", Ipld::Map(BTreeMap::new())),
        ("metadata", Ipld::Map(BTreeMap::new())),
        ("store_type", Ipld::String("py_hamt.sharded_zarr".into())),
        ("zarr_format", Ipld::Integer(3)),
        ("sharding_config", Ipld::Map(cfg)),
        ("manifest_version", Ipld::String("sharded_zarr_v2".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    serde_ipld_dagcbor::to_vec(&Ipld::Map(m)).unwrap()
}

async fn reader_round_trip(store: SharedStore) {
    let root = sample(store.clone()).await;
    assert_eq!(detect(&*store, &root).await.unwrap(), Layout::Hamt);
    let r = DatasetReader::open(store.clone(), root, &DatasetConfig::default())
        .await
        .unwrap();
    assert_eq!((r.root(), r.layout()), (root, Layout::Hamt));
    assert_eq!(
        r.get("temp/c/1/2").await.unwrap().as_deref(),
        Some(&b"v10"[..])
    );
    assert_eq!(
        r.get_range("temp/c/1/2", ByteRange::Suffix(2))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"10"[..])
    );
    assert!(r.contains("zarr.json").await.unwrap());
    assert!(!r.contains("nope").await.unwrap());
    assert_eq!(r.get("nope").await.unwrap(), None);
    let ptr = r.get_pointer("temp/c/0/0").await.unwrap().unwrap();
    assert_eq!(ptr.codec(), RAW);
    assert_eq!(r.len().await.unwrap(), 42);
    let keys: Vec<String> = r.keys().try_collect().await.unwrap();
    assert_eq!(keys.len(), 42);
    let entries: Vec<(String, cid::Cid)> = r.entries().try_collect().await.unwrap();
    assert!(entries.iter().any(|(k, c)| k == "temp/c/0/0" && *c == ptr));
    // The same order as the HAMT reader's.
    let hamt_keys: Vec<String> = r.as_hamt().unwrap().keys().try_collect().await.unwrap();
    assert_eq!(keys, hamt_keys);
    let root_dir = r.list_dir("").await.unwrap();
    assert_eq!(root_dir.keys, ["zarr.json"]);
    assert_eq!(root_dir.dirs, ["temp"]);
    let c = r.list_dir("temp/c").await.unwrap();
    assert_eq!(c.dirs, ["0", "1", "2", "3", "4"]);
    assert!(c.keys.is_empty());
    assert_eq!(r.list_dir("temp/c/4/").await.unwrap().keys.len(), 8);
    assert!(r.list_dir("nope").await.unwrap().is_empty());
    let stats = r.stats().await.unwrap();
    assert_eq!(stats.keys(), 42);
    assert!(stats
        .to_text(&root)
        .starts_with(&format!("root       {root}\n")));
    assert_eq!(stats.to_json(&root)["keys"], 42);
    let report = verify(&*store, &root, &DatasetConfig::default(), &mut |_| {})
        .await
        .unwrap();
    assert!(report.is_ok());
    assert_eq!(report.values, 42);

    // Writer: open detects, changes commit to the same root as the HAMT writer's.
    let mut w = DatasetWriter::open(store.clone(), root, &DatasetConfig::default())
        .await
        .unwrap();
    assert_eq!(w.layout(), Layout::Hamt);
    assert_eq!(w.root_cid(), Some(root));
    w.insert("temp/c/9/9", b"new".to_vec()).await.unwrap();
    assert_eq!(
        w.get("temp/c/9/9").await.unwrap().as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(w.remove("temp/c/0/0").await.unwrap(), ptr);
    assert!(matches!(
        w.remove("temp/c/0/0").await,
        Err(Error::KeyNotFound(_))
    ));
    w.insert_pointer("alias", ptr).await.unwrap();
    assert_eq!(w.get_pointer("alias").await.unwrap(), Some(ptr));
    assert!(w.contains("alias").await.unwrap());
    assert_eq!(w.keys().await.unwrap().len(), 43);
    let new_root = w.commit().await.unwrap();
    let mut hw = crate::Writer::open(store.clone(), root, HamtConfig::default()).unwrap();
    hw.insert("temp/c/9/9", b"new".to_vec()).await.unwrap();
    hw.remove("temp/c/0/0").await.unwrap();
    hw.insert_pointer("alias", ptr).await.unwrap();
    assert_eq!(hw.commit().await.unwrap(), new_root);

    // Both diffs agree.
    let new = w.reader().await.unwrap();
    let fast = diff(&r, &new).await.unwrap();
    let generic = diff_entries(&r, &new).await.unwrap();
    assert_eq!(fast, generic);
    let kinds: Vec<(&str, ChangeKind)> =
        generic.iter().map(|c| (c.key.as_str(), c.kind())).collect();
    assert_eq!(
        kinds,
        [
            ("alias", ChangeKind::Added),
            ("temp/c/0/0", ChangeKind::Removed),
            ("temp/c/9/9", ChangeKind::Added),
        ]
    );
    assert!(diff_entries(&r, &r).await.unwrap().is_empty());
}

#[tokio::test]
async fn reader_and_writer_over_memory() {
    reader_round_trip(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn reader_and_writer_over_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskStore::open(dir.path().join("blocks.redb")).unwrap();
    reader_round_trip(Arc::new(disk)).await;
}

#[tokio::test]
async fn generic_diff_matches_the_hamt_diff_on_many_changes() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let mut w = DatasetWriter::create(store.clone(), hamt()).unwrap();
    for i in 0..300 {
        w.insert(&format!("k{i}"), format!("{i}").into_bytes())
            .await
            .unwrap();
    }
    let a = w.reader().await.unwrap();
    for i in (0..300).step_by(7) {
        w.remove(&format!("k{i}")).await.unwrap();
    }
    for i in (0..300).step_by(11) {
        w.insert(&format!("k{i}"), b"changed".to_vec())
            .await
            .unwrap();
    }
    for i in 300..340 {
        w.insert(&format!("k{i}"), b"new".to_vec()).await.unwrap();
    }
    let b = w.reader().await.unwrap();
    let generic = diff_entries(&a, &b).await.unwrap();
    assert_eq!(generic, diff(&a, &b).await.unwrap());
    assert_eq!(
        diff_entries(&b, &a).await.unwrap(),
        diff(&b, &a).await.unwrap()
    );
    assert!(generic.windows(2).all(|p| p[0].key < p[1].key));
    // Readers on two different stores take the generic path.
    let other: SharedStore = Arc::new(MemoryStore::new());
    let mut w2 = DatasetWriter::create(other, hamt()).unwrap();
    w2.insert("k0", b"0".to_vec()).await.unwrap();
    let c = w2.reader().await.unwrap();
    assert_eq!(diff(&c, &a).await.unwrap().len(), 299);
}

#[tokio::test]
async fn sharded_roots_open_through_the_dataset_interface() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let b = Block::new(DAG_CBOR, HashAlg::Blake3, sharded_manifest());
    store.put(b.clone()).await.unwrap();
    let want = Layout::Sharded {
        version: ShardedVersion::V2,
    };
    assert_eq!(detect(&*store, &b.cid).await.unwrap(), want);
    let cfg = DatasetConfig::default();
    let r = DatasetReader::open(store.clone(), b.cid, &cfg)
        .await
        .unwrap();
    assert_eq!(r.layout(), want);
    assert_eq!(r.len().await.unwrap(), 0);
    assert!(verify(&*store, &b.cid, &cfg, &mut |_| {})
        .await
        .unwrap()
        .is_ok());
    // Write through the dataset writer: an array, a chunk; read back through a reader.
    let mut w = DatasetWriter::open(store.clone(), b.cid, &cfg)
        .await
        .unwrap();
    let meta = br#"{"zarr_format": 3, "node_type": "array", "shape": [4], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}}}"#;
    w.insert("g/x/zarr.json", meta.to_vec()).await.unwrap();
    w.insert("g/x/c/1", b"chunk".to_vec()).await.unwrap();
    assert!(matches!(
        w.insert("g/x/c/7", b"no".to_vec()).await,
        Err(Error::Sharded(_))
    ));
    let root = w.commit().await.unwrap();
    let r = DatasetReader::open(store.clone(), root, &cfg)
        .await
        .unwrap();
    assert_eq!(
        r.get("g/x/c/1").await.unwrap().as_deref(),
        Some(&b"chunk"[..])
    );
    let keys: Vec<String> = r.keys().try_collect().await.unwrap();
    assert_eq!(
        keys,
        ["zarr.json", "g/zarr.json", "g/x/zarr.json", "g/x/c/1"]
    );
    let root_listing = r.list_dir("").await.unwrap();
    // One top-level group: listed through it, as py-hamt's list_dir does.
    assert_eq!(
        (root_listing.keys, root_listing.dirs),
        (vec!["zarr.json".to_string()], vec!["x".to_string()])
    );
    let report = verify(&*store, &root, &cfg, &mut |_| {}).await.unwrap();
    assert!(report.is_ok());
    assert_eq!(report.nodes, 2, "manifest and one shard");
    // An unknown manifest version is recognised and refused with a clear error.
    let odd = {
        let mut m: BTreeMap<String, Ipld> =
            serde_ipld_dagcbor::from_slice::<Ipld>(&sharded_manifest())
                .map(|i| match i {
                    Ipld::Map(m) => m,
                    _ => unreachable!(),
                })
                .unwrap();
        m.insert(
            "manifest_version".into(),
            Ipld::String("sharded_zarr_v9".into()),
        );
        Block::new(
            DAG_CBOR,
            HashAlg::Blake3,
            serde_ipld_dagcbor::to_vec(&Ipld::Map(m)).unwrap(),
        )
    };
    store.put(odd.clone()).await.unwrap();
    match DatasetReader::open(store.clone(), odd.cid, &cfg)
        .await
        .unwrap_err()
    {
        Error::UnsupportedLayout { cid, layout } => {
            assert_eq!(cid, odd.cid);
            assert!(layout.to_string().contains("sharded_zarr_v9"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_garbage_and_raw_roots() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let garbage = Block::new(DAG_CBOR, HashAlg::Blake3, b"\xff\x00garbage".to_vec());
    let raw = Block::new(RAW, HashAlg::Blake3, b"{}".to_vec());
    store
        .put_many(vec![garbage.clone(), raw.clone()])
        .await
        .unwrap();
    for b in [&garbage, &raw] {
        match DatasetReader::open(store.clone(), b.cid, &DatasetConfig::default()).await {
            Err(e @ Error::NotADataset { .. }) => {
                assert!(e.to_string().contains(&b.cid.to_string()), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    // verify reports a garbage root as a corrupt block, and a missing one as missing.
    let report = verify(
        &*store,
        &garbage.cid,
        &DatasetConfig::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.corrupt.len(), 1);
    let ghost = crate::block::cid_of(DAG_CBOR, HashAlg::Blake3, b"ghost");
    assert!(matches!(
        DatasetReader::open(store.clone(), ghost, &DatasetConfig::default()).await,
        Err(Error::Store(_))
    ));
    let report = verify(&*store, &ghost, &DatasetConfig::default(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.missing, vec![ghost]);
}

#[tokio::test]
async fn encryption_works_on_dataset_handles() {
    use crate::crypt::{EncryptionKey, ValueCipher};
    let store: SharedStore = Arc::new(MemoryStore::new());
    let cipher = ValueCipher::new(EncryptionKey::from([9u8; 32]), b"h".to_vec());
    let mut w = DatasetWriter::create(store, hamt()).unwrap();
    cipher.insert(&mut w, "k", b"secret").await.unwrap();
    assert_eq!(
        cipher.get(&w, "k").await.unwrap().as_deref(),
        Some(&b"secret"[..])
    );
    let r = w.reader().await.unwrap();
    assert_eq!(r.get("k").await.unwrap().unwrap().len(), 6 + 40);
    let part = cipher.get_range(&r, "k", ByteRange::From(3)).await.unwrap();
    assert_eq!(part.as_deref(), Some(&b"ret"[..]));
}

#[tokio::test]
async fn car_and_block_links_reach_every_block() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let root = sample(store.clone()).await;
    let r = DatasetReader::open(store.clone(), root, &DatasetConfig::default())
        .await
        .unwrap();
    let mut car = Vec::new();
    let n = r.write_car(&mut car).await.unwrap();
    // Walk with block_links: the same set of blocks.
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root];
    while let Some(c) = stack.pop() {
        if seen.insert(c) {
            let data = store.get(&c).await.unwrap();
            stack.extend(r.block_links(&c, &data).unwrap());
        }
    }
    assert_eq!(seen.len() as u64, n);
    // The block stream: the same blocks, root first, each once, in the CAR's order.
    let blocks: Vec<Block> = r.blocks().try_collect().await.unwrap();
    assert_eq!(blocks.len() as u64, n);
    assert_eq!(blocks[0].cid, root);
    let cids: std::collections::HashSet<_> = blocks.iter().map(|b| b.cid).collect();
    assert_eq!(cids, seen);
    let mut pos = car.len();
    for b in blocks.iter().rev() {
        let at = car[..pos]
            .windows(b.data.len().max(1))
            .rposition(|w| w == &b.data[..])
            .unwrap();
        pos = at;
    }
}

/// Readers are shared between tasks (serve); writers move between tasks.
#[test]
fn handles_are_thread_safe() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn movable<T: Send + Sync + 'static>() {}
    shared::<DatasetReader>();
    movable::<DatasetWriter>();
    movable::<Layout>();
}
