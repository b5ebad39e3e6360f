//! `Sharded`: the engine behind the Python `ShardedZarrStore` (py-hamt's second layout), a
//! [`ShardedWriter`] or a [`ShardedReader`] over a [`Store`], run like the HAMT: to completion
//! on a local store, stepped on the caller's loop for a Python store, through tokio otherwise.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use ipfs_hamt::sharded::{ReadMode, ShardedConfig, ShardedReader, ShardedWriter};
use ipfs_hamt::ByteRange;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::{bytes_from_py, cid_from_py};
use crate::error::to_py;
use crate::store::{PyCas, Store};

/// Runs a writer call; when it failed because a Python store named a block with another hash
/// (SHA2-256 rather than BLAKE3), switches the writer to that hash and runs it once more.
macro_rules! hash_retry {
    ($bridge:expr, $w:ident, $call:expr) => {{
        match $call {
            Err(e) => match $bridge.as_ref().and_then(|b| b.take_detected()) {
                Some(h) => {
                    $w.set_block_hash(h);
                    $call
                }
                None => Err(e),
            },
            ok => ok,
        }
    }};
}

type Writer = Arc<tokio::sync::Mutex<ShardedWriter>>;

#[derive(Clone)]
enum Mode {
    Write(Writer),
    Read(ShardedReader),
}

/// One sharded store: a writer (changes in memory until `flush`) or a reader.
#[pyclass(frozen, module = "ipfs_hamt._core")]
pub struct Sharded {
    local: bool,
    stepped: bool,
    /// The Python store, if any: it tells the hash it names blocks with on the first save.
    bridge: Option<Arc<PyCas>>,
    cfg: ShardedConfig,
    mode: Mode,
}

fn busy() -> PyErr {
    PyRuntimeError::new_err("the sharded store is busy with another operation")
}

fn read_only_err(what: &str) -> PyErr {
    PyException::new_err(format!("{what} needs a writable sharded store"))
}

