//! Property and behaviour tests of the writer against a BTreeMap model.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use ipfs_hamt::key_hash::FnHasher;
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{ByteRange, Error, HamtConfig, Reader, Writer};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u8),
    Remove(u16),
    Commit,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..300, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (0u16..300).prop_map(Op::Remove),
        1 => Just(Op::Commit),
    ]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn config(mbs: usize) -> HamtConfig {
    HamtConfig {
        max_bucket_size: mbs,
        ..HamtConfig::default()
    }
}

async fn fresh_root(model: &BTreeMap<String, Vec<u8>>, mbs: usize) -> ipfs_hamt::Cid {
    let mut w = Writer::new(Arc::new(MemoryStore::new()), config(mbs)).unwrap();
    for (k, v) in model {
        w.insert(k, v.clone()).await.unwrap();
    }
    w.commit().await.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_match_model_and_canonical_root(
        ops in prop::collection::vec(op(), 1..400),
        mbs in 1usize..6,
        batch in prop_oneof![Just(1usize), Just(3), Just(4096)],
    ) {
        rt().block_on(async {
            let store = Arc::new(MemoryStore::new());
            // Small value batches keep a write in flight while later reads look for it.
            let wconfig = HamtConfig { value_batch_blocks: batch, ..config(mbs) };
            let mut w = Writer::new(store.clone(), wconfig.clone()).unwrap();
            let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Insert(k, v) => {
                        let key = format!("k{k}");
                        let val = vec![*v; (*k % 7) as usize + 1];
                        w.insert(&key, val.clone()).await.unwrap();
                        model.insert(key, val);
                    }
                    Op::Remove(k) => {
                        let key = format!("k{k}");
                        let res = w.remove(&key).await;
                        match model.remove(&key) {
                            Some(_) => prop_assert!(res.is_ok()),
                            None => prop_assert!(matches!(res, Err(Error::KeyNotFound(_)))),
                        }
                    }
                    Op::Commit => {
                        // Reopen from the root so later changes start from decoded nodes.
                        let root = w.commit().await.unwrap();
                        w = Writer::open(store.clone(), root, wconfig.clone()).unwrap();
                    }
                }
            }
            // Contents while writing.
            for (k, v) in &model {
                let got = w.get(k).await.unwrap();
                prop_assert_eq!(got.as_deref(), Some(&v[..]));
            }
            let mut keys = w.keys().await.unwrap();
            keys.sort();
            prop_assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
            // The committed root equals a fresh build of the final map.
            let root = w.commit().await.unwrap();
            prop_assert_eq!(root, fresh_root(&model, mbs).await);
            // And reads back through a reader.
            let r = Reader::new(store, root, config(mbs)).unwrap();
            prop_assert_eq!(r.len().await.unwrap(), model.len() as u64);
            let mut got: Vec<(String, Vec<u8>)> = Vec::new();
            let entries: Vec<_> = r.entries().try_collect().await.unwrap();
            for (k, _) in entries {
                let v = r.get(&k).await.unwrap().unwrap();
                got.push((k, v.to_vec()));
            }
            got.sort();
            prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
            Ok(())
        })?;
    }
}

fn one_byte_hash_config(mbs: usize) -> HamtConfig {
    HamtConfig {
        max_bucket_size: mbs,
        hasher: Arc::new(FnHasher::new("first-byte", |k: &[u8]| {
            vec![k.first().copied().unwrap_or(0)]
        })),
        ..HamtConfig::default()
    }
}

#[tokio::test]
async fn hash_exhaustion_is_typed_and_leaves_tree_unchanged() {
    // As in py-hamt's probe: a 1-byte hash, bucket size 2, a third colliding key.
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), one_byte_hash_config(2)).unwrap();
    w.insert("a1", b"1".to_vec()).await.unwrap();
    w.insert("a2", b"2".to_vec()).await.unwrap();
    let before = w.commit().await.unwrap();
    let err = w.insert("a3", b"3".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, Error::HashExhausted { depth: 1, .. }),
        "{err}"
    );
    assert_eq!(w.get("a1").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(w.get("a3").await.unwrap(), None);
    assert_eq!(w.commit().await.unwrap(), before);
    // Keys that differ in the one byte still go in.
    w.insert("b1", b"x".to_vec()).await.unwrap();
    assert!(w.contains("b1").await.unwrap());
}

