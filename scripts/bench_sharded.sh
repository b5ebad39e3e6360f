#!/usr/bin/env bash
# The sharded-layout benchmark of BENCHMARKS.md in one run, on one dataset:
#   1. xarray writes float32 precip[200, 250, 500] in chunks (1, 50, 100) (100 MB, 5,000
#      chunks) to a local Zarr directory, group '0' (once; target/bench-sharded/ds);
#   2. py-hamt 3.6.0 ShardedZarrStore v2 + xarray (Python 3.12 venv, pinned as
#      scripts/test-pkg.sh, without dask): write, full read, cold point series;
#   3. zarr-python + xarray on the directory: full read, point series (context);
#   4. ipfs-hamt on the memory and disk stores (cargo bench --bench sharded), and zarrs on the
#      directory: write, full read, cold point series per read mode;
#   5. the release CLI: `ipfs-hamt --store NEW.redb import DIR/0 --layout sharded --group 0`;
#   6. checks that py-hamt, the Rust writer and the CLI give the same root CID.
#
#   scripts/bench_sharded.sh [RUNS] [CPS]      # defaults 5 (Rust/CLI) / 3 (py-hamt), CPS 1000
# Env: PYHAMT_SHARDED_VENV (venv to reuse), BENCH_SHARDED_DIR (work dir).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
CPS="${2:-1000}"
PYRUNS="${PYRUNS:-3}"
TARGET="${CARGO_TARGET_DIR:-target}"
WORK="${BENCH_SHARDED_DIR:-$TARGET/bench-sharded}"
VENV="${PYHAMT_SHARDED_VENV:-$TARGET/sharded-venv}"
PKGS=(py-hamt==3.6.0 zarr==3.0.9 numcodecs==0.17.1 xarray==2026.9.0 numpy==2.5.5 pandas==3.1.1
  multiformats==0.3.1.post4 blake3==1.0.11)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pinned" 2>/dev/null)" != "${PKGS[*]}" ]; then
  PY312="$(pyenv root 2>/dev/null)/versions/3.12.1/bin/python"
  [ -x "$PY312" ] || PY312=python3.12
  rm -rf "$VENV"
  "$PY312" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
  echo "${PKGS[*]}" >"$VENV/.pinned"
fi
PY=("$VENV/bin/python" -W ignore scripts/bench_sharded.py)
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)" # cargo bench runs in the crate's directory
DS="$WORK/ds"
[ -f "$DS/0/precip/zarr.json" ] || "${PY[@]}" gen "$DS" >/dev/null
OUT="$WORK/results.jsonl"
: >"$OUT"
uptime | tee "$WORK/uptime.txt"

cargo build -q --release -p ipfs-hamt-cli
cargo bench -q -p ipfs-hamt-zarr --bench sharded --no-run

echo "py-hamt ($PYRUNS runs)..." >&2
"${PY[@]}" pyhamt --runs "$PYRUNS" --cps "$CPS" | tee -a "$OUT"
"${PY[@]}" dir "$DS" --runs "$PYRUNS" | tee -a "$OUT"
uptime | tee -a "$WORK/uptime.txt"

echo "ipfs-hamt ($RUNS runs)..." >&2
BENCH_TMP="$WORK" cargo bench -q -p ipfs-hamt-zarr --bench sharded -- "$DS" "$RUNS" "$CPS" |
  grep '^{' | tee -a "$OUT"
uptime | tee -a "$WORK/uptime.txt"

echo "CLI import into a fresh disk store ($RUNS runs)..." >&2
for i in $(seq "$RUNS"); do
  rm -f "$WORK/cli.redb"
  sync
  t0=$(date +%s.%N)
  root=$("$TARGET/release/ipfs-hamt" --store "$WORK/cli.redb" import "$DS/0" --layout sharded \
    --group 0 --chunks-per-shard "$CPS")
  t1=$(date +%s.%N)
  echo "{\"impl\":\"ipfs-hamt CLI import\",\"store\":\"disk\",\"root\":\"$root\",\"s\":$(awk "BEGIN { printf \"%.4f\", $t1 - $t0 }")}" | tee -a "$OUT"
done
uptime | tee -a "$WORK/uptime.txt"

