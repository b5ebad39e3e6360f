#!/usr/bin/env python
"""py-hamt 3.6.0 with KuboCAS against an IPFS node: write N 100-byte values + commit
(make_read_only), then read them all back through the gateway. The workload of
crates/ipfs-hamt/examples/kubo_bench.rs; values and keys as in shared/golden/bench_pyhamt.py,
so both print the same root.

    python bench_kubo_pyhamt.py RPC_URL GATEWAY_URL [N]
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


async def main(rpc: str, gw: str, n: int) -> dict:
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

    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gw) as cas:
        ro = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)
        t0 = time.perf_counter()
        for s in range(0, n, 1000):
            part = list(range(s, min(n, s + 1000)))
            out = await asyncio.gather(*(ro.get(keys[i]) for i in part))
            if any(o != vals[i] for o, i in zip(out, part)):
                raise AssertionError("bad value")
        read_gather_s = time.perf_counter() - t0

    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gw) as cas:
        ro = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)
        t0 = time.perf_counter()
        for k in keys:
            await ro.get(k)
        read_sequential_s = time.perf_counter() - t0

    return {"impl": "py-hamt 3.6.0", "n": n, "root": str(root),
            "write_commit_s": round(write_s, 3), "read_gather1000_s": round(read_gather_s, 3),
            "read_sequential_s": round(read_sequential_s, 3)}


if __name__ == "__main__":
    rpc, gw = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    print(json.dumps(asyncio.run(main(rpc, gw, n))))
