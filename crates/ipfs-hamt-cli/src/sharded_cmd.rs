//! Commands for py-hamt's sharded layout: the import options, `convert`, and the operations a
//! publisher of a growing dataset reaches for (`resize`, `graft`, `migrate`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use futures::TryStreamExt;
use ipfs_hamt::dataset::{DatasetConfig, DatasetReader, DatasetWriter, LayoutOptions};
use ipfs_hamt::hamt::Reader;
use ipfs_hamt::sharded::{self, ShardedConfig, ShardedWriter, DEFAULT_CHUNKS_PER_SHARD};
use ipfs_hamt::store::{SharedStore, SplitStore};
use ipfs_hamt::{Cid, HamtConfig};

use crate::cmd::println;
use crate::{progress, stores, StoreOpts};

/// The on-IPFS layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LayoutArg {
    /// py-hamt's HAMT (ZarrHAMTStore).
    #[default]
    Hamt,
    /// py-hamt's ShardedZarrStore (sharded_zarr_v2 unless --sharded-version 1).
    Sharded,
}

/// How `import` lays the dataset out.
#[derive(Args, Clone, Debug)]
pub struct ImportLayout {
    /// Layout to write: `hamt` (default) or `sharded`. Without --group/--into, `sharded`
    /// gives exactly the root of py-hamt's `convert_hamt_to_sharded(cas, <HAMT of DIR>, N)`:
    /// an ungrouped v2 store.
    #[arg(long, value_enum, default_value_t = LayoutArg::Hamt)]
    pub layout: LayoutArg,
    /// Chunk CIDs per shard block (sharded layout; py-hamt's converter default).
    #[arg(long, default_value_t = DEFAULT_CHUNKS_PER_SHARD, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=sharded::MAX_CHUNKS_PER_SHARD))]
    pub chunks_per_shard: u64,
    /// Write DIR as Zarr group G of a v2 store, as `ds.to_zarr(store, group=G)` does through
    /// py-hamt (e.g. one level of a multi-resolution pyramid).
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Add DIR to this existing sharded root instead of a new store (with --group: another
    /// pyramid level).
    #[arg(long, value_name = "ROOT")]
    pub into: Option<String>,
    /// 1 writes the deprecated sharded_zarr_v1 layout (one global index; needs --primary).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub sharded_version: u8,
    /// v1: the array whose chunks go in the shards (its zarr.json gives the geometry).
    #[arg(long, value_name = "ARRAY")]
    pub primary: Option<String>,
}

impl ImportLayout {
    /// Whether the import writes the sharded layout.
    pub fn is_sharded(&self) -> bool {
        self.layout == LayoutArg::Sharded
    }

    /// Sharded imports that write keys with py-hamt's `set` (groups, an existing root, v1)
    /// rather than by converting the directory's HAMT.
    pub fn writes_directly(&self) -> bool {
        self.is_sharded()
            && (self.group.is_some() || self.into.is_some() || self.sharded_version == 1)
    }

    /// Checks the combination of options.
    pub fn validate(&self, encrypted: bool) -> Result<()> {
        if !self.is_sharded() {
            if self.group.is_some()
                || self.into.is_some()
                || self.sharded_version != 2
                || self.primary.is_some()
            {
                bail!("--group, --into, --sharded-version and --primary need --layout sharded");
            }
            return Ok(());
        }
        if encrypted {
            bail!("py-hamt has no encrypted sharded store: --encrypt-key-file works with --layout hamt");
        }
        if self.sharded_version == 1
            && (self.primary.is_none() || self.group.is_some() || self.into.is_some())
        {
            bail!("--sharded-version 1 needs --primary ARRAY and takes no --group or --into");
        }
        if let Some(g) = &self.group {
            if g.trim_matches('/').is_empty() {
                bail!("--group needs a non-empty group name");
            }
        }
        Ok(())
    }

