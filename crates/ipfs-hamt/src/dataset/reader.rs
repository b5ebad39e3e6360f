//! [`DatasetReader`]: one read handle over every layout.

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};

use super::layout::{detect_root, Layout, ShardedVersion};
use super::listing::{DirListing, KeyIndex};
use super::stats::DatasetStats;
use super::DatasetConfig;
use crate::error::{Error, Result};
use crate::hamt::{NodeCache, Reader};
use crate::range::ByteRange;
use crate::sharded::ShardedReader;
use crate::store::{car::block_links, SharedStore};

/// The layout-specific reader behind a [`DatasetReader`]. Adding a layout adds a variant.
#[derive(Clone, Debug)]
pub(crate) enum Inner {
    Hamt(Reader),
    Sharded(ShardedReader),
}

/// A read-only view of a dataset at one root, whatever its layout. Cloning is cheap; clones
/// share caches, and any number of tasks may read at once.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use futures::TryStreamExt;
/// use ipfs_hamt::dataset::{DatasetConfig, DatasetReader, DatasetWriter, Layout, LayoutOptions};
/// use ipfs_hamt::{store::MemoryStore, HamtConfig};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = DatasetWriter::create(store.clone(), LayoutOptions::Hamt(HamtConfig::default())).unwrap();
/// w.insert("zarr.json", b"{}".to_vec()).await.unwrap();
/// w.insert("t/c/0", b"chunk".to_vec()).await.unwrap();
/// let root = w.commit().await.unwrap();
/// let r = DatasetReader::open(store, root, &DatasetConfig::default()).await.unwrap();
/// assert_eq!(r.layout(), Layout::Hamt);
/// assert_eq!(r.get("t/c/0").await.unwrap().as_deref(), Some(&b"chunk"[..]));
/// let dir = r.list_dir("").await.unwrap();
/// assert_eq!((dir.keys, dir.dirs), (vec!["zarr.json".to_string()], vec!["t".to_string()]));
/// assert_eq!(r.len().await.unwrap(), 2);
/// # });
/// ```
#[derive(Clone)]
pub struct DatasetReader {
    inner: Inner,
    config: Arc<DatasetConfig>,
    /// Every key, sorted, built on the first HAMT listing and shared by clones.
    index: Arc<tokio::sync::OnceCell<KeyIndex>>,
}

impl std::fmt::Debug for DatasetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetReader")
            .field("layout", &self.layout())
            .field("root", &self.root())
            .finish()
    }
}

impl DatasetReader {
    /// Opens the dataset at `root` in `store`: reads the root block once to find its layout
    /// (see [`super::detect`]). [`Error::UnsupportedLayout`] for a layout this build
    /// recognises but cannot read, [`Error::NotADataset`] for any other block.
    pub async fn open(store: SharedStore, root: Cid, config: &DatasetConfig) -> Result<Self> {
        config.hamt.validate()?;
        let found = detect_root(&*store, &root, config.hamt.bucket_limit).await?;
        let inner = match (found.layout, found.hamt_root) {
            (Layout::Hamt, node) => {
                let cache =
                    NodeCache::new(store, config.hamt.cache_bytes, config.hamt.bucket_limit);
                // The root node was just read: seed the cache with it.
                if let Some(node) = node {
                    cache.insert(root, Arc::new(node));
                }
                Inner::Hamt(Reader::with_cache(root, Arc::new(cache), &config.hamt))
            }
            (
                Layout::Sharded {
                    version: ShardedVersion::V1 | ShardedVersion::V2,
                },
                _,
            ) => Inner::Sharded(ShardedReader::open(store, root, config.sharded.clone()).await?),
            (layout @ Layout::Sharded { .. }, _) => {
                return Err(Error::UnsupportedLayout {
                    cid: root,
                    layout: Box::new(layout),
                })
            }
        };
        Ok(DatasetReader {
            inner,
            config: Arc::new(config.clone()),
            index: Arc::default(),
        })
    }

    /// A dataset reader over an existing HAMT reader (no root block is read).
    pub fn from_hamt(reader: Reader, config: &DatasetConfig) -> Self {
        DatasetReader {
            inner: Inner::Hamt(reader),
            config: Arc::new(config.clone()),
            index: Arc::default(),
        }
    }

    /// A dataset handle over an open sharded reader.
    pub fn from_sharded(reader: ShardedReader, config: &DatasetConfig) -> Self {
        DatasetReader {
            inner: Inner::Sharded(reader),
            config: Arc::new(config.clone()),
            index: Arc::default(),
        }
    }

    /// The sharded reader behind this dataset, if it is one.
    pub fn as_sharded(&self) -> Option<&ShardedReader> {
        match &self.inner {
            Inner::Sharded(r) => Some(r),
            Inner::Hamt(_) => None,
        }
    }

