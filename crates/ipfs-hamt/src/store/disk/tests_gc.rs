//! Tests of pins, gc, recovery of unindexed records and the migration of old store files.

use super::*;
use crate::block::{HashAlg, DAG_CBOR, RAW};
use crate::store::BlockStore;
use ipld_core::ipld::Ipld;
use std::collections::BTreeMap;

fn raw(i: u64, len: usize) -> Block {
    let mut data = vec![0u8; len];
    data[..8].copy_from_slice(&i.to_le_bytes());
    Block::new(RAW, HashAlg::Blake3, data)
}

/// A dag-cbor node linking to `links`.
fn node(tag: &str, links: &[Cid]) -> Block {
    let mut m = BTreeMap::new();
    m.insert("tag".to_string(), Ipld::String(tag.into()));
    m.insert(
        "links".to_string(),
        Ipld::List(links.iter().map(|c| Ipld::Link(*c)).collect()),
    );
    let bytes = serde_ipld_dagcbor::to_vec(&Ipld::Map(m)).unwrap();
    Block::new(DAG_CBOR, HashAlg::Sha2_256, bytes)
}

fn segment_files(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn gc_keeps_what_pins_reach_and_frees_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = DiskStore::open(&path).unwrap();
    // Pinned DAG: root -> (mid -> leaves 0..10), leaf 10. Unpinned: another DAG and loose leaves.
    let leaves: Vec<Block> = (0..11).map(|i| raw(i, 1000)).collect();
    let mid = node(
        "mid",
        &leaves[..10].iter().map(|b| b.cid).collect::<Vec<_>>(),
    );
    let root = node("root", &[mid.cid, leaves[10].cid]);
    let junk: Vec<Block> = (100..150).map(|i| raw(i, 2000)).collect();
    let junk_root = node("junk", &[junk[0].cid, leaves[0].cid]);
    let mut all = leaves.clone();
    all.extend([mid.clone(), root.clone(), junk_root.clone()]);
    all.extend(junk.clone());
    s.put_many(all).await.unwrap();
    s.pin_add(&root.cid).await.unwrap();
    assert!(s.is_pinned(&root.cid).await.unwrap());
    let before = s.stats().await.unwrap();
    let report = s.gc().await.unwrap();
    assert_eq!(report.blocks, 51, "{report:?}");
    assert_eq!(report.bytes, 50 * 2000 + junk_root.data.len() as u64);
    assert_eq!(report.pins, 1);
    assert_eq!(report.missing, 0);
    assert!(report.segments_rewritten >= 1);
    let after = s.stats().await.unwrap();
    assert_eq!(after.blocks, before.blocks - 51);
    for b in leaves.iter().chain([&mid, &root]) {
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    }
    for b in junk.iter().chain([&junk_root]) {
        assert!(!s.has(&b.cid).await.unwrap());
    }
    assert!(s.verify_all(|_| {}).await.unwrap().is_ok());
    // The old segment is gone; the live records moved to a new one.
    assert_eq!(segment_files(&path), vec!["00000002.seg".to_string()]);
    // A second gc finds nothing more to free, and the store reopens intact.
    assert_eq!(s.gc().await.unwrap().blocks, 0);
    drop(s);
    let s = DiskStore::open(&path).unwrap();
    assert_eq!(s.stats().await.unwrap(), after);
    assert_eq!(s.get(&root.cid).await.unwrap(), root.data);
    assert!(s.verify_all(|_| {}).await.unwrap().is_ok());
    // Unpinned, everything goes (once synced: unsynced writes are protected).
    assert!(s.pin_rm(&root.cid).await.unwrap());
    assert!(!s.pin_rm(&root.cid).await.unwrap());
    let report = s.gc().await.unwrap();
    assert_eq!(report.blocks, after.blocks);
    assert_eq!(s.stats().await.unwrap(), DiskStats::default());
}

