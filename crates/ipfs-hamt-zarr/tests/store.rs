//! The store against zarrs_storage's own conformance tests, its index and caches, ranges on
//! UnixFS values, and encryption.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use ipfs_hamt::block::Block;
use ipfs_hamt::crypt::{EncryptionKey, ValueCipher};
use ipfs_hamt::store::{BlockStore, MemoryStore, StoreError};
use ipfs_hamt::{Cid, HamtConfig};
use ipfs_hamt_zarr::{sync_store, HamtZarrStore};
use zarrs_storage::byte_range::ByteRange;
use zarrs_storage::store_test;
use zarrs_storage::{
    AsyncListableStorageTraits, AsyncReadableStorageTraits, AsyncWritableStorageTraits,
    StorageError, StoreKey, StorePrefix,
};

fn cipher() -> ValueCipher {
    ValueCipher::new(EncryptionKey::from([3u8; 32]), b"test-header".to_vec())
}

fn key(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_conformance_plain_and_encrypted_and_reopened() {
    for encrypted in [false, true] {
        let blocks = Arc::new(MemoryStore::new());
        let mut store = HamtZarrStore::create(blocks.clone(), HamtConfig::default()).unwrap();
        if encrypted {
            store = store.with_encryption(cipher());
        }
        store_test::async_store_write(&store).await.unwrap();
        store_test::async_store_read(&store).await.unwrap();
        store_test::async_store_list(&store).await.unwrap();
        // Sizes are plaintext sizes, encrypted or not.
        store_test::async_store_list_size(&store).await.unwrap();
        let root = store.commit().await.unwrap();

        let mut reopened =
            HamtZarrStore::open(blocks.clone(), root, HamtConfig::default()).unwrap();
        if encrypted {
            reopened = reopened.with_encryption(cipher());
        }
        store_test::async_store_read(&reopened).await.unwrap();
        store_test::async_store_list(&reopened).await.unwrap();
        store_test::async_store_list_size(&reopened).await.unwrap();
        assert!(matches!(
            reopened.set(&key("x"), Bytes::new()).await,
            Err(StorageError::ReadOnly)
        ));
        assert!(matches!(
            reopened.erase_prefix(&StorePrefix::root()).await,
            Err(StorageError::ReadOnly)
        ));
        // Reopen writable and carry on.
        let mut w = HamtZarrStore::open_writable(blocks, root, HamtConfig::default()).unwrap();
        if encrypted {
            w = w.with_encryption(cipher());
        }
        store_test::async_store_read(&w).await.unwrap();
        w.erase(&key("a/b")).await.unwrap();
        assert!(w.get(&key("a/b")).await.unwrap().is_none());
        assert_ne!(w.commit().await.unwrap(), root);
    }
}

#[test]
fn sync_conformance_through_the_adapter() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let blocks = Arc::new(MemoryStore::new());
    let store = Arc::new(HamtZarrStore::create(blocks.clone(), HamtConfig::default()).unwrap());
    let sync = sync_store(store.clone(), rt.handle().clone());
    store_test::store_write(&sync).unwrap();
    store_test::store_read(&sync).unwrap();
    store_test::store_list(&sync).unwrap();
    store_test::store_list_size(&sync).unwrap();
    let root = rt.block_on(store.commit()).unwrap();
    let ro = Arc::new(HamtZarrStore::open(blocks, root, HamtConfig::default()).unwrap());
    let sync = sync_store(ro, rt.handle().clone());
    store_test::store_read(&sync).unwrap();
    store_test::store_list(&sync).unwrap();
    store_test::store_list_size(&sync).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_is_built_once_and_metadata_is_cached() {
    let blocks = Arc::new(MemoryStore::new());
    let w = HamtZarrStore::create(blocks.clone(), HamtConfig::default()).unwrap();
    for i in 0..50 {
        w.set(&key(&format!("arr/c/{i}")), Bytes::from(vec![1u8; i]))
            .await
            .unwrap();
    }
    w.set(&key("arr/zarr.json"), Bytes::from_static(b"{\"a\":1}"))
        .await
        .unwrap();
    let root = w.commit().await.unwrap();
    let r = HamtZarrStore::open(blocks, root, HamtConfig::default()).unwrap();
    assert_eq!(r.stats().index_builds, 0);
    assert_eq!(r.list().await.unwrap().len(), 51);
    let dir = r
        .list_dir(&StorePrefix::new("arr/").unwrap())
        .await
        .unwrap();
    assert_eq!(dir.keys(), &[key("arr/zarr.json")]);
    assert_eq!(dir.prefixes(), &[StorePrefix::new("arr/c/").unwrap()]);
    assert_eq!(
        r.list_prefix(&StorePrefix::new("arr/c/").unwrap())
            .await
            .unwrap()
            .len(),
        50
    );
    let want: u64 = (0..50).sum::<u64>() + 7;
    assert_eq!(r.size().await.unwrap(), want);
    assert_eq!(r.size().await.unwrap(), want);
    assert_eq!(r.stats().index_builds, 1);

    let meta = key("arr/zarr.json");
    assert_eq!(&r.get(&meta).await.unwrap().unwrap()[..], b"{\"a\":1}");
    let hits = r.stats().metadata_hits;
    assert_eq!(&r.get(&meta).await.unwrap().unwrap()[..], b"{\"a\":1}");
    assert_eq!(
        r.get_partial(&meta, ByteRange::Suffix(2))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"1}"[..])
    );
    assert_eq!(r.stats().metadata_hits, hits + 2);
}

