//! Block stores as Python sees them: the store behind `InMemoryCAS` (memory, ids are
//! multihashes), behind `KuboCAS` (Kubo RPC + gateways, ids are CIDs), and a bridge that makes
//! any Python `ContentAddressedStore` (its async `save`/`load`) a Rust block store.

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use futures::{StreamExt, TryStreamExt};
use ipfs_hamt::block::{verify, Block, DAG_CBOR, DAG_PB, RAW};
use ipfs_hamt::node::IdEncoding;
use ipfs_hamt::store::kubo::{Auth, KuboConfig, KuboStore};
use ipfs_hamt::store::{BlockStore, MemoryStore, SharedStore, StoreError as RsStoreError};
use ipfs_hamt::{ByteRange, HashAlg};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::{cid_from_py, id_from_py, id_to_py};
use crate::error::store_to_py;

/// Saves a Python store makes at once while a commit writes nodes (py-hamt uses 16).
const BRIDGE_PARALLEL: usize = 16;

pub(crate) enum Kind {
    Memory(Arc<MemoryStore>),
    Kubo(KuboStore),
    Python(Arc<PyCas>),
}

/// A block store handle shared by a CAS object and the HAMTs built on it.
#[pyclass(frozen, module = "ipfs_hamt._core")]
pub struct Store {
    pub(crate) kind: Kind,
}

impl Store {
    pub(crate) fn shared(&self) -> SharedStore {
        match &self.kind {
            Kind::Memory(m) => m.clone(),
            Kind::Kubo(k) => Arc::new(k.clone()),
            Kind::Python(p) => p.clone(),
        }
    }

    /// The hash a HAMT on this store names new blocks with by default.
    pub(crate) fn block_hash(&self) -> HashAlg {
        match &self.kind {
            Kind::Kubo(k) => k.config().hash,
            _ => HashAlg::Blake3,
        }
    }

    /// Local stores never wait on I/O: their calls run to completion on the caller's thread.
    pub(crate) fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Memory(_))
    }

    pub(crate) fn bridge(&self) -> Option<Arc<PyCas>> {
        match &self.kind {
            Kind::Python(p) => Some(p.clone()),
            _ => None,
        }
    }

    fn memory(&self) -> PyResult<&Arc<MemoryStore>> {
        match &self.kind {
            Kind::Memory(m) => Ok(m),
            _ => Err(PyTypeError::new_err("not an in-memory store")),
        }
    }

    fn kubo(&self) -> PyResult<KuboStore> {
        match &self.kind {
            Kind::Kubo(k) => Ok(k.clone()),
            _ => Err(PyTypeError::new_err("not a Kubo store")),
        }
    }
}

fn codec_of(name: &str) -> PyResult<u64> {
    match name {
        "raw" => Ok(RAW),
        "dag-cbor" => Ok(DAG_CBOR),
        other => Err(PyValueError::new_err(format!(
            "codec must be 'raw' or 'dag-cbor', not {other:?}"
        ))),
    }
}

fn range_of(offset: Option<u64>, length: Option<u64>, suffix: Option<u64>) -> ByteRange {
    ByteRange::from_py(offset, length, suffix)
}

#[pymethods]
impl Store {
    /// The store of `InMemoryCAS`.
    #[staticmethod]
    fn new_memory() -> Self {
        Store {
            kind: Kind::Memory(Arc::new(MemoryStore::new())),
        }
    }

