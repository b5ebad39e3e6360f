"""py-hamt 3.6.0 ShardedZarrStore (sharded_zarr_v2) + xarray: the Python half of
scripts/bench_sharded.sh (see BENCHMARKS.md, "Sharded layout").

    bench_sharded.py gen DIR                 # the dataset, written once by xarray to DIR (group 0)
    bench_sharded.py pyhamt --runs 3 --cps N # write / full read / cold point series, JSON lines
    bench_sharded.py dir DIR --runs 3        # the same point series (and full read) from DIR

The dataset: float32 precip[time=200, lat=250, lon=500] (100 MB), zarr chunks (1, 50, 100):
5,000 chunks of 20,000 bytes before zstd; coordinates time/lat/lon as in py-hamt's
bench_pyhamt.py. One lat/lon over every time step touches 200 chunks. zarr v3 default codecs
(bytes + zstd level 0), consolidated=False, group '0' (sharded_zarr_v2 needs a group).

The CAS: ShardedZarrStore needs CIDs from `save` (py-hamt's InMemoryCAS returns bare multihash
bytes and cannot back it, golden SHARDED.md 1.1), so `CidMemoryCAS` below returns what KuboCAS
returns: CIDv1, blake3-256, the codec asked for (the golden mimic_cas.py, with the digest taken
by the `blake3` package and the multihash bytes built directly, which is ~25% cheaper per save).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time

import blake3
import numpy as np
import xarray as xr
from multiformats import CID
from zarr.core.sync import sync

SHAPE = (200, 250, 500)
CHUNKS = (1, 50, 100)
POINT = (137, 311)  # lat, lon index: chunk (t, 2, 3) for every t
SEED = 0


def make_ds() -> xr.Dataset:
    data = np.random.default_rng(SEED).standard_normal(SHAPE, dtype=np.float32)
    return xr.Dataset(
        {"precip": (("time", "lat", "lon"), data)},
        coords={
            "time": np.arange(SHAPE[0], dtype="int64"),
            "lat": np.linspace(-90, 90, SHAPE[1]),
            "lon": np.linspace(-180, 180, SHAPE[2], endpoint=False),
        },
    )


ENC = {"precip": {"chunks": CHUNKS}}


class CidMemoryCAS:
    """In-memory CAS returning KuboCAS's CIDs (CIDv1, blake3-256)."""

    def __init__(self) -> None:
        self.blocks: dict[CID, bytes] = {}

    async def save(self, data, codec) -> CID:
        data = bytes(data)
        cid = CID("base32", 1, codec, b"\x1e\x20" + blake3.blake3(data).digest())
        self.blocks[cid] = data
        return cid

    async def load(self, id, offset=None, length=None, suffix=None) -> bytes:
        cid = id if isinstance(id, CID) else CID.decode(id)
        data = self.blocks[cid]
        if offset is not None:
            return data[offset : offset + length] if length is not None else data[offset:]
        if suffix is not None:
            return data[-suffix:] if suffix else b""
        return data


def med(xs):
    return round(statistics.median(xs), 4)


def cmd_gen(a) -> None:
    ds = make_ds()
    ds.to_zarr(a.dir, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
    print(json.dumps({"gen": a.dir, "data_mb": ds.precip.nbytes / 1e6}))


def cmd_pyhamt(a) -> None:
    from py_hamt import ShardedZarrStore

    ds = make_ds()
    want_point = ds.precip.values[:, POINT[0], POINT[1]].copy()
    res = {"impl": "py-hamt 3.6.0", "cps": a.cps, "write_s": [], "read_s": [],
           "point_auto_s": [], "point_full_s": []}
    roots = set()
    for _ in range(a.runs):
        cas = CidMemoryCAS()
        gc.collect()
        t = time.perf_counter()
        st = sync(ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=a.cps))
        ds.to_zarr(store=st, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
        root = sync(st.flush())
        res["write_s"].append(time.perf_counter() - t)
        roots.add(str(root))
        del st
        gc.collect()

        t = time.perf_counter()
        ro = sync(ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root))
        back = xr.open_zarr(ro, group="0", zarr_format=3, consolidated=False).load()
        res["read_s"].append(time.perf_counter() - t)
        assert np.array_equal(back.precip.values, ds.precip.values)
        del back, ro
        gc.collect()

        for mode in ("auto", "full"):
            t = time.perf_counter()
            ro = sync(ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root,
                                            shard_read_mode=mode))
            pt = xr.open_zarr(ro, group="0", zarr_format=3, consolidated=False)
            series = pt.precip.isel(lat=POINT[0], lon=POINT[1]).load()
            res[f"point_{mode}_s"].append(time.perf_counter() - t)
            assert np.array_equal(series.values, want_point)
            del ro, pt
        res["blocks"] = len(cas.blocks)
        del cas
        gc.collect()
    assert len(roots) == 1, roots
    res["root"] = roots.pop()
    res["data_mb"] = ds.precip.nbytes / 1e6
    for k in ("write_s", "read_s", "point_auto_s", "point_full_s"):
        res[k + "_runs"] = [round(x, 4) for x in res[k]]
        res[k] = med(res[k])
    print(json.dumps(res), flush=True)


def cmd_dir(a) -> None:
    ds = make_ds()
    want_point = ds.precip.values[:, POINT[0], POINT[1]].copy()
    res = {"impl": "zarr-python 3.0.9 + xarray on the directory", "read_s": [], "point_s": []}
    for _ in range(a.runs):
        gc.collect()
        t = time.perf_counter()
        back = xr.open_zarr(a.dir, group="0", zarr_format=3, consolidated=False).load()
        res["read_s"].append(time.perf_counter() - t)
        assert np.array_equal(back.precip.values, ds.precip.values)
        del back
        gc.collect()
        t = time.perf_counter()
        pt = xr.open_zarr(a.dir, group="0", zarr_format=3, consolidated=False)
        series = pt.precip.isel(lat=POINT[0], lon=POINT[1]).load()
        res["point_s"].append(time.perf_counter() - t)
        assert np.array_equal(series.values, want_point)
    for k in ("read_s", "point_s"):
        res[k + "_runs"] = [round(x, 4) for x in res[k]]
        res[k] = med(res[k])
    print(json.dumps(res), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    h = sub.add_parser("pyhamt")
    h.add_argument("--runs", type=int, default=3)
    h.add_argument("--cps", type=int, default=1000)
    d = sub.add_parser("dir")
    d.add_argument("dir")
    d.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    {"gen": cmd_gen, "pyhamt": cmd_pyhamt, "dir": cmd_dir}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
