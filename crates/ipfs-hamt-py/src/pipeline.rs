//! Write-behind for `HAMT.set` on the in-memory store.
//!
//! On `InMemoryCAS` a `set` is pure CPU work: hash the value into its block, hash the key, put
//! the pointer into the tree. Done on the calling thread, the tree insert sits in series with
//! the Python side of every call (the coroutine, the argument conversion), and only one of the
//! machine's cores works. Here the calling thread only appends the key and the value bytes to
//! one buffer (no allocation per call: memory freed by another thread is what made `malloc`
//! slow here); every [`BATCH`] entries the batch goes to one worker thread per HAMT that hashes
//! the values into their blocks (slices of the batch buffer, no copy), stores them with one
//! `put_many` and inserts the pointers into the writer, in order, while Python goes on with
//! the next keys.
//!
//! Every other operation on the HAMT first calls [`SetPipeline::drain`]: it hands the
//! remaining entries over and waits until the worker has applied everything queued before it,
//! so reads, `len`, `keys`, flushes and mode changes see exactly what a synchronous `set` would
//! have left. Only used when nothing can fail late: a memory store (no I/O errors) and the
//! native BLAKE3 key hash (no Python callback off the Python thread). A failure anyway (e.g. a
//! key whose hash runs out of levels) is raised by the next operation.
//!
//! Locking: a thread holding the GIL only ever *tries* the queue's mutex; it waits for it only
//! with the GIL released. So no thread blocks on the mutex while holding the GIL its holder
//! may need back.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, TryLockError};

use bytes::Bytes;
use ipfs_hamt::block::RAW;
use ipfs_hamt::store::SharedStore;
use ipfs_hamt::HashAlg;
use ipfs_hamt::{Block, Writer};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::error::to_py;

/// Entries per batch handed to the worker: large enough that the hand-over costs nothing per
/// key, small enough that little work is left for the drain.
const BATCH: usize = 512;
/// Bytes (keys and values) after which a batch goes anyway: bounds the memory queued.
const BATCH_BYTES: usize = 1 << 20;

/// Queued `set`s: keys and values back to back in `data`, their lengths in `lens`.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    lens: Vec<(usize, usize)>,
}

impl Batch {
    fn with_capacity(bytes: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            lens: Vec::with_capacity(BATCH),
        }
    }

    fn full(&self) -> bool {
        self.lens.len() >= BATCH || self.data.len() >= BATCH_BYTES
    }
}

type SharedWriter = Arc<tokio::sync::Mutex<Writer>>;

enum Msg {
    Batch(Batch),
    /// Answer with the first error since the last barrier, once everything before is applied.
    Barrier(SyncSender<Option<ipfs_hamt::Error>>),
}

#[derive(Default)]
struct Queue {
    buf: Batch,
    worker: Option<SyncSender<Msg>>,
}

/// The queued `set`s of one writable HAMT (see the module docs).
pub(crate) struct SetPipeline {
    writer: SharedWriter,
    store: SharedStore,
    /// The hash of new value blocks (the HAMT's `block_hash`).
    hash: HashAlg,
    queue: Mutex<Queue>,
}

fn poisoned() -> PyErr {
    PyException::new_err("HAMT set queue poisoned")
}

impl SetPipeline {
    pub(crate) fn new(writer: SharedWriter, store: SharedStore, hash: HashAlg) -> Self {
        SetPipeline {
            writer,
            store,
            hash,
            queue: Mutex::default(),
        }
    }

    /// True if this pipeline feeds `writer`.
    pub(crate) fn feeds(&self, writer: &SharedWriter) -> bool {
        Arc::ptr_eq(&self.writer, writer)
    }

    /// Queues one `set`.
    pub(crate) fn push(&self, py: Python<'_>, key: &str, value: &[u8]) -> PyResult<()> {
        let mut q = match self.queue.try_lock() {
            Ok(q) => q,
            Err(TryLockError::WouldBlock) => {
                return py.detach(|| {
                    let mut q = self.queue.lock().map_err(|_| poisoned())?;
                    match self.push_locked(&mut q, key, value)? {
                        Some((tx, batch)) => send(&tx, batch),
                        None => Ok(()),
                    }
                })
            }
            Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
        };
        match self.push_locked(&mut q, key, value)? {
            // Still under the lock, so batches reach the worker in the order of the calls;
            // the worker may be busy: wait without the GIL.
            Some((tx, batch)) => py.detach(|| send(&tx, batch)),
            None => Ok(()),
        }
    }

