"""``HAMT``: py-hamt 3.6.0's class, with the tree work done in Rust."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncIterator, Callable, Optional

from . import _core
from .store import ContentAddressedStore, rust_store

IPLDKind = Any

blake3_hashfn: Callable[[bytes], bytes] = _core.blake3_hashfn

# The empty node (256 empty buckets): what an empty HAMT's root is.
_EMPTY_NODE = bytes([0x99, 0x01, 0x00]) + bytes([0xA0]) * 256


def extract_bits(hash_bytes: bytes, depth: int, nbits: int) -> int:
    """The ``nbits`` bits of ``hash_bytes`` starting at bit ``depth * nbits`` (most
    significant first), as an unsigned int: the bucket index at that depth (py-hamt's helper).

    >>> extract_bits(bytes([0b10110000]), 1, 2)
    3
    """
    total = len(hash_bytes) * 8
    left = total - depth * nbits
    if left < nbits:
        raise IndexError("Arguments extract more bits than remain in the hash bits")
    return (int.from_bytes(hash_bytes, "big") >> (left - nbits)) & ((1 << nbits) - 1)


def _is_blake3(hash_fn: Callable[[bytes], bytes]) -> bool:
    if hash_fn is blake3_hashfn:
        return True
    # py-hamt's own blake3_hashfn computes the same digest.
    return getattr(hash_fn, "__name__", "") == "blake3_hashfn" and str(
        getattr(hash_fn, "__module__", "")
    ).startswith("py_hamt")


class HAMT:
    """A HAMT over a content-addressed store, byte-compatible with py-hamt.

    Writable HAMTs keep changes in memory until ``make_read_only()`` (or ``cache_vacate()``)
    writes them; then ``root_node_id`` is the root's id. Read-only HAMTs serve many concurrent
    readers (threads too).

    >>> import asyncio
    >>> from ipfs_hamt import HAMT, InMemoryCAS
    >>> async def demo():
    ...     hamt = await HAMT.build(cas=InMemoryCAS())
    ...     await hamt.set("foo", "bar")
    ...     await hamt.make_read_only()
    ...     return await hamt.get("foo"), hamt.root_node_id.hex()[:4]
    >>> asyncio.run(demo())
    ('bar', '1e20')
    """

    def __init__(
        self,
        cas: ContentAddressedStore,
        hash_fn: Callable[[bytes], bytes] = blake3_hashfn,
        root_node_id: IPLDKind = None,
        read_only: bool = False,
        max_bucket_size: int = 4,
        values_are_bytes: bool = False,
        _ids: Optional[str] = None,
        _block_hash: Optional[str] = None,
    ) -> None:
        self.cas = cas
        self.hash_fn = hash_fn
        self.values_are_bytes = values_are_bytes
        self.max_bucket_size = max_bucket_size
        self.lock = asyncio.Lock()
        native = _is_native(cas)
        if _ids is None and root_node_id is not None:
            _ids = "multihash" if isinstance(root_node_id, bytes) else "cid"
        if _block_hash is None and root_node_id is not None and not native:
            # New blocks are named like the existing ones (a Python store may use sha2-256).
            _block_hash = _core.id_hash_name(root_node_id)
        store, ids = rust_store(cas, _ids)
        self._core_args = (store, ids, _block_hash, None if _is_blake3(hash_fn) else hash_fn)
        self._attach(root_node_id, read_only)

    def _attach(self, root: IPLDKind, read_only: bool) -> None:
        store, ids, block_hash, hash_fn = self._core_args
        self._c = _core.Hamt(
            store,
            root,
            read_only,
            self.max_bucket_size,
            self.values_are_bytes,
            hash_fn,
            ids,
            block_hash,
        )
        self._local = self._c.is_local
        self._stepped = self._c.is_stepped

    @classmethod
    async def build(cls, *args: Any, **kwargs: Any) -> "HAMT":
        """Creates a HAMT (use this rather than the constructor, as py-hamt advises)."""
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        cas, root = a["cas"], a["root_node_id"]
        if a["_ids"] is None and root is None and not _is_native(cas):
            # A Python store: its first id tells which kind it hands out (the empty node is
            # a block every HAMT writes anyway).
            probe = await cas.save(_EMPTY_NODE, "dag-cbor")
            kwargs["_ids"] = "multihash" if isinstance(probe, (bytes, bytearray)) else "cid"
            kwargs["_block_hash"] = _core.id_hash_name(probe)
        return cls(*args, **kwargs)

    async def _done(self, r: Any) -> Any:
        """The result of a core call: itself (local store), an awaited future (Kubo), or a
        stepped operation (a Python store: its save/load coroutines run here, on this loop)."""
        if self._local:
            return r
        if not self._stepped:
            return await r
        while True:
            requests = r.step()
            if requests is None:
                return r.result()
            if not requests:
                await asyncio.sleep(0)  # waiting for another operation (the writer lock)
                continue
            results = await asyncio.gather(*(c for _, c in requests), return_exceptions=True)
            for (n, _), res in zip(requests, results):
                r.resolve(n, res, isinstance(res, BaseException))

    @property
    def root_node_id(self) -> IPLDKind:
        """The root's id; ``None`` while there are changes not yet written."""
        return self._c.root_id()

    @root_node_id.setter
    def root_node_id(self, root: IPLDKind) -> None:
        """Moves the HAMT to another root, as assigning py-hamt's attribute does (dClimate
        continues an existing HAMT this way). Unwritten changes are dropped; the mode stays."""
        if root is None:
            raise ValueError("root_node_id cannot be None")
        _, ids, _, _ = self._core_args
        if ids == "multihash" and not isinstance(root, (bytes, bytearray)):
            raise TypeError("this HAMT's store names blocks by multihash bytes, not CIDs")
        self._attach(root, self.read_only)

    @property
    def read_only(self) -> bool:
        return self._c.read_only

    async def make_read_only(self) -> None:
        """Writes all changes and switches to read-only mode."""
        await self._done(self._c.make_read_only())

    async def enable_write(self) -> None:
        """Switches back to writable mode (a no-op when writable)."""
        self._c.enable_write()

    async def cache_size(self) -> int:
        """Approximate bytes of cached nodes."""
        return self._c.cache_size()

    async def cache_vacate(self) -> None:
        """Writable: writes the buffered changes. Read-only: empties the node cache."""
        await self._done(self._c.cache_vacate())

    async def set(self, key: str, val: IPLDKind) -> None:
        """Sets ``key`` to ``val`` (bytes if ``values_are_bytes``, else any IPLD value)."""
        r = self._c.set(key, val)
        if not self._local:
            await self._done(r)

    async def delete(self, key: str) -> None:
        """Removes ``key``; ``KeyError`` if absent."""
        await self._done(self._c.delete(key))

    async def get(
        self,
        key: str,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        suffix: Optional[int] = None,
    ) -> IPLDKind:
        """The value of ``key`` (or a py-hamt slice of it); ``KeyError`` if absent."""
        r = self._c.get(key, offset, length, suffix)
        return r if self._local else await self._done(r)

    async def get_pointer(self, key: str) -> IPLDKind:
        """The id of ``key``'s value block, without loading it."""
        r = self._c.get_pointer(key)
        return r if self._local else await self._done(r)

    async def keys(self) -> AsyncIterator[str]:
        """Every key, in py-hamt's traversal order."""
        r = self._c.keys()
        for k in r if self._local else await self._done(r):
            yield k

    async def len(self) -> int:
        """Number of keys."""
        r = self._c.len()
        return r if self._local else await self._done(r)


def _is_native(cas: Any) -> bool:
    from .store import InMemoryCAS, KuboCAS, _native

    return _native(cas, InMemoryCAS) or _native(cas, KuboCAS)
