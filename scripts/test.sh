#!/usr/bin/env bash
# Runs every test of the workspace, with a real IPFS node on loopback for the tests that talk to
# IPFS (testnode/, npm packages installed on first use). This is the README's test command.
# With IPFS_RPC_URL and IPFS_GATEWAY_URL set, it uses that node instead of starting one.
set -euo pipefail
cd "$(dirname "$0")/.."

# node/npm, python3-venv, Python 3.12: found, or installed with apt-get (as root).
. scripts/lib/prereqs.sh

if [ -z "${IPFS_RPC_URL:-}" ] || [ -z "${IPFS_GATEWAY_URL:-}" ]; then
  NODE_ENV_LINES="$(IPFS_API_PORT=0 IPFS_GATEWAY_PORT=0 testnode/start.sh)"
  eval "$(sed 's/^/export /' <<<"$NODE_ENV_LINES")"
  trap 'testnode/stop.sh "$IPFS_PID" >/dev/null 2>&1 || true' EXIT
fi
echo "test.sh: IPFS node at $IPFS_RPC_URL (gateway $IPFS_GATEWAY_URL)" >&2

cargo test --workspace --locked "$@"

# zarr-python reads a dataset served by `ipfs-hamt serve` over HTTP.
./scripts/test-python.sh

# The Python package (pip-built from pyproject.toml): py-hamt's doc samples, interop with
# py-hamt 3.6.0 both ways, xarray/dask, KuboCAS on the node above.
./scripts/test-pkg.sh
