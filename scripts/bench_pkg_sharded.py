#!/usr/bin/env python
"""ShardedZarrStore through xarray: py-hamt 3.6.0 vs ipfs_hamt vs zarr's MemoryStore, one run.

Workload (the size of py-hamt's own zarr benchmark): ~100 MB float32 (time 100, lat 500,
lon 500) in 5,000 chunks of (1, 100, 50), written with ``to_zarr(group="0")`` and flushed, then
opened read-only and loaded in full, then a point time series (one lat/lon over all times:
100 chunks) from a fresh read-only store.

Backends, each in its own subprocess:

* ``memorystore``: zarr's MemoryStore (the floor: zarr-python + xarray alone);
* ``py_hamt``: py-hamt's ShardedZarrStore on a CID-returning in-memory CAS written in Python
  (py-hamt's own InMemoryCAS cannot back its sharded store);
* ``ipfs_hamt``: ipfs_hamt's ShardedZarrStore on its InMemoryCAS (Rust memory store);
* ``ipfs_hamt-pycas``: ipfs_hamt on the same Python CAS as py-hamt (stepped on the loop).

Needs py-hamt==3.6.0 and a RELEASE build of ipfs_hamt in one Python (see bench_pkg.py):

    target/pkgenv/bin/python scripts/bench_pkg_sharded.py [--repeat N]   # medians of N runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

SHAPE, CHUNKS, CPS = (100, 500, 500), (1, 100, 50), 1024
if "--quick" in sys.argv:  # a 1/10 size run, to check the script
    SHAPE = (10, 500, 500)


class PyCIDCAS:
    """In-memory blocks named CIDv1(codec, blake3-256) (what KuboCAS returns, <= 1 MiB)."""

    def __init__(self) -> None:
        from multiformats import CID, multihash

        self.CID, self.mh, self.blocks = CID, multihash, {}

    async def save(self, data, codec):
        cid = self.CID("base32", 1, codec, self.mh.digest(bytes(data), "blake3", size=32))
        self.blocks[bytes(cid.digest)] = bytes(data)
        return cid

    async def load(self, id, offset=None, length=None, suffix=None):
        cid = self.CID.decode(id) if isinstance(id, str) else id
        data = self.blocks[bytes(cid.digest)]
        if offset is not None:
            return data[offset : offset + length] if length is not None else data[offset:]
        return data[-suffix:] if suffix is not None else data


def dataset():
    import numpy as np
    import xarray as xr

    data = np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32)
    return xr.Dataset(
        {"precip": (("time", "lat", "lon"), data)},
        coords={
            "time": np.arange(SHAPE[0], dtype="int64"),
            "lat": np.linspace(-90, 90, SHAPE[1]),
            "lon": np.linspace(-180, 180, SHAPE[2], endpoint=False),
        },
    )


def worker(backend: str) -> dict:
    import numpy as np
    import xarray as xr
    from zarr.core.sync import sync

    ds = dataset()
    enc = {"precip": {"chunks": CHUNKS}}
    res = {"backend": backend}
    if backend == "memorystore":
        from zarr.storage import MemoryStore

        store = MemoryStore()
        t0 = time.perf_counter()
        ds.to_zarr(store=store, mode="w", group="0", zarr_format=3, consolidated=False, encoding=enc)
        res["write_s"] = time.perf_counter() - t0
        opener = lambda: store.with_read_only(True)  # noqa: E731
    else:
        lib = __import__("py_hamt" if backend == "py_hamt" else "ipfs_hamt")
        cas = lib.InMemoryCAS() if backend == "ipfs_hamt" else PyCIDCAS()
        t0 = time.perf_counter()
        store = sync(lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=CPS))
        ds.to_zarr(store=store, mode="w", group="0", zarr_format=3, consolidated=False, encoding=enc)
        root = sync(store.flush())
        res["write_s"] = time.perf_counter() - t0
        res["root"] = root
        opener = lambda: sync(  # noqa: E731
            lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root)
        )
    t0 = time.perf_counter()
    full = xr.open_zarr(opener(), group="0", consolidated=False).load()
    res["read_s"] = time.perf_counter() - t0
    assert np.array_equal(full["precip"].values, ds["precip"].values)
    t0 = time.perf_counter()
    series = xr.open_zarr(opener(), group="0", consolidated=False)["precip"]
    point = series[:, 250, 250].load()
    res["point_s"] = time.perf_counter() - t0
    assert np.array_equal(point.values, ds["precip"].values[:, 250, 250])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worker")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker)))
        return
    rows, spread = {}, {}
    for backend in ("memorystore", "py_hamt", "ipfs_hamt", "ipfs_hamt-pycas"):
        runs = []
        for _ in range(a.repeat):
            cmd = [sys.executable, __file__, "--worker", backend] + ["--quick"] * a.quick
            out = subprocess.run(cmd,
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        # The median of each timing over the runs (the machine is shared: medians, with the
        # range printed below, rather than the best run).
        rows[backend] = {k: statistics.median(r[k] for r in runs) if isinstance(v, float) else v
                         for k, v in runs[0].items()}
        spread[backend] = {k: (min(r[k] for r in runs), max(r[k] for r in runs))
                           for k, v in runs[0].items() if isinstance(v, float)}
    roots = {r.get("root") for b, r in rows.items() if b != "memorystore"}
    print(f"same root from all three sharded runs: {len(roots) == 1}")
    print(f"median of {a.repeat} runs per backend (each in its own process)")
    print("| backend | write s (to_zarr + flush) | full read s | point series s |")
    print("| --- | --- | --- | --- |")
    for b, r in rows.items():
        print(f"| {b} | {r['write_s']:.2f} | {r['read_s']:.2f} | {r['point_s']:.3f} |")
    for b, sp in spread.items():
        print(f"{b} ranges: " + ", ".join(f"{k} {lo:.3f}-{hi:.3f}" for k, (lo, hi) in sp.items()))
    m, p = rows["memorystore"], rows["py_hamt"]
    for b in ("ipfs_hamt", "ipfs_hamt-pycas"):
        r = rows[b]
        print(f"{b}: write {p['write_s'] / r['write_s']:.1f}x py-hamt, "
              f"{r['write_s'] / m['write_s']:.2f}x MemoryStore; full read "
              f"{p['read_s'] / r['read_s']:.1f}x py-hamt, {r['read_s'] / m['read_s']:.2f}x "
              f"MemoryStore; point {p['point_s'] / r['point_s']:.1f}x py-hamt, "
              f"{r['point_s'] / m['point_s']:.2f}x MemoryStore")


if __name__ == "__main__":
    main()
