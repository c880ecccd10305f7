//! `baton._native`: the PyO3 layer between Python and the Baton core.
//!
//! Only boundary work lives here: value conversion ([`convert`]), error mapping
//! ([`errors`]), handle lifetimes (the classes below), trampolines that let Python functions
//! act as middleware and subscribers ([`mw`]) and the asyncio bridge ([`bridge`]). Every
//! rule is the core's. The idiomatic API (context managers, decorators, contextvars for the
//! current stack) is the Python package `baton` in `python/baton/`.
//!
//! The GIL is released around core work that may wait (see [`host`] for the rule) and
//! around waiting calls; Python callbacks re-acquire it.

/// Every event, payload and scope is a small allocation made on one thread and freed on
/// another; mimalloc's per-thread free lists take a fraction of glibc malloc's instructions.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use baton::{
    CallHandle, DataSchema, EndOptions, Error, ErrorKind, Family, LlmOptions, MarkOptions, Registration, Runtime, RuntimeConfig,
    ScopeHandle, ScopeOptions, Stack, ToolOptions,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;

mod bridge;
mod codec;
mod convert;
mod errors;
mod facade;
mod host;
mod json;
mod mw;
mod native;
mod plugins;
mod stream;

use bridge::{Out, Pending};

fn rt() -> &'static Runtime {
    Runtime::global()
}

fn timeout(seconds: f64) -> Duration {
    if seconds.is_finite() && seconds > 0.0 {
        Duration::from_secs_f64(seconds.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// An open (or ended) scope.
#[pyclass(frozen, name = "Scope", module = "baton._native")]
pub struct PyScope {
    h: ScopeHandle,
}

#[pymethods]
impl PyScope {
    #[getter]
    fn uuid(&self) -> String {
        self.h.uuid().to_string()
    }
    #[getter]
    fn name(&self) -> &str {
        self.h.name()
    }
    #[getter]
    fn category(&self) -> &str {
        self.h.category().as_str()
    }
    #[getter]
    fn parent_uuid(&self) -> Option<String> {
        self.h.parent_uuid().map(|u| u.to_string())
    }
    #[getter]
    fn root_uuid(&self) -> String {
        self.h.root_uuid().to_string()
    }
    #[getter]
    fn is_ended(&self) -> bool {
        self.h.is_ended()
    }
    fn __repr__(&self) -> String {
        format!("Scope(name={:?}, uuid={:?})", self.h.name(), self.h.uuid().to_string())
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyScope>().is_ok_and(|o| o.get().h.uuid() == self.h.uuid())
    }
    fn __hash__(&self) -> u64 {
        let u = self.h.uuid().to_string();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in u.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        h
    }
}

/// A tool or LLM call started by hand (`tool_start` / `llm_start`).
#[pyclass(frozen, name = "CallHandle", module = "baton._native")]
pub struct PyCallHandle {
    h: CallHandle,
}

/// An `EndOptions.error` from what Python gave: an exception object or a message.
fn end_error(py: Python<'_>, error: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Error>> {
    let Some(e) = error else { return Ok(None) };
    if e.is_none() {
        return Ok(None);
    }
    if let Ok(s) = e.extract::<String>() {
        return Ok(Some(Error::callback_failed(s)));
    }
    if e.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        return Ok(Some(errors::from_py(py, PyErr::from_value(e.clone()))));
    }
    Err(errors::new_err(py, ErrorKind::InvalidArgument, "error: expected an exception or a message string"))
}

#[pymethods]
impl PyCallHandle {
    #[getter]
    fn uuid(&self) -> String {
        self.h.uuid().to_string()
    }
    /// Ends the call with `output` (sanitized for the event) or with `error`.
    #[pyo3(signature = (output=None, *, metadata=None, error=None))]
    fn end(
        &self,
        py: Python<'_>,
        output: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let opts = EndOptions {
            output: output.map(|o| convert::to_value(o, "output")).transpose()?,
            metadata: convert::to_map(metadata, "metadata")?,
            error: end_error(py, error)?,
        };
        let h = self.h.clone();
        errors::check(py, host::emitting(py, move || h.end(opts)))
    }
    fn __repr__(&self) -> String {
        format!("CallHandle(uuid={:?})", self.h.uuid().to_string())
    }
}

fn scope_of(parent: Option<PyRef<'_, PyScope>>) -> Option<ScopeHandle> {
    parent.map(|p| p.h.clone())
}

fn call_sync(cb: &Py<PyAny>, v: Value) -> baton::Result<Value> {
    Python::attach(|py| {
        let r = (|| cb.bind(py).call1((convert::to_py(py, &v)?,)))().and_then(bridge::resolve_sync);
        match r {
            Ok(r) => convert::to_value_core(&r, "result"),
            Err(e) => Err(errors::from_py(py, e)),
        }
    })
}

fn async_callback(cb: Py<PyAny>) -> impl Fn(Value) -> baton::BoxFuture<baton::Result<Value>> + Send + Sync + 'static {
    let cb = Arc::new(cb);
    move |v: Value| {
        let cb = cb.clone();
        Box::pin(async move {
            let (f, arg) = Python::attach(|py| -> baton::Result<_> {
                Ok((cb.clone_ref(py), convert::to_py(py, &v).map_err(|e| errors::from_py(py, e))?))
            })?;
            let passed = Python::attach(|py| arg.clone_ref(py));
            let r = bridge::call_maybe_async(false, f, move |py| Ok(PyTuple::new(py, [arg])?.unbind())).await?;
            Python::attach(|py| convert::to_value_reusing(r.bind(py), passed.bind(py), v, "result"))
        })
    }
}

fn stream_callback_async(cb: Py<PyAny>) -> impl FnOnce(Value) -> baton::BoxFuture<baton::Result<baton::ChunkStream>> + Send + 'static {
    move |v: Value| {
        Box::pin(async move {
            let r = bridge::call_maybe_async(false, cb, move |py| Ok(PyTuple::new(py, [convert::to_py(py, &v)?])?.unbind())).await?;
            Python::attach(|py| stream::to_chunk_stream(r.bind(py)))
        })
    }
}

