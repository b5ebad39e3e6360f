//! Hostile block stores: every read path returns a typed error, in bounded time and memory,
//! when a store returns wrong bytes, truncated blocks, nodes linking to themselves or an
//! ancestor, absurdly deep or shared subtrees, oversized buckets, nodes of the wrong shape or
//! links with unknown codecs.
//!
//! Stores are trusted to return the bytes of the CID asked for (stores reading from outside the
//! process verify them); the [`LyingStore`] here does not, so it can feed the HAMT what no
//! honest store could (a node linking to itself). Every operation runs under a generous
//! timeout that only catches hangs; no test asserts on timing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use ipfs_hamt::block::{cid_of, Block, HashAlg, DAG_CBOR, DAG_PB, RAW};
use ipfs_hamt::hamt::diff;
use ipfs_hamt::node::{encode_cid, Bucket, Entry, Link, Node, NodeError};
use ipfs_hamt::store::car::write_car;
use ipfs_hamt::store::{BlockStore, MemoryStore, SharedStore, StoreError};
use ipfs_hamt::unixfs::{self, UnixfsError};
use ipfs_hamt::verify::verify_tree;
use ipfs_hamt::{ByteRange, Cid, Error, HamtConfig, Reader, Writer};

/// Generous bound: an operation that takes longer is hung (the suite runs in seconds).
const BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: did not finish (hang or unbounded work)"))
}

/// How a [`LyingStore`] answers `get`.
type Lie = dyn Fn(&Cid, &Bytes) -> Bytes + Send + Sync;

/// A store that returns whatever it was given for a CID (no verification), optionally passed
/// through a lie, and counts reads.
struct LyingStore {
    blocks: Mutex<HashMap<Cid, Bytes>>,
    lie: Box<Lie>,
    gets: AtomicU64,
}

impl LyingStore {
    fn new(lie: impl Fn(&Cid, &Bytes) -> Bytes + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(LyingStore {
            blocks: Mutex::new(HashMap::new()),
            lie: Box::new(lie),
            gets: AtomicU64::new(0),
        })
    }
    fn honest() -> Arc<Self> {
        Self::new(|_, b| b.clone())
    }
    /// Maps `cid` to `bytes`, whether or not they match.
    fn set(&self, cid: Cid, bytes: impl Into<Bytes>) {
        self.blocks.lock().unwrap().insert(cid, bytes.into());
    }
    fn gets(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl BlockStore for LyingStore {
    async fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let b = self.blocks.lock().unwrap().get(cid).cloned();
        b.map(|b| (self.lie)(cid, &b))
            .ok_or(StoreError::NotFound(*cid))
    }
    async fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.blocks.lock().unwrap().contains_key(cid))
    }
    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), StoreError> {
        let mut m = self.blocks.lock().unwrap();
        for b in blocks {
            m.insert(b.cid, b.data);
        }
        Ok(())
    }
}

fn fake_cid(seed: &str) -> Cid {
    cid_of(DAG_CBOR, HashAlg::Blake3, seed.as_bytes())
}

fn encode(node: &Node) -> Bytes {
    Bytes::from(node.encode_stored().unwrap())
}

/// A node whose 256 slots all link to `to`.
fn all_links(to: Cid) -> Node {
    let mut n = Node::default();
    for i in 0..=255u8 {
        n.set_link(i, Link::Stored(to));
    }
    n
}

/// Bucket bytes holding `keys`, each pointing at a raw value.
fn bucket(keys: &[String]) -> Vec<u8> {
    let items: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| encode_cid(&cid_of(RAW, HashAlg::Blake3, k.as_bytes())))
        .collect();
    let mut entries: Vec<Entry<'_>> = keys
        .iter()
        .zip(&items)
        .map(|(k, i)| Entry { key: k, item: i })
        .collect();
    Bucket::encode(&mut entries)
}

