//! # ipfs-hamt
//!
//! A HAMT (hash array mapped trie) on content-addressed block stores, byte-compatible with
//! py-hamt 3.6.0: same key -> value map, same root CID.

#![warn(missing_docs)]

pub mod block;
pub mod bulk;
pub mod crypt;
pub mod dataset;
pub mod range;
pub mod store;
pub mod unixfs;

pub use block::{Block, HashAlg};
pub use cid::Cid;
pub use ipld_core::ipld;
pub use range::ByteRange;
pub use store::{BlockStore, StoreError};
pub mod error;
pub mod hamt;
pub mod key_hash;
pub mod node;
/// Exact emulations of the Python behaviour py-hamt depends on (`json`, `int()`, `repr()`).
pub mod pyemu;
pub mod sharded;
pub mod value;
pub mod verify;

pub use error::{Error, Result};
pub use hamt::{CacheStats, HamtConfig, Reader, TreeStats, Writer};

/// The README's Rust example compiles as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
