"""ShardedZarrStore against py-hamt 3.6.0's, in one Python: the same operations give the same
roots, each library reads the other's stores through xarray, and the read modes make the
same CAS traffic. Datasets are written without consolidated metadata where roots are
compared: zarr builds it from ``list_dir``, whose order py-hamt leaves to a Python set
(it changes with the hash seed). The CAS is a CID-returning in-memory store written in Python (py-hamt's own
tests use one: its InMemoryCAS hands out multihash bytes, which its sharded store refuses).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import xarray.testing
import zarr

py_hamt = pytest.importorskip("py_hamt")
import ipfs_hamt  # noqa: E402

from sharded_util import CountingCIDCAS, climate  # noqa: E402

LIBS = {"py_hamt": py_hamt, "ipfs_hamt": ipfs_hamt}
PROTO = zarr.core.buffer.default_buffer_prototype()


class quiet(warnings.catch_warnings):
    """Silences the v1 deprecation warning of both libraries."""

    def __enter__(self):
        r = super().__enter__()
        warnings.simplefilter("ignore", FutureWarning)
        return r


async def write_v2(lib, cas, ds, cps=5, group="0"):
    store = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=cps)
    ds.to_zarr(store=store, mode="w", group=group, zarr_format=3, consolidated=False)
    return await store.flush()


async def open_ro(lib, cas, root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return await lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root, **kw)


async def test_xarray_v2_same_root_and_cross_reads():
    ds = climate()
    runs = {}
    for name, lib in LIBS.items():
        cas = CountingCIDCAS()
        runs[name] = (await write_v2(lib, cas, ds), cas)
    assert runs["py_hamt"][0] == runs["ipfs_hamt"][0]
    assert runs["py_hamt"][1].blocks == runs["ipfs_hamt"][1].blocks
    for writer, (root, cas) in runs.items():
        for reader, lib in LIBS.items():
            store = await open_ro(lib, cas, root)
            got = xr.open_zarr(store, group="0").load()
            xarray.testing.assert_identical(got, ds.compute())
            # A single-group store also reads without group= (read through group 0).
            plain = xr.open_zarr(await open_ro(lib, cas, root)).load()
            xarray.testing.assert_equal(plain["temp"], ds["temp"].compute())


async def test_xarray_v1_same_root_warns_and_reads():
    ds = climate()
    roots = {}
    for name, lib in LIBS.items():
        cas = CountingCIDCAS()
        with pytest.warns(lib.ShardedZarrV1DeprecationWarning, match="sharded_zarr_v1 is deprecated"):
            store = await lib.ShardedZarrStore.open(
                cas=cas, read_only=False, array_shape=(14, 6, 8), chunk_shape=(4, 3, 4),
                chunks_per_shard=5,
            )
        ds.to_zarr(store=store, mode="w", zarr_format=3, consolidated=False)
        roots[name] = (await store.flush(), cas)
    assert roots["py_hamt"][0] == roots["ipfs_hamt"][0]
    root, cas = roots["py_hamt"]
    with pytest.warns(ipfs_hamt.ShardedZarrV1DeprecationWarning):
        store = await ipfs_hamt.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root)
    xarray.testing.assert_identical(xr.open_zarr(store).load(), ds.compute())


async def test_in_memory_cas_gives_the_kubo_cids():
    """ipfs_hamt's ShardedZarrStore works on its InMemoryCAS (py-hamt's fails) and names the
    blocks by CIDv1/BLAKE3, so the root equals the one on a CID-returning CAS."""
    ds = climate()
    mem = ipfs_hamt.InMemoryCAS()
    root = await write_v2(ipfs_hamt, mem, ds)
    assert root == await write_v2(py_hamt, CountingCIDCAS(), ds)
    store = await open_ro(ipfs_hamt, mem, root)
    xarray.testing.assert_identical(xr.open_zarr(store, group="0").load(), ds.compute())


async def chunk_reads(lib, cas, root, mode, keys):
    store = await open_ro(lib, cas, root, shard_read_mode=mode)
    before = cas.loads
    out = [await store.get(k, PROTO) for k in keys]
    return [None if b is None else b.to_bytes() for b in out], cas.loads - before, store


@pytest.mark.parametrize("mode", ["full", "sparse", "auto"])
async def test_read_modes_make_py_hamts_cas_traffic(mode):
    cas = CountingCIDCAS()
    root = await write_v2(py_hamt, cas, climate(), cps=3)
    keys = ["0/temp/c/0/0/0", "0/temp/c/0/0/1", "0/temp/c/1/1/1", "0/temp/c/0/0/0",
            "0/temp/c/3/1/1", "0/temp/c/9/9/9", "0/time/c/0"]
    got = {n: await chunk_reads(lib, cas, root, mode, keys) for n, lib in LIBS.items()}
    assert got["py_hamt"][0] == got["ipfs_hamt"][0]
    assert got["py_hamt"][1] == got["ipfs_hamt"][1], f"{mode}: CAS loads differ"


async def test_auto_mode_latches_at_the_256th_read_of_a_shard():
    cas = CountingCIDCAS()
    root = await write_v2(py_hamt, cas, climate(), cps=3)
    key = "0/temp/c/1/1/1"
    for name, lib in LIBS.items():
        store = await open_ro(lib, cas, root)
        before = cas.loads
        for _ in range(255):
            await store.get(key, PROTO)
        assert cas.loads - before == 510, name
        assert store._full_mode_latched is False
        await store.get(key, PROTO)
        assert store._full_mode_latched is True, name
        mark = cas.loads
        await store.get(key, PROTO)
        assert cas.loads - mark == 1, f"{name}: a latched store reads the cached shard"


async def test_with_read_only_and_eq():
    cas = CountingCIDCAS()
    root = await write_v2(ipfs_hamt, cas, climate())
    a = await open_ro(ipfs_hamt, cas, root)
    b = await open_ro(ipfs_hamt, cas, root)
    assert a.with_read_only(True) is a
    w = a.with_read_only(False)
    assert w is not a and not w.read_only and a.read_only and w == a and a == b
    assert a != "not a store" and not (a == object())
    with pytest.raises(TypeError):
        hash(a)
    # The writable clone writes; the flushed root differs, the original stays readable.
    await w.set("0/temp/c/0/0/0", PROTO.buffer.from_bytes(b"new chunk"))
    new_root = await w.flush()
    assert new_root != root and w != a
    assert (await a.get("0/temp/c/0/0/0", PROTO)).to_bytes() != b"new chunk"
    # A read-only clone of a writer shares its state and refuses writes.
    r = w.with_read_only(True)
    assert (await r.get("0/temp/c/0/0/0", PROTO)).to_bytes() == b"new chunk"
    with pytest.raises(PermissionError, match="Cannot write to a read-only store."):
        await r.set("0/temp/c/0/0/0", PROTO.buffer.from_bytes(b"x"))
    # Two never-flushed stores are equal (both roots None), as in py-hamt.
    n1 = await ipfs_hamt.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2)
    n2 = await ipfs_hamt.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=2)
    assert n1 == n2


async def test_flush_returns_the_opened_string_when_unchanged():
    cas = CountingCIDCAS()
    root = await write_v2(ipfs_hamt, cas, climate())
    from multiformats import CID

    b58 = CID.decode(root).encode("base58btc")
    for r in (root, b58):
        s = await ipfs_hamt.ShardedZarrStore.open(cas=cas, read_only=False, root_cid=r)
        await s.exists("0/temp/c/0/0/0")
        await s.get("0/temp/c/0/0/0", PROTO)
        assert await s.flush() == r


async def ops_sequence(lib, cas, src_root):
    """resize_store, resize_variable, graft_store, delete_dir, delete, set_pointer and list()
    on a reopened store; returns the roots along the way and the listing."""
    s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, root_cid=src_root)
    out = []
    await s.resize_variable("0/temp", (28, 6, 8))
    out.append(await s.flush())
    await s.graft_store(src_root, (3, 0, 0), source_array_path="0/temp",
                        target_array_path="0/temp")
    out.append(await s.flush())
    await s.resize_store((28, 6, 12), array_path="0/temp")
    out.append(await s.flush())
    await s.delete("0/temp/c/0/0/0")
    await s.delete_dir("0/lat")
    out.append(await s.flush())
    keys = [k async for k in s.list()]
    dirs = sorted([k async for k in s.list_dir("0/temp/c")])
    await s.clear()
    out.append(await s.flush())
    return out, keys, dirs


async def test_whole_store_operations_give_py_hamts_roots():
    ds = climate()
    results = {}
    for name, lib in LIBS.items():
        cas = CountingCIDCAS()
        root = await write_v2(lib, cas, ds)
        results[name] = await ops_sequence(lib, cas, root)
    assert results["py_hamt"] == results["ipfs_hamt"]


async def test_migrate_v1_to_v2_gives_py_hamts_root():
    ds = climate()
    roots = {}
    for name, lib in LIBS.items():
        cas = CountingCIDCAS()
        with quiet():
            s = await lib.ShardedZarrStore.open(
                cas=cas, read_only=False, array_shape=(14, 6, 8), chunk_shape=(4, 3, 4),
                chunks_per_shard=5,
            )
            ds.to_zarr(store=s, mode="w", zarr_format=3, consolidated=False)
            v1 = await s.flush()
            s2 = await lib.ShardedZarrStore.open(cas=cas, read_only=False, root_cid=v1)
            roots[name] = await s2.migrate_v1_to_v2("0/temp")
            ro = await open_ro(lib, cas, roots[name])
            got = xr.open_zarr(ro, group="0").load()
            np.testing.assert_array_equal(got["temp"].values, ds["temp"].values)
    assert roots["py_hamt"] == roots["ipfs_hamt"]


async def test_multi_group_store_needs_a_group():
    ds = climate()
    for name, lib in LIBS.items():
        cas = CountingCIDCAS()
        s = await lib.ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=4)
        ds.to_zarr(store=s, mode="w", group="0", zarr_format=3, consolidated=False)
        ds.isel(lat=slice(0, 3)).to_zarr(store=s, mode="w", group="1", zarr_format=3, consolidated=False)
        root = await s.flush()
        assert sorted([k async for k in s.list_dir("")]) == ["0", "1", "zarr.json"], name
        ro = await open_ro(lib, cas, root)
        assert ro._v2_top_level_groups() == {"0", "1"}
        assert ro._v2_requires_explicit_group_for_root_read() is True
        with pytest.raises(ValueError, match="explicit Zarr group") as e:
            xr.open_zarr(ro)
        assert "Open the desired pyramid level with xr.open_zarr(..., group='0')" in str(e.value)
        got = xr.open_zarr(ro, group="1").load()
        assert got.sizes["lat"] == 3


async def test_private_geometry_dclimate_reads():
    """dClimate's publishing code reads these private attributes."""
    ds = climate()
    for name, lib in LIBS.items():
        cas = CountingCIDCAS()
        with quiet():
            v1 = await lib.ShardedZarrStore.open(
                cas=cas, read_only=False, array_shape=(14, 6, 8), chunk_shape=(4, 3, 4),
                chunks_per_shard=5,
            )
        assert tuple(v1._array_shape) == (14, 6, 8), name
        assert tuple(v1._chunks_per_dim) == (4, 2, 2), name
        root = await write_v2(lib, cas, ds)
        from multiformats import CID

        ro = await lib.ShardedZarrStore.open(cas=cas, read_only=True, root_cid=CID.decode(root))
        assert ro._v2_top_level_groups() == {"0"}
        assert ro._v2_requires_explicit_group_for_root_read() is False
        xarray.testing.assert_identical(xr.open_zarr(ro).temp.load(), ds.temp.compute())


