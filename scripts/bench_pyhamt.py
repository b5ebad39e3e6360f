#!/usr/bin/env python
"""Baseline benchmark of py-hamt 3.6.0 (to compare a Rust port against).

The py-hamt baseline that BENCHMARKS.md and scripts/bench_pkg.py compare against.

Usage (py-hamt venv):
    PY=python
    $PY bench_pyhamt.py all                       # every config, each in its own
                                                  # process under /usr/bin/time -v;
                                                  # writes bench_results.json/.md
    $PY bench_pyhamt.py hamt --cas inmemory --n 10000
    $PY bench_pyhamt.py hamt --cas mimic --n 100000 --value-size 100
    $PY bench_pyhamt.py zarr --cas inmemory        # ~100 MB float32, 5,000 chunks

HAMT phases (values_are_bytes=True, max_bucket_size=4, keys "key-{i}",
values = 100-byte distinct strings):
    set          await hamt.set(k, v) for i in 0..N-1 (ascending), one at a time
    make_ro      await hamt.make_read_only()  (flushes the in-memory write buffer)
    get_seq_cold fresh read-only HAMT(root) -> for k in shuffled keys: await get(k)
    get_seq_warm same instance again (node read cache now full), new shuffle
    get_gather_cold / _warm   like above but asyncio.gather over batches of 1,000
    keys_warm / keys_cold     async for k in hamt.keys()
    len_warm                  await hamt.len()
Peak RSS: resource.getrusage(RUSAGE_SELF).ru_maxrss inside the process plus
/usr/bin/time -v "Maximum resident set size" for the whole process ("all" mode).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
# MimicKuboCAS (--cas mimic) lives with the golden-vector generators.
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden", "gen"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_cas(kind: str):
    if kind == "inmemory":
        from py_hamt import InMemoryCAS

        return InMemoryCAS()
    if kind == "mimic":
        from mimic_cas import MimicKuboCAS

        return MimicKuboCAS()
    raise ValueError(kind)


def value_for(i: int, size: int) -> bytes:
    v = f"value-{i:012d}-".encode()
    return (v * (size // len(v) + 1))[:size]


async def bench_hamt(cas_kind: str, n: int, value_size: int, mbs: int, seed: int) -> dict:
    from py_hamt import HAMT

    res: dict = {"bench": "hamt", "cas": cas_kind, "n": n, "value_size": value_size,
                 "max_bucket_size": mbs, "rss_start_mb": rss_mb()}
    keys = [f"key-{i}" for i in range(n)]
    vals = [value_for(i, value_size) for i in range(n)]
    cas = make_cas(cas_kind)
    hamt = await HAMT.build(cas=cas, values_are_bytes=True, max_bucket_size=mbs)

    t0 = time.perf_counter()
    for k, v in zip(keys, vals):
        await hamt.set(k, v)
    t_set = time.perf_counter() - t0
    res["set_s"] = t_set
    res["set_ops_per_s"] = n / t_set
    res["rss_after_set_mb"] = rss_mb()

    t0 = time.perf_counter()
    await hamt.make_read_only()
    res["make_ro_s"] = time.perf_counter() - t0
    root = hamt.root_node_id
    res["root"] = str(root) if cas_kind == "mimic" else bytes(root).hex()
    res["rss_after_make_ro_mb"] = rss_mb()
    del hamt
    gc.collect()

    rng = random.Random(seed)

    async def fresh():
        return await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)

    def shuffled():
        idx = list(range(n))
        rng.shuffle(idx)
        return idx

    async def get_seq(h, idx):
        t0 = time.perf_counter()
        for i in idx:
            v = await h.get(keys[i])
            if v is None:  # never true; keep the value alive
                raise AssertionError
        return time.perf_counter() - t0

    async def get_gather(h, idx, batch=1000):
        t0 = time.perf_counter()
        for s in range(0, len(idx), batch):
            part = idx[s : s + batch]
            out = await asyncio.gather(*(h.get(keys[i]) for i in part))
            if out and out[0] != vals[part[0]]:
                raise AssertionError("bad value")
        return time.perf_counter() - t0

    ro = await fresh()
    idx = shuffled()
    t = await get_seq(ro, idx)
    res["get_seq_cold_s"], res["get_seq_cold_ops_per_s"] = t, n / t
    # correctness spot-check
    for i in idx[:100]:
        assert await ro.get(keys[i]) == vals[i]
    t = await get_seq(ro, shuffled())
    res["get_seq_warm_s"], res["get_seq_warm_ops_per_s"] = t, n / t

    t0 = time.perf_counter()
    cnt = 0
    async for _ in ro.keys():
        cnt += 1
    t = time.perf_counter() - t0
    assert cnt == n
    res["keys_warm_s"], res["keys_warm_keys_per_s"] = t, n / t

    t0 = time.perf_counter()
    ln = await ro.len()
    t = time.perf_counter() - t0
    assert ln == n
    res["len_warm_s"] = t
    res["rss_after_reads_mb"] = rss_mb()
    del ro
    gc.collect()

    ro = await fresh()
    t = await get_gather(ro, shuffled())
    res["get_gather1000_cold_s"], res["get_gather1000_cold_ops_per_s"] = t, n / t
    t = await get_gather(ro, shuffled())
    res["get_gather1000_warm_s"], res["get_gather1000_warm_ops_per_s"] = t, n / t
    del ro

    ro = await fresh()
    t0 = time.perf_counter()
    cnt = 0
    async for _ in ro.keys():
        cnt += 1
    t = time.perf_counter() - t0
    res["keys_cold_s"], res["keys_cold_keys_per_s"] = t, n / t
    ro2 = await fresh()
    t0 = time.perf_counter()
    ln = await ro2.len()
    res["len_cold_s"] = time.perf_counter() - t0

    res["cas_blocks"] = len(getattr(cas, "store", getattr(cas, "blocks", {})))
    res["rss_end_mb"] = rss_mb()
    res["peak_rss_mb"] = peak_mb()
    return res


def bench_zarr(cas_kind: str, shape, chunks, seed: int) -> dict:
    import numpy as np
    import xarray as xr
    from zarr.core.sync import sync

    from py_hamt import HAMT, ZarrHAMTStore

    res: dict = {"bench": "zarr", "cas": cas_kind, "shape": list(shape), "chunks": list(chunks),
                 "rss_start_mb": rss_mb()}
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape, dtype=np.float32)
    ds = xr.Dataset(
        {"precip": (("time", "lat", "lon"), data)},
        coords={
            "time": np.arange(shape[0], dtype="int64"),
            "lat": np.linspace(-90, 90, shape[1]),
            "lon": np.linspace(-180, 180, shape[2], endpoint=False),
        },
    )
    n_chunks = 1
    for s, c in zip(shape, chunks):
        n_chunks *= -(-s // c)
    res["data_mb"] = data.nbytes / 1e6
    res["array_chunks"] = n_chunks
    res["rss_after_dataset_mb"] = rss_mb()

    cas = make_cas(cas_kind)
    hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
    store = ZarrHAMTStore(hamt, read_only=False)
    t0 = time.perf_counter()
    ds.to_zarr(store=store, mode="w", zarr_format=3, consolidated=False,
               encoding={"precip": {"chunks": tuple(chunks)}})
    res["write_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sync(hamt.make_read_only())
    res["make_ro_s"] = time.perf_counter() - t0
    root = hamt.root_node_id
    res["write_total_s"] = res["write_s"] + res["make_ro_s"]
    res["write_MBps"] = res["data_mb"] / res["write_total_s"]
    res["write_chunks_per_s"] = n_chunks / res["write_total_s"]
    res["rss_after_write_mb"] = rss_mb()
    res["stored_bytes"] = sum(len(v) for v in getattr(cas, "store", getattr(cas, "blocks", {})).values())
    res["cas_blocks"] = len(getattr(cas, "store", getattr(cas, "blocks", {})))
    del store, hamt
    gc.collect()

    t0 = time.perf_counter()
    ro = sync(HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True))
    ds_ro = xr.open_zarr(store=ZarrHAMTStore(ro, read_only=True), zarr_format=3, consolidated=False)
    res["open_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = ds_ro.load()
    res["load_s"] = time.perf_counter() - t0
    res["read_total_s"] = res["open_s"] + res["load_s"]
    res["read_MBps"] = res["data_mb"] / res["read_total_s"]
    res["read_chunks_per_s"] = n_chunks / res["read_total_s"]
    assert np.array_equal(loaded["precip"].values, data)
    res["roundtrip_equal"] = True
    res["rss_end_mb"] = rss_mb()
    res["peak_rss_mb"] = peak_mb()
    return res


CONFIGS = [
    ["hamt", "--cas", "inmemory", "--n", "10000"],
    ["hamt", "--cas", "mimic", "--n", "10000"],
    ["hamt", "--cas", "inmemory", "--n", "100000"],
    ["hamt", "--cas", "mimic", "--n", "100000"],
    ["zarr", "--cas", "inmemory"],
    ["zarr", "--cas", "mimic"],
]


def run_all(out_json: str) -> None:
    import platform

    results = []
    for cfg in CONFIGS:
        tmp = os.path.join(HERE, f".bench_{'_'.join(c.strip('-') for c in cfg)}.json")
        cmd = ["/usr/bin/time", "-v", sys.executable, os.path.abspath(__file__), *cfg, "--json", tmp]
        print("$", " ".join(cmd), flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stdout, p.stderr)
            raise SystemExit(p.returncode)
        with open(tmp) as f:
            r = json.load(f)
        os.unlink(tmp)
        for line in p.stderr.splitlines():
            line = line.strip()
            if line.startswith("Maximum resident set size"):
                r["time_v_max_rss_mb"] = int(line.split(":")[1]) / 1024
            elif line.startswith("Elapsed (wall clock) time"):
                r["time_v_wall"] = line.split(": ", 1)[1]
            elif line.startswith("User time"):
                r["time_v_user_s"] = float(line.split(":")[1])
        r["command"] = " ".join(cmd[2:]).replace(tmp, "OUT.json")
        print(json.dumps(r), flush=True)
        results.append(r)

    import importlib.metadata as md

    meta = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": {p: md.version(p) for p in ("py-hamt", "zarr", "xarray", "numpy", "dag-cbor", "multiformats", "blake3")},
    }
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    write_md(out_json.replace(".json", ".md"), meta, results)


def write_md(path, meta, results):
    L = [f"# py-hamt {meta['versions']['py-hamt']} baseline", "",
         f"python {meta['python']}, {meta['platform']}, {meta['cpus']} CPUs", ""]
    L.append("| cas | N | set ops/s | make_ro s | get seq cold ops/s | get seq warm ops/s | "
             "gather1000 cold ops/s | gather1000 warm ops/s | keys() cold keys/s | keys() warm keys/s | "
             "len() warm s | peak RSS MB |")
    L.append("|" + "---|" * 12)
    for r in results:
        if r["bench"] != "hamt":
            continue
        L.append(
            f"| {r['cas']} | {r['n']:,} | {r['set_ops_per_s']:,.0f} | {r['make_ro_s']:.2f} | "
            f"{r['get_seq_cold_ops_per_s']:,.0f} | {r['get_seq_warm_ops_per_s']:,.0f} | "
            f"{r['get_gather1000_cold_ops_per_s']:,.0f} | {r['get_gather1000_warm_ops_per_s']:,.0f} | "
            f"{r['keys_cold_keys_per_s']:,.0f} | {r['keys_warm_keys_per_s']:,.0f} | {r['len_warm_s']:.3f} | "
            f"{r.get('time_v_max_rss_mb', r['peak_rss_mb']):,.0f} |"
        )
    L += ["", "| cas | data MB | chunks | write s (to_zarr + make_ro) | write MB/s | read s (open + load) | "
          "read MB/s | peak RSS MB |", "|" + "---|" * 8]
    for r in results:
        if r["bench"] != "zarr":
            continue
        L.append(
            f"| {r['cas']} | {r['data_mb']:.0f} | {r['array_chunks']:,} | {r['write_s']:.2f} + {r['make_ro_s']:.2f} | "
            f"{r['write_MBps']:.1f} | {r['open_s']:.2f} + {r['load_s']:.2f} | {r['read_MBps']:.1f} | "
            f"{r.get('time_v_max_rss_mb', r['peak_rss_mb']):,.0f} |"
        )
    L += ["", "Commands:", ""] + [f"    /usr/bin/time -v {r['command']}" for r in results]
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["hamt", "zarr", "all"])
    ap.add_argument("--cas", choices=["inmemory", "mimic"], default="inmemory")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--mbs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--shape", default="100,500,500")
    ap.add_argument("--chunks", default="1,100,50")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.what == "all":
        run_all(a.json or os.path.join(HERE, "bench_results.json"))
        return
    if a.what == "hamt":
        r = asyncio.run(bench_hamt(a.cas, a.n, a.value_size, a.mbs, a.seed))
    else:
        r = bench_zarr(a.cas, tuple(map(int, a.shape.split(","))), tuple(map(int, a.chunks.split(","))), a.seed)
    txt = json.dumps(r, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(txt)
    print(txt)


if __name__ == "__main__":
    main()
