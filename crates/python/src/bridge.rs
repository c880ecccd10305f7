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
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use serde_json::Value;

use crate::{convert, errors};

/// One driver: where a `PyAwait` leaves the awaitable it needs awaited (and whether it is
/// middleware's), and where the driver leaves its outcome. A driver has at most one
/// awaitable outstanding.
pub struct Slot {
    request: Mutex<Option<(Py<PyAny>, bool)>>,
    reply: Mutex<Option<PyResult<Py<PyAny>>>>,
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
    /// The driver it was handed to (then waiting for the reply there).
    driver: Option<Arc<Slot>>,
    /// Awaiting middleware (not a callback): the driver marks it so managed calls made
    /// from inside it are refused, as the core refuses them from sync middleware.
    middleware: bool,
}

impl PyAwait {
    pub fn new(awaitable: Py<PyAny>) -> PyAwait {
        PyAwait { awaitable: Some(awaitable), driver: None, middleware: false }
    }
}

impl Future for PyAwait {
    type Output = PyResult<Py<PyAny>>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(driver) = &this.driver {
            return match driver.reply.lock().unwrap_or_else(|p| p.into_inner()).take() {
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
                *s.request.lock().unwrap_or_else(|p| p.into_inner()) = Some((aw, this.middleware));
                this.driver = Some(s);
                Poll::Pending
            }
            _ => Poll::Ready(Python::attach(|py| helper(py, &AWAIT_SYNC, "await_sync")?.call1((aw,)).map(Bound::unbind))),
        }
    }
}

/// True when `obj` is awaitable (has `__await__`); plain JSON data is checked first, cheaply.
pub fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    use pyo3::types::{PyDict, PyList, PyString};
    if crate::native::is_coroutine(obj) {
        return true;
    }
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
            let r = PyAwait { awaitable: Some(aw), driver: None, middleware }.await;
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
    /// An awaitable was handed out: the next step brings its outcome.
    waiting: bool,
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
        Pending {
            state: Mutex::new(State { fut: Some(Box::pin(fut)), waiting: false }),
            slot: Arc::new(Slot { request: Mutex::new(None), reply: Mutex::new(None) }),
        }
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

/// What one step of a driven future gives.
enum Step {
    Done(Py<PyAny>),
    /// An awaitable to await next, and whether it is middleware's.
    Await(Py<PyAny>, bool),
}

impl Pending {
    /// Hands `reply` (the outcome of the awaitable asked for, if any) to the future and
    /// polls it once. `Err`: the call's error.
    fn step_with(&self, py: Python<'_>, reply: Option<PyResult<Py<PyAny>>>) -> PyResult<Step> {
        let mut st = self
            .state
            .try_lock()
            .map_err(|_| errors::new_err(py, baton::ErrorKind::InvalidState, "this awaitable is already being driven"))?;
        if std::mem::take(&mut st.waiting) {
            let r = reply.unwrap_or_else(|| Ok(py.None()));
            *self.slot.reply.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
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
                    Ok(out) => Ok(Step::Done(out.into_py(py)?)),
                    Err(e) => Err(errors::to_py(py, &e)),
                }
            }
            Ok(Poll::Pending) => match self.slot.request.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some((aw, middleware)) => {
                    st.waiting = true;
                    Ok(Step::Await(aw, middleware))
                }
                None => {
                    st.fut = None;
                    Err(errors::new_err(py, baton::ErrorKind::Internal, "a Baton future is waiting on something other than Python"))
                }
            },
        }
    }

    /// Drops the future (a call still in flight ends as cancelled).
    fn close_future(&self, py: Python<'_>) {
        let fut = self.state.lock().unwrap_or_else(|p| p.into_inner()).fut.take();
        crate::host::emitting(py, move || drop(fut));
    }
}

#[pymethods]
impl Pending {
    /// Resumes the future (with the outcome of the awaitable it asked for, if any) and
    /// polls it once: `(True, result, False)` when finished, `(False, awaitable, is_middleware)`
    /// when it needs that awaited next. Raises the call's error.
    #[pyo3(signature = (ok=true, value=None))]
    fn step(&self, py: Python<'_>, ok: bool, value: Option<Bound<'_, PyAny>>) -> PyResult<(bool, Py<PyAny>, bool)> {
        let value = value.unwrap_or_else(|| py.None().into_bound(py));
        let reply = if ok { Ok(value.unbind()) } else { Err(PyErr::from_value(value)) };
        match self.step_with(py, Some(reply))? {
            Step::Done(v) => Ok((true, v, false)),
            Step::Await(aw, middleware) => Ok((false, aw, middleware)),
        }
    }

