"""Golden vectors for py-hamt 3.6.0's ShardedZarrStore (sharded_zarr_v1 / v2)
and convert_hamt_to_sharded, written to the Kubo-mimicking CAS
(CIDv1, blake3-256, codec as requested; see mimic_cas.py).

    run through scripts/make-golden.sh

Writes (under $GOLDEN_OUT/sharded, default tests/golden/sharded) cars/<case>.car (CARv1, every block reachable from the case root, pre-order
DFS), sharded_cases.json (roots, decoded manifests and shards, expected reads,
list() order) and probes.json (key classification, errors, InMemoryCAS, read
modes, list_dir, clones).  Tiny datasets; runs in a few seconds on 1 core.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.metadata as md
import json
import os
import sys
import warnings

import dag_cbor
import numpy as np
import pandas as pd
import xarray as xr
import zarr.core.buffer
from multiformats import CID
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.sync import sync

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Output directory: $GOLDEN_OUT/sharded (scripts/make-golden.sh sets GOLDEN_OUT), else tests/golden/sharded.
HERE = os.path.join(
    os.path.abspath(os.environ.get("GOLDEN_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")),
    "sharded",
)
os.makedirs(os.path.join(HERE, "cars"), exist_ok=True)
from mimic_cas import MimicKuboCAS, cas_from_car, reachable, write_car  # noqa: E402

from py_hamt import (  # noqa: E402
    HAMT,
    InMemoryCAS,
    ShardedZarrStore,
    ZarrHAMTStore,
    convert_hamt_to_sharded,
)
from py_hamt.sharded_zarr_store import SHARDED_ZARR_V1, SHARDED_ZARR_V2  # noqa: E402

warnings.filterwarnings("ignore")
PROTO = zarr.core.buffer.default_buffer_prototype()
CPS = 3  # chunks_per_shard used by every case (shards straddle dimension rows)
ENC = {
    "temp": {"chunks": (2, 3, 4)},
    # fixed units so that chunks of stores starting at other dates can be grafted verbatim
    "time": {"chunks": (4,), "units": "days since 2024-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"},
}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def make_ds(t0: int = 0, nt: int = 8) -> xr.Dataset:
    """temp[t, y, x] = t*100 + y*10 + x (float32); t = 4 and 5 are all NaN."""
    t = np.arange(t0, t0 + nt)
    tt, yy, xx = np.meshgrid(t, np.arange(6), np.arange(8), indexing="ij")
    temp = (tt * 100 + yy * 10 + xx).astype("float32")
    temp[(tt == 4) | (tt == 5)] = np.nan
    return xr.Dataset(
        {"temp": (("time", "lat", "lon"), temp, {"units": "K"})},
        coords={
            "time": pd.date_range("2024-01-01", periods=40, freq="D")[t0 : t0 + nt],
            "lat": np.arange(6, dtype="float64") * 10.0,
            "lon": np.arange(8, dtype="float64") * 5.0,
        },
        attrs={"title": "sharded golden"},
    )


DATASET_DOC = {
    "temp": "float32[time, lat=6, lon=8] = t*100 + y*10 + x (t = absolute time index), "
    "all-NaN at t = 4 and 5 (zarr then does not store those chunks); attrs {units: K}; "
    "zarr chunks (2, 3, 4)",
    "time": "pd.date_range('2024-01-01', periods=40, freq='D')[t0:t0+nt], zarr chunks (4,), encoded int64 "
    "'days since 2024-01-01' (proleptic_gregorian)",
    "lat": "float64 10*arange(6) (one chunk)",
    "lon": "float64 5*arange(8) (one chunk)",
    "attrs": {"title": "sharded golden"},
    "zarr": "zarr_format=3, consolidated=False unless a case says otherwise; default codecs "
    "(bytes + zstd); chunk bytes are opaque to the sharded layout",
}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def to_json(obj):
    """Decoded DAG-CBOR -> JSON (DAG-JSON style links {'/': base32 CIDv1})."""
    if isinstance(obj, CID):
        return {"/": obj.set(base="base32").encode()}
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    if isinstance(obj, bytes):
        return {"/": {"bytes": base64.b64encode(obj).decode()}}
    return obj


def b32(cid) -> str:
    if isinstance(cid, str):
        cid = CID.decode(cid)
    return cid.set(base="base32").encode()


def open_store(cas, root=None, read_only=False, **kw) -> ShardedZarrStore:
    return sync(ShardedZarrStore.open(cas=cas, read_only=read_only, root_cid=root, **kw))


def describe_value(data: bytes | None):
    if data is None:
        return None
    return {
        "len": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "b64": base64.b64encode(data).decode() if len(data) <= 4096 else None,
        "raw_cid": b32(CID("base32", 1, "raw", __import__("multiformats").multihash.digest(data, "blake3", size=32))),
    }


def get_bytes(store, key, br=None):
    buf = sync(store.get(key, PROTO, br))
    return None if buf is None else buf.to_bytes()


def shard_dump(cas: MimicKuboCAS, root_obj: dict, version: str):
    """Decode every shard the manifest references: {array_path: [[cid|null...]|null...]}."""
    out = {}
    if version == SHARDED_ZARR_V1:
        indices = {"<v1 global index>": root_obj["chunks"]}
    else:
        indices = root_obj["arrays"]
    for path, idx in indices.items():
        shards = []
        for s in idx["shard_cids"]:
            if s is None:
                shards.append(None)
            else:
                raw = cas.blocks[s]
                shards.append({"cid": b32(s), "len": len(raw), "hex": raw.hex(), "entries": to_json(dag_cbor.decode(raw))})
        out[path] = shards
    return out


def list_keys(store):
    async def go():
        return [k async for k in store.list()]
    return sync(go())


def list_dir(store, prefix):
    async def go():
        return [k async for k in store.list_dir(prefix)]
    try:
        return sorted(sync(go()))
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


READ_BYTE_RANGES = [
    ("range(2,10)", lambda: RangeByteRequest(2, 10)),
    ("offset(5)", lambda: OffsetByteRequest(5)),
    ("suffix(4)", lambda: SuffixByteRequest(4)),
]


def expected_reads(cas, root, keys):
    """Open read-only in each read mode and record get()/exists() for each key."""
    out = {}
    for mode in ("full", "sparse", "auto"):
        st = open_store(cas, root, read_only=True, shard_read_mode=mode)
        for k in keys:
            try:
                val = describe_value(get_bytes(st, k))
            except Exception as exc:  # noqa: BLE001
                val = f"{type(exc).__name__}: {exc}"
            try:
                ex = sync(st.exists(k))
            except Exception as exc:  # noqa: BLE001
                ex = f"{type(exc).__name__}: {exc}"
            if mode == "full":
                out[k] = {"get": val, "exists": ex}
            else:
                assert out[k]["get"] == val, (mode, k, val, out[k]["get"])
    # byte ranges on the first key that has a value
    st = open_store(cas, root, read_only=True)
    for k in keys:
        if isinstance(out[k]["get"], dict):
            out[k]["ranges"] = {}
            for name, mk in READ_BYTE_RANGES:
                out[k]["ranges"][name] = describe_value(get_bytes(st, k, mk()))
    return out


def case_entry(name, root, cas, *, read_keys, notes=None, extra=None):
    root_cid = CID.decode(root) if isinstance(root, str) else root
    order = reachable(cas.blocks, root_cid)
    car = f"cars/{name}.car"
    size = write_car(os.path.join(HERE, car), root_cid, cas.blocks, order)
    # the CAR alone must be enough to reopen the store
    root2, cas2 = cas_from_car(os.path.join(HERE, car))
    assert b32(root2) == b32(root_cid)
    root_bytes = cas2.blocks[root2]
    root_obj = dag_cbor.decode(root_bytes)
    version = root_obj["manifest_version"]
    st = open_store(cas2, b32(root2), read_only=True)
    with open(os.path.join(HERE, car), "rb") as f:
        car_sha = hashlib.sha256(f.read()).hexdigest()
    metadata_json = {}
    for k, c in root_obj["metadata"].items():
        raw = cas2.blocks[c]
        try:
            metadata_json[k] = {"cid": b32(c), "text": raw.decode("utf-8"), "json": json.loads(raw)}
        except Exception:  # noqa: BLE001  (legacy chunk values in the metadata map)
            metadata_json[k] = {"cid": b32(c), "not_json": describe_value(raw)}
    e = {
        "name": name,
        "root": b32(root2),
        "manifest_version": version,
        "car": car,
        "car_bytes": size,
        "car_sha256": car_sha,
        "blocks": len(order),
        "dag_cbor_blocks": sum(1 for c in order if c.codec.name == "dag-cbor"),
        "raw_blocks": sum(1 for c in order if c.codec.name == "raw"),
        "root_block_hex": root_bytes.hex(),
        "root_decoded": to_json(root_obj),
        "root_key_order_in_bytes": list(root_obj.keys()),
        "shards": shard_dump(cas2, root_obj, version),
        "metadata_values": metadata_json,
        "list_order": list_keys(st),
        "list_dir": {p: list_dir(st, p) for p in ("", "0", "0/temp", "0/temp/c", "0/temp/c/1", "temp", "temp/c", "c")},
        "primary_array_path_after_reopen": st._primary_array_path,
        "reads": expected_reads(cas2, b32(root2), read_keys),
    }
    if notes:
        e["notes"] = notes
    if extra:
        e.update(extra)
    return e, b32(root2), cas2


def xr_read(cas, root, group=None):
    st = open_store(cas, root, read_only=True)
    return xr.open_zarr(store=st, group=group, zarr_format=3, consolidated=False).load()


def fresh_v2(cas):
    return open_store(cas, chunks_per_shard=CPS, manifest_version=SHARDED_ZARR_V2)


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

V2_READ_KEYS = [
    "zarr.json",
    "0/zarr.json",
    "0/temp/zarr.json",
    "0/temp/c/0/0/0",
    "0/temp/c/1/1/1",
    "0/temp/c/2/0/0",  # all-NaN time chunk -> never stored
    "0/temp/c/3/1/1",
    "0/temp/c/9/0/0",  # out of bounds
    "0/temp/3.1.1",  # classic dotted form of 0/temp/c/3/1/1
    "0/temp/3/1/1",  # classic slash form
    "temp/c/3/1/1",  # single top-level group: read keys default to group '0'
    "0/time/c/1",
    "0/lat/c/0",
    "0/missing/c/0",
]


def case_a(cases):
    cas = MimicKuboCAS()
    st = fresh_v2(cas)
    ds = make_ds()
    ds.to_zarr(store=st, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
    root = sync(st.flush())
    again = sync(st.flush())
    # determinism: an independent second write gives the same root
    cas_b = MimicKuboCAS()
    st_b = fresh_v2(cas_b)
    ds.to_zarr(store=st_b, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
    root_b = sync(st_b.flush())
    back = xr_read(cas, root, group="0")
    xr.testing.assert_identical(ds, back)
    back_default = xr_read(cas, root)  # single group: no group needed
    # ...but the attributes come from the ROOT zarr.json (auto-created, empty), not 0/zarr.json
    assert back_default.attrs == {}
    xr.testing.assert_identical(ds.drop_attrs(deep=False), back_default)
    e, root2, cas2 = case_entry(
        "v2_group0",
        root,
        cas,
        read_keys=V2_READ_KEYS,
        extra={
            "how": "ShardedZarrStore.open(cas, False, chunks_per_shard=3, manifest_version='sharded_zarr_v2'); "
            "make_ds().to_zarr(store, mode='w', group='0', zarr_format=3, consolidated=False, "
            "encoding={'temp': {'chunks': (2,3,4)}, 'time': {'chunks': (4,)}}); flush()",
            "dataset": DATASET_DOC,
            "deterministic_across_writes": root == root_b,
            "second_flush_returns_same_root": again == root,
            "xarray_read_back_identical": {"group='0'": True, "no group (single top-level group)": "identical except the dataset attrs, which come from the auto-created root zarr.json (empty) instead of 0/zarr.json"},
            "cas_blocks_saved_total": len(cas.blocks),
        },
    )
    from numcodecs import Zstd
    vals = {}
    for key, arr in (("0/temp/c/0/0/0", ds.temp.values[0:2, 0:3, 0:4]),
                     ("0/temp/c/3/1/1", ds.temp.values[6:8, 3:6, 4:8]),
                     ("0/time/c/1", np.arange(4, 8, dtype="int64")),
                     ("0/lat/c/0", ds.lat.values)):
        raw = get_bytes(open_store(cas, root, read_only=True), key)
        dec = bytes(Zstd().decode(raw))
        assert dec == np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        vals[key] = {"dtype": str(arr.dtype), "shape": list(arr.shape), "zstd_decompressed_hex": dec.hex(),
                     "values": arr.tolist()}
    e["chunk_values"] = vals
    e["chunk_values_note"] = ("chunk bytes = zstd frame of the little-endian C-order array (zarr v3 codecs "
                              "bytes{endian: little} + zstd{level 0, checksum false}); values listed row-major")
    cases.append(e)
    print("v2_group0", root, e["blocks"])
    return root, cas


V1_READ_KEYS = [
    "zarr.json",
    "temp/zarr.json",
    "temp/c/0/0/0",
    "temp/c/1/1/1",
    "temp/c/2/0/0",
    "temp/c/3/1/1",
    "time/c/1",  # coordinate chunks live in the metadata map in v1
    "lat/c/0",
    "c/3/1/1",
    "/c/3/1/1",
    "other/c/0/0/0",
]


def case_b(cases):
    cas = MimicKuboCAS()
    st = open_store(cas, array_shape=(8, 6, 8), chunk_shape=(2, 3, 4), chunks_per_shard=CPS)
    ds = make_ds()
    ds.to_zarr(store=st, mode="w", zarr_format=3, consolidated=False, encoding=ENC)
    root = sync(st.flush())
    back = xr_read(cas, root)
    xr.testing.assert_identical(ds, back)
    # v1 read key errors raise instead of returning None
    e, root2, cas2 = case_entry(
        "v1",
        root,
        cas,
        read_keys=V1_READ_KEYS,
        extra={
            "how": "ShardedZarrStore.open(cas, False, array_shape=(8,6,8), chunk_shape=(2,3,4), chunks_per_shard=3); "
            "make_ds().to_zarr(store, mode='w', zarr_format=3, consolidated=False, encoding=...); flush()",
            "dataset": DATASET_DOC,
            "xarray_read_back_identical": True,
        },
    )
    cases.append(e)
    print("v1", root, e["blocks"])
    return root, cas


def case_c(cases, root_a, cas):
    """Resize + append chain on a copy of case a's blocks."""
    steps = []
    # c1: explicit resize_store + resize_variable, then a region write of t = 8..11
    st = open_store(cas, root_a)
    sync(st.resize_store((12, 6, 8), array_path="0/temp"))
    sync(st.resize_variable("0/temp", (12, 6, 8)))
    sync(st.resize_store((12,), array_path="0/time"))
    sync(st.resize_variable("0/time", (12,)))
    root_resized_only = sync(st.flush())
    new = make_ds(8, 4).drop_vars(["lat", "lon"])
    new.to_zarr(store=st, group="0", region={"time": slice(8, 12)}, zarr_format=3, consolidated=False)
    # xarray does not rewrite the existing 'time' index in a region write; write it with zarr
    # (int64 'days since 2024-01-01')
    zarr.open_group(store=st, path="0", mode="r+", zarr_format=3)["time"][8:12] = np.arange(8, 12, dtype="int64")
    r1 = sync(st.flush())
    back = xr_read(cas, r1, group="0")
    xr.testing.assert_identical(make_ds(0, 12), back)
    steps.append(("v2_resize_region", r1,
                  "reopen v2_group0 writable; resize_store((12,6,8), array_path='0/temp'); "
                  "resize_variable('0/temp', (12,6,8)); resize_store((12,), array_path='0/time'); "
                  "resize_variable('0/time', (12,)); flush() -> root_resized_only; then "
                  "make_ds(8,4).drop_vars(['lat','lon']).to_zarr(store, group='0', region={'time': slice(8,12)}); "
                  "zarr.open_group(store, path='0', mode='r+')['time'][8:12] = arange(8,12) (xarray skips the index in "
                  "region writes); flush()",
                  {"root_resized_only": root_resized_only}))
    # c2: xarray append (zarr rewrites 0/temp/zarr.json -> index grows by the fast path)
    st = open_store(cas, r1)
    make_ds(12, 2).to_zarr(store=st, group="0", append_dim="time", zarr_format=3, consolidated=False)
    r2 = sync(st.flush())
    back = xr_read(cas, r2, group="0")
    xr.testing.assert_identical(make_ds(0, 14), back)
    steps.append(("v2_append", r2,
                  "reopen v2_resize_region writable; make_ds(12,2).to_zarr(store, group='0', append_dim='time'); flush()",
                  {}))
    # c3: non-leading growth (lon 8 -> 12) = remap of every shard (slow path); shrink time 14 -> 9
    st = open_store(cas, r2)
    sync(st.resize_store((14, 6, 12), array_path="0/temp"))
    r3a = sync(st.flush())
    sync(st.resize_store((9, 6, 12), array_path="0/temp"))
    r3 = sync(st.flush())
    steps.append(("v2_remap", r3,
                  "reopen v2_append writable; resize_store((14,6,12), array_path='0/temp'); flush() -> root_after_lon_growth; "
                  "resize_store((9,6,12), array_path='0/temp'); flush().  Metadata (zarr.json) is NOT touched by "
                  "resize_store, so this root is only meaningful at the store level (xarray would see shape 14x6x8).",
                  {"root_after_lon_growth": r3a}))
    for name, r, how, extra in steps:
        keys = ["0/temp/c/0/0/0", "0/temp/c/1/1/1", "0/temp/c/3/1/1", "0/temp/c/4/0/0", "0/temp/c/5/1/1",
                "0/temp/c/6/0/1", "0/temp/c/6/0/2", "0/temp/c/4/1/2", "0/time/c/2", "0/time/c/3", "0/temp/zarr.json"]
        e, _, _ = case_entry(name, r, cas, read_keys=keys, extra={"how": how, **extra})
        cases.append(e)
        print(name, r, e["blocks"])
    return r1