async def test_converter_gives_py_hamts_root(capsys):
    ds = climate()
    roots = {}
    cas = CountingCIDCAS()
    hamt = await py_hamt.HAMT.build(cas=cas, values_are_bytes=True)
    ds.to_zarr(store=py_hamt.ZarrHAMTStore(hamt, read_only=False), mode="w", zarr_format=3, consolidated=False)
    await hamt.make_read_only()
    for name, lib in LIBS.items():
        roots[name] = await lib.convert_hamt_to_sharded(cas, str(hamt.root_node_id), 5)
    assert roots["py_hamt"] == roots["ipfs_hamt"]
    assert "New ShardedZarrStore Root CID: " + roots["ipfs_hamt"] in capsys.readouterr().out
    ro = await open_ro(ipfs_hamt, cas, roots["ipfs_hamt"])
    xarray.testing.assert_identical(xr.open_zarr(ro).load(), ds.compute())


async def test_converter_on_in_memory_cas():
    ds = climate()
    mem = ipfs_hamt.InMemoryCAS()
    hamt = await ipfs_hamt.HAMT.build(cas=mem, values_are_bytes=True)
    ds.to_zarr(store=ipfs_hamt.ZarrHAMTStore(hamt, read_only=False), mode="w", zarr_format=3, consolidated=False)
    await hamt.make_read_only()
    root = await ipfs_hamt.convert_hamt_to_sharded(mem, hamt.root_node_id, 5)
    ro = await open_ro(ipfs_hamt, mem, root)
    xarray.testing.assert_identical(xr.open_zarr(ro).load(), ds.compute())


