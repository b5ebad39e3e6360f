"""`xarray.open_zarr(url)` on `ipfs-hamt serve` of py-hamt's sharded layout (ShardedZarrStore).

Datasets are written by xarray into directories, imported with `ipfs-hamt import --layout
sharded`, served, and opened over HTTP. What the URL must give is what py-hamt's store gives
(SHARDED.md §6.6, §7.4, §9.9):

* ungrouped (`import --layout sharded`, py-hamt's converter root): `xr.open_zarr(url)` is the
  directory's dataset;
* one group `0` (`--group 0`, as `ds.to_zarr(store, group="0")` through py-hamt):
  `open_zarr(url, group="0")` is the directory's group; `open_zarr(url)` reads through that
  single group (py-hamt's effective read key), so it has the group's variables, while the
  dataset attributes come from the root zarr.json (py-hamt's auto-created empty group);
* a two-level pyramid (`--group 0`, then `--group 1 --into`): each level opens with its group,
  and `open_zarr(url)` fails with py-hamt's "explicit Zarr group" error.
"""

from __future__ import annotations

import aiohttp
import pytest
import xarray as xr

from test_xarray_open_zarr import ENCODING, Served, open_quietly, run, sample

CPS = "5"  # shards cross rows of the chunk grid


def write(ds: xr.Dataset, path, **kw) -> None:
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False, **kw)


def level1() -> xr.Dataset:
    """A coarser pyramid level of the sample."""
    ds = sample().isel(lat=slice(None, None, 2), lon=slice(None, None, 2))
    ds.attrs["level"] = 1
    return ds


LEVEL1_ENCODING = {"temp": {"chunks": (2, 2, 2)}, "precip": {"chunks": (3, 3, 4)}}


def check_same(got: xr.Dataset, want: xr.Dataset) -> None:
    assert sorted(got.data_vars) == ["precip", "temp"], got
    xr.testing.assert_identical(got.load(), want.load())
    assert got.identical(want)


def test_ungrouped_sharded_root(tmp_path):
    data = tmp_path / "data.zarr"
    write(sample(), data, encoding=ENCODING)
    store = tmp_path / "blocks.redb"
    root = run("import", str(data), "--layout", "sharded", "--chunks-per-shard", CPS, "--store", str(store))
    assert "sharded_zarr_v2" in run("stat", root, "--store", str(store))
    srv = Served(store, root)
    try:
        check_same(open_quietly(srv.url), open_quietly(str(data)))
        assert open_quietly(srv.url).attrs["title"] == "ipfs-hamt serve test"
    finally:
        srv.stop()


def test_single_group_sharded_root(tmp_path):
    data = tmp_path / "data.zarr"
    write(sample(), data, encoding=ENCODING, group="0")
    store = tmp_path / "blocks.redb"
    root = run("import", str(data / "0"), "--layout", "sharded", "--group", "0",
               "--chunks-per-shard", CPS, "--store", str(store))
    srv = Served(store, root)
    try:
        want = open_quietly(str(data), group="0")
        check_same(open_quietly(srv.url, group="0"), want)
        # Without group=: read through the single group, like py-hamt's store; the attributes
        # are the root zarr.json's (the auto-created empty group), not the group's.
        got = open_quietly(srv.url)
        assert got.attrs == {}
        check_same(got, want.drop_attrs(deep=False))
    finally:
        srv.stop()


def test_two_level_pyramid(tmp_path):
    d0, d1 = tmp_path / "l0.zarr", tmp_path / "l1.zarr"
    write(sample(), d0, encoding=ENCODING, group="0")
    write(level1(), d1, encoding=LEVEL1_ENCODING, group="1")
    store = tmp_path / "blocks.redb"
    s = ["--store", str(store)]
    r0 = run("import", str(d0 / "0"), "--layout", "sharded", "--group", "0", "--chunks-per-shard", CPS, *s)
    root = run("import", str(d1 / "1"), "--layout", "sharded", "--group", "1", "--into", r0, *s)
    srv = Served(store, root)
    try:
        check_same(open_quietly(srv.url, group="0"), open_quietly(str(d0), group="0"))
        got1 = open_quietly(srv.url, group="1")
        check_same(got1, open_quietly(str(d1), group="1"))
        assert got1.attrs["level"] == 1
        # py-hamt: ValueError("sharded_zarr_v2 stores with multiple top-level groups require an
        # explicit Zarr group when reading. ..."); over HTTP, fsspec raises the 400 with that
        # message (serve sends it as the reason phrase).
        with pytest.raises(aiohttp.ClientResponseError, match="require an explicit Zarr group") as e:
            open_quietly(srv.url)
        assert e.value.status == 400
    finally:
        srv.stop()
