"""A ContentAddressedStore written in Python, used by ipfs_hamt's HAMT."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from multiformats import CID, multihash

from ipfs_hamt import HAMT, ContentAddressedStore, ZarrHAMTStore

from conftest import id_bytes, make_dataset


class DictCAS(ContentAddressedStore):
    """Blocks in a dict. ``ids`` picks what save returns: CIDs (as KuboCAS) or multihash bytes."""

    def __init__(self, ids: str = "cid", hasher: str = "blake3", delay: bool = False):
        self.blocks: dict[bytes, bytes] = {}
        self.ids = ids
        self.hasher = hasher
        self.delay = delay
        self.saves: list[str] = []
        self.loads: list[tuple] = []

    def _digest(self, data: bytes) -> bytes:
        if self.hasher == "blake3":
            return multihash.digest(data, "blake3", size=32)
        return multihash.wrap(hashlib.sha256(data).digest(), "sha2-256")

    async def save(self, data: bytes, codec: ContentAddressedStore.CodecInput):
        if self.delay:
            await asyncio.sleep(0)
        self.saves.append(codec)
        mh = self._digest(bytes(data))
        self.blocks[bytes(mh)] = bytes(data)
        if self.ids == "cid":
            return CID("base32", 1, codec, mh)
        return bytes(mh)

    async def load(self, id, offset=None, length=None, suffix=None) -> bytes:
        if self.delay:
            await asyncio.sleep(0)
        self.loads.append((offset, length, suffix))
        mh = bytes(id.digest) if isinstance(id, CID) else bytes(id)
        data = self.blocks[mh]
        if offset is not None:
            return data[offset:] if length is None else data[offset : offset + length]
        if suffix is not None:
            return data[-suffix:] if suffix else b""
        return data


@pytest.mark.parametrize("ids,hasher", [("cid", "blake3"), ("multihash", "blake3"),
                                        ("cid", "sha2-256")])
@pytest.mark.parametrize("vab", [True, False])
async def test_custom_cas_hamt(ids, hasher, vab):
    cas = DictCAS(ids, hasher, delay=True)
    h = await HAMT.build(cas=cas, values_are_bytes=vab, max_bucket_size=3)
    items = {f"k{i}": (f"v{i}".encode() if vab else {"i": i, "s": f"v{i}"}) for i in range(300)}
    for k, v in items.items():
        await h.set(k, v)
    await h.delete("k7")
    del items["k7"]
    await h.make_read_only()
    root = h.root_node_id
    if ids == "cid":
        assert isinstance(root, CID) or isinstance(CID.decode(str(root)), CID)
        c = root if isinstance(root, CID) else CID.decode(str(root))
        assert c.codec.name == "dag-cbor" and c.hashfun.name == hasher
    else:
        assert bytes(root) == bytes(multihash.digest(cas.blocks[bytes(root)], "blake3", size=32))
    assert set(cas.saves) == {"raw", "dag-cbor"}

    ro = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=vab)
    got = await asyncio.gather(*(ro.get(k) for k in items))
    assert dict(zip(items, got)) == items
    assert sorted([k async for k in ro.keys()]) == sorted(items)
    assert await ro.len() == len(items)
    with pytest.raises(KeyError):
        await ro.get("k7")
    if vab:
        cas.loads.clear()
        assert await ro.get("k12", offset=1, length=2) == b"12"
        assert await ro.get("k12", suffix=2) == b"12"
        assert (1, 2, None) in cas.loads and (None, None, 2) in cas.loads  # ranges reach the CAS


async def test_custom_cas_same_root_as_py_hamt():
    py_hamt = pytest.importorskip("py_hamt")
    roots = []
    for lib in (py_hamt, None):
        H = py_hamt.HAMT if lib else HAMT
        cas = DictCAS("cid")
        h = await H.build(cas=cas, values_are_bytes=True)
        for i in range(500):
            await h.set(f"key-{i}", f"value-{i}".encode())
        await h.make_read_only()
        roots.append(h.root_node_id)
    assert id_bytes(roots[0]) == id_bytes(roots[1])


async def test_base_class_pin_methods_are_noops():
    cas = DictCAS()
    cid = await cas.save(b"x", "raw")
    assert await cas.pin_cid(cid, "http://unused") is None
    assert await cas.unpin_cid(cid, "http://unused") is None
    assert await cas.pin_update(cid, cid, "http://unused") is None
    assert await cas.pin_ls("http://unused") == []
    with pytest.raises(TypeError):
        ContentAddressedStore()  # abstract


def test_custom_cas_zarr():
    import xarray as xr
    import xarray.testing
    from zarr.core.sync import sync

    ds = make_dataset(nt=6, ny=4, nx=4).chunk({"time": 3})
    cas = DictCAS("cid")
    h = sync(HAMT.build(cas=cas, values_are_bytes=True))
    ds.to_zarr(store=ZarrHAMTStore(h), mode="w", zarr_format=3, consolidated=False)
    sync(h.make_read_only())
    ro = sync(HAMT.build(cas=cas, root_node_id=h.root_node_id, read_only=True,
                         values_are_bytes=True))
    got = xr.open_zarr(store=ZarrHAMTStore(ro, read_only=True), consolidated=False)
    xarray.testing.assert_identical(got.compute(), ds.compute())
