"""``ShardedZarrStore``: py-hamt 3.6.0's sharded Zarr layout (``sharded_zarr_v1``/``v2``).

A flat Zarr v3 store on content-addressed blocks: a DAG-CBOR root manifest maps metadata keys
to CIDs and holds, per array, a list of shard CIDs; each shard is a DAG-CBOR list of chunk
CIDs. The layout work (key classification, shards, resizes, grafts, migration) is done in
Rust; this class is the thin ``zarr.abc.store.Store`` over it, with py-hamt's signatures,
exceptions and messages. The same operations give the same root CIDs as py-hamt.

Stores:

* ``KuboCAS``: blocks go through the Rust Kubo client (values over 1 MiB become UnixFS files,
  as Kubo's ``add`` makes them for py-hamt).
* ``InMemoryCAS``: works here (py-hamt's fails, its ids are not CIDs): blocks are named by
  their CIDv1 (BLAKE3), the ids KuboCAS would give for blocks up to 1 MiB.
* any other ``ContentAddressedStore``: its ``save``/``load`` coroutines are called on the
  caller's event loop; ``save`` must return the block's CID (``multiformats.CID``).

Example::

    store = await ShardedZarrStore.open(cas=cas, read_only=False, chunks_per_shard=1024)
    ds.to_zarr(store=store, mode="w", group="0")
    root = await store.flush()
    ro = await ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root)
    ds2 = xarray.open_zarr(ro, group="0")
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal, Optional

import zarr.abc.store
import zarr.core.buffer
from multiformats import CID
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from . import _core, instrumentation
from ._sharded_index import ArrayIndex, ChunkKey, decode_shard_entry
from .store import InMemoryCAS, KuboCAS, _native

__all__ = [
    "ShardedZarrStore",
    "ShardReadMode",
    "ShardedZarrV1DeprecationWarning",
    "SHARDED_ZARR_V1",
    "SHARDED_ZARR_V2",
    "ArrayIndex",
    "ChunkKey",
    "decode_shard_entry",
]

SHARDED_ZARR_V1 = "sharded_zarr_v1"
SHARDED_ZARR_V2 = "sharded_zarr_v2"

ShardReadMode = Literal["full", "sparse", "auto"]
_READ_MODES = ("full", "sparse", "auto")
_DEFAULT_CACHE = 100 * 1024 * 1024


class ShardedZarrV1DeprecationWarning(FutureWarning):
    """Opening or creating a ``sharded_zarr_v1`` store (deprecated in py-hamt 3.6)."""


_V1_WARNING = (
    "sharded_zarr_v1 is deprecated and will be removed in a future py-hamt release. "
    "Prefer sharded_zarr_v2 for new stores; pyramid Zarr readers should open the desired "
    "group explicitly, for example group='0'."
)
_MULTI_GROUP = (
    "sharded_zarr_v2 stores with multiple top-level groups require an explicit Zarr group "
    "when reading. Open the desired pyramid level with xr.open_zarr(..., group='0') or "
    "another available group."
)
_NEED_SHAPES = "array_shape and chunk_shape must be provided for a new store."


def _rust_store(cas: Any) -> Any:
    """The Rust store behind ``cas`` (native for InMemoryCAS/KuboCAS, else a bridge)."""
    if _native(cas, InMemoryCAS) or _native(cas, KuboCAS):
        return cas._rs
    return _core.Store.new_python(cas, "cid")


def _range_args(byte_range: Any) -> tuple[Optional[int], Optional[int], Optional[int]]:
    if byte_range is None:
        return None, None, None
    if isinstance(byte_range, RangeByteRequest):
        if byte_range.start > byte_range.end:
            raise ValueError(
                f"Byte range start ({byte_range.start}) cannot be greater than end "
                f"({byte_range.end})"
            )
        return byte_range.start, byte_range.end - byte_range.start, None
    if isinstance(byte_range, OffsetByteRequest):
        return byte_range.offset, None, None
    if isinstance(byte_range, SuffixByteRequest):
        return None, None, byte_range.suffix
    raise TypeError(f"Unsupported ByteRequest type: {type(byte_range)}")


_METADATA_SUFFIXES = ("zarr.json", ".zarray", ".zattrs", ".zgroup")


def _effective_key(key: str, group: Optional[str]) -> str:
    """The key a read looks up in a store read through its one top-level group ``group``."""
    if group is None:
        return key
    nk = key.strip("/")
    if nk in ("zarr.json", ".zgroup", ".zattrs", ".zmetadata", "") or nk == group:
        return key
    return key if nk.startswith(group + "/") else f"{group}/{nk}"


def _default_group(arrays: frozenset[str]) -> Optional[str]:
    """The one top-level group of a grouped-only v2 store (every array path has a ``/``)."""
    if not arrays or any("/" not in p for p in arrays):
        return None
    groups = {p.split("/", 1)[0] for p in arrays}
    return next(iter(groups)) if len(groups) == 1 else None


def _shape(values: Any, what: str = "array_shape") -> list[int]:
    """``values`` as ints, with py-hamt's messages for dimensions the Rust side (unsigned)
    cannot take: negative array dimensions, non-positive chunk dimensions."""
    dims = [int(x) for x in values]
    if what == "chunk_shape" and any(d <= 0 for d in dims):
        raise ValueError("All chunk_shape dimensions must be positive.")
    if any(d < 0 for d in dims):
        raise ValueError("All array_shape dimensions must be non-negative.")
    return dims


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


async def _drive(local: bool, stepped: bool, r: Any) -> Any:
    """The result of a core call: itself (local store), awaited (Kubo), or stepped (a
    Python store: its save/load coroutines run here, on this loop)."""
    if local:
        return r
    if not stepped:
        return await r
    while True:
        requests = r.step()
        if requests is None:
            return r.result()
        if not requests:
            await asyncio.sleep(0)
            continue
        results = await asyncio.gather(*(c for _, c in requests), return_exceptions=True)
        for (n, _), res in zip(requests, results):
            r.resolve(n, res, isinstance(res, BaseException))


class _ShardCacheView:
    """What py-hamt's ``_shard_data_cache`` tells about the writer's shards, read from the Rust
    writer: ``_dirty_shards``, the shards a flush would write (v1: shard indices; v2:
    ``(array path, shard index)`` pairs, py-hamt's cache keys). Read-only clones share it, as
    they share py-hamt's cache."""

    def __init__(self, core: Any, version: str) -> None:
        self._core = core
        self._v1 = version == SHARDED_ZARR_V1

    @property
    def _dirty_shards(self) -> set[Any]:
        dirty = self._core.dirty_shards()
        return {i for _, i in dirty} if self._v1 else set(dirty)


class ShardedZarrStore(zarr.abc.store.Store):
    """A Zarr v3 store in py-hamt's sharded layout. Create or open it with :meth:`open`."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        cas: Any,
        read_only: bool,
        root_cid: Optional[str] = None,
        *,
        max_cache_memory_bytes: int = _DEFAULT_CACHE,
        shard_read_mode: ShardReadMode = "auto",
    ) -> None:
        if shard_read_mode not in _READ_MODES:
            raise ValueError(
                f"Unsupported shard_read_mode: {shard_read_mode!r}. "
                "Expected 'full', 'sparse', or 'auto'."
            )
        super().__init__(read_only=read_only)
        self.cas = cas
        self.shard_read_mode = shard_read_mode
        self._root_cid = root_cid
        self._max_cache_memory_bytes = max_cache_memory_bytes
        self._c: Any = None
        # Shared with read-only clones (with_read_only), which use the same writer.
        self._write_lock = asyncio.Lock()

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        cas: Any,
        read_only: bool,
        root_cid: Optional[str] = None,
        *,
        array_shape: Optional[tuple[int, ...]] = None,
        chunk_shape: Optional[tuple[int, ...]] = None,
        chunks_per_shard: Optional[int] = None,
        max_cache_memory_bytes: int = _DEFAULT_CACHE,
        manifest_version: Optional[str] = None,
        primary_array_path: str = "",
        shard_read_mode: ShardReadMode = "auto",
    ) -> "ShardedZarrStore":
        """Opens ``root_cid`` or creates a new store (v2 unless shapes ask for v1)."""
        store = cls(
            cas,
            read_only,
            root_cid,
            max_cache_memory_bytes=max_cache_memory_bytes,
            shard_read_mode=shard_read_mode,
        )
        rs = _rust_store(cas)
        cache = max(0, int(max_cache_memory_bytes))
        if root_cid:
            r = _core.Sharded.open(rs, root_cid, read_only, cache, shard_read_mode)
            local = _native(cas, InMemoryCAS)
            stepped = not local and not _native(cas, KuboCAS)
            store._attach(await _drive(local, stepped, r))
            if store._version == SHARDED_ZARR_V1:
                warnings.warn(_V1_WARNING, ShardedZarrV1DeprecationWarning, stacklevel=2)
            return store
        if read_only:
            raise ValueError("root_cid must be provided for a read-only store.")
        mv = manifest_version
        if mv not in (None, SHARDED_ZARR_V1, SHARDED_ZARR_V2):
            raise ValueError(f"Incompatible manifest version: {mv}.")
        shapes = (array_shape is None, chunk_shape is None)
        if mv != SHARDED_ZARR_V2:
            if all(shapes) and chunks_per_shard is None:
                raise ValueError(_NEED_SHAPES)
            if shapes[0] != shapes[1]:
                raise ValueError(_NEED_SHAPES)
            if mv == SHARDED_ZARR_V1 and any(shapes):
                raise ValueError(_NEED_SHAPES)
        if not _positive_int(chunks_per_shard):
            raise ValueError("chunks_per_shard must be a positive integer.")
        if mv == SHARDED_ZARR_V2 or (mv is None and all(shapes)):
            if shapes[0] != shapes[1]:
                raise ValueError(
                    "array_shape and chunk_shape must both be provided when seeding a v2 "
                    "array index."
                )
            c = None if chunk_shape is None else _shape(chunk_shape, "chunk_shape")
            a = None if array_shape is None else _shape(array_shape)
            store._attach(
                _core.Sharded.create_v2(
                    rs, chunks_per_shard, primary_array_path, a, c, cache, shard_read_mode
                )
            )
            return store
        # py-hamt pairs the shapes with zip(strict=True): a rank mismatch gives its message.
        list(zip(array_shape, chunk_shape, strict=True))  # type: ignore[arg-type]
        chunks = _shape(chunk_shape, "chunk_shape")
        store._attach(
            _core.Sharded.create_v1(
                rs,
                _shape(array_shape),
                chunks,
                chunks_per_shard,
                cache,
                shard_read_mode,
            )
        )
        warnings.warn(_V1_WARNING, ShardedZarrV1DeprecationWarning, stacklevel=2)
        return store

    def _attach(self, core: Any) -> None:
        """Uses ``core`` (a ``_core.Sharded``); its version is kept here, readable while a
        call holds the writer."""
        self._c = core
        self._version = core.version
        self._shard_data_cache = _ShardCacheView(core, self._version)
        self._snapshot_metadata()

    async def _run(self, r: Any) -> Any:
        c = self._c
        return await _drive(c.is_local, c.is_stepped, r)

    async def _write(self, method: str, *args: Any) -> Any:
        """Runs a call on a writer. On Kubo the calls run on tokio's threads, where two
        concurrent calls could reach the writer in either order; the lock keeps the order of
        the calls, as asyncio's scheduling does for py-hamt. That matters: zarr's
        ``set_if_not_exists`` of a parent group races with the auto-created group document
        otherwise, and the same writes would not always give the same root."""
        c = self._c
        if c.is_local or c.is_stepped or not c.writable:
            return await self._run(getattr(c, method)(*args))
        async with self._write_lock:
            try:
                return await getattr(c, method)(*args)
            finally:
                self._snapshot_metadata()

    def _snapshot_metadata(self) -> None:
        """Kubo writers: the metadata keys as of the last finished call. ``exists`` of a
        metadata document answers from it at once, as py-hamt's does (a dict lookup): a call
        still in flight (a ``set`` waiting for Kubo) is not seen yet. zarr writes a group's
        ``zarr.json`` and asks ``exists`` of its parent's concurrently; this keeps the
        parent document py-hamt keeps."""
        c = self._c
        if c.is_local or c.is_stepped or not c.writable:
            self.__dict__.pop("_meta_snapshot", None)
            return
        arrays = frozenset(c.arrays()) if self._version == SHARDED_ZARR_V2 else frozenset()
        self._meta_snapshot = (frozenset(c.metadata_keys()), arrays)

    def _note_array(self, key: str, data: bytes) -> None:
        """py-hamt registers an array's index when its ``set`` starts, before any await; a
        concurrent ``exists`` then reads through the groups as they are with that array."""
        snap = self.__dict__.get("_meta_snapshot")
        if snap is None or self._version != SHARDED_ZARR_V2:
            return
        for suffix in ("zarr.json", ".zarray"):
            if key.endswith(suffix):
                path = key[: -len(suffix)].strip("/")
                break
        else:
            return
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if not isinstance(doc, dict) or "shape" not in doc:
            return
        grid = doc.get("chunk_grid")
        cfg = grid.get("configuration") if isinstance(grid, dict) else None
        if not (isinstance(cfg, dict) and "chunk_shape" in cfg) and "chunks" not in doc:
            return
        self._meta_snapshot = (snap[0], snap[1] | {path})

    # ------------------------------------------------------------------ mode and identity

    def with_read_only(self, read_only: bool = False) -> "ShardedZarrStore":
        """This store if it already has that mode, else a shallow clone in the other mode.

        A read-only clone shares this store's state; a writable clone of a read-only store
        starts a writer at its root (nothing is loaded)."""
        if read_only == self.read_only:
            return self
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        zarr.abc.store.Store.__init__(clone, read_only=read_only)
        if not read_only:
            clone._write_lock = asyncio.Lock()
            clone._attach(self._c.to_writer())
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShardedZarrStore):
            return False
        return self._root_cid == other._root_cid

    # ------------------------------------------------------------------ py-hamt's internals
    # (attributes real callers read: dClimate's publishing code, py-hamt's tests)

    @property
    def _manifest_version(self) -> str:
        return self._version

    @property
    def _primary_array_path(self) -> Optional[str]:
        return self._c.primary

    @property
    def _primary_inferred(self) -> bool:
        """v1: the primary array path was inferred from metadata, not recorded in the root."""
        return bool(self._c.primary_inferred)

    def _primary_index(self) -> Optional[dict[str, Any]]:
        arrays = self._c.arrays()
        key = "" if self._version == SHARDED_ZARR_V1 else self._c.primary
        return arrays.get(key) if key is not None else None

    def _geometry(self, field: str, empty: Any) -> Any:
        index = self._primary_index()
        if index is None:
            return empty
        v = index[field]
        return tuple(v) if isinstance(v, list) else v

    @property
    def _root_obj(self) -> dict[str, Any]:
        """The root manifest as py-hamt's ``_root_obj`` holds it (``metadata``, ``chunks`` or
        ``arrays``, CIDs as ``multiformats.CID``), built from the Rust state on each access:
        reading it sees every change so far; assigning into it changes nothing."""
        return self._c.root_obj()

    @property
    def _dirty_root(self) -> bool:
        """True when a flush would write a new root (py-hamt's flag)."""
        return bool(self._c.writable and self._c.dirty)

    @property
    def _array_shape(self) -> tuple[int, ...]:
        return self._geometry("array_shape", ())

    @property
    def _chunk_shape(self) -> tuple[int, ...]:
        return self._geometry("chunk_shape", ())

    @property
    def _chunks_per_dim(self) -> tuple[int, ...]:
        return self._geometry("chunks_per_dim", ())

    @property
    def _chunks_per_shard(self) -> int:
        return self._geometry("chunks_per_shard", 0)

    @property
    def _num_shards(self) -> int:
        return self._geometry("num_shards", 0)

    @property
    def _total_chunks(self) -> int:
        return self._geometry("total_chunks", 0)

    @property
    def array_indices(self) -> dict[str, ArrayIndex]:
        """Array path -> :class:`ArrayIndex` (a snapshot: changing it changes nothing)."""
        return {
            path: ArrayIndex(
                path,
                tuple(a["array_shape"]),
                tuple(a["chunk_shape"]),
                a["chunks_per_shard"],
                [None if c is None else CID.decode(c) for c in a["shard_cids"]],
            )
            for path, a in self._c.arrays().items()
        }

    @property
    def _full_mode_latched(self) -> bool:
        return self._c.read_stats()[1]

    def _v2_top_level_groups(self) -> set[str]:
        return set(self._c.top_level_groups())

    def _v2_is_grouped_only(self) -> bool:
        return self._c.grouped_only()

    def _v2_default_group_for_root_read(self) -> Optional[str]:
        return self._c.default_read_group()

    def _v2_requires_explicit_group_for_root_read(self) -> bool:
        return self._c.requires_explicit_group()

    # ------------------------------------------------------------------ reads

    async def get(
        self,
        key: str,
        prototype: zarr.core.buffer.BufferPrototype,
        byte_range: zarr.abc.store.ByteRequest | None = None,
    ) -> zarr.core.buffer.Buffer | None:
        offset, length, suffix = _range_args(byte_range)
        if not instrumentation.active():
            data = await self._write("get", key, offset, length, suffix)
            return None if data is None else prototype.buffer.from_bytes(data)
        started = time.perf_counter()
        data = None
        with instrumentation.span("py_hamt.sharded_store.get", {"py_hamt.zarr.key": key}):
            try:
                data = await self._write("get", key, offset, length, suffix)
            finally:
                instrumentation.record_zarr_get(
                    store="sharded_store",
                    key=key,
                    kind="metadata" if key.endswith("zarr.json") else "chunk",
                    hit=data is not None,
                    seconds=time.perf_counter() - started,
                    byte_range=byte_range is not None,
                )
        return None if data is None else prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: zarr.core.buffer.BufferPrototype,
        key_ranges: Iterable[tuple[str, zarr.abc.store.ByteRequest | None]],
    ) -> list[zarr.core.buffer.Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        snap = self.__dict__.get("_meta_snapshot")
        if snap is not None and key.endswith(_METADATA_SUFFIXES):
            keys, arrays = snap
            return _effective_key(key, _default_group(arrays)) in keys
        return bool(await self._write("exists", key))

    async def get_pointer(self, key: str) -> Optional[CID]:
        """The CID of ``key``'s block, or None."""
        s = await self._write("get_pointer", key)
        return None if s is None else CID.decode(s)

    # ------------------------------------------------------------------ writes

    @property
    def supports_writes(self) -> bool:
        return not self.read_only

    @property
    def supports_deletes(self) -> bool:
        return not self.read_only

    @property
    def supports_partial_writes(self) -> bool:
        return False

    @property
    def supports_listing(self) -> bool:
        return True

    async def set(self, key: str, value: zarr.core.buffer.Buffer) -> None:
        if self.read_only:
            raise PermissionError("Cannot write to a read-only store.")
        data = value.to_bytes()
        self._note_array(key, data)
        await self._write("set", key, data)

    async def set_pointer(self, key: str, pointer: str) -> None:
        """Points ``key`` at an existing block (``pointer``: a CID string in any base)."""
        if self.read_only:
            raise PermissionError("Cannot write to a read-only store.")
        await self._write("set_pointer", key, str(pointer))

    async def set_partial_values(self, key_start_values: Iterable[tuple[str, int, Any]]) -> None:
        raise NotImplementedError("Partial writes are not supported by ShardedZarrStore.")

    async def delete(self, key: str) -> None:
        if self.read_only:
            raise PermissionError("Cannot delete from a read-only store.")
        await self._write("delete", key)

    async def delete_dir(self, prefix: str) -> None:
        if self._version == SHARDED_ZARR_V1:
            await super().delete_dir(prefix)
            return
        if self.read_only:
            raise PermissionError("Cannot delete from a read-only store.")
        await self._write("delete_dir", prefix)

    async def clear(self) -> None:
        if self._version == SHARDED_ZARR_V1:
            await super().clear()
            return
        if self.read_only:
            raise PermissionError("Cannot clear a read-only store.")
        await self._write("clear")

    async def flush(self) -> str:
        """Writes the changed shards and the root; returns the root CID string (the string
        the store was opened with when nothing changed)."""
        if not self._c.writable or (self._root_cid and not self._c.dirty):
            return self._root_cid  # type: ignore[return-value]
        self._root_cid = await self._write("flush")
        return self._root_cid  # type: ignore[return-value]

    async def resize_store(
        self, new_shape: tuple[int, ...], *, array_path: Optional[str] = None
    ) -> None:
        """Resizes an array's shard index (default: the primary array); metadata untouched."""
        if self.read_only:
            raise PermissionError("Cannot resize a read-only store.")
        await self._write("resize_store", _shape(new_shape), array_path)

    async def resize_variable(self, variable_name: str, new_shape: tuple[int, ...]) -> None:
        """Sets ``shape`` in the variable's ``zarr.json`` (v2 also resizes its index)."""
        if self.read_only:
            raise PermissionError("Cannot resize a read-only store.")
        await self._write("resize_variable", variable_name, _shape(new_shape))

    async def graft_store(
        self,
        store_to_graft_cid: str,
        chunk_offset: tuple[int, ...],
        *,
        source_array_path: Optional[str] = None,
        target_array_path: Optional[str] = None,
    ) -> None:
        """Copies another root's chunk pointers (same CAS) in at ``chunk_offset``."""
        if self.read_only:
            raise PermissionError("Cannot graft onto a read-only store.")
        await self._write(
            "graft_store",
            str(store_to_graft_cid),
            [int(x) for x in chunk_offset],
            source_array_path,
            target_array_path,
        )

    async def migrate_v1_to_v2(self, primary_array_path: str) -> str:
        """Rewrites a v1 store as v2 with its shards under ``primary_array_path``."""
        if self.read_only:
            raise PermissionError("Cannot migrate a read-only store.")
        self._root_cid = await self._write("migrate_v1_to_v2", primary_array_path)
        self._version = SHARDED_ZARR_V2
        self._shard_data_cache = _ShardCacheView(self._c, self._version)
        self._snapshot_metadata()
        return self._root_cid  # type: ignore[return-value]

    # ------------------------------------------------------------------ listing

    async def list(self) -> AsyncIterator[str]:
        for key in await self._write("list"):
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in await self._write("list"):
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        if (
            self.read_only
            and self._c.writable
            and not prefix.strip("/")
            and self._c.requires_explicit_group()
        ):
            raise ValueError(_MULTI_GROUP)
        for name in await self._write("list_dir", prefix):
            yield name
