//! py-hamt's second layout, `ShardedZarrStore` (`sharded_zarr_v1` / `sharded_zarr_v2`): a flat
//! Zarr store on content-addressed blocks.
//!
//! ```text
//! root manifest (DAG-CBOR map)
//!   metadata: { "zarr.json": CID, "0/temp/zarr.json": CID, ... }     raw blocks
//!   arrays:   { "0/temp": { array_shape, chunk_shape, sharding_config,
//!                           shard_cids: [CID | null, ...] } }        (v2; v1 has one `chunks`)
//! shard (DAG-CBOR list of chunks_per_shard entries): [CID | null, ...]   row-major chunk order
//! ```
//!
//! [`ShardedWriter`] builds and changes a store and gives the same blocks and root CID as
//! py-hamt 3.6.0 for the same operations; [`ShardedReader`] serves a root to many tasks with a
//! shard cache bounded in bytes and py-hamt's full/sparse/auto read modes.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use ipfs_hamt::sharded::{ShardedConfig, ShardedReader, ShardedWriter};
//! use ipfs_hamt::store::MemoryStore;
//! let store = Arc::new(MemoryStore::new());
//! let mut w = ShardedWriter::create_v2(store.clone(), ShardedConfig::default(), 3)?;
//! let meta = br#"{"zarr_format": 3, "node_type": "array", "shape": [4], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}}}"#;
//! w.set("g/x/zarr.json", meta.to_vec()).await?;
//! w.set("g/x/c/1", b"chunk".to_vec()).await?;
//! let root = w.flush().await?;
//! let r = ShardedReader::open(store, root, ShardedConfig::default()).await?;
//! assert_eq!(r.get("g/x/c/1").await?.as_deref(), Some(&b"chunk"[..]));
//! assert_eq!(r.get("x/c/1").await?.as_deref(), Some(&b"chunk"[..])); // one group: read through it
//! # Ok::<(), ipfs_hamt::Error>(()) }).unwrap();
//! ```

pub(crate) mod convert;
mod geometry;
mod keys;
mod listing;
mod manifest;
mod meta;
mod ops;
pub(crate) mod placement;
mod reader;
pub mod shard;
mod stats;
mod writer;

pub use convert::{convert_from_reader, convert_hamt_to_sharded, ConvertError};
pub use geometry::{chunk_key, ArrayIndex, MAX_CHUNKS_PER_SHARD, MAX_SHARDS};
pub use keys::KeyKind;
pub use manifest::{normalize_path, Manifest};
pub use reader::{ReadMode, ShardedReader};
pub use stats::{ArrayStats, ShardedStats, ShardedStructure};
pub use writer::{SetOutcome, ShardedWriter};

use crate::block::HashAlg;

/// `manifest_version` of the deprecated single-index layout.
pub const V1: &str = "sharded_zarr_v1";
/// `manifest_version` of the current layout.
pub const V2: &str = "sharded_zarr_v2";
/// `store_type` written in v2 roots.
pub const STORE_TYPE: &str = "py_hamt.sharded_zarr";
/// py-hamt's converter default `chunks_per_shard` (ERA5-sized shards).
pub const DEFAULT_CHUNKS_PER_SHARD: u64 = 6250;

/// Manifest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `sharded_zarr_v1`: one global index, coordinate chunks in the metadata map.
    V1,
    /// `sharded_zarr_v2`: one index per array path.
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => V1,
            Version::V2 => V2,
        })
    }
}

/// Settings of sharded readers and writers.
#[derive(Debug, Clone)]
pub struct ShardedConfig {
    /// Hash naming new blocks (BLAKE3, as py-hamt's KuboCAS default).
    pub block_hash: HashAlg,
    /// Blocks over 1 MiB become UnixFS files, as Kubo's `add` stores them for KuboCAS.
    pub unixfs_values: bool,
    /// Bytes of decoded shards a reader keeps (py-hamt: 100 MiB).
    pub cache_bytes: u64,
    /// How a read-only store resolves chunk entries.
    pub read_mode: ReadMode,
    /// Value bytes buffered before a writer sends them to the store.
    pub batch_bytes: usize,
}

impl Default for ShardedConfig {
    fn default() -> Self {
        ShardedConfig {
            block_hash: HashAlg::Blake3,
            unixfs_values: true,
            cache_bytes: 100 << 20,
            read_mode: ReadMode::Auto,
            batch_bytes: 16 << 20,
        }
    }
}

/// What went wrong in the sharded layout. The variants follow py-hamt's exception classes so
/// the Python package can raise the same ones; the messages are py-hamt's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum ShardedError {
    /// A malformed or unsupported root manifest (or a link to a shard of the wrong kind).
    #[error("{0}")]
    Manifest(String),
    /// A manifest field py-hamt reads with `[...]` is missing (py-hamt: KeyError).
    #[error("manifest is missing the key '{0}'")]
    MissingKey(String),
    /// A shard block is malformed or does not match its array's geometry.
    #[error(transparent)]
    Shard(#[from] shard::ShardDecodeError),
    /// A bad argument or key (py-hamt: ValueError).
    #[error("{0}")]
    Invalid(String),
    /// Chunk coordinates out of range (py-hamt: IndexError).
    #[error("{0}")]
    Index(String),
    /// A chunk of an array that has no index (py-hamt: KeyError).
    #[error("No array index registered for chunk path '{0}'.")]
    NoIndex(String),
    /// `resize_variable` of an array without `zarr.json` (py-hamt: KeyError).
    #[error("Cannot find metadata for key '{0}' to resize.")]
    NoMetadata(String),
    /// The store is in a state the operation cannot use (py-hamt: RuntimeError).
    #[error("{0}")]
    State(String),
    /// A geometry too large to hold (hostile input; py-hamt would try and run out of memory).
    #[error("{0}")]
    TooLarge(String),
}

/// Manifests and shards are DAG-CBOR blocks, or UnixFS files (dag-pb) when Kubo chunked a
/// block over 1 MiB; a link with any other codec is refused before it is read.
pub(crate) fn check_structure_codec(cid: &cid::Cid, what: &str) -> Result<(), ShardedError> {
    match cid.codec() {
        crate::block::DAG_CBOR | crate::block::DAG_PB => Ok(()),
        codec => Err(ShardedError::Manifest(format!(
            "{what} {cid} has codec {codec:#x}; a sharded {what} is DAG-CBOR (0x71) or a UnixFS file (0x70)"
        ))),
    }
}

impl ShardedError {
    /// The Python exception class py-hamt raises for this error.
    pub fn py_class(&self) -> &'static str {
        match self {
            ShardedError::Manifest(_) | ShardedError::Invalid(_) | ShardedError::TooLarge(_) => {
                "ValueError"
            }
            ShardedError::MissingKey(_)
            | ShardedError::NoIndex(_)
            | ShardedError::NoMetadata(_) => "KeyError",
            ShardedError::Index(_) => "IndexError",
            ShardedError::State(_) => "RuntimeError",
            ShardedError::Shard(e) => match e {
                shard::ShardDecodeError::NotAList(_) | shard::ShardDecodeError::NonCid(_) => {
                    "TypeError"
                }
                _ => "ValueError",
            },
        }
    }
}
