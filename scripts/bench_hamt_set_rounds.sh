#!/usr/bin/env bash
# HAMT `set` on InMemoryCAS, 100,000 keys: py-hamt and one or more ipfs_hamt builds, interleaved
# in each round (one process per run, through bench_pkg.py and bench_pyhamt.py's `hamt` bench),
# so that every build meets the same machine load. Prints one line per round: the load average
# before and after, set/s of py-hamt and of each build, each build's ratio to py-hamt, and
# whether every run gave the same root.
#
#   scripts/bench_hamt_set_rounds.sh ROUNDS PKGDIR [PKGDIR...]
#
# PKGDIR: a directory holding an unpacked ipfs_hamt wheel (put first on PYTHONPATH). The venv
# is target/pkgenv (scripts/test-pkg.sh makes it; it has py-hamt 3.6.0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="$1"
shift
PY=target/pkgenv/bin/python
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
run() { # name pythonpath worker
  PYTHONPATH="$2" "$PY" scripts/bench_pkg.py --worker "$3" --bench scripts/bench_pyhamt.py \
    --out "$OUT/$1.json" -- hamt --cas inmemory --n 100000 >/dev/null 2>&1
}
echo "round load_before load_after py_hamt_set_per_s $(printf 'build%d_set_per_s ' $(seq 1 $#))$(printf 'build%d_ratio ' $(seq 1 $#))same_root"
for r in $(seq 1 "$ROUNDS"); do
  l0=$(cut -d' ' -f1 /proc/loadavg)
  run p "" py_hamt
  i=0
  for pkg in "$@"; do
    i=$((i + 1))
    run "b$i" "$pkg" ipfs_hamt
  done
  l1=$(cut -d' ' -f1 /proc/loadavg)
  "$PY" - "$r" "$l0" "$l1" "$OUT" "$#" <<'PY'
import json, sys
r, l0, l1, out, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def res(name):
    d = json.load(open(f"{out}/{name}.json"))
    return d["results"][0] if "results" in d else d
p = res("p")
bs = [res(f"b{i}") for i in range(1, n + 1)]
rates = [round(b["set_ops_per_s"]) for b in bs]
ratios = [round(b["set_ops_per_s"] / p["set_ops_per_s"], 1) for b in bs]
same = all(b["root"] == p["root"] for b in bs)
print(r, l0, l1, round(p["set_ops_per_s"]), *rates, *ratios, same, flush=True)
PY
done
