#!/usr/bin/env bash
# The long fuzz campaign behind RELIABILITY.md: each target in turn, one process, SECS seconds
# (default 600), logs in $LOGDIR (default /tmp/fuzz-logs). Seeds: fuzz/make_seeds.py.
# Usage: fuzz/run-long.sh [target...]
set -uo pipefail
cd "$(dirname "$0")"
SECS=${SECS:-600}
LOGDIR=${LOGDIR:-/tmp/fuzz-logs}
mkdir -p "$LOGDIR"
export RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(node_decode car_reader unixfs_read crypt_decode zarr_keys)
python3 make_seeds.py
for t in "${targets[@]}"; do
  echo "== $t $(date -u +%FT%TZ)" | tee -a "$LOGDIR/summary.txt"
  cargo fuzz run "$t" -O --debug-assertions -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$LOGDIR/$t.log" 2>&1
  echo "   exit $? $(grep -E '^#[0-9]+' "$LOGDIR/$t.log" | tail -1)" | tee -a "$LOGDIR/summary.txt"
done
