//! [`DatasetWriter`]: one write handle over every layout.

use bytes::Bytes;
use cid::Cid;

use super::layout::{detect_root, Layout, ShardedVersion};
use super::reader::DatasetReader;
use super::DatasetConfig;
use crate::error::{Error, Result};
use crate::hamt::{HamtConfig, Writer};
use crate::range::ByteRange;
use crate::sharded::{SetOutcome, ShardedConfig, ShardedReader, ShardedWriter};
use crate::store::SharedStore;

/// The layout (and its settings) of a new dataset.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LayoutOptions {
    /// A HAMT with these settings.
    Hamt(HamtConfig),
    /// A new, empty py-hamt sharded v2 store with `chunks_per_shard` entries per shard.
    ShardedV2 {
        /// Reader/writer settings.
        config: ShardedConfig,
        /// Entries per shard for the arrays registered.
        chunks_per_shard: u64,
    },
}

/// The layout-specific writer behind a [`DatasetWriter`]. Adding a layout adds a variant.
// One writer per dataset handle: the variants' sizes do not matter, and boxing both would
// only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Hamt(Writer),
    Sharded(ShardedWriter),
}

/// Builds or changes a dataset, whatever its layout; [`DatasetWriter::commit`] writes the
/// changes and returns the new root.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::dataset::{DatasetConfig, DatasetWriter, LayoutOptions};
/// use ipfs_hamt::{store::MemoryStore, HamtConfig};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = DatasetWriter::create(store.clone(), LayoutOptions::Hamt(HamtConfig::default())).unwrap();
/// w.insert("key-0", b"value-0".to_vec()).await.unwrap();
/// let root = w.commit().await.unwrap();
/// // Same root as the HAMT writer gives for the same map.
/// assert_eq!(root.to_string(), "bafyr4ihgo2rrdjny6xteslywfrhqdevjolhvzszryjktgygg6xhsxutoti");
/// let mut w = DatasetWriter::open(store, root, &DatasetConfig::default()).await.unwrap();
/// w.remove("key-0").await.unwrap();
/// assert!(w.remove("key-0").await.is_err());
/// # });
/// ```
pub struct DatasetWriter {
    inner: Inner,
    config: DatasetConfig,
}

impl std::fmt::Debug for DatasetWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("DatasetWriter");
        d.field("layout", &self.layout());
        match &self.inner {
            Inner::Hamt(w) => d.field("hamt", w),
            Inner::Sharded(w) => d.field("sharded", w),
        };
        d.finish()
    }
}

impl DatasetWriter {
    /// A writer on a new, empty dataset of the given layout.
    pub fn create(store: SharedStore, options: LayoutOptions) -> Result<Self> {
        match options {
            LayoutOptions::Hamt(hamt) => Ok(DatasetWriter {
                inner: Inner::Hamt(Writer::new(store, hamt.clone())?),
                config: DatasetConfig::hamt(hamt),
            }),
            LayoutOptions::ShardedV2 {
                config,
                chunks_per_shard,
            } => Ok(DatasetWriter {
                inner: Inner::Sharded(ShardedWriter::create_v2(
                    store,
                    config.clone(),
                    chunks_per_shard,
                )?),
                config: DatasetConfig {
                    sharded: config,
                    ..DatasetConfig::default()
                },
            }),
        }
    }

    /// A writer on the dataset at `root`; its layout is read from the root block (see
    /// [`super::detect`]). The layout's settings come from `config` (for a HAMT,
    /// `max_bucket_size` must match the tree's).
    pub async fn open(store: SharedStore, root: Cid, config: &DatasetConfig) -> Result<Self> {
        config.hamt.validate()?;
        let found = detect_root(&*store, &root, config.hamt.bucket_limit).await?;
        match found.layout {
            Layout::Hamt => Ok(DatasetWriter {
                inner: Inner::Hamt(Writer::open(store, root, config.hamt.clone())?),
                config: config.clone(),
            }),
            Layout::Sharded {
                version: ShardedVersion::V1 | ShardedVersion::V2,
            } => Ok(DatasetWriter {
                inner: Inner::Sharded(
                    ShardedWriter::open(store, root, config.sharded.clone()).await?,
                ),
                config: config.clone(),
            }),
            layout @ Layout::Sharded { .. } => Err(Error::UnsupportedLayout {
                cid: root,
                layout: Box::new(layout),
            }),
        }
    }

    /// A dataset writer over an existing HAMT writer.
    pub fn from_hamt(writer: Writer) -> Self {
        let config = DatasetConfig::hamt(writer.config().clone());
        DatasetWriter {
            inner: Inner::Hamt(writer),
            config,
        }
    }

    /// The HAMT writer, if the dataset is a HAMT.
    pub fn as_hamt_mut(&mut self) -> Option<&mut Writer> {
        match &mut self.inner {
            Inner::Hamt(w) => Some(w),
            Inner::Sharded(_) => None,
        }
    }

