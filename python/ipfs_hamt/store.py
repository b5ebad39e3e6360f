"""Content-addressed stores with py-hamt 3.6.0's interface.

``InMemoryCAS`` and ``KuboCAS`` are backed by Rust stores: a HAMT built on them never calls
back into Python per block. Any other ``ContentAddressedStore`` subclass works too: the HAMT
calls its ``save``/``load`` coroutines (ids must be the blocks' content addresses: the CID, or
the BLAKE3 multihash bytes as ``InMemoryCAS`` returns).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, MutableMapping
from typing import Any, Callable, Literal, Optional, Tuple

from multiformats import CID

from . import _core

IPLDKind = Any

GatewayContentMismatch = _core.GatewayContentMismatch
GatewayContentUnverifiable = _core.GatewayContentUnverifiable


class ContentAddressedStore(ABC):
    """Abstract content-addressed store: ``save`` returns an id, ``load`` returns bytes."""

    CodecInput = Literal["raw", "dag-cbor"]

    @abstractmethod
    async def save(self, data: bytes, codec: CodecInput) -> IPLDKind:
        """Stores ``data`` and returns its id."""

    @abstractmethod
    async def load(
        self,
        id: IPLDKind,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        suffix: Optional[int] = None,
    ) -> bytes:
        """Returns the bytes of ``id`` (or the py-hamt slice given by offset/length/suffix)."""

    async def pin_cid(self, id: IPLDKind, target_rpc: str) -> None:
        """Pins ``id`` (a no-op unless the store supports pinning)."""

    async def unpin_cid(self, id: IPLDKind, target_rpc: str) -> None:
        """Unpins ``id`` (a no-op unless the store supports pinning)."""

    async def pin_update(self, old_id: IPLDKind, new_id: IPLDKind, target_rpc: str) -> None:
        """Moves a pin from ``old_id`` to ``new_id`` (a no-op unless supported)."""

    async def pin_ls(self, target_rpc: str) -> list[dict[str, Any]]:
        """Lists pins (empty unless the store supports pinning)."""
        return []


def _native(cas: Any, cls: type) -> bool:
    """True if ``cas`` is a ``cls`` whose save/load were not overridden in Python."""
    t = type(cas)
    return isinstance(cas, cls) and t.save is cls.save and t.load is cls.load


class InMemoryCAS(ContentAddressedStore):
    """An in-memory store; ids are the 34-byte BLAKE3 multihash of the data (``1e 20 ...``).

    >>> import asyncio
    >>> cas = InMemoryCAS()
    >>> mh = asyncio.run(cas.save(b"hello", "raw"))
    >>> mh[:2].hex(), len(mh)
    ('1e20', 34)
    >>> asyncio.run(cas.load(mh, offset=1, length=3))
    b'ell'
    """

    def __init__(self) -> None:
        self._rs = _core.Store.new_memory()

    @property
    def store(self) -> "_Blocks":
        """The blocks as a mapping id -> bytes, like py-hamt's ``store`` dict (writable: a
        block stored under an id must hash to it)."""
        return _Blocks(self._rs)

    def __len__(self) -> int:
        return self._rs.memory_len()

    async def save(self, data: bytes, codec: ContentAddressedStore.CodecInput) -> bytes:
        return self._rs.memory_save(data, codec)

    async def load(
        self,
        id: IPLDKind,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        suffix: Optional[int] = None,
    ) -> bytes:
        if not isinstance(id, bytes):
            raise TypeError(
                f"InMemoryCAS only supports byte\u2010hash keys; got {type(id).__name__}"
            )
        try:
            return self._rs.memory_load(id, offset, length, suffix)
        except ValueError:  # bytes that are no multihash: no block can have that id
            raise KeyError("Object not found in in-memory store") from None


class _Blocks(MutableMapping):
    """``InMemoryCAS.store``: a live view of the Rust memory store."""

    def __init__(self, rs: Any) -> None:
        self._rs = rs

    def __getitem__(self, id: bytes) -> bytes:
        return self._rs.memory_load(id)

    def __setitem__(self, id: bytes, data: bytes) -> None:
        self._rs.memory_put(id, data)

    def __delitem__(self, id: bytes) -> None:
        raise TypeError("blocks cannot be deleted from an InMemoryCAS")

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._rs.memory_blocks())

    def __len__(self) -> int:
        return self._rs.memory_len()

    def items(self):  # one pass over the store instead of a lookup per key
        return self._rs.memory_blocks().items()

    def values(self):
        return self._rs.memory_blocks().values()


_CHUNKER = re.compile(r"(?:size-[1-9]\d*|rabin(?:-[1-9]\d*-[1-9]\d*-[1-9]\d*)?)")
_DEFAULT_HEADERS = {"accept", "accept-encoding", "connection", "user-agent"}


def _normalize_gateway(url: str) -> str:
    """py-hamt's rule: no trailing slash, then ``/ipfs`` if missing, then one ``/``."""
    url = url.rstrip("/")
    if not url.endswith("/ipfs"):
        url += "/ipfs"
    return url + "/"


