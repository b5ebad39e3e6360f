"""SimpleEncryptedZarrHAMTStore (ipfs_hamt): framing, failures, byte ranges, xarray."""

from __future__ import annotations

import pytest
import xarray as xr
import xarray.testing
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ipfs_hamt import HAMT, InMemoryCAS, SimpleEncryptedZarrHAMTStore, ZarrHAMTStore

from conftest import make_dataset

P = default_buffer_prototype()
KEY = bytes(range(32))
HEADER = b"test-header"
DECRYPT_FAILED = "Decryption failed. Check key, header, or data integrity."


def buf(b):
    return P.buffer.from_bytes(b)


async def _pair(values, key=KEY, header=HEADER):
    cas = InMemoryCAS()
    hamt = await HAMT.build(cas=cas, values_are_bytes=True)
    store = SimpleEncryptedZarrHAMTStore(hamt, False, key, header)
    for k, v in values.items():
        await store.set(k, buf(v))
    await hamt.make_read_only()
    ro = await HAMT.build(cas=cas, root_node_id=hamt.root_node_id, read_only=True,
                          values_are_bytes=True)
    return cas, ro


@pytest.mark.parametrize("n", [0, 16, 31, 33, 64])
async def test_key_must_be_32_bytes(n):
    hamt = await HAMT.build(cas=InMemoryCAS(), values_are_bytes=True)
    with pytest.raises(ValueError):
        SimpleEncryptedZarrHAMTStore(hamt, False, b"k" * n, HEADER)


async def test_framing_and_independent_decryption():
    plain = b"chunk bytes " * 10
    cas, ro = await _pair({"a/c/0": plain})
    stored = await ro.get("a/c/0")
    assert len(stored) == 24 + 16 + len(plain) and plain not in stored
    store = SimpleEncryptedZarrHAMTStore(ro, True, KEY, HEADER)
    assert (await store.get("a/c/0", P)).to_bytes() == plain
    # pycryptodome (py-hamt's cipher), when present, opens our framing: nonce || tag || ct.
    try:
        from Crypto.Cipher import ChaCha20_Poly1305
    except ImportError:
        return
    c = ChaCha20_Poly1305.new(key=KEY, nonce=stored[:24])
    c.update(HEADER)
    assert c.decrypt_and_verify(stored[40:], stored[24:40]) == plain


async def test_fresh_nonce_per_write():
    _, a = await _pair({"k": b"same"})
    _, b = await _pair({"k": b"same"})
    assert a.root_node_id != b.root_node_id
    va, vb = await a.get("k"), await b.get("k")
    assert va[:24] != vb[:24] and va != vb


@pytest.mark.parametrize("bad", ["key", "header", "tamper", "truncate"])
async def test_decryption_failures(bad):
    cas, ro = await _pair({"k": b"secret value", "zarr.json": b"{}"})
    key, header = KEY, HEADER
    if bad == "key":
        key = bytes(32)
    elif bad == "header":
        header = b"other-header"
    else:
        stored = await ro.get("k")
        forged = stored[:-1] + bytes([stored[-1] ^ 1]) if bad == "tamper" else stored[:30]
        h = await HAMT.build(cas=cas, values_are_bytes=True)
        await h.set("k", forged)
        await h.make_read_only()
        ro = await HAMT.build(cas=cas, root_node_id=h.root_node_id, read_only=True,
                              values_are_bytes=True)
    store = SimpleEncryptedZarrHAMTStore(ro, True, key, header)
    with pytest.raises(ValueError) as ei:
        await store.get("k", P)
    assert str(ei.value) == DECRYPT_FAILED
    assert await store.get("missing", P) is None


async def test_byte_ranges_apply_to_the_plaintext():
    plain = bytes(range(100))
    _, ro = await _pair({"v/c/0": plain})
    s = SimpleEncryptedZarrHAMTStore(ro, True, KEY, HEADER)
    assert (await s.get("v/c/0", P, RangeByteRequest(10, 20))).to_bytes() == plain[10:20]
    assert (await s.get("v/c/0", P, OffsetByteRequest(90))).to_bytes() == plain[90:]
    assert (await s.get("v/c/0", P, SuffixByteRequest(5))).to_bytes() == plain[-5:]
    assert (await s.get("v/c/0", P, SuffixByteRequest(0))).to_bytes() == b""
    out = await s.get_partial_values(P, [("v/c/0", RangeByteRequest(0, 2)), ("x", None)])
    assert out[0].to_bytes() == plain[:2] and out[1] is None


async def test_eq_with_read_only_and_metadata_cache():
    _, ro = await _pair({"zarr.json": b'{"a":1}'})
    a = SimpleEncryptedZarrHAMTStore(ro, True, KEY, HEADER)
    assert a == SimpleEncryptedZarrHAMTStore(ro, True, KEY, HEADER)
    assert a != SimpleEncryptedZarrHAMTStore(ro, True, bytes(32), HEADER)
    assert a != SimpleEncryptedZarrHAMTStore(ro, True, KEY, b"h2")
    assert a != ZarrHAMTStore(ro, read_only=True)
    assert (await a.get("zarr.json", P)).to_bytes() == b'{"a":1}'
    assert a.metadata_read_cache == {"zarr.json": b'{"a":1}'}  # decrypted
    assert a.with_read_only(True) is a
    w = a.with_read_only(False)
    assert isinstance(w, SimpleEncryptedZarrHAMTStore) and w.read_only is False
    assert w.encryption_key == KEY and w.header == HEADER and w.hamt is ro

    hamt = await HAMT.build(cas=InMemoryCAS(), values_are_bytes=True)
    rw = SimpleEncryptedZarrHAMTStore(hamt, False, KEY, HEADER)
    frozen = rw.with_read_only(True)
    with pytest.raises(Exception, match="Cannot write to a read-only store."):
        await frozen.set("x", buf(b"1"))


def test_xarray_encrypted_dask_roundtrip():
    ds = make_dataset(nt=12, ny=6, nx=6, seed=8).chunk({"time": 4, "lat": 3})
    cas = InMemoryCAS()
    hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
    ds.to_zarr(store=SimpleEncryptedZarrHAMTStore(hamt, False, KEY, HEADER), mode="w",
               zarr_format=3, consolidated=False)
    sync(hamt.make_read_only())
    ro = sync(HAMT.build(cas=cas, root_node_id=hamt.root_node_id, read_only=True,
                         values_are_bytes=True))
    got = xr.open_zarr(store=SimpleEncryptedZarrHAMTStore(ro, True, KEY, HEADER),
                       consolidated=False)
    xarray.testing.assert_identical(got.compute(), ds.compute())
    # Keys stay visible (only values are encrypted).
    keys = sync(_keys(ro))
    assert "temp/zarr.json" in keys and "temp/c/0/0/0" in keys


async def _keys(h):
    return [k async for k in h.keys()]
