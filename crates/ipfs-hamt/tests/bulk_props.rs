//! The bulk builder against the incremental writer: same keys, same root, same blocks.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use ipfs_hamt::bulk::{BulkHamtBuilder, BulkOptions, BulkPhase};
use ipfs_hamt::key_hash::{FnHasher, KeyHasher};
use ipfs_hamt::node::IdEncoding;
use ipfs_hamt::store::MemoryStore;
use ipfs_hamt::{Cid, Error, HamtConfig, Reader, Writer};
use proptest::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// BLAKE3 with the first bytes forced into a few values, so many keys share hash prefixes
/// (deep chains of single-link nodes and full buckets at every level).
fn clustered_hasher() -> Arc<dyn KeyHasher> {
    Arc::new(FnHasher::new("clustered", |k: &[u8]| {
        let mut h = blake3::hash(k).as_bytes().to_vec();
        h[0] = 7;
        h[1] %= 2;
        h[2] %= 3;
        h
    }))
}

fn config(mbs: usize, ids: IdEncoding, clustered: bool) -> HamtConfig {
    HamtConfig {
        max_bucket_size: mbs,
        ids,
        hasher: if clustered {
            clustered_hasher()
        } else {
            HamtConfig::default().hasher
        },
        // Small batches: many put_many calls, some in flight while others fill.
        value_batch_blocks: 7,
        ..HamtConfig::default()
    }
}

fn options(budget: usize, dir: &std::path::Path) -> BulkOptions {
    BulkOptions {
        memory_budget: budget,
        spill_dir: dir.to_path_buf(),
    }
}

async fn writer_build(ops: &[(String, Vec<u8>)], config: &HamtConfig) -> (Cid, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), config.clone()).unwrap();
    for (k, v) in ops {
        w.insert(k, v.clone()).await.unwrap();
    }
    let root = w.commit().await.unwrap();
    (root, store)
}

async fn bulk_build(
    ops: &[(String, Vec<u8>)],
    config: &HamtConfig,
    opts: BulkOptions,
) -> Result<(Cid, Arc<MemoryStore>), Error> {
    let store = Arc::new(MemoryStore::new());
    let mut b = BulkHamtBuilder::new(store.clone(), config.clone(), opts)?;
    for (k, v) in ops {
        b.add(k, v.clone()).await?;
    }
    Ok((b.finish().await?, store))
}

fn sorted_blocks(s: &MemoryStore) -> Vec<(Vec<u8>, bytes::Bytes)> {
    let mut b = s.blocks().unwrap();
    b.sort();
    b
}

fn key_ops() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    // A small key space: repeated keys (the last value wins) are common.
    prop::collection::vec(
        (0u16..400, prop::collection::vec(any::<u8>(), 0..12)),
        0..300,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, val)| (format!("k/{k}"), val))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn bulk_root_equals_writer_root(
        ops in key_ops(),
        mbs in prop_oneof![Just(1usize), Just(4), Just(16)],
        multihash_ids in any::<bool>(),
        clustered in any::<bool>(),
        budget in prop_oneof![Just(200usize), Just(3000), Just(64 << 20)],
    ) {
        let ids = if multihash_ids { IdEncoding::Multihash } else { IdEncoding::Cid };
        let cfg = config(mbs, ids, clustered);
        let tmp = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let (want, wstore) = writer_build(&ops, &cfg).await;
            let (got, bstore) = bulk_build(&ops, &cfg, options(budget, tmp.path())).await.unwrap();
            prop_assert_eq!(got, want);
            // Exactly the same blocks: values and the final nodes, nothing else.
            prop_assert_eq!(sorted_blocks(&bstore), sorted_blocks(&wstore));
            // And it reads back as the model.
            let model: BTreeMap<_, _> = ops.iter().cloned().collect();
            let r = Reader::new(bstore.clone(), got, cfg.clone()).unwrap();
            let keys: Vec<String> = r.keys().try_collect().await.unwrap();
            prop_assert_eq!(keys.len(), model.len());
            for (k, v) in &model {
                let got = r.get(k).await.unwrap();
                prop_assert_eq!(got.as_deref(), Some(&v[..]));
            }
            Ok(())
        })?;
        // The spill directory is removed.
        prop_assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}

