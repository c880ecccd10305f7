//! Streams: Python (async) iterables as core chunk streams, and core streams as Python
//! (async) iterators. Everything is pulled lazily, one chunk per `next`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use baton::{ChunkStream, LlmStream};
use futures_core::Stream;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use serde_json::Value;

use crate::bridge::{self, Out, Pending, PyAwait};
use crate::{convert, errors};

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

/// A managed LLM stream: iterate it (`for`) or async-iterate it (`async for` through the
/// facade). Closing or dropping it before the end ends the call as cancelled.
#[pyclass(frozen, name = "LlmStream", module = "baton._native")]
pub struct PyLlmStream {
    inner: Arc<Mutex<Option<LlmStream>>>,
    uuid: String,
}

impl PyLlmStream {
    pub fn new(s: LlmStream) -> PyLlmStream {
        let uuid = s.uuid().to_string();
        PyLlmStream { inner: Arc::new(Mutex::new(Some(s))), uuid }
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
        if inner.is_some() {
            drop_detached(inner);
        }
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
impl PyLlmStream {
    #[getter]
    fn uuid(&self) -> &str {
        &self.uuid
    }
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        let r = crate::host::emitting(py, move || inner.lock().unwrap_or_else(|p| p.into_inner()).as_mut().and_then(Iterator::next));
        match r {
            None => Err(bridge::stop_iteration()),
            Some(Ok(v)) => convert::to_py(py, &v),
            Some(Err(e)) => Err(errors::to_py(py, &e)),
        }
    }
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    /// The next chunk as an awaitable (raises `StopAsyncIteration` at the end).
    fn __anext__(&self) -> Pending {
        let inner = self.inner.clone();
        Pending::new(std::future::poll_fn(move |cx| {
            let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_mut() {
                None => Poll::Ready(Ok(Out::Item(None))),
                Some(s) => match Pin::new(s).poll_next(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => Poll::Ready(Ok(Out::Item(None))),
                    Poll::Ready(Some(Ok(v))) => Poll::Ready(Ok(Out::Item(Some(v)))),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e)),
                },
            }
        }))
    }
    /// Ends the stream now; unfinished, it ends as cancelled.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        crate::host::emitting(py, move || drop(inner.lock().unwrap_or_else(|p| p.into_inner()).take()));
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
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
