"""Error cases of the HAMT and the stores (ipfs_hamt)."""

from __future__ import annotations

import pytest
from zarr.core.buffer import default_buffer_prototype

from ipfs_hamt import (
    HAMT,
    GatewayContentMismatch,
    GatewayContentUnverifiable,
    InMemoryCAS,
    SimpleEncryptedZarrHAMTStore,
    ZarrHAMTStore,
    blake3_hashfn,
)

P = default_buffer_prototype()


async def _frozen(items, vab=True):
    cas = InMemoryCAS()
    h = await HAMT.build(cas=cas, values_are_bytes=vab)
    for k, v in items.items():
        await h.set(k, v)
    await h.make_read_only()
    return cas, h


async def test_read_only_hamt_rejects_writes():
    cas, h = await _frozen({"a": b"1"})
    assert h.read_only is True
    with pytest.raises(Exception, match="^Cannot call set on a read only HAMT$"):
        await h.set("b", b"2")
    with pytest.raises(Exception, match="^Cannot call delete on a read only HAMT$"):
        await h.delete("a")
    ro = await HAMT.build(cas=cas, root_node_id=h.root_node_id, read_only=True,
                          values_are_bytes=True)
    with pytest.raises(Exception):
        await ro.set("b", b"2")
    assert await ro.get("a") == b"1"


async def test_missing_keys():
    cas, h = await _frozen({"a": b"1"})
    with pytest.raises(KeyError):
        await h.get("b")
    with pytest.raises(KeyError):
        await h.get_pointer("b")
    await h.enable_write()
    with pytest.raises(KeyError):
        await h.delete("b")
    assert await h.get("a") == b"1"  # the failed delete changed nothing
    empty = await HAMT.build(cas=InMemoryCAS())
    with pytest.raises(KeyError):
        await empty.get("anything")
    assert await empty.len() == 0
    assert [k async for k in empty.keys()] == []


async def test_bad_bucket_size():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="Bucket size maximum must be a positive integer"):
            await HAMT.build(cas=InMemoryCAS(), max_bucket_size=bad)


async def test_bad_encryption_key_sizes():
    h = await HAMT.build(cas=InMemoryCAS(), values_are_bytes=True)
    for n in (0, 1, 24, 31, 33, 48):
        with pytest.raises(ValueError, match="Encryption key must be exactly 32 bytes long."):
            SimpleEncryptedZarrHAMTStore(h, False, bytes(n), b"h")
    SimpleEncryptedZarrHAMTStore(h, False, bytes(32), b"")  # an empty header is fine


async def test_store_mode_mismatch_and_read_only_store():
    cas, h = await _frozen({"zarr.json": b"{}"})
    with pytest.raises(AssertionError):
        ZarrHAMTStore(h, read_only=False)
    store = ZarrHAMTStore(h, read_only=True)
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await store.set("x", P.buffer.from_bytes(b"1"))
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await store.delete("zarr.json")
    assert await store.get("nope", P) is None


async def test_values_are_bytes_false_range_reads_and_misc():
    _, h = await _frozen({"v": {"a": 1}}, vab=False)
    assert await h.get("v") == {"a": 1}
    assert len(blake3_hashfn(b"abc")) == 32
    assert issubclass(GatewayContentUnverifiable, GatewayContentMismatch)
    assert issubclass(GatewayContentMismatch, Exception)


async def test_open_missing_root_fails():
    cas, h = await _frozen({"a": b"1"})
    other = InMemoryCAS()  # the root's blocks are not in this CAS
    with pytest.raises(Exception):
        ro = await HAMT.build(cas=other, root_node_id=h.root_node_id, read_only=True,
                              values_are_bytes=True)
        await ro.get("a")