    /// Drops the future (a call still in flight ends as cancelled).
    fn close(&self, py: Python<'_>) {
        self.close_future(py)
    }

    /// A native driver ([`Drive`]) on CPython ≥ 3.10, else `baton._bridge.drive(self)`.
    fn __await__(slf: Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if let Some(d) = drive(&slf)? {
            return Ok(d);
        }
        let coro = helper(py, &DRIVE, "drive")?.call1((slf,))?;
        Ok(coro.call_method0("__await__")?.unbind())
    }
}

// ----- the driver, natively (CPython ≥ 3.10) -----

/// What `await pending` iterates on CPython ≥ 3.10: `baton._bridge.drive` written against
/// the C API ([`crate::native`]). Each step polls the future; an awaitable it asks for is
/// sent into with `PyIter_Send` right away, so a middleware coroutine that finishes without
/// suspending costs no Python frame of ours and no exception object; one that suspends
/// yields to the task through this object, which resumes it (`send` / `throw` / `close`) as
/// `await` would. `baton._bridge.in_middleware` is set while a middleware's awaitable runs.
#[repr(C)]
struct Drive {
    ob_base: ffi::PyObject,
    /// The `Pending`.
    pending: *mut ffi::PyObject,
    /// The awaitable iterator being awaited, or NULL.
    sub: *mut ffi::PyObject,
    /// Whether `sub` is middleware's.
    middleware: std::ffi::c_int,
}

static DRIVE_TYPE: PyOnceLock<Option<Py<PyAny>>> = PyOnceLock::new();
static IN_MIDDLEWARE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

extern "C" {
    // Public C API since 3.7 (not in the limited API; exported by every CPython the binding
    // supports, as facade.rs's PyContextVar_Get).
    fn PyContextVar_Set(var: *mut ffi::PyObject, value: *mut ffi::PyObject) -> *mut ffi::PyObject;
    fn PyContextVar_Reset(var: *mut ffi::PyObject, token: *mut ffi::PyObject) -> std::ffi::c_int;
}

