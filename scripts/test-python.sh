#!/usr/bin/env bash
# zarr-python reads the golden dataset through `ipfs-hamt serve` (tests/python), with its fsspec
# HTTP store. Run by scripts/test.sh; needs python3 (>= 3.11, for zarr 3) with venv and PyPI
# access on first use (the venv is kept in target/pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/pyenv"
# Pinned: the versions these tests were verified with.
PY_PKGS=(zarr==3.1.6 numcodecs==0.16.6 fsspec==2026.9.0 aiohttp==3.14.5 requests==2.34.2
  numpy==2.4.6 pytest==9.2.0)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pinned" 2>/dev/null)" != "${PY_PKGS[*]}" ]; then
  echo "test-python.sh: installing ${PY_PKGS[*]} into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
  echo "${PY_PKGS[*]}" >"$VENV/.pinned"
fi

cargo build -q -p ipfs-hamt-cli --locked
# pytest exits 5 when it collects no tests: that fails too (set -e).
IPFS_HAMT_BIN="$TARGET/debug/ipfs-hamt" "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/python
