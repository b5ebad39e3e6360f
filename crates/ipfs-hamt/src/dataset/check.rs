//! Verifying a dataset of any layout: [`verify`].

use cid::Cid;

use super::layout::{detect_root, Layout, ShardedVersion};
use super::DatasetConfig;
use crate::error::{Error, Result};
use crate::sharded::ShardedStructure;
use crate::store::{BlockStore, StoreError};
use crate::verify::{verify_structure, HamtStructure, VerifyReport};

/// Reads every block reachable from the dataset at `root` and checks it against its CID (see
/// [`crate::verify`]); the layout is read from the root block. A missing or damaged root is
/// reported like any other block; a root that is no dataset at all is walked as a HAMT, whose
/// check reports it corrupt. A layout this build cannot read is
/// [`Error::UnsupportedLayout`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ipfs_hamt::dataset::{verify, DatasetConfig, DatasetWriter, LayoutOptions};
/// use ipfs_hamt::{store::MemoryStore, HamtConfig};
/// let store = Arc::new(MemoryStore::new());
/// let mut w = DatasetWriter::create(store.clone(), LayoutOptions::Hamt(HamtConfig::default())).unwrap();
/// w.insert("a", b"1".to_vec()).await.unwrap();
/// let root = w.commit().await.unwrap();
/// let report = verify(&*store, &root, &DatasetConfig::default(), &mut |_| {}).await.unwrap();
/// assert!(report.is_ok());
/// assert_eq!((report.nodes, report.values), (1, 1));
/// # });
/// ```
pub async fn verify(
    store: &dyn BlockStore,
    root: &Cid,
    config: &DatasetConfig,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<VerifyReport> {
    config.hamt.validate()?;
    let layout = match detect_root(store, root, config.hamt.bucket_limit).await {
        Ok(found) => found.layout,
        Err(Error::Store(StoreError::NotFound(_))) => {
            return Ok(VerifyReport {
                missing: vec![*root],
                ..VerifyReport::default()
            })
        }
        Err(Error::Store(StoreError::Verify(e))) => {
            return Ok(VerifyReport {
                corrupt: vec![(*root, e.to_string())],
                ..VerifyReport::default()
            })
        }
        // Not a dataset: the HAMT walk names what is wrong with the root block.
        Err(Error::NotADataset { .. }) => Layout::Hamt,
        Err(e) => return Err(e),
    };
    match layout {
        Layout::Hamt => {
            verify_structure(store, root, &HamtStructure::new(&config.hamt), progress).await
        }
        Layout::Sharded {
            version: ShardedVersion::V1 | ShardedVersion::V2,
        } => verify_structure(store, root, &ShardedStructure::new(), progress).await,
        layout @ Layout::Sharded { .. } => Err(Error::UnsupportedLayout {
            cid: *root,
            layout: Box::new(layout),
        }),
    }
}
