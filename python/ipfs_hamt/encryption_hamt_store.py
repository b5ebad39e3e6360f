"""py-hamt's module name for ``SimpleEncryptedZarrHAMTStore``
(``py_hamt.encryption_hamt_store``)."""

from .encrypted_store import SimpleEncryptedZarrHAMTStore  # noqa: F401
