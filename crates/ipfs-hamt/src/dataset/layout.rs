//! Which layout a root is: [`detect`] reads the root block once and decides.
//!
//! The decision follows dClimate's own reader (jaxray's `open-store`): a DAG-CBOR **map** with a
//! `manifest_version`, `chunks` or `arrays` key is py-hamt's sharded layout; a block that
//! decodes as a HAMT node is a HAMT; anything else is [`Error::NotADataset`], naming the CID.

use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;

use crate::block::{DAG_CBOR, DAG_PB, IDENTITY_CODE};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::range::ByteRange;
use crate::store::BlockStore;

/// The version of a sharded manifest (`manifest_version`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShardedVersion {
    /// `sharded_zarr_v1` (one global chunk index under `chunks`).
    V1,
    /// `sharded_zarr_v2` (one index per array under `arrays`).
    V2,
    /// Another `manifest_version` text (py-hamt refuses these as incompatible).
    Other(Box<str>),
}

impl From<crate::sharded::Version> for ShardedVersion {
    fn from(v: crate::sharded::Version) -> Self {
        match v {
            crate::sharded::Version::V1 => ShardedVersion::V1,
            crate::sharded::Version::V2 => ShardedVersion::V2,
        }
    }
}

impl std::fmt::Display for ShardedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardedVersion::V1 => f.write_str("sharded_zarr_v1"),
            ShardedVersion::V2 => f.write_str("sharded_zarr_v2"),
            ShardedVersion::Other(v) => write!(f, "{v:?}"),
        }
    }
}

/// How a dataset is laid out on IPFS.
///
/// Adding a layout: add a variant here, teach [`detect`] to recognise it, and add an arm in
/// each `match` of the `dataset` module (reader, writer, stats, verification); no front end
/// changes.
///
/// ```
/// use ipfs_hamt::dataset::{Layout, ShardedVersion};
/// assert_eq!(Layout::Hamt.to_string(), "HAMT");
/// let s = Layout::Sharded { version: ShardedVersion::V2 };
/// assert_eq!(s.to_string(), "sharded (sharded_zarr_v2)");
/// assert!(s.is_readable());
/// assert!(!Layout::Sharded { version: ShardedVersion::Other("v9".into()) }.is_readable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Layout {
    /// py-hamt's HAMT (`ZarrHAMTStore`, `HAMT`): keys hashed into a tree of DAG-CBOR nodes.
    Hamt,
    /// py-hamt's `ShardedZarrStore`: a DAG-CBOR manifest with shard blocks of chunk CIDs.
    /// Recognised, not yet readable.
    Sharded {
        /// The manifest version.
        version: ShardedVersion,
    },
}

impl Layout {
    /// True if this build can open datasets of this layout.
    pub fn is_readable(&self) -> bool {
        matches!(
            self,
            Layout::Hamt
                | Layout::Sharded {
                    version: ShardedVersion::V1 | ShardedVersion::V2
                }
        )
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layout::Hamt => f.write_str("HAMT"),
            Layout::Sharded { version } => write!(f, "sharded ({version})"),
        }
    }
}

/// The outcome of reading a root block: its layout, and for a HAMT the decoded root node (so
/// opening a reader does not fetch it a second time).
pub(crate) struct Detected {
    pub(crate) layout: Layout,
    pub(crate) hamt_root: Option<Node>,
}

/// The layout of the dataset at `root`: fetches the root block (one read) and looks at it.
///
/// Errors: [`Error::Store`] if the block cannot be read, [`Error::NotADataset`] if it is
/// neither a HAMT node nor a sharded manifest.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::{dataset::{detect, Layout}, store::MemoryStore, HamtConfig, Writer};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = Writer::new(store.clone(), HamtConfig::default()).unwrap();
/// w.insert("zarr.json", b"{}".to_vec()).await.unwrap();
/// let root = w.commit().await.unwrap();
/// assert_eq!(detect(&*store, &root).await.unwrap(), Layout::Hamt);
/// # });
/// ```
pub async fn detect(store: &dyn BlockStore, root: &Cid) -> Result<Layout> {
    let limit = crate::hamt::HamtConfig::default().bucket_limit;
    Ok(detect_root(store, root, limit).await?.layout)
}

/// [`detect`], keeping the decoded HAMT root node; `bucket_limit` as in
/// [`crate::HamtConfig::bucket_limit`].
pub(crate) async fn detect_root(
    store: &dyn BlockStore,
    root: &Cid,
    bucket_limit: usize,
) -> Result<Detected> {
    let data = if root.hash().code() == IDENTITY_CODE {
        Bytes::copy_from_slice(root.hash().digest())
    } else {
        store.get(root).await?
    };
    classify(store, root, data, bucket_limit).await
}

