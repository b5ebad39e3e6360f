"""An ERA5-like publishing workflow on py-hamt's ShardedZarrStore, through py-hamt 3.6.0 and
xarray, and the same workflow with the `ipfs-hamt` CLI on directories xarray wrote: every root
must be the same.

py-hamt side (a CID-returning in-memory CAS with KuboCAS's CIDs: CIDv1, blake3, raw / dag-cbor):

* A: ``to_zarr(group="0", mode="w")`` of the first time range into a fresh
  ``ShardedZarrStore.open(cas, False, chunks_per_shard=7, manifest_version="sharded_zarr_v2")``;
* B: ``resize_store`` + ``resize_variable`` of every time-dimensioned array, then
  ``to_zarr(region={"time": ...})`` of the second time range;
* S: the third time range written into a store of its own (a separately built batch);
* C: resize again, then ``graft_store(S, offset, source_array_path=..., target_array_path=...)``
  for each time-dimensioned array.

ipfs-hamt side, with a fresh ``--store`` and only the CLI:

* A: ``import DIR_A/0 --layout sharded --group 0 --chunks-per-shard 7`` of xarray's
  ``to_zarr(DIR_A, group="0")`` of the same range and encoding;
* B: ``resize`` of each array, then ``import NEW --layout sharded --group 0 --into ROOT`` where
  NEW holds exactly the files xarray's region write changed in a local copy (chunk files only);
* S and C: ``import`` of the batch's directory, ``resize``, ``graft``.

7 chunks per shard make shards cross rows of the chunk grid, and all-NaN chunks are dropped by
zarr (py-hamt's store sees deletes, the directory sees no file), leaving null entries and null
shards. Root C is also pushed to the real IPFS node and read back with py-hamt's KuboCAS.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

py_hamt = pytest.importorskip("py_hamt", reason="py-hamt 3.6.0 is installed only in target/pkgenv")
zarr = pytest.importorskip("zarr")

from multiformats import CID, multihash  # noqa: E402
from py_hamt import ContentAddressedStore, ShardedZarrStore  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(
    os.environ.get(
        "IPFS_HAMT_BIN",
        Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "ipfs-hamt",
    )
)

CPS = 7
NT, NY, NX = 48, 32, 64
# Three publication steps along time: initial write, region write, grafted batch.
RANGES = {"A": slice(0, 16), "B": slice(16, 32), "C": slice(32, 48)}
TIME_UNITS = "hours since 2020-01-01"
ENCODING = {
    "t2m": {"chunks": (4, 16, 16)},
    "tp": {"chunks": (8, 32, 32)},
    # Chunked along time like the data, and one fixed unit, so that separately written batches
    # encode time the same way (xarray would otherwise pick each batch's first timestamp).
    "time": {"chunks": (4,), "units": TIME_UNITS, "dtype": "int64"},
}
# Arrays that grow along time, with their time chunk length.
TIME_ARRAYS = {"0/t2m": 4, "0/tp": 8, "0/time": 4}


class CIDInMemoryCAS(ContentAddressedStore):
    """What KuboCAS returns for blocks up to 1 MiB: CIDv1(codec, blake3-256), kept in a dict."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}

    async def save(self, data: bytes, codec) -> CID:
        assert codec in ("raw", "dag-cbor"), codec
        data = bytes(data)
        assert len(data) <= 1 << 20, "a single-block CAS"
        cid = CID("base32", 1, codec, multihash.digest(data, "blake3", size=32))
        self.blocks[bytes(cid)] = data
        return cid

    async def load(self, id, offset=None, length=None, suffix=None) -> bytes:
        cid = id if isinstance(id, CID) else CID.decode(str(id))
        data = self.blocks[bytes(cid)]
        if offset is not None:
            return data[offset : offset + length] if length is not None else data[offset:]
        if suffix is not None:
            return data[-suffix:] if suffix else b""
        return data


