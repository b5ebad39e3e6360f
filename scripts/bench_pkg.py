#!/usr/bin/env python
"""py-hamt 3.6.0 vs ipfs_hamt on py-hamt's own benchmark workloads, same machine, same run.

The workloads are those of scripts/bench_pyhamt.py (the py-hamt baseline), imported
from that file unchanged:

* ``hamt``: HAMT set / make_read_only / get (sequential and gathered, cold and warm) / keys() /
  len() for 10,000 and 100,000 keys with 100-byte values, on InMemoryCAS;
* ``zarr``: an xarray round trip of ~100 MB float32 in 5,000 chunks (to_zarr + make_read_only,
  then open_zarr + load) through ZarrHAMTStore on InMemoryCAS.

Each (library, workload) runs in its own subprocess. bench_pyhamt.py does ``from py_hamt import
...`` inside its functions, so for ipfs_hamt the subprocess first aliases the module:
``sys.modules["py_hamt"] = ipfs_hamt``; the benchmark code is otherwise the same for both.

Both libraries must be importable by one Python (3.12): py-hamt==3.6.0 plus a RELEASE build of
this package. With the venv that scripts/test-pkg.sh makes:

    PATH="$PWD/target/pkgenv/bin:$PATH" CARGO_BUILD_JOBS=1 \\
      target/pkgenv/bin/pip install --no-build-isolation --force-reinstall --no-deps .
    target/pkgenv/bin/python scripts/bench_pkg.py            # prints a markdown table
    target/pkgenv/bin/python scripts/bench_pkg.py --quick    # 10k keys + a 1/10 size zarr

(``pip install .`` without MATURIN_PEP517_ARGS builds maturin's release profile; test-pkg.sh
installs a dev-profile build, which is far slower. ``maturin develop --release`` works too.)
The zarr workload also runs once on zarr's own MemoryStore (column "floor"): the cost of
zarr-python, xarray and dask alone, which bounds what any Zarr store can gain on it.
Options: --only hamt|zarr, --repeat N (best of N runs per config), --mimic (also the golden
MimicKuboCAS, CIDv1 ids), --json FILE, --bench PATH (bench_pyhamt.py elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BENCH = os.path.join(HERE, "bench_pyhamt.py")
LIBS = ["py_hamt", "ipfs_hamt"]


def _worker(lib: str, bench_path: str, argv: list[str], out: str) -> None:
    """Runs one config of bench_pyhamt.py with ``lib`` as ``py_hamt``; writes its JSON to out."""
    import asyncio
    import importlib.util

    if lib == "ipfs_hamt":
        import ipfs_hamt

        sys.modules["py_hamt"] = ipfs_hamt
    elif lib == "memorystore":
        sys.modules["py_hamt"] = _memorystore_module()
    import py_hamt

    sys.path.insert(0, os.path.dirname(bench_path))
    spec = importlib.util.spec_from_file_location("bench_pyhamt", bench_path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    ap = argparse.ArgumentParser()
    ap.add_argument("what")
    ap.add_argument("--cas", default="inmemory")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--shape", default="100,500,500")
    ap.add_argument("--chunks", default="1,100,50")
    a = ap.parse_args(argv)
    if a.what == "hamt":
        r = asyncio.run(bench.bench_hamt(a.cas, a.n, 100, 4, 1234))
    else:
        shape = tuple(map(int, a.shape.split(",")))
        chunks = tuple(map(int, a.chunks.split(",")))
        r = bench.bench_zarr(a.cas, shape, chunks, 1234)
    r["lib"] = lib
    r["lib_file"] = os.path.dirname(py_hamt.__file__)
    with open(out, "w") as f:
        json.dump(r, f)


def _memorystore_module():
    """A stand-in ``py_hamt`` whose ZarrHAMTStore is zarr's own MemoryStore (a dict of Buffers).

    bench_zarr() run on it measures what zarr-python, xarray and dask cost by themselves on the
    same dataset: the floor that no Store implementation can go below.
    """
    import types

    from zarr.storage import MemoryStore

    class InMemoryCAS:
        def __init__(self):
            self.store = {}  # bench_zarr sums len() of these; the data lives in self.zarr
            self.zarr = {}

    class HAMT:
        def __init__(self, cas, read_only):
            self.cas, self.read_only, self.root_node_id = cas, read_only, b"memorystore"

        @classmethod
        async def build(cls, cas, read_only=False, **_):
            return cls(cas, read_only)

        async def make_read_only(self):
            self.read_only = True

    def ZarrHAMTStore(hamt, read_only=False):
        return MemoryStore(store_dict=hamt.cas.zarr, read_only=read_only)

    m = types.ModuleType("py_hamt")
    m.InMemoryCAS, m.HAMT, m.ZarrHAMTStore = InMemoryCAS, HAMT, ZarrHAMTStore
    m.__file__ = "zarr.storage.MemoryStore"
    return m


def _run(python: str, lib: str, bench_path: str, cfg: list[str]) -> dict:
    out = f"/tmp/bench_pkg_{os.getpid()}_{lib}.json"
    cmd = [python, os.path.abspath(__file__), "--worker", lib, "--bench", bench_path,
           "--out", out, "--", *cfg]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"bench_pkg: {lib} {' '.join(cfg)} failed ({p.returncode})")
    with open(out) as f:
        r = json.load(f)
    os.unlink(out)
    r["process_s"] = time.perf_counter() - t0
    return r


def _better(a: dict, b: dict, key: str, higher_is_better: bool) -> dict:
    if a is None:
        return b
    return a if (a[key] >= b[key]) == higher_is_better else b


HAMT_ROWS = [  # (label, key, higher is better)
    ("set ops/s", "set_ops_per_s", True),
    ("make_read_only s", "make_ro_s", False),
    ("get seq cold ops/s", "get_seq_cold_ops_per_s", True),
    ("get seq warm ops/s", "get_seq_warm_ops_per_s", True),
    ("gather(1000) cold ops/s", "get_gather1000_cold_ops_per_s", True),
    ("gather(1000) warm ops/s", "get_gather1000_warm_ops_per_s", True),
    ("keys() cold keys/s", "keys_cold_keys_per_s", True),
    ("keys() warm keys/s", "keys_warm_keys_per_s", True),
    ("len() warm s", "len_warm_s", False),
    ("peak RSS MB", "peak_rss_mb", False),
]
ZARR_ROWS = [
    ("write s (to_zarr + make_ro)", "write_total_s", False),
    ("read s (open + load)", "read_total_s", False),
    ("round trip s", "roundtrip_s", False),
    ("write MB/s", "write_MBps", True),
    ("read MB/s", "read_MBps", True),
    ("peak RSS MB", "peak_rss_mb", False),
]


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--bench", default=os.environ.get("BENCH_PYHAMT", DEFAULT_BENCH))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--only", choices=["hamt", "zarr"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mimic", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("rest", nargs="*")
    a = ap.parse_args()
    if a.worker:
        _worker(a.worker, a.bench, a.rest, a.out)
        return
    if not os.path.exists(a.bench):
        raise SystemExit(f"bench_pkg: {a.bench} not found (use --bench PATH)")

    cas_kinds = ["inmemory"] + (["mimic"] if a.mimic else [])
    configs: list[list[str]] = []
    if a.only in (None, "hamt"):
        for cas in cas_kinds:
            for n in ([10000] if a.quick else [10000, 100000]):
                configs.append(["hamt", "--cas", cas, "--n", str(n)])
    if a.only in (None, "zarr"):
        for cas in cas_kinds:
            configs.append(["zarr", "--cas", cas] + (["--shape", "10,500,500"] if a.quick else []))

    results = []
    for cfg in configs:
        pair = {}
        for lib in LIBS + (["memorystore"] if cfg[0] == "zarr" else []):
            best = None
            for _ in range(a.repeat):
                r = _run(a.python, lib, a.bench, cfg)
                if r["bench"] == "zarr":
                    r["roundtrip_s"] = r["write_total_s"] + r["read_total_s"]
                    best = _better(best, r, "roundtrip_s", False)
                else:
                    best = _better(best, r, "set_s", False)
                print(f"{' '.join(cfg)} [{lib}] done in {r['process_s']:.1f}s", file=sys.stderr,
                      flush=True)
            pair[lib] = best
        results.append((cfg, pair))

    import platform

    lines = [f"# py-hamt 3.6.0 vs ipfs_hamt (bench_pyhamt.py workloads)", "",
             f"python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs; "
             f"ipfs_hamt from {results[0][1]['ipfs_hamt']['lib_file'] if results else '?'}", "",
             "| workload | metric | py-hamt | ipfs_hamt | ipfs_hamt speed-up | zarr MemoryStore (floor) |",
             "|---|---|---:|---:|---:|---:|"]
    for cfg, pair in results:
        old, new = pair["py_hamt"], pair["ipfs_hamt"]
        if old["bench"] == "hamt":
            name = f"HAMT {old['n']:,} keys, {old['cas']}"
            rows = HAMT_ROWS
        else:
            name = f"xarray {old['data_mb']:.0f} MB / {old['array_chunks']:,} chunks, {old['cas']}"
            rows = ZARR_ROWS
        for label, key, higher in rows:
            o, n = old[key], new[key]
            ratio = (n / o if higher else o / n) if o and n else float("nan")
            floor = pair.get("memorystore")
            fl = _fmt(floor[key]) if floor and key in floor else ""
            lines.append(f"| {name} | {label} | {_fmt(o)} | {_fmt(n)} | {ratio:.1f}x | {fl} |")
        if old["bench"] == "hamt":
            same = old["root"] == new["root"]
            lines.append(f"| {name} | same root | {old['root'][:16]}… | "
                         f"{new['root'][:16]}… | {'yes' if same else 'NO'} | |")
    if any("memorystore" in p for _, p in results):
        lines += ["", "zarr MemoryStore (floor): the same bench_zarr() with zarr's in-memory dict "
                  "store in place of ZarrHAMTStore, i.e. what zarr-python, xarray and dask cost "
                  "by themselves."]
    text = "\n".join(lines)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"config": c, **p} for c, p in results], f, indent=2)


if __name__ == "__main__":
    main()
