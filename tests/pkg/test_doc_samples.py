"""py-hamt 3.6.0's documentation samples, run against ipfs_hamt.

Each body is the sample from py-hamt's docstrings, nearly verbatim; the only changes are

* the import line (``from ipfs_hamt import ...`` instead of ``from py_hamt import ...``);
* ``KuboCAS()`` becomes ``KuboCAS(rpc_base_url=..., gateway_base_url=...)`` with the test node's
  URLs, since the test node does not listen on Kubo's default ports; each sample also runs with
  ``InMemoryCAS()`` in its place;
* ``# ...`` placeholders are filled in (a dataset), the ZarrHAMTStore sample's ``root_cid`` typo
  is the ``root_node_id`` it printed, and the wrong-key sample asserts the failure it prints.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray
import xarray.testing

from conftest import make_dataset

try:
    from Crypto.Random import get_random_bytes
except ImportError:  # pycryptodome is py-hamt's dependency, not ours
    import os

    get_random_bytes = os.urandom


def _cas(kind, kubo_urls):
    from ipfs_hamt import InMemoryCAS, KuboCAS

    if kind == "memory":
        return InMemoryCAS()
    rpc, gateway = kubo_urls
    return KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway)


async def _close(cas):
    aclose = getattr(cas, "aclose", None)
    if aclose is not None:
        await aclose()


@pytest.mark.parametrize("kind", ["kubo", "memory"])
async def test_hamt_sample(kind, kubo_urls, capsys):
    # py_hamt.HAMT docstring, "IPFS HAMT Sample Code"
    from ipfs_hamt import HAMT

    kubo_cas = _cas(kind, kubo_urls)  # sample: KuboCAS(), the default local endpoints
    hamt = await HAMT.build(cas=kubo_cas)
    await hamt.set("foo", "bar")
    assert (await hamt.get("foo")) == "bar"
    await hamt.make_read_only()
    cid = hamt.root_node_id  # our root node CID
    print(cid)

    assert str(cid) in capsys.readouterr().out
    if kind == "kubo":
        assert str(cid).startswith("bafyr4i")  # dag-cbor, blake3 CIDv1
    else:
        assert isinstance(cid, bytes) and len(cid) == 34 and cid[:2] == b"\x1e\x20"
    # The root reads back in a fresh read-only HAMT.
    ro = await HAMT.build(cas=kubo_cas, root_node_id=cid, read_only=True)
    assert await ro.get("foo") == "bar"
    await _close(kubo_cas)


@pytest.mark.parametrize("kind", ["kubo", "memory"])
async def test_zarr_hamt_store_sample(kind, kubo_urls, capsys):
    # py_hamt.ZarrHAMTStore docstring, "Sample Code"
    from ipfs_hamt import HAMT, ZarrHAMTStore

    # --- Write ---
    ds: xarray.Dataset = make_dataset()
    cas = _cas(kind, kubo_urls)
    hamt = await HAMT.build(cas, values_are_bytes=True)  # write-enabled
    zhs = ZarrHAMTStore(hamt, read_only=False)
    ds.to_zarr(store=zhs, mode="w", zarr_format=3)
    await hamt.make_read_only()  # flush + freeze
    root_node_id = hamt.root_node_id
    print(root_node_id)

    # --- read ---
    hamt_ro = await HAMT.build(
        cas, root_node_id=root_node_id, read_only=True, values_are_bytes=True
    )
    zhs_ro = ZarrHAMTStore(hamt_ro, read_only=True)
    ds_ro = xarray.open_zarr(store=zhs_ro)

    print(ds_ro)
    xarray.testing.assert_identical(ds, ds_ro)

    out = capsys.readouterr().out
    assert str(root_node_id) in out and "temp" in out
    await _close(cas)


@pytest.mark.parametrize("kind", ["kubo", "memory"])
async def test_encrypted_store_sample(kind, kubo_urls, capsys):
    # py_hamt.SimpleEncryptedZarrHAMTStore docstring, "Sample Code"
    import xarray
    from ipfs_hamt import HAMT, KuboCAS, SimpleEncryptedZarrHAMTStore  # noqa: F401
    import numpy as np

    # Setup
    ds = xarray.Dataset(
        {"data": (("y", "x"), np.arange(12).reshape(3, 4))},
        coords={"y": [1, 2, 3], "x": [10, 20, 30, 40]}
    )
    cas = _cas(kind, kubo_urls)  # sample: KuboCAS()
    encryption_key = get_random_bytes(32)
    header = b"fully-encrypted-zarr"

    # --- Write ---
    hamt_write = await HAMT.build(cas=cas, values_are_bytes=True)
    ezhs_write = SimpleEncryptedZarrHAMTStore(
        hamt_write, False, encryption_key, header
    )
    print("Writing fully encrypted Zarr...")
    ds.to_zarr(store=ezhs_write, mode="w")
    await hamt_write.make_read_only()
    root_node_id = hamt_write.root_node_id
    print(f"Wrote Zarr with root: {root_node_id}")

    # --- Read ---
    hamt_read = await HAMT.build(
            cas=cas, root_node_id=root_node_id, values_are_bytes=True, read_only=True
        )
    ezhs_read = SimpleEncryptedZarrHAMTStore(
        hamt_read, True, encryption_key, header
    )
    print("\nReading fully encrypted Zarr...")
    ds_read = xarray.open_zarr(store=ezhs_read)
    print("Read back dataset:")
    print(ds_read)
    xarray.testing.assert_identical(ds, ds_read)
    print("Read successful and data verified.")

    # --- Read with wrong key (demonstrates failure) ---
    wrong_key = get_random_bytes(32)
    hamt_bad = await HAMT.build(
        cas=cas, root_node_id=root_node_id, read_only=True, values_are_bytes=True
    )
    ezhs_bad = SimpleEncryptedZarrHAMTStore(
        hamt_bad, True, wrong_key, header
    )
    print("\nAttempting to read with wrong key...")
    failed = None
    try:
        ds_bad = xarray.open_zarr(store=ezhs_bad)
        print(ds_bad)
    except Exception as e:
        print(f"Failed to read as expected: {type(e).__name__} - {e}")
        failed = e

    assert isinstance(failed, ValueError)
    assert "Decryption failed. Check key, header, or data integrity." in str(failed)
    out = capsys.readouterr().out
    assert "Read successful and data verified." in out
    assert "Failed to read as expected: ValueError" in out
    # Nothing readable is stored in the clear: no stored value contains the plaintext metadata.
    if kind == "memory":
        assert not any(b'"zarr_format"' in v for v in cas.store.values())
    await _close(cas)