echo "disk floor: 100 MB written to a new file + fsync ($RUNS runs)..." >&2
for i in $(seq "$RUNS"); do
  rm -f "$WORK/floor.bin"
  t0=$(date +%s.%N)
  dd if="$WORK/cli.redb" of="$WORK/floor.bin" bs=1M count=100 conv=fsync status=none
  t1=$(date +%s.%N)
  echo "{\"impl\":\"floor\",\"s\":$(awk "BEGIN { printf \"%.4f\", $t1 - $t0 }")}" | tee -a "$OUT"
done
rm -f "$WORK/floor.bin" "$WORK/cli.redb"

"$VENV/bin/python" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
py = next(r for r in rows if r["impl"] == "py-hamt 3.6.0")
zp = next(r for r in rows if r["impl"].startswith("zarr-python"))
zd = next(r for r in rows if r["impl"] == "zarrs on the directory")
rs = {r["store"]: r for r in rows if r["impl"] == "ipfs-hamt"}
cli = [r for r in rows if r["impl"] == "ipfs-hamt CLI import"]
cli_s = statistics.median(r["s"] for r in cli)
floor = statistics.median(r["s"] for r in rows if r["impl"] == "floor")
roots = {"py-hamt": py["root"], **{f"ipfs-hamt {k}": v["root"] for k, v in rs.items()},
         **{f"CLI import {i}": r["root"] for i, r in enumerate(cli)}}
same = len(set(roots.values())) == 1
print(f"\nroot CIDs: ALL EQUAL: {py['root']}" if same else f"\nroot CIDs DIFFER: {roots}")
m, d = rs["memory"], rs["disk"]
print("\n| measure | py-hamt 3.6.0 + xarray | ipfs-hamt memory | ipfs-hamt disk | vs py-hamt (memory / disk) |")
print("|---|---:|---:|---:|---:|")
def row(name, p, a, b):
    print(f"| {name} | {p:.3f} s | {a:.3f} s | {b:.3f} s | {p / a:.1f}x / {p / b:.1f}x |")
row("write: chunk bytes -> `ShardedWriter::set` + `flush`", py["write_s"], m["write_files_s"], d["write_files_s"])
print(f"| write: `ipfs-hamt import --layout sharded --group 0` (disk) | {py['write_s']:.3f} s | | {cli_s:.3f} s | {py['write_s'] / cli_s:.1f}x |")
row("write: zarrs encode + store + commit", py["write_s"], m["write_zarrs_s"], d["write_zarrs_s"])
row("read: `get` of every key, 1 task", py["read_s"], m["read_raw_s"], d["read_raw_s"])
row("read: `get` of every key, 16 in flight", py["read_s"], m["read_raw16_s"], d["read_raw16_s"])
row("read: zarrs decodes the whole array", py["read_s"], m["read_zarrs_s"], d["read_zarrs_s"])
for mode in ("full", "sparse", "auto"):
    pyv = py["point_full_s"] if mode == "full" else py["point_auto_s"]
    row(f"cold point series (200 chunks), {mode} (py-hamt {'full' if mode == 'full' else 'auto'})", pyv, m[f"point_{mode}_s"], d[f"point_{mode}_s"])
print(f"\nplain directory: zarrs point series {zd['point_s']:.4f} s (200 file reads alone {zd['point_raw_s']:.4f} s), "
      f"zarrs full read {zd['read_zarrs_s']:.3f} s; zarrs write into zarrs' MemoryStore {zd['write_zarrs_memorystore_s']:.3f} s; zarr-python + xarray: point {zp['point_s']:.4f} s, full read {zp['read_s']:.3f} s")
print(f"disk floor (dd 100 MB + fsync): {floor:.3f} s")
for k, v in rs.items():
    print(f"{k}: point series / directory (zarrs both): " + ", ".join(
        f"{mode} {v[f'point_{mode}_s'] / zd['point_s']:.2f}x [raw gets {v[f'point_raw_{mode}_s'] * 1e3:.1f} ms cold, "
        f"{v[f'point_raw_warm_{mode}_s'] * 1e3:.1f} ms warm; shard fetches {v[f'point_{mode}_shard_fetches']}]"
        for mode in ("full", "sparse", "auto")))
PY