/// Stores a node honestly (its real CID) and returns the CID.
fn put_node(store: &LyingStore, node: &Node) -> Cid {
    let bytes = encode(node);
    let cid = cid_of(DAG_CBOR, HashAlg::Blake3, &bytes);
    store.set(cid, bytes);
    cid
}

fn config() -> HamtConfig {
    HamtConfig::default()
}

/// Every HAMT read and write path on `root`, each of which must end with an error accepted by
/// `ok`. Returns the number of operations run.
async fn every_path_fails(store: Arc<LyingStore>, root: Cid, ok: fn(&Error) -> bool) -> u64 {
    every_path(store, root, true, ok).await
}

/// As [`every_path_fails`]; operations that follow one key's path (`get`, `get_range`,
/// `insert`, `remove`) may also succeed when `lookups_fail` is false (that path may be sound;
/// it is bounded by the hash length either way).
async fn every_path(
    store: Arc<LyingStore>,
    root: Cid,
    lookups_fail: bool,
    ok: fn(&Error) -> bool,
) -> u64 {
    let shared: SharedStore = store.clone();
    let r = Reader::new(shared.clone(), root, config()).unwrap();
    let mut ran = 0;
    let mut check = |what: &str, res: Result<(), Error>| {
        ran += 1;
        match res {
            Err(e) => {
                assert!(ok(&e), "{what}: unexpected error {e:?}");
                // Errors print on one line and name no secret (there is none here).
                assert!(!e.to_string().contains('\n'), "{what}: multi-line error");
            }
            Ok(()) => panic!("{what}: succeeded on a hostile tree"),
        }
    };
    // Probe several keys so that lookups go down different slots.
    for key in ["a", "zarr.json", "temperature/c/0/0", "k17"] {
        let got = bounded("get", r.get(key)).await.map(drop);
        let ranged = bounded("get_range", r.get_range(key, ByteRange::Suffix(3)))
            .await
            .map(drop);
        if lookups_fail || got.is_err() {
            check("get", got);
        }
        if lookups_fail || ranged.is_err() {
            check("get_range", ranged);
        }
    }
    check(
        "keys",
        bounded("keys", r.keys().try_collect::<Vec<_>>())
            .await
            .map(drop),
    );
    check(
        "entries",
        bounded("entries", r.entries().try_collect::<Vec<_>>())
            .await
            .map(drop),
    );
    check("len", bounded("len", r.len()).await.map(drop));
    check("stats", bounded("stats", r.stats()).await.map(drop));

    let mut empty = Writer::new(shared.clone(), config()).unwrap();
    let empty_root = empty.commit().await.unwrap();
    check(
        "diff",
        bounded("diff", diff(&*shared, &empty_root, &root, &config()))
            .await
            .map(drop),
    );
    check(
        "diff reversed",
        bounded("diff", diff(&*shared, &root, &empty_root, &config()))
            .await
            .map(drop),
    );

    let mut w = Writer::open(shared.clone(), root, config()).unwrap();
    let got = bounded("writer get", w.get("a")).await.map(drop);
    if lookups_fail || got.is_err() {
        check("writer get", got);
    }
    check(
        "writer keys",
        bounded("writer keys", w.keys()).await.map(drop),
    );
    let ins = bounded("insert", async {
        for i in 0..8 {
            w.insert(&format!("new{i}"), vec![1u8]).await?;
        }
        w.commit().await.map(drop)
    })
    .await;
    if lookups_fail || ins.is_err() {
        check("insert+commit", ins);
    }
    let mut w = Writer::open(shared.clone(), root, config()).unwrap();
    let removed = bounded("remove", async {
        for i in 0..8 {
            w.remove(&format!("k{i}")).await?;
        }
        Ok(())
    })
    .await;
    if lookups_fail || removed.is_err() {
        check("remove", removed);
    }
    eprintln!("tally: hostile tree {root}: {ran} operations, each a typed error");
    ran
}

