//! One dataset interface over py-hamt's two on-IPFS layouts.
//!
//! A dataset is a map from Zarr keys (`zarr.json`, `temp/c/0/1`) to values, stored either as a
//! HAMT ([`crate::hamt`]) or in py-hamt's sharded layout (a DAG-CBOR manifest and shards of
//! chunk CIDs). [`detect`] tells them apart from the root block; [`DatasetReader`] and
//! [`DatasetWriter`] hide which one is behind them, and [`verify`], [`diff`], the statistics
//! and the block walks work on either. Every front end (CLI commands, `serve`, the zarrs
//! store) talks to this module only, so adding a layout touches this module and nothing above.
//!
//! The per-layout `match`es live here only: `Inner` in `reader.rs` and `writer.rs`,
//! [`DatasetStats`], [`verify`] and [`detect`]. A sharded root with an unknown
//! `manifest_version` is [`crate::Error::UnsupportedLayout`].
//!
//! Encryption ([`crate::crypt::ValueCipher`]) works on any dataset handle through
//! [`ValueRead`] / [`ValueWrite`].

mod blocks;
mod check;
mod diff;
mod kv;
mod layout;
mod listing;
mod reader;
mod stats;
mod writer;

pub use check::verify;
pub use diff::{diff, diff_entries};
pub use kv::{ValueRead, ValueWrite};
pub use layout::{detect, Layout, ShardedVersion};
pub use listing::{DirListing, KeyIndex};
pub use reader::DatasetReader;
pub use stats::DatasetStats;
pub use writer::{DatasetWriter, LayoutOptions};

use crate::hamt::HamtConfig;
pub use crate::hamt::{ChangeKind, KeyChange};
use crate::sharded::ShardedConfig;

/// Settings for opening a dataset of any layout. Each layout reads its own part.
///
/// The sharded part defaults to full shard reads ([`crate::sharded::ReadMode::Full`]): the
/// front ends on this interface (CLI, `serve`, zarrs) read many chunks of few shards, and a
/// cached whole shard serves them all, where py-hamt's `auto` mode re-fetches a shard for
/// each of its first 255 chunk reads (twice the directory's time for a point series on
/// disk, BENCHMARKS.md). [`ShardedConfig::default`] keeps py-hamt's `auto`.
#[derive(Debug, Clone)]
pub struct DatasetConfig {
    /// Settings of HAMT datasets (cache size, bucket size for writes, hashes).
    pub hamt: HamtConfig,
    /// Settings of sharded datasets (shard cache, read mode, hashes).
    pub sharded: ShardedConfig,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            hamt: HamtConfig::default(),
            sharded: ShardedConfig {
                read_mode: crate::sharded::ReadMode::Full,
                ..ShardedConfig::default()
            },
        }
    }
}

impl DatasetConfig {
    /// Settings with these HAMT settings.
    pub fn hamt(hamt: HamtConfig) -> Self {
        DatasetConfig {
            hamt,
            ..DatasetConfig::default()
        }
    }
}

#[cfg(test)]
mod tests;