    /// The key a file is stored under.
    pub fn key(&self, key: String) -> String {
        match &self.group {
            Some(g) => format!("{}/{key}", g.trim_matches('/')),
            None => key,
        }
    }
}

/// A file key is Zarr metadata (written before chunks by a direct sharded import, as zarr
/// writes arrays' metadata before their chunks).
pub fn is_metadata_key(key: &str) -> bool {
    ["zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"]
        .iter()
        .any(|s| key.ends_with(s))
}

/// The writer a direct sharded import writes keys into.
pub async fn direct_writer(
    store: SharedStore,
    dir: &Path,
    layout: &ImportLayout,
) -> Result<DatasetWriter> {
    let cfg = DatasetConfig::default();
    if let Some(root) = &layout.into {
        let root = stores::parse_cid(root)?;
        let w = DatasetWriter::open(store, root, &cfg).await?;
        if !matches!(w.layout(), ipfs_hamt::dataset::Layout::Sharded { .. }) {
            bail!("--into {root}: not a sharded root ({})", w.layout());
        }
        return Ok(w);
    }
    if layout.sharded_version == 1 {
        let primary = layout.primary.as_deref().unwrap_or("").trim_matches('/');
        let (shape, chunks) = geometry_of(dir, primary)?;
        let w = ShardedWriter::create_v1(
            store,
            ShardedConfig::default(),
            shape,
            chunks,
            layout.chunks_per_shard,
        )?;
        return Ok(DatasetWriter::from_sharded(w, &cfg));
    }
    Ok(DatasetWriter::create(
        store,
        LayoutOptions::ShardedV2 {
            config: ShardedConfig::default(),
            chunks_per_shard: layout.chunks_per_shard,
        },
    )?)
}

/// Shape and chunk shape of the array at `path` under `dir` (zarr.json or .zarray).
fn geometry_of(dir: &Path, path: &str) -> Result<(Vec<u64>, Vec<u64>)> {
    let base = if path.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(path)
    };
    let (file, bytes) = ["zarr.json", ".zarray"]
        .iter()
        .find_map(|n| std::fs::read(base.join(n)).ok().map(|b| (base.join(n), b)))
        .with_context(|| {
            format!(
                "--primary {path:?}: no zarr.json or .zarray under {}",
                base.display()
            )
        })?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", file.display()))?;
    let dims = |v: &serde_json::Value| -> Option<Vec<u64>> {
        v.as_array()?.iter().map(|d| d.as_u64()).collect()
    };
    let shape = doc.get("shape").and_then(dims);
    let chunks = doc
        .pointer("/chunk_grid/configuration/chunk_shape")
        .and_then(dims)
        .or_else(|| doc.get("chunks").and_then(dims));
    match (shape, chunks) {
        (Some(s), Some(c)) => Ok((s, c)),
        _ => bail!("{} has no shape and chunk shape", file.display()),
    }
}

/// The HAMT an import builds before converting: nodes in memory, values to `store`.
pub fn conversion_store(store: &SharedStore) -> SharedStore {
    Arc::new(SplitStore::new(store.clone()))
}

/// Converts the HAMT `hamt_root` (nodes in `hamt_store`) into a sharded store in `store`.
pub async fn convert_hamt(
    hamt_store: SharedStore,
    hamt_root: Cid,
    store: SharedStore,
    cps: u64,
    keys: u64,
) -> Result<Cid> {
    let reader = Reader::new(hamt_store, hamt_root, HamtConfig::default())?;
    let mut bar = progress::spinner(Some(keys), "keys sharded");
    let root = sharded::convert_from_reader(&reader, store, cps, ShardedConfig::default(), |_| {
        bar.inc_item(0)
    })
    .await?;
    bar.finish();
    Ok(root)
}

/// `convert ROOT --to sharded|hamt`: the same dataset in the other layout, pointing at the
/// same value blocks (nothing is copied).
pub async fn convert(opts: &StoreOpts, cid: &str, to: LayoutArg, cps: u64) -> Result<()> {
    let s = stores::open_disk(opts, "convert")?;
    let root = s.root(Some(cid)).await?;
    let r = DatasetReader::open(s.store.clone(), root, &DatasetConfig::default()).await?;
    let keys = r.len().await?;
    let new_root = match (r.layout(), to) {
        (ipfs_hamt::dataset::Layout::Hamt, LayoutArg::Sharded) => {
            convert_hamt(s.store.clone(), root, s.store.clone(), cps, keys).await?
        }
        (ipfs_hamt::dataset::Layout::Sharded { .. }, LayoutArg::Hamt) => {
            let mut w =
                DatasetWriter::create(s.store.clone(), LayoutOptions::Hamt(HamtConfig::default()))?;
            let mut bar = progress::spinner(Some(keys), "keys");
            let mut entries = r.entries();
            while let Some((k, c)) = entries.try_next().await? {
                w.insert_pointer(&k, c).await?;
                bar.inc_item(0);
            }
            bar.finish();
            w.commit().await?
        }
        (layout, _) => bail!("{root} is already {layout}"),
    };
    // The old layout stays pinned (if it was): both share the value blocks.
    crate::pins::pin_root(&s, opts, None, &new_root).await?;
    println(new_root)
}

