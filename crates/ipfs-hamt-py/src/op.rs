//! Operations on HAMTs over Python stores, stepped by the Python side on its event loop.
//!
//! An [`Op`] holds the operation's future. `step()` polls it on the calling thread; whenever the
//! store needs Python (`save`/`load`), the poll registers a request (the coroutine) in the
//! op's queue and returns pending. `step()` hands the new requests back, Python awaits them
//! (concurrently) and `resolve()`s each, and the next `step()` carries on. No thread and no
//! cross-thread wake-up is involved, so a warm lookup costs what the tree work costs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

type BoxFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;
/// Requests handed to Python: (number, coroutine).
type Requests = Vec<(u64, Py<PyAny>)>;

/// The requests of one op: new coroutines to hand out, and the results Python gave back.
#[derive(Default)]
struct Queue {
    next: u64,
    new: Requests,
    done: HashMap<u64, PyResult<Py<PyAny>>>,
    /// Wakers of the pending replies: combinators such as `FuturesUnordered` poll a future
    /// again only once it was woken.
    wakers: HashMap<u64, Waker>,
    /// The first exception the Python store raised: an operation that fails with a store
    /// error raises it unchanged, as py-hamt lets the store's exceptions through.
    store_exception: Option<PyErr>,
}

/// Remembers `err`, raised by the Python store, for the op being stepped (the first one wins).
pub(crate) fn note_store_exception(err: &PyErr) {
    if let Some(queue) = CURRENT.with(|c| c.borrow().clone()) {
        if let Ok(mut q) = queue.lock() {
            if q.store_exception.is_none() {
                q.store_exception = Some(Python::attach(|py| err.clone_ref(py)));
            }
        }
    }
}

thread_local! {
    /// The queue of the op being stepped on this thread.
    static CURRENT: RefCell<Option<Arc<Mutex<Queue>>>> = const { RefCell::new(None) };
}

/// Registers `coro` with the op being stepped and returns a future of its result.
pub(crate) fn request(coro: Py<PyAny>) -> Result<Reply, &'static str> {
    let queue = CURRENT
        .with(|c| c.borrow().clone())
        .ok_or("a Python store was used outside a HAMT operation's driver")?;
    let mut q = queue.lock().map_err(|_| "request queue poisoned")?;
    let n = q.next;
    q.next += 1;
    q.new.push((n, coro));
    drop(q);
    Ok(Reply { queue, n })
}

/// The result of one request, once Python resolved it.
pub(crate) struct Reply {
    queue: Arc<Mutex<Queue>>,
    n: u64,
}

impl Future for Reply {
    type Output = PyResult<Py<PyAny>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut q) = self.queue.lock() else {
            return Poll::Ready(Err(PyRuntimeError::new_err("request queue poisoned")));
        };
        match q.done.remove(&self.n) {
            Some(r) => Poll::Ready(r),
            None => {
                q.wakers.insert(self.n, cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// One HAMT operation over a Python store (see the module docs).
#[pyclass(frozen, module = "ipfs_hamt._core")]
pub struct Op {
    fut: Mutex<Option<BoxFuture>>,
    result: Mutex<Option<PyResult<Py<PyAny>>>>,
    queue: Arc<Mutex<Queue>>,
}

impl Op {
    pub(crate) fn new(fut: impl Future<Output = PyResult<Py<PyAny>>> + Send + 'static) -> Self {
        Op {
            fut: Mutex::new(Some(Box::pin(fut))),
            result: Mutex::new(None),
            queue: Arc::default(),
        }
    }
}

fn poisoned() -> PyErr {
    PyRuntimeError::new_err("operation state poisoned")
}

#[pymethods]
impl Op {
    /// Runs the operation as far as it goes. `None`: finished (see `result`). Otherwise the
    /// new requests as `(number, coroutine)` pairs (possibly none: the operation waits for
    /// another one, e.g. for the writer lock; step again after yielding to the loop).
    fn step(&self) -> PyResult<Option<Requests>> {
        let mut slot = self.fut.lock().map_err(|_| poisoned())?;
        let Some(fut) = slot.as_mut() else {
            return Ok(None);
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(self.queue.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        let polled = fut.as_mut().poll(&mut cx);
        CURRENT.with(|c| *c.borrow_mut() = None);
        match polled {
            Poll::Ready(r) => {
                *slot = None;
                *self.result.lock().map_err(|_| poisoned())? = Some(r);
                Ok(None)
            }
            Poll::Pending => {
                let mut q = self.queue.lock().map_err(|_| poisoned())?;
                Ok(Some(std::mem::take(&mut q.new)))
            }
        }
    }

    /// Gives request `n` its result: the value, or the exception Python raised.
    fn resolve(&self, n: u64, value: Py<PyAny>, failed: bool) -> PyResult<()> {
        let r = if failed {
            Err(Python::attach(|py| PyErr::from_value(value.into_bound(py))))
        } else {
            Ok(value)
        };
        let waker = {
            let mut q = self.queue.lock().map_err(|_| poisoned())?;
            q.done.insert(n, r);
            q.wakers.remove(&n)
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// The finished operation's value (or its exception: a store failure is the exception
    /// the Python store raised).
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let r = self
            .result
            .lock()
            .map_err(|_| poisoned())?
            .take()
            .unwrap_or_else(|| Err(PyRuntimeError::new_err("the operation has not finished")));
        match r {
            Err(e) if e.is_instance_of::<crate::StoreError>(py) => {
                let original = self
                    .queue
                    .lock()
                    .ok()
                    .and_then(|mut q| q.store_exception.take());
                Err(original.unwrap_or(e))
            }
            r => r,
        }
    }
}
