"""The dataset the dClimate client test publishes and reads back (deterministic)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def dataset(nt: int = 20, ny: int = 9, nx: int = 12, seed: int = 11, dask: bool = True) -> xr.Dataset:
    """Daily (time, latitude, longitude) precipitation, dClimate-style names and chunks
    (``dask=False``: in memory, for the venv without dask)."""
    rng = np.random.default_rng(seed)
    precip = rng.gamma(2.0, 1.5, (nt, ny, nx)).astype("float32")
    precip[:3, :3, :4] = np.nan
    ds = xr.Dataset(
        {"precip": (("time", "latitude", "longitude"), precip, {"units": "mm"})},
        coords={
            "time": pd.date_range("2021-03-01", periods=nt, freq="D"),
            "latitude": np.linspace(10.0, 18.0, ny),
            "longitude": np.linspace(-5.0, 6.0, nx),
        },
        attrs={"title": "dclimate interop", "publisher": "tests/dclimate"},
    )
    return ds.chunk({"time": 5, "latitude": 3, "longitude": 4}) if dask else ds
