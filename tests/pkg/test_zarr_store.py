"""ZarrHAMTStore (ipfs_hamt) behaviour: the store API zarr uses, and xarray/dask round trips."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import dask
import numpy as np
import pytest
import xarray as xr
import xarray.testing
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ipfs_hamt import HAMT, InMemoryCAS, ZarrHAMTStore

from conftest import make_dataset

P = default_buffer_prototype()


def buf(b: bytes):
    return P.buffer.from_bytes(b)


async def _store(keys=None, cas=None):
    cas = cas or InMemoryCAS()
    hamt = await HAMT.build(cas=cas, values_are_bytes=True)
    store = ZarrHAMTStore(hamt, read_only=False)
    for k, v in (keys or {}).items():
        await store.set(k, buf(v))
    return store


async def _freeze(store):
    await store.hamt.make_read_only()
    ro = await HAMT.build(cas=store.hamt.cas, root_node_id=store.hamt.root_node_id,
                          read_only=True, values_are_bytes=True)
    return ZarrHAMTStore(ro, read_only=True)


# ----------------------------------------------------------------------------- construction


async def test_constructor_checks_mode_and_values_are_bytes():
    cas = InMemoryCAS()
    hamt = await HAMT.build(cas=cas, values_are_bytes=True)
    with pytest.raises(AssertionError):
        ZarrHAMTStore(hamt, read_only=True)
    not_bytes = await HAMT.build(cas=cas, values_are_bytes=False)
    with pytest.raises(AssertionError):
        ZarrHAMTStore(not_bytes)
    store = ZarrHAMTStore(hamt)
    assert store.read_only is False and store.hamt is hamt
    assert store.metadata_read_cache == {}
    assert isinstance(store, zarr.abc.store.Store)


async def test_read_only_and_with_read_only():
    store = await _store({"a": b"1"})
    assert store.read_only is False
    assert store.supports_writes and store.supports_deletes and store.supports_listing
    assert store.supports_partial_writes is False
    assert store.with_read_only(False) is store
    clone = store.with_read_only(True)
    assert clone is not store and type(clone) is ZarrHAMTStore
    assert clone.read_only is True and store.read_only is False
    assert clone.hamt is store.hamt  # shallow: the HAMT is shared
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await clone.set("b", buf(b"2"))
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await clone.delete("a")
    assert (await clone.get("a", P)).to_bytes() == b"1"
    back = clone.with_read_only(False)
    assert back.read_only is False
    await back.set("b", buf(b"2"))
    assert (await store.get("b", P)).to_bytes() == b"2"

    ro = await _freeze(store)
    assert ro.read_only is True and not ro.supports_writes and not ro.supports_deletes
    assert ro.with_read_only(True) is ro


async def test_eq_compares_roots():
    a = await _freeze(await _store({"k": b"v"}))
    b = await _freeze(await _store({"k": b"v"}))
    c = await _freeze(await _store({"k": b"other"}))
    assert a == b and a.hamt is not b.hamt
    assert a != c
    assert a != "not a store"
    assert a == a.with_read_only(False)
    # Writable HAMTs with unwritten changes: a store equals one on the same HAMT only.
    w1, w2 = await _store({"k": b"v"}), await _store({"k": b"v"})
    assert w1 == w1.with_read_only(True) and w1 == ZarrHAMTStore(w1.hamt)
    if w1.hamt.root_node_id is None or w1.hamt.root_node_id != w2.hamt.root_node_id:
        assert w1 != w2


# ----------------------------------------------------------------------------- reads


async def test_get_missing_full_and_ranges():
    data = bytes(range(200))
    store = await _store({"arr/c/0": data})
    for s in (store, await _freeze(store)):
        assert await s.get("missing", P) is None
        assert await s.get("missing", P, RangeByteRequest(0, 3)) is None
        assert (await s.get("arr/c/0", P)).to_bytes() == data
        assert (await s.get("arr/c/0", P, RangeByteRequest(10, 20))).to_bytes() == data[10:20]
        assert (await s.get("arr/c/0", P, RangeByteRequest(5, 5))).to_bytes() == b""
        assert (await s.get("arr/c/0", P, OffsetByteRequest(150))).to_bytes() == data[150:]
        assert (await s.get("arr/c/0", P, SuffixByteRequest(7))).to_bytes() == data[-7:]
        with pytest.raises(ValueError):
            await s.get("arr/c/0", P, RangeByteRequest(20, 10))


async def test_metadata_read_cache():
    store = await _store({"zarr.json": b"{1}", "a/zarr.json": b"{2}", "a/c/0": b"x"})
    assert store.metadata_read_cache == {}
    await store.get("a/c/0", P)
    await store.get("zarr.json", P, RangeByteRequest(0, 1))  # ranged reads are not cached
    assert store.metadata_read_cache == {}
    assert (await store.get("zarr.json", P)).to_bytes() == b"{1}"
    assert store.metadata_read_cache == {"zarr.json": b"{1}"}
    await store.set("zarr.json", buf(b"{1b}"))  # refreshes a cached entry
    await store.set("a/zarr.json", buf(b"{2b}"))  # does not add an uncached one
    assert store.metadata_read_cache == {"zarr.json": b"{1b}"}
    assert (await store.get("zarr.json", P)).to_bytes() == b"{1b}"
    await store.delete("zarr.json")  # evicts
    assert store.metadata_read_cache == {}
    assert await store.get("zarr.json", P) is None
    clone = store.with_read_only(True)
    assert clone.metadata_read_cache == store.metadata_read_cache


async def test_get_partial_values_and_exists():
    store = await _store({"a": b"0123456789", "b": b"abc"})
    out = await store.get_partial_values(
        P, [("a", None), ("a", RangeByteRequest(2, 4)), ("nope", None), ("b", SuffixByteRequest(1))]
    )
    assert [o.to_bytes() if o is not None else None for o in out] == [
        b"0123456789", b"23", None, b"c"]
    assert await store.exists("a") and not await store.exists("nope")
    ro = await _freeze(store)
    assert await ro.exists("b") and not await ro.exists("nope")


# ----------------------------------------------------------------------------- writes


async def test_set_if_not_exists_partial_values_and_delete():
    store = await _store({"a": b"1"})
    await store.set_if_not_exists("a", buf(b"changed"))
    await store.set_if_not_exists("b", buf(b"2"))
    assert (await store.get("a", P)).to_bytes() == b"1"
    assert (await store.get("b", P)).to_bytes() == b"2"
    with pytest.raises(NotImplementedError):
        await store.set_partial_values([("a", 0, b"x")])
    await store.delete("never-there")  # a missing key is not an error
    await store.delete("a")
    assert not await store.exists("a")
    ro = await _freeze(store)
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await ro.set("c", buf(b"3"))
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await ro.delete("b")


# ----------------------------------------------------------------------------- listing


async def test_list_list_prefix_list_dir():
    keys = ["a/b/c/d", "a/b/c/e", "a/b/f", "a/b/g/h/i", "a/x", "zarr.json", "b/c/0"]
    store = await _store({k: k.encode() for k in keys})
    for s in (store, await _freeze(store)):
        assert sorted([k async for k in s.list()]) == sorted(keys)
        assert sorted([k async for k in s.list_prefix("a/b/")]) == [
            "a/b/c/d", "a/b/c/e", "a/b/f", "a/b/g/h/i"]
        assert [k async for k in s.list_prefix("nothing/")] == []
        names = [k async for k in s.list_dir("a/b/")]
        assert sorted(names) == ["c", "f", "g"] and len(names) == 3
        # first-seen order of the HAMT's keys()
        order = []
        async for k in s.hamt.keys():
            if k.startswith("a/b/"):
                n = k[4:].split("/")[0]
                if n not in order:
                    order.append(n)
        assert names == order
        assert sorted([k async for k in s.list_dir("")]) == ["a", "b", "zarr.json"]
        assert not await s.is_empty("a/") and await s.is_empty("q/")


# ----------------------------------------------------------------------------- xarray / dask


def _write(ds, cas=None, **kw):
    cas = cas or InMemoryCAS()
    hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
    ds.to_zarr(store=ZarrHAMTStore(hamt, read_only=False), mode="w", zarr_format=3, **kw)
    sync(hamt.make_read_only())
    return cas, hamt.root_node_id


def _ro_store(cas, root):
    hamt = sync(HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True))
    return ZarrHAMTStore(hamt, read_only=True)


@pytest.mark.parametrize("consolidated", [False, True])
def test_xarray_dask_chunked_roundtrip(consolidated):
    ds = make_dataset(nt=24, ny=10, nx=12, seed=1).chunk({"time": 6, "lat": 5, "lon": 4})
    cas, root = _write(ds, consolidated=consolidated)
    store = _ro_store(cas, root)
    got = xr.open_zarr(store=store, consolidated=consolidated)
    assert got.temp.chunks == ((6,) * 4, (5, 5), (4, 4, 4))  # dask chunks = zarr chunks
    with dask.config.set(scheduler="threads"):
        xarray.testing.assert_identical(got.compute(), ds.compute())
    with dask.config.set(scheduler="sync"):
        sub = got.temp.isel(time=slice(3, 9), lat=slice(2, 7)).compute()
    xarray.testing.assert_identical(sub, ds.temp.isel(time=slice(3, 9), lat=slice(2, 7)).compute())
    chunk_keys = [k for k in sync(_collect(store.list_prefix("temp/c/")))]
    assert len(chunk_keys) == 4 * 2 * 3


async def _collect(it):
    return [x async for x in it]


def test_xarray_append_and_rewrite_from_root():
    ds = make_dataset(nt=10, ny=4, nx=5, seed=2)
    first, second = ds.isel(time=slice(0, 6)), ds.isel(time=slice(6, 10))
    cas = InMemoryCAS()
    hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
    store = ZarrHAMTStore(hamt)
    first.to_zarr(store=store, mode="w", zarr_format=3, consolidated=False,
                  encoding={"temp": {"chunks": (2, 4, 5)}})
    second.to_zarr(store=store, mode="a", append_dim="time", consolidated=False)
    sync(hamt.make_read_only())
    got = xr.open_zarr(store=_ro_store(cas, hamt.root_node_id), consolidated=False)
    xarray.testing.assert_identical(got.compute(), ds)

    # Reopen the root for writing, overwrite a region, flush: a new root with the change.
    h2 = sync(HAMT.build(cas=cas, root_node_id=hamt.root_node_id, values_are_bytes=True))
    changed = ds.copy(deep=True)
    changed["temp"][0:2] = -1.0
    changed[["temp"]].isel(time=slice(0, 2)).drop_vars(["lat", "lon"]).to_zarr(
        store=ZarrHAMTStore(h2), region={"time": slice(0, 2)}, consolidated=False)
    sync(h2.make_read_only())
    assert h2.root_node_id != hamt.root_node_id
    got2 = xr.open_zarr(store=_ro_store(cas, h2.root_node_id), consolidated=False).compute()
    xarray.testing.assert_identical(got2, changed)


def test_parallel_reads_threads_and_dask():
    ds = make_dataset(nt=16, ny=8, nx=8, seed=4).chunk({"time": 2, "lat": 4, "lon": 4})
    cas, root = _write(ds, consolidated=False)
    want = ds.compute()
    shared = _ro_store(cas, root)

    def open_and_load(i):
        # half the threads share one read-only store, half open their own
        store = shared if i % 2 else _ro_store(cas, root)
        got = xr.open_zarr(store=store, consolidated=False)
        with dask.config.set(scheduler="sync"):
            loaded = got.isel(time=slice(i % 8, i % 8 + 8)).compute()
        xarray.testing.assert_identical(loaded, want.isel(time=slice(i % 8, i % 8 + 8)))
        return threading.get_ident()

    with ThreadPoolExecutor(max_workers=8) as ex:
        idents = list(ex.map(open_and_load, range(16)))
    assert len(idents) == 16

    got = xr.open_zarr(store=shared, consolidated=False)
    with dask.config.set(scheduler="threads", num_workers=8):
        xarray.testing.assert_identical(got.compute(), want)
        assert float(got.precip.sum().compute()) == pytest.approx(float(want.precip.sum()))


def test_parallel_reads_real_node(kubo_urls):
    from ipfs_hamt import KuboCAS

    rpc, gateway = kubo_urls
    ds = make_dataset(nt=8, ny=6, nx=6, seed=6).chunk({"time": 2, "lat": 3, "lon": 6})
    cas = KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway)
    try:
        _, root = _write(ds, cas=cas, consolidated=False)
        shared = _ro_store(cas, root)

        def load(_):
            got = xr.open_zarr(store=shared, consolidated=False)
            with dask.config.set(scheduler="sync"):
                xarray.testing.assert_identical(got.compute(), ds.compute())

        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(load, range(6)))
        with dask.config.set(scheduler="threads"):
            got = xr.open_zarr(store=shared, consolidated=False)
            xarray.testing.assert_identical(got.compute(), ds.compute())
    finally:
        sync(cas.aclose())


def test_zarr_api_sharded_array_partial_reads():
    """Sharding makes zarr read byte ranges of one value: the ranges reach the HAMT."""
    cas = InMemoryCAS()
    hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
    root_group = zarr.open_group(store=ZarrHAMTStore(hamt), mode="w", zarr_format=3)
    arr = root_group.create_array("s", shape=(64, 64), chunks=(8, 8), shards=(32, 32),
                                  dtype="int32")
    data = np.arange(64 * 64, dtype="int32").reshape(64, 64)
    arr[:] = data
    sync(hamt.make_read_only())

    calls = []
    store = _ro_store(cas, hamt.root_node_id)
    orig = store.hamt.get

    async def spy(key, offset=None, length=None, suffix=None):
        calls.append((key, offset, length, suffix))
        return await orig(key, offset=offset, length=length, suffix=suffix)

    store.hamt.get = spy  # instance attribute shadows the method for this test only
    try:
        a = zarr.open_array(store=store, path="s", mode="r")
        np.testing.assert_array_equal(a[3:5, 40:42], data[3:5, 40:42])
        np.testing.assert_array_equal(a[:], data)
    except (AttributeError, TypeError):
        # An extension type may not allow instance attributes: check the data only.
        store = _ro_store(cas, hamt.root_node_id)
        a = zarr.open_array(store=store, path="s", mode="r")
        np.testing.assert_array_equal(a[3:5, 40:42], data[3:5, 40:42])
        np.testing.assert_array_equal(a[:], data)
        return
    assert any(c[1] is not None or c[3] is not None for c in calls if c[0].startswith("s/c/"))


def test_open_read_mode_on_a_writable_store():
    """zarr/xarray opening a writable store with mode "r" (zarr 3.1 calls with_read_only(True))."""
    ds = make_dataset(nt=4, ny=3, nx=3)
    hamt = sync(HAMT.build(cas=InMemoryCAS(), values_are_bytes=True))
    store = ZarrHAMTStore(hamt)
    ds.to_zarr(store=store, mode="w", zarr_format=3, consolidated=False)
    g = zarr.open_group(store=store, mode="r")
    np.testing.assert_array_equal(g["temp"][:], ds.temp.values)
    with pytest.raises(Exception):
        g["temp"][0, 0, 0] = 1.0
    got = xr.open_zarr(store=store, consolidated=False)
    xarray.testing.assert_identical(got.compute(), ds)
    assert store.read_only is False  # the original store is unchanged