    /// The store of `KuboCAS`; arguments were validated on the Python side as py-hamt does.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (rpc_url, gateways, headers, basic_auth, timeout, concurrency,
        max_retries, initial_delay, backoff_factor, hasher, chunker, pin_on_add))]
    fn new_kubo(
        rpc_url: &str,
        gateways: Vec<String>,
        headers: Vec<(String, String)>,
        basic_auth: Option<(String, String)>,
        timeout: f64,
        concurrency: usize,
        max_retries: u32,
        initial_delay: f64,
        backoff_factor: f64,
        hasher: &str,
        chunker: &str,
        pin_on_add: bool,
    ) -> PyResult<Self> {
        let bad = |e: RsStoreError| PyValueError::new_err(e.to_string());
        let mut c = KuboConfig::new(rpc_url).map_err(bad)?;
        c.set_gateways(gateways).map_err(bad)?;
        c.headers = headers;
        c.auth = basic_auth.map(|(user, password)| Auth::Basic { user, password });
        let secs = |s: f64, what: &str| {
            std::time::Duration::try_from_secs_f64(s)
                .map_err(|_| PyValueError::new_err(format!("{what} must be a positive number")))
        };
        c.timeout = secs(timeout, "timeout")?;
        c.concurrency = concurrency;
        c.max_retries = max_retries;
        c.initial_delay = secs(initial_delay, "initial_delay")?;
        c.backoff_factor = backoff_factor;
        c.hash = HashAlg::from_name(hasher).ok_or_else(|| {
            PyValueError::new_err(format!(
                "hasher {hasher:?} is not supported (blake3 or sha2-256)"
            ))
        })?;
        c.chunker = chunker.to_owned();
        c.pin_on_add = pin_on_add;
        let store = KuboStore::new(c).map_err(bad)?;
        Ok(Store {
            kind: Kind::Kubo(store),
        })
    }

    /// A bridge to a Python `ContentAddressedStore`; `ids` is "cid" or "multihash".
    #[staticmethod]
    fn new_python(cas: Py<PyAny>, ids: &str) -> PyResult<Self> {
        let ids = match ids {
            "cid" => IdEncoding::Cid,
            "multihash" => IdEncoding::Multihash,
            other => return Err(PyValueError::new_err(format!("unknown id kind {other:?}"))),
        };
        Ok(Store {
            kind: Kind::Python(Arc::new(PyCas {
                cas,
                ids,
                id_objects: Default::default(),
                detected: Default::default(),
            })),
        })
    }

    /// `InMemoryCAS.save`: stores `data`, returns its 34-byte BLAKE3 multihash.
    fn memory_save<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        codec: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let block = Block::new(
            codec_of(codec)?,
            HashAlg::Blake3,
            Bytes::copy_from_slice(data),
        );
        let mh = block.cid.hash().to_bytes();
        let m = self.memory()?.clone();
        let rt = pyo3_async_runtimes::tokio::get_runtime();
        py.detach(|| rt.block_on(m.put(block)))
            .map_err(store_to_py)?;
        Ok(PyBytes::new(py, &mh))
    }

    /// `InMemoryCAS.load`.
    #[pyo3(signature = (id, offset=None, length=None, suffix=None))]
    fn memory_load<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        offset: Option<u64>,
        length: Option<u64>,
        suffix: Option<u64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if !id.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "InMemoryCAS only supports byte-string IDs (multihash bytes)",
            ));
        }
        let cid = id_from_py(id, RAW)?;
        let m = self.memory()?.clone();
        let rt = pyo3_async_runtimes::tokio::get_runtime();
        let range = range_of(offset, length, suffix);
        let data = py
            .detach(|| rt.block_on(m.get_range(&cid, range)))
            .map_err(|e| match e {
                RsStoreError::NotFound(_) => {
                    pyo3::exceptions::PyKeyError::new_err("Object not found in in-memory store")
                }
                e => store_to_py(e),
            })?;
        Ok(PyBytes::new(py, &data))
    }

    /// Stores `data` under the multihash `id` (`InMemoryCAS.store[id] = data`); the bytes must
    /// hash to `id`.
    fn memory_put(&self, py: Python<'_>, id: &Bound<'_, PyAny>, data: &[u8]) -> PyResult<()> {
        let cid = id_from_py(id, RAW)?;
        let block = Block::verified(cid, Bytes::copy_from_slice(data))
            .map_err(|e| PyValueError::new_err(format!("block does not match its id: {e}")))?;
        let m = self.memory()?.clone();
        let rt = pyo3_async_runtimes::tokio::get_runtime();
        py.detach(|| rt.block_on(m.put(block))).map_err(store_to_py)
    }

    /// `InMemoryCAS.store`: a dict of multihash bytes -> block bytes (a copy).
    fn memory_blocks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.memory()?.blocks().map_err(store_to_py)? {
            d.set_item(PyBytes::new(py, &k), PyBytes::new(py, &v))?;
        }
        Ok(d)
    }

    /// Number of blocks held (memory store).
    fn memory_len(&self) -> PyResult<usize> {
        Ok(self.memory()?.len())
    }

    /// `KuboCAS.save`: py-hamt's `add` call; returns the CID as a string.
    fn kubo_save<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        codec: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = crate::convert::bytes_from_py(data)?;
        let codec = codec_of(codec)?;
        let k = self.kubo()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let cid = k.add_value(data, codec).await.map_err(store_to_py)?;
            Ok(cid.to_string())
        })
    }

    /// `KuboCAS.load`: a verified block, or part of it.
    #[pyo3(signature = (id, offset=None, length=None, suffix=None))]
    fn kubo_load<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        offset: Option<u64>,
        length: Option<u64>,
        suffix: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cid = cid_from_py(id)?;
        let k = self.kubo()?;
        let range = range_of(offset, length, suffix);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let data = if range.is_empty() {
                Bytes::new()
            } else if cid.codec() == DAG_PB {
                // A UnixFS file (a value over the chunk size): reassembled from verified leaves.
                ipfs_hamt::value::read_value(&k, &cid, range)
                    .await
                    .map_err(crate::error::to_py)?
            } else {
                k.get_range(&cid, range).await.map_err(store_to_py)?
            };
            Python::attach(|py| Ok(PyBytes::new(py, &data).unbind()))
        })
    }

    /// `pin/add` (`add`) or `pin/rm`, recursive.
    fn kubo_pin<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        add: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cid = cid_from_py(id)?;
        let k = self.kubo()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            if add {
                k.pin_add(&cid).await
            } else {
                k.pin_rm(&cid).await
            }
            .map_err(store_to_py)
        })
    }

    /// `pin/update` from `old` to `new`.
    fn kubo_pin_update<'py>(
        &self,
        py: Python<'py>,
        old: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (old, new) = (cid_from_py(old)?, cid_from_py(new)?);
        let k = self.kubo()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            k.pin_update(&old, &new, true).await.map_err(store_to_py)
        })
    }

    /// `pin/ls`: Kubo's `Keys` object as JSON text.
    fn kubo_pin_ls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let k = self.kubo()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let keys = k.pin_ls_keys().await.map_err(store_to_py)?;
            Ok(serde_json::Value::Object(keys).to_string())
        })
    }
}

