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
#[derive(Debug, Clone, Default)]
pub struct DatasetConfig {
    /// Settings of HAMT datasets (cache size, bucket size for writes, hashes).
    pub hamt: HamtConfig,
    /// Settings of sharded datasets (shard cache, read mode, hashes).
    pub sharded: ShardedConfig,
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
