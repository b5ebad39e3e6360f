"""ShardedZarrStore errors: each scenario runs on py-hamt 3.6.0 and on ipfs_hamt, and both must
raise the same exception class with the same message (the texts of the golden probes,
tests/golden/sharded/probes.json ``errors``, which are checked here too)."""

from __future__ import annotations

import json
import pathlib
import warnings

import pytest
import zarr

py_hamt = pytest.importorskip("py_hamt")
import ipfs_hamt  # noqa: E402

from sharded_util import CountingCIDCAS, climate  # noqa: E402

PROTO = zarr.core.buffer.default_buffer_prototype()
V2 = "sharded_zarr_v2"
PROBES = json.loads(
    (pathlib.Path(__file__).parents[1] / "golden" / "sharded" / "probes.json").read_text()
)["errors"]

ARRAY_META = json.dumps(
    {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4, 4],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 2]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {},
    }
).encode()
GROUP_META = b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'


def buf(b: bytes):
    return PROTO.buffer.from_bytes(b)


async def written(lib, cas, group="0"):
    """A flushed v2 store holding the climate dataset; returns its root."""
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=3)
    climate().to_zarr(store=s, mode="w", group=group, zarr_format=3)
    return await s.flush()


async def v1_store(lib, cas):
    return await lib.ShardedZarrStore.open(
        cas=cas, read_only=False, array_shape=(8, 6, 8), chunk_shape=(2, 3, 4), chunks_per_shard=3
    )


async def ro(lib, cas):
    root = await written(lib, cas)
    return await lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root)


async def rw(lib, cas):
    root = await written(lib, cas)
    return await lib.ShardedZarrStore.open(cas=cas, read_only=False, root_cid=root)


def _open(**kw):
    async def f(lib, cas):
        await lib.ShardedZarrStore.open(cas=cas, **kw)

    return f


async def _raw_root(lib, cas, data: bytes):
    cid = await cas.save(data, "dag-cbor")
    await lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=str(cid))


def _root(obj):
    import dag_cbor

    async def f(lib, cas):
        await _raw_root(lib, cas, dag_cbor.encode(obj))

    return f


async def _set_ro(lib, cas):
    await (await ro(lib, cas)).set("0/temp/c/0/0/0", buf(b"x"))


async def _delete_ro(lib, cas):
    await (await ro(lib, cas)).delete("0/temp/c/0/0/0")


async def _resize_ro(lib, cas):
    await (await ro(lib, cas)).resize_store((1, 1, 1))


async def _graft_ro(lib, cas):
    await (await ro(lib, cas)).graft_store("x", (0, 0, 0))


async def _clear_ro(lib, cas):
    await (await ro(lib, cas)).clear()


async def _delete_dir_ro(lib, cas):
    await (await ro(lib, cas)).delete_dir("0/temp")


async def _partial(lib, cas):
    await (await rw(lib, cas)).set_partial_values([])


async def _clear_ro_v1(lib, cas):
    s = await v1_store(lib, cas)
    root = await s.flush()
    r = await lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root)
    await r.clear()


def _v1_get(key):
    async def f(lib, cas):
        s = await v1_store(lib, cas)
        return await s.get(key, PROTO)

    return f


async def _v2_get_oob(lib, cas):
    return await (await ro(lib, cas)).get("0/temp/c/99/0/0", PROTO)


async def _range(lib, cas):
    await (await ro(lib, cas)).get("0/temp/c/0/0/1", PROTO, zarr.abc.store.RangeByteRequest(10, 2))


async def _migrate_v2(lib, cas):
    await (await rw(lib, cas)).migrate_v1_to_v2("0/temp")


async def _migrate_empty(lib, cas):
    await (await rw(lib, cas)).migrate_v1_to_v2("/")


async def _resize_rank(lib, cas):
    await (await rw(lib, cas)).resize_store((1, 1), array_path="0/temp")


async def _resize_unknown(lib, cas):
    await (await rw(lib, cas)).resize_store((1, 1, 1), array_path="nope")


async def _resize_variable_missing(lib, cas):
    await (await rw(lib, cas)).resize_variable("0/nope", (1,))


async def _graft_rank(lib, cas):
    s = await rw(lib, cas)
    await s.graft_store(s._root_cid, (0, 0), source_array_path="0/temp")


async def _graft_oob(lib, cas):
    s = await rw(lib, cas)
    await s.graft_store(s._root_cid, (4, 0, 0), source_array_path="0/temp")


async def _graft_unknown(lib, cas):
    s = await rw(lib, cas)
    await s.graft_store(s._root_cid, (0, 0, 0), source_array_path="0/temp",
                        target_array_path="nope")


async def _chunk_shape_change(lib, cas):
    s = await rw(lib, cas)
    meta = json.loads((await s.get("0/temp/zarr.json", PROTO)).to_bytes())
    meta["chunk_grid"]["configuration"]["chunk_shape"] = [1, 1, 1]
    await s.set("0/temp/zarr.json", buf(json.dumps(meta).encode()))


async def _no_group(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2,
                                        manifest_version=V2)
    await s.set("zarr.json", buf(GROUP_META))
    await s.set("temp/zarr.json", buf(ARRAY_META))


async def _top_level_ok(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2,
                                        manifest_version=V2)
    await s.set("temp/zarr.json", buf(ARRAY_META))


async def _xarray_no_group(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2)
    climate().to_zarr(store=s, mode="w", zarr_format=3)


async def _no_index_chunk(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2,
                                        manifest_version=V2)
    await s.set("g/zarr.json", buf(GROUP_META))
    await s.set("g/nometa/c/0", buf(b"chunk"))


