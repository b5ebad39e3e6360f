//! [`BulkShardedBuilder`]: py-hamt's `convert_hamt_to_sharded` of a directory's HAMT, with
//! flat memory.
//!
//! The converter walks the HAMT in py-hamt's `keys()` order, sets every metadata key first,
//! then every chunk key, and keeps every touched shard in memory until the flush. Here the
//! HAMT is never stored: its shape is computed from the hash-sorted keys (as the HAMT bulk
//! build does) only to know each key's position in that order. Metadata (a few keys per
//! array) then goes through the ordinary [`ShardedWriter`] in that order; chunk keys are
//! sorted by that order and placed one by one (so errors are the converter's, for the same
//! first bad key), then sorted by (array, shard, entry) and each shard is written as the
//! stream passes it. Where two keys land on one entry, the later in `keys()` order wins, as
//! in the converter. The root is the converter's.

use bytes::Bytes;
use cid::Cid;

use super::extsort::ExtSorter;
use super::hamt::{BulkHamtBuilder, BulkOptions};
use super::BulkProgress;
use crate::error::{Error, Result};
use crate::hamt::HamtConfig;
use crate::node::{Entry, IdEncoding};
use crate::sharded::convert::{is_metadata, normalize};
use crate::sharded::placement::Placement;
use crate::sharded::{ConvertError, ShardedConfig, ShardedWriter};
use crate::store::SharedStore;

/// Builds a new v2 sharded store from keys in any order; the root equals the one
/// `convert_hamt_to_sharded` gives for the HAMT of the same keys (values stored the same way).
pub struct BulkShardedBuilder {
    hamt: BulkHamtBuilder,
    store: SharedStore,
    chunks_per_shard: u64,
    cfg: ShardedConfig,
}

impl std::fmt::Debug for BulkShardedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkShardedBuilder")
            .field("hamt", &self.hamt)
            .field("chunks_per_shard", &self.chunks_per_shard)
            .finish()
    }
}

fn damaged(reason: &str) -> Error {
    Error::Spill {
        path: std::path::PathBuf::new(),
        reason: reason.to_string(),
    }
}

/// `[u32 length][key][CID]`: a chunk key and its pointer in a sort record.
fn key_and_cid(key: &str, cid: &Cid) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + key.len() + 40);
    v.extend_from_slice(&(key.len() as u32).to_be_bytes());
    v.extend_from_slice(key.as_bytes());
    v.extend_from_slice(&cid.to_bytes());
    v
}

fn split_key_and_cid(v: &[u8]) -> Result<(String, Cid)> {
    let bad = || damaged("a sorted chunk record is malformed");
    let len = u32::from_be_bytes(v.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(bad)?);
    let end = 4usize.checked_add(len as usize).ok_or_else(bad)?;
    let key = std::str::from_utf8(v.get(4..end).ok_or_else(bad)?).map_err(|_| bad())?;
    let cid = Cid::try_from(v.get(end..).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok((key.to_string(), cid))
}

/// Sort key of a placed chunk: array path, shard, entry, then the `keys()` order position.
fn shard_sort_key(path: &str, shard: u64, offset: u64, order: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + path.len() + 16 + order.len());
    v.extend_from_slice(&(path.len() as u32).to_be_bytes());
    v.extend_from_slice(path.as_bytes());
    v.extend_from_slice(&shard.to_be_bytes());
    v.extend_from_slice(&offset.to_be_bytes());
    v.extend_from_slice(order);
    v
}

/// (path, shard, offset) of a [`shard_sort_key`].
fn split_shard_sort_key(v: &[u8]) -> Result<(&str, u64, u64)> {
    let bad = || damaged("a sorted shard record is malformed");
    let len = u32::from_be_bytes(v.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(bad)?);
    let end = 4usize.checked_add(len as usize).ok_or_else(bad)?;
    let path = std::str::from_utf8(v.get(4..end).ok_or_else(bad)?).map_err(|_| bad())?;
    let num = |at: usize| -> Result<u64> {
        let b = v.get(at..at + 8).ok_or_else(bad)?;
        Ok(u64::from_be_bytes(b.try_into().map_err(|_| bad())?))
    };
    Ok((path, num(end)?, num(end + 8)?))
}

impl BulkShardedBuilder {
    /// A builder writing value blocks and the sharded store to `store`. `hamt` is the HAMT
    /// configuration the converted HAMT would have had (its bucket size and hash decide the
    /// `keys()` order); its ids must be CIDs.
    pub fn new(
        store: SharedStore,
        hamt: HamtConfig,
        chunks_per_shard: u64,
        cfg: ShardedConfig,
        options: BulkOptions,
    ) -> Result<Self> {
        if hamt.ids != IdEncoding::Cid {
            return Err(Error::InvalidConfig(
                "a sharded bulk build needs CID ids in its HAMT configuration".into(),
            ));
        }
        // Fail early on a bad shard size, as the converter's writer would.
        ShardedWriter::create_v2(store.clone(), cfg.clone(), chunks_per_shard)?;
        Ok(BulkShardedBuilder {
            hamt: BulkHamtBuilder::new(store.clone(), hamt, options)?,
            store,
            chunks_per_shard,
            cfg,
        })
    }