#[tokio::test]
async fn gc_keeps_unsynced_writes_and_pin_update_moves_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let s = DiskStore::open(dir.path().join("s")).unwrap();
    let v1 = node("v1", &[raw(1, 10).cid]);
    s.put_many(vec![v1.clone(), raw(1, 10)]).await.unwrap();
    s.pin_add(&v1.cid).await.unwrap(); // syncs
                                       // Written, not yet synced (an import in progress): kept.
    let pending = raw(2, 10);
    s.put(pending.clone()).await.unwrap();
    assert_eq!(s.gc().await.unwrap().blocks, 0);
    assert!(s.has(&pending.cid).await.unwrap());
    // The import commits v2 and moves the pin: v1 goes at the next gc, v2 stays.
    let v2 = node("v2", &[pending.cid]);
    s.put(v2.clone()).await.unwrap();
    s.pin_update(Some(&v1.cid), &v2.cid).await.unwrap();
    assert_eq!(s.pins().await.unwrap(), vec![v2.cid]);
    let r = s.gc().await.unwrap();
    assert_eq!(r.blocks, 2, "{r:?}");
    assert!(s.has(&v2.cid).await.unwrap() && s.has(&pending.cid).await.unwrap());
    assert!(!s.has(&v1.cid).await.unwrap());
    // Pinning a root the store does not hold is refused.
    let absent = raw(99, 8);
    assert!(matches!(
        s.pin_add(&absent.cid).await,
        Err(StoreError::NotFound(_))
    ));
    // Moving from an unpinned root just adds the new pin.
    let v3 = node("v3", &[]);
    s.put(v3.clone()).await.unwrap();
    s.pin_update(Some(&absent.cid), &v3.cid).await.unwrap();
    let mut pins = s.pins().await.unwrap();
    pins.sort();
    let mut want = vec![v2.cid, v3.cid];
    want.sort();
    assert_eq!(pins, want);
}

#[tokio::test]
async fn unindexed_records_are_recovered_and_a_torn_tail_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let blocks: Vec<Block> = (0..20).map(|i| raw(i, 300)).collect();
    {
        let s = DiskStore::open(&path).unwrap();
        s.put_many(blocks[..10].to_vec()).await.unwrap();
        s.sync().await.unwrap();
    }
    // Records appended behind the index's back (as after a crash before the index batch),
    // then half a record (a torn write).
    let seg_path = path.join("segments/00000001.seg");
    let mut bytes = std::fs::read(&seg_path).unwrap();
    let mut extra = Vec::new();
    for b in &blocks[10..] {
        segment::encode(&mut extra, &b.cid.hash().to_bytes(), &b.data);
    }
    let mut torn = Vec::new();
    segment::encode(&mut torn, b"\x1e\x20partial", &[7u8; 500]);
    bytes.extend_from_slice(&extra);
    let good_len = bytes.len() as u64;
    bytes.extend_from_slice(&torn[..200]);
    std::fs::write(&seg_path, &bytes).unwrap();
    let s = DiskStore::open(&path).unwrap();
    for b in &blocks {
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    }
    assert_eq!(s.stats().await.unwrap().blocks, 20);
    assert_eq!(std::fs::metadata(&seg_path).unwrap().len(), good_len);
    assert!(s.verify_all(|_| {}).await.unwrap().is_ok());
}

/// Writes a store file of the previous format (one redb file), as the old code did.
fn write_old_store(path: &Path, blocks: &[Block]) {
    const BLOCKS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("blocks");
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let db = redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(BLOCKS).unwrap();
        let mut m = w.open_table(META).unwrap();
        let mut bytes = 0;
        for b in blocks {
            t.insert(b.cid.hash().to_bytes().as_slice(), b.data.as_ref())
                .unwrap();
            bytes += b.data.len() as u64;
        }
        m.insert("blocks", blocks.len() as u64).unwrap();
        m.insert("bytes", bytes).unwrap();
    }
    w.commit().unwrap();
}

