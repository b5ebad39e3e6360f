#!/usr/bin/env bash
# Tests of the Python package ipfs_hamt (tests/pkg): py-hamt's documentation samples, interop
# with py-hamt 3.6.0 both ways, xarray/dask round trips, KuboCAS against a real IPFS node.
#
#   scripts/test-pkg.sh [pytest args...]
#
# 1. A Python 3.12 venv in target/pkgenv with py-hamt==3.6.0 (which pins zarr 3.0.9), xarray,
#    dask, pytest (pinned below; re-created when the pins change). A second venv,
#    target/pkgenv-zarr31, has zarr 3.1 and no py-hamt: the tests run there too (the interop
#    tests skip themselves). Set IPFS_HAMT_PKG_ZARR31=0 to skip that run.
# 2. Builds our package once as a wheel from the repo root (maturin, pyproject.toml) with the
#    dev profile, so it reuses the workspace's debug build, and installs it into both venvs.
# 3. Uses the IPFS node in IPFS_RPC_URL / IPFS_GATEWAY_URL (scripts/test.sh exports them);
#    without them it starts testnode/ itself, as scripts/test.sh does.
# 4. Then py-hamt 3.6.0's own test suite against ipfs_hamt (scripts/test-pyhamt-suite.sh) and
#    dClimate's client on ipfs_hamt (scripts/test-dclimate.sh), when no pytest args were given
#    (IPFS_HAMT_PYHAMT_SUITE / IPFS_HAMT_DCLIMATE = 0 or 1 force them off or on).
# Needs PyPI access on first use. pytest's exit 5 (no tests collected) fails, like any error.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
export CARGO_TARGET_DIR="$TARGET"

# --- Python 3.12 (py-hamt 3.x needs >= 3.12): found, or installed with apt when possible ---
# shellcheck source=lib/python312.sh
. scripts/lib/python312.sh
PY="$PY312"

# --- venvs (pinned; the versions these tests were verified with) ---
COMMON=(xarray==2026.9.0 numpy==2.5.5 pandas==3.1.1 dask==2026.8.0 pytest==9.2.0
  pytest-asyncio==1.5.0 maturin==1.16.0 httpx==0.28.1 multiformats==0.3.1.post4 blake3==1.0.11)
# hypothesis, trustme and pytest-timeout are what py-hamt's own test suite needs.
MAIN_PKGS=(py-hamt==3.6.0 zarr==3.0.9 numcodecs==0.17.1 "${COMMON[@]}" hypothesis==6.170.27
  trustme==1.2.1 pytest-timeout==2.4.0)
Z31_PKGS=(zarr==3.1.6 numcodecs==0.16.6 "${COMMON[@]}")

make_venv() { # dir pkgs...
  local venv="$1"
  shift
  local want="$("$PY" -c 'import sys; print(sys.version.split()[0])') $*"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pinned" 2>/dev/null)" != "$want" ]; then
    echo "test-pkg.sh: installing $* into $venv" >&2
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$want" >"$venv/.pinned"
  fi
}

RUN_Z31="${IPFS_HAMT_PKG_ZARR31:-1}"
make_venv "$TARGET/pkgenv" "${MAIN_PKGS[@]}"
[ "$RUN_Z31" = 0 ] || make_venv "$TARGET/pkgenv-zarr31" "${Z31_PKGS[@]}"

# --- our package: one wheel (dev profile: reuses the debug build), installed into both ---
WHEELS="$TARGET/pkgwheel"
rm -rf "$WHEELS"
echo "test-pkg.sh: building the ipfs_hamt wheel (maturin, --profile dev)" >&2
PATH="$TARGET/pkgenv/bin:$PATH" MATURIN_PEP517_ARGS="${MATURIN_PEP517_ARGS:---profile dev}" \
  "$TARGET/pkgenv/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
  -w "$WHEELS" .
WHEEL="$(ls "$WHEELS"/ipfs_hamt-*.whl)"
for venv in "$TARGET/pkgenv" "$TARGET/pkgenv-zarr31"; do
  [ -x "$venv/bin/python" ] || continue
  [ "$venv" = "$TARGET/pkgenv" ] || [ "$RUN_Z31" != 0 ] || continue
  "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
  "$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check; exit 1; }
done

# --- the CLI (tests/pkg/test_sharded_era5.py runs `ipfs-hamt` next to py-hamt) ---
cargo build -q -p ipfs-hamt-cli --locked
export IPFS_HAMT_BIN="$TARGET/debug/ipfs-hamt"

# --- the IPFS node ---
if [ -z "${IPFS_RPC_URL:-}" ] || [ -z "${IPFS_GATEWAY_URL:-}" ]; then
  NODE_ENV_LINES="$(IPFS_API_PORT=0 IPFS_GATEWAY_PORT=0 testnode/start.sh)"
  eval "$(sed 's/^/export /' <<<"$NODE_ENV_LINES")"
  trap 'testnode/stop.sh "$IPFS_PID" >/dev/null 2>&1 || true' EXIT
fi
echo "test-pkg.sh: IPFS node at $IPFS_RPC_URL (gateway $IPFS_GATEWAY_URL)" >&2

# --- tests (run outside the source tree's python/ so the installed package is the one tested) ---
status=0
echo "test-pkg.sh: zarr 3.0.9 + py-hamt 3.6.0 ($TARGET/pkgenv)" >&2
"$TARGET/pkgenv/bin/python" -m pytest -q -p no:cacheprovider tests/pkg "$@" || status=$?
if [ "$RUN_Z31" != 0 ]; then
  echo "test-pkg.sh: zarr 3.1 ($TARGET/pkgenv-zarr31; py-hamt interop tests skip)" >&2
  "$TARGET/pkgenv-zarr31/bin/python" -m pytest -q -p no:cacheprovider tests/pkg "$@" || status=$?
fi
# py-hamt's own test suite through the py_hamt -> ipfs_hamt alias, then dClimate's client. They
# run when no pytest args were given (a focused run skips them) unless set to 0 or 1 explicitly.
whole=1
[ "$#" = 0 ] || whole=0
if [ "${IPFS_HAMT_PYHAMT_SUITE:-$whole}" != 0 ]; then
  scripts/test-pyhamt-suite.sh || status=$?
fi
if [ "${IPFS_HAMT_DCLIMATE:-$whole}" != 0 ]; then
  scripts/test-dclimate.sh || status=$?
fi
exit "$status"
