"""Zarr v3 store backed by a HAMT (py-hamt 3.6.0's ``ZarrHAMTStore``, same behaviour).

Every Zarr key (``zarr.json``, ``temp/zarr.json``, ``temp/c/0/1/3``) is a HAMT key, unchanged, and
its value is the exact byte string Zarr hands to :meth:`ZarrHAMTStore.set`. A dataset written with
py-hamt's store therefore reads here, and the reverse, with the same root for the same data.

The store only uses the HAMT's public coroutine API (``get``, ``get_pointer``, ``set``,
``delete``, ``keys``) and its ``read_only``, ``values_are_bytes`` and ``root_node_id``
attributes, so any object with that API works, py-hamt's own ``HAMT`` included.

Example::

    hamt = await HAMT.build(cas=cas, values_are_bytes=True)        # writable
    ds.to_zarr(store=ZarrHAMTStore(hamt, read_only=False), mode="w", zarr_format=3)
    await hamt.make_read_only()                                     # flush; root is final
    root = hamt.root_node_id

    hamt_ro = await HAMT.build(cas=cas, root_node_id=root, read_only=True, values_are_bytes=True)
    ds_ro = xarray.open_zarr(store=ZarrHAMTStore(hamt_ro, read_only=True))

Differences from py-hamt, none of which changes results:

* ``exists`` looks up the key's pointer (``hamt.get_pointer``) instead of fetching the value.
* Errors other than a missing key are re-raised without printing anything first.
* ``get`` reports to :mod:`ipfs_hamt.instrumentation` (span ``py_hamt.hamt_store.get``) only
  when its recorder is on or an OpenTelemetry SDK is configured (otherwise py-hamt's spans are
  no-ops anyway); HAMT node loads happen in Rust and are not reported one by one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Optional

import zarr.abc.store
import zarr.core.buffer
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from . import instrumentation

__all__ = ["ZarrHAMTStore"]

_METADATA_SUFFIX = "zarr.json"


def _byte_range_args(
    byte_range: Any,
) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """Turn a Zarr ``ByteRequest`` into ``(offset, length, suffix)`` for ``HAMT.get``."""
    kind = type(byte_range)
    if kind is RangeByteRequest or isinstance(byte_range, RangeByteRequest):
        length = byte_range.end - byte_range.start
        if length < 0:
            raise ValueError("End must be >= start for RangeByteRequest")
        return byte_range.start, length, None
    if kind is OffsetByteRequest or isinstance(byte_range, OffsetByteRequest):
        return byte_range.offset, None, None
    if kind is SuffixByteRequest or isinstance(byte_range, SuffixByteRequest):
        return None, None, byte_range.suffix
    raise TypeError(f"Unsupported ByteRequest type: {kind}")


def _same_root(a: Any, b: Any) -> bool:
    """Whether two HAMTs are at the same root. A HAMT with unwritten changes has no root id yet
    (``None``); like py-hamt's per-HAMT temporary ids, it then equals only itself."""
    ra, rb = a.root_node_id, b.root_node_id
    if ra is None or rb is None:
        return a is b
    return ra == rb