async def test_instrumentation_counts_sharded_gets(monkeypatch):
    from ipfs_hamt import instrumentation

    monkeypatch.setenv("PY_HAMT_TRACE", "1")
    instrumentation.reset("sharded")
    cas = CountingCIDCAS()
    root = await write_v2(ipfs_hamt, cas, climate())
    ro = await open_ro(ipfs_hamt, cas, root)
    await ro.get("0/temp/c/0/0/1", PROTO)
    await ro.get("0/zarr.json", PROTO)
    mem = ipfs_hamt.InMemoryCAS()
    hamt = await ipfs_hamt.HAMT.build(cas=mem, values_are_bytes=True)
    await hamt.set("a/c/0", b"x")
    await hamt.make_read_only()
    hs = ipfs_hamt.ZarrHAMTStore(hamt, read_only=True)
    assert (await hs.get("a/c/0", PROTO)).to_bytes() == b"x"
    assert await hs.get("a/c/1", PROTO) is None
    snap = instrumentation.snapshot()
    assert snap["label"] == "sharded"
    assert snap["counters"]["sharded_store.get.chunk.total"] == 1
    assert snap["counters"]["sharded_store.get.metadata.hit"] == 1
    assert snap["counters"]["hamt_store.get.chunk.total"] == 2
    assert snap["counters"]["hamt_store.get.chunk.miss"] == 1
    monkeypatch.delenv("PY_HAMT_TRACE")
    assert instrumentation.snapshot() == {}
