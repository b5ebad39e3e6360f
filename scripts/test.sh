#!/usr/bin/env bash
# Runs every test of the workspace, with a real IPFS node on loopback for the tests that talk to
# IPFS (../shared/realnode, installed on first use). This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

REALNODE="${IPFS_HAMT_REALNODE:-../shared/realnode}"
if [ -z "${IPFS_RPC_URL:-}" ]; then
  if [ ! -x "$REALNODE/start.sh" ]; then
    echo "test.sh: $REALNODE/start.sh not found (set IPFS_HAMT_REALNODE)" >&2
    exit 1
  fi
  eval "$(IPFS_API_PORT=0 IPFS_GATEWAY_PORT=0 "$REALNODE/start.sh" | sed 's/^/export /')"
  trap '"$REALNODE/stop.sh" "$IPFS_PID" >/dev/null 2>&1 || true' EXIT
fi
echo "test.sh: IPFS node at $IPFS_RPC_URL (gateway $IPFS_GATEWAY_URL)" >&2

cargo test --workspace --locked "$@"

# zarr-python reads a dataset served by `ipfs-hamt serve` over HTTP.
./scripts/test-python.sh

# The Python package (pip-built from pyproject.toml): py-hamt's doc samples, interop with
# py-hamt 3.6.0 both ways, xarray/dask, KuboCAS on the node above.
./scripts/test-pkg.sh
