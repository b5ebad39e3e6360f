//! The logic of each fuzz target, as plain functions.
//!
//! Each module is self-contained (it uses only `ipfs-hamt`, `ipfs-hamt-zarr` and their
//! dependencies), so the regression tests of the main workspace include the same files with
//! `#[path]` and replay the saved inputs without cargo-fuzz. `run` must never panic: every
//! assertion in it is a property the library promises.

pub mod car_reader;
pub mod crypt_decode;
pub mod disk_run;
pub mod disk_segment;
pub mod node_decode;
pub mod sharded_decode;
pub mod unixfs_read;
pub mod zarr_keys;