    /// The HAMT reader, if the dataset is a HAMT.
    pub fn as_hamt(&self) -> Option<&Reader> {
        match &self.inner {
            Inner::Hamt(r) => Some(r),
            Inner::Sharded(_) => None,
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &DatasetConfig {
        &self.config
    }

    /// The root CID.
    pub fn root(&self) -> Cid {
        match &self.inner {
            Inner::Hamt(r) => r.root(),
            Inner::Sharded(r) => r.root(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        match &self.inner {
            Inner::Hamt(_) => Layout::Hamt,
            Inner::Sharded(r) => Layout::Sharded {
                version: r.manifest().version.into(),
            },
        }
    }

    /// The store read from.
    pub fn store(&self) -> &SharedStore {
        match &self.inner {
            Inner::Hamt(r) => r.store(),
            Inner::Sharded(r) => r.store(),
        }
    }

    /// The value CID stored for `key`, without loading the value.
    pub async fn get_pointer(&self, key: &str) -> Result<Option<Cid>> {
        match &self.inner {
            Inner::Hamt(r) => r.get_pointer(key).await,
            Inner::Sharded(r) => r.get_pointer(key).await,
        }
    }

    /// Whether `key` is present (the value is not loaded).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.get_pointer(key).await?.is_some())
    }

    /// The value of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_range(key, ByteRange::Full).await
    }

    /// Part of the value of `key` (see [`ByteRange`]).
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        match &self.inner {
            Inner::Hamt(r) => r.get_range(key, range).await,
            Inner::Sharded(r) => r.get_range(key, range).await,
        }
    }

    /// Every (key, value CID), in the layout's own order (for a HAMT, py-hamt's `keys()`
    /// order).
    pub fn entries(&self) -> BoxStream<'static, Result<(String, Cid)>> {
        match &self.inner {
            Inner::Hamt(r) => r.entries().boxed(),
            Inner::Sharded(r) => r.entries().boxed(),
        }
    }

    /// Every key, in the order of [`DatasetReader::entries`].
    pub fn keys(&self) -> BoxStream<'static, Result<String>> {
        self.entries().map_ok(|(k, _)| k).boxed()
    }

    /// Every key, sorted, as an index for listings (one walk of the dataset; keep it to list
    /// many times).
    pub async fn key_index(&self) -> Result<KeyIndex> {
        Ok(KeyIndex::new(self.keys().try_collect().await?))
    }

    /// The distinct next path components under `prefix` (`""` is the root), split into keys
    /// and directories. A HAMT lists from a key index built once per reader (and its
    /// clones). A sharded store lists as py-hamt's `list_dir` does: a single-group v2 store
    /// is listed through its group, and the root of a multi-group store is refused (a reader
    /// must name the group, e.g. `xr.open_zarr(url, group="0")`).
    pub async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        match &self.inner {
            Inner::Hamt(_) => {
                let index = self.index.get_or_try_init(|| self.key_index()).await?;
                Ok(index.list_dir(prefix))
            }
            Inner::Sharded(r) => {
                let p = prefix.trim_matches('/');
                let mut out = DirListing::default();
                for name in r.list_dir(p).await? {
                    let full = if p.is_empty() {
                        name.clone()
                    } else {
                        format!("{p}/{name}")
                    };
                    if r.get_pointer(&full).await?.is_some() {
                        out.keys.push(name);
                    } else {
                        out.dirs.push(name);
                    }
                }
                Ok(out)
            }
        }
    }

    /// Number of keys.
    pub async fn len(&self) -> Result<u64> {
        Ok(self.stats().await?.keys())
    }

    /// The layout's statistics.
    pub async fn stats(&self) -> Result<DatasetStats> {
        match &self.inner {
            Inner::Hamt(r) => Ok(DatasetStats::Hamt(r.stats().await?)),
            Inner::Sharded(r) => Ok(DatasetStats::Sharded(r.stats().await?)),
        }
    }

    /// The blocks the block `cid` (bytes `data`) of this dataset links to: structure blocks
    /// (HAMT nodes) link to structure and value blocks, UnixFS values to their leaves. Walking
    /// from [`DatasetReader::root`] with this reaches every block of the dataset (for copies:
    /// `push`, `pull`, CAR export).
    pub fn block_links(&self, cid: &Cid, data: &[u8]) -> Result<Vec<Cid>> {
        match &self.inner {
            // HAMT nodes, raw values and UnixFS files are plain IPLD: every CID in a DAG-CBOR
            // block and every dag-pb link.
            // So are sharded manifests and shards (DAG-CBOR maps and lists of CIDs).
            Inner::Hamt(_) | Inner::Sharded(_) => Ok(block_links(cid, data)?),
        }
    }

    /// Writes a CARv1 of every block of the dataset (root first, depth-first, each block
    /// once, every block verified) to `out`; returns the number of blocks.
    pub async fn write_car<W: std::io::Write>(&self, out: W) -> Result<u64> {
        match &self.inner {
            Inner::Hamt(_) | Inner::Sharded(_) => {
                let n = crate::store::car::write_car(&**self.store(), &self.root(), out).await?;
                Ok(n)
            }
        }
    }
}