fn drive_type(py: Python<'_>) -> Option<&'static Py<PyAny>> {
    DRIVE_TYPE
        .get_or_init(py, || {
            crate::native::send_fn(py)?;
            crate::native::make_type(
                py,
                c"baton._native.Drive",
                std::mem::size_of::<Drive>(),
                crate::native::Slots {
                    dealloc: drive_dealloc,
                    iternext: drive_iternext,
                    am_send: drive_am_send,
                    am_aiter: None,
                    am_anext: None,
                    send: drive_send,
                    throw: drive_throw,
                    close: drive_close,
                    traverse: drive_traverse,
                    clear: drive_clear,
                },
            )
            .ok()
        })
        .as_ref()
}

/// `pending` as what `await` iterates: its native driver, or the `Pending` itself (3.9).
pub fn awaitable(py: Python<'_>, pending: Pending) -> PyResult<Py<PyAny>> {
    let p = Bound::new(py, pending)?;
    match drive(&p)? {
        Some(d) => Ok(d),
        None => Ok(p.into_any().unbind()),
    }
}

fn drive(pending: &Bound<'_, Pending>) -> PyResult<Option<Py<PyAny>>> {
    let py = pending.py();
    if !crate::native::enabled() {
        return Ok(None);
    }
    let Some(tp) = drive_type(py) else {
        return Ok(None);
    };
    // SAFETY: GIL held; a fresh zeroed Drive whose field takes an owned reference.
    unsafe {
        let o = crate::native::alloc(tp);
        if o.is_null() {
            return Err(PyErr::fetch(py));
        }
        (*(o as *mut Drive)).pending = pending.clone().into_any().into_ptr();
        Ok(Some(Bound::from_owned_ptr(py, o).unbind()))
    }
}

fn drive_pending<'a>(py: Python<'a>, this: &'a Drive) -> &'a Pending {
    // SAFETY: `pending` is set at creation to a `Pending` and held until dealloc.
    unsafe { Bound::ref_from_ptr(py, &this.pending).cast_unchecked::<Pending>() }.get()
}

/// Sets `in_middleware` for the awaitable's step; the token to reset it with.
fn enter_await(py: Python<'_>, middleware: bool) -> PyResult<Bound<'_, PyAny>> {
    let var = IN_MIDDLEWARE
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> { Ok(py.import("baton._bridge")?.getattr("in_middleware")?.unbind()) })?;
    let value = pyo3::types::PyBool::new(py, middleware);
    // SAFETY: a ContextVar and a bool; a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, PyContextVar_Set(var.as_ptr(), value.as_ptr())) }
}

fn leave_await(py: Python<'_>, token: Bound<'_, PyAny>) {
    if let Some(var) = IN_MIDDLEWARE.get(py) {
        // SAFETY: the token `enter_await` got from this variable, in the same context.
        if unsafe { PyContextVar_Reset(var.as_ptr(), token.as_ptr()) } < 0 {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
        }
    }
}

/// How the driver is resumed.
enum Resume {
    /// `send(arg)` (borrowed), also the first step (`None`).
    Send(*mut ffi::PyObject),
    /// `throw(*args)` (a borrowed tuple).
    Throw(*mut ffi::PyObject),
}

/// The awaitable below raised `err`: an `Exception` goes to the core; anything else
/// (cancellation, `GeneratorExit`) drops the future and propagates (raised again, `None`).
fn sub_failed(py: Python<'_>, this: &Drive, err: PyErr) -> Option<PyErr> {
    if err.is_instance_of::<pyo3::exceptions::PyException>(py) {
        return Some(err);
    }
    drive_pending(py, this).close_future(py);
    err.restore(py);
    None
}

/// Runs the driver until the awaitable below suspends (`PYGEN_NEXT`, the value it yields in
/// `out`) or the future finishes (`PYGEN_RETURN` with the result / `PYGEN_ERROR`).
unsafe fn drive_run(py: Python<'_>, this: &mut Drive, mut resume: Resume, out: *mut *mut ffi::PyObject) -> std::ffi::c_int {
    use crate::native::{PYGEN_ERROR, PYGEN_NEXT, PYGEN_RETURN};
    if this.pending.is_null() {
        unsafe { ffi::PyErr_SetString(ffi::PyExc_RuntimeError, c"cannot reuse an awaited Baton call".as_ptr()) };
        return PYGEN_ERROR;
    }
    let Some(send) = crate::native::send_fn(py) else {
        unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"PyIter_Send is missing".as_ptr()) };
        return PYGEN_ERROR;
    };
    let mut reply: Option<PyResult<Py<PyAny>>> = None;
    loop {
        if !this.sub.is_null() {
            let token = match enter_await(py, this.middleware != 0) {
                Ok(t) => t,
                Err(e) => {
                    e.restore(py);
                    return PYGEN_ERROR;
                }
            };
            let mut res: *mut ffi::PyObject = std::ptr::null_mut();
            let r = match resume {
                Resume::Send(arg) => unsafe { crate::native::send(send, this.sub, arg, &mut res) },
                Resume::Throw(args) => {
                    res = unsafe { crate::native::call_method(this.sub, c"throw", args) };
                    if !res.is_null() {
                        PYGEN_NEXT
                    } else if let Some(v) = unsafe { crate::native::take_stop_iteration(py) } {
                        res = v.into_ptr();
                        PYGEN_RETURN
                    } else {
                        PYGEN_ERROR
                    }
                }
            };
            resume = Resume::Send(unsafe { ffi::Py_None() });
            if r == PYGEN_NEXT {
                leave_await(py, token);
                unsafe { *out = res };
                return PYGEN_NEXT;
            }
            unsafe { crate::native::clear(&mut this.sub) };
            if r == PYGEN_RETURN {
                leave_await(py, token);
                reply = Some(Ok(unsafe { Bound::from_owned_ptr(py, res) }.unbind()));
            } else {
                let err = PyErr::fetch(py);
                leave_await(py, token);
                match sub_failed(py, this, err) {
                    Some(e) => reply = Some(Err(e)),
                    None => return PYGEN_ERROR,
                }
            }
        } else if let Resume::Throw(args) = resume {
            // Nothing below to throw into: the call ends, the exception propagates.
            drive_pending(py, this).close_future(py);
            unsafe { crate::native::raise_thrown(args) };
            return PYGEN_ERROR;
        }
        match drive_pending(py, this).step_with(py, reply.take()) {
            Ok(Step::Done(v)) => {
                unsafe { *out = v.into_ptr() };
                return PYGEN_RETURN;
            }
            Ok(Step::Await(aw, middleware)) => match crate::native::awaitable_iter(aw.into_bound(py)) {
                Ok(it) => {
                    this.sub = it.into_ptr();
                    this.middleware = middleware as std::ffi::c_int;
                }
                // Not awaitable: the TypeError `await` would raise goes to the core.
                Err(e) => reply = Some(Err(e)),
            },
            Err(e) => {
                e.restore(py);
                return PYGEN_ERROR;
            }
        }
    }
}