    /// Appends to the queue; returns a full batch to send, with the worker's channel.
    fn push_locked(
        &self,
        q: &mut Queue,
        key: &str,
        value: &[u8],
    ) -> PyResult<Option<(SyncSender<Msg>, Batch)>> {
        q.buf.data.extend_from_slice(key.as_bytes());
        q.buf.data.extend_from_slice(value);
        q.buf.lens.push((key.len(), value.len()));
        if !q.buf.full() {
            return Ok(None);
        }
        let next = Batch::with_capacity(q.buf.data.len());
        let batch = std::mem::replace(&mut q.buf, next);
        Ok(Some((self.worker(q)?, batch)))
    }

    /// Applies everything queued; returns the first failure of a queued `set` since the last
    /// drain (call with the GIL released).
    pub(crate) fn drain(&self) -> PyResult<()> {
        let mut q = self.queue.lock().map_err(|_| poisoned())?;
        let batch = std::mem::take(&mut q.buf);
        let Some(tx) = q.worker.clone() else {
            // No worker yet (fewer than a batch so far): apply here, still under the lock.
            return crate::hamt::run_local(apply(&self.writer, &self.store, self.hash, batch))
                .map_err(to_py);
        };
        let (reply_tx, reply_rx) = sync_channel(1);
        let stopped = |_| PyException::new_err("the HAMT set worker stopped");
        if !batch.lens.is_empty() {
            tx.send(Msg::Batch(batch)).map_err(stopped)?;
        }
        tx.send(Msg::Barrier(reply_tx)).map_err(stopped)?;
        drop(q);
        match reply_rx.recv() {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(to_py(e)),
            Err(_) => Err(PyException::new_err("the HAMT set worker stopped")),
        }
    }

    /// The worker's queue, starting the worker on first use.
    fn worker(&self, q: &mut Queue) -> PyResult<SyncSender<Msg>> {
        if let Some(tx) = &q.worker {
            return Ok(tx.clone());
        }
        // One batch waiting besides the one being applied: Python runs at most that far ahead.
        let (tx, rx) = sync_channel(1);
        let (writer, store, hash) = (self.writer.clone(), self.store.clone(), self.hash);
        std::thread::Builder::new()
            .name("ipfs-hamt-set".into())
            .spawn(move || work(writer, store, hash, rx))
            .map_err(|e| PyException::new_err(format!("cannot start the HAMT set worker: {e}")))?;
        q.worker = Some(tx.clone());
        Ok(tx)
    }
}

fn send(tx: &SyncSender<Msg>, batch: Batch) -> PyResult<()> {
    tx.send(Msg::Batch(batch))
        .map_err(|_| PyException::new_err("the HAMT set worker stopped"))
}

/// The worker: applies batches in order until the pipeline is dropped.
fn work(writer: SharedWriter, store: SharedStore, hash: HashAlg, rx: Receiver<Msg>) {
    let mut failed: Option<ipfs_hamt::Error> = None;
    for msg in rx {
        match msg {
            Msg::Batch(batch) => {
                if let Err(e) = crate::hamt::run_local(apply(&writer, &store, hash, batch)) {
                    failed.get_or_insert(e);
                }
            }
            Msg::Barrier(reply) => {
                let _ = reply.send(failed.take());
            }
        }
    }
}

/// Stores the batch's values as raw blocks (what `Writer::insert` makes of them), then points
/// each key at its block (in call order, so a key set twice ends with its last value).
async fn apply(
    writer: &SharedWriter,
    store: &SharedStore,
    hash: HashAlg,
    batch: Batch,
) -> Result<(), ipfs_hamt::Error> {
    if batch.lens.is_empty() {
        return Ok(());
    }
    let data = Bytes::from(batch.data);
    let mut pointers = Vec::with_capacity(batch.lens.len());
    let mut blocks = Vec::with_capacity(batch.lens.len());
    let mut at = 0;
    for (klen, vlen) in batch.lens {
        let key = at..at + klen;
        let block = Block::new(RAW, hash, data.slice(at + klen..at + klen + vlen));
        at += klen + vlen;
        pointers.push((key, block.cid));
        blocks.push(block);
    }
    store.put_many(blocks).await?;
    let mut w = writer.lock().await;
    for (key, cid) in pointers {
        // The bytes came from a `&str`: valid UTF-8, borrowed as is (no copy).
        let key = String::from_utf8_lossy(&data[key]);
        w.insert_pointer(&key, cid).await?;
    }
    Ok(())
}
