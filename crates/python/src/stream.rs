//! Streams: Python (async) iterables as core chunk streams, and core streams as Python
//! (async) iterators. Everything is pulled lazily, one chunk per `next`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use baton::{ChunkStream, EnteredStream, LlmStream};
use futures_core::Stream;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use serde_json::Value;

use crate::bridge::{self, Out, Pending, PyAwait};
use crate::{convert, errors, json};

/// A sync Python iterator as a core chunk iterator.
struct PyIterSource(Option<Py<PyIterator>>);

impl Iterator for PyIterSource {
    type Item = baton::Result<Value>;
    fn next(&mut self) -> Option<baton::Result<Value>> {
        let it = self.0.as_ref()?;
        let out = Python::attach(|py| {
            let mut it = it.bind(py).clone();
            match it.next() {
                None => None,
                Some(Ok(v)) => Some(convert::to_value_core(&v, "chunk")),
                Some(Err(e)) => Some(Err(errors::from_py(py, e))),
            }
        });
        if out.is_none() {
            self.0 = None;
        }
        out
    }
}

/// A Python async iterator as a core chunk stream (each pull awaits `__anext__()`).
struct PyAsyncSource {
    aiter: Option<Py<PyAny>>,
    pending: Option<Pin<Box<PyAwait>>>,
}

