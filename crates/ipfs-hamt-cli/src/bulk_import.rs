//! `import` of large directories with the bulk builder: the walk streams, a reader thread
//! stays a few files ahead, values are written as they come, and the tree is written
//! bottom-up after an external sort of the keys, so memory does not grow with the number of
//! files.

use anyhow::Result;
use clap::ValueEnum;
use ipfs_hamt::bulk::{BulkHamtBuilder, BulkOptions, BulkPhase, BulkProgress, BulkShardedBuilder};
use ipfs_hamt::crypt::ValueCipher;
use ipfs_hamt::sharded::ShardedConfig;
use ipfs_hamt::store::SharedStore;
use ipfs_hamt::{Cid, HamtConfig};

use crate::progress;
use crate::read_ahead;
use crate::sharded_cmd::ImportLayout;
use crate::walk::{FileEntry, Walker};

/// Files above which `--bulk auto` switches to the bulk builder. Below it the incremental
/// writer is as fast and its memory is small anyway (see BENCHMARKS.md, "Bulk import").
pub const AUTO_THRESHOLD: usize = 20_000;

/// `--bulk`: when `import` uses the bulk builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum BulkMode {
    /// Past a threshold of files.
    #[default]
    Auto,
    /// Always (a new HAMT, or a plain sharded import).
    Always,
    /// Never: the incremental writer.
    Never,
}

/// What an import wrote.
pub struct Imported {
    /// The root: the HAMT's, or with `sharded` the sharded store's.
    pub root: Cid,
    /// True when `root` is already the sharded store (no conversion left to do).
    pub sharded: bool,
    /// Files imported.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The files to import: those listed before the switch, then the rest of the walk.
pub struct Source {
    /// Already listed.
    pub first: Vec<FileEntry>,
    /// Not yet listed.
    pub rest: Walker,
}

/// The HAMT builder, or the sharded one for a plain `--layout sharded` import.
enum Builder {
    Hamt(BulkHamtBuilder),
    Sharded(BulkShardedBuilder),
}

impl Builder {
    async fn add(&mut self, key: &str, value: bytes::Bytes) -> ipfs_hamt::Result<()> {
        match self {
            Builder::Hamt(b) => b.add(key, value).await,
            Builder::Sharded(b) => b.add(key, value).await,
        }
    }

    fn on_progress(&mut self, f: impl FnMut(&BulkProgress) + Send + 'static) {
        match self {
            Builder::Hamt(b) => b.on_progress(f),
            Builder::Sharded(b) => b.on_progress(f),
        }
    }

    async fn finish(self) -> ipfs_hamt::Result<Cid> {
        match self {
            Builder::Hamt(b) => b.finish().await,
            Builder::Sharded(b) => b.finish().await,
        }
    }
}

/// Imports every file of `source` into `store` with a bulk builder: a new HAMT, or with
/// `--layout sharded` (and no --group/--into) directly the sharded store py-hamt's converter
/// would make of that HAMT (the HAMT itself is never written).
pub async fn import(
    store: SharedStore,
    config: HamtConfig,
    source: Source,
    cipher: Option<&ValueCipher>,
    layout: &ImportLayout,
) -> Result<Imported> {
    let sharded = layout.is_sharded();
    let mut builder = if sharded {
        Builder::Sharded(BulkShardedBuilder::new(
            store,
            config,
            layout.chunks_per_shard,
            ShardedConfig::default(),
            BulkOptions::default(),
        )?)
    } else {
        Builder::Hamt(BulkHamtBuilder::new(store, config, BulkOptions::default())?)
    };
    let Source { first, rest } = source;
    let mut rx = read_ahead::read_files(first.into_iter().map(Ok).chain(rest));
    let mut bar = progress::spinner(None, "files read");
    let (mut files, mut bytes) = (0u64, 0u64);
    while let Some(item) = rx.recv().await {
        let (key, data) = item?;
        let key = layout.key(key);
        let len = data.len() as u64;
        match cipher {
            Some(c) => builder.add(&key, c.seal(&data)?).await?,
            None => builder.add(&key, data.into()).await?,
        }
        files += 1;
        bytes += len;
        bar.inc_item(len);
    }
    let handle = bar.handle();
    builder.on_progress(move |p| {
        let msg = match p.phase {
            BulkPhase::Adding => return,
            BulkPhase::Merging => format!("{files} files read; merging {} sorted runs", p.runs),
            BulkPhase::Building => format!(
                "writing the tree: {}/{files} keys placed, {} nodes written",
                p.keys_placed, p.nodes_written
            ),
            BulkPhase::Done => format!("{} keys, {} nodes written", p.keys_placed, p.nodes_written),
        };
        handle.set_message(msg);
    });
    let root = builder.finish().await?;
    bar.finish();
    Ok(Imported {
        root,
        sharded,
        files,
        bytes,
    })
}