class KuboCAS(ContentAddressedStore):
    """A Kubo node: writes through its RPC API, reads through HTTP gateways.

    Same parameters, defaults and validation as py-hamt 3.6's ``KuboCAS``. The HTTP work is
    done in Rust (reqwest): a supplied ``client`` or ``client_factory`` is only read for its
    headers, basic auth and timeout. Every block read is verified against its CID
    (``verify_content`` is accepted and always on).
    """

    KUBO_DEFAULT_LOCAL_GATEWAY_BASE_URL: str = "http://127.0.0.1:8080"
    KUBO_DEFAULT_LOCAL_RPC_BASE_URL: str = "http://127.0.0.1:5001"
    DAG_PB_MARKER: int = 0x70

    def __init__(
        self,
        hasher: str = "blake3",
        client: Any = None,
        rpc_base_url: str | None = None,
        gateway_base_url: str | None = None,
        concurrency: int = 32,
        *,
        gateway_base_urls: list[str] | None = None,
        verify_content: bool = False,
        client_factory: Optional[Callable[[], Any]] = None,
        headers: dict[str, str] | None = None,
        auth: Optional[Tuple[str, str]] = None,
        pin_on_add: bool = False,
        chunker: str = "size-1048576",
        max_retries: int = 3,
        initial_delay: float = 1.0,
        backoff_factor: float = 2.0,
    ) -> None:
        if not _CHUNKER.fullmatch(chunker):
            raise ValueError("Invalid chunker specification")
        if concurrency <= 0:
            raise ValueError("concurrency must be a positive integer")
        if max_retries < 0:
            raise ValueError("max_retries must be non-negative")
        if initial_delay <= 0:
            raise ValueError("initial_delay must be positive")
        if backoff_factor < 1.0:
            raise ValueError("backoff_factor must be >= 1.0 for exponential backoff")
        if client is not None and client_factory is not None:
            raise ValueError("client and client_factory are mutually exclusive")
        if client_factory is not None and (headers is not None or auth is not None):
            raise ValueError(
                "client_factory is mutually exclusive with headers/auth; configure them on the "
                "clients the factory builds"
            )
        if gateway_base_url is not None and gateway_base_urls is not None:
            raise ValueError(
                "gateway_base_url and gateway_base_urls are mutually exclusive; pass every "
                "gateway in gateway_base_urls"
            )
        if gateway_base_urls is not None:
            if len(gateway_base_urls) == 0:
                raise ValueError("gateway_base_urls must not be empty")
            gateways = list(dict.fromkeys(_normalize_gateway(g) for g in gateway_base_urls))
        else:
            gateways = [
                _normalize_gateway(gateway_base_url or self.KUBO_DEFAULT_LOCAL_GATEWAY_BASE_URL)
            ]

        self.hasher = hasher
        self.rpc_base_url = (rpc_base_url or self.KUBO_DEFAULT_LOCAL_RPC_BASE_URL).rstrip("/")
        self.gateway_base_urls = gateways
        self.gateway_base_url = gateways[0]
        """The first gateway (py-hamt's attribute)."""
        pin = "true" if pin_on_add else "false"
        self.rpc_url = (
            f"{self.rpc_base_url}/api/v0/add?hash={hasher}&chunker={chunker}&pin={pin}"
            "&cid-version=1"
        )
        """The ``add`` URL saves go to (py-hamt's attribute; the request itself is made in Rust
        with the same parameters)."""
        self.concurrency = concurrency
        self.verify_content = verify_content
        self.pin_on_add = pin_on_add
        self.chunker = chunker
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.backoff_factor = backoff_factor
        self._client = client
        self._owned_client = client_factory() if client_factory is not None else None
        self._closed = False

        hdrs = dict(headers or {})
        basic = tuple(auth) if auth is not None else None
        timeout = 60.0
        source = client if client is not None else self._owned_client
        if source is not None:
            hdrs.update(
                {k: v for k, v in source.headers.items() if k.lower() not in _DEFAULT_HEADERS}
            )
            a = getattr(source, "auth", None)
            if a is not None and hasattr(a, "_auth_header"):
                hdrs.setdefault("Authorization", a._auth_header)
            t = getattr(getattr(source, "timeout", None), "read", None)
            if t:
                timeout = float(t)
        self._settings = dict(
            headers=list(hdrs.items()),
            basic_auth=basic,
            timeout=timeout,
            concurrency=concurrency,
            max_retries=max_retries,
            initial_delay=initial_delay,
            backoff_factor=backoff_factor,
            hasher=hasher,
            chunker=chunker,
            pin_on_add=pin_on_add,
        )
        self._rs = _core.Store.new_kubo(self.rpc_base_url, gateways, **self._settings)

    async def aclose(self) -> None:
        """Closes clients this instance made (a ``client_factory`` client)."""
        if self._owned_client is not None:
            await self._owned_client.aclose()
            self._owned_client = None
        self._closed = True

    async def __aenter__(self) -> "KuboCAS":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed and self._client is not None and getattr(self._client, "is_closed", False):
            raise RuntimeError("KuboCAS used after aclose() with a closed user-supplied client")

    async def save(self, data: bytes, codec: ContentAddressedStore.CodecInput) -> CID:
        """py-hamt's ``add`` call; returns the CID relabelled with ``codec`` (dag-pb kept)."""
        self._check_open()
        raw = await self._rs.kubo_save(bytes(data), codec)
        return CID.decode(raw)

    async def load(
        self,
        id: IPLDKind,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        suffix: Optional[int] = None,
    ) -> bytes:
        """The verified bytes of ``id`` (a CID, a CID string or binary CID), or a slice."""
        self._check_open()
        return await self._rs.kubo_load(id, offset, length, suffix)

    def _rpc(self, target_rpc: str):
        if target_rpc.rstrip("/") == self.rpc_base_url:
            return self._rs
        return _core.Store.new_kubo(
            target_rpc.rstrip("/"), self.gateway_base_urls, **self._settings
        )

    async def pin_cid(self, cid: CID, target_rpc: str = "http://127.0.0.1:5001") -> None:
        await self._rpc(target_rpc).kubo_pin(cid, True)

    async def unpin_cid(self, cid: CID, target_rpc: str = "http://127.0.0.1:5001") -> None:
        await self._rpc(target_rpc).kubo_pin(cid, False)

    async def pin_update(
        self, old_id: IPLDKind, new_id: IPLDKind, target_rpc: str = "http://127.0.0.1:5001"
    ) -> None:
        await self._rpc(target_rpc).kubo_pin_update(old_id, new_id)

    async def pin_ls(self, target_rpc: str = "http://127.0.0.1:5001") -> dict[str, Any]:
        """Every pin, as Kubo's ``Keys``: ``{cid: {"Type": ...}}`` (what py-hamt returns)."""
        return json.loads(await self._rpc(target_rpc).kubo_pin_ls())


def rust_store(cas: Any, ids: str | None) -> tuple[Any, str]:
    """The Rust store for ``cas`` and the id kind its HAMTs use."""
    if _native(cas, InMemoryCAS):
        return cas._rs, "multihash"
    if _native(cas, KuboCAS):
        return cas._rs, "cid"
    ids = ids or "cid"
    return _core.Store.new_python(cas, ids), ids
