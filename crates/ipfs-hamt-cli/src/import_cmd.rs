//! `import`: a directory into a new tree. Small directories are listed whole and written
//! with the incremental writer; large ones stream into a bulk builder (see [`bulk_import`]).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ipfs_hamt::crypt::ValueCipher;
use ipfs_hamt::dataset::{DatasetWriter, LayoutOptions};
use ipfs_hamt::store::{CarStore, SharedStore};
use ipfs_hamt::HamtConfig;
use serde_json::json;

use crate::bulk_import::{self, BulkMode};
use crate::cmd::{cipher, config, println};
use crate::sharded_cmd::{self, ImportLayout};
use crate::{progress, read_ahead, stores, walk, CryptOpts, StoreOpts, TreeOpts};

/// `import DIR`: prints the root (or a JSON object with `--json`).
#[allow(clippy::too_many_arguments)]
pub async fn import(
    opts: &StoreOpts,
    dir: &Path,
    tree: TreeOpts,
    batch_bytes: u64,
    json: bool,
    crypt: &CryptOpts,
    layout: &ImportLayout,
    bulk: BulkMode,
) -> Result<()> {
    let cipher = cipher(crypt)?;
    layout.validate(cipher.is_some())?;
    if bulk == BulkMode::Always && layout.writes_directly() {
        bail!("--bulk always builds a new tree: it does not work with --group, --into or --sharded-version 1");
    }
    // The walk streams: a small directory is listed whole and imported with the incremental
    // writer; past the threshold the bulk builder takes over, and the rest of the walk is
    // never held in memory.
    let threshold = match bulk {
        _ if layout.writes_directly() => usize::MAX,
        BulkMode::Never => usize::MAX,
        BulkMode::Always => 0,
        BulkMode::Auto => bulk_import::AUTO_THRESHOLD,
    };
    let mut walker = walk::Walker::new(dir)?;
    let mut first = Vec::new();
    let mut more = false;
    for entry in walker.by_ref() {
        first.push(entry?);
        if first.len() > threshold {
            more = true;
            break;
        }
    }
    let use_bulk = more || (bulk == BulkMode::Always);
    let config = HamtConfig {
        value_batch_bytes: usize::try_from(batch_bytes).unwrap_or(usize::MAX),
        ..config(tree)?
    };
    // With --car, a new CAR file; else the disk store, where every value batch is one durable
    // transaction, so a crash leaves a valid store and re-running gives the same root.
    if opts.car.is_some() && stores::uses_node(opts) {
        bail!("import writes one store: pass --car or --kubo, not both");
    }
    let on_node = stores::uses_node(opts);
    let mut opened_disk = None;
    let (store, car, target): (SharedStore, Option<Arc<CarStore>>, String) = match &opts.car {
        Some(out) => {
            let car = Arc::new(
                CarStore::create(out)
                    .with_context(|| format!("cannot create {}", out.display()))?,
            );
            (car.clone(), Some(car), out.display().to_string())
        }
        None => {
            let opened = stores::open_disk(opts, "import")?;
            let target = match &opened.kubo {
                Some(_) => opened.label.clone(),
                None => stores::disk_path(opts)?.display().to_string(),
            };
            let store = opened.store.clone();
            opened_disk = Some(opened);
            (store, None, target)
        }
    };
    // The sharded layout is py-hamt's conversion of the directory's HAMT. The incremental
    // path builds that HAMT with its nodes in memory (its value blocks are the sharded
    // store's) and converts it; the bulk path writes the sharded store directly.
    let hamt_store = if layout.is_sharded() && !layout.writes_directly() {
        sharded_cmd::conversion_store(&store)
    } else {
        store.clone()
    };
    let imported = if use_bulk {
        let source = bulk_import::Source {
            first,
            rest: walker,
        };
        bulk_import::import(store.clone(), config, source, cipher.as_ref(), layout).await?
    } else {
        import_incremental(
            &store,
            &hamt_store,
            config,
            first,
            dir,
            cipher.as_ref(),
            layout,
        )
        .await?
    };
    let mut root = imported.root;
    if layout.is_sharded() && !layout.writes_directly() && !imported.sharded {
        root = sharded_cmd::convert_hamt(
            hamt_store,
            root,
            store,
            layout.chunks_per_shard,
            imported.files,
        )
        .await?;
    }
    if let Some(car) = &car {
        car.finish(root)?;
    }
    if let Some(opened) = &opened_disk {
        // `--into ROOT` derives the new root from ROOT: the pin moves.
        let old = match &layout.into {
            Some(c) => Some(stores::parse_cid(c)?),
            None => None,
        };
        crate::pins::pin_root(opened, opts, old.as_ref(), &root).await?;
    }
    if json {
        let key = if car.is_some() {
            "car"
        } else if on_node {
            "node"
        } else {
            "store"
        };
        let v = json!({
            "root": root.to_string(),
            "files": imported.files,
            "bytes": imported.bytes,
            key: target,
        });
        println(v)
    } else {
        println(root)
    }
}

/// `import` of a listed directory with the incremental writer (small inputs, and sharded
/// imports that write keys one by one).
async fn import_incremental(
    store: &SharedStore,
    hamt_store: &SharedStore,
    config: HamtConfig,
    mut files: Vec<walk::FileEntry>,
    dir: &Path,
    cipher: Option<&ValueCipher>,
    layout: &ImportLayout,
) -> Result<bulk_import::Imported> {
    files.sort_by(|a, b| a.key.cmp(&b.key));
    if layout.writes_directly() {
        // As zarr writes: every array's metadata before its chunks.
        files.sort_by_key(|f| !sharded_cmd::is_metadata_key(&f.key));
    }
    let total: u64 = files.iter().map(|f| f.len).sum();
    let mut writer = if layout.writes_directly() {
        sharded_cmd::direct_writer(store.clone(), dir, layout).await?
    } else {
        DatasetWriter::create(hamt_store.clone(), LayoutOptions::Hamt(config))?
    };
    let mut bar = progress::bytes_bar(files.len() as u64, total);
    let count = files.len() as u64;
    let mut rx = read_ahead::read_files(files.into_iter().map(Ok));
    while let Some(item) = rx.recv().await {
        let (key, data) = item?;
        let key = layout.key(key);
        let len = data.len() as u64;
        match cipher {
            Some(c) => c.insert(&mut writer, &key, &data).await?,
            None => writer.insert(&key, data).await?,
        }
        bar.inc_item(len);
    }
    let root = writer.commit().await?;
    bar.finish();
    Ok(bulk_import::Imported {
        root,
        sharded: false,
        files: count,
        bytes: total,
    })
}
