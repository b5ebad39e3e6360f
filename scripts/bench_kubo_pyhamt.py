#!/usr/bin/env python
"""py-hamt 3.6.0 with KuboCAS against an IPFS node: write N 100-byte values + commit
(make_read_only), then read them all back through the gateway. The workload of
crates/ipfs-hamt/examples/kubo_bench.rs; values and keys as in scripts/bench_pyhamt.py,
so both print the same root.

    python bench_kubo_pyhamt.py RPC_URL GATEWAY_URL [N] [GATHER_SAMPLE]
"""

import asyncio
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def value_for(i: int, size: int) -> bytes:
    v = f"value-{i:012d}-".encode()
    return (v * (size // len(v) + 1))[:size]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def main(rpc: str, gw: str, n: int, gather: int) -> dict:
    from py_hamt import HAMT, KuboCAS

    keys = [f"key-{i}" for i in range(n)]
    vals = [value_for(i, 100) for i in range(n)]
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gw) as cas:
        t0 = time.perf_counter()
        hamt = await HAMT.build(cas=cas, values_are_bytes=True)
        for k, v in zip(keys, vals):
            await hamt.set(k, v)
        await hamt.make_read_only()
        write_s = time.perf_counter() - t0
        root = hamt.root_node_id

    log(f"write+commit {n}: {write_s:.1f} s")

    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gw) as cas:
        ro = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)
        t0 = time.perf_counter()
        for k, v in zip(keys, vals):
            if await ro.get(k) != v:
                raise AssertionError("bad value")
        read_sequential_s = time.perf_counter() - t0
    log(f"sequential read {n}: {read_sequential_s:.1f} s")

    # asyncio.gather over a fresh reader: much slower than sequential reads here, so only a
    # sample of GATHER keys is timed.
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gw) as cas:
        ro = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)
        t0 = time.perf_counter()
        out = await asyncio.gather(*(ro.get(keys[i]) for i in range(gather)))
        if any(o != vals[i] for i, o in enumerate(out)):
            raise AssertionError("bad value")
        read_gather_s = time.perf_counter() - t0
    log(f"gather read {gather}: {read_gather_s:.1f} s")

    return {"impl": "py-hamt 3.6.0", "n": n, "root": str(root),
            "write_commit_s": round(write_s, 3), "read_sequential_s": round(read_sequential_s, 3),
            "gather_keys": gather, "read_gather_s": round(read_gather_s, 3)}


if __name__ == "__main__":
    rpc, gw = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    gather = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    print(json.dumps(asyncio.run(main(rpc, gw, n, min(n, gather)))))