/// A cycle is caught by the depth bound or, by walks of the whole tree, as a repeated node.
fn too_deep(e: &Error) -> bool {
    matches!(
        e,
        Error::TooDeep { .. } | Error::RepeatedNode { .. } | Error::KeyNotFound(_)
    )
}

#[tokio::test]
async fn node_linking_to_itself_is_too_deep() {
    let store = LyingStore::honest();
    let root = fake_cid("self");
    store.set(root, encode(&all_links(root)));
    let ran = every_path_fails(store.clone(), root, too_deep).await;
    assert!(ran > 10);
    // 32 levels of the BLAKE3 hash, each a cache hit or a read: nowhere near unbounded.
    assert!(store.gets() < 10_000, "{} reads", store.gets());
}

#[tokio::test]
async fn node_linking_to_an_ancestor_is_too_deep() {
    let store = LyingStore::honest();
    let root = fake_cid("root");
    let child = fake_cid("child");
    store.set(root, encode(&all_links(child)));
    store.set(child, encode(&all_links(root)));
    every_path_fails(store, root, too_deep).await;
}

#[tokio::test]
async fn absurd_depth_with_honest_cids_is_too_deep() {
    // 40 levels of real nodes: the hash gives 32.
    let store = LyingStore::honest();
    let mut below = put_node(&store, &{
        let mut n = Node::default();
        n.set_bucket(0, &bucket(&["k0".to_owned()]));
        n
    });
    for _ in 0..40 {
        // One link in each slot, so that every key goes down; a distinct bucket per level keeps
        // the nodes distinct.
        below = put_node(&store, &all_links(below));
    }
    every_path_fails(store.clone(), below, |e| {
        matches!(
            e,
            Error::TooDeep { .. } | Error::RepeatedNode { .. } | Error::KeyNotFound(_)
        )
    })
    .await;
    // Verification reports the problem instead of hanging (every block is read once).
    let r = bounded(
        "verify",
        verify_tree(&*store, &below, &config(), &mut |_| {}),
    )
    .await;
    match r {
        Ok(report) => assert!(report.nodes <= 41),
        Err(e) => assert!(matches!(e, Error::TooDeep { .. }), "{e:?}"),
    }
}

/// A DAG of 30 levels where every node links to the same child from all its slots: each
/// block is honest, the tree is a few KiB, but walking it as a tree visits 256^30 nodes.
#[tokio::test]
async fn shared_subtrees_are_refused_not_walked() {
    let store = LyingStore::honest();
    let mut below = put_node(&store, &{
        let mut n = Node::default();
        n.set_bucket(7, &bucket(&["k0".to_owned(), "k1".to_owned()]));
        n
    });
    for _ in 0..30 {
        below = put_node(&store, &all_links(below));
    }
    let root = below;
    for k in ["k0", "k1"] {
        store.set(
            cid_of(RAW, HashAlg::Blake3, k.as_bytes()),
            k.as_bytes().to_vec(),
        );
    }
    every_path(store.clone(), root, false, |e| {
        matches!(
            e,
            Error::RepeatedNode { .. } | Error::KeyNotFound(_) | Error::TooDeep { .. }
        )
    })
    .await;
    let report = bounded(
        "verify",
        verify_tree(&*store, &root, &config(), &mut |_| {}),
    )
    .await
    .unwrap();
    assert_eq!(report.nodes, 31, "verify reads each block once");
    let n = bounded("car export", write_car(&*store, &root, std::io::sink()))
        .await
        .unwrap();
    assert_eq!(n, 33, "31 nodes and 2 values, each once");
}

#[tokio::test]
async fn oversized_buckets_are_malformed_nodes() {
    let store = LyingStore::honest();
    let keys: Vec<String> = (0..1025).map(|i| format!("k{i}")).collect();
    let mut n = Node::default();
    for idx in 0..=255u8 {
        n.set_bucket(idx, &bucket(&keys));
    }
    let root = put_node(&store, &n);
    every_path_fails(store, root, |e| {
        matches!(
            e,
            Error::Node { source, .. } if matches!(**source, NodeError::OversizedBucket { .. })
        )
    })
    .await;
}