unsafe extern "C" fn drive_am_send(o: *mut ffi::PyObject, arg: *mut ffi::PyObject, out: *mut *mut ffi::PyObject) -> std::ffi::c_int {
    crate::native::guard(crate::native::PYGEN_ERROR, |py| unsafe { drive_run(py, &mut *(o as *mut Drive), Resume::Send(arg), out) })
}

/// A result as a method / `__next__` returns it: the yielded value, or NULL with
/// `StopIteration(result)` or the error.
unsafe fn as_value(r: std::ffi::c_int, res: *mut ffi::PyObject) -> *mut ffi::PyObject {
    match r {
        crate::native::PYGEN_NEXT => res,
        crate::native::PYGEN_RETURN => {
            unsafe { crate::native::set_stop_iteration(res) };
            std::ptr::null_mut()
        }
        _ => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn drive_iternext(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let mut res: *mut ffi::PyObject = std::ptr::null_mut();
    unsafe {
        let r = drive_am_send(o, ffi::Py_None(), &mut res);
        as_value(r, res)
    }
}

unsafe extern "C" fn drive_send(o: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let mut res: *mut ffi::PyObject = std::ptr::null_mut();
    unsafe {
        let r = drive_am_send(o, arg, &mut res);
        as_value(r, res)
    }
}

unsafe extern "C" fn drive_throw(o: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let mut res: *mut ffi::PyObject = std::ptr::null_mut();
    let r = crate::native::guard(crate::native::PYGEN_ERROR, |py| unsafe {
        drive_run(py, &mut *(o as *mut Drive), Resume::Throw(args), &mut res)
    });
    unsafe { as_value(r, res) }
}

unsafe extern "C" fn drive_close(o: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    crate::native::guard(std::ptr::null_mut(), |py| unsafe {
        let this = &mut *(o as *mut Drive);
        let mut failed = None;
        if !this.sub.is_null() {
            let sub = std::mem::replace(&mut this.sub, std::ptr::null_mut());
            let r = crate::native::call_method(sub, c"close", std::ptr::null_mut());
            ffi::Py_DecRef(sub);
            if r.is_null() {
                failed = Some(PyErr::fetch(py));
            } else {
                ffi::Py_DecRef(r);
            }
        }
        if !this.pending.is_null() {
            drive_pending(py, this).close_future(py);
        }
        match failed {
            Some(e) => {
                e.restore(py);
                std::ptr::null_mut()
            }
            None => {
                let none = ffi::Py_None();
                ffi::Py_IncRef(none);
                none
            }
        }
    })
}

unsafe extern "C" fn drive_traverse(o: *mut ffi::PyObject, visit: ffi::visitproc, arg: *mut std::ffi::c_void) -> std::ffi::c_int {
    unsafe {
        let this = &*(o as *mut Drive);
        crate::native::visit(&[this.pending, this.sub], visit, arg)
    }
}

/// Breaks a cycle: the references go (the call, if this held its last, ends as cancelled).
unsafe extern "C" fn drive_clear(o: *mut ffi::PyObject) -> std::ffi::c_int {
    unsafe {
        let this = &mut *(o as *mut Drive);
        crate::native::clear(&mut this.sub);
        crate::native::clear(&mut this.pending);
    }
    0
}

unsafe extern "C" fn drive_dealloc(o: *mut ffi::PyObject) {
    unsafe {
        crate::native::untrack(o);
        let mut saved = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        ffi::PyErr_Fetch(&mut saved.0, &mut saved.1, &mut saved.2);
        crate::native::guard((), |_py| {
            let this = &mut *(o as *mut Drive);
            crate::native::clear(&mut this.sub);
            crate::native::clear(&mut this.pending);
        });
        crate::native::free(o);
        ffi::PyErr_Restore(saved.0, saved.1, saved.2);
    }
}

/// Raises `StopIteration` (sync iterators' end).
pub fn stop_iteration() -> PyErr {
    PyStopIteration::new_err(())
}
