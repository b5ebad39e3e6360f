//! The `zarr_keys` fuzz target without cargo-fuzz, in `cargo test`: its saved inputs, then
//! seeded random and mutated ones (see `crates/ipfs-hamt/tests/fuzz_regressions.rs`).

#[path = "../../../fuzz/src/zarr_keys.rs"]
mod zarr_keys;

#[path = "../../../fuzz/smoke.rs"]
mod smoke;

#[test]
fn zarr_keys() {
    smoke::replay_and_mutate("zarr_keys", 3000, zarr_keys::run);
}
