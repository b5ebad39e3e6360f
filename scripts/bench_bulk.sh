#!/usr/bin/env bash
# Bulk import benchmarks (BENCHMARKS.md, "Bulk import"): `ipfs-hamt import` of 100k and 1M
# tiny files (8-200 bytes) into a fresh disk store, with the bulk builder and without, and
# the `bulk_scale` example (generated keys, 100-byte values) on the disk store and on a null
# store. Prints wall time, keys/s, peak RSS and disk bytes per key; deletes its data at the end.
#
#   scripts/bench_bulk.sh [WORKDIR] [SCALE_KEYS]
#   SIZES="2000 20000" scripts/bench_bulk.sh      # other import sizes (default 100000 1000000)
#
# WORKDIR (default target/bench-bulk) needs about 5 GB for the 1M files plus the stores;
# SCALE_KEYS (default 10000000) is the size of the bulk_scale runs.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-bulk}
scale=${2:-10000000}
mkdir -p "$work"
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT
cargo build --release -p ipfs-hamt-cli -p ipfs-hamt --bins --example bulk_scale -j 2
bin=target/release/ipfs-hamt
scale_bin=target/release/examples/bulk_scale

gen() { # DIR N: N files of 8-200 random bytes, 1,000 per subdirectory
    python3 - "$1" "$2" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rng.randbytes(rng.randint(8, 200)))
PY
}

# Bytes of a store (a file, or a directory of files): apparent, and allocated on disk.
size() { du -sb "$1" | cut -f1; }
allocated() { du -sB1 "$1" | cut -f1; }

run_import() { # DIR N MODE
    local store="$work/store-$3"
    rm -rf "$store"
    mkdir -p "$store"
    /usr/bin/time -v "$bin" import "$1" --store "$store/store" --bulk "$3" \
        >/dev/null 2>"$work/time.txt"
    local secs rss bytes alloc
    secs=$(grep Elapsed "$work/time.txt" | awk -F': ' '{print $2}' |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(grep 'Maximum resident' "$work/time.txt" | awk '{print $NF}')
    bytes=$(size "$store")
    alloc=$(allocated "$store")
    printf '| import %s files --bulk %s | %.2f s | %.0f keys/s | %.0f MiB | %.0f B/key (%.0f allocated) |\n' \
        "$2" "$3" "$secs" "$(echo "$2 / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
        "$(echo "$bytes / $2" | bc -l)" "$(echo "$alloc / $2" | bc -l)"
    rm -rf "$store"
}

echo "load: $(uptime)"
echo "| run | time | rate | peak RSS | disk |"
echo "|---|---|---|---|---|"
for n in ${SIZES:-100000 1000000}; do
    gen "$work/files-$n" "$n"
    # One untimed pass warms the page cache (the walk and the reads are part of the import).
    find "$work/files-$n" -type f -exec cat {} + >/dev/null
    for mode in always never; do
        run_import "$work/files-$n" "$n" "$mode"
    done
    rm -rf "$work/files-$n"
done
for store in null disk; do
    if [ "$store" = null ]; then args=(--null); else args=(--store "$work/scale/store"); fi
    rm -rf "$work/scale"
    echo "bulk_scale --keys $scale ${args[*]}:"
    /usr/bin/time -v "$scale_bin" --keys "$scale" --spill "$work" "${args[@]}" 2>"$work/time.txt" |
        grep -E 'keys/s|store:'
    rm -rf "$work/scale"
done
