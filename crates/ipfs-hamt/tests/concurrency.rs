//! One writer committing generation after generation while 64 reader tasks open readers on the
//! roots it publishes: every reader sees exactly one generation (all its keys, with its values,
//! and nothing of another), nothing deadlocks, and the loop is bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use ipfs_hamt::store::{DiskStore, MemoryStore, SharedStore};
use ipfs_hamt::{Cid, HamtConfig, Reader, Writer};
use tokio::sync::watch;

const READERS: usize = 64;
const GENERATIONS: u64 = 30;
/// Keys of generation `g`: `BASE + 7 g` (the tree grows, nodes split under the readers).
const BASE: u64 = 150;

fn keys_in(g: u64) -> u64 {
    BASE + 7 * g
}

fn value(g: u64, i: u64) -> Vec<u8> {
    format!("gen {g} key {i}").into_bytes()
}

/// Checks that `root` is one whole generation; returns it.
async fn check_root(store: &SharedStore, root: Cid) -> u64 {
    let r = Reader::new(store.clone(), root, HamtConfig::default()).unwrap();
    let g: u64 = String::from_utf8(r.get("generation").await.unwrap().unwrap().to_vec())
        .unwrap()
        .parse()
        .unwrap();
    let n = keys_in(g);
    for i in 0..n {
        let got = r.get(&format!("k{i}")).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(&value(g, i)[..]),
            "root {root}, gen {g}, k{i}"
        );
    }
    assert_eq!(
        r.get(&format!("k{n}")).await.unwrap(),
        None,
        "gen {g} has k{n}"
    );
    assert_eq!(r.len().await.unwrap(), n + 1, "gen {g} key count");
    let listed: Vec<String> = r.keys().try_collect().await.unwrap();
    assert_eq!(listed.len() as u64, n + 1);
    g
}

async fn run(store: SharedStore) {
    let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
    let (tx, rx) = watch::channel(None::<Cid>);
    let checks = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for t in 0..READERS {
        let (mut rx, store, checks) = (rx.clone(), store.clone(), checks.clone());
        readers.push(tokio::spawn(async move {
            let mut last = None;
            // Ends when the writer drops the sender: at most GENERATIONS + 1 roots.
            loop {
                let root = *rx.borrow_and_update();
                if let Some(root) = root {
                    let g = check_root(&store, root).await;
                    if let Some(prev) = last {
                        assert!(g >= prev, "reader {t}: generation went back {prev} -> {g}");
                    }
                    last = Some(g);
                    checks.fetch_add(1, Ordering::Relaxed);
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
            last
        }));
    }
    drop(rx);
    for g in 0..GENERATIONS {
        for i in 0..keys_in(g) {
            w.insert(&format!("k{i}"), value(g, i)).await.unwrap();
        }
        w.insert("generation", g.to_string().into_bytes())
            .await
            .unwrap();
        let root = w.commit().await.unwrap();
        tx.send(Some(root)).unwrap();
        tokio::task::yield_now().await;
    }
    drop(tx);
    for r in readers {
        assert_eq!(
            r.await.unwrap(),
            Some(GENERATIONS - 1),
            "every reader ends on the last"
        );
    }
    let n = checks.load(Ordering::Relaxed);
    assert!(n >= READERS as u64, "{n} roots checked");
    eprintln!("{n} consistent roots checked by {READERS} readers over {GENERATIONS} commits");
}

/// A hang (deadlock) fails the test instead of blocking the suite.
async fn bounded(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(300), f)
        .await
        .expect("writer and readers did not finish: deadlock?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_one_generation_memory_store() {
    bounded(run(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_one_generation_disk_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path().join("blocks.redb")).unwrap();
    bounded(run(Arc::new(store))).await;
}