fn data_schema(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DataSchema>> {
    let Some(o) = obj else { return Ok(None) };
    if o.is_none() {
        return Ok(None);
    }
    match convert::to_value(o, "data_schema")? {
        Value::Object(m) => match (m.get("name").and_then(Value::as_str), m.get("version").and_then(Value::as_str)) {
            (Some(n), Some(v)) => Ok(Some(DataSchema { name: n.into(), version: v.into() })),
            _ => Err(errors::new_err(o.py(), ErrorKind::InvalidArgument, "data_schema: expected {\"name\": str, \"version\": str}")),
        },
        _ => Err(errors::new_err(o.py(), ErrorKind::InvalidArgument, "data_schema: expected {\"name\": str, \"version\": str}")),
    }
}

fn opt_value(o: Option<&Bound<'_, PyAny>>, root: &str) -> PyResult<Option<Value>> {
    match o {
        None => Ok(None),
        Some(o) => convert::to_value(o, root).map(Some),
    }
}

#[allow(clippy::too_many_arguments)]
fn llm_options(
    py: Python<'_>,
    codecs: (Option<&str>, Option<&str>),
    model_name: Option<String>,
    metadata: Option<&Bound<'_, PyAny>>,
    attributes: Option<&Bound<'_, PyAny>>,
    parent: Option<PyRef<'_, PyScope>>,
    chunk_marks: bool,
) -> PyResult<LlmOptions> {
    Ok(LlmOptions {
        model_name,
        metadata: convert::to_map(metadata, "metadata")?,
        attributes: convert::strings(attributes, "attributes")?,
        parent: scope_of(parent),
        chunk_marks,
        codec: codec::option(py, codecs.0)?,
        response_codec: codec::option(py, codecs.1)?,
    })
}

/// A stack of open scopes (one per request, task or thread).
#[pyclass(frozen, name = "Stack", module = "baton._native")]
pub struct PyStack {
    s: Stack,
}

#[pymethods]
impl PyStack {
    #[pyo3(signature = (name, *, category="function", input=None, metadata=None, attributes=None, category_profile=None, data_schema=None, parent=None))]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        py: Python<'_>,
        name: &str,
        category: &str,
        input: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        category_profile: Option<&Bound<'_, PyAny>>,
        data_schema: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
    ) -> PyResult<PyScope> {
        let mut o = ScopeOptions::new(name).category(category);
        o.input = opt_value(input, "input")?;
        o.metadata = convert::to_map(metadata, "metadata")?;
        o.attributes = convert::strings(attributes, "attributes")?;
        o.category_profile = opt_value(category_profile, "category_profile")?.filter(|v| !v.is_null());
        o.data_schema = self::data_schema(data_schema)?;
        o.parent = scope_of(parent);
        let s = self.s.clone();
        let h = errors::check(py, host::emitting(py, move || s.push(o)))?;
        Ok(PyScope { h })
    }

    #[pyo3(signature = (scope, *, output=None, metadata=None, error=None))]
    fn pop(
        &self,
        py: Python<'_>,
        scope: PyRef<'_, PyScope>,
        output: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let opts = EndOptions {
            output: opt_value(output, "output")?,
            metadata: convert::to_map(metadata, "metadata")?,
            error: end_error(py, error)?,
        };
        let (s, h) = (self.s.clone(), scope.h.clone());
        errors::check(py, host::emitting(py, move || s.pop(&h, opts)))
    }

    #[pyo3(signature = (name, data=None, *, metadata=None, parent=None, category=None, category_profile=None, data_schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn mark(
        &self,
        py: Python<'_>,
        name: &str,
        data: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
        category: Option<&str>,
        category_profile: Option<&Bound<'_, PyAny>>,
        data_schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut o = MarkOptions::new(name);
        o.data = opt_value(data, "data")?;
        o.metadata = convert::to_map(metadata, "metadata")?;
        o.parent = scope_of(parent);
        o.category = category.map(Into::into);
        o.category_profile = opt_value(category_profile, "category_profile")?;
        o.data_schema = self::data_schema(data_schema)?;
        let s = self.s.clone();
        errors::check(py, host::emitting(py, move || s.mark(o)))
    }

    #[pyo3(signature = (name, measurements, *, unit=None))]
    fn metric(&self, py: Python<'_>, name: &str, measurements: &Bound<'_, PyAny>, unit: Option<String>) -> PyResult<()> {
        let m = convert::to_value(measurements, "measurements")?;
        let (s, name) = (self.s.clone(), name.to_string());
        errors::check(py, host::emitting(py, move || s.metric(&name, m, unit.as_deref())))
    }

    /// A new stack whose first scope is parented under this stack's current scope.
    fn fork(&self) -> PyStack {
        PyStack { s: self.s.fork() }
    }

    /// The innermost open scope, or `None`.
    fn current(&self) -> Option<PyScope> {
        self.s.current().map(|h| PyScope { h })
    }

    #[getter]
    fn depth(&self) -> usize {
        self.s.depth()
    }

    fn propagation_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::to_py(py, &self.s.propagation_context())
    }

    fn traceparent(&self, py: Python<'_>) -> PyResult<String> {
        errors::check(py, self.s.traceparent())
    }

    #[pyo3(signature = (name, args, callback, *, tool_call_id=None, metadata=None, attributes=None, parent=None))]
    #[allow(clippy::too_many_arguments)]
    fn tool(
        &self,
        py: Python<'_>,
        name: &str,
        args: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        tool_call_id: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
    ) -> PyResult<Py<PyAny>> {
        // Nothing registered: no event, no middleware; the callback gets the caller's own
        // object and the caller the callback's (both checked to be JSON).
        if !name.is_empty() && errors::check(py, self.s.unobserved())? {
            json::check(args).map_err(|e| e.into_py(py, "args"))?;
            let r = callback.bind(py).call1((args,)).and_then(bridge::resolve_sync)?;
            json::check(&r).map_err(|e| e.into_py(py, "result"))?;
            return Ok(r.unbind());
        }
        let o = ToolOptions {
            tool_call_id,
            metadata: convert::to_map(metadata, "metadata")?,
            attributes: convert::strings(attributes, "attributes")?,
            parent: scope_of(parent),
        };
        // Only subscribers and event middleware: the core emits the events from JSON text
        // written straight from the Python objects, and the objects themselves pass through.
        if let Some(h) = host::enter_tool(py, &self.s, name, args, o.clone())? {
            return host::run_sync(py, h, args, &callback);
        }
        let args = convert::to_value(args, "args")?;
        let (s, name) = (self.s.clone(), name.to_string());
        let r = host::emitting(py, move || s.tool(&name, args, |v| call_sync(&callback, v), o));
        convert::to_py(py, &errors::check(py, r)?)
    }

    #[pyo3(signature = (name, args, callback, *, tool_call_id=None, metadata=None, attributes=None, parent=None))]
    #[allow(clippy::too_many_arguments)]
    fn tool_async(
        &self,
        py: Python<'_>,
        name: &str,
        args: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        tool_call_id: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
    ) -> PyResult<Pending> {
        let o = ToolOptions {
            tool_call_id,
            metadata: convert::to_map(metadata, "metadata")?,
            attributes: convert::strings(attributes, "attributes")?,
            parent: scope_of(parent),
        };
        tool_async_pending(py, &self.s, name, args, callback, o)
    }

    #[pyo3(signature = (name, request, callback, *, model_name=None, metadata=None, attributes=None, parent=None, codec=None, response_codec=None))]
    #[allow(clippy::too_many_arguments)]
    fn llm(
        &self,
        py: Python<'_>,
        name: &str,
        request: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        model_name: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
        codec: Option<&str>,
        response_codec: Option<&str>,
    ) -> PyResult<Py<PyAny>> {
        let mut value = convert::to_value(request, "request")?;
        let o = llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, true)?;
        // Only subscribers and event middleware: the core emits the events of `llm` and the
        // callback runs here, on the caller's own request (or the checked copy) and objects.
        if !name.is_empty() && !errors::check(py, self.s.unobserved())? {
            match host::enter_llm(py, &self.s, name, value, o.clone())? {
                Some((h, checked)) => {
                    let req = host::llm_request(py, request, checked)?;
                    return host::run_sync(py, h, &req, &callback);
                }
                // Middleware sees the values: the entry took the request, and the value path,
                // the slower one, converts it again (no copy of it on the entered path).
                None => value = convert::to_value(request, "request")?,
            }
        }
        let (s, name) = (self.s.clone(), name.to_string());
        let r = host::emitting(py, move || s.llm(&name, value, |v| call_sync(&callback, v), o));
        convert::to_py(py, &errors::check(py, r)?)
    }

    #[pyo3(signature = (name, request, callback, *, model_name=None, metadata=None, attributes=None, parent=None, codec=None, response_codec=None))]
    #[allow(clippy::too_many_arguments)]
    fn llm_async(
        &self,
        py: Python<'_>,
        name: &str,
        request: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        model_name: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
        codec: Option<&str>,
        response_codec: Option<&str>,
    ) -> PyResult<Pending> {
        let request = convert::to_value(request, "request")?;
        let o = llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, true)?;
        let (s, name) = (self.s.clone(), name.to_string());
        let fut = host::emitting(py, move || s.llm_async(&name, request, async_callback(callback), o));
        Ok(Pending::new(async move { fut.await.map(Out::Value) }))
    }

    #[pyo3(signature = (name, request, callback, *, model_name=None, metadata=None, attributes=None, parent=None, chunk_marks=true, codec=None, response_codec=None))]
    #[allow(clippy::too_many_arguments)]
    fn llm_stream(
        &self,
        py: Python<'_>,
        name: &str,
        request: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        model_name: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
        chunk_marks: bool,
        codec: Option<&str>,
        response_codec: Option<&str>,
    ) -> PyResult<stream::PyLlmStream> {
        let request_obj = request;
        let request = convert::to_value(request, "request")?;
        let o = llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, chunk_marks)?;
        // No middleware sees the values: the chunks are pulled here, as Python objects.
        if let Some(h) = host::enter_llm_stream(py, &self.s, name, &request, &o)? {
            let stream = stream::PyLlmStream::host(h);
            let req = host::callback_request(request_obj)?;
            let pushed = stream.push_scope();
            let r = callback.bind(py).call1((req,)).and_then(bridge::resolve_sync);
            if pushed {
                stream.pop_scope();
            }
            match r {
                Ok(src) => {
                    if let Err(e) = stream::to_sync_iter(&src) {
                        stream.end_with(py, Err(&e));
                        return Err(errors::to_py(py, &e));
                    }
                    stream.set_source(py, src)?;
                }
                Err(e) => {
                    let err = errors::from_py(py, e);
                    stream.end_with(py, Err(&err));
                    return Err(errors::to_py(py, &err));
                }
            }
            return Ok(stream);
        }
        let (s, name) = (self.s.clone(), name.to_string());
        let r = host::emitting(py, move || {
            s.llm_stream(
                &name,
                request,
                move |v| {
                    Python::attach(|py| {
                        let r = (|| callback.bind(py).call1((convert::to_py(py, &v)?,)))().and_then(bridge::resolve_sync);
                        match r {
                            Ok(obj) => stream::to_sync_iter(&obj),
                            Err(e) => Err(errors::from_py(py, e)),
                        }
                    })
                },
                o,
            )
        });
        Ok(stream::PyLlmStream::new(errors::check(py, r)?))
    }

    #[pyo3(signature = (name, request, callback, *, model_name=None, metadata=None, attributes=None, parent=None, chunk_marks=true, codec=None, response_codec=None))]
    #[allow(clippy::too_many_arguments)]
    fn llm_stream_async(
        &self,
        py: Python<'_>,
        name: &str,
        request: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        model_name: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
        chunk_marks: bool,
        codec: Option<&str>,
        response_codec: Option<&str>,
    ) -> PyResult<Pending> {
        let request = convert::to_value(request, "request")?;
        let o = llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, chunk_marks)?;
        let (s, name) = (self.s.clone(), name.to_string());
        let fut = host::emitting(py, move || s.llm_stream_async(&name, request, stream_callback_async(callback), o));
        Ok(Pending::new(async move { fut.await.map(|s| Out::Stream(Box::new(s))) }))
    }

    #[pyo3(signature = (name, args, *, tool_call_id=None, metadata=None, attributes=None, parent=None))]
    #[allow(clippy::too_many_arguments)]
    fn tool_start(
        &self,
        py: Python<'_>,
        name: &str,
        args: &Bound<'_, PyAny>,
        tool_call_id: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
    ) -> PyResult<PyCallHandle> {
        let args = convert::to_value(args, "args")?;
        let o = ToolOptions {
            tool_call_id,
            metadata: convert::to_map(metadata, "metadata")?,
            attributes: convert::strings(attributes, "attributes")?,
            parent: scope_of(parent),
        };
        let (s, name) = (self.s.clone(), name.to_string());
        let h = errors::check(py, host::emitting(py, move || s.tool_start(&name, &args, o)))?;
        Ok(PyCallHandle { h })
    }

    #[pyo3(signature = (name, request, *, model_name=None, metadata=None, attributes=None, parent=None, codec=None, response_codec=None))]
    #[allow(clippy::too_many_arguments)]
    fn llm_start(
        &self,
        py: Python<'_>,
        name: &str,
        request: &Bound<'_, PyAny>,
        model_name: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        parent: Option<PyRef<'_, PyScope>>,
        codec: Option<&str>,
        response_codec: Option<&str>,
    ) -> PyResult<PyCallHandle> {
        let request = convert::to_value(request, "request")?;
        let o = llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, true)?;
        let (s, name) = (self.s.clone(), name.to_string());
        let h = errors::check(py, host::emitting(py, move || s.llm_start(&name, &request, o)))?;
        Ok(PyCallHandle { h })
    }

    fn tool_conditional_execution(&self, py: Python<'_>, name: &str, args: &Bound<'_, PyAny>) -> PyResult<()> {
        let args = convert::to_value(args, "args")?;
        let (s, name) = (self.s.clone(), name.to_string());
        errors::check(py, host::emitting(py, move || s.tool_conditional_execution(&name, &args)))
    }

    fn llm_conditional_execution(&self, py: Python<'_>, name: &str, request: &Bound<'_, PyAny>) -> PyResult<()> {
        let request = convert::to_value(request, "request")?;
        let (s, name) = (self.s.clone(), name.to_string());
        errors::check(py, host::emitting(py, move || s.llm_conditional_execution(&name, &request)))
    }

    fn tool_request_intercepts(&self, py: Python<'_>, name: &str, args: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let args = convert::to_value(args, "args")?;
        let (s, name) = (self.s.clone(), name.to_string());
        let v = errors::check(py, host::emitting(py, move || s.tool_request_intercepts(&name, args)))?;
        convert::to_py(py, &v)
    }

    fn llm_request_intercepts(&self, py: Python<'_>, name: &str, request: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let request = convert::to_value(request, "request")?;
        let (s, name) = (self.s.clone(), name.to_string());
        let v = errors::check(py, host::emitting(py, move || s.llm_request_intercepts(&name, request)))?;
        convert::to_py(py, &v)
    }

    fn tool_conditional_execution_async(&self, name: &str, args: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let fut = self.s.tool_conditional_execution_async(name, convert::to_value(args, "args")?);
        Ok(Pending::new(async move { fut.await.map(|_| Out::None) }))
    }

    fn llm_conditional_execution_async(&self, name: &str, request: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let fut = self.s.llm_conditional_execution_async(name, convert::to_value(request, "request")?);
        Ok(Pending::new(async move { fut.await.map(|_| Out::None) }))
    }

    fn tool_request_intercepts_async(&self, name: &str, args: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let fut = self.s.tool_request_intercepts_async(name, convert::to_value(args, "args")?);
        Ok(Pending::new(async move { fut.await.map(Out::Value) }))
    }

    fn llm_request_intercepts_async(&self, name: &str, request: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let fut = self.s.llm_request_intercepts_async(name, convert::to_value(request, "request")?);
        Ok(Pending::new(async move { fut.await.map(Out::Value) }))
    }

    fn __repr__(&self) -> String {
        format!("Stack(depth={})", self.s.depth())
    }
}

