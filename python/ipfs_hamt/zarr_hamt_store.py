"""py-hamt's module name for ``ZarrHAMTStore`` (``py_hamt.zarr_hamt_store``)."""

from .zarr_store import ZarrHAMTStore  # noqa: F401