def case_d(cases, root_a, cas):
    """graft_store: a 4-step source store grafted into case a after a resize."""
    src = fresh_v2(cas)
    make_ds(8, 4).to_zarr(store=src, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
    src_root = sync(src.flush())
    st = open_store(cas, root_a)
    sync(st.resize_store((12, 6, 8), array_path="0/temp"))
    sync(st.resize_variable("0/temp", (12, 6, 8)))
    sync(st.resize_store((12,), array_path="0/time"))
    sync(st.resize_variable("0/time", (12,)))
    sync(st.graft_store(src_root, (4, 0, 0), source_array_path="0/temp", target_array_path="0/temp"))
    sync(st.graft_store(src_root, (2,), source_array_path="0/time", target_array_path="0/time"))
    root = sync(st.flush())
    back = xr_read(cas, root, group="0")
    xr.testing.assert_identical(make_ds(0, 12), back)
    src_ro = open_store(cas, src_root, read_only=True)
    keys = ["0/temp/c/0/0/0", "0/temp/c/4/0/0", "0/temp/c/5/1/1", "0/time/c/2", "0/temp/zarr.json"]
    e, _, _ = case_entry(
        "v2_graft",
        root,
        cas,
        read_keys=keys,
        extra={
            "how": "source = fresh v2 (cps 3) + make_ds(8,4).to_zarr(group='0') -> graft_source_root; "
            "target = reopen v2_group0 writable; resize_store((12,6,8),'0/temp') + resize_variable; "
            "resize_store((12,),'0/time') + resize_variable; graft_store(src, (4,0,0), source_array_path='0/temp', "
            "target_array_path='0/temp'); graft_store(src, (2,), source_array_path='0/time', target_array_path='0/time'); flush()",
            "graft_source_root": src_root,
            "graft_source_default_primary_after_reopen": src_ro._primary_array_path,
            "xarray_read_back_equals": "make_ds(0, 12)",
        },
    )
    # the source itself, for completeness
    e_src, _, _ = case_entry("v2_graft_source", src_root, cas, read_keys=["0/temp/c/0/0/0", "0/time/c/0"])
    cases.append(e_src)
    cases.append(e)
    print("v2_graft", root, e["blocks"])


def case_e(cases):
    """convert_hamt_to_sharded of ZarrHAMTStore datasets (zarr v3 and zarr v2 layouts)."""
    out = []
    for fmt in (3, 2):
        cas = MimicKuboCAS()
        hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
        zs = ZarrHAMTStore(hamt, read_only=False)
        ds = make_ds()
        enc = ENC
        ds.to_zarr(store=zs, mode="w", zarr_format=fmt, consolidated=(fmt == 2), encoding=enc)
        sync(hamt.make_read_only())
        hamt_root = hamt.root_node_id
        hamt_keys = sync(_hamt_keys(hamt))
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()):
            root = sync(convert_hamt_to_sharded(cas, str(hamt_root), CPS))
        st = open_store(cas, root, read_only=True)
        back = xr.open_zarr(store=st, zarr_format=fmt, consolidated=False).load()
        xr.testing.assert_identical(ds, back)
        name = f"converted_from_hamt_zarr{fmt}"
        if fmt == 3:
            keys = ["zarr.json", "temp/zarr.json", "temp/c/0/0/0", "temp/c/3/1/1", "temp/c/2/0/0", "time/c/1", "lat/c/0"]
        else:
            keys = [".zgroup", ".zmetadata", "temp/.zarray", "temp/0.0.0", "temp/3.1.1", "temp/c/3/1/1", "temp/2.0.0", "time/1", "lat/0"]
        hamt_car = f"cars/hamt_zarr{fmt}_source.car"
        hamt_order = reachable(cas.blocks, hamt_root)
        write_car(os.path.join(HERE, hamt_car), hamt_root, cas.blocks, hamt_order)
        e, _, _ = case_entry(
            name,
            root,
            cas,
            read_keys=keys,
            extra={
                "how": f"HAMT(values_are_bytes=True) + ZarrHAMTStore; make_ds().to_zarr(zs, mode='w', zarr_format={fmt}, "
                f"consolidated={fmt == 2}, encoding=...); hamt.make_read_only(); "
                "convert_hamt_to_sharded(cas, str(hamt.root_node_id), 3)",
                "hamt_root": b32(hamt_root),
                "hamt_car": hamt_car,
                "hamt_car_blocks": len(hamt_order),
                "hamt_keys_in_iteration_order": hamt_keys,
                "xarray_read_back_identical": True,
                "hamt_car_note": "the case CAR holds only blocks reachable from the sharded root (metadata/chunk "
                "raw blocks are shared with the HAMT); the converter INPUT (HAMT nodes + values) is hamt_car",
            },
        )
        cases.append(e)
        out.append((root, cas))
        print(name, root, e["blocks"])
    return out