/// A fresh, empty stack on the global runtime.
#[pyfunction]
fn new_stack() -> PyStack {
    PyStack { s: rt().new_stack() }
}

/// A stack whose top-level scopes are parented under a propagation context.
#[pyfunction]
fn stack_from_propagation(py: Python<'_>, context: &Bound<'_, PyAny>) -> PyResult<PyStack> {
    let ctx = convert::to_value(context, "context")?;
    Ok(PyStack { s: errors::check(py, rt().stack_from_propagation(&ctx))? })
}

/// Registers a Python function as middleware of `kind` (a family name) or as a subscriber.
#[pyfunction]
#[pyo3(signature = (kind, name, callback, *, priority=0, scope=None, break_chain=false, is_async=false))]
#[allow(clippy::too_many_arguments)]
fn register(
    py: Python<'_>,
    kind: &str,
    name: &str,
    callback: Py<PyAny>,
    priority: i32,
    scope: Option<PyRef<'_, PyScope>>,
    break_chain: bool,
    is_async: bool,
) -> PyResult<()> {
    if !callback.bind(py).is_callable() {
        return Err(errors::new_err(py, ErrorKind::InvalidArgument, "callback: expected a callable"));
    }
    let family = errors::check(py, Family::parse(kind))?;
    let mw = errors::check(py, mw::build(family, name, callback, is_async))?;
    let mut reg = Registration::new(name).priority(priority).break_chain(break_chain);
    reg.scope = scope_of(scope);
    errors::check(py, py.detach(move || rt().register(reg, mw)))
}