#[tokio::test]
async fn nodes_without_256_slots_are_malformed() {
    for slots in [0usize, 1, 255, 257, 100_000] {
        let store = LyingStore::honest();
        let mut bytes = Vec::new();
        // CBOR array head for `slots` items, then empty maps.
        match slots {
            0..=23 => bytes.push(0x80 | slots as u8),
            24..=0xff => bytes.extend([0x98, slots as u8]),
            0x100..=0xffff => bytes.extend([0x99, (slots >> 8) as u8, slots as u8]),
            _ => bytes.extend([
                0x9a,
                0,
                (slots >> 16) as u8,
                (slots >> 8) as u8,
                slots as u8,
            ]),
        }
        bytes.extend(std::iter::repeat_n(0xa0, slots));
        let root = fake_cid(&format!("slots{slots}"));
        store.set(root, bytes);
        every_path_fails(store, root, |e| {
            matches!(e, Error::Node { source, .. } if matches!(**source, NodeError::WrongSlotCount(_)))
        })
        .await;
    }
}

#[tokio::test]
async fn links_with_unknown_codecs_are_not_nodes() {
    for codec in [RAW, DAG_PB, 0x0129 /* dag-json */, 0x1234_5678] {
        let store = LyingStore::honest();
        let target = Cid::new_v1(codec, HashAlg::Blake3.multihash(b"x"));
        store.set(target, encode(&Node::default()));
        let root = put_node(&store, &all_links(target));
        every_path_fails(store, root, |e| matches!(e, Error::NotANode { .. })).await;
    }
    // A root of another codec.
    let store = LyingStore::honest();
    let root = Cid::new_v1(RAW, HashAlg::Blake3.multihash(b"y"));
    store.set(root, encode(&Node::default()));
    every_path_fails(store, root, |e| matches!(e, Error::NotANode { .. })).await;
}

/// An honest tree of 3000 keys; returns the store's blocks and the root.
async fn honest_tree() -> (HashMap<Cid, Bytes>, Cid) {
    let store = Arc::new(MemoryStore::new());
    let mut w = Writer::new(store.clone(), config()).unwrap();
    for i in 0..3000 {
        w.insert(&format!("k{i}"), format!("value {i}").into_bytes())
            .await
            .unwrap();
    }
    let root = w.commit().await.unwrap();
    let mut blocks = HashMap::new();
    let mut stack = vec![root];
    while let Some(c) = stack.pop() {
        let data = store.get(&c).await.unwrap();
        if c.codec() == DAG_CBOR {
            let n = Node::decode(data.clone(), 1024).unwrap();
            stack.extend(n.cids());
        }
        blocks.insert(c, data);
    }
    (blocks, root)
}

fn with_blocks(store: &LyingStore, blocks: &HashMap<Cid, Bytes>) {
    for (c, b) in blocks {
        store.set(*c, b.clone());
    }
}

