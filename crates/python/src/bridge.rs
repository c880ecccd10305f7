//! The asyncio bridge.
//!
//! The core's async pipeline is a Rust future. Python drives it from the awaiting task:
//! `baton._bridge.drive(pending)` calls [`Pending::step`], which polls the future once with
//! a waker unique to that driver. When the future reaches a Python awaitable (a coroutine a
//! callback or middleware returned, an async generator's `__anext__()`), the [`PyAwait`]
//! future hands the awaitable to its driver and returns `Pending`; `step` returns it to
//! Python, which awaits it *in the calling task* (same contextvars, same event loop) and
//! steps again with the outcome. No thread, no second loop: the asyncio task is the
//! executor of the core future, and every rule stays in the core.
//!
//! A `PyAwait` polled by anything other than its driver (the core's `block_on`, when a sync
//! entry point meets async middleware) resolves the awaitable synchronously instead
//! (`baton._bridge.await_sync`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use baton::{BoxFuture, Error, LlmStream};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use serde_json::Value;

use crate::{convert, errors};

type Reply = Arc<Mutex<Option<PyResult<Py<PyAny>>>>>;

/// One driver: where a `PyAwait` leaves the awaitable it needs awaited.
pub struct Slot {
    request: Mutex<Option<(Py<PyAny>, Reply, bool)>>,
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {}
    fn wake_by_ref(self: &Arc<Self>) {}
}

thread_local! {
    static DRIVER: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

static DRIVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static AWAIT_SYNC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn helper<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyAny>>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    if let Some(f) = cell.get(py) {
        return Ok(f.bind(py).clone());
    }
    let f = py.import("baton._bridge")?.getattr(name)?;
    let _ = cell.set(py, f.clone().unbind());
    Ok(f)
}

/// Awaits a Python awaitable from inside a core future.
pub struct PyAwait {
    awaitable: Option<Py<PyAny>>,
    reply: Option<Reply>,
    /// Awaiting middleware (not a callback): the driver marks it so managed calls made
    /// from inside it are refused, as the core refuses them from sync middleware.
    middleware: bool,
}

impl PyAwait {
    pub fn new(awaitable: Py<PyAny>) -> PyAwait {
        PyAwait { awaitable: Some(awaitable), reply: None, middleware: false }
    }
}

impl Future for PyAwait {
    type Output = PyResult<Py<PyAny>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(reply) = &this.reply {
            return match reply.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            };
        }
        let Some(aw) = this.awaitable.take() else {
            return Poll::Ready(Err(pyo3::exceptions::PyRuntimeError::new_err("awaitable polled after completion")));
        };
        let slot = DRIVER.with(|d| d.borrow().clone());
        match slot {
            Some(s) if std::ptr::eq(cx.waker().data(), Arc::as_ptr(&s) as *const ()) => {
                let reply: Reply = Arc::new(Mutex::new(None));
                *s.request.lock().unwrap_or_else(|p| p.into_inner()) = Some((aw, reply.clone(), this.middleware));
                this.reply = Some(reply);
                Poll::Pending
            }
            _ => Poll::Ready(Python::attach(|py| helper(py, &AWAIT_SYNC, "await_sync")?.call1((aw,)).map(Bound::unbind))),
        }
    }
}

/// True when `obj` is awaitable (has `__await__`); plain JSON data is checked first, cheaply.
pub fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    use pyo3::types::{PyDict, PyList, PyString};
    if obj.is_none() || obj.is_instance_of::<PyDict>() || obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyString>() {
        return false;
    }
    obj.hasattr(pyo3::intern!(obj.py(), "__await__")).unwrap_or(false)
}

/// Calls a Python callable whose result may be awaitable, and awaits it (from a core future).
pub async fn call_maybe_async(
    middleware: bool,
    callable: Py<PyAny>,
    make_args: impl FnOnce(Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>>,
) -> baton::Result<Py<PyAny>> {
    let first = Python::attach(|py| -> Result<(Py<PyAny>, bool), Error> {
        let args = make_args(py).map_err(|e| errors::from_py(py, e))?;
        let r = callable.bind(py).call1(args.bind(py)).map_err(|e| errors::from_py(py, e))?;
        let aw = is_awaitable(&r);
        Ok((r.unbind(), aw))
    })?;
    match first {
        (obj, false) => Ok(obj),
        (aw, true) => {
            let r = PyAwait { awaitable: Some(aw), reply: None, middleware }.await;
            r.map_err(|e| Python::attach(|py| errors::from_py(py, e)))
        }
    }
}

/// Resolves a possibly-awaitable result synchronously (sync entry points).
pub fn resolve_sync<'py>(r: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if is_awaitable(&r) {
        let py = r.py();
        helper(py, &AWAIT_SYNC, "await_sync")?.call1((r,))
    } else {
        Ok(r)
    }
}

