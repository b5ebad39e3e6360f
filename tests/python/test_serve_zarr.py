"""`ipfs-hamt serve` read by zarr-python through its fsspec HTTP store.

The golden py-hamt/xarray dataset (tests/golden/cars/zarr_plain.car, and the same dataset
encrypted in zarr_encrypted.car) is served on a free loopback port and opened with
`zarr.open_group("http://...")`; every array is compared with the formulas the dataset was made
from (tests/golden/gen/gen_zarr.py). The binary is $IPFS_HAMT_BIN, else
target/debug/ipfs-hamt.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(os.environ.get("IPFS_HAMT_GOLDEN", REPO / "tests" / "golden"))
BIN = Path(os.environ.get("IPFS_HAMT_BIN", REPO / "target" / "debug" / "ipfs-hamt"))
KEY = bytes(range(32))
HEADER = "golden-header"


def cases() -> dict:
    with open(GOLDEN / "zarr_cases.json") as f:
        return {c["name"]: c for c in json.load(f)["cases"]}


def expected() -> dict[str, np.ndarray]:
    t, y, x = np.meshgrid(np.arange(24), np.arange(32), np.arange(64), indexing="ij")
    return {
        "temperature": (((t * 2048 + y * 64 + x) % 1000) * 0.25 - 50.0).astype("float32"),
        # CF-encoded by xarray: hours since 2024-01-01.
        "time": np.arange(24, dtype="int64"),
        "lat": (-90.0 + 5.625 * np.arange(32)).astype("float64"),
        "lon": (5.625 * np.arange(64)).astype("float64"),
    }


class Server:
    def __init__(self, car: str, *extra: str) -> None:
        assert BIN.exists(), f"{BIN} not built (cargo build -p ipfs-hamt-cli)"
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--car", str(GOLDEN / "cars" / car), "--addr", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert " on http://" in line, f"unexpected first line {line!r}"
        self.url = line.rsplit(" on ", 1)[1]

    def stop(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(timeout=20) == 0


@pytest.fixture(params=["plain", "encrypted"])
def served(request, tmp_path):
    if request.param == "plain":
        srv = Server("zarr_plain.car")
    else:
        key_file = tmp_path / "key"
        key_file.write_bytes(KEY)
        srv = Server("zarr_encrypted.car", "--encrypt-key-file", str(key_file), "--header", HEADER)
    try:
        yield srv
    finally:
        if srv.proc.poll() is None:
            srv.stop()


def test_zarr_python_reads_every_array(served):
    g = zarr.open_group(served.url, mode="r", zarr_format=3)
    assert g.attrs["title"] == "py-hamt golden dataset"
    want = expected()
    for name, values in want.items():
        a = g[name]
        assert isinstance(a, zarr.Array), name
        assert a.shape == values.shape and a.dtype == values.dtype, name
        np.testing.assert_array_equal(a[...], values, err_msg=name)
    # A selection across chunk boundaries.
    np.testing.assert_array_equal(g["temperature"][3:9, 10:20, 5:50], want["temperature"][3:9, 10:20, 5:50])
    assert g["temperature"].attrs["units"] == "degC"
    # A chunk that does not exist is a missing key, not an error.
    assert "nope" not in g


def test_byte_ranges_through_fsspec(served):
    fs = fsspec.filesystem("http")
    plain = cases()["zarr_plain"]
    for key, want in plain["chunk_sha256"].items():
        assert hashlib.sha256(fs.cat_file(f"{served.url}/{key}")).hexdigest() == want, key
    full = fs.cat_file(f"{served.url}/temperature/c/1/0/2")
    assert fs.cat_file(f"{served.url}/temperature/c/1/0/2", start=10, end=110) == full[10:110]
    assert fs.cat_file(f"{served.url}/temperature/c/1/0/2", start=-25) == full[-25:]
    assert fs.info(f"{served.url}/temperature/c/1/0/2")["size"] == len(full)
    assert not fs.exists(f"{served.url}/temperature/c/9/9/9")
