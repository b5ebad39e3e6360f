"""Helpers of the ShardedZarrStore tests: a CID-returning in-memory CAS that counts calls
(like py-hamt's test ``CIDInMemoryCAS`` and the golden ``MimicKuboCAS``: CIDv1, BLAKE3,
codec as asked), and the dataset the interop tests write."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
import xarray as xr
from multiformats import CID, multihash


class CountingCIDCAS:
    """In-memory blocks named by ``CID("base32", 1, codec, blake3-256(data))``.

    Not a subclass of either package's ``ContentAddressedStore``, so both py-hamt and
    ipfs_hamt treat it as a foreign Python store (ipfs_hamt steps its coroutines).
    """

    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}
        self.saves = 0
        self.loads = 0
        self.raw_ids = False  # when True, save returns bare multihash bytes (not a CID)

    async def save(self, data: bytes, codec: str) -> Any:
        self.saves += 1
        data = bytes(data)
        mh = multihash.digest(data, "blake3", size=32)
        cid = CID("base32", 1, codec, mh)
        self.blocks[bytes(cid.digest)] = data
        return bytes(mh) if self.raw_ids else cid

    async def load(
        self,
        id: Any,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        suffix: Optional[int] = None,
    ) -> bytes:
        self.loads += 1
        cid = CID.decode(id) if isinstance(id, str) else id
        data = self.blocks[bytes(cid.digest)]
        if offset is not None:
            return data[offset : offset + length] if length is not None else data[offset:]
        if suffix is not None:
            return data[-suffix:]
        return data

    async def pin_cid(self, *a: Any, **k: Any) -> None:
        return None

    async def unpin_cid(self, *a: Any, **k: Any) -> None:
        return None


def climate(nt: int = 14, ny: int = 6, nx: int = 8, seed: int = 3) -> xr.Dataset:
    """A (time, lat, lon) dataset with some all-NaN chunks (zarr deletes those keys)."""
    rng = np.random.default_rng(seed)
    temp = (10 + 5 * rng.standard_normal((nt, ny, nx))).astype("float32")
    temp[:2, :3, :4] = np.nan
    return xr.Dataset(
        {"temp": (("time", "lat", "lon"), temp, {"units": "degC"})},
        coords={
            "time": pd.date_range("2020-01-01", periods=nt, freq="D"),
            "lat": np.linspace(-50, 50, ny),
            "lon": np.linspace(0, 350, nx),
        },
        attrs={"title": "sharded test"},
    ).chunk({"time": 4, "lat": 3, "lon": 4})