/// What a driven future produces, converted to Python when it finishes.
pub enum Out {
    Value(Value),
    None,
    Stream(Box<LlmStream>),
    /// An async iterator's item, or its end (`StopAsyncIteration`).
    Item(Option<Value>),
}

impl Out {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Out::Value(v) => convert::to_py(py, &v),
            Out::None => Ok(py.None()),
            Out::Stream(s) => Ok(Py::new(py, crate::stream::PyLlmStream::new(*s))?.into_any()),
            Out::Item(Some(v)) => convert::to_py(py, &v),
            Out::Item(None) => Err(PyStopAsyncIteration::new_err(())),
        }
    }
}

struct State {
    fut: Option<BoxFuture<baton::Result<Out>>>,
    reply: Option<Reply>,
}

/// A core future awaiting its driver. `await` it (it is awaitable), or drive it by hand with
/// `step` (what `baton._bridge.drive` does).
#[pyclass(frozen, module = "baton._native")]
pub struct Pending {
    state: Mutex<State>,
    slot: Arc<Slot>,
}

impl Pending {
    pub fn new(fut: impl Future<Output = baton::Result<Out>> + Send + 'static) -> Pending {
        Pending { state: Mutex::new(State { fut: Some(Box::pin(fut)), reply: None }), slot: Arc::new(Slot { request: Mutex::new(None) }) }
    }
    pub fn ready(r: baton::Result<Out>) -> Pending {
        Pending::new(std::future::ready(r))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let fut = self.state.lock().unwrap_or_else(|p| p.into_inner()).fut.take();
        if fut.is_some() {
            Python::attach(|py| crate::host::emitting(py, move || drop(fut)));
        }
    }
}

struct SendPtr<T>(T);
unsafe impl<T> Send for SendPtr<T> {}

#[pymethods]
impl Pending {
    /// Resumes the future (with the outcome of the awaitable it asked for, if any) and
    /// polls it once: `(True, result, False)` when finished, `(False, awaitable, is_middleware)`
    /// when it needs that awaited next. Raises the call's error.
    #[pyo3(signature = (ok=true, value=None))]
    fn step(&self, py: Python<'_>, ok: bool, value: Option<Bound<'_, PyAny>>) -> PyResult<(bool, Py<PyAny>, bool)> {
        let mut st = self
            .state
            .try_lock()
            .map_err(|_| errors::new_err(py, baton::ErrorKind::InvalidState, "this awaitable is already being driven"))?;
        if let Some(reply) = st.reply.take() {
            let value = value.unwrap_or_else(|| py.None().into_bound(py));
            let r = if ok { Ok(value.unbind()) } else { Err(PyErr::from_value(value)) };
            *reply.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        }
        let Some(fut) = st.fut.as_mut() else {
            return Err(errors::new_err(py, baton::ErrorKind::InvalidState, "this awaitable has already finished"));
        };
        let slot = self.slot.clone();
        let fut_ptr = SendPtr(fut as *mut BoxFuture<baton::Result<Out>>);
        let polled = crate::host::emitting(py, move || {
            let fut_ptr = fut_ptr;
            // SAFETY: the future lives in `st`, locked for the whole call.
            let fut = unsafe { &mut *fut_ptr.0 };
            let prev = DRIVER.with(|d| d.borrow_mut().replace(slot.clone()));
            let waker = Waker::from(slot);
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(&mut Context::from_waker(&waker))));
            DRIVER.with(|d| *d.borrow_mut() = prev);
            out
        });
        match polled {
            Err(_) => {
                st.fut = None;
                Err(errors::new_err(py, baton::ErrorKind::Internal, "panic while polling a Baton future"))
            }
            Ok(Poll::Ready(r)) => {
                st.fut = None;
                match r {
                    Ok(out) => Ok((true, out.into_py(py)?, false)),
                    Err(e) => Err(errors::to_py(py, &e)),
                }
            }
            Ok(Poll::Pending) => match self.slot.request.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some((aw, reply, middleware)) => {
                    st.reply = Some(reply);
                    Ok((false, aw, middleware))
                }
                None => {
                    st.fut = None;
                    Err(errors::new_err(py, baton::ErrorKind::Internal, "a Baton future is waiting on something other than Python"))
                }
            },
        }
    }

    /// Drops the future (a call still in flight ends as cancelled).
    fn close(&self, py: Python<'_>) {
        let fut = self.state.lock().unwrap_or_else(|p| p.into_inner()).fut.take();
        crate::host::emitting(py, move || drop(fut));
    }

    fn __await__(slf: Py<Self>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let coro = helper(py, &DRIVE, "drive")?.call1((slf,))?;
        Ok(coro.call_method0("__await__")?.unbind())
    }
}

/// Raises `StopIteration` (sync iterators' end).
pub fn stop_iteration() -> PyErr {
    PyStopIteration::new_err(())
}
