#!/usr/bin/env bash
# dClimate's client (dclimate-client-py 0.12.0 from PyPI) on ipfs_hamt instead of py-hamt.
#
#   scripts/test-dclimate.sh [pytest args...]
#
# Called by scripts/test-pkg.sh (after it built the wheel and made target/pkgenv); needs
# IPFS_RPC_URL / IPFS_GATEWAY_URL of a running node.
# 1. target/pkgenv (py-hamt 3.6.0 + ipfs_hamt) publishes the test dataset with both libraries
#    in each layout dClimate reads (tests/dclimate/publish.py).
# 2. target/dclimate-env: dclimate-client-py==0.12.0 with its dependencies, then py-hamt is
#    uninstalled and our wheel installed; tests/dclimate runs dClimate's
#    _load_dataset_from_ipfs_cid on every root through the py_hamt -> ipfs_hamt alias.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
: "${IPFS_RPC_URL:?start a node first (scripts/test-pkg.sh does)}"
: "${IPFS_GATEWAY_URL:?}"

PKGENV="$TARGET/pkgenv"
VENV="$TARGET/dclimate-env"
PINS=(dclimate-client-py==0.12.0 pytest==9.2.0 pytest-asyncio==1.5.0)
PY="$PKGENV/bin/python"
want="$("$PY" -c 'import sys; print(sys.version.split()[0])') ${PINS[*]}"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.pinned" 2>/dev/null)" != "$want" ]; then
  echo "test-dclimate.sh: installing ${PINS[*]} into $VENV" >&2
  rm -rf "$VENV"
  "$(readlink -f "$PKGENV/bin/python")" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
  echo "$want" >"$VENV/.pinned"
fi
"$VENV/bin/pip" uninstall -y -q py-hamt 2>/dev/null || true
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps \
  "$(ls "$TARGET"/pkgwheel/ipfs_hamt-*.whl)"

echo "test-dclimate.sh: publishing the test datasets (py-hamt and ipfs_hamt)" >&2
DCLIMATE_ROOTS="$(cd tests/dclimate && "$PY" publish.py "$IPFS_RPC_URL" "$IPFS_GATEWAY_URL")"
export DCLIMATE_ROOTS
echo "test-dclimate.sh: dclimate-client-py 0.12.0 on ipfs_hamt ($VENV)" >&2
cd tests/dclimate
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -o asyncio_mode=auto \
  -W "ignore::DeprecationWarning" -W "ignore::FutureWarning" . "$@"
