//! The difference between two HAMT roots, reading only the nodes that differ.
//!
//! Both trees are walked together, slot by slot. Two links with the same CID name the same
//! subtree and are skipped without being read, so the cost follows the size of the change, not
//! the size of the trees: one changed key in a tree of depth `d` reads at most `2 (d + 1)`
//! nodes. Where the trees disagree about a slot's shape (a bucket on one side, a child node on
//! the other), the entries under that slot are collected from both sides and compared.

use std::collections::BTreeMap;

use cid::Cid;

use super::{HamtConfig, Visited};
use crate::block::DAG_CBOR;
use crate::error::{Error, Result};
use crate::node::{Link, Node, Slot};
use crate::store::BlockStore;

/// What happened to a key between two roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// Only in the new tree.
    Added,
    /// Only in the old tree.
    Removed,
    /// In both, with different value pointers.
    Changed,
}

/// One key that differs between two roots, with its value pointers on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// The key.
    pub key: String,
    /// The value CID in the old tree (`None` if added).
    pub old: Option<Cid>,
    /// The value CID in the new tree (`None` if removed).
    pub new: Option<Cid>,
}

impl KeyChange {
    /// Added, removed or changed.
    ///
    /// ```
    /// use ipfs_hamt::hamt::{ChangeKind, KeyChange};
    /// let c = KeyChange { key: "k".into(), old: None, new: None };
    /// assert_eq!(c.kind(), ChangeKind::Changed);
    /// ```
    pub fn kind(&self) -> ChangeKind {
        match (self.old, self.new) {
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        }
    }
}

/// The keys added, removed and changed from the tree at `old` to the tree at `new`, sorted by
/// key. Subtrees whose links have equal CIDs on both sides are never read.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::{HamtConfig, Writer, store::MemoryStore};
/// use ipfs_hamt::hamt::{diff, ChangeKind};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
/// w.insert("a", b"1".to_vec()).await.unwrap();
/// w.insert("b", b"2".to_vec()).await.unwrap();
/// let old = w.commit().await.unwrap();
/// w.insert("b", b"3".to_vec()).await.unwrap();
/// w.insert("c", b"4".to_vec()).await.unwrap();
/// w.remove("a").await.unwrap();
/// let new = w.commit().await.unwrap();
/// let changes = diff(&*store, &old, &new, &HamtConfig::default()).await.unwrap();
/// let kinds: Vec<_> = changes.iter().map(|c| (c.key.as_str(), c.kind())).collect();
/// assert_eq!(kinds, [("a", ChangeKind::Removed), ("b", ChangeKind::Changed), ("c", ChangeKind::Added)]);
/// # });
/// ```
pub async fn diff(
    store: &dyn BlockStore,
    old: &Cid,
    new: &Cid,
    config: &HamtConfig,
) -> Result<Vec<KeyChange>> {
    config.validate()?;
    let mut out = Vec::new();
    if old == new {
        return Ok(out);
    }
    let max_depth = config.max_depth();
    let limit = config.bucket_limit;
    // Pairs of differing stored subtrees at the same position, and their depth.
    let mut stack = vec![(*old, *new, 0usize)];
    // Each side is a tree: a node reached twice on one side is refused (see `Visited`).
    let (mut seen_old, mut seen_new) = (Visited::default(), Visited::default());
    while let Some((a, b, depth)) = stack.pop() {
        if depth > 0 && depth >= max_depth {
            return Err(Error::TooDeep { cid: b, depth });
        }
        let na = load(store, &a, limit).await?;
        seen_old.check(&a, &na)?;
        let nb = load(store, &b, limit).await?;
        seen_new.check(&b, &nb)?;
        for idx in 0..=255u8 {
            let (sa, sb) = (na.get(idx), nb.get(idx));
            match (sa, sb) {
                (None, None) => {}
                (Some(Slot::Link(la)), Some(Slot::Link(lb))) => {
                    if let (Link::Stored(ca), Link::Stored(cb)) = (la, lb) {
                        if ca != cb {
                            stack.push((*ca, *cb, depth + 1));
                        }
                    }
                }
                (Some(Slot::Bucket(ba)), Some(Slot::Bucket(bb))) if ba == bb => {}
                _ => {
                    let mut left = BTreeMap::new();
                    let mut right = BTreeMap::new();
                    let (old_side, new_side) = (&mut seen_old, &mut seen_new);
                    collect(store, sa, depth, max_depth, limit, old_side, &mut left).await?;
                    collect(store, sb, depth, max_depth, limit, new_side, &mut right).await?;
                    compare(left, right, &mut out);
                }
            }
        }
    }
    out.sort_unstable_by(|x, y| x.key.cmp(&y.key));
    Ok(out)
}

