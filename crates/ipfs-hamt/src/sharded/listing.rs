//! Listings shared by readers and writers (py-hamt §9.8-9.9): `list()` yields the metadata
//! keys, then every non-null chunk entry in array, shard and entry order, formatted as v3 keys;
//! `list_dir` yields the next path components under a prefix.

use std::collections::BTreeSet;
use std::sync::Arc;

use cid::Cid;

use super::geometry::chunk_key;
use super::manifest::Manifest;
use super::shard::ShardEntries;
use super::writer::sharded;
use super::{ShardedError, Version};
use crate::error::Result;

/// Where listings get shards from.
#[async_trait::async_trait]
pub(crate) trait ShardSource: Sync {
    /// The manifest listed.
    fn manifest(&self) -> &Manifest;
    /// Shard `s` of the index stored under `array` (`None` for a null shard).
    async fn shard(&self, array: &str, s: u64) -> Result<Option<Arc<ShardEntries>>>;
}

/// The path chunk keys of the index `array` are listed under (v1: the primary path).
fn listed_path(m: &Manifest, array: &str) -> String {
    match m.version {
        Version::V1 => m.primary.clone().unwrap_or_default(),
        Version::V2 => array.to_string(),
    }
}

/// The (key, CID) pairs of one shard's non-null entries inside the grid.
pub(crate) async fn shard_entries<S: ShardSource + ?Sized>(
    src: &S,
    array: &str,
    s: u64,
) -> Result<Vec<(String, Cid)>> {
    let m = src.manifest();
    let index = m
        .arrays
        .get(array)
        .ok_or_else(|| sharded(ShardedError::NoIndex(array.to_string())))?;
    let Some(entries) = src.shard(array, s).await? else {
        return Ok(Vec::new());
    };
    let path = listed_path(m, array);
    // Unrecorded v1 roots tell shard chunks ("/c/...") from legacy metadata keys ("c/...").
    let slash = m.version == Version::V1
        && path.is_empty()
        && m.v1_recorded_primary().map(super::normalize_path) != Some("");
    let mut out = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        let Some(cid) = e else { continue };
        let lin = s * index.chunks_per_shard + k as u64;
        if lin >= index.total_chunks() {
            continue;
        }
        let key = chunk_key(&path, &index.coords(lin));
        out.push((if slash { format!("/{key}") } else { key }, *cid));
    }
    Ok(out)
}

/// Every key with its CID, in py-hamt's `list()` order.
pub(crate) async fn list_all<S: ShardSource + ?Sized>(src: &S) -> Result<Vec<(String, Cid)>> {
    let m = src.manifest();
    let mut out: Vec<(String, Cid)> = m.metadata.iter().map(|(k, c)| (k.clone(), *c)).collect();
    for (array, index) in &m.arrays {
        for s in 0..index.num_shards() {
            for (k, c) in shard_entries(src, array, s).await? {
                if !m.metadata.contains_key(&k) {
                    out.push((k, c));
                }
            }
        }
    }
    Ok(out)
}

/// The chunk-directory prefixes (`c`, `<array>/c`) chunk keys are listed under.
fn chunk_prefixes(m: &Manifest) -> Vec<String> {
    let c = |p: &str| {
        if p.is_empty() {
            "c".to_string()
        } else {
            format!("{p}/c")
        }
    };
    match m.version {
        Version::V2 => m.arrays.keys().map(|p| c(p)).collect(),
        Version::V1 => vec![c(m.primary.as_deref().unwrap_or(""))],
    }
}

/// Distinct next components under `prefix` (sorted; py-hamt's order is a Python set's).
/// A read-only listing of the root of a multi-group v2 store is refused, as py-hamt does.
pub(crate) async fn list_dir<S: ShardSource + ?Sized>(
    src: &S,
    prefix: &str,
    read_only: bool,
) -> Result<Vec<String>> {
    let m = src.manifest();
    let np = prefix.trim_matches('/');
    if read_only && np.is_empty() && m.requires_explicit_group() {
        return Err(sharded(ShardedError::Invalid(
            "sharded_zarr_v2 stores with multiple top-level groups require an explicit Zarr group when reading. Open the desired pyramid level with xr.open_zarr(..., group='0') or another available group.".into(),
        )));
    }
    let ep = m.effective_list_prefix(np);
    let mp = if ep.is_empty() {
        String::new()
    } else {
        format!("{ep}/")
    };
    let mut seen = BTreeSet::new();
    let first = |key: &str, seen: &mut BTreeSet<String>| {
        if let Some(rest) = key.strip_prefix(mp.as_str()) {
            if !rest.is_empty() {
                seen.insert(rest.split('/').next().unwrap_or("").to_string());
            }
        }
    };
    let in_chunk_dir = chunk_prefixes(m)
        .iter()
        .any(|c| ep == *c || ep.starts_with(&format!("{c}/")));
    if in_chunk_dir {
        for (array, index) in &m.arrays {
            for s in 0..index.num_shards() {
                for (k, _) in shard_entries(src, array, s).await? {
                    first(k.strip_prefix('/').unwrap_or(&k), &mut seen);
                }
            }
        }
        return Ok(seen.into_iter().collect());
    }
    let mut candidates: BTreeSet<String> = m.metadata.keys().cloned().collect();
    match m.version {
        Version::V1 => {
            candidates.extend(chunk_prefixes(m));
        }
        Version::V2 => {
            for p in m.arrays.keys() {
                if !p.is_empty() {
                    let parts: Vec<&str> = p.split('/').collect();
                    candidates.extend((1..=parts.len()).map(|i| parts[..i].join("/")));
                }
                candidates.insert(if p.is_empty() {
                    "c".into()
                } else {
                    format!("{p}/c")
                });
            }
        }
    }
    for k in &candidates {
        first(k, &mut seen);
    }
    Ok(seen.into_iter().collect())
}