#[test]
fn empty_input_gives_the_empty_root() {
    let tmp = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let cfg = HamtConfig::default();
        let (root, _) = bulk_build(&[], &cfg, options(100, tmp.path()))
            .await
            .unwrap();
        assert_eq!(
            root.to_string(),
            "bafyr4igb3js3dqlnsvmbi533lhghfet3l4r35vbi7mlrvxjb6f3n5wkc3m"
        );
    });
}

#[test]
fn large_values_and_pointers_match_the_writer() {
    let tmp = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let cfg = HamtConfig::default();
        // Over 1 MiB: a UnixFS file, as the writer stores it.
        let big: Vec<u8> = (0..(3 << 20) / 2).map(|i| (i % 251) as u8).collect();
        let ops = vec![
            ("big".to_owned(), big.clone()),
            ("small".to_owned(), b"x".to_vec()),
        ];
        let (want, _) = writer_build(&ops, &cfg).await;
        let store = Arc::new(MemoryStore::new());
        let mut b =
            BulkHamtBuilder::new(store.clone(), cfg.clone(), options(64, tmp.path())).unwrap();
        b.add("big", big.clone()).await.unwrap();
        // A pointer to a block stored by someone else.
        let small = ipfs_hamt::block::cid_of(ipfs_hamt::block::RAW, cfg.block_hash, b"x");
        b.add_pointer("small", small).unwrap();
        let phases = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = phases.clone();
        b.on_progress(move |p| seen.lock().unwrap().push(p.phase));
        assert_eq!(b.finish().await.unwrap(), want);
        let phases = phases.lock().unwrap().clone();
        assert_eq!(
            phases,
            [BulkPhase::Merging, BulkPhase::Building, BulkPhase::Done]
        );
        let r = Reader::new(store, want, cfg).unwrap();
        assert_eq!(r.get("big").await.unwrap().as_deref(), Some(&big[..]));
    });
}

#[test]
fn identical_hashes_beyond_the_bucket_size_fail_like_the_writer() {
    let tmp = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let cfg = HamtConfig {
            max_bucket_size: 2,
            hasher: Arc::new(FnHasher::new("const", |_: &[u8]| vec![1, 2])),
            ..HamtConfig::default()
        };
        let two: Vec<(String, Vec<u8>)> =
            (0..2).map(|i| (format!("k{i}"), vec![i as u8])).collect();
        // Up to the bucket size it works and agrees.
        let (want, _) = writer_build(&two, &cfg).await;
        let (got, _) = bulk_build(&two, &cfg, options(64, tmp.path()))
            .await
            .unwrap();
        assert_eq!(got, want);
        // One more: both refuse with the hash-exhausted error at depth 2.
        let three: Vec<(String, Vec<u8>)> =
            (0..3).map(|i| (format!("k{i}"), vec![i as u8])).collect();
        let mut w = Writer::new(Arc::new(MemoryStore::new()), cfg.clone()).unwrap();
        let mut werr = None;
        for (k, v) in &three {
            if let Err(e) = w.insert(k, v.clone()).await {
                werr = Some(e);
            }
        }
        assert!(
            matches!(werr, Some(Error::HashExhausted { depth: 2, .. })),
            "{werr:?}"
        );
        let e = bulk_build(&three, &cfg, options(64, tmp.path()))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::HashExhausted { depth: 2, .. }), "{e:?}");
    });
}

#[test]
fn variable_length_hashes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let cfg = HamtConfig {
            hasher: Arc::new(FnHasher::new("len", |k: &[u8]| vec![0; k.len() % 3 + 1])),
            ..HamtConfig::default()
        };
        let ops = vec![("ab".to_owned(), vec![1])];
        let e = bulk_build(&ops, &cfg, options(64, tmp.path()))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidConfig(_)), "{e:?}");
    });
}