#[tokio::test]
async fn an_old_store_file_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    let blocks: Vec<Block> = (0..500).map(|i| raw(i, 100 + i as usize)).collect();
    write_old_store(&path, &blocks);
    let s = DiskStore::open(&path).unwrap();
    assert!(path.is_dir());
    assert!(dir.path().join("blocks.redb.v1-backup").is_file());
    assert!(!dir.path().join("blocks.redb.migrating").exists());
    for b in &blocks {
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    }
    assert_eq!(s.stats().await.unwrap().blocks, 500);
    assert!(s.verify_all(|_| {}).await.unwrap().is_ok());
    drop(s);
    // Opens as a new store from now on.
    let s = DiskStore::open(&path).unwrap();
    assert_eq!(s.stats().await.unwrap().blocks, 500);
}

#[tokio::test]
async fn an_interrupted_migration_is_redone_or_finished() {
    let dir = tempfile::tempdir().unwrap();
    let blocks: Vec<Block> = (0..50).map(|i| raw(i, 64)).collect();
    // Killed mid-build: a partial .migrating directory without its marker is discarded.
    let path = dir.path().join("a.redb");
    write_old_store(&path, &blocks);
    let tmp = dir.path().join("a.redb.migrating");
    std::fs::create_dir_all(tmp.join("segments")).unwrap();
    std::fs::write(tmp.join("segments/00000001.seg"), b"partial").unwrap();
    let s = DiskStore::open(&path).unwrap();
    assert_eq!(s.stats().await.unwrap().blocks, 50);
    drop(s);
    // Killed between the two renames: the next open finishes.
    let path = dir.path().join("b.redb");
    write_old_store(&path, &blocks);
    {
        let s = DiskStore::open(&path).unwrap();
        drop(s);
    }
    let backup = dir.path().join("b.redb.v1-backup");
    let tmp = dir.path().join("b.redb.migrating");
    std::fs::rename(&path, &tmp).unwrap();
    std::fs::rename(&backup, &path).unwrap();
    std::fs::write(
        tmp.join("MIGRATION-COMPLETE"),
        std::path::absolute(&path)
            .unwrap()
            .as_os_str()
            .as_encoded_bytes(),
    )
    .unwrap();
    let s = DiskStore::open(&path).unwrap();
    assert!(backup.is_file() && !tmp.exists());
    for b in &blocks {
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    }
}

#[tokio::test]
async fn the_old_default_store_moves_to_the_new_default() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("share/ipfs-hamt");
    std::fs::create_dir_all(&base).unwrap();
    let blocks: Vec<Block> = (0..10).map(|i| raw(i, 64)).collect();
    write_old_store(&base.join("blocks.redb"), &blocks);
    let s = DiskStore::open(base.join("store")).unwrap();
    assert_eq!(s.stats().await.unwrap().blocks, 10);
    assert!(base.join("blocks.redb.v1-backup").is_file());
    assert!(!base.join("blocks.redb").exists());
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let blocks: Vec<Block> = (0..300).map(|i| raw(i, 500)).collect();
    {
        let s = DiskStore::open(&path).unwrap();
        s.put_many(blocks[..200].to_vec()).await.unwrap();
        s.sync().await.unwrap();
        s.put_many(blocks[200..].to_vec()).await.unwrap();
        s.pin_add(&blocks[0].cid).await.unwrap();
    }
    // What the damaged-index error message advises: move the index away and reopen.
    std::fs::rename(path.join("index"), dir.path().join("old-index")).unwrap();
    let s = DiskStore::open(&path).unwrap();
    for b in &blocks {
        assert_eq!(s.get(&b.cid).await.unwrap(), b.data);
    }
    assert_eq!(
        s.stats().await.unwrap(),
        DiskStats {
            blocks: 300,
            bytes: 300 * 500
        }
    );
    assert!(s.verify_all(|_| {}).await.unwrap().is_ok());
    // Pins lived in the index: they must be added again.
    assert!(s.pins().await.unwrap().is_empty());
}
