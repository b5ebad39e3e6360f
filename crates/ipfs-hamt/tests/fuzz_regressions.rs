//! The fuzz targets of `fuzz/` run without cargo-fuzz, as part of `cargo test`: every saved
//! input of `fuzz/regressions/<target>/` (crashes found and fixed, and a few corpus samples),
//! then a few thousand inputs per target drawn from a fixed seed: random bytes, and mutations
//! (bit flips, cuts, splices, inserted bytes) of the saved inputs. This is the CI fuzz smoke:
//! it needs no nightly flags and no extra build. The long campaign is `fuzz/run-long.sh`.
//!
//! The zarr target replays in `crates/ipfs-hamt-zarr/tests/fuzz_regressions.rs`.

#[path = "../../../fuzz/src/car_reader.rs"]
mod car_reader;
#[path = "../../../fuzz/src/crypt_decode.rs"]
mod crypt_decode;
#[path = "../../../fuzz/src/disk_run.rs"]
mod disk_run;
#[path = "../../../fuzz/src/disk_segment.rs"]
mod disk_segment;
#[path = "../../../fuzz/src/node_decode.rs"]
mod node_decode;
#[path = "../../../fuzz/src/sharded_decode.rs"]
mod sharded_decode;
#[path = "../../../fuzz/src/unixfs_read.rs"]
mod unixfs_read;

#[path = "../../../fuzz/smoke.rs"]
mod smoke;

#[test]
fn node_decode() {
    smoke::replay_and_mutate("node_decode", 20_000, node_decode::run);
}

#[test]
fn car_reader() {
    smoke::replay_and_mutate("car_reader", 5000, car_reader::run);
}

#[test]
fn unixfs_read() {
    smoke::replay_and_mutate("unixfs_read", 15_000, unixfs_read::run);
}

#[test]
fn crypt_decode() {
    smoke::replay_and_mutate("crypt_decode", 3000, crypt_decode::run);
}

#[test]
fn sharded_decode() {
    smoke::replay_and_mutate("sharded_decode", 3000, sharded_decode::run);
}

#[test]
fn disk_segment() {
    // Each input opens and closes a store twice (~0.2 s each: the index shuts its threads down),
    // so fewer inputs than the decoders; the coverage-guided run is scripts/fuzz-smoke.sh.
    smoke::replay_and_mutate("disk_segment", 40, disk_segment::run);
}

#[test]
fn disk_run() {
    // As `disk_segment`, on the index run file.
    smoke::replay_and_mutate("disk_run", 40, disk_run::run);
}