/// Removes a registration; `False` when nothing of that name was registered there.
#[pyfunction]
#[pyo3(signature = (kind, name, *, scope=None))]
fn deregister(py: Python<'_>, kind: &str, name: &str, scope: Option<PyRef<'_, PyScope>>) -> PyResult<bool> {
    let family = errors::check(py, Family::parse(kind))?;
    let scope = scope_of(scope);
    let name = name.to_string();
    errors::check(py, py.detach(move || rt().deregister(family, &name, scope.as_ref())))
}

/// Waits until every event emitted so far has been delivered; `False` on timeout.
#[pyfunction]
#[pyo3(signature = (timeout=30.0))]
fn flush(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    let t = self::timeout(timeout);
    errors::check(py, py.detach(move || rt().flush(t)))
}

/// Flushes, stops delivery; afterwards everything that emits or registers is `already_shutdown`.
#[pyfunction]
#[pyo3(signature = (timeout=30.0))]
fn shutdown(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    let t = self::timeout(timeout);
    errors::check(py, py.detach(move || rt().shutdown(t)))
}

#[pyfunction]
fn is_shutdown() -> bool {
    rt().is_shutdown()
}

/// Delivery counters of the global runtime.
#[pyfunction]
fn diagnostics(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let d = rt().diagnostics();
    let out = PyDict::new(py);
    out.set_item("delivered_events", d.delivered_events)?;
    out.set_item("dropped_events", d.dropped_events)?;
    out.set_item("subscriber_failures", d.subscriber_failures)?;
    out.set_item("middleware_failures", d.middleware_failures)?;
    out.set_item("queued", d.queued)?;
    Ok(out.unbind())
}