    /// Calls `f` with the counters at phase changes and every few thousand keys.
    pub fn on_progress(&mut self, f: impl FnMut(&BulkProgress) + Send + 'static) {
        self.hamt.on_progress(f);
    }

    /// The counters so far.
    pub fn progress(&self) -> &BulkProgress {
        self.hamt.progress()
    }

    /// Sets `key` to the bytes `value`, stored as the HAMT import stores it.
    pub async fn add(&mut self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.hamt.add(key, value).await
    }

    /// Sets `key` to point at `value`, a block already stored.
    pub fn add_pointer(&mut self, key: &str, value: Cid) -> Result<()> {
        self.hamt.add_pointer(key, value)
    }

    /// Writes the sharded store and returns its root.
    pub async fn finish(mut self) -> Result<Cid> {
        self.hamt.finish_values().await?;
        let options = self.hamt.options().clone();
        // Two sorts can be alive at once below (one merging, one filling).
        let budget = (options.memory_budget / 2).max(1);
        let merged = self.hamt.merge()?;
        let mut metadata: Vec<(Vec<u8>, String, Cid)> = Vec::new();
        let mut chunks = ExtSorter::new(budget, options.spill_dir.clone());
        {
            let mut on_place = |order: &[u8], key: &str, item: &[u8]| -> Result<()> {
                let cid = Entry { key, item }
                    .cid()
                    .ok_or_else(|| damaged("a sorted pointer is not a CID"))?;
                if is_metadata(key) {
                    metadata.push((order.to_vec(), key.to_string(), cid));
                    Ok(())
                } else {
                    chunks.push(order, &key_and_cid(key, &cid))
                }
            };
            self.hamt.place(merged, &mut on_place).await?;
        }
        let mut w =
            ShardedWriter::create_v2(self.store.clone(), self.cfg.clone(), self.chunks_per_shard)?;
        // Metadata first, in `keys()` order, through the writer's own rules.
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, key, cid) in &metadata {
            w.set_pointer(key, *cid).await?;
        }
        // Chunks in `keys()` order: placed (or refused) exactly as the converter would.
        let mut placed = ExtSorter::new(budget, options.spill_dir.clone());
        let mut stream = chunks.finish()?;
        while let Some((order, payload)) = stream.next_record()? {
            let (key, cid) = split_key_and_cid(&payload)?;
            let Some(k) = normalize(&key, &w.manifest().arrays) else {
                return Err(Error::Convert(ConvertError(key)));
            };
            match w.place(&k)? {
                Placement::Chunk {
                    path,
                    shard,
                    offset,
                } => placed.push(
                    &shard_sort_key(&path, shard, offset, &order),
                    &cid.to_bytes(),
                )?,
                Placement::Ignored => {}
                // A normalized chunk key never has a metadata suffix.
                Placement::Metadata => return Err(Error::Convert(ConvertError(key))),
            }
        }
        drop(stream);
        // Each shard is written as the sorted stream passes it.
        let mut stream = placed.finish()?;
        let mut current: Option<(String, u64, Vec<Option<Cid>>)> = None;
        while let Some((sort_key, payload)) = stream.next_record()? {
            let (path, shard, offset) = split_shard_sort_key(&sort_key)?;
            let cid = Cid::try_from(payload.as_slice())
                .map_err(|_| damaged("a sorted shard entry is not a CID"))?;
            let same = matches!(&current, Some((p, s, _)) if p == path && *s == shard);
            if !same {
                if let Some((p, s, entries)) = current.take() {
                    w.write_shard(&p, s, &entries).await?;
                }
                let cps = w
                    .manifest()
                    .arrays
                    .get(path)
                    .map_or(self.chunks_per_shard, |i| i.chunks_per_shard);
                let cps = usize::try_from(cps).map_err(|_| damaged("shard size"))?;
                current = Some((path.to_string(), shard, vec![None; cps]));
            }
            if let Some((_, _, entries)) = &mut current {
                // Later in `keys()` order comes later here: it wins.
                if let Some(e) = usize::try_from(offset)
                    .ok()
                    .and_then(|o| entries.get_mut(o))
                {
                    *e = Some(cid);
                }
            }
        }
        if let Some((p, s, entries)) = current.take() {
            w.write_shard(&p, s, &entries).await?;
        }
        w.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let cid = crate::block::cid_of(crate::block::RAW, crate::block::HashAlg::Blake3, b"x");
        assert_eq!(
            split_key_and_cid(&key_and_cid("a/c/0", &cid)).unwrap(),
            ("a/c/0".to_string(), cid)
        );
        assert!(split_key_and_cid(&[0, 0, 0, 9, b'a']).is_err());
        let k = shard_sort_key("x/y", 7, 300, &[1, 2]);
        assert_eq!(split_shard_sort_key(&k).unwrap(), ("x/y", 7, 300));
        assert!(split_shard_sort_key(&k[..6]).is_err());
    }
}