async def _no_index_pointer(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2,
                                        manifest_version=V2)
    cid = await cas.save(b"chunk", "raw")
    await s.set_pointer("g/nometa/c/0", str(cid))


async def _non_cid_save(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2,
                                        manifest_version=V2)
    await s.set("temp/zarr.json", buf(ARRAY_META))
    cas.raw_ids = True
    await s.set("temp/c/0/0", buf(b"chunk"))


async def _read_mode(lib, cas):
    lib.ShardedZarrStore(cas, True, "x", shard_read_mode="bogus")


async def _multi_group_list_dir(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=4)
    climate().to_zarr(store=s, mode="w", group="0", zarr_format=3)
    climate().to_zarr(store=s, mode="w", group="1", zarr_format=3)
    r = await lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=await s.flush())
    return [k async for k in r.list_dir("")]


async def _multi_group_list_dir_clone(lib, cas):
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=4)
    climate().to_zarr(store=s, mode="w", group="0", zarr_format=3)
    climate().to_zarr(store=s, mode="w", group="1", zarr_format=3)
    return [k async for k in s.with_read_only(True).list_dir("")]


SCENARIOS = {
    "open_readonly_no_root": _open(read_only=True),
    "open_no_args": _open(read_only=False),
    "open_bad_version": _open(read_only=False, manifest_version="v3", chunks_per_shard=2),
    "open_v1_missing_chunk_shape": _open(read_only=False, array_shape=(4,), chunks_per_shard=2),
    "open_v1_explicit_missing_shapes": _open(
        read_only=False, manifest_version="sharded_zarr_v1", chunks_per_shard=2
    ),
    "open_cps_zero": _open(read_only=False, manifest_version=V2, chunks_per_shard=0),
    "open_cps_none_with_shapes": _open(read_only=False, array_shape=(4,), chunk_shape=(2,)),
    "open_v2_half_seed": _open(
        read_only=False, manifest_version=V2, chunks_per_shard=2, array_shape=(4,)
    ),
    "open_v2_bad_chunk": _open(
        read_only=False, manifest_version=V2, chunks_per_shard=2, array_shape=(4,),
        chunk_shape=(0,),
    ),
    "open_v1_rank_mismatch": _open(
        read_only=False, array_shape=(4, 4), chunk_shape=(2,), chunks_per_shard=2
    ),
    "open_bad_manifest": _root({"manifest_version": "nope", "metadata": {}}),
    "open_root_not_map": _root([1, 2]),
    "open_v2_order_F": _root(
        {"manifest_version": V2, "metadata": {}, "arrays": {"a": {
            "array_shape": [4], "chunk_shape": [2], "shard_cids": [None],
            "sharding_config": {"chunks_per_shard": 2, "order": "F"}}}}
    ),
    "open_v2_shard_count": _root(
        {"manifest_version": V2, "metadata": {}, "arrays": {"a": {
            "array_shape": [8], "chunk_shape": [2], "shard_cids": [None],
            "sharding_config": {"chunks_per_shard": 2, "order": "C"}}}}
    ),
    "open_v1_no_chunks": _root({"manifest_version": "sharded_zarr_v1", "metadata": {}}),
    "set_read_only": _set_ro,
    "delete_read_only": _delete_ro,
    "resize_read_only": _resize_ro,
    "graft_read_only": _graft_ro,
    "clear_read_only_v2": _clear_ro,
    "delete_dir_read_only_v2": _delete_dir_ro,
    "set_partial_values": _partial,
    "clear_read_only_v1": _clear_ro_v1,
    "v1_get_out_of_bounds": _v1_get("temp/c/9/0/0"),
    "v1_get_non_int": _v1_get("temp/c/x/0/0"),
    "v1_get_rank_mismatch": _v1_get("temp/c/0"),
    "v2_get_out_of_bounds_is_None": _v2_get_oob,
    "range_start_gt_end": _range,
    "migrate_v2": _migrate_v2,
    "migrate_empty_path": _migrate_empty,
    "resize_rank_mismatch": _resize_rank,
    "resize_unknown_array": _resize_unknown,
    "resize_variable_missing": _resize_variable_missing,
    "graft_rank_mismatch": _graft_rank,
    "graft_out_of_bounds": _graft_oob,
    "graft_unknown_target": _graft_unknown,
    "set_chunk_shape_change": _chunk_shape_change,
    "v2_write_without_group": _no_group,
    "v2_top_level_array_without_root_group_write_is_allowed": _top_level_ok,
    "xarray_to_zarr_v2_without_group": _xarray_no_group,
    "set_chunk_without_index": _no_index_chunk,
    "set_pointer_without_index": _no_index_pointer,
    "cas_save_not_a_cid": _non_cid_save,
    "bad_shard_read_mode": _read_mode,
    "multi_group_list_dir_read_only": _multi_group_list_dir,
    "multi_group_list_dir_read_only_clone": _multi_group_list_dir_clone,
}


async def outcome(lib, scenario) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            r = await scenario(lib, CountingCIDCAS())
        except Exception as e:  # noqa: BLE001 - the outcome is what is compared
            return f"{type(e).__name__}: {e}"
    return f"no error: {r}"


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_same_error_as_py_hamt(name):
    ours = await outcome(ipfs_hamt, SCENARIOS[name])
    theirs = await outcome(py_hamt, SCENARIOS[name])
    assert ours == theirs
    if name in PROBES:
        assert ours == PROBES[name]


async def test_bad_root_bytes_are_a_decode_error():
    """Non-DAG-CBOR root bytes: the same class and prefix (the inner text is the decoder's)."""
    for lib in (ipfs_hamt, py_hamt):
        with pytest.raises(ValueError, match="^Failed to decode root object: "):
            await _raw_root(lib, CountingCIDCAS(), b"\xff")