#[tokio::test]
async fn deep_chain_splits_and_collapses() {
    // Keys sharing 2 of 3 hash bytes make a chain of single-link nodes; removing brings the
    // bucket back to the root.
    let hasher = FnHasher::new("three", |k: &[u8]| {
        vec![7, 9, k.last().copied().unwrap_or(0)]
    });
    let config = HamtConfig {
        max_bucket_size: 2,
        hasher: Arc::new(hasher),
        ..HamtConfig::default()
    };
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), config.clone()).unwrap();
    let empty = w.commit().await.unwrap();
    for k in ["xa", "xb"] {
        w.insert(k, k.as_bytes().to_vec()).await.unwrap();
    }
    let two = w.commit().await.unwrap();
    w.insert("xc", b"xc".to_vec()).await.unwrap();
    let r = Reader::new(store.clone(), w.commit().await.unwrap(), config.clone()).unwrap();
    let st = r.stats().await.unwrap();
    assert_eq!((st.nodes, st.max_depth, st.keys), (3, 2, 3));
    w.remove("xc").await.unwrap();
    assert_eq!(w.commit().await.unwrap(), two);
    w.remove("xa").await.unwrap();
    w.remove("xb").await.unwrap();
    assert_eq!(w.commit().await.unwrap(), empty);
}

#[tokio::test]
async fn ranges_pointers_and_ipld_values() {
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
    w.insert("digits", b"0123456789".to_vec()).await.unwrap();
    let v = ipfs_hamt::ipld::Ipld::List(vec![1.into(), ipfs_hamt::ipld::Ipld::Null]);
    w.insert_ipld("list", &v).await.unwrap();
    // Reads see values not yet flushed.
    assert_eq!(
        w.get_range("digits", ByteRange::Suffix(3))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"789"[..])
    );
    let root = w.commit().await.unwrap();
    let r = Reader::new(store, root, HamtConfig::default()).unwrap();
    let get = |o, l, s| {
        let r = r.clone();
        async move {
            r.get_range("digits", ByteRange::from_py(o, l, s))
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(&get(Some(2), Some(3), None).await[..], b"234");
    assert_eq!(&get(Some(7), None, None).await[..], b"789");
    assert_eq!(&get(None, None, Some(4)).await[..], b"6789");
    assert_eq!(&get(Some(1), Some(0), None).await[..], b"");
    assert_eq!(&get(None, Some(3), None).await[..], b"0123456789");
    assert_eq!(r.get_ipld("list").await.unwrap(), Some(v));
    let ptr = r.get_pointer("digits").await.unwrap().unwrap();
    assert_eq!(ptr.codec(), ipfs_hamt::block::RAW);
    assert!(r.get_pointer("nope").await.unwrap().is_none());
    assert!(!r.contains("nope").await.unwrap());
}

#[tokio::test]
async fn invalid_bucket_size_is_rejected() {
    let err = Writer::new(Arc::new(MemoryStore::new()), config(0)).unwrap_err();
    assert!(err.to_string().contains("positive integer"), "{err}");
}

#[tokio::test]
async fn reader_cache_counts_and_concurrent_gets() {
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
    for i in 0..2000 {
        w.insert(&format!("key-{i}"), format!("value-{i}").into_bytes())
            .await
            .unwrap();
    }
    let root = w.commit().await.unwrap();
    let r = Reader::new(store, root, HamtConfig::default()).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..2000).step_by(16) {
                let v = r.get(&format!("key-{i}")).await.unwrap().unwrap();
                assert_eq!(v, format!("value-{i}").into_bytes());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = r.cache_stats();
    assert!(s.misses >= 1 && s.hits > s.misses, "{s:?}");
    assert!(s.nodes > 0 && s.bytes > 0);
    r.clear_cache();
    assert_eq!(r.cache_stats().nodes, 0);
    r.get("key-1").await.unwrap();
    assert_eq!(
        r.cache_stats().misses,
        s.misses + 2,
        "root and child reload after clear"
    );
}

/// `insert_pointer_hashed` (the key hashed elsewhere, as Python's set pipeline does) leaves the
/// same tree as `insert_pointer`, with splits (bucket size 1) and a key set twice.
#[test]
fn inserting_prehashed_pointers_matches_insert_pointer() {
    use ipfs_hamt::block::{Block, RAW};
    use ipfs_hamt::key_hash::{Blake3Hasher, KeyHasher};
    use ipfs_hamt::store::BlockStore;
    use ipfs_hamt::HashAlg;
    rt().block_on(async {
        let store = Arc::new(MemoryStore::new());
        let mut plain = Writer::new(store.clone(), config(1)).unwrap();
        let mut hashed = Writer::new(store.clone(), config(1)).unwrap();
        for i in 0..500u32 {
            let key = format!("key-{}", i % 450);
            let block = Block::new(
                RAW,
                HashAlg::Blake3,
                bytes::Bytes::from(i.to_le_bytes().to_vec()),
            );
            store.put(block.clone()).await.unwrap();
            plain.insert_pointer(&key, block.cid).await.unwrap();
            let h = Blake3Hasher.hash(key.as_bytes());
            hashed
                .insert_pointer_hashed(&key, &h, block.cid)
                .await
                .unwrap();
        }
        let (a, b) = (
            plain.commit().await.unwrap(),
            hashed.commit().await.unwrap(),
        );
        assert_eq!(a, b);
        let r = Reader::new(store, b, config(1)).unwrap();
        assert_eq!(r.len().await.unwrap(), 450);
    });
}