async fn classify(
    store: &dyn BlockStore,
    root: &Cid,
    data: Bytes,
    bucket_limit: usize,
) -> Result<Detected> {
    let not_a_dataset = |reason: String| Error::NotADataset {
        cid: *root,
        reason: reason.into(),
    };
    let cbor = match root.codec() {
        DAG_CBOR => {
            let node_err = match Node::decode(data.clone(), bucket_limit) {
                Ok(node) => {
                    return Ok(Detected {
                        layout: Layout::Hamt,
                        hamt_root: Some(node),
                    })
                }
                Err(e) => e,
            };
            match sharded_version(&data) {
                Some(version) => {
                    return Ok(Detected {
                        layout: Layout::Sharded { version },
                        hamt_root: None,
                    })
                }
                None => {
                    return Err(not_a_dataset(format!(
                        "a DAG-CBOR block that is not a HAMT node ({node_err}) nor a map with \
                         manifest_version, chunks or arrays"
                    )))
                }
            }
        }
        // Kubo stores a DAG-CBOR manifest over 1 MiB as a UnixFS file (py-hamt keeps that
        // dag-pb CID as the root): read the file, then look at its bytes.
        DAG_PB => crate::value::read_value(store, root, ByteRange::Full)
            .await
            .map_err(|e| {
                not_a_dataset(format!("a dag-pb block that is not a readable file: {e}"))
            })?,
        codec => {
            return Err(not_a_dataset(format!(
                "codec {codec:#x}; a HAMT root or sharded manifest is DAG-CBOR (0x71)"
            )))
        }
    };
    match sharded_version(&cbor) {
        Some(version) => Ok(Detected {
            layout: Layout::Sharded { version },
            hamt_root: None,
        }),
        None => Err(not_a_dataset(
            "a UnixFS file that is not a DAG-CBOR map with manifest_version, chunks or arrays"
                .into(),
        )),
    }
}

/// The sharded manifest version if `data` is a DAG-CBOR map with `manifest_version`, `chunks`
/// or `arrays`; `None` otherwise.
fn sharded_version(data: &[u8]) -> Option<ShardedVersion> {
    let Ok(Ipld::Map(map)) = serde_ipld_dagcbor::from_slice::<Ipld>(data) else {
        return None;
    };
    match map.get("manifest_version") {
        Some(Ipld::String(v)) if v == "sharded_zarr_v1" => Some(ShardedVersion::V1),
        Some(Ipld::String(v)) if v == "sharded_zarr_v2" => Some(ShardedVersion::V2),
        Some(Ipld::String(v)) => Some(ShardedVersion::Other(v.as_str().into())),
        Some(other) => Some(ShardedVersion::Other(format!("{other:?}").into())),
        // No version: the keys tell (v1 has one global index, v2 one per array).
        None if map.contains_key("chunks") => Some(ShardedVersion::V1),
        None if map.contains_key("arrays") => Some(ShardedVersion::V2),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::block::{Block, HashAlg, RAW};
    use crate::store::MemoryStore;

    fn map(entries: &[(&str, Ipld)]) -> Vec<u8> {
        let m: BTreeMap<String, Ipld> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        serde_ipld_dagcbor::to_vec(&Ipld::Map(m)).unwrap()
    }

    #[test]
    fn versions_from_manifest_keys() {
        let v2 = map(&[("manifest_version", Ipld::String("sharded_zarr_v2".into()))]);
        assert_eq!(sharded_version(&v2), Some(ShardedVersion::V2));
        let v1 = map(&[("chunks", Ipld::Map(BTreeMap::new()))]);
        assert_eq!(sharded_version(&v1), Some(ShardedVersion::V1));
        let arrays = map(&[("arrays", Ipld::Map(BTreeMap::new()))]);
        assert_eq!(sharded_version(&arrays), Some(ShardedVersion::V2));
        let odd = map(&[("manifest_version", Ipld::String("v9".into()))]);
        assert_eq!(
            sharded_version(&odd),
            Some(ShardedVersion::Other("v9".into()))
        );
        assert_eq!(sharded_version(&map(&[("x", Ipld::Null)])), None);
        assert_eq!(sharded_version(b"\x01"), None);
    }

    #[tokio::test]
    async fn raw_and_garbage_roots_are_typed_errors() {
        let store = MemoryStore::new();
        for b in [
            Block::new(RAW, HashAlg::Blake3, b"hello".to_vec()),
            Block::new(DAG_CBOR, HashAlg::Blake3, b"\x01".to_vec()),
            Block::new(DAG_CBOR, HashAlg::Blake3, map(&[("x", Ipld::Null)])),
        ] {
            store.put(b.clone()).await.unwrap();
            match detect(&store, &b.cid).await {
                Err(Error::NotADataset { cid, reason }) => {
                    assert_eq!(cid, b.cid);
                    assert!(!reason.is_empty());
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