#[tokio::test]
async fn truncated_and_garbage_blocks_are_typed_errors() {
    let (blocks, root) = honest_tree().await;
    let lies: Vec<(&str, Box<Lie>)> = vec![
        ("truncated", Box::new(|_, b| b.slice(..b.len() / 2))),
        ("empty", Box::new(|_, _| Bytes::new())),
        ("one byte short", Box::new(|_, b| b.slice(..b.len() - 1))),
        (
            "trailing byte",
            Box::new(|_, b| {
                let mut v = b.to_vec();
                v.push(0);
                Bytes::from(v)
            }),
        ),
        (
            "garbage",
            Box::new(|c, b| {
                Bytes::from(
                    (0..b.len())
                        .map(|i| c.hash().digest()[i % 32] ^ (i as u8))
                        .collect::<Vec<_>>(),
                )
            }),
        ),
    ];
    for (name, lie) in lies {
        let store = Arc::new(LyingStore {
            blocks: Mutex::new(HashMap::new()),
            lie,
            gets: AtomicU64::new(0),
        });
        with_blocks(&store, &blocks);
        eprintln!("lie: {name}");
        every_path_fails(store.clone(), root, |e| matches!(e, Error::Node { .. })).await;
        // verify and CAR export check hashes: the lie is reported, not followed.
        let report = bounded(
            "verify",
            verify_tree(&*store, &root, &config(), &mut |_| {}),
        )
        .await
        .unwrap();
        assert!(!report.is_ok() && report.corrupt.iter().any(|(c, _)| *c == root));
        let car = bounded("car", write_car(&*store, &root, std::io::sink())).await;
        assert!(matches!(car, Err(StoreError::Verify(_))), "{car:?}");
    }
}

/// A store that answers with *another valid node* (a different subtree of the same tree):
/// without hash checks the reader cannot tell, but it still ends (depth and repeats are
/// bounded) and verification catches the lie.
#[tokio::test]
async fn wrong_but_valid_nodes_end_and_verify_catches_them() {
    let (blocks, root) = honest_tree().await;
    let nodes: Vec<Bytes> = blocks
        .iter()
        .filter(|(c, _)| c.codec() == DAG_CBOR && **c != root)
        .map(|(_, b)| b.clone())
        .collect();
    assert!(nodes.len() > 2);
    let swap = nodes.clone();
    let store = LyingStore::new(move |c, b| {
        if c.codec() == DAG_CBOR && !b.is_empty() && c.hash().digest()[0] % 2 == 0 {
            swap[usize::from(c.hash().digest()[1]) % swap.len()].clone()
        } else {
            b.clone()
        }
    });
    with_blocks(&store, &blocks);
    let r = Reader::new(store.clone(), root, config()).unwrap();
    for i in 0..3000 {
        // Right, missing or wrong: never a panic or a hang.
        let _ = bounded("get", r.get(&format!("k{i}"))).await;
    }
    let _ = bounded("keys", r.keys().try_collect::<Vec<_>>()).await;
    let _ = bounded("stats", r.stats()).await;
    let report = bounded(
        "verify",
        verify_tree(&*store, &root, &config(), &mut |_| {}),
    )
    .await
    .unwrap();
    assert!(!report.is_ok());
}

/// Missing blocks are `StoreError::NotFound`, on every path.
#[tokio::test]
async fn missing_blocks_are_not_found() {
    let (mut blocks, root) = honest_tree().await;
    blocks.retain(|c, _| *c == root);
    let store = LyingStore::honest();
    with_blocks(&store, &blocks);
    every_path_fails(store, root, |e| {
        matches!(
            e,
            Error::Store(StoreError::NotFound(_)) | Error::KeyNotFound(_)
        )
    })
    .await;
}

// ---------------------------------------------------------------------------- UnixFS

fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    pb_varint(out, field << 3 | 2);
    pb_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A UnixFS file node with `children` of the given sizes.
fn file_node(children: &[(Cid, u64)]) -> Vec<u8> {
    let mut data = Vec::new();
    pb_varint(&mut data, 1 << 3);
    pb_varint(&mut data, 2);
    pb_varint(&mut data, 3 << 3);
    pb_varint(&mut data, children.iter().map(|c| c.1).sum());
    for (_, s) in children {
        pb_varint(&mut data, 4 << 3);
        pb_varint(&mut data, *s);
    }
    let mut out = Vec::new();
    for (c, s) in children {
        let mut link = Vec::new();
        pb_bytes(&mut link, 1, &c.to_bytes());
        pb_varint(&mut link, 3 << 3);
        pb_varint(&mut link, *s);
        pb_bytes(&mut out, 2, &link);
    }
    pb_bytes(&mut out, 1, &data);
    out
}

