//! `ipfs_hamt._core`: the Rust half of the Python package `ipfs_hamt` (python/ipfs_hamt).
//!
//! The Python classes keep py-hamt 3.6.0's names and signatures; they hold a [`hamt::Hamt`]
//! and a [`store::Store`] from here, which do the work with the `ipfs-hamt` crate. Calls on a
//! local store (memory) run to completion on the calling thread with the GIL released (no
//! event-loop round trip per key); calls that do I/O return awaitables driven by tokio through
//! pyo3-async-runtimes.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

mod convert;
mod error;
mod hamt;
mod op;
mod pipeline;
mod sharded;
mod store;

create_exception!(
    _core,
    GatewayContentMismatch,
    PyException,
    "A block's bytes do not match its CID."
);
create_exception!(
    _core,
    GatewayContentUnverifiable,
    GatewayContentMismatch,
    "A block's bytes cannot be checked against its CID (unknown hash)."
);
create_exception!(_core, StoreError, PyException, "The block store failed.");

/// py-hamt's `blake3_hashfn`: the 32-byte BLAKE3 digest of `input_bytes`.
#[pyfunction]
fn blake3_hashfn<'py>(py: Python<'py>, input_bytes: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &ipfs_hamt::key_hash::blake3_hashfn(input_bytes))
}

const DECRYPT_FAILED: &str = "Decryption failed. Check key, header, or data integrity.";

fn key_of(key: &[u8]) -> PyResult<ipfs_hamt::crypt::EncryptionKey> {
    ipfs_hamt::crypt::EncryptionKey::from_slice(key).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err("Encryption key must be exactly 32 bytes long.")
    })
}

/// Encrypts `plaintext` as py-hamt's encrypted Zarr store does: XChaCha20-Poly1305 with a
/// fresh random nonce and `header` as associated data; returns `nonce || tag || ciphertext`.
#[pyfunction]
fn seal<'py>(
    py: Python<'py>,
    key: &[u8],
    header: &[u8],
    plaintext: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let cipher = ipfs_hamt::crypt::ValueCipher::new(key_of(key)?, header.to_vec());
    let framed = py
        .detach(|| cipher.seal(plaintext))
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &framed))
}

/// Opens a value [`seal`] made; `ValueError` if the key, the header or the bytes are wrong.
#[pyfunction]
fn unseal<'py>(
    py: Python<'py>,
    key: &[u8],
    header: &[u8],
    framed: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let cipher = ipfs_hamt::crypt::ValueCipher::new(key_of(key)?, header.to_vec());
    let plain = py
        .detach(|| cipher.open(framed))
        .map_err(|_| pyo3::exceptions::PyValueError::new_err(DECRYPT_FAILED))?;
    Ok(PyBytes::new(py, &plain))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(blake3_hashfn, m)?)?;
    m.add_function(wrap_pyfunction!(seal, m)?)?;
    m.add_function(wrap_pyfunction!(unseal, m)?)?;
    m.add_function(wrap_pyfunction!(hamt::id_hash_name, m)?)?;
    m.add_class::<store::Store>()?;
    m.add_class::<hamt::Hamt>()?;
    m.add_class::<op::Op>()?;
    m.add_class::<sharded::Sharded>()?;
    m.add(
        "GatewayContentMismatch",
        py.get_type::<GatewayContentMismatch>(),
    )?;
    m.add(
        "GatewayContentUnverifiable",
        py.get_type::<GatewayContentUnverifiable>(),
    )?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    Ok(())
}
