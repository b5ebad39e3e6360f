//! `Hamt`: the engine behind the Python `HAMT` class, in py-hamt's two modes (writable with an
//! in-memory dirty tree, or read-only with a node cache).

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use ipfs_hamt::block::DAG_CBOR;
use ipfs_hamt::key_hash::{KeyHash, KeyHasher};
use ipfs_hamt::node::IdEncoding;
use ipfs_hamt::store::SharedStore;
use ipfs_hamt::value::decode_ipld;
use ipfs_hamt::{ByteRange, HamtConfig, HashAlg, Reader, Writer};
use pyo3::exceptions::{PyException, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};

use crate::convert::{id_from_py, id_to_py, ipld_to_py, py_to_ipld};
use crate::error::to_py;
use crate::pipeline::SetPipeline;
use crate::store::{PyCas, Store};

/// A Python `hash_fn` (anything but BLAKE3, which runs natively).
struct PyHasher(Py<PyAny>);

impl std::fmt::Debug for PyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyHasher")
    }
}

impl KeyHasher for PyHasher {
    fn hash(&self, key: &[u8]) -> KeyHash {
        // A hash function that fails or returns no bytes gives an empty hash: the key then
        // cannot be placed, and `set` raises IndexError like py-hamt's `extract_bits`.
        Python::attach(|py| {
            self.0
                .call1(py, (PyBytes::new(py, key),))
                .ok()
                .and_then(|r| {
                    r.bind(py)
                        .cast::<PyBytes>()
                        .ok()
                        .map(|b| KeyHash::from_slice(b.as_bytes()))
                })
                .unwrap_or_else(|| KeyHash::from_slice(&[]))
        })
    }
}

#[derive(Clone)]
enum Mode {
    Write(Arc<tokio::sync::Mutex<Writer>>),
    Read(Reader),
}

/// One HAMT: a writer or a reader over a [`Store`]. Frozen: calls from several threads share
/// it (the mode sits behind its own lock).
#[pyclass(frozen, module = "ipfs_hamt._core")]
pub struct Hamt {
    store: SharedStore,
    local: bool,
    bridge: Option<Arc<PyCas>>,
    config: HamtConfig,
    values_are_bytes: bool,
    mode: Arc<Mutex<Mode>>,
    /// Whether `set` may queue (memory store, native key hash): see `pipeline.rs`.
    pipelined: bool,
    /// The queued `set`s of the current writer, once there were any.
    pipe: Mutex<Option<Arc<SetPipeline>>>,
}

fn read_only_error(what: &str) -> PyErr {
    PyException::new_err(format!("Cannot call {what} on a read only HAMT"))
}

fn lock_poisoned() -> PyErr {
    PyException::new_err("HAMT state lock poisoned")
}

impl Hamt {
    /// Applies the queued `set`s (see `pipeline.rs`): every other operation calls this first,
    /// so it sees the tree a synchronous `set` would have left.
    fn settle(&self, py: Python<'_>) -> PyResult<()> {
        let pipe = self.pipe.lock().map_err(|_| lock_poisoned())?.clone();
        match pipe {
            Some(p) => py.detach(|| p.drain()),
            None => Ok(()),
        }
    }

    /// The pipeline feeding `w`, made on first use (a previous writer's is drained first).
    fn pipe_for(
        &self,
        py: Python<'_>,
        w: &Arc<tokio::sync::Mutex<Writer>>,
    ) -> PyResult<Arc<SetPipeline>> {
        let current = self.pipe.lock().map_err(|_| lock_poisoned())?.clone();
        if let Some(p) = current {
            if p.feeds(w) {
                return Ok(p);
            }
            py.detach(|| p.drain())?;
        }
        let p = Arc::new(SetPipeline::new(
            w.clone(),
            self.store.clone(),
            self.config.block_hash,
            self.config.hasher.clone(),
        ));
        *self.pipe.lock().map_err(|_| lock_poisoned())? = Some(p.clone());
        Ok(p)
    }

    /// Settles and forgets the pipeline (its worker thread ends): before a mode change.
    fn retire_pipe(&self, py: Python<'_>) -> PyResult<()> {
        self.settle(py)?;
        *self.pipe.lock().map_err(|_| lock_poisoned())? = None;
        Ok(())
    }

    fn writer(&self) -> PyResult<Option<Arc<tokio::sync::Mutex<Writer>>>> {
        Ok(match &*self.mode.lock().map_err(|_| lock_poisoned())? {
            Mode::Write(w) => Some(w.clone()),
            Mode::Read(_) => None,
        })
    }