#[tokio::test]
async fn unixfs_node_linking_to_itself_is_too_deep() {
    let store = LyingStore::honest();
    let me = Cid::new_v1(DAG_PB, HashAlg::Blake3.multihash(b"me"));
    // Sizes agree all the way down: only the depth bound stops it.
    store.set(me, file_node(&[(me, 10)]));
    for range in [
        ByteRange::Full,
        ByteRange::Slice {
            offset: 3,
            length: 2,
        },
    ] {
        let r = bounded("read_file", unixfs::read_file(&*store, &me, range)).await;
        assert!(matches!(r, Err(UnixfsError::TooDeep { .. })), "{r:?}");
    }
    assert!(store.gets() < 100);
    // Through the HAMT: a key whose value is that file.
    let mut w = Writer::new(store.clone(), config()).unwrap();
    w.insert_pointer("v", me).await.unwrap();
    let r = w.reader().await.unwrap();
    let got = bounded("get", r.get("v")).await;
    assert!(matches!(got, Err(Error::BadValue { .. })), "{got:?}");
}

/// 8 honest blocks sharing children claim a file of 8 * 174^8 bytes (6.7 EB): a full read is refused up
/// front instead of filling memory; ranged reads only touch the leaves they need.
#[tokio::test]
async fn unixfs_shared_children_claiming_exabytes_are_refused() {
    let store = LyingStore::honest();
    let leaf = Block::new(RAW, HashAlg::Blake3, vec![7u8; 8]);
    store.set(leaf.cid, leaf.data.clone());
    let (mut cid, mut size) = (leaf.cid, 8u64);
    for _ in 0..8 {
        let children = vec![(cid, size); 174];
        let bytes = file_node(&children);
        cid = cid_of(DAG_PB, HashAlg::Blake3, &bytes);
        store.set(cid, bytes);
        size *= 174;
    }
    let full = bounded(
        "full read",
        unixfs::read_file(&*store, &cid, ByteRange::Full),
    )
    .await;
    assert!(
        matches!(full, Err(UnixfsError::TooLarge { .. })),
        "{full:?}"
    );
    assert_eq!(unixfs::file_size(&*store, &cid).await.unwrap(), size);
    let part = bounded(
        "ranged read",
        unixfs::read_file(
            &*store,
            &cid,
            ByteRange::Slice {
                offset: size / 2,
                length: 1000,
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(part, vec![7u8; 1000]);
}

#[tokio::test]
async fn unixfs_wrong_and_truncated_blocks_are_typed_errors() {
    let (cid, blocks) = unixfs::build_file(&vec![3u8; 3 << 20], HashAlg::Blake3);
    let lies: Vec<Box<Lie>> = vec![
        Box::new(|_, b| b.slice(..b.len() / 2)),
        Box::new(|_, b| b.slice(..b.len().saturating_sub(1))),
        Box::new(|_, _| Bytes::from_static(b"\x0a\x02\x08\x01")),
        Box::new(|c, b| {
            if c.codec() == RAW {
                Bytes::new()
            } else {
                b.clone()
            }
        }),
    ];
    for lie in lies {
        let store = Arc::new(LyingStore {
            blocks: Mutex::new(HashMap::new()),
            lie,
            gets: AtomicU64::new(0),
        });
        for b in &blocks {
            store.set(b.cid, b.data.clone());
        }
        for range in [
            ByteRange::Full,
            ByteRange::Suffix(10),
            ByteRange::From(1 << 20),
        ] {
            let r = bounded("read_file", unixfs::read_file(&*store, &cid, range)).await;
            assert!(
                matches!(
                    r,
                    Err(UnixfsError::Malformed { .. } | UnixfsError::NotAFile { .. })
                ),
                "{r:?}"
            );
        }
    }
}
