//! py-hamt's `convert_hamt_to_sharded`: a ZarrHAMTStore HAMT becomes an (ungrouped) v2
//! sharded store that points at the same value blocks. No data is copied.

use cid::Cid;
use futures::TryStreamExt;

use super::geometry::ArrayIndex;
use super::keys::{dotted_parts, slash_parts};
use super::writer::ShardedWriter;
use super::ShardedConfig;
use crate::error::{Error, Result};
use crate::hamt::{HamtConfig, Reader};
use crate::pyemu::int::parse_int;
use crate::store::SharedStore;

/// A HAMT key the converter cannot place.
#[derive(Debug, thiserror::Error)]
#[error("Cannot classify Zarr key {0:?} as metadata or chunk during conversion.")]
pub struct ConvertError(pub String);

const SUFFIXES: [&str; 5] = ["zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"];

pub(crate) fn is_metadata(key: &str) -> bool {
    SUFFIXES.iter().any(|s| key.ends_with(s))
}

fn v3_key(path: &str, parts: &[&str]) -> Option<String> {
    let coords: Option<Vec<String>> = parts
        .iter()
        .map(|p| parse_int(p).ok().map(|i| i.to_string()))
        .collect();
    let coords = coords?.join("/");
    Some(if path.is_empty() {
        format!("c/{coords}")
    } else {
        format!("{path}/c/{coords}")
    })
}

/// The v3 chunk key a HAMT key becomes (`None` for metadata and unplaceable keys). Unlike the
/// store's own parsing, a dotted key needs no array index (py-hamt's converter rule).
pub(crate) fn normalize(
    key: &str,
    arrays: &indexmap::IndexMap<String, ArrayIndex>,
) -> Option<String> {
    if is_metadata(key) {
        return None;
    }
    if let Some((path, parts)) = dotted_parts(key) {
        return v3_key(path, &parts);
    }
    if let Some((path, _, parts)) = slash_parts(key, arrays) {
        return v3_key(path, &parts);
    }
    (key.starts_with("c/") || key.contains("/c/")).then(|| key.to_string())
}

/// Converts the HAMT at `hamt_root` (values as bytes, py-hamt's ZarrHAMTStore layout) into a
/// v2 sharded store with `chunks_per_shard` entries per shard, exactly as py-hamt's
/// `convert_hamt_to_sharded` does: metadata first (in the HAMT's key order), then chunks
/// (zarr-v2 dotted and slash keys become `/c/` keys). `on_key` is called after each key.
pub async fn convert_hamt_to_sharded(
    store: SharedStore,
    hamt_root: Cid,
    chunks_per_shard: u64,
    cfg: ShardedConfig,
    on_key: impl FnMut(u64),
) -> Result<Cid> {
    let hamt = Reader::new(store.clone(), hamt_root, HamtConfig::default())?;
    convert_from_reader(&hamt, store, chunks_per_shard, cfg, on_key).await
}

/// [`convert_hamt_to_sharded`] reading the HAMT through `hamt` (its nodes may live in another
/// store, e.g. in memory during an import) and writing the sharded blocks to `store`, which
/// must hold the value blocks.
pub async fn convert_from_reader(
    hamt: &Reader,
    store: SharedStore,
    chunks_per_shard: u64,
    cfg: ShardedConfig,
    mut on_key: impl FnMut(u64),
) -> Result<Cid> {
    let entries: Vec<(String, Cid)> = hamt.entries().try_collect().await?;
    let mut w = ShardedWriter::create_v2(store, cfg, chunks_per_shard)?;
    let mut n = 0;
    for (key, cid) in entries.iter().filter(|(k, _)| is_metadata(k)) {
        w.set_pointer(key, *cid).await?;
        n += 1;
        on_key(n);
    }
    for (key, cid) in &entries {
        if is_metadata(key) {
            continue;
        }
        let Some(k) = normalize(key, &w.manifest().arrays) else {
            return Err(Error::Convert(ConvertError(key.clone())));
        };
        w.set_pointer(&k, *cid).await?;
        n += 1;
        on_key(n);
    }
    w.flush().await
}