impl Stream for PyAsyncSource {
    type Item = baton::Result<Value>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<baton::Result<Value>>> {
        let this = &mut *self;
        let Some(aiter) = this.aiter.as_ref() else {
            return Poll::Ready(None);
        };
        if this.pending.is_none() {
            let next = Python::attach(|py| {
                aiter.bind(py).call_method0(pyo3::intern!(py, "__anext__")).map(Bound::unbind).map_err(|e| errors::from_py(py, e))
            });
            match next {
                Ok(aw) => this.pending = Some(Box::pin(PyAwait::new(aw))),
                Err(e) => {
                    this.aiter = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        let polled = this.pending.as_mut().map(|p| p.as_mut().poll(cx));
        match polled {
            Some(Poll::Pending) | None => Poll::Pending,
            Some(Poll::Ready(r)) => {
                this.pending = None;
                let item = Python::attach(|py| match r {
                    Ok(v) => Some(convert::to_value_core(v.bind(py), "chunk")),
                    Err(e) if e.is_instance_of::<PyStopAsyncIteration>(py) => None,
                    Err(e) => Some(Err(errors::from_py(py, e))),
                });
                if !matches!(item, Some(Ok(_))) {
                    this.aiter = None;
                }
                Poll::Ready(item)
            }
        }
    }
}

use std::future::Future;

/// A Python iterable or async iterable as a core chunk stream.
pub fn to_chunk_stream(obj: &Bound<'_, PyAny>) -> baton::Result<ChunkStream> {
    let py = obj.py();
    if obj.hasattr(pyo3::intern!(py, "__anext__")).unwrap_or(false) {
        return Ok(Box::pin(PyAsyncSource { aiter: Some(obj.clone().unbind()), pending: None }));
    }
    if obj.hasattr(pyo3::intern!(py, "__aiter__")).unwrap_or(false) {
        let aiter = obj.call_method0("__aiter__").map_err(|e| errors::from_py(py, e))?;
        return Ok(Box::pin(PyAsyncSource { aiter: Some(aiter.unbind()), pending: None }));
    }
    match obj.try_iter() {
        Ok(it) => Ok(baton::stream::from_iter(PyIterSource(Some(it.unbind())))),
        Err(_) => Err(baton::Error::invalid_argument(format!(
            "stream: expected an iterable or async iterable of chunks, got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))),
    }
}

/// A sync Python iterable only (the sync `llm_stream`).
pub fn to_sync_iter(obj: &Bound<'_, PyAny>) -> baton::Result<impl Iterator<Item = baton::Result<Value>> + Send + 'static> {
    let py = obj.py();
    if obj.hasattr(pyo3::intern!(py, "__anext__")).unwrap_or(false) || obj.hasattr(pyo3::intern!(py, "__aiter__")).unwrap_or(false) {
        return Err(baton::Error::invalid_argument("stream: the callback returned an async iterator; use llm_stream_async"));
    }
    match obj.try_iter() {
        Ok(it) => Ok(PyIterSource(Some(it.unbind()))),
        Err(_) => Err(baton::Error::invalid_argument(format!(
            "stream: expected an iterable of chunks, got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))),
    }
}

/// Where the chunks come from: the core's stream (middleware sees them), or the Python
/// source itself, pulled here on a host-run stream ([`baton::EnteredStream`]).
enum Inner {
    Core(LlmStream),
    Host(Host),
}

struct Host {
    h: Option<EnteredStream>,
    src: Option<Src>,
}

enum Src {
    Sync(Py<PyIterator>),
    /// The async iterator (when it has `__aiter__`, for `async for`), and its `__anext__`.
    Async(Option<Py<PyAny>>, Py<PyAny>),
}

/// A managed LLM stream: iterate it (`for`) or async-iterate it (`async for` through the
/// facade). Closing or dropping it before the end ends the call as cancelled.
#[pyclass(frozen, name = "LlmStream", module = "baton._native")]
pub struct PyLlmStream {
    inner: Arc<Mutex<Option<Inner>>>,
    uuid: String,
}

impl PyLlmStream {
    pub fn new(s: LlmStream) -> PyLlmStream {
        let uuid = s.uuid().to_string();
        PyLlmStream { inner: Arc::new(Mutex::new(Some(Inner::Core(s)))), uuid }
    }
    pub fn host(h: EnteredStream) -> PyLlmStream {
        let uuid = h.uuid().to_string();
        PyLlmStream { inner: Arc::new(Mutex::new(Some(Inner::Host(Host { h: Some(h), src: None })))), uuid }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Inner>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Runs `f` on the host-run state (`InvalidStateError` for a core stream).
    fn with_host<T>(&self, py: Python<'_>, f: impl FnOnce(&mut Host) -> PyResult<T>) -> PyResult<T> {
        match self.lock().as_mut() {
            Some(Inner::Host(h)) => f(h),
            _ => Err(errors::new_err(py, baton::ErrorKind::InvalidState, "not a host-run stream")),
        }
    }
    /// Ends a host-run stream (`Ok`: finished; `Err`: failed) unless it already ended.
    fn end_host(&self, py: Python<'_>, outcome: Result<(), &baton::Error>) {
        let h = match self.lock().as_mut() {
            Some(Inner::Host(host)) => {
                host.src = None;
                host.h.take()
            }
            _ => None,
        };
        if let Some(h) = h {
            crate::host::emitting(py, move || h.finish(outcome));
        }
    }
    /// Records a chunk the source produced (the scope was pushed for the pull); returns it,
    /// or ends the stream with `invalid_argument` when it is not JSON.
    fn record(&self, py: Python<'_>, chunk: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let mut g = self.lock();
        let Some(Inner::Host(host)) = g.as_mut() else {
            return Err(errors::new_err(py, baton::ErrorKind::InvalidState, "not a host-run stream"));
        };
        let Some(h) = host.h.as_mut() else {
            return Err(errors::new_err(py, baton::ErrorKind::InvalidState, "this stream has already ended"));
        };
        h.pop();
        let text = if h.observed() { json::payload(&chunk).map(Some) } else { json::check(&chunk).map(|_| None) };
        match text {
            Ok(p) => {
                if crate::host::may_block() {
                    let mut h = host.h.take().expect("checked");
                    let h = py.detach(move || {
                        h.chunk(|| p.unwrap_or_default());
                        h
                    });
                    host.h = Some(h);
                } else {
                    h.chunk(|| p.unwrap_or_default());
                }
                Ok(chunk.unbind())
            }
            Err(e) => {
                let err = e.into_core("chunk");
                drop(g);
                self.end_host(py, Err(&err));
                Err(errors::to_py(py, &err))
            }
        }
    }
    pub fn push_scope(&self) -> bool {
        self.push()
    }
    pub fn pop_scope(&self) {
        self.pop_pushed()
    }
    pub fn end_with(&self, py: Python<'_>, outcome: Result<(), &baton::Error>) {
        self.end_host(py, outcome)
    }
    pub fn set_source(&self, py: Python<'_>, source: Bound<'_, PyAny>) -> PyResult<()> {
        self.py_set_source(py, source)
    }
    fn push(&self) -> bool {
        match self.lock().as_ref() {
            Some(Inner::Host(Host { h: Some(h), .. })) => {
                h.push();
                true
            }
            _ => false,
        }
    }
    fn pop_pushed(&self) {
        if let Some(Inner::Host(Host { h: Some(h), .. })) = self.lock().as_ref() {
            h.pop();
        }
    }
}

/// Dropping an unfinished stream emits its end event, which may wait for room in the queue:
/// never with the GIL held (the dispatcher may need it to make room).
fn drop_detached<T: Send>(value: T) {
    Python::attach(|py| crate::host::emitting(py, move || drop(value)));
}

impl Drop for PyLlmStream {
    fn drop(&mut self) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(inner) = inner {
            // The Python source (if any) is released with the GIL held, the rest (the end
            // event) as any emission.
            let (rest, src) = match inner {
                Inner::Core(s) => (Some(Inner::Core(s)), None),
                Inner::Host(Host { h, src }) => (h.map(|h| Inner::Host(Host { h: Some(h), src: None })), src),
            };
            drop(src);
            if rest.is_some() {
                drop_detached(rest);
            }
        }
    }
}

static HOST_ANEXT: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
static HOST_ANEXT_SYNC: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
static HOST_PULL: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

fn bridge_fn<'py>(py: Python<'py>, cell: &'static pyo3::sync::PyOnceLock<Py<PyAny>>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    if let Some(f) = cell.get(py) {
        return Ok(f.bind(py).clone());
    }
    let f = py.import("baton._bridge")?.getattr(name)?;
    let _ = cell.set(py, f.clone().unbind());
    Ok(f)
}

#[pymethods]
impl PyLlmStream {
    #[getter]
    fn uuid(&self) -> &str {
        &self.uuid
    }
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let it = match self.lock().as_mut() {
            None => return Err(bridge::stop_iteration()),
            Some(Inner::Core(_)) => None,
            Some(Inner::Host(host)) => match &host.src {
                Some(Src::Sync(it)) if host.h.is_some() => Some(it.clone_ref(py)),
                Some(Src::Async(..)) => return Err(errors::new_err(py, baton::ErrorKind::InvalidState, "an async stream: use async for")),
                _ => return Err(bridge::stop_iteration()),
            },
        };
        let Some(it) = it else {
            let inner = self.inner.clone();
            let r = crate::host::emitting(py, move || match inner.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                Some(Inner::Core(s)) => s.next(),
                _ => None,
            });
            return match r {
                None => Err(bridge::stop_iteration()),
                Some(Ok(v)) => convert::to_py(py, &v),
                Some(Err(e)) => Err(errors::to_py(py, &e)),
            };
        };
        // Host-run: pull with the call's scope current, then record the chunk.
        self.push();
        let mut it = it.into_bound(py);
        match it.next() {
            Some(Ok(chunk)) => self.record(py, chunk),
            None => {
                self.pop_pushed();
                self.end_host(py, Ok(()));
                Err(bridge::stop_iteration())
            }
            Some(Err(e)) => {
                self.pop_pushed();
                let err = errors::from_py(py, e);
                self.end_host(py, Err(&err));
                Err(errors::to_py(py, &err))
            }
        }
    }
    /// `async for` over a host-run stream with an async source iterates a native `HostPull`
    /// (below; on CPython 3.9 the Python async generator `baton._bridge.host_pull`) that pulls
    /// and records every chunk. Otherwise the stream is its own iterator.
    fn __aiter__(slf: Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let anext = match slf.get().lock().as_mut() {
            Some(Inner::Host(host)) if host.h.is_some() => match host.src.take() {
                Some(Src::Async(Some(aiter), anext)) => {
                    host.src = Some(Src::Async(None, anext));
                    Some(aiter)
                }
                other => {
                    host.src = other;
                    None
                }
            },
            _ => None,
        };
        match anext {
            Some(aiter) => match host_pull(&slf, aiter.clone_ref(py))? {
                Some(it) => Ok(it),
                None => Ok(bridge_fn(py, &HOST_PULL, "host_pull")?.call1((slf, aiter))?.unbind()),
            },
            None => Ok(slf.into_any().unbind()),
        }
    }
    /// The next chunk as an awaitable (raises `StopAsyncIteration` at the end).
    fn __anext__(slf: Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let host = match slf.get().lock().as_ref() {
            Some(Inner::Host(host)) => Some(match &host.src {
                Some(Src::Async(_, anext)) if host.h.is_some() => Some(anext.clone_ref(py)),
                _ => None,
            }),
            _ => None,
        };
        match host {
            Some(Some(anext)) => {
                // The pull starts now: the scope is current until `_chunk` (or the end).
                slf.get().push();
                Ok(bridge_fn(py, &HOST_ANEXT, "host_anext")?.call1((slf, anext))?.unbind())
            }
            Some(None) => Ok(bridge_fn(py, &HOST_ANEXT_SYNC, "host_anext_sync")?.call1((slf,))?.unbind()),
            None => {
                let inner = slf.get().inner.clone();
                let p = Pending::new(std::future::poll_fn(move |cx| {
                    let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
                    match g.as_mut() {
                        Some(Inner::Core(s)) => match Pin::new(s).poll_next(cx) {
                            Poll::Pending => Poll::Pending,
                            Poll::Ready(None) => Poll::Ready(Ok(Out::Item(None))),
                            Poll::Ready(Some(Ok(v))) => Poll::Ready(Ok(Out::Item(Some(v)))),
                            Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e)),
                        },
                        _ => Poll::Ready(Ok(Out::Item(None))),
                    }
                }));
                Ok(Py::new(py, p)?.into_any())
            }
        }
    }
    /// Ends the stream now; unfinished, it ends as cancelled.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        let taken = inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (rest, src) = match taken {
            Some(Inner::Host(Host { h, src })) => (h.map(|h| Inner::Host(Host { h: Some(h), src: None })), src),
            other => (other, None),
        };
        drop(src);
        crate::host::emitting(py, move || drop(rest));
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    // ----- host-run streams (baton.llm_stream_async and baton._bridge drive these) -----

    /// Makes the call's scope current (while the source produces a chunk).
    #[pyo3(name = "_push")]
    fn py_push(&self) -> bool {
        self.push()
    }
    /// Undoes `_push`.
    #[pyo3(name = "_pop")]
    fn py_pop(&self) {
        self.pop_pushed()
    }
    /// Records a chunk pulled after `_push` (pops the scope) and returns it.
    #[pyo3(name = "_chunk")]
    fn py_chunk(&self, py: Python<'_>, chunk: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.record(py, chunk)
    }
    /// The source ended: the end event carries the chunks.
    #[pyo3(name = "_end")]
    fn py_end(&self, py: Python<'_>) {
        self.end_host(py, Ok(()))
    }
    /// The source (or the callback) raised `exception`: the stream ends with it.
    #[pyo3(name = "_fail")]
    fn py_fail(&self, py: Python<'_>, exception: Bound<'_, PyAny>) {
        let err = errors::from_py(py, PyErr::from_value(exception));
        self.end_host(py, Err(&err))
    }
    /// Sets what the callback returned: an async iterable or an iterable of chunks (else the
    /// stream ends with `invalid_argument`, which is raised).
    #[pyo3(name = "_set_source")]
    fn py_set_source(&self, py: Python<'_>, source: Bound<'_, PyAny>) -> PyResult<()> {
        let src = if source.hasattr(pyo3::intern!(py, "__anext__"))? {
            let anext = source.getattr(pyo3::intern!(py, "__anext__"))?.unbind();
            let aiter = source.hasattr(pyo3::intern!(py, "__aiter__"))?.then(|| source.unbind());
            Ok(Src::Async(aiter, anext))
        } else if source.hasattr(pyo3::intern!(py, "__aiter__"))? {
            let aiter = source.call_method0(pyo3::intern!(py, "__aiter__"))?;
            let anext = aiter.getattr(pyo3::intern!(py, "__anext__"))?.unbind();
            Ok(Src::Async(Some(aiter.unbind()), anext))
        } else {
            match source.try_iter() {
                Ok(it) => Ok(Src::Sync(it.unbind())),
                Err(_) => Err(baton::Error::invalid_argument(format!(
                    "stream: expected an iterable or async iterable of chunks, got {}",
                    source.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))),
            }
        };
        match src {
            Ok(src) => self.with_host(py, |h| {
                h.src = Some(src);
                Ok(())
            }),
            Err(e) => {
                self.end_host(py, Err(&e));
                Err(errors::to_py(py, &e))
            }
        }
    }
}

/// The inner chunk stream a stream execution intercept wraps: iterate it or async-iterate it.
#[pyclass(frozen, name = "Chunks", module = "baton._native")]
pub struct PyChunks {
    inner: Arc<Mutex<Option<ChunkStream>>>,
}

impl PyChunks {
    pub fn new(s: ChunkStream) -> PyChunks {
        PyChunks { inner: Arc::new(Mutex::new(Some(s))) }
    }
}

impl Drop for PyChunks {
    fn drop(&mut self) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if inner.is_some() {
            drop_detached(inner);
        }
    }
}

#[pymethods]
impl PyChunks {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        let r = crate::host::emitting(py, move || {
            baton::exec::block_on(std::future::poll_fn(|cx| match inner.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                None => Poll::Ready(None),
                Some(s) => s.as_mut().poll_next(cx),
            }))
        });
        match r {
            None => Err(bridge::stop_iteration()),
            Some(Ok(v)) => convert::to_py(py, &v),
            Some(Err(e)) => Err(errors::to_py(py, &e)),
        }
    }
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __anext__(&self) -> Pending {
        let inner = self.inner.clone();
        Pending::new(std::future::poll_fn(move |cx| match inner.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            None => Poll::Ready(Ok(Out::Item(None))),
            Some(s) => match s.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(Ok(Out::Item(None))),
                Poll::Ready(Some(Ok(v))) => Poll::Ready(Ok(Out::Item(Some(v)))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e)),
            },
        }))
    }
}