class ZarrHAMTStore(zarr.abc.store.Store):
    """A Zarr v3 store whose keys and values live in a HAMT.

    ``hamt`` must hold raw bytes (``values_are_bytes=True``) and be in the mode given by
    ``read_only``: a HAMT changes mode only through coroutines (``make_read_only``,
    ``enable_write``), which a constructor cannot await. After writing, flush the HAMT with
    ``await hamt.make_read_only()`` and open a new store on a read-only HAMT to read.

    Zarr v3's ``/`` chunk-key separator is assumed. ``zarr.json`` documents read in full are
    kept in ``metadata_read_cache`` (they are small and Zarr asks for them over and over).
    """

    # Set only on clones made by with_read_only(); otherwise read_only follows the HAMT.
    _forced_read_only: Optional[bool] = None

    def __init__(self, hamt: Any, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        if hamt.read_only != read_only:
            raise AssertionError(
                f"the HAMT's read_only ({hamt.read_only}) must equal read_only ({read_only})"
            )
        if not hamt.values_are_bytes:
            raise AssertionError("the HAMT must be built with values_are_bytes=True")
        self.hamt = hamt
        """The HAMT holding the data; flush it with ``make_read_only()`` to get the root."""
        self.metadata_read_cache: dict[str, bytes] = {}
        """Full values of ``zarr.json`` keys read so far."""

    # ------------------------------------------------------------------ mode and identity

    @property
    def read_only(self) -> bool:  # type: ignore[override]
        forced = self._forced_read_only
        if forced is not None:
            return forced
        return self.hamt.read_only

    def _clone(self, read_only: bool) -> "ZarrHAMTStore":
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.metadata_read_cache = dict(self.metadata_read_cache)
        clone._forced_read_only = read_only
        zarr.abc.store.Store.__init__(clone, read_only=read_only)
        return clone

    def with_read_only(self, read_only: bool = False) -> "ZarrHAMTStore":
        """This store if it already has that mode, else a shallow clone sharing the HAMT.

        Nothing is flushed and no I/O happens; the clone only reports the other mode.
        """
        if read_only == self.read_only:
            return self
        return self._clone(read_only)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ZarrHAMTStore):
            return False
        return _same_root(self.hamt, other.hamt)

    # ------------------------------------------------------------------ reads

    async def get(
        self,
        key: str,
        prototype: zarr.core.buffer.BufferPrototype,
        byte_range: zarr.abc.store.ByteRequest | None = None,
    ) -> zarr.core.buffer.Buffer | None:
        if instrumentation.active():
            return await self._traced_get(key, prototype, byte_range)
        return await self._get(key, prototype, byte_range)

    async def _traced_get(
        self,
        key: str,
        prototype: zarr.core.buffer.BufferPrototype,
        byte_range: zarr.abc.store.ByteRequest | None,
    ) -> zarr.core.buffer.Buffer | None:
        """``get`` inside py-hamt's ``py_hamt.hamt_store.get`` span, recorded like py-hamt's."""
        started = time.perf_counter()
        out = None
        with instrumentation.span("py_hamt.hamt_store.get", {"py_hamt.zarr.key": key}):
            try:
                out = await self._get(key, prototype, byte_range)
            finally:
                instrumentation.record_zarr_get(
                    store="hamt_store",
                    key=key,
                    kind="metadata" if key.endswith(_METADATA_SUFFIX) else "chunk",
                    hit=out is not None,
                    seconds=time.perf_counter() - started,
                    byte_range=byte_range is not None,
                )
        return out

    async def _get(
        self,
        key: str,
        prototype: zarr.core.buffer.BufferPrototype,
        byte_range: zarr.abc.store.ByteRequest | None,
    ) -> zarr.core.buffer.Buffer | None:
        if byte_range is None:
            if key.endswith(_METADATA_SUFFIX):
                cache = self.metadata_read_cache
                val = cache.get(key)
                if val is None:
                    try:
                        val = await self.hamt.get(key)
                    except KeyError:
                        return None
                    cache[key] = val
                return prototype.buffer.from_bytes(val)
            try:
                val = await self.hamt.get(key)
            except KeyError:
                return None
            return prototype.buffer.from_bytes(val)
        offset, length, suffix = _byte_range_args(byte_range)
        try:
            val = await self.hamt.get(key, offset=offset, length=length, suffix=suffix)
        except KeyError:
            return None
        return prototype.buffer.from_bytes(val)

    async def get_partial_values(
        self,
        prototype: zarr.core.buffer.BufferPrototype,
        key_ranges: Iterable[tuple[str, zarr.abc.store.ByteRequest | None]],
    ) -> list[zarr.core.buffer.Buffer | None]:
        """Every ``(key, byte_range)`` read concurrently; ``None`` for a missing key."""
        get = self.get
        return list(await asyncio.gather(*(get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        hamt = self.hamt
        lookup = getattr(hamt, "get_pointer", None) or hamt.get
        try:
            await lookup(key)
        except KeyError:
            return False
        return True

    # ------------------------------------------------------------------ writes

    @property
    def supports_writes(self) -> bool:
        return not self.hamt.read_only

    @property
    def supports_partial_writes(self) -> bool:
        return False

    @property
    def supports_deletes(self) -> bool:
        return not self.hamt.read_only

    async def set(self, key: str, value: zarr.core.buffer.Buffer) -> None:
        """Store ``value``'s bytes under ``key``, refreshing a cached ``zarr.json`` entry."""
        if self.read_only:
            raise Exception("Cannot write to a read-only store.")
        data = value.to_bytes()
        await self.hamt.set(key, data)
        cache = self.metadata_read_cache
        if key in cache:
            cache[key] = data

    async def set_if_not_exists(self, key: str, value: zarr.core.buffer.Buffer) -> None:
        if not await self.exists(key):
            await self.set(key, value)

    async def set_partial_values(self, key_start_values: Iterable[tuple[str, int, Any]]) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        """Remove ``key``; a key that is not there is not an error (Zarr deletes blindly)."""
        if self.read_only:
            raise Exception("Cannot write to a read-only store.")
        try:
            await self.hamt.delete(key)
        except KeyError:
            pass
        self.metadata_read_cache.pop(key, None)

    # ------------------------------------------------------------------ listing

    @property
    def supports_listing(self) -> bool:
        return True

    async def list(self) -> AsyncIterator[str]:
        async for key in self.hamt.keys():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        async for key in self.hamt.keys():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """Names directly under ``prefix`` (which should end in ``/``), each once.

        A key ``prefix + "a/b"`` gives ``a`` and ``prefix + "f"`` gives ``f``; names come in the
        order the HAMT's keys are first seen, unsorted.
        """
        seen: set[str] = set()
        cut = len(prefix)
        async for key in self.hamt.keys():
            if not key.startswith(prefix):
                continue
            rest = key[cut:]
            slash = rest.find("/")
            name = rest if slash < 0 else rest[:slash]
            if name not in seen:
                seen.add(name)
                yield name