    /// A dataset handle over an open sharded writer.
    pub fn from_sharded(writer: ShardedWriter, config: &DatasetConfig) -> Self {
        DatasetWriter {
            inner: Inner::Sharded(writer),
            config: config.clone(),
        }
    }

    /// The sharded writer behind this dataset (for resize, graft, ...), if it is one.
    pub fn as_sharded_mut(&mut self) -> Option<&mut ShardedWriter> {
        match &mut self.inner {
            Inner::Sharded(w) => Some(w),
            Inner::Hamt(_) => None,
        }
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        match &self.inner {
            Inner::Hamt(_) => Layout::Hamt,
            Inner::Sharded(w) => Layout::Sharded {
                version: w.manifest().version.into(),
            },
        }
    }

    /// The store written to.
    pub fn store(&self) -> &SharedStore {
        match &self.inner {
            Inner::Hamt(w) => w.store(),
            Inner::Sharded(w) => w.store(),
        }
    }

    /// The root CID if nothing changed since the last commit or open.
    pub fn root_cid(&self) -> Option<Cid> {
        match &self.inner {
            Inner::Hamt(w) => w.root_cid(),
            Inner::Sharded(w) => w.root_cid(),
        }
    }

    /// Sets `key` to `value` (stored as a new value block).
    pub async fn insert(&mut self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        match &mut self.inner {
            Inner::Hamt(w) => w.insert(key, value).await,
            Inner::Sharded(w) => stored(w.set(key, value).await?),
        }
    }

    /// Sets `key` to point at `value`, a block already stored (or buffered).
    pub async fn insert_pointer(&mut self, key: &str, value: Cid) -> Result<()> {
        match &mut self.inner {
            Inner::Hamt(w) => w.insert_pointer(key, value).await,
            Inner::Sharded(w) => stored(w.set_pointer(key, value).await?),
        }
    }

    /// Removes `key`; returns its value CID. [`Error::KeyNotFound`] (and no change) if absent.
    pub async fn remove(&mut self, key: &str) -> Result<Cid> {
        match &mut self.inner {
            Inner::Hamt(w) => w.remove(key).await,
            Inner::Sharded(w) => match w.get_pointer(key).await? {
                None => Err(Error::KeyNotFound(key.to_string())),
                Some(cid) => {
                    w.delete(key).await?;
                    Ok(cid)
                }
            },
        }
    }

    /// The value CID stored for `key`.
    pub async fn get_pointer(&self, key: &str) -> Result<Option<Cid>> {
        match &self.inner {
            Inner::Hamt(w) => w.get_pointer(key).await,
            Inner::Sharded(w) => w.get_pointer(key).await,
        }
    }

    /// Whether `key` is present.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.get_pointer(key).await?.is_some())
    }

    /// The value of `key`, including values not yet written to the store.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_range(key, ByteRange::Full).await
    }

    /// Part of the value of `key`.
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        match &self.inner {
            Inner::Hamt(w) => w.get_range(key, range).await,
            Inner::Sharded(w) => w.get_range(key, range).await,
        }
    }

    /// Every key of the current dataset (committed or not), in the layout's order.
    pub async fn keys(&self) -> Result<Vec<String>> {
        match &self.inner {
            Inner::Hamt(w) => w.keys().await,
            Inner::Sharded(w) => {
                let mut keys = w.list().await?;
                keys.sort();
                Ok(keys)
            }
        }
    }

    /// Writes buffered value blocks to the store (they are readable from the store after).
    pub async fn flush_values(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Hamt(w) => w.flush_values().await,
            // Sharded values go to the store in batches as they are set.
            Inner::Sharded(_) => Ok(()),
        }
    }

    /// Writes every change and returns the root CID. If the store fails, the changes stay
    /// and a later commit can retry.
    pub async fn commit(&mut self) -> Result<Cid> {
        match &mut self.inner {
            Inner::Hamt(w) => w.commit().await,
            Inner::Sharded(w) => w.flush().await,
        }
    }

    /// Commits and returns a reader on the new root (sharing this writer's caches).
    pub async fn reader(&mut self) -> Result<DatasetReader> {
        match &mut self.inner {
            Inner::Hamt(w) => Ok(DatasetReader::from_hamt(w.reader().await?, &self.config)),
            Inner::Sharded(w) => {
                let root = w.flush().await?;
                let r = ShardedReader::open(w.store().clone(), root, self.config.sharded.clone())
                    .await?;
                Ok(DatasetReader::from_sharded(r, &self.config))
            }
        }
    }
}

/// A sharded write that py-hamt would drop silently (an out-of-bounds or malformed chunk key)
/// is an error here: a user of this interface asked for the key to be stored.
fn stored(outcome: SetOutcome) -> Result<()> {
    match outcome {
        SetOutcome::Stored => Ok(()),
        SetOutcome::Ignored(e) => Err(Error::Sharded(e)),
    }
}
