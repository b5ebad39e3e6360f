#!/usr/bin/env bash
# Regenerates the golden vectors in tests/golden with py-hamt 3.6.0 itself (the generators are
# tests/golden/gen/*.py: plain HAMT cases, the Zarr and encrypted-Zarr datasets, the sharded
# store cases and probes).
#
#   scripts/make-golden.sh            regenerate into tests/golden
#   scripts/make-golden.sh --out DIR  write into DIR instead
#   scripts/make-golden.sh --check    regenerate into a temporary folder and compare it with
#                                     tests/golden (tests/golden/gen/compare.py): every file
#                                     byte for byte, every root; non-zero on any difference
#
# The venv (target/goldenenv, Python 3.12, found by scripts/lib/python312.sh) is pinned to the
# versions the vectors record (see `versions` in the JSON files) and made on first use from PyPI
# (~40 s); the generators then take ~45 s. The encrypted Zarr case draws random nonces, so its
# CAR and root change on every run (everything else is deterministic); --check compares what it
# records besides them (keys, decrypted metadata and chunk digests).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=write
OUT="$PWD/tests/golden"
while [ $# -gt 0 ]; do
  case "$1" in
    --check) MODE=check ;;
    --out) OUT="${2:?--out needs a directory}"; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "make-golden.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
# shellcheck source=lib/python312.sh
. scripts/lib/python312.sh

# The versions recorded in tests/golden/*.json (py-hamt 3.6.0 pins zarr 3.0.9).
PKGS=(py-hamt==3.6.0 zarr==3.0.9 numcodecs==0.17.1 xarray==2026.9.0 numpy==2.5.5 pandas==3.1.1
  dag-cbor==0.3.3 multiformats==0.3.1.post4 blake3==1.0.11 pycryptodome==4.4.0)
VENV="$TARGET/goldenenv"
want="$("$PY312" -c 'import sys; print(sys.version.split()[0])') ${PKGS[*]}"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pinned" 2>/dev/null)" != "$want" ]; then
  echo "make-golden.sh: installing ${PKGS[*]} into $VENV ($PY312)" >&2
  rm -rf "$VENV"
  "$PY312" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
  echo "$want" >"$VENV/.pinned"
fi

if [ "$MODE" = check ]; then
  OUT="$(mktemp -d "${TMPDIR:-/tmp}/ipfs-hamt-golden.XXXXXX")"
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
for gen in gen_hamt gen_zarr gen_sharded; do
  echo "make-golden.sh: $gen -> $OUT" >&2
  GOLDEN_OUT="$OUT" "$VENV/bin/python" "tests/golden/gen/$gen.py" >/dev/null
done

if [ "$MODE" = check ]; then
  "$VENV/bin/python" tests/golden/gen/compare.py "$OUT" tests/golden
  echo "make-golden.sh: the regenerated vectors match tests/golden" >&2
else
  echo "make-golden.sh: wrote the golden vectors to $OUT" >&2
fi