async def _hamt_keys(hamt):
    return [k async for k in hamt.keys()]


def case_g(cases, root_b, cas):
    """migrate_v1_to_v2 of case b with primary '0/temp'."""
    st = open_store(cas, root_b)
    root = sync(st.migrate_v1_to_v2("0/temp"))
    back = xr_read(cas, root, group="0")
    # the dataset attrs stay in the ROOT zarr.json; 0/zarr.json is a fresh empty group
    assert back.attrs == {}
    xr.testing.assert_identical(make_ds().drop_attrs(deep=False), back)
    keys = ["zarr.json", "0/zarr.json", "0/temp/c/3/1/1", "0/time/c/1", "temp/c/3/1/1", "0/temp/zarr.json"]
    e, _, _ = case_entry(
        "v1_migrated_to_v2",
        root,
        cas,
        read_keys=keys,
        extra={"how": "reopen v1 writable; migrate_v1_to_v2('0/temp') (returns the new root)",
               "xarray_read_back_identical": "group='0' == make_ds() without its dataset attrs (they stay in the root "
               "zarr.json; migration creates an empty 0/zarr.json group)"},
    )
    cases.append(e)
    print("v1_migrated_to_v2", root, e["blocks"])


ARR_META = {
    "zarr_format": 3,
    "node_type": "array",
    "shape": [5, 4],
    "data_type": "uint8",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "fill_value": 0,
    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
    "attributes": {},
}


