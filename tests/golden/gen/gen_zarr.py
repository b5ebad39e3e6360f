"""Zarr v3 golden vectors for py-hamt 3.6.0 (ZarrHAMTStore and
SimpleEncryptedZarrHAMTStore) written to the Kubo-mimicking CAS.

    run through scripts/make-golden.sh

Writes (under $GOLDEN_OUT, default tests/golden) cars/zarr_plain.car, cars/zarr_encrypted.car, zarr_cases.json and
encryption_vectors.json.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import sys
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from zarr.core.sync import sync

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mimic_cas import MimicKuboCAS, cas_from_car, reachable, write_car  # noqa: E402

import py_hamt.encryption_hamt_store as enc_mod  # noqa: E402
from py_hamt import HAMT, SimpleEncryptedZarrHAMTStore, ZarrHAMTStore  # noqa: E402

warnings.filterwarnings("ignore")

# Output directory: $GOLDEN_OUT (scripts/make-golden.sh sets it), else tests/golden.
OUT = os.path.abspath(os.environ.get("GOLDEN_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.makedirs(os.path.join(OUT, "cars"), exist_ok=True)
KEY = bytes(range(32))
HEADER = b"golden-header"


def make_dataset() -> xr.Dataset:
    t, y, x = np.meshgrid(np.arange(24), np.arange(32), np.arange(64), indexing="ij")
    temp = (((t * 2048 + y * 64 + x) % 1000) * 0.25 - 50.0).astype("float32")
    ds = xr.Dataset(
        {"temperature": (("time", "lat", "lon"), temp, {"units": "degC"})},
        coords={
            "time": pd.date_range("2024-01-01", periods=24, freq="h"),
            "lat": (-90.0 + 5.625 * np.arange(32)).astype("float64"),
            "lon": (5.625 * np.arange(64)).astype("float64"),
        },
        attrs={"title": "py-hamt golden dataset"},
    )
    return ds


ENCODING = {"temperature": {"chunks": (6, 16, 16)}}


def write(ds: xr.Dataset, encrypted: bool):
    cas = MimicKuboCAS()
    hamt = sync(HAMT.build(cas=cas, values_are_bytes=True))
    if encrypted:
        store = SimpleEncryptedZarrHAMTStore(hamt, False, KEY, HEADER)
    else:
        store = ZarrHAMTStore(hamt, read_only=False)
    ds.to_zarr(store=store, mode="w", zarr_format=3, consolidated=False, encoding=ENCODING)
    sync(hamt.make_read_only())
    return hamt.root_node_id, cas


def read(root, cas, encrypted: bool) -> xr.Dataset:
    hamt = sync(HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True))
    if encrypted:
        store = SimpleEncryptedZarrHAMTStore(hamt, True, KEY, HEADER)
    else:
        store = ZarrHAMTStore(hamt, read_only=True)
    return xr.open_zarr(store=store, zarr_format=3, consolidated=False).load()


async def _dump(root, cas, encrypted: bool):
    hamt = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)
    keys = sorted([k async for k in hamt.keys()])
    metadata, chunk_sha, value_cids, stored_len = {}, {}, {}, {}
    for k in keys:
        v = await hamt.get(k)
        value_cids[k] = str(await hamt.get_pointer(k))
        stored_len[k] = len(v)
        if encrypted:
            v = SimpleEncryptedZarrHAMTStore(hamt, True, KEY, HEADER)._decrypt(v)
        if k.endswith("zarr.json"):
            metadata[k] = json.loads(v)
        else:
            chunk_sha[k] = hashlib.sha256(v).hexdigest()
    return keys, metadata, chunk_sha, value_cids, stored_len


def case_entry(name, root, cas, encrypted):
    order = reachable(cas.blocks, root)
    car = f"cars/{name}.car"
    size = write_car(os.path.join(OUT, car), root, cas.blocks, order)
    # the CAR alone must be enough to read the dataset back with py-hamt
    root2, cas2 = cas_from_car(os.path.join(OUT, car))
    keys, metadata, chunk_sha, value_cids, stored_len = sync(_dump(root2, cas2, encrypted))
    with open(os.path.join(OUT, car), "rb") as f:
        car_sha = hashlib.sha256(f.read()).hexdigest()
    e = {
        "name": name,
        "root": str(root),
        "blocks": len(order),
        "hamt_node_blocks": sum(1 for c in order if c.codec.name == "dag-cbor"),
        "value_blocks": sum(1 for c in order if c.codec.name == "raw"),
        "car": car,
        "car_bytes": size,
        "car_sha256": car_sha,
        "keys": keys,
        "metadata": metadata,
        "chunk_sha256": chunk_sha,
        "chunk_sha256_is_of": "decrypted plaintext (= zarr-encoded chunk bytes)" if encrypted else "stored value bytes (= zarr-encoded chunk bytes)",
        "value_cids": value_cids,
        "stored_value_len": stored_len,
    }
    return e, root2, cas2


def encryption_vectors():
    """Deterministic framing vectors produced by the store's own _encrypt with
    get_random_bytes patched to return a fixed nonce."""
    vecs = []
    plaintexts = [b"", b"hello", bytes(range(256)) * 4, b'{"zarr_format":3}']
    nonces = [bytes(24), bytes(range(24)), bytes(range(100, 124)), b"\xff" * 24]
    dummy = SimpleEncryptedZarrHAMTStore.__new__(SimpleEncryptedZarrHAMTStore)
    dummy.encryption_key = KEY
    dummy.header = HEADER
    orig = enc_mod.get_random_bytes
    try:
        for pt, nonce in zip(plaintexts, nonces):
            enc_mod.get_random_bytes = lambda n, _nonce=nonce: _nonce[:n]
            framed = dummy._encrypt(pt)
            assert dummy._decrypt(framed) == pt
            vecs.append({
                "key_hex": KEY.hex(),
                "header_hex": HEADER.hex(),
                "nonce_hex": nonce.hex(),
                "plaintext_hex": pt.hex(),
                "framed_hex": framed.hex(),
                "layout": "nonce(24) || tag(16) || ciphertext(len(plaintext))",
            })
        # empty header variant
        dummy.header = b""
        enc_mod.get_random_bytes = lambda n: bytes(range(24))[:n]
        framed = dummy._encrypt(b"hello")
        vecs.append({
            "key_hex": KEY.hex(),
            "header_hex": "",
            "nonce_hex": bytes(range(24)).hex(),
            "plaintext_hex": b"hello".hex(),
            "framed_hex": framed.hex(),
            "layout": "nonce(24) || tag(16) || ciphertext(len(plaintext))",
        })
    finally:
        enc_mod.get_random_bytes = orig
    return {
        "algorithm": "XChaCha20-Poly1305 (pycryptodome ChaCha20_Poly1305 with 24-byte nonce; "
        "== libsodium crypto_aead_xchacha20poly1305_ietf), AAD = header",
        "vectors": vecs,
    }


def main():
    ds = make_dataset()
    cases = []

    root, cas = write(ds, encrypted=False)
    e, root2, cas2 = case_entry("zarr_plain", root, cas, encrypted=False)
    back = read(root2, cas2, encrypted=False)
    xr.testing.assert_identical(ds, back)
    # determinism: a second independent write gives the same root
    root_again, _ = write(ds, encrypted=False)
    e["deterministic_across_writes"] = str(root_again) == str(root)
    e["dataset"] = {
        "temperature": "float32[time=24, lat=32, lon=64] = ((t*2048 + y*64 + x) % 1000) * 0.25 - 50.0, "
        "attrs {units: degC}, zarr chunks (6,16,16)",
        "time": "pd.date_range('2024-01-01', periods=24, freq='h') (CF-encoded by xarray)",
        "lat": "float64 -90 + 5.625*arange(32)",
        "lon": "float64 5.625*arange(64)",
        "attrs": {"title": "py-hamt golden dataset"},
        "to_zarr": "ds.to_zarr(store=ZarrHAMTStore(hamt), mode='w', zarr_format=3, consolidated=False, "
        "encoding={'temperature': {'chunks': (6, 16, 16)}})",
    }
    e["read_back_identical"] = True
    cases.append(e)
    print("zarr_plain", e["root"], e["blocks"], "deterministic:", e["deterministic_across_writes"])

    root, cas = write(ds, encrypted=True)
    e, root2, cas2 = case_entry("zarr_encrypted", root, cas, encrypted=True)
    back = read(root2, cas2, encrypted=True)
    xr.testing.assert_identical(ds, back)
    e["encryption"] = {
        "store": "SimpleEncryptedZarrHAMTStore(hamt, read_only, encryption_key, header)",
        "key_hex": KEY.hex(),
        "header_hex": HEADER.hex(),
        "header_ascii": HEADER.decode(),
        "note": "nonces are random (get_random_bytes(24)) so the root differs on every write; "
        "every HAMT value (metadata and chunks alike) is nonce(24)||tag(16)||ciphertext",
    }
    e["dataset"] = "same as zarr_plain"
    e["read_back_identical"] = True
    # wrong key must fail
    try:
        hamt = sync(HAMT.build(cas=cas2, root_node_id=root2, read_only=True, values_are_bytes=True))
        bad = SimpleEncryptedZarrHAMTStore(hamt, True, bytes(32), HEADER)
        xr.open_zarr(store=bad, zarr_format=3, consolidated=False).load()
        e["wrong_key_fails"] = False
    except Exception as exc:  # noqa: BLE001
        e["wrong_key_fails"] = f"{type(exc).__name__}: {exc}"
    cases.append(e)
    print("zarr_encrypted", e["root"], e["blocks"])

    versions = {
        p: md.version(p)
        for p in ("py-hamt", "zarr", "xarray", "numpy", "pandas", "numcodecs", "dag-cbor", "multiformats", "pycryptodome")
    }
    with open(os.path.join(OUT, "zarr_cases.json"), "w") as f:
        json.dump({"versions": versions, "cases": cases}, f, indent=2)
    with open(os.path.join(OUT, "encryption_vectors.json"), "w") as f:
        json.dump(encryption_vectors(), f, indent=2)


if __name__ == "__main__":
    main()
