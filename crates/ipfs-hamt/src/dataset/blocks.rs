//! Every block a dataset reaches, as a stream: what copies (`push`) need.

use std::collections::HashSet;

use cid::Cid;
use futures::stream::{self, BoxStream, StreamExt as _};

use super::reader::DatasetReader;
use crate::block::{verify, Block, IDENTITY_CODE};
use crate::error::Result;

impl DatasetReader {
    /// Every block of the dataset, each once, verified against its CID: the structure blocks
    /// (HAMT nodes) and the value blocks, UnixFS files with all their nodes and leaves. Root
    /// first, depth-first (the order of [`DatasetReader::write_car`]). Identity CIDs carry
    /// their data and are not yielded.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use futures::TryStreamExt;
    /// use ipfs_hamt::dataset::{DatasetWriter, LayoutOptions};
    /// use ipfs_hamt::{store::MemoryStore, HamtConfig};
    /// let store = Arc::new(MemoryStore::new());
    /// let mut w = DatasetWriter::create(store.clone(), LayoutOptions::Hamt(HamtConfig::default())).unwrap();
    /// w.insert("a", b"1".to_vec()).await.unwrap();
    /// let r = w.reader().await.unwrap();
    /// let blocks: Vec<_> = r.blocks().try_collect().await.unwrap();
    /// assert_eq!(blocks.len(), 2); // the root node and the value
    /// assert_eq!(blocks[0].cid, r.root());
    /// # });
    /// ```
    pub fn blocks(&self) -> BoxStream<'static, Result<Block>> {
        struct State {
            reader: DatasetReader,
            stack: Vec<Cid>,
            seen: HashSet<Cid>,
        }
        let state = State {
            reader: self.clone(),
            stack: vec![self.root()],
            seen: HashSet::new(),
        };
        stream::try_unfold(state, |mut st| async move {
            while let Some(cid) = st.stack.pop() {
                if !st.seen.insert(cid) || cid.hash().code() == IDENTITY_CODE {
                    continue;
                }
                let data = st.reader.store().get(&cid).await?;
                verify(&cid, &data).map_err(crate::store::StoreError::from)?;
                let links = st.reader.block_links(&cid, &data)?;
                // Reversed: the first link is visited first, as in a CAR export.
                st.stack
                    .extend(links.into_iter().rev().filter(|l| !st.seen.contains(l)));
                return Ok(Some((Block { cid, data }, st)));
            }
            Ok(None)
        })
        .boxed()
    }
}