def era5_like() -> xr.Dataset:
    rng = np.random.default_rng(2024)
    # A plain datetime64[ns] array (no pandas freq), as xarray decodes it back.
    time = pd.date_range("2020-01-01", periods=NT, freq="6h").values.astype("datetime64[ns]")
    lat = np.linspace(90.0, -90.0, NY)
    lon = np.linspace(0.0, 360.0, NX, endpoint=False)
    t2m = (270 + 15 * rng.standard_normal((NT, NY, NX))).astype("float32")
    tp = rng.gamma(0.5, 0.002, (NT, NY, NX)).astype("float32")
    # All-NaN chunks: zarr writes no chunk for them (py-hamt's store gets a delete).
    t2m[8:16] = np.nan  # two whole time chunks: 16 chunks in a row, a whole shard null
    t2m[20:24, 0:16, :] = np.nan  # half a time chunk in the region write
    t2m[40:44, 16:32, 0:32] = np.nan  # two chunks of the grafted batch
    tp[0:8, :, 32:64] = np.nan
    tp[40:48, :, 0:32] = np.nan
    return xr.Dataset(
        {
            "t2m": (
                ("time", "latitude", "longitude"),
                t2m,
                {"units": "K", "long_name": "2 metre temperature"},
            ),
            "tp": (("time", "latitude", "longitude"), tp, {"units": "m", "long_name": "Total precipitation"}),
        },
        coords={
            "time": ("time", time, {"long_name": "time"}),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.6", "title": "ERA5-like test dataset", "institution": "ipfs-hamt tests"},
    )


def run(*args: str) -> str:
    assert BIN.exists(), f"{BIN} not built (cargo build -p ipfs-hamt-cli)"
    p = subprocess.run([str(BIN), *args], capture_output=True, text=True)
    assert p.returncode == 0, f"ipfs-hamt {' '.join(args)} failed:\n{p.stderr}"
    return p.stdout.strip()


def quiet_to_zarr(ds: xr.Dataset, target, **kw) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's "consolidated metadata" notices
        ds.to_zarr(target, consolidated=False, zarr_format=3, **kw)


def write_region(piece: xr.Dataset, target, region: slice) -> None:
    """Writes `piece` into the grown arrays of group 0 at `region` along time.

    xarray's region write takes only the variables along the region's dimension and does not
    write index coordinates (it expects them written already, e.g. from a template), so the new
    time values are written with zarr, encoded with the array's units.
    """
    quiet_to_zarr(piece.drop_vars(["latitude", "longitude"]), target, group="0", region={"time": region})
    hours = (piece["time"].values - np.datetime64("2020-01-01")) // np.timedelta64(1, "h")
    arr = zarr.open_array(target, path="0/time", mode="r+", zarr_format=3)
    arr[region] = hours.astype("int64")


def file_hashes(d: Path) -> dict[str, str]:
    return {
        p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in d.rglob("*")
        if p.is_file()
    }


def copy_files(src: Path, keys: list[str], dst: Path) -> Path:
    """Copies the files `keys` (under group 0 of `src`) into `dst`, relative to the group."""
    for k in keys:
        to = dst / Path(k).relative_to("0")
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / k, to)
    return dst


def shape_at(n_time: int, arr: str) -> tuple[int, ...]:
    return (n_time,) if arr == "0/time" else (n_time, NY, NX)


