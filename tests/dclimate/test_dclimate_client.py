"""dclimate-client-py 0.12.0 (from PyPI) reading datasets through ipfs_hamt in place of py-hamt.

Run by scripts/test-dclimate.sh in a venv with dclimate-client-py installed and py-hamt
*uninstalled*: ``py_hamt`` resolves to ipfs_hamt through ``ipfs_hamt.alias``. The datasets
were published to the real IPFS node by publish.py, with py-hamt and with ipfs_hamt; their
roots come in $DCLIMATE_ROOTS (JSON). Nothing is stubbed: dClimate's client imports and runs
offline against the local node.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
import xarray as xr
import xarray.testing

import ipfs_hamt
import ipfs_hamt.alias

ipfs_hamt.alias.install()

from dclimate_client_py import ipfs_retrieval  # noqa: E402
from dclimate_client_py.dclimate_zarr_errors import MultiresolutionSelectionRequiredError  # noqa: E402

from dataset import dataset  # noqa: E402

ROOTS = json.loads(os.environ["DCLIMATE_ROOTS"])
RPC = os.environ["IPFS_RPC_URL"]
GATEWAY = os.environ["IPFS_GATEWAY_URL"]
WRITERS = ["py_hamt", "ipfs_hamt"]


def test_py_hamt_is_ipfs_hamt():
    import py_hamt

    assert py_hamt is ipfs_hamt
    assert ipfs_retrieval.ShardedZarrStore is ipfs_hamt.ShardedZarrStore
    assert ipfs_retrieval.KuboCAS is ipfs_hamt.KuboCAS
    assert ipfs_retrieval.ipfs_instrumentation is ipfs_hamt.instrumentation
    assert not any(
        getattr(m, "__file__", "") and "site-packages/py_hamt" in m.__file__
        for m in list(sys.modules.values())
    )


async def load(name: str, **kw) -> xr.Dataset:
    async with ipfs_hamt.KuboCAS(rpc_base_url=RPC, gateway_base_url=GATEWAY) as cas:
        ds = await ipfs_retrieval._load_dataset_from_ipfs_cid(ROOTS[name], cas, **kw)
        return ds.load()


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize(
    "layout,store_type",
    [
        ("sharded_v2", "ShardedZarrStore"),
        ("sharded_v1", "ShardedZarrStore"),
        ("hamt", "ZarrHAMTStore"),
        ("hamt_continued", "ZarrHAMTStore"),
        ("sharded_continued", "ShardedZarrStore"),
    ],
)
@pytest.mark.parametrize("mode", ["sparse", "auto", "full"])
async def test_load_dataset(writer, layout, store_type, mode):
    ds = await load(f"{writer}:{layout}", shard_read_mode=mode)
    assert ds.attrs["_ipfs_store_type"] == store_type
    want = dataset(dask=False)
    xarray.testing.assert_equal(ds["precip"], want["precip"])


@pytest.mark.parametrize("writer", WRITERS)
async def test_multigroup_needs_a_group(writer):
    with pytest.raises(MultiresolutionSelectionRequiredError) as e:
        await load(f"{writer}:sharded_v2_multigroup")
    assert e.value.available_groups == ("0", "1")
    ds = await load(f"{writer}:sharded_v2_multigroup", zarr_group="1")
    assert ds.attrs["_ipfs_zarr_group"] == "1"
    xarray.testing.assert_equal(ds["precip"], dataset(dask=False)["precip"])


async def test_group_error_text_dclimate_matches():
    """dClimate's fallback matches py-hamt's multi-group error by "explicit Zarr group"."""
    async with ipfs_hamt.KuboCAS(rpc_base_url=RPC, gateway_base_url=GATEWAY) as cas:
        store = await ipfs_hamt.ShardedZarrStore.open(
            cas=cas, read_only=True, root_cid=ROOTS["ipfs_hamt:sharded_v2_multigroup"]
        )
        with pytest.raises(ValueError) as e:
            xr.open_zarr(store)
    assert ipfs_retrieval._is_explicit_zarr_group_error(e.value)


def test_same_roots_from_both_libraries():
    """ipfs_hamt published the same bytes as py-hamt for every layout."""
    for layout in ("sharded_v2", "sharded_v2_multigroup", "sharded_v1", "hamt",
                   "hamt_continued", "sharded_continued", "geometry"):
        assert ROOTS[f"py_hamt:{layout}"] == ROOTS[f"ipfs_hamt:{layout}"], layout
