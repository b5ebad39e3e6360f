"""`xarray.open_zarr(url)` with default arguments on `ipfs-hamt serve`, as a new user tries it.

A small dataset is written with xarray into a directory (Zarr v3 without consolidated metadata,
the same in group "0", and Zarr v2), imported with `ipfs-hamt import`, served, and opened with
`xr.open_zarr(url)` (`group="0"` for the group case): the result must be `.identical()` to
`xr.open_zarr(dir)` (same variables, coordinates, attributes and values). Before `serve` listed
directories, this gave an empty Dataset without an error: zarr-python finds a group's members
by listing its directory when there is no consolidated metadata.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("IPFS_HAMT_BIN", REPO / "target" / "debug" / "ipfs-hamt"))


def sample() -> xr.Dataset:
    t, y, x = 6, 5, 7
    temp = (np.arange(t * y * x, dtype="float32").reshape(t, y, x) * 0.5 - 20.0)
    precip = (np.arange(t * y * x, dtype="int16").reshape(t, y, x) % 13)
    return xr.Dataset(
        {
            "temp": (("time", "lat", "lon"), temp, {"units": "degC", "long_name": "air temperature"}),
            "precip": (("time", "lat", "lon"), precip, {"units": "mm"}),
        },
        coords={
            "time": pd.date_range("2024-01-01", periods=t, freq="6h"),
            "lat": np.linspace(-60.0, 60.0, y),
            "lon": np.linspace(0.0, 300.0, x),
        },
        attrs={"title": "ipfs-hamt serve test", "source": "tests/python"},
    )


# Several chunks per variable (no dask needed to write them).
ENCODING = {"temp": {"chunks": (2, 3, 4)}, "precip": {"chunks": (4, 5, 3)}}


def run(*args: str) -> str:
    assert BIN.exists(), f"{BIN} not built (cargo build -p ipfs-hamt-cli)"
    return subprocess.run([str(BIN), *args], check=True, capture_output=True, text=True).stdout.strip()


class Served:
    def __init__(self, store: Path, root: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [str(BIN), "serve", root, "--store", str(store), "--addr", "127.0.0.1:0", *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert " on http://" in line, f"unexpected first line {line!r}"
        self.url = line.rsplit(" on ", 1)[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=20) == 0


def open_quietly(target: str, **kw) -> xr.Dataset:
    # Without consolidated metadata xarray warns that it fell back to listing: the same warning
    # for the directory and the URL.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return xr.open_zarr(target, **kw)


CASES = {
    "v3": dict(zarr_format=3, consolidated=False),
    "v3-group-0": dict(zarr_format=3, consolidated=False, group="0"),
    "v2": dict(zarr_format=2, consolidated=False),
    "v3-encrypted": dict(zarr_format=3, consolidated=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_open_zarr_url_matches_the_directory(case, tmp_path):
    write_kw = CASES[case]
    data = tmp_path / "data.zarr"
    sample().to_zarr(data, mode="w", encoding=ENCODING, **write_kw)
    store = tmp_path / "blocks.redb"
    crypt: list[str] = []
    if case.endswith("encrypted"):
        key = tmp_path / "key"
        key.write_bytes(bytes(range(32)))
        crypt = ["--encrypt-key-file", str(key), "--header", "xr-test"]
    root = run("import", str(data), "--store", str(store), *crypt)
    srv = Served(store, root, *crypt)
    try:
        open_kw = {"group": write_kw["group"]} if "group" in write_kw else {}
        want = open_quietly(str(data), **open_kw)
        got = open_quietly(srv.url, **open_kw)
        assert sorted(got.data_vars) == ["precip", "temp"], got
        assert sorted(got.coords) == ["lat", "lon", "time"], got
        assert got.attrs == want.attrs
        assert got["temp"].attrs["units"] == "degC"
        xr.testing.assert_identical(got.load(), want.load())
        assert got.identical(want)
        # Lazily read selections across chunk boundaries.
        np.testing.assert_array_equal(
            got["temp"].isel(time=slice(1, 5), lat=slice(2, 5)).values,
            want["temp"].isel(time=slice(1, 5), lat=slice(2, 5)).values,
        )
    finally:
        srv.stop()


def test_group_url_without_group_argument_lists_the_group(tmp_path):
    """A group's own URL (`.../0`) opens like the group; the root of a dataset written only
    under group "0" opens as an empty root group, exactly as the directory does."""
    data = tmp_path / "data.zarr"
    sample().to_zarr(
        data, mode="w", encoding=ENCODING, zarr_format=3, consolidated=False, group="0"
    )
    store = tmp_path / "blocks.redb"
    root = run("import", str(data), "--store", str(store))
    srv = Served(store, root)
    try:
        want = open_quietly(str(data / "0"))
        got = open_quietly(f"{srv.url}/0")
        assert got.identical(want)
    finally:
        srv.stop()
