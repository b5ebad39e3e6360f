"""py-hamt's module name for the stores (``py_hamt.store_httpx``); same objects as
:mod:`ipfs_hamt.store`."""

from .store import *  # noqa: F401,F403
from .store import ContentAddressedStore, InMemoryCAS, KuboCAS  # noqa: F401