/// Reads and decodes one node.
async fn load(store: &dyn BlockStore, cid: &Cid, limit: usize) -> Result<Node> {
    if cid.codec() != DAG_CBOR {
        return Err(Error::NotANode {
            cid: *cid,
            codec: cid.codec(),
        });
    }
    let data = store.get(cid).await?;
    Node::decode(data, limit).map_err(|source| Error::Node {
        cid: *cid,
        source: Box::new(source),
    })
}

/// Every (key, value CID) under `slot` (a slot of a node at `depth`).
async fn collect(
    store: &dyn BlockStore,
    slot: Option<Slot<'_>>,
    depth: usize,
    max_depth: usize,
    limit: usize,
    visited: &mut Visited,
    out: &mut BTreeMap<String, Cid>,
) -> Result<()> {
    let mut stack = Vec::new();
    match slot {
        None => return Ok(()),
        Some(Slot::Bucket(b)) => {
            out.extend(b.iter().filter_map(|e| Some((e.key.to_owned(), e.cid()?))));
            return Ok(());
        }
        Some(Slot::Link(l)) => {
            if let Link::Stored(c) = l {
                stack.push((*c, depth + 1));
            }
        }
    }
    while let Some((cid, depth)) = stack.pop() {
        if depth >= max_depth {
            return Err(Error::TooDeep { cid, depth });
        }
        let node = load(store, &cid, limit).await?;
        visited.check(&cid, &node)?;
        for (_, slot) in node.iter() {
            match slot {
                Slot::Bucket(b) => {
                    out.extend(b.iter().filter_map(|e| Some((e.key.to_owned(), e.cid()?))))
                }
                Slot::Link(l) => {
                    if let Link::Stored(c) = l {
                        stack.push((*c, depth + 1));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Appends the differences between two sorted key maps.
fn compare(left: BTreeMap<String, Cid>, right: BTreeMap<String, Cid>, out: &mut Vec<KeyChange>) {
    let mut right = right;
    for (key, old) in left {
        match right.remove(&key) {
            Some(new) if new == old => {}
            new => out.push(KeyChange {
                key,
                old: Some(old),
                new,
            }),
        }
    }
    out.extend(right.into_iter().map(|(key, new)| KeyChange {
        key,
        old: None,
        new: Some(new),
    }));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::block::Block;
    use crate::hamt::Writer;
    use crate::store::{MemoryStore, StoreError};

    /// Counts the blocks read through it.
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

    fn counting() -> Arc<Counting> {
        Arc::new(Counting {
            inner: MemoryStore::new(),
            gets: AtomicU64::new(0),
        })
    }

    async fn build(store: Arc<Counting>, map: &BTreeMap<String, Vec<u8>>, mbs: usize) -> Cid {
        let config = HamtConfig {
            max_bucket_size: mbs,
            ..HamtConfig::default()
        };
        let mut w = Writer::new(store, config).unwrap();
        for (k, v) in map {
            w.insert(k, v.clone()).await.unwrap();
        }
        w.commit().await.unwrap()
    }

    /// The expected diff, from the two maps.
    fn naive(
        a: &BTreeMap<String, Vec<u8>>,
        b: &BTreeMap<String, Vec<u8>>,
    ) -> Vec<(String, ChangeKind)> {
        let mut out = Vec::new();
        for (k, v) in a {
            match b.get(k) {
                None => out.push((k.clone(), ChangeKind::Removed)),
                Some(w) if w != v => out.push((k.clone(), ChangeKind::Changed)),
                _ => {}
            }
        }
        for k in b.keys() {
            if !a.contains_key(k) {
                out.push((k.clone(), ChangeKind::Added));
            }
        }
        out.sort();
        out
    }

    fn kinds(changes: &[KeyChange]) -> Vec<(String, ChangeKind)> {
        changes.iter().map(|c| (c.key.clone(), c.kind())).collect()
    }

    #[tokio::test]
    async fn one_change_in_10k_keys_reads_only_the_path() {
        let store = counting();
        let base: BTreeMap<String, Vec<u8>> = (0..10_000)
            .map(|i| (format!("key-{i}"), format!("value-{i}").into_bytes()))
            .collect();
        let a = build(store.clone(), &base, 4).await;
        let config = HamtConfig::default();
        let depth = {
            let r = crate::Reader::new(store.clone(), a, config.clone()).unwrap();
            r.stats().await.unwrap().max_depth
        };
        for (name, edit) in [("change", 0), ("add", 1), ("remove", 2)] {
            let mut m = base.clone();
            match edit {
                0 => {
                    m.insert("key-4242".into(), b"new".to_vec());
                }
                1 => {
                    m.insert("brand-new".into(), b"x".to_vec());
                }
                _ => {
                    m.remove("key-17");
                }
            }
            let b = build(store.clone(), &m, 4).await;
            store.gets.store(0, Ordering::Relaxed);
            let changes = diff(&*store, &a, &b, &config).await.unwrap();
            let reads = store.gets.load(Ordering::Relaxed);
            eprintln!("{name}: {reads} block reads (tree depth {depth})");
            assert_eq!(kinds(&changes), naive(&base, &m), "{name}");
            assert_eq!(changes.len(), 1);
            // Both paths from the root to the change (plus at most one split/merged subtree of
            // a few nodes), never the ~thousands of nodes of the trees.
            assert!(
                reads <= 2 * (depth as u64 + 2) + 4,
                "{name}: {reads} block reads for one change at depth {depth}"
            );
            // Reverse direction gives the mirror image.
            let back = diff(&*store, &b, &a, &config).await.unwrap();
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].old, changes[0].new);
            assert_eq!(back[0].new, changes[0].old);
        }
        // Same root: no reads at all.
        store.gets.store(0, Ordering::Relaxed);
        assert!(diff(&*store, &a, &a, &config).await.unwrap().is_empty());
        assert_eq!(store.gets.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn random_edits_match_naive_diff() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for round in 0..12 {
            let store = counting();
            let mbs = [1usize, 2, 4][round % 3];
            let n = 50 + rnd(400);
            let a_map: BTreeMap<String, Vec<u8>> = (0..n)
                .map(|i| (format!("k{i}"), vec![(i % 7) as u8]))
                .collect();
            let mut b_map = a_map.clone();
            for _ in 0..rnd(60) {
                let k = format!("k{}", rnd(n + 50));
                match rnd(3) {
                    0 => {
                        b_map.remove(&k);
                    }
                    1 => {
                        b_map.insert(k, vec![9, rnd(5) as u8]);
                    }
                    _ => {
                        b_map.insert(k, vec![1]);
                    }
                }
            }
            let a = build(store.clone(), &a_map, mbs).await;
            let b = build(store.clone(), &b_map, mbs).await;
            let config = HamtConfig {
                max_bucket_size: mbs,
                ..HamtConfig::default()
            };
            let changes = diff(&*store, &a, &b, &config).await.unwrap();
            assert_eq!(kinds(&changes), naive(&a_map, &b_map), "round {round}");
            for c in &changes {
                let want_old = a_map
                    .get(&c.key)
                    .map(|v| crate::block::cid_of(crate::block::RAW, config.block_hash, v));
                assert_eq!(c.old, want_old);
            }
            // Against an empty tree: everything added.
            let empty = build(store.clone(), &BTreeMap::new(), mbs).await;
            let all = diff(&*store, &empty, &b, &config).await.unwrap();
            assert_eq!(all.len(), b_map.len());
            assert!(all.iter().all(|c| c.kind() == ChangeKind::Added));
        }
    }

    #[tokio::test]
    async fn missing_root_is_an_error() {
        let store = counting();
        let a = build(store.clone(), &BTreeMap::new(), 4).await;
        let ghost = crate::block::cid_of(DAG_CBOR, crate::block::HashAlg::Blake3, b"nope");
        let err = diff(&*store, &a, &ghost, &HamtConfig::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Store(StoreError::NotFound(c)) if c == ghost),
            "{err}"
        );
    }
}
