"""Makes ``import py_hamt`` (and its submodules) give ipfs_hamt, for code written for py-hamt.

>>> import ipfs_hamt.alias
>>> ipfs_hamt.alias.install()
>>> import py_hamt, py_hamt.sharded_zarr_store
>>> py_hamt.ShardedZarrStore is ipfs_hamt.ShardedZarrStore
True

Call :func:`install` before the first ``import py_hamt``. An installed py-hamt is shadowed,
not removed.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["install", "SUBMODULES"]

#: py-hamt 3.6.0 module name -> ipfs_hamt module.
SUBMODULES = {
    "hamt": "hamt",
    "store_httpx": "store_httpx",
    "zarr_hamt_store": "zarr_hamt_store",
    "encryption_hamt_store": "encryption_hamt_store",
    "sharded_zarr_store": "sharded_zarr_store",
    "hamt_to_sharded_converter": "hamt_to_sharded_converter",
    "instrumentation": "instrumentation",
}


def install(name: str = "py_hamt") -> None:
    """Registers ``name`` and ``name.<submodule>`` as ipfs_hamt's modules in ``sys.modules``."""
    pkg = importlib.import_module("ipfs_hamt")
    sys.modules[name] = pkg
    for theirs, ours in SUBMODULES.items():
        mod = importlib.import_module(f"ipfs_hamt.{ours}")
        sys.modules[f"{name}.{theirs}"] = mod
        setattr(pkg, theirs, mod)
