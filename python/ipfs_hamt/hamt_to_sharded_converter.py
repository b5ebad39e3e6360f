"""``convert_hamt_to_sharded``: a Zarr dataset in a HAMT (``ZarrHAMTStore``) re-indexed as a
``sharded_zarr_v2`` store, as py-hamt 3.6.0's converter does it. No data is copied: the new
root points at the HAMT's value blocks. Run the command line with
``python -m ipfs_hamt.hamt_to_sharded_converter <hamt_cid>``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Optional

from multiformats import CID

from .hamt import HAMT
from .sharded_zarr_store import SHARDED_ZARR_V2, ShardedZarrStore
from .store import ContentAddressedStore, KuboCAS

__all__ = ["convert_hamt_to_sharded", "sharded_converter_cli"]

_METADATA_SUFFIXES = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")


def _is_metadata(key: str) -> bool:
    return key.endswith(_METADATA_SUFFIXES)


def _v3_key(path: str, coords: list[str]) -> str:
    tail = "/".join(coords)
    return f"{path}/c/{tail}" if path else f"c/{tail}"


def _chunk_key(key: str, ranks: dict[str, int]) -> Optional[str]:
    """The v3 ``<path>/c/<i>/...`` form of a HAMT chunk key, or None (metadata/unknown)."""
    if _is_metadata(key):
        return None
    path, _, last = key.rpartition("/")
    if "." in last:
        parts = last.split(".")
        if all(p.isdecimal() for p in parts):
            return _v3_key(path, parts)
    for apath in sorted(ranks, key=len, reverse=True):
        rest = key if apath == "" else key[len(apath) + 1 :] if key.startswith(apath + "/") else None
        if rest is None:
            continue
        parts = rest.split("/")
        if len(parts) == ranks[apath] and all(p.isdecimal() for p in parts):
            return _v3_key(apath, parts)
    if key.startswith("c/") or "/c/" in key:
        return key
    return None


def _pointer_text(key: str, pointer: Any) -> str:
    if isinstance(pointer, CID):
        return str(pointer.encode("base32"))
    if isinstance(pointer, (bytes, bytearray)):
        # An InMemoryCAS HAMT names blocks by multihash; the sharded store names them by CID
        # (py-hamt cannot convert these at all).
        return str(CID("base32", 1, "raw", bytes(pointer)))
    raise TypeError(f"Expected CID pointer for key {key!r}.")


async def convert_hamt_to_sharded(
    cas: ContentAddressedStore, hamt_root_cid: str, chunks_per_shard: int
) -> str:
    """Converts the HAMT at ``hamt_root_cid`` to a v2 sharded store on the same ``cas`` and
    returns the new root CID string (progress is printed, as py-hamt does)."""
    print(f"--- Starting Conversion from HAMT Root {hamt_root_cid} ---")
    started = time.perf_counter()
    print("Opening source HAMT store...")
    hamt = await HAMT.build(
        cas=cas, root_node_id=hamt_root_cid, values_are_bytes=True, read_only=True
    )
    print(f"Initializing new ShardedZarrStore v2 with {chunks_per_shard} chunks per shard...")
    dest = await ShardedZarrStore.open(
        cas=cas, read_only=False, chunks_per_shard=chunks_per_shard,
        manifest_version=SHARDED_ZARR_V2,
    )
    print("Destination store initialized.")
    print("Starting data migration...")
    keys = [k async for k in hamt.keys()]
    count = 0
    # Metadata first: each array registers its shard index before its chunks arrive.
    for key in keys:
        if _is_metadata(key):
            count += 1
            await dest.set_pointer(key, _pointer_text(key, await hamt.get_pointer(key)))
    ranks = {p: len(a.array_shape) for p, a in dest.array_indices.items()}
    for key in keys:
        target = _chunk_key(key, ranks)
        if target is None:
            if _is_metadata(key):
                continue
            raise ValueError(
                f"Cannot classify Zarr key {key!r} as metadata or chunk during conversion."
            )
        count += 1
        await dest.set_pointer(target, _pointer_text(key, await hamt.get_pointer(key)))
    print(f"Migration of {count} total keys complete.")
    print("Flushing new store to get final root CID...")
    root = await dest.flush()
    print("\n--- Conversion Complete! ---")
    print(f"Total time: {time.perf_counter() - started:.2f} seconds")
    print(f"New ShardedZarrStore Root CID: {root}")
    return root


async def sharded_converter_cli() -> None:
    """The command line: ``hamt_cid [--chunks-per-shard N] [--rpc-url U] [--gateway-url U]``.
    Errors are printed, not raised (py-hamt's behaviour)."""
    ap = argparse.ArgumentParser(description="Convert a Zarr HAMT store to a Sharded Zarr store.")
    ap.add_argument("hamt_cid", type=str, help="The root CID of the source Zarr HAMT store.")
    ap.add_argument("--chunks-per-shard", type=int, default=6250,
                    help="Number of chunk CIDs to store per shard in the new store.")
    ap.add_argument("--rpc-url", type=str, default="http://127.0.0.1:5001",
                    help="The URL of the IPFS Kubo RPC API.")
    ap.add_argument("--gateway-url", type=str, default="http://127.0.0.1:8080",
                    help="The URL of the IPFS Gateway.")
    args = ap.parse_args()
    async with KuboCAS(rpc_base_url=args.rpc_url, gateway_base_url=args.gateway_url) as cas:
        try:
            await convert_hamt_to_sharded(cas, args.hamt_cid, args.chunks_per_shard)
        except Exception as e:
            print(f"\nAn error occurred: {e}")


if __name__ == "__main__":
    asyncio.run(sharded_converter_cli())
