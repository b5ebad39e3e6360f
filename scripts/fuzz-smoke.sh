#!/usr/bin/env bash
# Short coverage-guided fuzz smoke: builds the cargo-fuzz targets of fuzz/ (stable toolchain,
# RUSTC_BOOTSTRAP=1 for cargo-fuzz's sanitizer flags), replays the saved regression inputs, then
# runs each target for FUZZ_SECONDS (default 15) in one process. Fails on any crash.
#
# Cost on a fresh machine: installing cargo-fuzz (~2-3 min) and one release build of the fuzz
# crate with its dependencies (several minutes); then one FUZZ_SECONDS run per target. .ci/run calls it unless
# IPFS_HAMT_FUZZ_SMOKE=0; every test run also replays the targets on saved and seeded inputs in
# `cargo test` (tests/fuzz_regressions.rs), which needs no extra build.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
SECS=${FUZZ_SECONDS:-15}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=(node_decode car_reader unixfs_read crypt_decode zarr_keys sharded_decode disk_segment disk_run)
cargo fuzz build -O --debug-assertions
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
    cp "regressions/$t"/* "$work"/
  fi
  echo "fuzz-smoke: $t for ${SECS}s" >&2
  log=$(mktemp)
  if cargo fuzz run "$t" -O --debug-assertions "$work" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' "$log" >&2 || true
    rm -rf "$work" "$log"
  else
    tail -n 40 "$log" >&2
    echo "fuzz-smoke: $t crashed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz-smoke: all targets ran without a crash" >&2
