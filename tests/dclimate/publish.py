"""Publishes the test dataset to the IPFS node in every layout dClimate reads, with py-hamt
3.6.0 and with ipfs_hamt, the way dClimate's publishing code drives them; prints
``{name: root CID}`` as JSON. Runs in the venv that has both libraries (target/pkgenv). Written without consolidated
metadata: zarr builds it in ``list_dir`` order, which py-hamt leaves to a Python set, so with
it even two py-hamt runs give different roots.

    python publish.py RPC_URL GATEWAY_URL
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings

import ipfs_hamt
import py_hamt
from multiformats import CID

from dataset import dataset

warnings.simplefilter("ignore", FutureWarning)


async def sharded_v2(lib, cas, ds, groups=("0",)):
    store = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=7)
    for g in groups:
        ds.to_zarr(store=store, mode="w", group=g, zarr_format=3, consolidated=False)
    return await store.flush()


async def sharded_v1(lib, cas, ds):
    store = await lib.ShardedZarrStore.open(
        cas=cas, read_only=False, array_shape=ds.precip.shape, chunk_shape=(5, 3, 4),
        chunks_per_shard=7,
    )
    ds.to_zarr(store=store, mode="w", zarr_format=3, consolidated=False)
    return await store.flush()


async def hamt(lib, cas, ds):
    h = await lib.HAMT.build(cas=cas, values_are_bytes=True)
    ds.to_zarr(
        store=lib.ZarrHAMTStore(h, read_only=False), mode="w", zarr_format=3, consolidated=False
    )
    await h.make_read_only()
    return str(h.root_node_id)


async def hamt_continued(lib, cas, ds):
    """dClimate's append flow: write a first part, then continue that HAMT by assigning
    ``root_node_id`` on a fresh writable HAMT and appending along time."""
    h = await lib.HAMT.build(cas=cas, values_are_bytes=True)
    ds.isel(time=slice(0, 10)).to_zarr(
        store=lib.ZarrHAMTStore(h, read_only=False), mode="w", zarr_format=3, consolidated=False
    )
    await h.make_read_only()
    first = h.root_node_id
    h2 = await lib.HAMT.build(cas=cas, values_are_bytes=True)
    h2.root_node_id = first
    ds.isel(time=slice(10, None)).to_zarr(
        store=lib.ZarrHAMTStore(h2, read_only=False),
        mode="a",
        append_dim="time",
        consolidated=False,
    )
    await h2.make_read_only()
    return str(h2.root_node_id)


async def sharded_continued(lib, cas, ds):
    """Append to a published v2 store opened by a CID object (not a string), after reading
    the private geometry dClimate's publisher checks (returned with the root)."""
    first = await sharded_v2(lib, cas, ds.isel(time=slice(0, 10)))
    store = await lib.ShardedZarrStore.open(cas=cas, read_only=False, root_cid=CID.decode(first))
    geometry = [
        sorted(store._v2_top_level_groups()),
        store._v2_requires_explicit_group_for_root_read(),
        list(store._array_shape),
        list(store._chunks_per_dim),
    ]
    ds.isel(time=slice(10, None)).to_zarr(
        store=store, mode="a", append_dim="time", group="0", zarr_format=3, consolidated=False
    )
    return await store.flush(), geometry


async def main(rpc: str, gateway: str) -> None:
    ds = dataset()
    out = {}
    for name, lib in (("py_hamt", py_hamt), ("ipfs_hamt", ipfs_hamt)):
        async with lib.KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway) as cas:
            out[f"{name}:sharded_v2"] = await sharded_v2(lib, cas, ds)
            out[f"{name}:sharded_v2_multigroup"] = await sharded_v2(lib, cas, ds, ("0", "1"))
            out[f"{name}:sharded_v1"] = await sharded_v1(lib, cas, ds)
            out[f"{name}:hamt"] = await hamt(lib, cas, ds)
            out[f"{name}:hamt_continued"] = await hamt_continued(lib, cas, ds)
            root, geometry = await sharded_continued(lib, cas, ds)
            out[f"{name}:sharded_continued"] = root
            out[f"{name}:geometry"] = geometry
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