def case_f(cases, probes):
    """Direct API: classic keys, .zarray metadata, root consolidated strip, deletes, set_pointer."""
    cas = MimicKuboCAS()
    st = open_store(cas, chunks_per_shard=4, manifest_version=SHARDED_ZARR_V2)
    log = []

    def put(key, data: bytes):
        try:
            sync(st.set(key, PROTO.buffer.from_bytes(data)))
            log.append([key, "ok"])
        except Exception as exc:  # noqa: BLE001
            log.append([key, f"{type(exc).__name__}: {exc}"])

    meta = json.dumps(ARR_META, separators=(",", ":")).encode()
    put("g/a/zarr.json", meta)  # v3 array under group g -> auto group zarr.json for '' and 'g'
    # zarr v2 array (".zarray", dotted keys) under group g
    zarray = json.dumps({"zarr_format": 2, "shape": [3, 3], "chunks": [2, 2], "dtype": "|u1", "compressor": None,
                         "fill_value": 0, "filters": None, "order": "C"}).encode()
    put("g/b/.zarray", zarray)
    for i in range(3):
        for j in range(2):
            put(f"g/a/c/{i}/{j}", bytes([i, j]) * 3)
    put("g/b/0.0", b"b00")
    put("g/b/1.1", b"b11")
    put("g/b/1/0", b"b10")  # classic slash form
    put("g/b/c/0/1", b"b01")  # v3 form on a v2-format array
    put("g/a/c/9/9", b"oob")  # out of bounds -> silently dropped in v2
    put("g/a/c/x/0", b"bad")  # non-integer -> silently dropped
    put("g/nometa/c/0", b"nm")  # no index -> RuntimeError (KeyError wrapped)
    put("g/a/.zattrs", b'{"x": 1}')
    root_pre = sync(st.flush())
    # root group with consolidated metadata: stripped because every array is grouped
    put("zarr.json", json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"k": "\u00e9"},
                                 "consolidated_metadata": {"kind": "inline", "must_understand": False,
                                                           "metadata": {}}}).encode())
    # deletes: empty a whole shard of g/a (linear 0..3) -> shard becomes [null,null,null,null] block
    for key in ("g/a/c/0/0", "g/a/c/0/1", "g/a/c/1/0", "g/a/c/1/1"):
        sync(st.delete(key))
    # set_pointer for a chunk and for a metadata key
    cid = sync(cas.save(b"pointer-chunk", "raw"))
    sync(st.set_pointer("g/a/c/2/1", str(cid)))
    cid_m = sync(cas.save(b'{"note": "pointer"}', "raw"))
    sync(st.set_pointer("g/note.zattrs", str(cid_m)))
    root = sync(st.flush())
    keys = ["zarr.json", "g/zarr.json", "g/.zgroup", "g/a/c/0/0", "g/a/c/2/1", "g/a/c/2/0", "g/b/0.0", "g/b/c/0/0",
            "g/b/1/1", "g/b/c/1/0", "g/b/0/1", "g/a/.zattrs", "g/nometa/c/0", "a/c/2/0"]
    e, _, _ = case_entry(
        "v2_api",
        root,
        cas,
        read_keys=keys,
        extra={
            "how": "fresh v2 (chunks_per_shard=4); the set() calls in set_log in order; flush() -> root_before_root_group; "
            "set('zarr.json', group JSON with consolidated_metadata and a non-ASCII attribute); delete g/a/c/0/0, 0/1, 1/0, 1/1; "
            "set_pointer('g/a/c/2/1', raw CID of b'pointer-chunk'); set_pointer('g/note.zattrs', raw CID of "
            "b'{\"note\": \"pointer\"}'); flush()",
            "array_metadata_g_a": ARR_META,
            "set_log": log,
            "root_before_root_group": root_pre,
        },
    )
    cases.append(e)
    print("v2_api", root, e["blocks"])
    return root, cas