/// Creates the global runtime with these settings (before first use).
#[pyfunction]
#[pyo3(signature = (*, queue_capacity=65536, overflow="block"))]
fn configure(py: Python<'_>, queue_capacity: usize, overflow: &str) -> PyResult<()> {
    let overflow = errors::check(py, baton::OverflowPolicy::parse(overflow))?;
    errors::check(py, Runtime::init_global(RuntimeConfig { queue_capacity, overflow }).map(|_| ()))
}

/// A managed tool call through the core's async pipeline, as a `Pending` to drive.
fn tool_async_pending(
    py: Python<'_>,
    s: &baton::Stack,
    name: &str,
    args: &Bound<'_, PyAny>,
    callback: Py<PyAny>,
    o: ToolOptions,
) -> PyResult<Pending> {
    let args = convert::to_value(args, "args")?;
    let (s, name) = (s.clone(), name.to_string());
    let fut = host::emitting(py, move || s.tool_async(&name, args, async_callback(callback), o));
    Ok(Pending::new(async move { fut.await.map(Out::Value) }))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Plugin documents may enable OpenTelemetry export and https stream sinks.
    baton_otel::install();
    // With mimalloc (above), a free from the dispatcher is cheap: let it free what it delivered.
    baton::set_free_on(baton::FreeOn::Dispatcher);
    m.add_class::<PyStack>()?;
    m.add_class::<PyScope>()?;
    m.add_class::<PyCallHandle>()?;
    m.add_class::<Pending>()?;
    m.add_class::<stream::PyLlmStream>()?;
    m.add_class::<stream::PyChunks>()?;
    m.add_class::<mw::PyCallInfo>()?;
    m.add_class::<mw::PyCallContext>()?;
    m.add_class::<mw::PyEventInfo>()?;
    m.add_class::<mw::PyEvent>()?;
    m.add_function(wrap_pyfunction!(native::set_enabled, m)?)?;
    m.add_class::<mw::PyNext>()?;
    m.add_class::<mw::PyAsyncNext>()?;
    m.add_function(wrap_pyfunction!(new_stack, m)?)?;
    m.add_function(wrap_pyfunction!(stack_from_propagation, m)?)?;
    m.add_function(wrap_pyfunction!(register, m)?)?;
    m.add_function(wrap_pyfunction!(deregister, m)?)?;
    m.add_function(wrap_pyfunction!(flush, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(is_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(diagnostics, m)?)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    plugins::add(m)?;
    facade::add(m)?;
    codec::add(m)?;
    m.add("ERROR_KINDS", ErrorKind::ALL.map(|k| k.as_str()).to_vec())?;
    m.add("FAMILIES", Family::ALL.map(|f| f.as_str()).to_vec())?;
    Ok(())
}
