"""py-hamt 3.6.0 golden vectors: plain HAMT cases.

Run through scripts/make-golden.sh (a pinned Python 3.12 venv with py-hamt 3.6.0).

Outputs (under $GOLDEN_OUT, default tests/golden):
    cars/<case>.car      CARv1, root = HAMT root, blocks = every block reachable
                         from the root (HAMT nodes + value blocks), pre-order DFS
    orders/<name>.json   insertion permutations used by the shuffled cases
    cases.json           index of every case (params, root, counts, car file, sha256)
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata as md
import json
import os
import random
import sys
from collections import Counter

import dag_cbor
from multiformats import CID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mimic_cas import MimicKuboCAS, cas_from_car, reachable, write_car  # noqa: E402

from py_hamt import HAMT  # noqa: E402

# Output directory: $GOLDEN_OUT (scripts/make-golden.sh sets it), else tests/golden.
OUT = os.path.abspath(os.environ.get("GOLDEN_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CARS = os.path.join(OUT, "cars")
ORDERS = os.path.join(OUT, "orders")
os.makedirs(CARS, exist_ok=True)
os.makedirs(ORDERS, exist_ok=True)

SHUFFLE_SEED = 42


def key(i: int) -> str:
    return f"key-{i}"


def bval(i: int) -> bytes:
    return f"value-{i}".encode()


def cval(i: int):
    return {"i": i, "s": f"v{i}"}


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_stats(blocks: dict, root: CID) -> dict:
    """Walk the HAMT and collect structural statistics."""
    nodes = 0
    links = 0
    nonempty_buckets = 0
    bucket_sizes: Counter = Counter()
    max_depth = 0
    stack = [(root, 0)]
    while stack:
        cid, depth = stack.pop()
        max_depth = max(max_depth, depth)
        node = dag_cbor.decode(blocks[cid])
        assert isinstance(node, list) and len(node) == 256
        nodes += 1
        for slot in node:
            if isinstance(slot, list):
                assert len(slot) == 1
                links += 1
                stack.append((slot[0], depth + 1))
            else:
                assert isinstance(slot, dict)
                if slot:
                    nonempty_buckets += 1
                    bucket_sizes[len(slot)] += 1
    return {
        "hamt_nodes": nodes,
        "links": links,
        "nonempty_buckets": nonempty_buckets,
        "bucket_size_histogram": {str(k): v for k, v in sorted(bucket_sizes.items())},
        "max_depth": max_depth,
    }


async def build(
    items: list[tuple[str, object]],
    max_bucket_size: int,
    values_are_bytes: bool,
    cas: MimicKuboCAS | None = None,
) -> tuple[HAMT, MimicKuboCAS]:
    cas = cas or MimicKuboCAS()
    hamt = await HAMT.build(
        cas=cas, max_bucket_size=max_bucket_size, values_are_bytes=values_are_bytes
    )
    for k, v in items:
        await hamt.set(k, v)
    await hamt.make_read_only()
    return hamt, cas


async def verify_from_car(car_path: str, expected: dict, values_are_bytes: bool) -> None:
    """Re-open the HAMT from nothing but the CAR file and check every mapping."""
    root, cas = cas_from_car(car_path)
    ro = await HAMT.build(
        cas=cas, root_node_id=root, read_only=True, values_are_bytes=values_are_bytes
    )
    assert await ro.len() == len(expected), (car_path, await ro.len(), len(expected))
    got_keys = [k async for k in ro.keys()]
    assert sorted(got_keys) == sorted(expected), car_path
    for k, v in expected.items():
        assert await ro.get(k) == v, (car_path, k)
    # a key that was never inserted must raise KeyError
    try:
        await ro.get("definitely-not-a-key")
    except KeyError:
        pass
    else:
        raise AssertionError("missing key did not raise")


def record_case(
    cases: list,
    name: str,
    params: dict,
    hamt: HAMT,
    cas: MimicKuboCAS,
    expected: dict,
    extra: dict | None = None,
) -> dict:
    root: CID = hamt.root_node_id
    order = reachable(cas.blocks, root)
    car_name = f"cars/{name}.car"
    car_path = os.path.join(OUT, car_name)
    size = write_car(car_path, root, cas.blocks, order)
    codecs = Counter(c.codec.name for c in order)
    entry = {
        "name": name,
        "params": params,
        "root": str(root),
        "blocks": len(order),
        "hamt_node_blocks": codecs.get("dag-cbor", 0),
        "value_blocks": codecs.get("raw", 0),
        "blocks_written_to_cas": len(cas.blocks),
        "cas_save_calls": cas.save_calls,
        "key_count": len(expected),
        "car": car_name,
        "car_bytes": size,
        "car_sha256": sha256_file(car_path),
        "root_block_hex_prefix": cas.blocks[root][:64].hex(),
        "tree": tree_stats(cas.blocks, root),
    }
    if extra:
        entry.update(extra)
    cases.append(entry)
    return entry


async def main() -> None:
    cases: list = []
    notes: dict = {}

    # ---------------------------------------------------------------- bytes
    for n in (0, 1, 5, 100, 1000, 10000):
        items = [(key(i), bval(i)) for i in range(n)]
        hamt, cas = await build(items, 4, True)
        expected = dict(items)
        e = record_case(
            cases,
            f"bytes_n{n}_mbs4_ordered",
            {
                "n": n,
                "max_bucket_size": 4,
                "values_are_bytes": True,
                "order": "ascending i",
                "key": "key-{i}",
                "value": "utf8('value-{i}')",
            },
            hamt,
            cas,
            expected,
        )
        await verify_from_car(os.path.join(OUT, e["car"]), expected, True)
        print(e["name"], e["root"], e["blocks"], flush=True)

    # ------------------------------------------------------ bucket sizes
    for mbs in (1, 16):
        items = [(key(i), bval(i)) for i in range(1000)]
        hamt, cas = await build(items, mbs, True)
        expected = dict(items)
        e = record_case(
            cases,
            f"bytes_n1000_mbs{mbs}_ordered",
            {
                "n": 1000,
                "max_bucket_size": mbs,
                "values_are_bytes": True,
                "order": "ascending i",
                "key": "key-{i}",
                "value": "utf8('value-{i}')",
            },
            hamt,
            cas,
            expected,
        )
        await verify_from_car(os.path.join(OUT, e["car"]), expected, True)
        print(e["name"], e["root"], e["blocks"], flush=True)

    # ------------------------------------------------------ dag-cbor values
    items = [(key(i), cval(i)) for i in range(100)]
    hamt, cas = await build(items, 4, False)
    expected = dict(items)
    e = record_case(
        cases,
        "cbor_n100_mbs4_ordered",
        {
            "n": 100,
            "max_bucket_size": 4,
            "values_are_bytes": False,
            "order": "ascending i",
            "key": "key-{i}",
            "value": "{'i': i, 's': 'v{i}'} dag-cbor encoded, stored as a *raw* (0x55) block",
        },
        hamt,
        cas,
        expected,
    )
    await verify_from_car(os.path.join(OUT, e["car"]), expected, False)
    print(e["name"], e["root"], e["blocks"], flush=True)

    # ------------------------------------------------------ shuffled order
    order_equal = {}
    for n, mbs in ((5, 4), (100, 4), (1000, 1), (1000, 4), (1000, 16), (10000, 4)):
        perm = list(range(n))
        random.Random(SHUFFLE_SEED).shuffle(perm)
        order_file = f"orders/shuffle_seed{SHUFFLE_SEED}_n{n}.json"
        with open(os.path.join(OUT, order_file), "w") as f:
            json.dump(perm, f)
        items = [(key(i), bval(i)) for i in perm]
        hamt, cas = await build(items, mbs, True)
        expected = dict(items)
        ordered_name = f"bytes_n{n}_mbs{mbs}_ordered"
        ordered_root = next(c["root"] for c in cases if c["name"] == ordered_name)
        e = record_case(
            cases,
            f"bytes_n{n}_mbs{mbs}_shuffled",
            {
                "n": n,
                "max_bucket_size": mbs,
                "values_are_bytes": True,
                "order": f"random.Random({SHUFFLE_SEED}).shuffle(list(range(n))), see order_file",
                "order_file": order_file,
                "key": "key-{i}",
                "value": "utf8('value-{i}')",
            },
            hamt,
            cas,
            expected,
            {"same_root_as": ordered_name if str(hamt.root_node_id) == ordered_root else None},
        )
        order_equal[f"n{n}_mbs{mbs}"] = str(hamt.root_node_id) == ordered_root
        await verify_from_car(os.path.join(OUT, e["car"]), expected, True)
        print(e["name"], e["root"], e["blocks"], "same-as-ordered:", order_equal[f"n{n}_mbs{mbs}"], flush=True)

    # descending order as a second permutation
    items = [(key(i), bval(i)) for i in reversed(range(1000))]
    hamt, _ = await build(items, 4, True)
    order_equal["n1000_mbs4_descending"] = str(hamt.root_node_id) == next(
        c["root"] for c in cases if c["name"] == "bytes_n1000_mbs4_ordered"
    )
    notes["insertion_order_independent"] = order_equal

    # ------------------------------------------------------ deletes
    delete_info = {}
    for mbs in (1, 4, 16):
        items = [(key(i), bval(i)) for i in range(1000)]
        cas = MimicKuboCAS()
        hamt = await HAMT.build(cas=cas, max_bucket_size=mbs, values_are_bytes=True)
        for k, v in items:
            await hamt.set(k, v)
        await hamt.make_read_only()
        root_before = hamt.root_node_id
        await hamt.enable_write()
        for i in range(0, 1000, 3):
            await hamt.delete(key(i))
        await hamt.make_read_only()
        expected = {key(i): bval(i) for i in range(1000) if i % 3 != 0}
        # fresh build of the survivors for comparison
        fresh, _ = await build(list(expected.items()), mbs, True)
        same = str(fresh.root_node_id) == str(hamt.root_node_id)
        e = record_case(
            cases,
            f"delete_n1000_mbs{mbs}_every3rd",
            {
                "n": 1000,
                "max_bucket_size": mbs,
                "values_are_bytes": True,
                "ops": "set key-0..key-999 ascending; make_read_only (root_before); enable_write; "
                "delete key-i for i in range(0, 1000, 3) ascending (334 deletes); make_read_only",
                "key": "key-{i}",
                "value": "utf8('value-{i}')",
            },
            hamt,
            cas,
            expected,
            {
                "root_before_delete": str(root_before),
                "fresh_build_of_survivors_root": str(fresh.root_node_id),
                "equals_fresh_build": same,
            },
        )
        delete_info[f"mbs{mbs}"] = same
        await verify_from_car(os.path.join(OUT, e["car"]), expected, True)
        print(e["name"], e["root"], e["blocks"], "equals fresh build:", same, flush=True)

    # delete in the same write session (no intermediate flush)
    cas = MimicKuboCAS()
    hamt = await HAMT.build(cas=cas, max_bucket_size=4, values_are_bytes=True)
    for i in range(1000):
        await hamt.set(key(i), bval(i))
    for i in range(0, 1000, 3):
        await hamt.delete(key(i))
    await hamt.make_read_only()
    delete_info["mbs4_same_session"] = str(hamt.root_node_id) == next(
        c["root"] for c in cases if c["name"] == "delete_n1000_mbs4_every3rd"
    )

    # delete everything -> empty root
    cas = MimicKuboCAS()
    hamt = await HAMT.build(cas=cas, max_bucket_size=4, values_are_bytes=True)
    for i in range(100):
        await hamt.set(key(i), bval(i))
    await hamt.make_read_only()
    await hamt.enable_write()
    for i in range(100):
        await hamt.delete(key(i))
    await hamt.make_read_only()
    e = record_case(
        cases,
        "delete_all_n100_mbs4",
        {
            "n": 100,
            "max_bucket_size": 4,
            "values_are_bytes": True,
            "ops": "set key-0..key-99; make_read_only; enable_write; delete all 100; make_read_only",
        },
        hamt,
        cas,
        {},
        {
            "equals_empty_root": str(hamt.root_node_id)
            == next(c["root"] for c in cases if c["name"] == "bytes_n0_mbs4_ordered")
        },
    )
    delete_info["delete_all_gives_empty_root"] = e["equals_empty_root"]
    await verify_from_car(os.path.join(OUT, e["car"]), {}, True)
    # deleting a missing key raises KeyError
    await hamt.enable_write()
    try:
        await hamt.delete("nope")
        delete_info["delete_missing_raises_keyerror"] = False
    except KeyError:
        delete_info["delete_missing_raises_keyerror"] = True
    notes["delete"] = delete_info

    # ------------------------------------------------------ overwrite
    cas = MimicKuboCAS()
    hamt = await HAMT.build(cas=cas, max_bucket_size=4, values_are_bytes=True)
    for i in range(100):
        await hamt.set(key(i), bval(i))
    await hamt.make_read_only()
    await hamt.enable_write()
    for i in range(10):
        await hamt.set(key(i), f"new-{i}".encode())
    await hamt.make_read_only()
    expected = {key(i): bval(i) for i in range(100)}
    for i in range(10):
        expected[key(i)] = f"new-{i}".encode()
    fresh, _ = await build(list(expected.items()), 4, True)
    e = record_case(
        cases,
        "overwrite_n100_mbs4",
        {
            "n": 100,
            "max_bucket_size": 4,
            "values_are_bytes": True,
            "ops": "set key-0..key-99 = value-i; make_read_only; enable_write; "
            "set key-0..key-9 = utf8('new-{i}'); make_read_only",
        },
        hamt,
        cas,
        expected,
        {"equals_fresh_build": str(fresh.root_node_id) == str(hamt.root_node_id)},
    )
    await verify_from_car(os.path.join(OUT, e["car"]), expected, True)
    notes["overwrite_equals_fresh_build"] = e["equals_fresh_build"]
    print(e["name"], e["root"], e["blocks"], flush=True)

    # ------------------------------------------------------ two-phase build
    cas = MimicKuboCAS()
    hamt = await HAMT.build(cas=cas, max_bucket_size=4, values_are_bytes=True)
    for i in range(500):
        await hamt.set(key(i), bval(i))
    await hamt.make_read_only()
    await hamt.enable_write()
    for i in range(500, 1000):
        await hamt.set(key(i), bval(i))
    await hamt.make_read_only()
    notes["two_phase_build_equals_single_phase"] = str(hamt.root_node_id) == next(
        c["root"] for c in cases if c["name"] == "bytes_n1000_mbs4_ordered"
    )

    versions = {
        p: md.version(p)
        for p in (
            "py-hamt",
            "zarr",
            "xarray",
            "numpy",
            "dag-cbor",
            "multiformats",
            "blake3",
            "pycryptodome",
            "numcodecs",
        )
    }
    versions["python"] = sys.version.split()[0]

    index = {
        "description": "py-hamt 3.6.0 golden vectors (HAMT cases). Zarr cases are in zarr_cases.json.",
        "cas": "MimicKuboCAS: CIDv1, codec from save(codec) ('dag-cbor' 0x71 for nodes, 'raw' 0x55 for values), "
        "multihash blake3 (0x1e) 32-byte digest of the block bytes; CID string = multibase base32 ('b...')",
        "car_layout": "CARv1; header varint(len) + dag-cbor {roots:[root], version:1}; then per block "
        "varint(len(cid)+len(data)) cid-bytes data; blocks = pre-order DFS from root over every CID "
        "found in dag-cbor blocks (node slots 0..255 in order, bucket entries in canonical key order), "
        "each block once",
        "versions": versions,
        "notes": notes,
        "cases": cases,
    }
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(json.dumps(notes, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