/// Opens `cid` for a sharded-only operation.
async fn sharded_writer(
    opts: &StoreOpts,
    cid: &str,
    what: &str,
) -> Result<(DatasetWriter, stores::Opened, Cid)> {
    let s = stores::open_disk(opts, what)?;
    let root = s.root(Some(cid)).await?;
    let w = DatasetWriter::open(s.store.clone(), root, &DatasetConfig::default()).await?;
    if !matches!(w.layout(), ipfs_hamt::dataset::Layout::Sharded { .. }) {
        bail!("{what} works on sharded roots; {root} is a {}", w.layout());
    }
    Ok((w, s, root))
}

/// Pins `new`, moving the pin from `old` (the root it was derived from), and prints it.
async fn finish(opts: &StoreOpts, s: &stores::Opened, old: Cid, new: Cid) -> Result<()> {
    crate::pins::pin_root(s, opts, Some(&old), &new).await?;
    println(new)
}

fn sharded_mut(w: &mut DatasetWriter) -> Result<&mut ShardedWriter> {
    w.as_sharded_mut().context("not a sharded dataset")
}

/// `resize ROOT ARRAY SHAPE`: grows (or shrinks) an array: its shard index, and its
/// zarr.json `shape` unless `--index-only` (py-hamt's resize_store + resize_variable).
pub async fn resize(
    opts: &StoreOpts,
    cid: &str,
    array: &str,
    shape: &[u64],
    index_only: bool,
) -> Result<()> {
    let (mut w, s, old) = sharded_writer(opts, cid, "resize").await?;
    let sw = sharded_mut(&mut w)?;
    sw.resize_store(shape.to_vec(), Some(array)).await?;
    if !index_only {
        sw.resize_variable(array, shape.to_vec()).await?;
    }
    let new = w.commit().await?;
    finish(opts, &s, old, new).await
}

/// `graft ROOT SOURCE --offset I,J,..`: copies every chunk pointer of SOURCE's array into
/// ROOT's array at a chunk offset (py-hamt's graft_store; resize the target first).
pub async fn graft(
    opts: &StoreOpts,
    cid: &str,
    source: &str,
    offset: &[u64],
    source_array: Option<&str>,
    target_array: Option<&str>,
) -> Result<()> {
    let (mut w, s, old) = sharded_writer(opts, cid, "graft").await?;
    let source = stores::parse_cid(source)?;
    if !ipfs_hamt::store::BlockStore::has(&*s.store, &source).await? {
        bail!("graft source {source} not found in the store");
    }
    sharded_mut(&mut w)?
        .graft_store(source, offset, source_array, target_array)
        .await?;
    let new = w.commit().await?;
    finish(opts, &s, old, new).await
}

/// `migrate ROOT ARRAY`: rewrites a sharded_zarr_v1 root as v2 with its shards under ARRAY.
pub async fn migrate(opts: &StoreOpts, cid: &str, array: &str) -> Result<()> {
    let (mut w, s, old) = sharded_writer(opts, cid, "migrate").await?;
    let root = sharded_mut(&mut w)?.migrate_v1_to_v2(array).await?;
    finish(opts, &s, old, root).await
}

/// Dimensions given as `8,6,8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dims(pub Vec<u64>);

/// Parses `8,6,8` into dimensions.
pub fn parse_dims(s: &str) -> Result<Dims, String> {
    s.split(',')
        .map(|d| {
            d.trim()
                .parse::<u64>()
                .map_err(|_| format!("{d:?} is not a non-negative integer"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Dims)
}
