#!/usr/bin/env bash
# Import of a directory of 20 KB files against the physical limit of the same work
# (read + BLAKE3 + one write + fsync of the same bytes), in the same run.
#   scripts/bench_import.sh [WORKDIR] [MB]
# Needs release builds: cargo build --release -p ipfs-hamt-cli -p ipfs-hamt --example io_limit
set -euo pipefail
work=${1:-/tmp/ipfs-hamt-bench-import}
mb=${2:-100}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/ipfs-hamt
limit=$root/target/release/examples/io_limit
rm -rf "$work" && mkdir -p "$work/data"
n=$((mb * 1000 / 20))
# Incompressible 20 KB files in 50 directories.
python3 - "$work/data" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "d%02d" % (i % 50))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%06d" % i), "wb") as f:
        f.write(os.urandom(20000))
PY
sync
# Warm the page cache for both runs alike (dropping caches needs a privilege).
cat "$work"/data/*/* > /dev/null
for round in 1 2 3; do
  "$limit" "$work/data" "$work/limit.out"
  rm -rf "$work/store"
  t0=$(date +%s.%N)
  "$bin" import "$work/data" --store "$work/store" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'import secs={s:.3f} mb_per_s={$mb*1e6/1e6/s:.1f}')" "$t0" "$t1"
done
du -sb "$work/store" "$work/data" | cat
du -s --block-size=1 "$work/store" "$work/data" | cat
rm -rf "$work"
