#!/usr/bin/env bash
# py-hamt 3.6.0's own test suite, from its sdist on PyPI, run against ipfs_hamt.
#
#   scripts/test-pyhamt-suite.sh [pytest args...]
#
# Called by scripts/test-pkg.sh (after it built and installed the wheel into target/pkgenv).
# * The sdist is downloaded once (pip download, checked against its sha256) into
#   target/pyhamt-suite; its py_hamt/ sources are deleted, only tests/ and pytest.ini are kept.
# * tests/pyhamt_suite/ipfs_hamt_alias.py (a pytest plugin) makes `py_hamt` and its submodules
#   resolve to ipfs_hamt, marks the tests listed in docs/PYTHON.md as strict xfail with the
#   reason given there, and fails the run if a real py-hamt module was imported.
# * Tests needing the internet or Docker do not run: py-hamt's own `ipfs` marker skips them
#   without --ipfs (py-hamt's conftest), and --timeout stops a test that waits forever.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/pkgenv"
SUITE="$TARGET/pyhamt-suite"
SDIST_SHA256=7839aeb9a5ec8fede281521b10afdfc632a119c2db1dd7fd7d2374e9eca0fd09

if [ ! -f "$SUITE/tests/conftest.py" ]; then
  rm -rf "$SUITE" "$SUITE.dl"
  mkdir -p "$SUITE.dl"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$SUITE.dl" py-hamt==3.6.0
  sdist="$SUITE.dl/py_hamt-3.6.0.tar.gz"
  echo "$SDIST_SHA256  $sdist" | sha256sum -c --quiet
  mkdir -p "$SUITE"
  tar -xzf "$sdist" -C "$SUITE" --strip-components=1 py_hamt-3.6.0/tests py_hamt-3.6.0/pytest.ini
  rm -rf "$SUITE.dl"
fi

echo "test-pyhamt-suite.sh: py-hamt 3.6.0's tests against ipfs_hamt ($SUITE)" >&2
cd "$SUITE"
IPFS_HAMT_PYTHON_DOC="$REPO/docs/PYTHON.md" PYTHONPATH="$REPO/tests/pyhamt_suite" \
  "$VENV/bin/python" -m pytest -p ipfs_hamt_alias -p no:cacheprovider -q -rfEs \
  --timeout=120 tests "$@"
