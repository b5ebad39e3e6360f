//! Rust errors as the Python exceptions py-hamt raises in the same situations.

use ipfs_hamt::sharded::ShardedError;
use ipfs_hamt::store::StoreError as RsStoreError;
use ipfs_hamt::Error;
use pyo3::exceptions::{PyIndexError, PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;

use crate::{GatewayContentMismatch, StoreError};

/// `KeyError` for missing keys and blocks, `IndexError` when the key hash is used up (as
/// py-hamt's `extract_bits`), `ValueError` for bad settings and values,
/// `GatewayContentMismatch` for blocks that fail verification, `StoreError` otherwise.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::KeyNotFound(k) => PyKeyError::new_err(k),
        Error::HashExhausted { .. } => PyIndexError::new_err(e.to_string()),
        Error::InvalidConfig(m) => PyValueError::new_err(m),
        Error::Value(m) => PyTypeError::new_err(m),
        Error::Crypt(c) => PyValueError::new_err(c.to_string()),
        Error::Store(s) => store_to_py(s),
        Error::Sharded(s) => sharded_to_py(s),
        other => StoreError::new_err(other.to_string()),
    }
}

pub fn store_to_py(e: RsStoreError) -> PyErr {
    match e {
        RsStoreError::NotFound(_) => PyKeyError::new_err(e.to_string()),
        RsStoreError::Verify(_) => GatewayContentMismatch::new_err(e.to_string()),
        other => StoreError::new_err(other.to_string()),
    }
}

/// A sharded-layout error as py-hamt's exception class ([`ShardedError::py_class`]) with its
/// message.
pub fn sharded_to_py(e: ShardedError) -> PyErr {
    let msg = e.to_string();
    match e.py_class() {
        "KeyError" => PyKeyError::new_err(msg),
        "IndexError" => PyIndexError::new_err(msg),
        "TypeError" => PyTypeError::new_err(msg),
        "RuntimeError" => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}