/// Counts block reads.
struct Counting {
    inner: MemoryStore,
    gets: AtomicU64,
}

#[async_trait]
impl BlockStore for Counting {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(cid).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.inner.has(cid).await
    }
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        self.inner.put_many(blocks).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_on_unixfs_values_read_only_the_leaves_needed() {
    let blocks = Arc::new(Counting {
        inner: MemoryStore::new(),
        gets: AtomicU64::new(0),
    });
    let big: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
    let w = HamtZarrStore::create(blocks.clone(), HamtConfig::default()).unwrap();
    w.set(&key("big/c/0"), Bytes::from(big.clone()))
        .await
        .unwrap();
    let root = w.commit().await.unwrap();
    let r = HamtZarrStore::open(blocks.clone(), root, HamtConfig::default()).unwrap();
    let k = key("big/c/0");
    let reads = |what: &str, before: u64, most: u64| {
        let n = blocks.gets.load(Ordering::Relaxed) - before;
        assert!(
            n <= most,
            "{what}: {n} block reads, at most {most} expected"
        );
    };
    assert_eq!(r.size_key(&k).await.unwrap(), Some(big.len() as u64));
    let before = blocks.gets.load(Ordering::Relaxed);
    let tail = r
        .get_partial(&k, ByteRange::Suffix(16))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&tail[..], &big[big.len() - 16..]);
    // HAMT root node (cached after the first lookup) + file root + one leaf.
    reads("suffix", before, 3);
    let before = blocks.gets.load(Ordering::Relaxed);
    let mid = r
        .get_partial(&k, ByteRange::FromStart(1_048_570, Some(20)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&mid[..], &big[1_048_570..1_048_590]);
    reads("straddling", before, 4);
    // Out of range: zarrs' error, not clamped bytes.
    let err = r
        .get_partial(&k, ByteRange::FromStart(3_499_990, Some(20)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidByteRangeError(_)),
        "{err:?}"
    );
    assert!(r
        .get_partial(&k, ByteRange::Suffix(3_500_001))
        .await
        .is_err());
    assert_eq!(r.get(&k).await.unwrap().unwrap().len(), big.len());
    assert_eq!(r.stats().suffix_reads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_values_are_sealed_and_wrong_keys_fail() {
    let blocks = Arc::new(MemoryStore::new());
    let w = HamtZarrStore::create(blocks.clone(), HamtConfig::default())
        .unwrap()
        .with_encryption(cipher());
    let secret = Bytes::from_static(b"very secret chunk bytes");
    w.set(&key("a/c/0"), secret.clone()).await.unwrap();
    let root = w.commit().await.unwrap();
    // Underneath: a HAMT whose key is in clear and whose value is nonce||tag||ciphertext.
    let plain = HamtZarrStore::open(blocks.clone(), root, HamtConfig::default()).unwrap();
    let stored = plain.get(&key("a/c/0")).await.unwrap().unwrap();
    assert_eq!(stored.len(), secret.len() + 40);
    assert!(!stored.windows(6).any(|w| w == b"secret"));
    assert_eq!(plain.list().await.unwrap(), vec![key("a/c/0")]);
    let dec = HamtZarrStore::open(blocks.clone(), root, HamtConfig::default())
        .unwrap()
        .with_encryption(cipher());
    assert_eq!(dec.get(&key("a/c/0")).await.unwrap().unwrap(), secret);
    assert_eq!(
        dec.get_partial(&key("a/c/0"), ByteRange::FromStart(5, Some(6)))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"secret"[..])
    );
    assert_eq!(
        dec.size_key(&key("a/c/0")).await.unwrap(),
        Some(secret.len() as u64)
    );
    let wrong = HamtZarrStore::open(blocks, root, HamtConfig::default())
        .unwrap()
        .with_encryption(ValueCipher::new(
            EncryptionKey::from([3u8; 32]),
            b"other".to_vec(),
        ));
    let err = wrong.get(&key("a/c/0")).await.unwrap_err();
    assert!(err.to_string().contains("decryption failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_py_hamt_golden_dataset_with_one_scan() {
    let dir = std::env::var_os("IPFS_HAMT_GOLDEN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
        });
    let car = Arc::new(ipfs_hamt::store::CarStore::open(dir.join("cars/zarr_plain.car")).unwrap());
    let root = car.roots()[0];
    let s = Arc::new(HamtZarrStore::open(car, root, HamtConfig::default()).unwrap());
    // Concurrent first listings scan the tree once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.list().await.unwrap().len() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 40);
    }
    let top = s.list_dir(&StorePrefix::root()).await.unwrap();
    assert_eq!(top.keys(), &[key("zarr.json")]);
    let names: Vec<&str> = top.prefixes().iter().map(|p| p.as_str()).collect();
    assert_eq!(names, ["lat/", "lon/", "temperature/", "time/"]);
    let t = s
        .list_dir(&StorePrefix::new("temperature/c/").unwrap())
        .await
        .unwrap();
    assert!(t.keys().is_empty());
    assert_eq!(t.prefixes().len(), 4);
    assert_eq!(
        s.size_prefix(&StorePrefix::new("lat/").unwrap())
            .await
            .unwrap(),
        140 + 695
    );
    assert_eq!(s.stats().index_builds, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_encrypted_values_round_trip() {
    let blocks = Arc::new(MemoryStore::new());
    let w = HamtZarrStore::create(blocks.clone(), HamtConfig::default())
        .unwrap()
        .with_encryption(cipher());
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    w.set(&key("big"), Bytes::from(big.clone())).await.unwrap();
    let root = w.commit().await.unwrap();
    let r = HamtZarrStore::open(blocks, root, HamtConfig::default())
        .unwrap()
        .with_encryption(cipher());
    assert_eq!(
        r.size_key(&key("big")).await.unwrap(),
        Some(big.len() as u64)
    );
    assert_eq!(r.size().await.unwrap(), big.len() as u64);
    let tail = r
        .get_partial(&key("big"), ByteRange::Suffix(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&tail[..], &big[big.len() - 5..]);
    assert_eq!(r.get(&key("big")).await.unwrap().unwrap(), big);
}
