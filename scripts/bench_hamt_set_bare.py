#!/usr/bin/env python
"""100,000 bare ``_core.Hamt.set`` calls on InMemoryCAS (no coroutine per call), then one call
that drains the set queue: the pace of the Rust set worker (crates/ipfs-hamt-py/src/pipeline.rs)
as Python sees it. bench_pyhamt.py's workload: keys ``key-{i}``, 100-byte values,
``max_bucket_size`` 4.

    PYTHONPATH=/tmp/relpkg target/pkgenv/bin/python scripts/bench_hamt_set_bare.py [n]
"""

import asyncio
import sys
import time

from ipfs_hamt import HAMT, InMemoryCAS


def value_for(i: int, size: int = 100) -> bytes:
    v = f"value-{i:012d}-".encode()
    return (v * (size // len(v) + 1))[:size]


async def main(n: int) -> None:
    keys = [f"key-{i}" for i in range(n)]
    vals = [value_for(i) for i in range(n)]
    hamt = await HAMT.build(cas=InMemoryCAS(), values_are_bytes=True, max_bucket_size=4)
    core = hamt._c
    t = time.perf_counter()
    for k, v in zip(keys, vals):
        core.set(k, v)
    core.cache_size()  # drains the queue: every set above is applied when it returns
    dt = time.perf_counter() - t
    print(f"bare _core.Hamt.set: {dt / n * 1e9:.0f} ns/key ({n / dt:,.0f}/s)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