    /// The current mode, read once (a writer handle or a reader; both are cheap clones).
    fn mode(&self) -> PyResult<Mode> {
        Ok(self.mode.lock().map_err(|_| lock_poisoned())?.clone())
    }

    /// Runs `fut`: to completion with the GIL released on a local store; as an [`crate::op::Op`]
    /// for the Python side to step on a Python store; else as an awaitable driven by tokio.
    /// `conv` turns the result into a Python object.
    fn run<'py, T, F, C>(&self, py: Python<'py>, fut: F, conv: C) -> PyResult<Bound<'py, PyAny>>
    where
        T: Send + 'static,
        F: Future<Output = PyResult<T>> + Send + 'static,
        C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
    {
        if self.local {
            let t = py.detach(|| run_local(fut))?;
            conv(py, t)
        } else if self.bridge.is_some() {
            let fut = async move {
                let t = fut.await?;
                Python::attach(|py| conv(py, t).map(Bound::unbind))
            };
            Ok(Bound::new(py, crate::op::Op::new(fut))?.into_any())
        } else {
            pyo3_async_runtimes::tokio::future_into_py(py, async move {
                let t = fut.await?;
                Python::attach(|py| conv(py, t).map(Bound::unbind))
            })
        }
    }

    fn value_out<'py>(
        py: Python<'py>,
        values_are_bytes: bool,
        data: Bytes,
    ) -> PyResult<Bound<'py, PyAny>> {
        if values_are_bytes {
            Ok(PyBytes::new(py, &data).into_any())
        } else {
            let v = decode_ipld(&data).map_err(|e| PyValueError::new_err(e.to_string()))?;
            ipld_to_py(py, &v)
        }
    }
}

/// Runs a future of a local store on this thread. It almost always completes on its first
/// poll (memory stores never wait), so that poll skips `block_on`'s parking machinery; a
/// future that does wait (a value batch still being written) finishes under `block_on`.
pub(crate) fn run_local<T, F: Future<Output = T>>(fut: F) -> T {
    let rt = pyo3_async_runtimes::tokio::get_runtime();
    let _guard = rt.enter(); // tokio::spawn inside the writer needs the runtime
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(t) => t,
        std::task::Poll::Pending => rt.block_on(fut),
    }
}

