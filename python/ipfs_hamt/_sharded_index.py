"""py-hamt's module-level helpers of the sharded layout: ``ArrayIndex`` (one array's chunk
geometry and shard CIDs, as the manifest stores it) and ``decode_shard_entry`` (one entry of
a shard block without decoding the rest). The store itself keeps its indices in Rust; these
are value objects and functions with py-hamt's behaviour and messages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from multiformats import CID

__all__ = ["ArrayIndex", "ChunkKey", "decode_shard_entry"]


def _normalize(path: str) -> str:
    return path.strip("/")


@dataclass(frozen=True)
class ChunkKey:
    """A parsed chunk key: the array's path and the chunk's coordinates."""

    array_path: str
    coords: tuple[int, ...]


@dataclass
class ArrayIndex:
    """One array's shard index: shape, chunk shape, ``chunks_per_shard`` and one CID (or
    None) per shard, in row-major chunk order."""

    array_path: str
    array_shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    chunks_per_shard: int
    shard_cids: list[Optional[CID]]
    order: str = "C"
    chunks_per_dim: tuple[int, ...] = field(init=False)
    total_chunks: int = field(init=False)
    num_shards: int = field(init=False)

    def __post_init__(self) -> None:
        self.array_path = _normalize(self.array_path)
        self.array_shape = tuple(self.array_shape)
        self.chunk_shape = tuple(self.chunk_shape)
        self._derive()
        if len(self.shard_cids) != self.num_shards:
            raise ValueError(
                f"Inconsistent number of shards. Expected {self.num_shards}, "
                f"found {len(self.shard_cids)}."
            )

    def _derive(self) -> None:
        cps = self.chunks_per_shard
        if not isinstance(cps, int) or cps <= 0:
            raise ValueError("chunks_per_shard must be a positive integer.")
        if len(self.array_shape) != len(self.chunk_shape):
            raise ValueError("array_shape and chunk_shape must have the same rank.")
        if any(c <= 0 for c in self.chunk_shape):
            raise ValueError("All chunk_shape dimensions must be positive.")
        if any(a < 0 for a in self.array_shape):
            raise ValueError("All array_shape dimensions must be non-negative.")
        if self.order != "C":
            raise ValueError("Only row-major ('C') shard ordering is supported.")
        self.chunks_per_dim = tuple(-(-a // c) for a, c in zip(self.array_shape, self.chunk_shape))
        self.total_chunks = math.prod(self.chunks_per_dim)
        self.num_shards = -(-self.total_chunks // cps) if self.total_chunks else 0

    @classmethod
    def new(
        cls,
        array_path: str,
        array_shape: tuple[int, ...],
        chunk_shape: tuple[int, ...],
        chunks_per_shard: int,
        *,
        order: str = "C",
    ) -> "ArrayIndex":
        """An index with every shard absent (None)."""
        dims = [-(-a // c) if c > 0 else 0 for a, c in zip(array_shape, chunk_shape, strict=True)]
        total = math.prod(dims)
        n = -(-total // chunks_per_shard) if total > 0 else 0
        return cls(array_path, array_shape, chunk_shape, chunks_per_shard, [None] * n, order)

    @classmethod
    def from_manifest(cls, array_path: str, manifest: dict) -> "ArrayIndex":
        """The index as a v2 manifest's ``arrays`` entry holds it."""
        cids = manifest.get("shard_cids")
        if not isinstance(cids, list):
            raise ValueError("shard_cids is not a list.")
        cfg = manifest.get("sharding_config", {})
        if not isinstance(cfg, dict):
            raise ValueError("sharding_config is not a dictionary.")
        return cls(
            array_path,
            tuple(manifest["array_shape"]),
            tuple(manifest["chunk_shape"]),
            cfg["chunks_per_shard"],
            list(cids),
            cfg.get("order", "C"),
        )

    def resize(self, new_shape: tuple[int, ...]) -> None:
        """New shape; the shard list is cut or padded with None (entries are not moved)."""
        if len(new_shape) != len(self.array_shape):
            raise ValueError("New shape must have the same number of dimensions as the old shape.")
        self.array_shape = tuple(new_shape)
        self._derive()
        n = self.num_shards
        self.shard_cids = (self.shard_cids + [None] * n)[:n]

    def to_manifest(self) -> dict[str, Any]:
        """The ``arrays`` entry of a v2 manifest."""
        return {
            "array_shape": list(self.array_shape),
            "chunk_shape": list(self.chunk_shape),
            "sharding_config": {"chunks_per_shard": self.chunks_per_shard, "order": self.order},
            "shard_cids": self.shard_cids,
        }


# ---------------------------------------------------------------------- sparse shard reads


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    """(major type, argument, position after the head) of the CBOR item at ``pos``."""
    if pos >= len(data):
        raise ValueError("Truncated CBOR item.")
    b = data[pos]
    major, info = b >> 5, b & 0x1F
    if info < 24:
        return major, info, pos + 1
    if info > 27:
        raise ValueError("Indefinite or reserved CBOR item length is not supported.")
    n = 1 << (info - 24)
    if pos + 1 + n > len(data):
        raise ValueError("Truncated CBOR item.")
    return major, int.from_bytes(data[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def _skip(data: bytes, pos: int) -> int:
    """The position after the CBOR item at ``pos``."""
    major, arg, pos = _head(data, pos)
    if major in (2, 3):
        if pos + arg > len(data):
            raise ValueError("Truncated CBOR byte or text string.")
        return pos + arg
    if major == 4:
        for _ in range(arg):
            pos = _skip(data, pos)
    elif major == 5:
        for _ in range(2 * arg):
            pos = _skip(data, pos)
    elif major == 6:
        pos = _skip(data, pos)
    return pos


def decode_shard_entry(shard_bytes: bytes, index: int) -> Optional[CID]:
    """Entry ``index`` of a shard block (a CID or None), reading only what precedes it."""
    data = bytes(shard_bytes)
    if not data:
        raise ValueError("Shard bytes are empty.")
    if data[0] >> 5 != 4:
        raise ValueError("Shard bytes do not start with a DAG-CBOR list.")
    _, count, pos = _head(data, 0)
    if index < 0 or index >= count:
        raise IndexError("Shard entry index out of range.")
    for _ in range(index):
        pos = _skip(data, pos)
    if pos < len(data) and data[pos] == 0xF6:
        return None
    major, tag, p = _head(data, pos)
    if major != 6 or tag != 42:
        raise TypeError("Shard entry contains a non-CID value.")
    major, n, p = _head(data, p)
    if major != 2:
        raise TypeError("Shard entry contains a non-CID value.")
    if p + n > len(data):
        raise ValueError("Truncated CBOR byte or text string.")
    raw = data[p : p + n]
    if not raw or raw[0] != 0:
        raise TypeError("Shard entry contains a non-CID value.")
    return CID.decode(raw[1:])
