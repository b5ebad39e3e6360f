"""A ZarrHAMTStore that encrypts every value (py-hamt 3.6.0's ``SimpleEncryptedZarrHAMTStore``).

Each value, metadata and chunks alike, is sealed with XChaCha20-Poly1305 under a 32-byte key,
with ``header`` as associated data (authenticated, never stored: the reader must pass the same
header). The stored bytes are ``nonce (24) || tag (16) || ciphertext``, byte for byte py-hamt's
framing, so either library decrypts what the other wrote. The nonce is random per value, so
writing the same dataset twice gives different bytes and a different root.

HAMT keys are NOT encrypted: array names, chunk coordinates and the dataset layout stay visible.

One deliberate difference from py-hamt: a ``get`` with a byte range returns that range of the
decrypted value, which is what Zarr asks for. py-hamt ignores the range and returns the whole
value (harmless for plain chunks, wrong for partial reads such as sharded arrays).

Example::

    key = os.urandom(32)
    hamt = await HAMT.build(cas=cas, values_are_bytes=True)
    ds.to_zarr(store=SimpleEncryptedZarrHAMTStore(hamt, False, key, b"my-header"), mode="w")
    await hamt.make_read_only()
    ro = await HAMT.build(cas=cas, root_node_id=hamt.root_node_id, read_only=True,
                          values_are_bytes=True)
    ds2 = xarray.open_zarr(store=SimpleEncryptedZarrHAMTStore(ro, True, key, b"my-header"))
"""

from __future__ import annotations

from typing import Any

import zarr.abc.store
import zarr.core.buffer
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from ._core import seal as _seal
from ._core import unseal as _unseal
from .zarr_store import ZarrHAMTStore, _same_root

__all__ = ["SimpleEncryptedZarrHAMTStore"]

_DECRYPT_FAILED = "Decryption failed. Check key, header, or data integrity."
_METADATA_SUFFIX = "zarr.json"


def _slice(data: bytes, byte_range: Any) -> bytes:
    """Apply a Zarr ``ByteRequest`` to the whole (decrypted) value, with slice semantics."""
    if isinstance(byte_range, RangeByteRequest):
        if byte_range.end < byte_range.start:
            raise ValueError("End must be >= start for RangeByteRequest")
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        n = byte_range.suffix
        return data[-n:] if n > 0 else b""
    raise TypeError(f"Unsupported ByteRequest type: {type(byte_range)}")


class SimpleEncryptedZarrHAMTStore(ZarrHAMTStore):
    """Write and read a Zarr v3 dataset in a HAMT with every value encrypted.

    ``encryption_key`` must be exactly 32 bytes (``ValueError`` otherwise); ``header`` is the
    associated data bound to every value. A wrong key or header, or tampered data, makes reads
    raise ``ValueError("Decryption failed. Check key, header, or data integrity.")``.
    ``metadata_read_cache`` holds decrypted ``zarr.json`` documents.
    """

    def __init__(self, hamt: Any, read_only: bool, encryption_key: bytes, header: bytes) -> None:
        super().__init__(hamt, read_only=read_only)
        if len(encryption_key) != 32:
            raise ValueError("Encryption key must be exactly 32 bytes long.")
        self.encryption_key = encryption_key
        self.header = header
        self.metadata_read_cache: dict[str, bytes] = {}

    def with_read_only(self, read_only: bool = False) -> "SimpleEncryptedZarrHAMTStore":
        """This store if it already has that mode, else a shallow clone sharing HAMT and cache."""
        if read_only == self.read_only:
            return self
        clone = self._clone(read_only)
        clone.metadata_read_cache = self.metadata_read_cache
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimpleEncryptedZarrHAMTStore):
            return False
        return (
            _same_root(self.hamt, other.hamt)
            and self.encryption_key == other.encryption_key
            and self.header == other.header
        )

    def _encrypt(self, plaintext: bytes) -> bytes:
        """``nonce || tag || ciphertext`` of ``plaintext`` under a fresh random nonce."""
        return _seal(self.encryption_key, self.header, plaintext)

    def _decrypt(self, framed: bytes) -> bytes:
        """The plaintext of a framed value; ``ValueError`` if it does not authenticate."""
        try:
            return _unseal(self.encryption_key, self.header, framed)
        except Exception as e:  # wrong key or header, tampered or truncated data
            raise ValueError(_DECRYPT_FAILED) from e

    async def get(
        self,
        key: str,
        prototype: zarr.core.buffer.BufferPrototype,
        byte_range: zarr.abc.store.ByteRequest | None = None,
    ) -> zarr.core.buffer.Buffer | None:
        cache = self.metadata_read_cache
        is_metadata = key.endswith(_METADATA_SUFFIX)
        data = cache.get(key) if is_metadata else None
        if data is None:
            try:
                framed = await self.hamt.get(key)
            except KeyError:
                return None
            data = self._decrypt(framed)
            if is_metadata:
                cache[key] = data
        if byte_range is not None:
            data = _slice(data, byte_range)
        return prototype.buffer.from_bytes(data)

    async def set(self, key: str, value: zarr.core.buffer.Buffer) -> None:
        """Encrypt ``value`` and store it under ``key``; refresh a cached ``zarr.json``."""
        if self.read_only:
            raise Exception("Cannot write to a read-only store.")
        data = value.to_bytes()
        await self.hamt.set(key, self._encrypt(data))
        cache = self.metadata_read_cache
        if key in cache:
            cache[key] = data