fn none(py: Python<'_>, _: ()) -> PyResult<Bound<'_, PyAny>> {
    Ok(py.None().into_bound(py))
}

fn value_bytes(val: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if val.is_instance_of::<PyBytes>()
        || val.is_instance_of::<PyByteArray>()
        || val.is_instance_of::<PyMemoryView>()
    {
        return crate::convert::bytes_from_py(val);
    }
    Err(PyTypeError::new_err(format!(
        "values_are_bytes=True needs bytes values, got {}",
        val.get_type().name()?
    )))
}

#[pymethods]
impl Hamt {
    /// `ids` is "cid" (KuboCAS) or "multihash" (InMemoryCAS). `hash_fn` None means BLAKE3.
    #[new]
    /// `block_hash` names the multihash of new blocks ("blake3", "sha2-256"); None: the store's
    /// (a Kubo store's `hasher`, else BLAKE3).
    #[pyo3(signature = (store, root, read_only, max_bucket_size, values_are_bytes, hash_fn, ids,
        block_hash=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        store: &Bound<'_, Store>,
        root: Option<&Bound<'_, PyAny>>,
        read_only: bool,
        max_bucket_size: i64,
        values_are_bytes: bool,
        hash_fn: Option<Py<PyAny>>,
        ids: &str,
        block_hash: Option<&str>,
    ) -> PyResult<Self> {
        if max_bucket_size < 1 {
            return Err(PyValueError::new_err(
                "Bucket size maximum must be a positive integer",
            ));
        }
        let store = store.get();
        let ids = match ids {
            "cid" => IdEncoding::Cid,
            "multihash" => IdEncoding::Multihash,
            other => return Err(PyValueError::new_err(format!("unknown id kind {other:?}"))),
        };
        let block_hash = match block_hash {
            Some(name) => HashAlg::from_name(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unsupported block hash {name:?} (blake3 or sha2-256)"
                ))
            })?,
            None => store.block_hash(),
        };
        let mut config = HamtConfig {
            block_hash,
            max_bucket_size: max_bucket_size as usize,
            bucket_limit: (max_bucket_size as usize).max(1024),
            ids,
            // Only Kubo stores values over 1 MiB as UnixFS files (its `add` chunks them).
            unixfs_values: matches!(store.kind, crate::store::Kind::Kubo(_)),
            ..HamtConfig::default()
        };
        let custom_hash = hash_fn.is_some();
        if let Some(f) = hash_fn {
            config.hasher = Arc::new(PyHasher(f));
        }
        if let Some(b) = store.bridge() {
            if b.ids() != ids {
                return Err(PyValueError::new_err(
                    "store and HAMT disagree on the id kind",
                ));
            }
        }
        let shared = store.shared();
        let root = root.map(|r| id_from_py(r, DAG_CBOR)).transpose()?;
        let mode = match (root, read_only) {
            (Some(root), true) => {
                Mode::Read(Reader::new(shared.clone(), root, config.clone()).map_err(to_py)?)
            }
            (Some(root), false) => Mode::Write(Arc::new(tokio::sync::Mutex::new(
                Writer::open(shared.clone(), root, config.clone()).map_err(to_py)?,
            ))),
            (None, false) => Mode::Write(Arc::new(tokio::sync::Mutex::new(
                Writer::new(shared.clone(), config.clone()).map_err(to_py)?,
            ))),
            (None, true) => {
                return Err(PyValueError::new_err(
                    "a read-only HAMT needs a root_node_id (there is nothing to read)",
                ))
            }
        };
        let pipelined = store.is_local() && !config.unixfs_values && !custom_hash;
        Ok(Hamt {
            pipelined,
            pipe: Mutex::new(None),
            store: shared,
            local: store.is_local(),
            bridge: store.bridge(),
            config,
            values_are_bytes,
            mode: Arc::new(Mutex::new(mode)),
        })
    }

    /// True when calls complete immediately (no awaitable is returned).
    #[getter]
    fn is_local(&self) -> bool {
        self.local
    }

    /// True when calls return an `Op` to step (a HAMT over a Python store).
    #[getter]
    fn is_stepped(&self) -> bool {
        self.bridge.is_some()
    }

    #[getter]
    fn read_only(&self) -> PyResult<bool> {
        Ok(matches!(self.mode()?, Mode::Read(_)))
    }

    /// The root id: set when read-only or after a flush with no change since; None while
    /// there are unsaved changes.
    fn root_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.settle(py)?;
        let root = match &*self.mode.lock().map_err(|_| lock_poisoned())? {
            Mode::Read(r) => Some(r.root()),
            Mode::Write(w) => w.try_lock().ok().and_then(|w| w.root_cid()),
        };
        root.map(|c| id_to_py(py, &c, self.config.ids)).transpose()
    }

    fn set<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        val: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer()?.ok_or_else(|| read_only_error("set"))?;
        if self.pipelined && self.values_are_bytes {
            if let Ok(b) = val.cast::<PyBytes>() {
                // The common case, without a copy of its own: straight into the queue.
                self.pipe_for(py, &w)?.push(py, key, b.as_bytes())?;
                return Ok(py.None().into_bound(py));
            }
        }
        let data = if self.values_are_bytes {
            value_bytes(val)?
        } else {
            let v = py_to_ipld(val)?;
            Bytes::from(ipfs_hamt::value::encode_ipld(&v).map_err(to_py)?)
        };
        if self.pipelined {
            self.pipe_for(py, &w)?.push(py, key, &data)?;
            return Ok(py.None().into_bound(py));
        }
        let key = key.to_owned();
        if self.bridge.is_some() {
            // py-hamt saves the value at `set`, before touching the tree; the writer's
            // background value batches would run off the driver's thread.
            let block = ipfs_hamt::Block::new(ipfs_hamt::block::RAW, self.config.block_hash, data);
            let store = self.store.clone();
            return self.run(
                py,
                async move {
                    let cid = block.cid;
                    store.put(block).await.map_err(crate::error::store_to_py)?;
                    w.lock()
                        .await
                        .insert_pointer(&key, cid)
                        .await
                        .map_err(to_py)
                },
                none,
            );
        }
        self.run(
            py,
            async move { w.lock().await.insert(&key, data).await.map_err(to_py) },
            none,
        )
    }

    fn delete<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        self.settle(py)?;
        let w = self.writer()?.ok_or_else(|| read_only_error("delete"))?;
        self.run(
            py,
            async move {
                w.lock()
                    .await
                    .remove(&key)
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        ipfs_hamt::Error::KeyNotFound(k) => PyKeyError::new_err(k),
                        e => to_py(e),
                    })
            },
            none,
        )
    }

    #[pyo3(signature = (key, offset=None, length=None, suffix=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: String,
        offset: Option<u64>,
        length: Option<u64>,
        suffix: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.settle(py)?;
        let range = ByteRange::from_py(offset, length, suffix);
        let vab = self.values_are_bytes;
        let mode = self.mode()?;
        self.run(
            py,
            async move {
                let got = match mode {
                    Mode::Write(w) => w.lock().await.get_range(&key, range).await,
                    Mode::Read(r) => r.get_range(&key, range).await,
                };
                got.map_err(to_py)?.ok_or_else(|| PyKeyError::new_err(key))
            },
            move |py, data| Hamt::value_out(py, vab, data),
        )
    }

    fn get_pointer<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        self.settle(py)?;
        let ids = self.config.ids;
        let mode = self.mode()?;
        self.run(
            py,
            async move {
                let got = match mode {
                    Mode::Write(w) => w.lock().await.get_pointer(&key).await,
                    Mode::Read(r) => r.get_pointer(&key).await,
                };
                got.map_err(to_py)?.ok_or_else(|| PyKeyError::new_err(key))
            },
            move |py, cid| id_to_py(py, &cid, ids),
        )
    }

    /// Every key, in py-hamt's traversal order (a list; the Python side iterates it).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.settle(py)?;
        let mode = self.mode()?;
        self.run(
            py,
            async move {
                match mode {
                    Mode::Write(w) => w.lock().await.keys().await.map_err(to_py),
                    Mode::Read(r) => r.keys().try_collect().await.map_err(to_py),
                }
            },
            |py, keys: Vec<String>| Ok(keys.into_pyobject(py)?.into_any()),
        )
    }

    fn len<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.settle(py)?;
        let mode = self.mode()?;
        self.run(
            py,
            async move {
                match mode {
                    Mode::Write(w) => w
                        .lock()
                        .await
                        .keys()
                        .await
                        .map(|k| k.len() as u64)
                        .map_err(to_py),
                    Mode::Read(r) => r.len().await.map_err(to_py),
                }
            },
            |py, n: u64| Ok(n.into_pyobject(py)?.into_any()),
        )
    }

    /// Writes everything and switches to read-only mode.
    fn make_read_only<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.retire_pipe(py)?;
        let Some(w) = self.writer()? else {
            return self.run(py, async { Ok(()) }, none);
        };
        let mode = self.mode.clone();
        self.run(
            py,
            async move {
                let reader = w.lock().await.reader().await.map_err(to_py)?;
                *mode.lock().map_err(|_| lock_poisoned())? = Mode::Read(reader);
                Ok(())
            },
            none,
        )
    }

    /// Back to writable mode at the current root (a no-op when writable).
    fn enable_write(&self, py: Python<'_>) -> PyResult<()> {
        self.retire_pipe(py)?;
        let mut mode = self.mode.lock().map_err(|_| lock_poisoned())?;
        if let Mode::Read(r) = &*mode {
            let w =
                Writer::open(self.store.clone(), r.root(), self.config.clone()).map_err(to_py)?;
            *mode = Mode::Write(Arc::new(tokio::sync::Mutex::new(w)));
        }
        Ok(())
    }

    /// Approximate bytes of the cached decoded nodes.
    fn cache_size(&self, py: Python<'_>) -> PyResult<u64> {
        self.settle(py)?;
        Ok(match &*self.mode.lock().map_err(|_| lock_poisoned())? {
            Mode::Read(r) => r.cache_stats().bytes,
            Mode::Write(w) => w.try_lock().map(|w| w.cache_stats().bytes).unwrap_or(0),
        })
    }

    /// Writable: writes the buffered changes (the HAMT stays writable, with a valid root).
    /// Read-only: empties the node cache.
    fn cache_vacate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.settle(py)?;
        match self.mode()? {
            Mode::Write(w) => self.run(
                py,
                async move { w.lock().await.commit().await.map(|_| ()).map_err(to_py) },
                none,
            ),
            Mode::Read(r) => {
                r.clear_cache();
                self.run(py, async { Ok(()) }, none)
            }
        }
    }
}

/// The name of the multihash function of a block id (multihash bytes or any CID form), so a
/// HAMT on a Python store names new blocks the way that store does.
#[pyfunction]
pub fn id_hash_name(id: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    let cid = id_from_py(id, DAG_CBOR)?;
    match HashAlg::from_code(cid.hash().code()) {
        Some(HashAlg::Blake3) => Ok("blake3"),
        Some(HashAlg::Sha2_256) => Ok("sha2-256"),
        None => Err(PyValueError::new_err(format!(
            "ids hashed with multihash code {:#x} are not supported (blake3 or sha2-256)",
            cid.hash().code()
        ))),
    }
}