// ----- `async for` over a host-run stream, natively (CPython ≥ 3.10) -----

/// The async iterator `LlmStream.__aiter__` returns for a host-run stream over an async
/// source, and the awaitable its `__anext__` returns (itself): each pull makes the call's
/// scope current, sends into the source's `__anext__()` awaitable with `PyIter_Send`, and
/// records the chunk it returns — what `baton._bridge.host_pull` does, without a second
/// async generator and an exception object per chunk. See [`crate::native`].
#[repr(C)]
struct HostPull {
    ob_base: pyo3::ffi::PyObject,
    /// The `LlmStream`.
    stream: *mut pyo3::ffi::PyObject,
    /// The source async iterator.
    source: *mut pyo3::ffi::PyObject,
    /// Its type's `am_anext` (NULL: call `__anext__`).
    anext: *mut std::ffi::c_void,
    /// The awaitable iterator of the pull in progress.
    pending: *mut pyo3::ffi::PyObject,
}

static HOST_PULL_TYPE: pyo3::sync::PyOnceLock<Option<Py<PyAny>>> = pyo3::sync::PyOnceLock::new();

fn host_pull_type(py: Python<'_>) -> Option<&'static Py<PyAny>> {
    HOST_PULL_TYPE
        .get_or_init(py, || {
            crate::native::send_fn(py)?;
            crate::native::make_type(
                py,
                c"baton._native.HostPull",
                std::mem::size_of::<HostPull>(),
                crate::native::Slots {
                    dealloc: hp_dealloc,
                    iternext: hp_iternext,
                    am_send: hp_am_send,
                    am_aiter: Some(hp_aiter),
                    am_anext: Some(hp_anext),
                    send: hp_send,
                    throw: hp_throw,
                    close: hp_close,
                    traverse: hp_traverse,
                    clear: hp_clear,
                },
            )
            .ok()
        })
        .as_ref()
}

/// A native `HostPull` over `source`, or `None` on a CPython without `PyIter_Send`.
fn host_pull(stream: &Bound<'_, PyLlmStream>, source: Py<PyAny>) -> PyResult<Option<Py<PyAny>>> {
    let py = stream.py();
    if !crate::native::enabled() {
        return Ok(None);
    }
    let Some(tp) = host_pull_type(py) else {
        return Ok(None);
    };
    // SAFETY: GIL held; a fresh zeroed instance of HostPull's type, whose fields take owned
    // references.
    unsafe {
        let o = crate::native::alloc(tp);
        if o.is_null() {
            return Err(PyErr::fetch(py));
        }
        let this = &mut *(o as *mut HostPull);
        this.stream = stream.clone().into_any().into_ptr();
        let src = source.into_ptr();
        this.source = src;
        this.anext = pyo3::ffi::PyType_GetSlot(pyo3::ffi::Py_TYPE(src), pyo3::ffi::Py_am_anext);
        Ok(Some(Bound::from_owned_ptr(py, o).unbind()))
    }
}

fn hp_stream<'a>(py: Python<'a>, this: &'a HostPull) -> &'a PyLlmStream {
    // SAFETY: `stream` is set at creation to an `LlmStream` and held until dealloc.
    unsafe { Bound::ref_from_ptr(py, &this.stream).cast_unchecked::<PyLlmStream>() }.get()
}

/// The pull raised (the exception is set): the stream ends — at `StopAsyncIteration`
/// normally, with an `Exception` failed, with anything else (cancellation) cancelled — and
/// the exception propagates unchanged.
fn hp_pull_failed(py: Python<'_>, stream: &PyLlmStream) {
    // SAFETY: GIL held, an exception is set.
    if unsafe { pyo3::ffi::PyErr_ExceptionMatches(pyo3::ffi::PyExc_StopAsyncIteration) } != 0 {
        stream.pop_pushed();
        stream.end_host(py, Ok(()));
        return;
    }
    let err = PyErr::fetch(py);
    stream.pop_pushed();
    if err.is_instance_of::<pyo3::exceptions::PyException>(py) {
        let core = errors::from_py(py, err.clone_ref(py));
        stream.end_host(py, Err(&core));
    } else {
        stream.close(py);
    }
    err.restore(py);
}

/// Records the chunk the pull returned (steals it): `PYGEN_RETURN` with it in `out`, or
/// `PYGEN_ERROR` when it is not JSON (the stream then ended with that error).
unsafe fn hp_record(
    py: Python<'_>,
    stream: &PyLlmStream,
    chunk: *mut pyo3::ffi::PyObject,
    out: *mut *mut pyo3::ffi::PyObject,
) -> std::ffi::c_int {
    unsafe {
        match stream.record(py, Bound::from_owned_ptr(py, chunk)) {
            Ok(c) => {
                *out = c.into_ptr();
                crate::native::PYGEN_RETURN
            }
            Err(e) => {
                e.restore(py);
                crate::native::PYGEN_ERROR
            }
        }
    }
}

unsafe extern "C" fn hp_aiter(o: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe {
        pyo3::ffi::Py_IncRef(o);
        o
    }
}

unsafe extern "C" fn hp_anext(o: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe {
        crate::native::guard_held(std::ptr::null_mut(), |py| {
            let this = &mut *(o as *mut HostPull);
            if this.stream.is_null() {
                pyo3::ffi::PyErr_SetNone(pyo3::ffi::PyExc_StopAsyncIteration);
                return std::ptr::null_mut();
            }
            if !this.pending.is_null() {
                pyo3::ffi::PyErr_SetString(
                    pyo3::ffi::PyExc_RuntimeError,
                    c"anext(): a chunk of this stream is already being pulled".as_ptr(),
                );
                return std::ptr::null_mut();
            }
            let stream = hp_stream(py, this);
            if !stream.push() {
                // Ended or closed (also while the consumer held the last chunk).
                pyo3::ffi::PyErr_SetNone(pyo3::ffi::PyExc_StopAsyncIteration);
                return std::ptr::null_mut();
            }
            let aw = if this.anext.is_null() {
                crate::native::call_method(this.source, c"__anext__", std::ptr::null_mut())
            } else {
                let f: pyo3::ffi::unaryfunc = std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::unaryfunc>(this.anext);
                f(this.source)
            };
            let it = match Bound::from_owned_ptr_or_err(py, aw).and_then(crate::native::awaitable_iter) {
                Ok(it) => it,
                Err(e) => {
                    e.restore(py);
                    hp_pull_failed(py, stream);
                    return std::ptr::null_mut();
                }
            };
            this.pending = it.into_ptr();
            pyo3::ffi::Py_IncRef(o);
            o
        })
    }
}

unsafe extern "C" fn hp_am_send(
    o: *mut pyo3::ffi::PyObject,
    arg: *mut pyo3::ffi::PyObject,
    out: *mut *mut pyo3::ffi::PyObject,
) -> std::ffi::c_int {
    unsafe {
        crate::native::guard_held(crate::native::PYGEN_ERROR, |py| {
            let this = &mut *(o as *mut HostPull);
            if this.pending.is_null() {
                pyo3::ffi::PyErr_SetString(pyo3::ffi::PyExc_RuntimeError, c"cannot reuse already awaited __anext__()".as_ptr());
                return crate::native::PYGEN_ERROR;
            }
            let Some(send) = crate::native::send_fn(py) else {
                pyo3::ffi::PyErr_SetString(pyo3::ffi::PyExc_SystemError, c"PyIter_Send is missing".as_ptr());
                return crate::native::PYGEN_ERROR;
            };
            let mut res: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
            let r = crate::native::send(send, this.pending, arg, &mut res);
            if r == crate::native::PYGEN_NEXT {
                *out = res;
                return r;
            }
            crate::native::clear(&mut this.pending);
            let stream = hp_stream(py, this);
            if r == crate::native::PYGEN_RETURN {
                return hp_record(py, stream, res, out);
            }
            hp_pull_failed(py, stream);
            crate::native::PYGEN_ERROR
        })
    }
}

/// `send(arg)` as a method / `__next__`: the yielded value, or NULL with `StopIteration(chunk)`.
unsafe fn hp_send_value(o: *mut pyo3::ffi::PyObject, arg: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe {
        let mut res: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
        match hp_am_send(o, arg, &mut res) {
            crate::native::PYGEN_NEXT => res,
            crate::native::PYGEN_RETURN => {
                crate::native::set_stop_iteration(res);
                std::ptr::null_mut()
            }
            _ => std::ptr::null_mut(),
        }
    }
}

unsafe extern "C" fn hp_iternext(o: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe { hp_send_value(o, pyo3::ffi::Py_None()) }
}

unsafe extern "C" fn hp_send(o: *mut pyo3::ffi::PyObject, arg: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe { hp_send_value(o, arg) }
}

unsafe extern "C" fn hp_throw(o: *mut pyo3::ffi::PyObject, args: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe {
        crate::native::guard(std::ptr::null_mut(), |py| {
            let this = &mut *(o as *mut HostPull);
            if this.pending.is_null() {
                crate::native::raise_thrown(args);
                return std::ptr::null_mut();
            }
            let r = crate::native::call_method(this.pending, c"throw", args);
            if !r.is_null() {
                return r; // the source caught it and yielded again
            }
            crate::native::clear(&mut this.pending);
            let stream = hp_stream(py, this);
            if let Some(v) = crate::native::take_stop_iteration(py) {
                let mut res: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
                if hp_record(py, stream, v.into_ptr(), &mut res) == crate::native::PYGEN_RETURN {
                    crate::native::set_stop_iteration(res);
                }
                return std::ptr::null_mut();
            }
            hp_pull_failed(py, stream);
            std::ptr::null_mut()
        })
    }
}

unsafe extern "C" fn hp_close(o: *mut pyo3::ffi::PyObject, _: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    unsafe {
        crate::native::guard(std::ptr::null_mut(), |py| {
            let this = &mut *(o as *mut HostPull);
            if this.pending.is_null() {
                let none = pyo3::ffi::Py_None();
                pyo3::ffi::Py_IncRef(none);
                return none;
            }
            let pending = std::mem::replace(&mut this.pending, std::ptr::null_mut());
            let r = crate::native::call_method(pending, c"close", std::ptr::null_mut());
            pyo3::ffi::Py_DecRef(pending);
            // Abandoned mid-pull: the call ends as cancelled (as `host_pull` on GeneratorExit).
            let stream = hp_stream(py, this);
            stream.pop_pushed();
            if r.is_null() {
                let err = PyErr::fetch(py);
                stream.close(py);
                err.restore(py);
                return std::ptr::null_mut();
            }
            stream.close(py);
            r
        })
    }
}

unsafe extern "C" fn hp_traverse(o: *mut pyo3::ffi::PyObject, visit: pyo3::ffi::visitproc, arg: *mut std::ffi::c_void) -> std::ffi::c_int {
    unsafe {
        let this = &*(o as *mut HostPull);
        crate::native::visit(&[this.stream, this.source, this.pending], visit, arg)
    }
}

/// Breaks a cycle: the references go (the stream, if this was its last, ends as cancelled).
unsafe extern "C" fn hp_clear(o: *mut pyo3::ffi::PyObject) -> std::ffi::c_int {
    unsafe {
        let this = &mut *(o as *mut HostPull);
        crate::native::clear(&mut this.pending);
        crate::native::clear(&mut this.source);
        crate::native::clear(&mut this.stream);
    }
    0
}

unsafe extern "C" fn hp_dealloc(o: *mut pyo3::ffi::PyObject) {
    unsafe {
        crate::native::untrack(o);
        let mut saved = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        pyo3::ffi::PyErr_Fetch(&mut saved.0, &mut saved.1, &mut saved.2);
        crate::native::guard((), |py| {
            let this = &mut *(o as *mut HostPull);
            if !this.pending.is_null() && !this.stream.is_null() {
                crate::native::clear(&mut this.pending);
                let stream = hp_stream(py, this);
                stream.pop_pushed();
                stream.close(py);
            }
            crate::native::clear(&mut this.pending);
            crate::native::clear(&mut this.source);
            crate::native::clear(&mut this.stream);
        });
        crate::native::free(o);
        pyo3::ffi::PyErr_Restore(saved.0, saved.1, saved.2);
    }
}
