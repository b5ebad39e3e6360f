"""Shared fixtures for the ipfs_hamt package tests.

The Kubo tests talk to the real IPFS node whose URLs scripts/test-pkg.sh (or scripts/test.sh)
exports as IPFS_RPC_URL and IPFS_GATEWAY_URL. py-hamt's samples call ``KuboCAS()``, which means
the default local ports 5001/8080; the test node listens on free ports instead, so the samples
get ``KuboCAS(rpc_base_url=..., gateway_base_url=...)`` from the ``kubo_urls`` fixture.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr


@pytest.fixture(scope="session")
def kubo_urls() -> tuple[str, str]:
    rpc = os.environ.get("IPFS_RPC_URL")
    gateway = os.environ.get("IPFS_GATEWAY_URL")
    if not rpc or not gateway:
        pytest.fail(
            "IPFS_RPC_URL / IPFS_GATEWAY_URL are not set: run these tests with "
            "scripts/test-pkg.sh, which starts a local IPFS node"
        )
    return rpc.rstrip("/"), gateway.rstrip("/")


@pytest.fixture
async def kubo_cas(kubo_urls):
    """Our KuboCAS on the test node, closed after the test."""
    from ipfs_hamt import KuboCAS

    rpc, gateway = kubo_urls
    async with KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway) as cas:
        yield cas


@pytest.fixture(params=["memory", "kubo"])
async def any_cas(request, kubo_urls):
    """Our InMemoryCAS, then our KuboCAS on the test node."""
    from ipfs_hamt import InMemoryCAS, KuboCAS

    if request.param == "memory":
        yield InMemoryCAS()
        return
    rpc, gateway = kubo_urls
    cas = KuboCAS(rpc_base_url=rpc, gateway_base_url=gateway)
    try:
        yield cas
    finally:
        await cas.aclose()


def make_dataset(nt: int = 12, ny: int = 9, nx: int = 10, seed: int = 0) -> xr.Dataset:
    """A small climate-like dataset: two float variables on (time, lat, lon) plus a 1-D one."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2024-01-01", periods=nt, freq="D")
    lat = np.linspace(-60.0, 60.0, ny)
    lon = np.linspace(-180.0, 170.0, nx)
    temp = (15 + 8 * rng.standard_normal((nt, ny, nx))).astype("float32")
    precip = rng.gamma(2.0, 0.5, (nt, ny, nx)).astype("float64")
    return xr.Dataset(
        {
            "temp": (("time", "lat", "lon"), temp, {"units": "degC"}),
            "precip": (("time", "lat", "lon"), precip, {"units": "mm/day"}),
            "station_count": (("time",), np.arange(nt, dtype="int32")),
        },
        coords={"time": time, "lat": lat, "lon": lon},
        attrs={"title": "ipfs_hamt test dataset"},
    )


@pytest.fixture
def dataset() -> xr.Dataset:
    return make_dataset()


def id_bytes(x) -> bytes:
    """The canonical binary form of a HAMT root id: CID object, CID string or bytes."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    from multiformats import CID

    if isinstance(x, str):
        return bytes(CID.decode(x))
    if isinstance(x, CID):
        return bytes(x)
    # A CID-like object of another implementation: go through its string form.
    return bytes(CID.decode(str(x)))


def pytest_report_header(config):
    import ipfs_hamt
    import zarr

    try:
        import py_hamt

        other = f"py-hamt from {os.path.dirname(py_hamt.__file__)}"
    except ImportError:
        other = "py-hamt not installed (interop tests skip)"
    return [f"ipfs_hamt from {os.path.dirname(ipfs_hamt.__file__)}; zarr {zarr.__version__}; {other}"]