/// A Python `ContentAddressedStore` as a Rust block store, without threads: a HAMT operation
/// on it is an [`crate::op::Op`] that the Python side steps on its event loop. Each store call
/// becomes a request (the coroutine of `save`/`load`) the step hands back; Python awaits the
/// requests and resolves them, and the next step continues. Blocks it returns are verified
/// against the CID asked for; ids its `save` returns must be the block's content address.
pub struct PyCas {
    cas: Py<PyAny>,
    ids: IdEncoding,
    /// Python id objects already made: a `multiformats.CID` costs hundreds of microseconds to
    /// build, and py-hamt reuses the ones its cached nodes hold.
    id_objects: std::sync::Mutex<std::collections::HashMap<Cid, Py<PyAny>>>,
    /// The hash of a returned id that named the block under another hash than asked for
    /// (checked against the bytes): the store's own hash, for the caller to switch to.
    detected: std::sync::Mutex<Option<HashAlg>>,
}

/// Most id objects kept (the cache is emptied when full).
const ID_CACHE: usize = 1 << 20;

impl PyCas {
    pub(crate) fn ids(&self) -> IdEncoding {
        self.ids
    }

    /// The hash the store was found to name blocks with (once; see `detected`).
    pub(crate) fn take_detected(&self) -> Option<HashAlg> {
        self.detected.lock().ok().and_then(|mut d| d.take())
    }

    /// The Python id of `cid` (cached).
    fn id_object(&self, py: Python<'_>, cid: &Cid) -> PyResult<Py<PyAny>> {
        if let Some(o) = self
            .id_objects
            .lock()
            .ok()
            .and_then(|m| m.get(cid).map(|o| o.clone_ref(py)))
        {
            return Ok(o);
        }
        let o = id_to_py(py, cid, self.ids)?.unbind();
        self.remember_id(py, *cid, &o);
        Ok(o)
    }

    fn remember_id(&self, py: Python<'_>, cid: Cid, o: &Py<PyAny>) {
        if let Ok(mut m) = self.id_objects.lock() {
            if m.len() >= ID_CACHE {
                m.clear();
            }
            m.insert(cid, o.clone_ref(py));
        }
    }

