//! The keys that differ between two datasets.

use std::sync::Arc;

use futures::TryStreamExt as _;

use super::reader::{DatasetReader, Inner};
use crate::error::Result;
use crate::hamt::{diff as hamt_diff, KeyChange};

/// The keys added, removed and changed from `old` to `new`, sorted by key.
///
/// Two HAMTs on the same store are compared node by node, skipping equal subtrees (the cost
/// follows the size of the change); any other pair falls back to [`diff_entries`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::dataset::{diff, DatasetWriter, LayoutOptions};
/// use ipfs_hamt::hamt::ChangeKind;
/// use ipfs_hamt::{store::MemoryStore, HamtConfig};
/// let mut w = DatasetWriter::create(Arc::new(MemoryStore::new()), LayoutOptions::Hamt(HamtConfig::default())).unwrap();
/// w.insert("a", b"1".to_vec()).await.unwrap();
/// let old = w.reader().await.unwrap();
/// w.insert("b", b"2".to_vec()).await.unwrap();
/// let new = w.reader().await.unwrap();
/// let changes = diff(&old, &new).await.unwrap();
/// assert_eq!((changes[0].key.as_str(), changes[0].kind()), ("b", ChangeKind::Added));
/// # });
/// ```
pub async fn diff(old: &DatasetReader, new: &DatasetReader) -> Result<Vec<KeyChange>> {
    match (old.inner(), new.inner()) {
        (Inner::Hamt(a), Inner::Hamt(b)) if Arc::ptr_eq(a.store(), b.store()) => {
            hamt_diff(&**a.store(), &a.root(), &b.root(), &old.config().hamt).await
        }
        _ => diff_entries(old, new).await,
    }
}

/// The difference of two datasets of any layouts: both entry lists are read whole, sorted and
/// merged. Values compare by their CIDs.
pub async fn diff_entries(old: &DatasetReader, new: &DatasetReader) -> Result<Vec<KeyChange>> {
    let (a, b) = futures::try_join!(sorted_entries(old), sorted_entries(new))?;
    let mut out = Vec::new();
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((key, old)) = a.next() {
                    out.push(KeyChange {
                        key,
                        old: Some(old),
                        new: None,
                    });
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((key, new)) = b.next() {
                    out.push(KeyChange {
                        key,
                        old: None,
                        new: Some(new),
                    });
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((key, x)), Some((_, y))) = (a.next(), b.next()) {
                    if x != y {
                        out.push(KeyChange {
                            key,
                            old: Some(x),
                            new: Some(y),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

async fn sorted_entries(r: &DatasetReader) -> Result<Vec<(String, cid::Cid)>> {
    let mut v: Vec<(String, cid::Cid)> = r.entries().try_collect().await?;
    v.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    Ok(v)
}