# ---------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------

def classify(st, key):
    try:
        ck = st._parse_chunk_key(key)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    if ck is None:
        return "metadata"
    return {"array_path": ck.array_path, "coords": list(ck.coords)}


def probes_run(root_a, cas_a, root_b, cas_b, root_f, cas_f):
    p = {}
    # key classification
    st2 = open_store(cas_a, root_a, read_only=True)
    st1 = open_store(cas_b, root_b, read_only=True)
    stf = open_store(cas_f, root_f, read_only=True)
    v2_keys = ["zarr.json", ".zmetadata", "0/temp/zarr.json", "0/temp/.zattrs", "0/temp/c/1/0/1", "/0/temp/c/1/0/1",
               "0/temp/c/01/0/1", "0/temp/c/+1/0/1", "0/temp/c/ 1/0/1", "0/temp/c/1_0/0/1", "0/temp/c/-1/0/1",
               "0/temp/c/1/0", "0/temp/c/9/0/0", "0/temp/c/x/0/0", "0/temp/1.0.1", "0/temp/1/0/1", "0/temp/c/1.0.1",
               "0/time/c/1", "0/time/1", "0/nope/c/0/0", "c/0", "0/temp/c/", "0/temp/c/1/0/1/", "0/c/c/0",
               "temp/c/1/0/1", "0/tempzarr.json"]
    p["classify_v2_group0"] = {k: classify(st2, k) for k in v2_keys}
    p["effective_read_key_v2_group0"] = {k: st2._v2_effective_read_key(k) for k in
                                         ["zarr.json", ".zattrs", "temp/zarr.json", "temp/c/0/0/0", "0/temp/c/0/0/0", "/temp/c/0/0/0", "", "0"]}
    v1_keys = ["zarr.json", "temp/zarr.json", "temp/c/1/0/1", "time/c/0", "a/b/time/c/0", "lat/c/0", "c/1/0/1", "/c/1/0/1",
               "other/c/1/0/1", "temp/c/9/0/0", "temp/c/1/0", "temp/c/x/0/0", "temp/1.0.1", "temp/1/0/1"]
    p["classify_v1"] = {k: classify(st1, k) for k in v1_keys}
    p["classify_v2_api"] = {k: classify(stf, k) for k in ["g/b/0.0", "g/b/1/1", "g/b/c/1/1", "g/b/2.0", "g/b/0.0.0",
                                                          "g/a/1.1", "g/a/1/1", "g/a/c/1/1", "g/b/0.a", "g/b/00.01"]}
    # errors
    errs = {}

    def err(name, fn):
        try:
            r = fn()
            errs[name] = f"no error: {r!r}"
        except BaseException as exc:  # noqa: BLE001
            errs[name] = f"{type(exc).__name__}: {exc}"

    c = MimicKuboCAS()
    err("open_readonly_no_root", lambda: open_store(c, read_only=True))
    err("open_no_args", lambda: open_store(c))
    err("open_bad_version", lambda: open_store(c, manifest_version="v3", chunks_per_shard=2))
    err("open_v1_missing_chunk_shape", lambda: open_store(c, array_shape=(4,), chunks_per_shard=2))
    err("open_v1_explicit_missing_shapes", lambda: open_store(c, manifest_version=SHARDED_ZARR_V1, chunks_per_shard=2))
    err("open_cps_zero", lambda: open_store(c, chunks_per_shard=0))
    err("open_cps_none_with_shapes", lambda: open_store(c, array_shape=(4,), chunk_shape=(2,)))
    err("open_v2_half_seed", lambda: open_store(c, manifest_version=SHARDED_ZARR_V2, chunks_per_shard=2, array_shape=(4,)))
    err("open_v2_bad_chunk", lambda: open_store(c, manifest_version=SHARDED_ZARR_V2, chunks_per_shard=2, array_shape=(4,), chunk_shape=(0,)))
    err("open_v1_rank_mismatch", lambda: open_store(c, array_shape=(4, 4), chunk_shape=(2,), chunks_per_shard=2))
    bad_root = sync(c.save(dag_cbor.encode({"manifest_version": "nope"}), "dag-cbor"))
    err("open_bad_manifest", lambda: open_store(c, str(bad_root), read_only=True))
    not_map = sync(c.save(dag_cbor.encode([1, 2]), "dag-cbor"))
    err("open_root_not_map", lambda: open_store(c, str(not_map), read_only=True))
    not_cbor = sync(c.save(b"\xff\xff", "raw"))
    err("open_root_not_cbor", lambda: open_store(c, str(not_cbor), read_only=True))
    bad_count = sync(c.save(dag_cbor.encode({"manifest_version": SHARDED_ZARR_V2, "metadata": {}, "arrays": {
        "a": {"array_shape": [4], "chunk_shape": [2], "sharding_config": {"chunks_per_shard": 1}, "shard_cids": [None]}}}), "dag-cbor"))
    err("open_v2_shard_count", lambda: open_store(c, str(bad_count), read_only=True))
    bad_order = sync(c.save(dag_cbor.encode({"manifest_version": SHARDED_ZARR_V2, "metadata": {}, "arrays": {
        "a": {"array_shape": [4], "chunk_shape": [2], "sharding_config": {"chunks_per_shard": 2, "order": "F"}, "shard_cids": [None]}}}), "dag-cbor"))
    err("open_v2_order_F", lambda: open_store(c, str(bad_order), read_only=True))
    v1_nochunks = sync(c.save(dag_cbor.encode({"manifest_version": SHARDED_ZARR_V1, "metadata": {}}), "dag-cbor"))
    err("open_v1_no_chunks", lambda: open_store(c, str(v1_nochunks), read_only=True))
    # minimal hand-built v2 root: no store_type / zarr_format / sharding_config at the top level
    minimal = sync(c.save(dag_cbor.encode({"manifest_version": SHARDED_ZARR_V2, "metadata": {}, "arrays": {}}), "dag-cbor"))
    err("open_v2_minimal_root_ok", lambda: open_store(c, str(minimal), read_only=True)._default_chunks_per_shard)
    ro = open_store(cas_a, root_a, read_only=True)
    err("set_read_only", lambda: sync(ro.set("0/temp/c/0/0/0", PROTO.buffer.from_bytes(b"x"))))
    err("delete_read_only", lambda: sync(ro.delete("0/temp/c/0/0/0")))
    err("resize_read_only", lambda: sync(ro.resize_store((1, 1, 1))))
    err("graft_read_only", lambda: sync(ro.graft_store(root_a, (0, 0, 0))))
    err("clear_read_only_v2", lambda: sync(ro.clear()))
    err("delete_dir_read_only_v2", lambda: sync(ro.delete_dir("0")))
    err("set_partial_values", lambda: sync(ro.set_partial_values([])))
    ro1 = open_store(cas_b, root_b, read_only=True)
    err("clear_read_only_v1", lambda: sync(ro1.clear()))
    err("v1_get_out_of_bounds", lambda: get_bytes(ro1, "temp/c/9/0/0"))
    err("v1_get_non_int", lambda: get_bytes(ro1, "temp/c/x/0/0"))
    err("v1_get_rank_mismatch", lambda: get_bytes(ro1, "temp/c/1/0"))
    err("v2_get_out_of_bounds_is_None", lambda: get_bytes(ro, "0/temp/c/9/0/0"))
    err("range_start_gt_end", lambda: get_bytes(ro, "0/temp/c/0/0/0", RangeByteRequest(10, 2)))
    err("migrate_v2", lambda: sync(open_store(cas_a, root_a).migrate_v1_to_v2("0/temp")))
    err("migrate_empty_path", lambda: sync(open_store(cas_b, root_b).migrate_v1_to_v2("/")))
    w = open_store(cas_a, root_a)
    err("resize_rank_mismatch", lambda: sync(w.resize_store((1, 1), array_path="0/temp")))
    err("resize_unknown_array", lambda: sync(w.resize_store((1,), array_path="nope")))
    err("resize_variable_missing", lambda: sync(w.resize_variable("0/nope", (1,))))
    err("graft_rank_mismatch", lambda: sync(w.graft_store(root_a, (0, 0), source_array_path="0/temp", target_array_path="0/temp")))
    err("graft_out_of_bounds", lambda: sync(w.graft_store(root_a, (1, 0, 0), source_array_path="0/temp", target_array_path="0/temp")))
    err("graft_unknown_target", lambda: sync(w.graft_store(root_a, (0,), source_array_path="0/time", target_array_path="nope")))
    w2 = open_store(cas_a, root_a)
    err("set_chunk_shape_change", lambda: sync(w2.set("0/temp/zarr.json", PROTO.buffer.from_bytes(json.dumps(
        {"shape": [8, 6, 8], "chunk_grid": {"configuration": {"chunk_shape": [1, 1, 1]}}}).encode()))))
    w3 = fresh_v2(MimicKuboCAS())
    sync(w3.set("zarr.json", PROTO.buffer.from_bytes(b'{"zarr_format": 3, "node_type": "group", "attributes": {}}')))
    err("v2_write_without_group", lambda: sync(w3.set("temp/zarr.json", PROTO.buffer.from_bytes(json.dumps(ARR_META).encode()))))
    w4 = fresh_v2(MimicKuboCAS())
    err("v2_top_level_array_without_root_group_write_is_allowed",
        lambda: sync(w4.set("temp/zarr.json", PROTO.buffer.from_bytes(json.dumps(ARR_META).encode()))))
    # xarray without group on a fresh v2 store
    w5 = fresh_v2(MimicKuboCAS())
    err("xarray_to_zarr_v2_without_group", lambda: make_ds().to_zarr(store=w5, mode="w", zarr_format=3, consolidated=False))
    p["errors"] = errs
    # multi-group read rule
    cm = MimicKuboCAS()
    wm = fresh_v2(cm)
    make_ds().to_zarr(store=wm, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
    make_ds(0, 4).to_zarr(store=wm, mode="a", group="1", zarr_format=3, consolidated=False, encoding=ENC)
    rm = sync(wm.flush())
    rom = open_store(cm, rm, read_only=True)
    p["multi_group"] = {
        "root": rm,
        "list_dir('') read_only": list_dir(rom, ""),
        "list_dir('') writable": list_dir(open_store(cm, rm), ""),
        "list_dir('1')": list_dir(rom, "1"),
        "get('temp/zarr.json') (no default group)": describe_value(get_bytes(rom, "temp/zarr.json")),
        "xr.open_zarr(group='1') ok": bool(xr.open_zarr(store=rom, group="1", zarr_format=3, consolidated=False).load().identical(make_ds(0, 4))),
    }
    try:
        xr.open_zarr(store=open_store(cm, rm, read_only=True), zarr_format=3, consolidated=False)
        p["multi_group"]["xr.open_zarr(no group)"] = "no error"
    except Exception as exc:  # noqa: BLE001
        p["multi_group"]["xr.open_zarr(no group)"] = f"{type(exc).__name__}: {exc}"
    # InMemoryCAS (returns bare multihash bytes, not CIDs)
    imc = InMemoryCAS()
    res = {}
    try:
        s = sync(ShardedZarrStore.open(cas=imc, read_only=False, chunks_per_shard=CPS, manifest_version=SHARDED_ZARR_V2))
        try:
            make_ds().to_zarr(store=s, mode="w", group="0", zarr_format=3, consolidated=False, encoding=ENC)
            res["to_zarr"] = "ok"
        except Exception as exc:  # noqa: BLE001
            res["to_zarr"] = f"{type(exc).__name__}: {exc}"
        try:
            r = sync(s.flush())
            res["flush"] = f"ok: {r!r}"
        except Exception as exc:  # noqa: BLE001
            res["flush"] = f"{type(exc).__name__}: {exc}"
        s1 = sync(ShardedZarrStore.open(cas=imc, read_only=False, array_shape=(8, 6, 8), chunk_shape=(2, 3, 4), chunks_per_shard=CPS))
        try:
            r = sync(s1.flush())
            res["empty_v1_flush"] = f"ok: type {type(r).__name__}, value {r!r}"
        except Exception as exc:  # noqa: BLE001
            res["empty_v1_flush"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001
        res["open"] = f"{type(exc).__name__}: {exc}"
    p["InMemoryCAS"] = res
    # empty stores
    ce = MimicKuboCAS()
    e2 = fresh_v2(ce)
    r_e2 = sync(e2.flush())
    e1 = open_store(ce, array_shape=(8, 6, 8), chunk_shape=(2, 3, 4), chunks_per_shard=CPS)
    r_e1 = sync(e1.flush())
    e2s = open_store(ce, chunks_per_shard=2, manifest_version=SHARDED_ZARR_V2, array_shape=(5,), chunk_shape=(2,),
                     primary_array_path="/x/")
    r_e2s = sync(e2s.flush())
    e2i = open_store(ce, chunks_per_shard=2)  # manifest_version omitted, no shapes -> v2
    r_e2i = sync(e2i.flush())
    p["empty_roots"] = {
        "v2_empty (cps 3)": {"root": r_e2, "hex": ce.blocks[CID.decode(r_e2)].hex(), "decoded": to_json(dag_cbor.decode(ce.blocks[CID.decode(r_e2)]))},
        "v1_empty (8,6,8)/(2,3,4) cps 3": {"root": r_e1, "hex": ce.blocks[CID.decode(r_e1)].hex(), "decoded": to_json(dag_cbor.decode(ce.blocks[CID.decode(r_e1)]))},
        "v2_seeded (5,)/(2,) cps 2 primary '/x/'": {"root": r_e2s, "hex": ce.blocks[CID.decode(r_e2s)].hex(), "decoded": to_json(dag_cbor.decode(ce.blocks[CID.decode(r_e2s)]))},
        "v2_implicit (cps 2, no manifest_version, no shapes)": {
            "root": r_e2i,
            "same_as_explicit_v2_cps2": r_e2i == sync(open_store(MimicKuboCAS(), chunks_per_shard=2, manifest_version=SHARDED_ZARR_V2).flush()),
        },
    }
    # read modes: auto latches after 256 sparse reads of one shard
    ro = open_store(cas_a, root_a, read_only=True)
    loads_before = cas_a.load_calls
    for _ in range(255):
        get_bytes(ro, "0/temp/c/0/0/0")
    p["auto_mode"] = {
        "after_255_reads_latched": ro._full_mode_latched,
        "cas_loads_for_255_reads": cas_a.load_calls - loads_before,
    }
    get_bytes(ro, "0/temp/c/0/0/0")
    p["auto_mode"]["after_256th_read_latched"] = ro._full_mode_latched
    p["auto_mode"]["shard_cached_after_latch"] = ("0/temp", 0) in ro._shard_data_cache
    clone = ro.with_read_only(False)
    p["with_read_only"] = {
        "same_flag_returns_self": ro.with_read_only(True) is ro,
        "clone_is_new_object": clone is not ro,
        "clone_shares_latch": clone._full_mode_latched,
        "clone_equal (same _root_cid)": clone == ro,
        "clone_read_only": clone.read_only,
    }
    p["eq"] = {
        "same_root_different_objects": open_store(cas_a, root_a, read_only=True) == open_store(cas_a, root_a, read_only=True),
        "different_roots": open_store(cas_a, root_a, read_only=True) == open_store(cas_b, root_b, read_only=True),
        "vs_non_store": open_store(cas_a, root_a, read_only=True) == root_a,
    }
    # flush of an unchanged reopened store returns the CID string it was opened with
    same = open_store(cas_a, root_a)
    p["flush_unchanged_reopen"] = {"returned": sync(same.flush()), "opened_with": root_a}
    zb = CID.decode(root_a).set(base="base58btc").encode()
    same2 = open_store(cas_a, zb)
    p["flush_unchanged_reopen_base58"] = {"returned": sync(same2.flush()), "opened_with": zb}
    # flush: which blocks are saved, in which order
    class LogCAS(MimicKuboCAS):
        def __init__(self):
            super().__init__()
            self.saves = []

        async def save(self, data, codec):
            cid = await super().save(data, codec)
            self.saves.append([codec, len(data), b32(cid)])
            return cid
    lc = LogCAS()
    lc.blocks.update(cas_a.blocks)
    fl = open_store(lc, root_a)
    for key in ("0/temp/c/3/1/1", "0/temp/c/0/0/0", "0/time/c/0", "0/temp/c/1/1/1"):
        sync(fl.set(key, PROTO.buffer.from_bytes(key.encode())))
    lc.saves.clear()
    r_fl = sync(fl.flush())
    p["flush_save_order"] = {
        "how": "reopen v2_group0 writable; set 0/temp/c/3/1/1, 0/temp/c/0/0/0, 0/time/c/0, 0/temp/c/1/1/1 to their "
        "own key bytes; flush(); list of [codec, len, cid] saved by flush()",
        "saves": lc.saves,
        "root": r_fl,
        "dirty_cache_keys_sorted_by_str": sorted([str(k) for k in [("0/temp", 5), ("0/temp", 0), ("0/time", 0), ("0/temp", 2)]]),
    }
    ex = open_store(cas_a, root_a)
    sync(ex.exists("0/temp/c/2/0/0"))
    sync(ex.get("0/temp/c/2/0/0", PROTO))
    p["exists_get_do_not_dirty"] = {"flush_after_exists_and_get": sync(ex.flush()) == root_a}
    # delete_dir / clear in v2
    dd = open_store(cas_a, root_a)
    sync(dd.delete_dir("0/lat"))
    r_dd = sync(dd.flush())
    p["delete_dir_0_lat"] = {"root": r_dd, "decoded": to_json(dag_cbor.decode(cas_a.blocks[CID.decode(r_dd)]))}
    cl = open_store(cas_a, root_a)
    sync(cl.clear())
    r_cl = sync(cl.flush())
    p["clear_v2"] = {"root": r_cl, "decoded": to_json(dag_cbor.decode(cas_a.blocks[CID.decode(r_cl)]))}
    # legacy v1 root with no primary_array_path recorded (built by hand from case b's root)
    rb = dag_cbor.decode(cas_b.blocks[CID.decode(root_b)])
    rb["chunks"].pop("primary_array_path")
    legacy = sync(cas_b.save(dag_cbor.encode(rb), "dag-cbor"))
    lro = open_store(cas_b, str(legacy), read_only=True)
    lrw = open_store(cas_b, str(legacy))
    p["v1_legacy_unrecorded"] = {
        "root": b32(legacy),
        "read_only: inferred primary": lro._primary_array_path,
        "read_only: inferred flag": lro._primary_inferred,
        "writable: root dirty after open": lrw._dirty_root,
        "writable: flush root": sync(lrw.flush()),
        "writable: recorded primary_array_path": lrw._root_obj["chunks"].get("primary_array_path"),
        "list (read_only, first 6 chunk keys)": [k for k in list_keys(lro) if "/c/" in k][:6],
    }
    rb2 = dag_cbor.decode(cas_b.blocks[CID.decode(root_b)])
    rb2["chunks"].pop("primary_array_path")
    rb2["metadata"].pop("temp/zarr.json")  # inference impossible -> primary stays ''
    legacy2 = sync(cas_b.save(dag_cbor.encode(rb2), "dag-cbor"))
    l2 = open_store(cas_b, str(legacy2), read_only=True)
    p["v1_legacy_uninferable"] = {
        "root": b32(legacy2),
        "primary": l2._primary_array_path,
        "inferred": l2._primary_inferred,
        "list: keys after the metadata keys (first 4)": [k for k in list_keys(l2) if k not in rb2["metadata"]][:4],
        "get('temp/c/1/1/1') == get('/c/1/1/1') == get('x/c/1/1/1')": get_bytes(l2, "temp/c/1/1/1") == get_bytes(l2, "/c/1/1/1") == get_bytes(l2, "x/c/1/1/1") is not None,
        "classify c/1/1/1": classify(l2, "c/1/1/1"),
        "classify /c/1/1/1": classify(l2, "/c/1/1/1"),
    }
    return p


def main():
    cases = []
    root_a, cas_a = case_a(cases)
    root_b, cas_b = case_b(cases)
    case_c(cases, root_a, cas_a)
    case_d(cases, root_a, cas_a)
    case_e(cases)
    case_g(cases, root_b, cas_b)
    root_f, cas_f = case_f(cases, None)
    probes = probes_run(root_a, cas_a, root_b, cas_b, root_f, cas_f)
    versions = {p: md.version(p) for p in ("py-hamt", "zarr", "xarray", "numpy", "pandas", "numcodecs", "dag-cbor", "multiformats")}
    with open(os.path.join(HERE, "sharded_cases.json"), "w") as f:
        json.dump({"versions": versions, "chunks_per_shard": CPS, "cases": cases}, f, indent=1, ensure_ascii=False)
    with open(os.path.join(HERE, "probes.json"), "w") as f:
        json.dump({"versions": versions, **probes}, f, indent=1, ensure_ascii=False, default=str)


if __name__ == "__main__":
    main()
