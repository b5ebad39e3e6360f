"""pytest plugin for running py-hamt 3.6.0's own test suite against ipfs_hamt.

Loaded with ``-p ipfs_hamt_alias`` (scripts/test-pyhamt-suite.sh) before any test module is
imported:

* ``py_hamt`` and its submodules resolve to ipfs_hamt's (``ipfs_hamt.alias``);
* every test listed in docs/PYTHON.md's table of tests that do not pass is marked
  ``xfail(strict=True)`` with the reason given there, so a listed test that starts passing
  fails the run and the list cannot go stale (a reason starting with "Hangs" deselects the
  test instead: it would block the run);
* at the end the run checks that no module of the real py-hamt was imported.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

import pytest

import ipfs_hamt
import ipfs_hamt.alias

ipfs_hamt.alias.install()

#: Private names of py-hamt's pure-Python implementation that test modules import at module
#: level. ipfs_hamt has no such objects (the work is in Rust); a placeholder lets the module
#: import so its other tests run, and any test that uses one fails (and is listed in
#: docs/PYTHON.md).
PRIVATE = {
    "hamt": ["Node", "InMemoryTreeStore", "_VACATE_CONCURRENCY"],
    "sharded_zarr_store": [
        "MemoryBoundedLRUCache", "_V1_INFERENCE_CONCURRENCY", "_FLUSH_CONCURRENCY",
        "_read_cbor_argument", "_read_cbor_list_header", "_skip_cbor_item", "ChunkKey",
    ],
    "store_httpx": ["_cid_is_verifiable"],
    "hamt_to_sharded_converter": ["_is_zarr_chunk_key", "_normalize_zarr_chunk_key"],
}


def _placeholder(module: str, name: str) -> type:
    def refuse(*a, **k):
        raise NotImplementedError(f"py_hamt.{module}.{name} is py-hamt's internal; ipfs_hamt has none")

    return type(name, (), {"__init__": refuse, "__init_subclass__": classmethod(lambda c, **k: None)})


for _mod, _names in PRIVATE.items():
    _m = sys.modules[f"py_hamt.{_mod}"]
    for _n in _names:
        if not hasattr(_m, _n):
            setattr(_m, _n, _placeholder(_mod, _n))

_DOC = pathlib.Path(os.environ.get("IPFS_HAMT_PYTHON_DOC", "docs/PYTHON.md"))
_BEGIN = "<!-- pyhamt-suite-exceptions:begin -->"
_END = "<!-- pyhamt-suite-exceptions:end -->"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|\s*$")


def _listed() -> dict[str, str]:
    """node id pattern -> reason, from the docs table (a pattern ending in ``::*`` covers a
    whole file)."""
    text = _DOC.read_text(encoding="utf-8")
    body = text.split(_BEGIN, 1)[1].split(_END, 1)[0]
    out = {}
    for line in body.splitlines():
        m = _ROW.match(line.strip())
        if m and not m.group(1).startswith("test id"):
            out[m.group(1)] = m.group(2)
    return out


def _reason(nodeid: str, listed: dict[str, str]) -> str | None:
    base = nodeid.split("[", 1)[0]
    for pat, why in listed.items():
        if pat in (nodeid, base) or (pat.endswith("::*") and base.startswith(pat[:-1])):
            return why
    return None


def pytest_collection_modifyitems(config, items):
    listed = _listed()
    used = set()
    keep, hang = [], []
    for item in items:
        nodeid = item.nodeid.removeprefix("tests/")
        why = _reason(nodeid, listed)
        if why is None:
            keep.append(item)
            continue
        used.update(p for p in listed if _reason(nodeid, {p: why}) is not None)
        if why.startswith("Hangs"):
            hang.append(item)  # it would block the run: not run at all
        else:
            item.add_marker(pytest.mark.xfail(reason=why, strict=True))
            keep.append(item)
    if hang:
        config.hook.pytest_deselected(items=hang)
        items[:] = keep
    files = {item.nodeid.removeprefix("tests/").split("::", 1)[0] for item in items + hang}
    unused = sorted(p for p in set(listed) - used if p.split("::", 1)[0] in files)
    if unused:
        raise pytest.UsageError(f"docs/PYTHON.md lists tests that do not exist: {unused}")


def pytest_sessionfinish(session, exitstatus):
    real = [n for n, m in sys.modules.items()
            if n.startswith("py_hamt") and not getattr(m, "__name__", "").startswith("ipfs_hamt")]
    if real:
        print(f"\nipfs_hamt_alias: real py-hamt modules were imported: {real}", file=sys.stderr)
        session.exitstatus = 1
