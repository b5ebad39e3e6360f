#!/usr/bin/env bash
# The Zarr benchmark of BENCHMARKS.md in one run: py-hamt 3.6.0 + xarray (bench_pyhamt.py zarr,
# Python 3.12 venv, made once under target/) next to ipfs-hamt + zarrs on the same shape.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PYHAMT_VENV:-target/pyhamt-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  . scripts/lib/python312.sh
  "$PY312" -m venv "$VENV"
  "$VENV/bin/pip" install -q py-hamt==3.6.0 xarray numpy
fi
echo "| what | data MB | chunks | write s | write MB/s | read s | read MB/s | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for cas in inmemory mimic; do
  "$VENV/bin/python" scripts/bench_pyhamt.py zarr --cas "$cas" --json "target/pyhamt-zarr-$cas.json" >/dev/null
  "$VENV/bin/python" - "$cas" "target/pyhamt-zarr-$cas.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
r = r["results"][0] if "results" in r else r
w = r["write_total_s"]; rd = r["read_total_s"]; mb = r["data_mb"]
print(f"| py-hamt 3.6.0 + xarray, {sys.argv[1]} CAS | {mb:.0f} | {r['array_chunks']:,} | {w:.2f} | {mb / w:.0f} | {rd:.2f} | {mb / rd:.0f} | {r.get('peak_rss_mb', float('nan')):.0f} |")
PY
done
cargo bench -q -p ipfs-hamt-zarr --bench zarr 2>/dev/null | grep '^|'
