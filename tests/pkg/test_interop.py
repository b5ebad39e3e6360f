"""Interoperability with py-hamt 3.6.0, both ways, in one Python.

Plain HAMTs and xarray datasets written by py-hamt are read by ipfs_hamt and the reverse, and the
two libraries give the same root id for the same data: 34-byte blake3 multihashes on InMemoryCAS
(shared by copying ``cas.store`` or by handing one library's CAS object to the other's HAMT) and
CIDs on the real IPFS node via each library's KuboCAS.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import xarray as xr
import xarray.testing

py_hamt = pytest.importorskip("py_hamt")
import ipfs_hamt  # noqa: E402
from multiformats import CID, multihash  # noqa: E402

from conftest import id_bytes, make_dataset  # noqa: E402

LIBS = {"py_hamt": py_hamt, "ipfs_hamt": ipfs_hamt}
OTHER = {"py_hamt": "ipfs_hamt", "ipfs_hamt": "py_hamt"}

_A_CID = CID("base32", 1, "raw", multihash.digest(b"a value block", "blake3", size=32))


def value_for(i: int, values_are_bytes: bool):
    if values_are_bytes:
        return f"value-{i}-".encode() * (1 + i % 5)
    kind = i % 9
    if kind == 0:
        return f"value-{i}"
    if kind == 1:
        return (-1) ** i * i * 7919 + (2**40 if i % 2 else 0)
    if kind == 2:
        return {"zz": i, "a": [1, 2, {"c": None}], "bb": True, "n": {"x": b"\x00\x01"}}
    if kind == 3:
        return [i, "x", b"bytes", 1.5, False]
    if kind == 4:
        return None
    if kind == 5:
        return f"raw-bytes-{i}".encode()
    if kind == 6:
        return i / 3
    if kind == 7:
        return _A_CID
    return {}


def copy_blocks(src_cas, dst_cas) -> None:
    for k, v in list(src_cas.store.items()):
        dst_cas.store[k] = v


async def build(lib, cas, n, mbs, vab, delete_every=0, flush_at=None):
    """Insert key-0..key-(n-1) in a shuffled order, delete every k-th, flush; return the root."""
    h = await lib.HAMT.build(cas=cas, values_are_bytes=vab, max_bucket_size=mbs)
    order = list(range(n))
    random.Random(n * 31 + mbs).shuffle(order)
    for j, i in enumerate(order):
        if flush_at is not None and j == flush_at:
            await h.cache_vacate()
        await h.set(f"key-{i}", value_for(i, vab))
    if delete_every:
        for i in range(0, n, delete_every):
            await h.delete(f"key-{i}")
    await h.make_read_only()
    return h.root_node_id


def expected(n, vab, delete_every=0):
    return {
        f"key-{i}": value_for(i, vab)
        for i in range(n)
        if not (delete_every and i % delete_every == 0)
    }


async def check_contents(lib, cas, root, want, vab):
    h = await lib.HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=vab)
    got_keys = [k async for k in h.keys()]
    assert sorted(got_keys) == sorted(want)
    assert await h.len() == len(want)
    for k, v in want.items():
        assert await h.get(k) == v, k
    with pytest.raises(KeyError):
        await h.get("no-such-key")
    if vab and want:
        k, v = next(iter(want.items()))
        assert await h.get(k, offset=1, length=3) == v[1:4]
        assert await h.get(k, suffix=2) == v[-2:]
        assert await h.get(k, offset=2) == v[2:]
    return got_keys


HAMT_CASES = [
    # values_are_bytes, n, max_bucket_size, delete_every
    (True, 0, 4, 0),
    (True, 1, 4, 0),
    (True, 100, 1, 3),
    (True, 2000, 4, 3),
    (True, 1000, 16, 0),
    (True, 300, 4, 1),  # delete everything: back to the empty root
    (False, 5, 4, 0),
    (False, 300, 2, 4),
    (False, 1500, 4, 3),
]


@pytest.mark.parametrize("vab,n,mbs,delete_every", HAMT_CASES)
@pytest.mark.parametrize("writer", ["py_hamt", "ipfs_hamt"])
async def test_hamt_memory_roundtrip(writer, vab, n, mbs, delete_every):
    reader = OTHER[writer]
    w_cas = LIBS[writer].InMemoryCAS()
    root = await build(LIBS[writer], w_cas, n, mbs, vab, delete_every)
    assert isinstance(root, bytes) and len(root) == 34 and root[:2] == b"\x1e\x20"

    r_cas = LIBS[reader].InMemoryCAS()
    copy_blocks(w_cas, r_cas)
    want = expected(n, vab, delete_every)
    await check_contents(LIBS[reader], r_cas, root, want, vab)

    # The reader writes the same map itself (another insertion order): same root.
    r_root = await build(LIBS[reader], LIBS[reader].InMemoryCAS(), n, mbs, vab, delete_every)
    assert id_bytes(r_root) == id_bytes(root)


@pytest.mark.parametrize("vab", [True, False])
async def test_hamt_same_keys_order_read_only(vab):
    """Read-only keys() order is a function of the root: both libraries list the same order."""
    cas = py_hamt.InMemoryCAS()
    root = await build(py_hamt, cas, 700, 3, vab)
    ours = ipfs_hamt.InMemoryCAS()
    copy_blocks(cas, ours)
    theirs = await py_hamt.HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=vab)
    mine = await ipfs_hamt.HAMT.build(cas=ours, root_node_id=root, read_only=True, values_are_bytes=vab)
    assert [k async for k in mine.keys()] == [k async for k in theirs.keys()]


async def test_hamt_flush_midway_and_overwrite_same_root():
    roots = []
    for lib in (py_hamt, ipfs_hamt):
        cas = lib.InMemoryCAS()
        h = await lib.HAMT.build(cas=cas, values_are_bytes=True, max_bucket_size=3)
        for i in range(400):
            await h.set(f"k{i}", b"first")
            if i == 150:
                await h.cache_vacate()  # writable flush: stays writable
        for i in range(0, 400, 2):
            await h.set(f"k{i}", f"second-{i}".encode())
        await h.make_read_only()
        await h.enable_write()
        for i in range(0, 400, 5):
            await h.delete(f"k{i}")
        await h.make_read_only()
        roots.append(h.root_node_id)
    assert id_bytes(roots[0]) == id_bytes(roots[1])


async def test_hamt_sets_across_batches_are_seen_by_every_call():
    """ipfs_hamt queues ``set`` on InMemoryCAS and applies it in batches on a worker thread.
    Every other call must see exactly what py-hamt shows at the same point: values set just
    before (within and across batches), overwrites in a later batch, ``len``, ``keys``, deletes
    and the final root."""
    seen = {}
    for name, lib in LIBS.items():
        h = await lib.HAMT.build(cas=lib.InMemoryCAS(), values_are_bytes=True, max_bucket_size=4)
        log = []
        for i in range(3000):
            await h.set(f"k{i}", f"v{i}".encode())
            if i % 997 == 0:
                log.append(await h.get(f"k{i}"))
                log.append(await h.len())
            if i == 1800:
                log.append(sorted([k async for k in h.keys()]) == sorted(f"k{j}" for j in range(1801)))
        for i in range(0, 3000, 7):  # overwrites, queued behind the first values
            await h.set(f"k{i}", b"again")
        await h.delete("k5")
        log += [await h.get("k0"), await h.get("k700"), await h.get("k2999"), await h.len()]
        await h.make_read_only()
        log.append(await h.get("k14"))
        seen[name] = (log, id_bytes(h.root_node_id))
    assert seen["ipfs_hamt"] == seen["py_hamt"]


@pytest.mark.parametrize("writer", ["py_hamt", "ipfs_hamt"])
async def test_hamt_on_the_other_librarys_cas_object(writer):
    """Each library's HAMT runs on the other's InMemoryCAS object directly (duck typing)."""
    reader = OTHER[writer]
    cas = LIBS[reader].InMemoryCAS()  # the writer uses the *reader's* CAS
    root = await build(LIBS[writer], cas, 500, 4, False, 5)
    await check_contents(LIBS[reader], cas, root, expected(500, False, 5), False)
    await check_contents(LIBS[writer], cas, root, expected(500, False, 5), False)
    assert id_bytes(await build(LIBS[reader], LIBS[reader].InMemoryCAS(), 500, 4, False, 5)) == id_bytes(root)


# ---------------------------------------------------------------------------- xarray / Zarr


def _write_ds(lib, cas, ds, **kw):
    from zarr.core.sync import sync

    hamt = sync(lib.HAMT.build(cas=cas, values_are_bytes=True))
    ds.to_zarr(store=lib.ZarrHAMTStore(hamt, read_only=False), mode="w", zarr_format=3,
               consolidated=False, **kw)
    sync(hamt.make_read_only())
    return hamt.root_node_id


def _open_ds(lib, cas, root):
    from zarr.core.sync import sync

    hamt = sync(lib.HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True))
    return xr.open_zarr(store=lib.ZarrHAMTStore(hamt, read_only=True), zarr_format=3,
                        consolidated=False)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("writer", ["py_hamt", "ipfs_hamt"])
def test_xarray_memory_roundtrip(writer, chunked):
    reader = OTHER[writer]
    ds = make_dataset(nt=20, ny=12, nx=16, seed=3)
    kw = {}
    if chunked:
        ds = ds.chunk({"time": 5, "lat": 6, "lon": 8})
    else:
        kw["encoding"] = {"temp": {"chunks": (4, 6, 8)}, "precip": {"chunks": (10, 12, 4)}}
    w_cas = LIBS[writer].InMemoryCAS()
    root = _write_ds(LIBS[writer], w_cas, ds, **kw)

    r_cas = LIBS[reader].InMemoryCAS()
    copy_blocks(w_cas, r_cas)
    got = _open_ds(LIBS[reader], r_cas, root)
    xarray.testing.assert_identical(got.compute(), ds.compute())

    r_root = _write_ds(LIBS[reader], LIBS[reader].InMemoryCAS(), ds, **kw)
    assert id_bytes(r_root) == id_bytes(root)


@pytest.mark.parametrize("writer", ["py_hamt", "ipfs_hamt"])
async def test_encrypted_store_interop(writer):
    reader = OTHER[writer]
    key, header = bytes(range(32)), b"interop-header"
    ds = make_dataset(nt=6, ny=5, nx=4, seed=9)
    cas = py_hamt.InMemoryCAS()
    hamt = await LIBS[writer].HAMT.build(cas=cas, values_are_bytes=True)
    ds.to_zarr(store=LIBS[writer].SimpleEncryptedZarrHAMTStore(hamt, False, key, header),
               mode="w", zarr_format=3)
    await hamt.make_read_only()

    r_cas = LIBS[reader].InMemoryCAS()
    copy_blocks(cas, r_cas)
    ro = await LIBS[reader].HAMT.build(cas=r_cas, root_node_id=hamt.root_node_id,
                                       read_only=True, values_are_bytes=True)
    got = xr.open_zarr(store=LIBS[reader].SimpleEncryptedZarrHAMTStore(ro, True, key, header))
    xarray.testing.assert_identical(got, ds)
    # Every stored value is framed: nonce(24) || tag(16) || ciphertext.
    raw = await ro.get("zarr.json")
    plain = await LIBS[reader].SimpleEncryptedZarrHAMTStore(ro, True, key, header).get(
        "zarr.json", _proto())
    assert len(raw) == 40 + len(plain.to_bytes())


def _proto():
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype()


# ---------------------------------------------------------------------------- real IPFS node


def _kubo(lib, kubo_urls):
    rpc, gateway = kubo_urls
    return lib.KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway)


@pytest.mark.parametrize("vab", [True, False])
@pytest.mark.parametrize("writer", ["py_hamt", "ipfs_hamt"])
async def test_hamt_kubo_roundtrip(writer, vab, kubo_urls):
    reader = OTHER[writer]
    n, mbs = 120, 2
    async with _kubo(LIBS[writer], kubo_urls) as w_cas, _kubo(LIBS[reader], kubo_urls) as r_cas:
        root = await build(LIBS[writer], w_cas, n, mbs, vab, delete_every=4)
        assert str(root).startswith("bafyr4i") or bytes(CID.decode(str(root)))[:4] == b"\x01\x71\x1e\x20"
        await check_contents(LIBS[reader], r_cas, root, expected(n, vab, 4), vab)
        r_root = await build(LIBS[reader], r_cas, n, mbs, vab, delete_every=4)
        assert id_bytes(r_root) == id_bytes(root)
        # Ids given as CID strings work too.
        h = await LIBS[reader].HAMT.build(cas=r_cas, root_node_id=CID.decode(str(root)),
                                          read_only=True, values_are_bytes=vab)
        assert await h.get("key-1") == value_for(1, vab)


@pytest.mark.parametrize("writer", ["py_hamt", "ipfs_hamt"])
async def test_xarray_kubo_roundtrip(writer, kubo_urls):
    reader = OTHER[writer]
    ds = make_dataset(nt=8, ny=6, nx=6, seed=5).chunk({"time": 4, "lat": 3, "lon": 6})
    async with _kubo(LIBS[writer], kubo_urls) as w_cas, _kubo(LIBS[reader], kubo_urls) as r_cas:
        hamt = await LIBS[writer].HAMT.build(cas=w_cas, values_are_bytes=True)
        ds.to_zarr(store=LIBS[writer].ZarrHAMTStore(hamt), mode="w", zarr_format=3,
                   consolidated=False)
        await hamt.make_read_only()
        root = hamt.root_node_id

        ro = await LIBS[reader].HAMT.build(cas=r_cas, root_node_id=root, read_only=True,
                                           values_are_bytes=True)
        got = xr.open_zarr(store=LIBS[reader].ZarrHAMTStore(ro, read_only=True),
                           consolidated=False)
        xarray.testing.assert_identical(got, ds)

        h2 = await LIBS[reader].HAMT.build(cas=r_cas, values_are_bytes=True)
        ds.to_zarr(store=LIBS[reader].ZarrHAMTStore(h2), mode="w", zarr_format=3,
                   consolidated=False)
        await h2.make_read_only()
        assert id_bytes(h2.root_node_id) == id_bytes(root)


def test_hamt_sets_from_several_threads_all_land():
    """Several threads, each with its own event loop, set keys on one HAMT (the queue is taken
    from threads holding the GIL and from threads that released it): every key lands, once."""
    import asyncio
    import threading

    async def build():
        return await ipfs_hamt.HAMT.build(cas=ipfs_hamt.InMemoryCAS(), values_are_bytes=True)

    h = asyncio.run(build())

    def writer(t: int) -> None:
        async def run():
            for i in range(1500):
                await h.set(f"t{t}-{i}", f"{t}:{i}".encode())
                if i % 400 == 0:
                    assert await h.get(f"t{t}-{i}") == f"{t}:{i}".encode()

        asyncio.run(run())

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive(), "a writer thread hung"

    async def check():
        assert await h.len() == 6000
        await h.make_read_only()
        for t in range(4):
            for i in (0, 777, 1499):
                assert await h.get(f"t{t}-{i}") == f"{t}:{i}".encode()

    asyncio.run(check())
