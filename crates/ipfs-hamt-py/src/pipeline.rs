//! Write-behind for `HAMT.set` on the in-memory store.
//!
//! On `InMemoryCAS` a `set` is pure CPU work: hash the value into its block, hash the key, put
//! the pointer into the tree. Done on the calling thread, the tree insert sits in series with
//! the Python side of every call (the coroutine, the argument conversion), and only one of the
//! machine's cores works. Here the calling thread only appends the key and the value bytes to
//! one buffer (no allocation per call: memory freed by another thread is what made `malloc`
//! slow here); every [`BATCH`] entries the batch goes to two worker threads per HAMT, in
//! series: the first hashes the values into their blocks (slices of the batch buffer, no
//! copy) and the keys into their slots and stores the blocks with one `put_many`; the second
//! inserts the pointers into the writer, in order. Python goes on with the next keys
//! meanwhile. Two stages, because one worker doing both was what bounded the rate: the
//! hashing (a third of its time) and the tree insert each take less than the whole.
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

use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, TryLockError};

use bytes::Bytes;
use cid::Cid;
use ipfs_hamt::block::RAW;
use ipfs_hamt::key_hash::{KeyHash, KeyHasher};
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

/// A reply to a barrier: the first error since the last one.
type Reply = SyncSender<Option<ipfs_hamt::Error>>;

/// What the calling thread sends to the hashing stage.
enum Msg {
    Batch(Batch),
    /// Answer with the first error since the last barrier, once everything before is applied.
    Barrier(Reply),
}

/// A batch whose values are stored, ready for the tree: the batch bytes, and per entry the
/// key's range in them, the key's hash and the value's CID.
struct Prepared {
    data: Bytes,
    items: Vec<(Range<usize>, KeyHash, Cid)>,
}

/// What the hashing stage sends to the inserting stage.
enum Stage {
    Ready(Prepared),
    /// The batch could not be stored (its keys are not inserted, as a synchronous `set`
    /// that failed would not have been).
    Failed(ipfs_hamt::Error),
    Barrier(Reply),
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
    /// The writer's key hash.
    hasher: Arc<dyn KeyHasher>,
    queue: Mutex<Queue>,
}

fn poisoned() -> PyErr {
    PyException::new_err("HAMT set queue poisoned")
}

impl SetPipeline {
    pub(crate) fn new(
        writer: SharedWriter,
        store: SharedStore,
        hash: HashAlg,
        hasher: Arc<dyn KeyHasher>,
    ) -> Self {
        SetPipeline {
            writer,
            store,
            hash,
            hasher,
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
        // Room for a slightly longer next batch (keys grow: key-999, key-1000), so the buffer
        // is not reallocated and copied once per batch.
        let len = q.buf.data.len();
        let next = Batch::with_capacity(len + len / 8);
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
            return crate::hamt::run_local(async {
                let ready = prepare(&self.store, self.hash, &*self.hasher, batch).await?;
                insert(&self.writer, ready).await
            })
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
        // One batch waiting before each stage besides the ones being worked on: Python runs
        // at most that far ahead.
        let (tx, rx) = sync_channel(1);
        let (stage_tx, stage_rx) = sync_channel(1);
        let failed = |e| PyException::new_err(format!("cannot start the HAMT set worker: {e}"));
        let writer = self.writer.clone();
        std::thread::Builder::new()
            .name("ipfs-hamt-insert".into())
            .spawn(move || insert_stage(writer, stage_rx))
            .map_err(failed)?;
        let (store, hash, hasher) = (self.store.clone(), self.hash, self.hasher.clone());
        // If this spawn fails, `stage_tx` is dropped with the closure and the first stage ends.
        std::thread::Builder::new()
            .name("ipfs-hamt-hash".into())
            .spawn(move || hash_stage(store, hash, hasher, rx, stage_tx))
            .map_err(failed)?;
        q.worker = Some(tx.clone());
        Ok(tx)
    }
}

fn send(tx: &SyncSender<Msg>, batch: Batch) -> PyResult<()> {
    tx.send(Msg::Batch(batch))
        .map_err(|_| PyException::new_err("the HAMT set worker stopped"))
}

/// The first stage: stores each batch's values and hashes its keys, in order, until the
/// pipeline is dropped.
fn hash_stage(
    store: SharedStore,
    hash: HashAlg,
    hasher: Arc<dyn KeyHasher>,
    rx: Receiver<Msg>,
    tx: SyncSender<Stage>,
) {
    for msg in rx {
        let next = match msg {
            Msg::Batch(batch) => {
                match crate::hamt::run_local(prepare(&store, hash, &*hasher, batch)) {
                    Ok(ready) => Stage::Ready(ready),
                    Err(e) => Stage::Failed(e),
                }
            }
            Msg::Barrier(reply) => Stage::Barrier(reply),
        };
        if tx.send(next).is_err() {
            return;
        }
    }
}

/// The second stage: inserts the pointers of each batch, in order.
fn insert_stage(writer: SharedWriter, rx: Receiver<Stage>) {
    let mut failed: Option<ipfs_hamt::Error> = None;
    for msg in rx {
        match msg {
            Stage::Ready(ready) => {
                if let Err(e) = crate::hamt::run_local(insert(&writer, ready)) {
                    failed.get_or_insert(e);
                }
            }
            Stage::Failed(e) => {
                failed.get_or_insert(e);
            }
            Stage::Barrier(reply) => {
                let _ = reply.send(failed.take());
            }
        }
    }
}

/// Stores the batch's values as raw blocks (what `Writer::insert` makes of them) and hashes
/// its keys.
async fn prepare(
    store: &SharedStore,
    hash: HashAlg,
    hasher: &dyn KeyHasher,
    batch: Batch,
) -> Result<Prepared, ipfs_hamt::Error> {
    let data = Bytes::from(batch.data);
    let mut items = Vec::with_capacity(batch.lens.len());
    let mut blocks = Vec::with_capacity(batch.lens.len());
    let mut at = 0;
    for (klen, vlen) in batch.lens {
        let key = at..at + klen;
        let block = Block::new(RAW, hash, data.slice(at + klen..at + klen + vlen));
        at += klen + vlen;
        items.push((key.clone(), hasher.hash(&data[key]), block.cid));
        blocks.push(block);
    }
    if !blocks.is_empty() {
        store.put_many(blocks).await?;
    }
    Ok(Prepared { data, items })
}

/// Points each key at its block (in call order, so a key set twice ends with its last value).
async fn insert(writer: &SharedWriter, ready: Prepared) -> Result<(), ipfs_hamt::Error> {
    if ready.items.is_empty() {
        return Ok(());
    }
    let mut w = writer.lock().await;
    for (key, key_hash, cid) in ready.items {
        // The bytes came from a `&str`: valid UTF-8, borrowed as is (no copy).
        let key = String::from_utf8_lossy(&ready.data[key]);
        w.insert_pointer_hashed(&key, &key_hash, cid).await?;
    }
    Ok(())
}