    /// Calls `method` of the store and waits for the driver to resolve the coroutine.
    async fn call(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>>,
        kwargs: Vec<(&'static str, u64)>,
    ) -> Result<Py<PyAny>, RsStoreError> {
        let py_err = |e: PyErr| RsStoreError::Backend(format!("Python store {method} failed: {e}"));
        // The store's own exception: kept for the op to raise as is; its text alone in the
        // message (py-hamt's wrappers show `str(e)`).
        let raised = |e: PyErr| {
            crate::op::note_store_exception(&e);
            let text = Python::attach(|py| e.value(py).str().map(|s| s.to_string()))
                .unwrap_or_else(|_| e.to_string());
            RsStoreError::Backend(text)
        };
        let coro = Python::attach(|py| {
            let kw = PyDict::new(py);
            for (k, v) in kwargs {
                kw.set_item(k, v)?;
            }
            let coro = self
                .cas
                .bind(py)
                .call_method(method, args(py)?, Some(&kw))?;
            Ok::<_, PyErr>(coro.unbind())
        })
        .map_err(py_err)?;
        crate::op::request(coro)
            .map_err(|m| RsStoreError::Backend(m.to_string()))?
            .await
            .map_err(raised)
    }

    async fn load(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, RsStoreError> {
        let kwargs = match range {
            ByteRange::Full => vec![],
            ByteRange::From(o) => vec![("offset", o)],
            ByteRange::Slice { offset, length } => vec![("offset", offset), ("length", length)],
            ByteRange::Suffix(n) => vec![("suffix", n)],
        };
        let obj = self
            .call(
                "load",
                |py| pyo3::types::PyTuple::new(py, [self.id_object(py, cid)?]),
                kwargs,
            )
            .await?;
        Python::attach(|py| {
            obj.bind(py)
                .cast::<PyBytes>()
                .map(|b| Bytes::copy_from_slice(b.as_bytes()))
                .map_err(|_| {
                    RsStoreError::Backend(format!("Python store load({cid}) did not return bytes"))
                })
        })
    }

    async fn save(&self, block: Block) -> Result<(), RsStoreError> {
        let codec = match block.cid.codec() {
            DAG_CBOR => "dag-cbor",
            DAG_PB => "dag-pb",
            _ => "raw",
        };
        let data = block.data.clone();
        let ret = self
            .call(
                "save",
                |py| {
                    pyo3::types::PyTuple::new(
                        py,
                        [
                            PyBytes::new(py, &data).into_any(),
                            codec.into_pyobject(py)?.into_any(),
                        ],
                    )
                },
                vec![],
            )
            .await?;
        let got = Python::attach(|py| {
            let r = ret.bind(py);
            if self.ids == IdEncoding::Cid && r.is_instance_of::<PyBytes>() {
                // py-hamt's sharded store (the one user of CID ids on a store handing out
                // bytes) refuses anything but CIDs, with this message.
                return Err("ShardedZarrStore requires CAS.save to return CIDs.".to_string());
            }
            id_from_py(r, block.cid.codec()).map_err(|e| e.to_string())
        });
        match got {
            Ok(c) if c.hash() == block.cid.hash() => {
                // Keep the store's own id object for later loads.
                Python::attach(|py| self.remember_id(py, block.cid, &ret));
                Ok(())
            }
            Ok(c) => {
                if let Some(alg) = HashAlg::from_code(c.hash().code()) {
                    if Block::new(block.cid.codec(), alg, data).cid.hash() == c.hash() {
                        if let Ok(mut d) = self.detected.lock() {
                            *d = Some(alg);
                        }
                    }
                }
                Err(RsStoreError::Backend(format!(
                    "the Python store returned id {c} for a block whose content address is {}; \
                 ipfs_hamt needs content-addressed ids (the block's CID or multihash)",
                    block.cid
                )))
            }
            Err(e) if e.starts_with("ShardedZarrStore") => Err(RsStoreError::Backend(e)),
            Err(e) => Err(RsStoreError::Backend(format!(
                "the Python store returned an id that is neither a CID nor a multihash: {e}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl BlockStore for PyCas {
    async fn get(&self, cid: &Cid) -> Result<Bytes, RsStoreError> {
        let data = self.load(cid, ByteRange::Full).await?;
        verify(cid, &data)?;
        Ok(data)
    }

    async fn get_range(&self, cid: &Cid, range: ByteRange) -> Result<Bytes, RsStoreError> {
        if range == ByteRange::Full {
            return self.get(cid).await;
        }
        self.load(cid, range).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool, RsStoreError> {
        match self.get(cid).await {
            Ok(_) => Ok(true),
            Err(RsStoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_many(&self, blocks: Vec<Block>) -> Result<(), RsStoreError> {
        futures::stream::iter(blocks)
            .map(|b| self.save(b))
            .buffer_unordered(BRIDGE_PARALLEL)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }
}
