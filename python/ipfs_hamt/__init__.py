"""ipfs_hamt: py-hamt's API with the work done in Rust.

Change ``from py_hamt import ...`` to ``from ipfs_hamt import ...``; the classes, signatures,
defaults and on-store format are py-hamt 3.6.0's.
"""

from .hamt import HAMT, blake3_hashfn
from .store import (
    ContentAddressedStore,
    GatewayContentMismatch,
    GatewayContentUnverifiable,
    InMemoryCAS,
    KuboCAS,
)
from .zarr_store import ZarrHAMTStore
from .encrypted_store import SimpleEncryptedZarrHAMTStore
from .sharded_zarr_store import (
    ShardedZarrStore,
    ShardedZarrV1DeprecationWarning,
    ShardReadMode,
)
from .hamt_to_sharded_converter import convert_hamt_to_sharded, sharded_converter_cli

__all__ = [
    "HAMT",
    "blake3_hashfn",
    "ContentAddressedStore",
    "InMemoryCAS",
    "KuboCAS",
    "GatewayContentMismatch",
    "GatewayContentUnverifiable",
    "ZarrHAMTStore",
    "SimpleEncryptedZarrHAMTStore",
    "ShardedZarrStore",
    "ShardReadMode",
    "ShardedZarrV1DeprecationWarning",
    "convert_hamt_to_sharded",
    "sharded_converter_cli",
]
