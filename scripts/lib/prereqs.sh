# Sourced by scripts/test.sh and .ci/run: what the tests need beyond a Rust toolchain.
#   node (>= 18) and npm   the IPFS test node (testnode/)
#   python3 with venv      zarr-python through `ipfs-hamt serve` (scripts/test-python.sh)
#   ss (iproute2)          the test node's loopback-only check
#   Python 3.12            py-hamt 3.6.0 (scripts/lib/python312.sh: pyenv's, python3.12, or apt's)
# Missing ones are installed with apt-get when running as root on Debian/Ubuntu; otherwise the
# script stops and names them.
prereq_missing=()
command -v node >/dev/null || prereq_missing+=(nodejs)
command -v npm >/dev/null || prereq_missing+=(npm)
command -v ss >/dev/null || prereq_missing+=(iproute2)
command -v flock >/dev/null || prereq_missing+=(util-linux)
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  prereq_missing+=(python3 python3-venv)
fi
if [ ${#prereq_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "prereqs: apt-get install ${prereq_missing[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${prereq_missing[@]}" >&2
  else
    echo "prereqs: please install ${prereq_missing[*]} (Debian/Ubuntu package names)" >&2
    exit 1
  fi
fi
unset prereq_missing
# shellcheck source=python312.sh
. "$(dirname "${BASH_SOURCE[0]}")/python312.sh"