/// Runs `fut` as the HAMT does (see `hamt.rs`): locally, stepped, or as a tokio awaitable.
fn run<'py, T, F, C>(
    py: Python<'py>,
    local: bool,
    stepped: bool,
    fut: F,
    conv: C,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
{
    if local {
        let t = py.detach(|| crate::hamt::run_local(fut))?;
        conv(py, t)
    } else if stepped {
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

fn none(py: Python<'_>, _: ()) -> PyResult<Bound<'_, PyAny>> {
    Ok(py.None().into_bound(py))
}

fn string(py: Python<'_>, s: String) -> PyResult<Bound<'_, PyAny>> {
    Ok(s.into_pyobject(py)?.into_any())
}

fn opt_bytes(py: Python<'_>, b: Option<Bytes>) -> PyResult<Bound<'_, PyAny>> {
    Ok(match b {
        Some(b) => PyBytes::new(py, &b).into_any(),
        None => py.None().into_bound(py),
    })
}

fn strings(py: Python<'_>, v: Vec<String>) -> PyResult<Bound<'_, PyAny>> {
    Ok(v.into_pyobject(py)?.into_any())
}

fn config(store: &Store, cache_bytes: u64, read_mode: &str) -> PyResult<ShardedConfig> {
    let read_mode: ReadMode = read_mode
        .parse()
        .map_err(|e: ipfs_hamt::sharded::ShardedError| to_py(e.into()))?;
    let python = store.bridge().is_some();
    Ok(ShardedConfig {
        block_hash: store.block_hash(),
        // Only Kubo's `add` turns values over 1 MiB into UnixFS files.
        unixfs_values: matches!(store.kind, crate::store::Kind::Kubo(_)),
        cache_bytes,
        read_mode,
        // A Python store gets each block at once, as py-hamt's `set` saves it.
        batch_bytes: if python { 0 } else { 16 << 20 },
    })
}

impl Sharded {
    fn new(store: &Store, cfg: ShardedConfig, mode: Mode) -> Self {
        Sharded {
            local: store.is_local(),
            stepped: store.bridge().is_some(),
            bridge: store.bridge(),
            cfg,
            mode,
        }
    }

    fn writer(&self, what: &str) -> PyResult<Writer> {
        match &self.mode {
            Mode::Write(w) => Ok(w.clone()),
            Mode::Read(_) => Err(read_only_err(what)),
        }
    }

    fn run<'py, T, F, C>(&self, py: Python<'py>, fut: F, conv: C) -> PyResult<Bound<'py, PyAny>>
    where
        T: Send + 'static,
        F: Future<Output = PyResult<T>> + Send + 'static,
        C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
    {
        run(py, self.local, self.stepped, fut, conv)
    }

    /// Runs `f` on the manifest as it stands (a writer busy elsewhere is an error).
    fn with_manifest<T>(&self, f: impl FnOnce(&ipfs_hamt::sharded::Manifest) -> T) -> PyResult<T> {
        match &self.mode {
            Mode::Read(r) => Ok(f(r.manifest())),
            Mode::Write(w) => Ok(f(w.try_lock().map_err(|_| busy())?.manifest())),
        }
    }
}

#[pymethods]
impl Sharded {
    /// A new v2 store (optionally seeded with one array index at `path`).
    #[staticmethod]
    #[pyo3(signature = (store, cps, path, array_shape, chunk_shape, cache_bytes, read_mode))]
    fn create_v2(
        store: &Bound<'_, Store>,
        cps: u64,
        path: &str,
        array_shape: Option<Vec<u64>>,
        chunk_shape: Option<Vec<u64>>,
        cache_bytes: u64,
        read_mode: &str,
    ) -> PyResult<Self> {
        let s = store.get();
        let cfg = config(s, cache_bytes, read_mode)?;
        let w = match (array_shape, chunk_shape) {
            (Some(a), Some(c)) => {
                ShardedWriter::create_v2_seeded(s.shared(), cfg.clone(), cps, path, a, c)
            }
            _ => ShardedWriter::create_v2(s.shared(), cfg.clone(), cps),
        }
        .map_err(to_py)?;
        Ok(Self::new(
            s,
            cfg,
            Mode::Write(Arc::new(tokio::sync::Mutex::new(w))),
        ))
    }

    /// A new v1 store (deprecated layout).
    #[staticmethod]
    fn create_v1(
        store: &Bound<'_, Store>,
        array_shape: Vec<u64>,
        chunk_shape: Vec<u64>,
        cps: u64,
        cache_bytes: u64,
        read_mode: &str,
    ) -> PyResult<Self> {
        let s = store.get();
        let cfg = config(s, cache_bytes, read_mode)?;
        let w = ShardedWriter::create_v1(s.shared(), cfg.clone(), array_shape, chunk_shape, cps)
            .map_err(to_py)?;
        Ok(Self::new(
            s,
            cfg,
            Mode::Write(Arc::new(tokio::sync::Mutex::new(w))),
        ))
    }

    /// Opens `root` (any CID form): read-only as a reader, else as a writer. The result is a
    /// `Sharded` (directly, awaitable, or an op to step, like every other call).
    #[staticmethod]
    fn open<'py>(
        py: Python<'py>,
        store: &Bound<'py, Store>,
        root: &Bound<'py, PyAny>,
        read_only: bool,
        cache_bytes: u64,
        read_mode: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = store.get();
        let cfg = config(s, cache_bytes, read_mode)?;
        let root: Cid = cid_from_py(root)?;
        let shared = s.shared();
        let (local, stepped, bridge) = (s.is_local(), s.bridge().is_some(), s.bridge());
        let c2 = cfg.clone();
        run(
            py,
            local,
            stepped,
            async move {
                let mode = if read_only {
                    Mode::Read(ShardedReader::open(shared, root, c2).await.map_err(to_py)?)
                } else {
                    let w = ShardedWriter::open(shared, root, c2).await.map_err(to_py)?;
                    Mode::Write(Arc::new(tokio::sync::Mutex::new(w)))
                };
                Ok(mode)
            },
            move |py, mode| {
                let me = Sharded {
                    local,
                    stepped,
                    bridge,
                    cfg,
                    mode,
                };
                Ok(Bound::new(py, me)?.into_any())
            },
        )
    }

    /// A writer at this store's state: itself if already one, else a new writer at the
    /// reader's root (nothing is loaded).
    fn to_writer(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        let me = slf.get();
        match &me.mode {
            Mode::Write(_) => Ok(slf.clone().unbind()),
            Mode::Read(r) => {
                let w = ShardedWriter::from_reader(r, me.cfg.clone());
                Py::new(
                    slf.py(),
                    Sharded {
                        local: me.local,
                        stepped: me.stepped,
                        bridge: me.bridge.clone(),
                        cfg: me.cfg.clone(),
                        mode: Mode::Write(Arc::new(tokio::sync::Mutex::new(w))),
                    },
                )
            }
        }
    }

    /// True for a writer.
    #[getter]
    fn writable(&self) -> bool {
        matches!(self.mode, Mode::Write(_))
    }

    /// True when calls complete immediately.
    #[getter]
    fn is_local(&self) -> bool {
        self.local
    }

    /// True when calls return an op to step.
    #[getter]
    fn is_stepped(&self) -> bool {
        self.stepped
    }

    /// "sharded_zarr_v1" or "sharded_zarr_v2".
    #[getter]
    fn version(&self) -> PyResult<String> {
        self.with_manifest(|m| m.version.to_string())
    }

    /// The last flushed or opened root (`None` for a new, never-flushed store).
    #[getter]
    fn root(&self) -> PyResult<Option<String>> {
        Ok(match &self.mode {
            Mode::Read(r) => Some(r.root().to_string()),
            Mode::Write(w) => w
                .try_lock()
                .map_err(|_| busy())?
                .root_cid()
                .map(|c| c.to_string()),
        })
    }

    /// True when a flush would write something.
    #[getter]
    fn dirty(&self) -> PyResult<bool> {
        Ok(match &self.mode {
            Mode::Read(_) => false,
            Mode::Write(w) => w.try_lock().map_err(|_| busy())?.is_dirty(),
        })
    }

    /// The primary array path (v2: first array; v1: recorded, inferred or "").
    #[getter]
    fn primary(&self) -> PyResult<Option<String>> {
        self.with_manifest(|m| m.primary.clone())
    }

    /// v1: whether the primary array path was inferred from metadata (not recorded in the
    /// root), py-hamt's `_primary_inferred`.
    #[getter]
    fn primary_inferred(&self) -> PyResult<bool> {
        self.with_manifest(|m| m.primary_inferred)
    }

    /// Top-level groups of a v2 store's array paths (sorted).
    fn top_level_groups(&self) -> PyResult<Vec<String>> {
        self.with_manifest(|m| m.top_level_groups())
    }

    /// Whether a root read must name a group (several top-level groups only).
    fn requires_explicit_group(&self) -> PyResult<bool> {
        self.with_manifest(|m| m.requires_explicit_group())
    }

    /// The group a root read goes through (one top-level group only).
    fn default_read_group(&self) -> PyResult<Option<String>> {
        self.with_manifest(|m| m.default_read_group())
    }

    /// Whether the store is grouped-only (v2, every array under a group).
    fn grouped_only(&self) -> PyResult<bool> {
        self.with_manifest(|m| m.grouped_only())
    }

    /// Metadata keys in manifest order.
    fn metadata_keys(&self) -> PyResult<Vec<String>> {
        self.with_manifest(|m| m.metadata.keys().cloned().collect())
    }

    /// Every array index: `{path: {array_shape, chunk_shape, chunks_per_dim, chunks_per_shard,
    /// total_chunks, num_shards, shard_cids}}` (shard CIDs as strings or None).
    fn arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let items = self.with_manifest(|m| {
            m.arrays
                .iter()
                .map(|(p, a)| {
                    (
                        p.clone(),
                        a.array_shape.clone(),
                        a.chunk_shape.clone(),
                        a.chunks_per_dim().to_vec(),
                        a.chunks_per_shard,
                        a.total_chunks(),
                        a.num_shards(),
                        a.shard_cids
                            .iter()
                            .map(|c| c.map(|c| c.to_string()))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        })?;
        let out = PyDict::new(py);
        for (p, shape, chunk, cpd, cps, total, n, cids) in items {
            let d = PyDict::new(py);
            d.set_item("array_shape", shape)?;
            d.set_item("chunk_shape", chunk)?;
            d.set_item("chunks_per_dim", cpd)?;
            d.set_item("chunks_per_shard", cps)?;
            d.set_item("total_chunks", total)?;
            d.set_item("num_shards", n)?;
            d.set_item("shard_cids", cids)?;
            out.set_item(p, d)?;
        }
        Ok(out)
    }

    /// The root manifest as py-hamt's `_root_obj` holds it (dicts, lists, `multiformats.CID`s),
    /// built from the current state: a copy, changing it changes nothing.
    fn root_obj<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let root = self.with_manifest(|m| m.to_ipld())?;
        crate::convert::ipld_to_py(py, &root)
    }

    /// The shards a flush would write, as `(array path, shard index)` (none for a reader).
    fn dirty_shards(&self) -> PyResult<Vec<(String, u64)>> {
        match &self.mode {
            Mode::Read(_) => Ok(Vec::new()),
            Mode::Write(w) => Ok(w.try_lock().map_err(|_| busy())?.dirty_shards()),
        }
    }

    /// Reader counters: (shard fetches, auto mode latched, cached shards); zeros for a writer.
    fn read_stats(&self) -> (u64, bool, usize) {
        match &self.mode {
            Mode::Read(r) => (r.shard_fetches(), r.full_mode_latched(), r.cached_shards()),
            Mode::Write(_) => (0, false, 0),
        }
    }

    /// The value of `key` (or a py-hamt slice of it), or None.
    #[pyo3(signature = (key, offset=None, length=None, suffix=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: String,
        offset: Option<u64>,
        length: Option<u64>,
        suffix: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let range = ByteRange::from_py(offset, length, suffix);
        let mode = self.mode.clone();
        self.run(
            py,
            async move {
                match mode {
                    Mode::Read(r) => r.get_range(&key, range).await,
                    Mode::Write(w) => w.lock().await.get_range(&key, range).await,
                }
                .map_err(to_py)
            },
            opt_bytes,
        )
    }

    /// The CID of `key`'s block as a string, or None.
    fn get_pointer<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let mode = self.mode.clone();
        self.run(
            py,
            async move {
                match mode {
                    Mode::Read(r) => r.get_pointer(&key).await,
                    Mode::Write(w) => w.lock().await.get_pointer(&key).await,
                }
                .map(|c| c.map(|c| c.to_string()))
                .map_err(to_py)
            },
            |py, c: Option<String>| Ok(c.into_pyobject(py)?.into_any()),
        )
    }

    /// py-hamt's `exists` (errors in classifying the key are False).
    fn exists<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let mode = self.mode.clone();
        self.run(
            py,
            async move {
                let got = match mode {
                    Mode::Read(r) => r.exists(&key).await,
                    Mode::Write(w) => w.lock().await.get_pointer(&key).await.map(|c| c.is_some()),
                };
                match got {
                    Ok(b) => Ok(b),
                    Err(ipfs_hamt::Error::Sharded(_)) => Ok(false),
                    Err(e) => Err(to_py(e)),
                }
            },
            |py, b: bool| Ok(pyo3::types::PyBool::new(py, b).to_owned().into_any()),
        )
    }

    /// Stores `data` under `key`; returns whether it was stored (v2 ignores unplaceable keys).
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: String,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("set")?;
        let bridge = self.bridge.clone();
        let data = bytes_from_py(data)?;
        self.run(
            py,
            async move {
                let mut w = w.lock().await;
                let out = hash_retry!(bridge, w, w.set(&key, data.clone()).await).map_err(to_py)?;
                Ok(matches!(out, ipfs_hamt::sharded::SetOutcome::Stored))
            },
            |py, b: bool| Ok(pyo3::types::PyBool::new(py, b).to_owned().into_any()),
        )
    }

    /// Points `key` at an existing block.
    fn set_pointer<'py>(
        &self,
        py: Python<'py>,
        key: String,
        cid: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("set_pointer")?;
        let cid = cid_from_py(cid)?;
        let bridge = self.bridge.clone();
        self.run(
            py,
            async move {
                let mut w = w.lock().await;
                hash_retry!(bridge, w, w.set_pointer(&key, cid).await)
                    .map(|_| ())
                    .map_err(to_py)
            },
            none,
        )
    }

    /// Removes `key` (a chunk's entry becomes null; its shard stays).
    fn delete<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("delete")?;
        self.run(
            py,
            async move { w.lock().await.delete(&key).await.map_err(to_py) },
            none,
        )
    }

    /// Every key in py-hamt's `list()` order.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mode = self.mode.clone();
        self.run(
            py,
            async move {
                match mode {
                    Mode::Read(r) => r.list().await,
                    Mode::Write(w) => w.lock().await.list().await,
                }
                .map_err(to_py)
            },
            strings,
        )
    }

    /// Distinct next components under `prefix`.
    fn list_dir<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let mode = self.mode.clone();
        self.run(
            py,
            async move {
                match mode {
                    Mode::Read(r) => r.list_dir(&prefix).await,
                    Mode::Write(w) => w.lock().await.list_dir(&prefix).await,
                }
                .map_err(to_py)
            },
            strings,
        )
    }

    /// Writes the dirty shards and the root; returns the root CID string.
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("flush")?;
        let bridge = self.bridge.clone();
        self.run(
            py,
            async move {
                let mut w = w.lock().await;
                let c = hash_retry!(bridge, w, w.flush().await).map_err(to_py)?;
                Ok(c.to_string())
            },
            string,
        )
    }

    /// Resizes an array's shard index (`None`: the primary array).
    #[pyo3(signature = (new_shape, array_path=None))]
    fn resize_store<'py>(
        &self,
        py: Python<'py>,
        new_shape: Vec<u64>,
        array_path: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("resize_store")?;
        self.run(
            py,
            async move {
                w.lock()
                    .await
                    .resize_store(new_shape, array_path.as_deref())
                    .await
                    .map_err(to_py)
            },
            none,
        )
    }

    /// Sets `shape` in an array's `zarr.json` (v2 also resizes its index).
    fn resize_variable<'py>(
        &self,
        py: Python<'py>,
        name: String,
        new_shape: Vec<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("resize_variable")?;
        let bridge = self.bridge.clone();
        self.run(
            py,
            async move {
                let mut w = w.lock().await;
                hash_retry!(bridge, w, w.resize_variable(&name, new_shape.clone()).await)
                    .map_err(to_py)
            },
            none,
        )
    }

    /// Copies another root's chunk pointers in at `chunk_offset`.
    #[pyo3(signature = (source, chunk_offset, source_path=None, target_path=None))]
    fn graft_store<'py>(
        &self,
        py: Python<'py>,
        source: &Bound<'py, PyAny>,
        chunk_offset: Vec<u64>,
        source_path: Option<String>,
        target_path: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("graft_store")?;
        let source = cid_from_py(source)?;
        self.run(
            py,
            async move {
                w.lock()
                    .await
                    .graft_store(
                        source,
                        &chunk_offset,
                        source_path.as_deref(),
                        target_path.as_deref(),
                    )
                    .await
                    .map_err(to_py)
            },
            none,
        )
    }

    /// Removes everything under `prefix`.
    fn delete_dir<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("delete_dir")?;
        self.run(
            py,
            async move { w.lock().await.delete_dir(&prefix).await.map_err(to_py) },
            none,
        )
    }

    /// Empties the store (v2 keeps its store-level settings).
    fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("clear")?;
        self.run(
            py,
            async move { w.lock().await.clear().await.map_err(to_py) },
            none,
        )
    }

    /// Rewrites a v1 store as v2; returns the new root CID string.
    fn migrate_v1_to_v2<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let w = self.writer("migrate_v1_to_v2")?;
        let bridge = self.bridge.clone();
        self.run(
            py,
            async move {
                let mut w = w.lock().await;
                let c = hash_retry!(bridge, w, w.migrate_v1_to_v2(&path).await).map_err(to_py)?;
                Ok(c.to_string())
            },
            string,
        )
    }
}
