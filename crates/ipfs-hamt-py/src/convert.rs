//! Python values <-> IPLD, and block ids <-> Python objects.

use std::collections::BTreeMap;

use cid::Cid;
use ipfs_hamt::ipld::Ipld;
use ipfs_hamt::node::IdEncoding;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

static CID_CLASS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `multiformats.CID`, the CID type py-hamt hands out.
fn cid_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    CID_CLASS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("multiformats")?.getattr("CID")?.unbind())
        })
        .map(|c| c.bind(py))
}

/// A `multiformats.CID` for `cid`, made from its string form so that it prints as Kubo and
/// py-hamt's `KuboCAS` print it (base32 `bafy...` for CIDv1).
pub fn cid_to_py<'py>(py: Python<'py>, cid: &Cid) -> PyResult<Bound<'py, PyAny>> {
    cid_class(py)?.call_method1("decode", (cid.to_string(),))
}

/// Reads a CID from a `multiformats.CID`, a CID string or binary CID bytes.
pub fn cid_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Cid> {
    let bad = |e: &dyn std::fmt::Display| PyValueError::new_err(format!("not a CID: {e}"));
    if let Ok(s) = obj.cast::<PyString>() {
        return Cid::try_from(s.to_str()?).map_err(|e| bad(&e));
    }
    let raw = if let Ok(b) = obj.cast::<PyBytes>() {
        bytes::Bytes::copy_from_slice(b.as_bytes())
    } else {
        bytes_from_py(&obj.call_method0("__bytes__")?)?
    };
    Cid::try_from(raw.as_ref()).map_err(|e| bad(&e))
}

/// The bytes of a bytes-like object (bytes, bytearray, memoryview, a numpy array, ...),
/// copied once. pyo3's `Vec<u8>` extraction would walk a `bytes` object item by item (one
/// Python int per byte): 20 KB chunks cost hundreds of microseconds that way.
pub fn bytes_from_py(obj: &Bound<'_, PyAny>) -> PyResult<bytes::Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(bytes::Bytes::copy_from_slice(b.as_bytes()));
    }
    // Anything with the buffer protocol: `bytes(obj)` is one C-level copy (the limited API
    // of Python 3.10 has no buffer access from Rust).
    let b = obj.py().get_type::<PyBytes>().call1((obj,))?;
    Ok(bytes::Bytes::copy_from_slice(
        b.cast::<PyBytes>()?.as_bytes(),
    ))
}

/// The Python id of a block under `ids`: the multihash bytes (py-hamt's `InMemoryCAS`) or a
/// `multiformats.CID` (`KuboCAS`).
pub fn id_to_py<'py>(py: Python<'py>, cid: &Cid, ids: IdEncoding) -> PyResult<Bound<'py, PyAny>> {
    match ids {
        IdEncoding::Multihash => Ok(PyBytes::new(py, &cid.hash().to_bytes()).into_any()),
        IdEncoding::Cid => cid_to_py(py, cid),
    }
}

/// A block id from Python: multihash bytes (taken as a block of `codec`) or any CID form.
pub fn id_from_py(obj: &Bound<'_, PyAny>, codec: u64) -> PyResult<Cid> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let raw = b.as_bytes();
        if let Ok(mh) = cid::multihash::Multihash::<64>::from_bytes(raw) {
            if mh.to_bytes().len() == raw.len() {
                return Ok(Cid::new_v1(codec, mh));
            }
        }
    }
    cid_from_py(obj)
}

/// A Python value as IPLD (py-hamt's `IPLDKind`: None, bool, int, float, str, bytes, list,
/// dict with str keys, CID).
pub fn py_to_ipld(obj: &Bound<'_, PyAny>) -> PyResult<Ipld> {
    if obj.is_none() {
        return Ok(Ipld::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Ipld::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        let v: i128 = obj
            .extract()
            .map_err(|_| PyValueError::new_err("integer out of the DAG-CBOR range"))?;
        if !(-(1i128 << 64)..(1i128 << 64)).contains(&v) {
            return Err(PyValueError::new_err("integer out of the DAG-CBOR range"));
        }
        return Ok(Ipld::Integer(v));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Ipld::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Ipld::String(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Ipld::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|x| py_to_ipld(&x))
            .collect::<PyResult<_>>()
            .map(Ipld::List);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| py_to_ipld(&x))
            .collect::<PyResult<_>>()
            .map(Ipld::List);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = BTreeMap::new();
        for (k, v) in d.iter() {
            let k = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("IPLD map keys must be str"))?
                .to_str()?
                .to_owned();
            m.insert(k, py_to_ipld(&v)?);
        }
        return Ok(Ipld::Map(m));
    }
    if obj.is_instance(cid_class(obj.py())?)? {
        return Ok(Ipld::Link(cid_from_py(obj)?));
    }
    Err(PyTypeError::new_err(format!(
        "cannot encode a {} as DAG-CBOR",
        obj.get_type().name()?
    )))
}

/// IPLD as the Python value py-hamt's `dag_cbor.decode` gives.
pub fn ipld_to_py<'py>(py: Python<'py>, v: &Ipld) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Ipld::Null => py.None().into_bound(py),
        Ipld::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Ipld::Integer(i) => i.into_pyobject(py)?.into_any(),
        Ipld::Float(f) => PyFloat::new(py, *f).into_any(),
        Ipld::String(s) => PyString::new(py, s).into_any(),
        Ipld::Bytes(b) => PyBytes::new(py, b).into_any(),
        Ipld::List(l) => {
            let items = l
                .iter()
                .map(|x| ipld_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Ipld::Map(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, ipld_to_py(py, x)?)?;
            }
            d.into_any()
        }
        Ipld::Link(c) => cid_to_py(py, c)?,
    })
}
