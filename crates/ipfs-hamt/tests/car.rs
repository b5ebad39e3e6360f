//! CAR store tests against the py-hamt golden CARs and malformed inputs.

use std::path::{Path, PathBuf};

use ipfs_hamt::block::{Block, HashAlg, VerifyError, DAG_CBOR, DAG_PB, RAW};
use ipfs_hamt::store::car::write_car;
use ipfs_hamt::store::{BlockStore, CarStore, MemoryStore, StoreError};
use ipfs_hamt::Cid;
use sha2::Digest as _;

mod common;

fn golden_dir() -> Option<PathBuf> {
    Some(common::golden_dir())
}

/// (name, car path, root, block count, car sha256) of every golden CAR.
fn golden_cases(dir: &Path) -> Vec<(String, PathBuf, Cid, usize, String)> {
    let mut out = Vec::new();
    for file in ["cases.json", "zarr_cases.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for c in v["cases"].as_array().unwrap() {
            out.push((
                c["name"].as_str().unwrap().to_string(),
                dir.join(c["car"].as_str().unwrap()),
                Cid::try_from(c["root"].as_str().unwrap()).unwrap(),
                c["blocks"].as_u64().unwrap() as usize,
                c["car_sha256"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert_eq!(out.len(), 22);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn check_all_blocks(store: &CarStore) {
    for cid in store.cids() {
        let data = store.get(&cid).await.unwrap();
        assert!(ipfs_hamt::block::verify(&cid, &data).is_ok());
        assert!(store.has(&cid).await.unwrap());
    }
}

#[tokio::test]
async fn golden_cars_open_verify_and_reexport_byte_identical() {
    let Some(dir) = golden_dir() else { return };
    for (name, path, root, blocks, sha) in golden_cases(&dir) {
        let store = CarStore::open(&path).unwrap();
        assert_eq!(store.roots(), vec![root], "{name}");
        assert_eq!(store.len(), blocks, "{name}");
        check_all_blocks(&store).await;
        let mut out = Vec::new();
        let n = write_car(&store, &root, &mut out).await.unwrap();
        assert_eq!(n as usize, blocks, "{name}");
        assert_eq!(hex(&sha2::Sha256::digest(&out)), sha, "{name}");
        assert_eq!(out, std::fs::read(&path).unwrap(), "{name}");
    }
}

/// A CARv2 wrapping `v1`, with padding before the payload and a junk index after it.
fn carv2(v1: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02,
    ];
    out.extend_from_slice(&[0u8; 16]);
    let data_offset = 11 + 40 + 5u64;
    out.extend_from_slice(&data_offset.to_le_bytes());
    out.extend_from_slice(&(v1.len() as u64).to_le_bytes());
    out.extend_from_slice(&(data_offset + v1.len() as u64).to_le_bytes());
    out.extend_from_slice(&[0u8; 5]);
    out.extend_from_slice(v1);
    out.extend_from_slice(b"junk index bytes");
    out
}

#[tokio::test]
async fn carv2_reads() {
    let Some(dir) = golden_dir() else { return };
    let (_, path, root, blocks, _) = golden_cases(&dir).swap_remove(3);
    let v1 = std::fs::read(&path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("v2.car");
    std::fs::write(&p, carv2(&v1)).unwrap();
    let store = CarStore::open(&p).unwrap();
    assert_eq!(store.roots(), vec![root]);
    assert_eq!(store.len(), blocks);
    check_all_blocks(&store).await;
    let mut out = Vec::new();
    write_car(&store, &root, &mut out).await.unwrap();
    assert_eq!(out, v1);

    // A payload that runs past the end of the file is corrupt.
    let mut bad = carv2(&v1);
    bad[11 + 24..11 + 32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    std::fs::write(&p, &bad).unwrap();
    assert!(matches!(CarStore::open(&p), Err(StoreError::Corrupt(_))));
    // A v2 header cut short is corrupt.
    std::fs::write(&p, &carv2(&v1)[..30]).unwrap();
    assert!(matches!(CarStore::open(&p), Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn flipped_byte_fails_verification_naming_the_cid() {
    let Some(dir) = golden_dir() else { return };
    let (_, path, _, _, _) = golden_cases(&dir).swap_remove(2);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("flip.car");
    std::fs::write(&p, &bytes).unwrap();
    let store = CarStore::open(&p).unwrap();
    let cids = store.cids();
    let victim = *cids.last().unwrap();
    match store.get(&victim).await {
        Err(StoreError::Verify(VerifyError::Mismatch(c))) => assert_eq!(c, victim),
        other => panic!("expected a verification error, got {other:?}"),
    }
    let msg = store.get(&victim).await.unwrap_err().to_string();
    assert!(msg.contains(&victim.to_string()), "{msg}");
    // The other blocks are fine.
    for cid in &cids[..cids.len() - 1] {
        store.get(cid).await.unwrap();
    }
    // Exporting refuses the corrupt block too.
    let root = store.roots()[0];
    assert!(matches!(
        write_car(&store, &root, Vec::new()).await,
        Err(StoreError::Verify(_))
    ));
}

#[tokio::test]
async fn every_truncation_is_corrupt_or_a_shorter_valid_car() {
    let Some(dir) = golden_dir() else { return };
    let (_, path, root, _, _) = golden_cases(&dir).swap_remove(2);
    let bytes = std::fs::read(&path).unwrap();
    // Section boundaries: where a truncated file is still a valid CAR.
    let full = CarStore::open(&path).unwrap();
    let mut boundaries = vec![59usize];
    let mut pos = 59usize;
    for cid in full.cids() {
        let data = full.get(&cid).await.unwrap();
        let section = cid.to_bytes().len() + data.len();
        pos +=
            unsigned_varint::encode::u64(section as u64, &mut Default::default()).len() + section;
        boundaries.push(pos);
    }
    assert_eq!(pos, bytes.len());
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.car");
    for n in 0..bytes.len() {
        std::fs::write(&p, &bytes[..n]).unwrap();
        match CarStore::open(&p) {
            Ok(s) => {
                assert!(boundaries.contains(&n), "truncation at {n} accepted");
                assert_eq!(s.roots(), vec![root]);
                assert_eq!(s.len(), boundaries.iter().position(|&b| b == n).unwrap());
                check_all_blocks(&s).await;
            }
            Err(StoreError::Corrupt(msg)) => {
                assert!(!boundaries.contains(&n), "boundary {n} rejected: {msg}");
                assert!(msg.contains("offset"), "{msg}");
            }
            Err(e) => panic!("truncation at {n}: unexpected error {e}"),
        }
    }
}

fn open_bytes(bytes: &[u8]) -> Result<CarStore, StoreError> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("g.car");
    std::fs::write(&p, bytes).unwrap();
    CarStore::open(&p)
}

fn assert_corrupt(bytes: &[u8], what: &str) {
    match open_bytes(bytes) {
        Err(StoreError::Corrupt(msg)) => eprintln!("{what}: {msg}"),
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(_) => panic!("{what}: expected Corrupt, got a store"),
    }
}

/// `varint(len) + header` for a hand-made header.
fn with_len(header: &[u8]) -> Vec<u8> {
    let mut out =
        unsigned_varint::encode::u64(header.len() as u64, &mut Default::default()).to_vec();
    out.extend_from_slice(header);
    out
}

#[test]
fn garbage_is_corrupt() {
    assert_corrupt(b"", "empty file");
    assert_corrupt(&[0xff; 20], "varint overflow");
    assert_corrupt(&[0x80], "truncated varint");
    assert_corrupt(&[0x00], "zero header length");
    assert_corrupt(&[0xff, 0xff, 0xff, 0x7f], "absurd header length");
    assert_corrupt(&[0x05, 0xa0], "header beyond end");
    assert_corrupt(&with_len(&[0x01]), "header not a map");
    assert_corrupt(&with_len(&[0xff]), "header not cbor");
    assert_corrupt(&with_len(&[0xa0]), "empty header");
    // {version: 1} without roots.
    assert_corrupt(
        &with_len(&[0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01]),
        "roots missing",
    );
    // {roots: [], version: 3}.
    let mut h = vec![0xa2, 0x65];
    h.extend_from_slice(b"roots");
    h.push(0x80);
    h.push(0x67);
    h.extend_from_slice(b"version");
    h.push(0x03);
    assert_corrupt(&with_len(&h), "version 3");
    // {roots: [1], version: 1}.
    let mut h2 = h.clone();
    h2[7] = 0x81;
    h2.insert(8, 0x01);
    *h2.last_mut().unwrap() = 0x01;
    assert_corrupt(&with_len(&h2), "root not a CID");
    // {version: 2} that is not the exact pragma.
    assert_corrupt(
        &with_len(&[
            0xa2, 0x65, b'r', b'o', b'o', b't', b's', 0x80, 0x67, b'v', b'e', b'r', b's', b'i',
            b'o', b'n', 0x02,
        ]),
        "version 2 without pragma",
    );
    // Deeply nested header: a depth error, not a stack overflow.
    let mut deep = vec![0x81u8; 100_000];
    deep.push(0x01);
    assert_corrupt(&with_len(&deep), "deep header");

    // A valid empty-roots header followed by bad sections.
    *h.last_mut().unwrap() = 0x01;
    let ok = with_len(&h);
    assert!(open_bytes(&ok).unwrap().is_empty());
    let section = |tail: &[u8]| {
        let mut v = ok.clone();
        v.extend_from_slice(tail);
        v
    };
    assert_corrupt(&section(&[0x00]), "empty section");
    assert_corrupt(&section(&[0xff; 12]), "section varint overflow");
    assert_corrupt(&section(&[0x80]), "truncated section varint");
    assert_corrupt(&section(&[0x7f, 0x01]), "section beyond end");
    assert_corrupt(
        &section(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        "absurd section",
    );
    assert_corrupt(&section(&[0x03, 0x07, 0x07, 0x07]), "bad CID version");
    assert_corrupt(
        &section(&[0x04, 0x01, 0x55, 0x1e, 0x20]),
        "digest cut short",
    );
}

#[test]
fn mutated_cars_never_panic() {
    use proptest::prelude::*;
    let Some(dir) = golden_dir() else { return };
    let (_, path, _, _, _) = golden_cases(&dir).swap_remove(2);
    let base = std::fs::read(&path).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        ..Default::default()
    });
    let strat = proptest::collection::vec((0..base.len(), any::<u8>()), 1..6);
    runner
        .run(&strat, |edits| {
            let mut b = base.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            if let Ok(s) = open_bytes(&b) {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for cid in s.cids() {
                        let _ = s.get(&cid).await;
                    }
                    for root in s.roots() {
                        let _ = write_car(&s, &root, Vec::new()).await;
                    }
                });
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn create_put_finish_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("new.car");
    let store = CarStore::create(&p).unwrap();
    assert!(store.is_writable());
    let leaves: Vec<Block> = (0..50)
        .map(|i| Block::new(RAW, HashAlg::Blake3, format!("value-{i}").into_bytes()))
        .collect();
    store.put_many(leaves[..30].to_vec()).await.unwrap();
    // Duplicates, within a batch and with what is already written, are skipped.
    let mut batch = leaves[20..].to_vec();
    batch.push(leaves[45].clone());
    store.put_many(batch).await.unwrap();
    assert_eq!(store.len(), 50);
    for b in &leaves {
        assert_eq!(store.get(&b.cid).await.unwrap(), b.data);
    }
    // A dag-cbor "root" listing every leaf.
    let root_data = serde_ipld_dagcbor::to_vec(
        &leaves
            .iter()
            .map(|b| ipld_core::ipld::Ipld::Link(b.cid))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let root = Block::new(DAG_CBOR, HashAlg::Blake3, root_data);
    store.put(root.clone()).await.unwrap();
    let size_before = std::fs::metadata(&p).unwrap().len();
    store.finish(root.cid).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), size_before);
    assert_eq!(store.roots(), vec![root.cid]);

    let reopened = CarStore::open(&p).unwrap();
    assert_eq!(reopened.roots(), vec![root.cid]);
    assert_eq!(reopened.len(), 51);
    assert_eq!(reopened.cids(), store.cids());
    for b in leaves.iter().chain([&root]) {
        assert_eq!(reopened.get(&b.cid).await.unwrap(), b.data);
    }
    assert!(matches!(
        reopened.put(leaves[0].clone()).await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        reopened.finish(root.cid),
        Err(StoreError::ReadOnly)
    ));
    // Exported in DFS order: root then the leaves in link order.
    let mut out = Vec::new();
    assert_eq!(write_car(&reopened, &root.cid, &mut out).await.unwrap(), 51);
    let tmp2 = tmp.path().join("export.car");
    std::fs::write(&tmp2, &out).unwrap();
    let exported = CarStore::open(&tmp2).unwrap();
    let mut expected = vec![root.cid];
    expected.extend(leaves.iter().map(|b| b.cid));
    assert_eq!(exported.cids(), expected);
}

#[tokio::test]
async fn finish_with_a_root_of_another_length_rewrites_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("sha.car");
    let store = CarStore::create(&p).unwrap();
    let leaf = Block::new(RAW, HashAlg::Sha2_256, b"leaf".to_vec());
    store.put(leaf.clone()).await.unwrap();
    // A CIDv0 root (34 bytes) is shorter than the placeholder.
    let v0 = Cid::new_v0(*leaf.cid.hash()).unwrap();
    store.finish(v0).unwrap();
    assert_eq!(store.get(&leaf.cid).await.unwrap(), leaf.data);
    // Writes after finish land in the rewritten file; finish again in place.
    let more = Block::new(RAW, HashAlg::Blake3, b"more".to_vec());
    store.put(more.clone()).await.unwrap();
    store.finish(v0).unwrap();
    let reopened = CarStore::open(&p).unwrap();
    assert_eq!(reopened.roots(), vec![v0]);
    assert_eq!(reopened.cids(), vec![leaf.cid, more.cid]);
    assert_eq!(reopened.get(&v0).await.unwrap(), leaf.data);
    assert_eq!(reopened.get(&more.cid).await.unwrap(), more.data);
    // And back to a longer root.
    let long = Cid::new_v1(DAG_CBOR, *more.cid.hash());
    store.finish(long).unwrap();
    let reopened = CarStore::open(&p).unwrap();
    assert_eq!(reopened.roots(), vec![long]);
    assert_eq!(reopened.get(&long).await.unwrap(), more.data);
    assert!(!tmp.path().join("sha.car.rewrite-tmp").exists());
}

#[tokio::test]
async fn write_car_descends_dag_pb_links() {
    let a = Block::new(RAW, HashAlg::Sha2_256, b"chunk-a".to_vec());
    let b = Block::new(RAW, HashAlg::Sha2_256, b"chunk-b".to_vec());
    // PBNode { Links: [a, b], Data: UnixFS file }.
    let mut node = Vec::new();
    for c in [a.cid, b.cid] {
        let h = c.to_bytes();
        let mut link = vec![0x0a, h.len() as u8];
        link.extend_from_slice(&h);
        link.extend_from_slice(&[0x12, 0x00, 0x18, 0x07]);
        node.push(0x12);
        node.push(link.len() as u8);
        node.extend_from_slice(&link);
    }
    node.extend_from_slice(&[0x0a, 0x02, 0x08, 0x02]);
    let file = Block::new(DAG_PB, HashAlg::Sha2_256, node);
    let mem = MemoryStore::new();
    mem.put_many(vec![a.clone(), b.clone(), file.clone()])
        .await
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(write_car(&mem, &file.cid, &mut out).await.unwrap(), 3);
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("pb.car");
    std::fs::write(&p, &out).unwrap();
    let s = CarStore::open(&p).unwrap();
    assert_eq!(s.cids(), vec![file.cid, a.cid, b.cid]);
    // A missing child is reported.
    let partial = MemoryStore::new();
    partial.put(file.clone()).await.unwrap();
    assert!(matches!(
        write_car(&partial, &file.cid, Vec::new()).await,
        Err(StoreError::NotFound(c)) if c == a.cid
    ));
}
