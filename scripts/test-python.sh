#!/usr/bin/env bash
# zarr-python and xarray read datasets through `ipfs-hamt serve` (tests/python), with fsspec's
# HTTP store: the golden dataset with zarr.open_group, and datasets written by xarray with
# xr.open_zarr(url) (default arguments). Run by scripts/test.sh. Two venvs, kept in target/:
# target/pyenv with zarr 3.1 and target/pyenv-zarr30 with zarr 3.0.9 (py-hamt 3.6.0's pin);
# each is re-created when its pins change. Needs python3 >= 3.11 (3.12 preferred: pyenv's
# 3.12.1 if present) with venv, and PyPI access on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac

PY="python3"
for cand in \
  "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.12.1/bin/python")" \
  "$HOME/.pyenv/versions/3.12.1/bin/python"; do
  if [ -n "$cand" ] && [ -x "$cand" ]; then
    PY="$cand"
    break
  fi
done

# Pinned: the versions these tests were verified with.
COMMON=(fsspec==2026.9.0 aiohttp==3.14.5 requests==2.34.2 numpy==2.5.5 pandas==3.1.1
  xarray==2026.9.0 pytest==9.2.0)
Z31=(zarr==3.1.6 numcodecs==0.16.6 "${COMMON[@]}")
Z30=(zarr==3.0.9 numcodecs==0.17.1 "${COMMON[@]}")

make_venv() { # dir pkgs...
  local venv="$1"
  shift
  local want="$("$PY" -c 'import sys; print(sys.version.split()[0])') $*"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pinned" 2>/dev/null)" != "$want" ]; then
    echo "test-python.sh: installing $* into $venv" >&2
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$want" >"$venv/.pinned"
  fi
}
make_venv "$TARGET/pyenv" "${Z31[@]}"
make_venv "$TARGET/pyenv-zarr30" "${Z30[@]}"

cargo build -q -p ipfs-hamt-cli --locked
# pytest exits 5 when it collects no tests: that fails too (set -e).
for venv in "$TARGET/pyenv" "$TARGET/pyenv-zarr30"; do
  echo "test-python.sh: $("$venv/bin/python" -c 'import zarr, xarray; print("zarr", zarr.__version__, "xarray", xarray.__version__)')" >&2
  IPFS_HAMT_BIN="$TARGET/debug/ipfs-hamt" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python
done