async def pyhamt_workflow(ds: xr.Dataset, cas: CIDInMemoryCAS) -> dict[str, str]:
    roots: dict[str, str] = {}
    store = await ShardedZarrStore.open(cas, False, chunks_per_shard=CPS, manifest_version="sharded_zarr_v2")
    quiet_to_zarr(ds.isel(time=RANGES["A"]), store, group="0", mode="w", encoding=ENCODING)
    roots["A"] = await store.flush()

    n = RANGES["B"].stop
    for arr in TIME_ARRAYS:
        await store.resize_store(shape_at(n, arr), array_path=arr)
        await store.resize_variable(arr, shape_at(n, arr))
    write_region(ds.isel(time=RANGES["B"]), store, RANGES["B"])
    roots["B"] = await store.flush()

    # The other way to grow: xarray's append (zarr resizes the arrays: zarr.json rewritten).
    appended = await ShardedZarrStore.open(cas, False, root_cid=roots["A"])
    quiet_to_zarr(ds.isel(time=RANGES["B"]), appended, group="0", append_dim="time")
    roots["B-append"] = await appended.flush()

    batch = await ShardedZarrStore.open(cas, False, chunks_per_shard=CPS, manifest_version="sharded_zarr_v2")
    quiet_to_zarr(ds.isel(time=RANGES["C"]), batch, group="0", mode="w", encoding=ENCODING)
    roots["S"] = await batch.flush()

    n = RANGES["C"].stop
    for arr, tchunk in TIME_ARRAYS.items():
        await store.resize_store(shape_at(n, arr), array_path=arr)
        await store.resize_variable(arr, shape_at(n, arr))
        offset = (RANGES["C"].start // tchunk,) + ((0, 0) if arr != "0/time" else ())
        await store.graft_store(roots["S"], offset, source_array_path=arr, target_array_path=arr)
    roots["C"] = await store.flush()
    return roots


async def pyhamt_keys(cas, root: str) -> dict[str, bytes]:
    store = await ShardedZarrStore.open(cas, True, root_cid=root)
    from zarr.core.buffer import default_buffer_prototype

    out = {}
    async for k in store.list():
        buf = await store.get(k, default_buffer_prototype())
        out[k] = buf.to_bytes()
    return out


def explain(ours: str, theirs: str, store: Path, cas) -> str:
    """Which keys / bytes differ between our root and py-hamt's (for the assertion message)."""
    mine = {k: None for k in run("ls", ours, "--store", str(store)).splitlines()}
    want = asyncio.run(pyhamt_keys(cas, theirs))
    lines = [f"ours {ours} != py-hamt {theirs}"]
    only_ours = sorted(set(mine) - set(want))
    only_theirs = sorted(set(want) - set(mine))
    if only_ours:
        lines.append(f"keys only in ours: {only_ours[:10]}")
    if only_theirs:
        lines.append(f"keys only in py-hamt's: {only_theirs[:10]}")
    differ = []
    for k in sorted(set(mine) & set(want)):
        got = subprocess.run(
            [str(BIN), "get", ours, k, "--store", str(store)], capture_output=True, check=True
        ).stdout
        if got != want[k]:
            differ.append(f"{k}: ours {got[:200]!r} py-hamt {want[k][:200]!r}")
    lines.append(f"values differing: {differ[:10] or 'none (the manifests or shards differ)'}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """Runs both sides once; returns (dataset, py-hamt roots, our roots, our store, py-hamt CAS)."""
    tmp = tmp_path_factory.mktemp("era5")
    ds = era5_like()
    cas = CIDInMemoryCAS()
    theirs = asyncio.run(pyhamt_workflow(ds, cas))

    store = tmp / "blocks.redb"
    s = ["--store", str(store)]
    ours: dict[str, str] = {}

    # A: the first range, as xarray writes it to a directory.
    dir_a = tmp / "a.zarr"
    quiet_to_zarr(ds.isel(time=RANGES["A"]), dir_a, group="0", mode="w", encoding=ENCODING)
    ours["A"] = run("import", str(dir_a / "0"), "--layout", "sharded", "--group", "0",
                    "--chunks-per-shard", str(CPS), *s)

    # B: the region write of the second range, in a local copy grown like the store, tells
    # which files it writes: only the region's chunk files (no metadata: the local resize
    # rewrote zarr.json, `ipfs-hamt resize` does that part for the sharded root).
    grown = tmp / "grown.zarr"
    shutil.copytree(dir_a, grown)
    n = RANGES["B"].stop
    group = zarr.open_group(grown / "0", mode="r+")
    for arr in TIME_ARRAYS:
        group[arr.split("/", 1)[1]].resize(shape_at(n, arr))
    before = file_hashes(grown)
    write_region(ds.isel(time=RANGES["B"]), grown, RANGES["B"])
    after = file_hashes(grown)
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert not set(before) - set(after), "the region write removed files"
    assert changed and all("/c/" in k for k in changed), f"the region write wrote {changed}"
    assert {k.rsplit("/c/", 1)[0] for k in changed} == set(TIME_ARRAYS), changed
    new = copy_files(grown, changed, tmp / "b-new")
    root = ours["A"]
    for arr in TIME_ARRAYS:
        root = run("resize", root, arr, ",".join(map(str, shape_at(n, arr))), *s)
    ours["B"] = run("import", str(new), "--layout", "sharded", "--group", "0", "--into", root, *s)

    # B-append: an append to a local copy of A rewrites the grown arrays' zarr.json and writes
    # the new chunks (time included); those files go --into A.
    appended = tmp / "appended.zarr"
    shutil.copytree(dir_a, appended)
    before = file_hashes(appended)
    quiet_to_zarr(ds.isel(time=RANGES["B"]), appended, group="0", append_dim="time")
    after = file_hashes(appended)
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert [k for k in changed if "/c/" not in k] == [f"{a}/zarr.json" for a in sorted(TIME_ARRAYS)]
    ours["B-append"] = run("import", str(copy_files(appended, changed, tmp / "b-append")),
                           "--layout", "sharded", "--group", "0", "--into", ours["A"], *s)

    # S: the batch, written on its own.
    dir_s = tmp / "batch.zarr"
    quiet_to_zarr(ds.isel(time=RANGES["C"]), dir_s, group="0", mode="w", encoding=ENCODING)
    ours["S"] = run("import", str(dir_s / "0"), "--layout", "sharded", "--group", "0",
                    "--chunks-per-shard", str(CPS), *s)

    # C: grow, graft the batch in.
    n = RANGES["C"].stop
    root = ours["B"]
    for arr, tchunk in TIME_ARRAYS.items():
        root = run("resize", root, arr, ",".join(map(str, shape_at(n, arr))), *s)
        offset = [RANGES["C"].start // tchunk] + ([0, 0] if arr != "0/time" else [])
        root = run("graft", root, ours["S"], "--offset", ",".join(map(str, offset)),
                   "--source-array", arr, "--target-array", arr, *s)
    ours["C"] = root
    return ds, theirs, ours, store, cas


@pytest.mark.parametrize("step", ["A", "B", "B-append", "S", "C"])
def test_cli_reaches_py_hamt_roots(workflow, step):
    _, theirs, ours, store, cas = workflow
    if ours[step] != theirs[step]:
        pytest.fail(f"root {step}: " + explain(ours[step], theirs[step], store, cas))


def test_py_hamt_reads_the_published_dataset(workflow):
    ds, theirs, ours, _, cas = workflow

    async def read():
        store = await ShardedZarrStore.open(cas, True, root_cid=theirs["C"])
        got = xr.open_zarr(store, group="0", consolidated=False).load()
        return got

    got = asyncio.run(read())
    xr.testing.assert_identical(got.drop_encoding(), ds)
    assert got.attrs["title"] == "ERA5-like test dataset"
    assert int(got["t2m"].isnull().sum()) == int(ds["t2m"].isnull().sum()) > 0


def test_workflow_covers_null_shards_and_growth(workflow):
    """The roots differ step by step, and the data has null entries and a null shard."""
    _, theirs, ours, store, _ = workflow
    assert len({theirs[k] for k in ("A", "B", "S", "C")}) == 4
    stat = run("stat", ours["C"], "--store", str(store))
    # 0/t2m: 12*2*4 = 96 chunks, 16+4+2 all-NaN ones dropped; 14 shards of 7, one null
    # (chunks 21-27, inside the 16 in a row).
    assert "0/t2m  [48, 32, 64]  [4, 16, 16]  7  74/96  13/14" in stat, stat
    assert "0/time  [48]  [4]  7  12/12  2/2" in stat, stat


def test_cli_export_of_c_opens_as_the_dataset(workflow, tmp_path):
    """Our root C, exported by our CLI to a directory, is the whole dataset for xarray."""
    ds, _, ours, store, _ = workflow
    out = tmp_path / "c.zarr"
    run("export", ours["C"], str(out), "--store", str(store))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = xr.open_zarr(out, group="0", consolidated=False).load()
    xr.testing.assert_identical(got.drop_encoding(), ds)


async def test_py_hamt_kubo_cas_reads_our_pushed_root(workflow, kubo_urls):
    """Root C pushed from our store to the real IPFS node, read with py-hamt's KuboCAS."""
    from py_hamt import KuboCAS

    ds, _, ours, store, _ = workflow
    rpc, gateway = kubo_urls
    run("push", ours["C"], "--store", str(store), "--kubo", rpc)
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway) as kcas:
        zs = await ShardedZarrStore.open(kcas, True, root_cid=ours["C"])
        got = await asyncio.to_thread(lambda: xr.open_zarr(zs, group="0", consolidated=False).load())
    xr.testing.assert_identical(got.drop_encoding(), ds)


def test_py_hamt_reads_a_single_group_without_group_and_refuses_a_pyramid(workflow, tmp_path):
    """The reference for tests/python/test_xarray_open_zarr_sharded.py (serve): py-hamt's store
    read without ``group=`` reads through a single group (attributes from the root zarr.json,
    py-hamt's empty auto-created group) and refuses a pyramid; our CLI builds the same pyramid."""
    ds, theirs, ours, store, cas = workflow
    piece = ds.isel(time=RANGES["A"])
    coarse = piece.isel(latitude=slice(None, None, 2), longitude=slice(None, None, 2))
    coarse_enc = {"t2m": {"chunks": (4, 8, 8)}, "tp": {"chunks": (8, 16, 16)}, "time": ENCODING["time"]}

    async def pyramid() -> str:
        st = await ShardedZarrStore.open(cas, True, root_cid=theirs["A"])
        whole = xr.open_zarr(st, consolidated=False).load()
        group0 = xr.open_zarr(st, group="0", consolidated=False).load()
        assert whole.attrs == {} and group0.attrs["title"] == "ERA5-like test dataset"
        xr.testing.assert_identical(whole, group0.drop_attrs(deep=False))
        st = await ShardedZarrStore.open(cas, False, root_cid=theirs["A"])
        quiet_to_zarr(coarse, st, group="1", mode="w", encoding=coarse_enc)
        root = await st.flush()
        st = await ShardedZarrStore.open(cas, True, root_cid=root)
        with pytest.raises(ValueError, match="require an explicit Zarr group"):
            xr.open_zarr(st, consolidated=False)
        xr.testing.assert_equal(xr.open_zarr(st, group="1", consolidated=False).load(), coarse)
        return root

    want = asyncio.run(pyramid())
    d1 = tmp_path / "l1.zarr"
    quiet_to_zarr(coarse, d1, group="1", mode="w", encoding=coarse_enc)
    got = run("import", str(d1 / "1"), "--layout", "sharded", "--group", "1", "--into", ours["A"],
              "--store", str(store))
    if got != want:
        pytest.fail("pyramid: " + explain(got, want, store, cas))
