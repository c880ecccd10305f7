//! Trampolines: Python functions as core middleware and subscribers, and the objects those
//! functions receive (`CallInfo`, `CallContext`, `EventInfo`, `next`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use baton::{
    AsyncNext, CallCtx, CallInfo, CallKind, Decision, Error, Event, EventFields, EventInfo, EventKind, ExecutionIntercept, Family,
    Guardrail, Middleware, Next, RequestIntercept, ScopeCategory, Subscriber,
};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use serde_json::{Map, Value};

use crate::bridge::{self, Out, Pending};
use crate::{convert, errors, stream};

fn uuid_str(u: Option<baton::Uuid>) -> Option<String> {
    u.map(|u| u.to_string())
}

/// What middleware knows about a call.
#[pyclass(frozen, name = "CallInfo", module = "baton._native")]
pub struct PyCallInfo {
    info: CallInfo,
}

#[pymethods]
impl PyCallInfo {
    /// `"tool"` or `"llm"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.info.kind {
            CallKind::Tool => "tool",
            CallKind::Llm => "llm",
        }
    }
    #[getter]
    fn name(&self) -> &str {
        &self.info.name
    }
    #[getter]
    fn tool_call_id(&self) -> Option<&str> {
        self.info.tool_call_id.as_deref()
    }
    #[getter]
    fn model_name(&self) -> Option<&str> {
        self.info.model_name.as_deref()
    }
    #[getter]
    fn parent_uuid(&self) -> Option<String> {
        uuid_str(self.info.parent_uuid)
    }
    #[getter]
    fn uuid(&self) -> Option<String> {
        uuid_str(self.info.uuid)
    }
    fn __repr__(&self) -> String {
        format!("CallInfo(kind={:?}, name={:?})", self.kind(), &*self.info.name)
    }
}

/// The context of an execution or stream intercept: the call, and a place to queue marks.
#[pyclass(frozen, name = "CallContext", module = "baton._native")]
pub struct PyCallContext {
    ctx: CallCtx,
}

#[pymethods]
impl PyCallContext {
    #[getter]
    fn kind(&self) -> &'static str {
        match self.ctx.info().kind {
            CallKind::Tool => "tool",
            CallKind::Llm => "llm",
        }
    }
    #[getter]
    fn name(&self) -> &str {
        &self.ctx.info().name
    }
    #[getter]
    fn tool_call_id(&self) -> Option<&str> {
        self.ctx.info().tool_call_id.as_deref()
    }
    #[getter]
    fn model_name(&self) -> Option<&str> {
        self.ctx.info().model_name.as_deref()
    }
    #[getter]
    fn parent_uuid(&self) -> Option<String> {
        uuid_str(self.ctx.info().parent_uuid)
    }
    #[getter]
    fn uuid(&self) -> Option<String> {
        uuid_str(self.ctx.info().uuid)
    }
    /// Queues a mark, emitted right after the call's end event, parented under the call.
    #[pyo3(signature = (name, data=None, metadata=None))]
    fn queue_mark(&self, name: &str, data: Option<&Bound<'_, PyAny>>, metadata: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let data = match data {
            Some(d) => convert::to_value(d, "data")?,
            None => Value::Null,
        };
        let metadata = convert::to_map(metadata, "metadata")?;
        self.ctx.queue_mark(name, data, metadata);
        Ok(())
    }
}

/// What event middleware knows about an event.
#[pyclass(frozen, name = "EventInfo", module = "baton._native")]
pub struct PyEventInfo {
    info: EventInfo,
}

#[pymethods]
impl PyEventInfo {
    /// `"scope"` or `"mark"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.info.kind {
            EventKind::Mark => "mark",
            EventKind::Scope(_) => "scope",
        }
    }
    /// `"start"` / `"end"` for scope events, `None` for marks.
    #[getter]
    fn scope_category(&self) -> Option<&'static str> {
        match self.info.kind {
            EventKind::Mark => None,
            EventKind::Scope(ScopeCategory::Start) => Some("start"),
            EventKind::Scope(ScopeCategory::End) => Some("end"),
        }
    }
    #[getter]
    fn uuid(&self) -> String {
        self.info.uuid.to_string()
    }
    #[getter]
    fn parent_uuid(&self) -> Option<String> {
        uuid_str(self.info.parent_uuid)
    }
    #[getter]
    fn name(&self) -> &str {
        &self.info.name
    }
    #[getter]
    fn category(&self) -> Option<&str> {
        self.info.category.as_ref().map(|c| c.as_str())
    }
}

struct SendPtr(usize);
unsafe impl Send for SendPtr {}

/// `next` of a synchronous execution intercept; valid only while the intercept runs.
#[pyclass(frozen, name = "Next", module = "baton._native")]
pub struct PyNext {
    ptr: AtomicUsize,
}

#[pymethods]
impl PyNext {
    fn __call__(&self, py: Python<'_>, input: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let p = self.ptr.load(Ordering::Acquire);
        if p == 0 {
            return Err(errors::new_err(py, baton::ErrorKind::InvalidState, "next() was called after its execution intercept returned"));
        }
        let v = convert::to_value(input, "input")?;
        let p = SendPtr(p);
        let r = crate::host::emitting(py, move || {
            let p = p;
            // SAFETY: `ptr` is cleared before the `next` it points to goes out of scope.
            let f: &Next<'_> = unsafe { &*(p.0 as *const Next<'_>) };
            f(v)
        });
        match r {
            Ok(v) => convert::to_py(py, &v),
            Err(e) => Err(errors::to_py(py, &e)),
        }
    }
}

/// `next` of an async execution intercept: `await next(input)`.
#[pyclass(frozen, name = "AsyncNext", module = "baton._native")]
pub struct PyAsyncNext {
    next: AsyncNext,
    /// The intercept's input as it was handed over (object and value): `next` called with
    /// that object, unchanged, reuses the value instead of converting the object again.
    passed: std::sync::Mutex<Option<(Py<PyAny>, Value)>>,
}

#[pymethods]
impl PyAsyncNext {
    /// The call below the intercept, as an awaitable.
    fn __call__(&self, input: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = input.py();
        let passed = self.passed.lock().unwrap_or_else(|p| p.into_inner()).take();
        let v = match passed {
            Some((obj, v)) => convert::to_value_reusing(input, obj.bind(py), v, "input").map_err(|e| errors::to_py(py, &e))?,
            None => convert::to_value(input, "input")?,
        };
        let fut = self.next.call(v);
        bridge::awaitable(py, Pending::new(async move { fut.await.map(Out::Value) }))
    }
}

fn decision(name: &str, r: &Bound<'_, PyAny>) -> baton::Result<Decision> {
    if r.is_none() {
        return Ok(Decision::Allow);
    }
    if let Ok(b) = r.extract::<bool>() {
        return Ok(if b { Decision::Allow } else { Decision::Reject(format!("rejected by guardrail '{name}'")) });
    }
    if let Ok(s) = r.cast::<PyString>() {
        return Ok(Decision::Reject(s.to_cow().map(|c| c.into_owned()).unwrap_or_default()));
    }
    Err(Error::invalid_argument(format!(
        "guardrail '{name}' returned {}: expected True/None (allow), False or a reason string (reject)",
        r.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

fn info_obj(py: Python<'_>, info: &CallInfo) -> PyResult<Py<PyCallInfo>> {
    Py::new(py, PyCallInfo { info: info.clone() })
}

fn guardrail(name: Arc<str>, f: Py<PyAny>, is_async: bool) -> Guardrail {
    if is_async {
        let f = Arc::new(f);
        Guardrail::Async(Arc::new(move |info: CallInfo, input: Value| {
            let (f, name) = (f.clone(), name.clone());
            Box::pin(async move {
                let f = Python::attach(|py| f.clone_ref(py));
                let r = bridge::call_maybe_async(true, f, move |py| {
                    Ok(PyTuple::new(py, [Py::new(py, PyCallInfo { info })?.into_any(), convert::to_py(py, &input)?])?.unbind())
                })
                .await?;
                Python::attach(|py| decision(&name, r.bind(py)))
            })
        }))
    } else {
        Guardrail::Sync(Arc::new(move |info: &CallInfo, input: &Value| {
            Python::attach(|py| {
                let r = (|| f.bind(py).call1((info_obj(py, info)?, convert::to_py(py, input)?)))().and_then(bridge::resolve_sync);
                match r {
                    Ok(r) => decision(&name, &r),
                    Err(e) => Err(errors::from_py(py, e)),
                }
            })
        }))
    }
}

fn request_intercept(f: Py<PyAny>, is_async: bool) -> RequestIntercept {
    if is_async {
        let f = Arc::new(f);
        RequestIntercept::Async(Arc::new(move |info: CallInfo, input: Value| {
            let f = f.clone();
            Box::pin(async move {
                let (f, arg) = Python::attach(|py| -> baton::Result<_> {
                    Ok((f.clone_ref(py), convert::to_py(py, &input).map_err(|e| errors::from_py(py, e))?))
                })?;
                let passed = Python::attach(|py| arg.clone_ref(py));
                let r = bridge::call_maybe_async(true, f, move |py| {
                    Ok(PyTuple::new(py, [Py::new(py, PyCallInfo { info })?.into_any(), arg])?.unbind())
                })
                .await?;
                Python::attach(|py| convert::to_value_reusing(r.bind(py), passed.bind(py), input, "request intercept result"))
            })
        }))
    } else {
        RequestIntercept::Sync(Arc::new(move |info: &CallInfo, input: Value| {
            Python::attach(|py| {
                let arg = match convert::to_py(py, &input) {
                    Ok(a) => a.into_bound(py),
                    Err(e) => return Err(errors::from_py(py, e)),
                };
                match (|| f.bind(py).call1((info_obj(py, info)?, &arg)))().and_then(bridge::resolve_sync) {
                    Ok(r) => convert::to_value_reusing(&r, &arg, input, "request intercept result"),
                    Err(e) => Err(errors::from_py(py, e)),
                }
            })
        }))
    }
}

fn execution_intercept(f: Py<PyAny>, is_async: bool) -> ExecutionIntercept {
    if is_async {
        let f = Arc::new(f);
        ExecutionIntercept::Async(Arc::new(move |ctx: CallCtx, input: Value, next: AsyncNext| {
            let f = f.clone();
            Box::pin(async move {
                let f = Python::attach(|py| f.clone_ref(py));
                let r = bridge::call_maybe_async(true, f, move |py| {
                    let c = Py::new(py, PyCallContext { ctx })?.into_any();
                    let arg = convert::to_py(py, &input)?;
                    let passed = std::sync::Mutex::new(Some((arg.clone_ref(py), input)));
                    let n = Py::new(py, PyAsyncNext { next, passed })?.into_any();
                    Ok(PyTuple::new(py, [c, arg, n])?.unbind())
                })
                .await?;
                Python::attach(|py| convert::to_value_core(r.bind(py), "execution intercept result"))
            })
        }))
    } else {
        ExecutionIntercept::Sync(Arc::new(move |ctx: &CallCtx, input: Value, next: Next<'_>| {
            let next_ref: Next<'_> = next;
            let ptr = &next_ref as *const Next<'_> as usize;
            Python::attach(|py| {
                let n = match Py::new(py, PyNext { ptr: AtomicUsize::new(ptr) }) {
                    Ok(n) => n,
                    Err(e) => return Err(errors::from_py(py, e)),
                };
                let r = (|| f.bind(py).call1((PyCallContext { ctx: ctx.clone() }, convert::to_py(py, &input)?, n.clone_ref(py))))()
                    .and_then(bridge::resolve_sync);
                n.get().ptr.store(0, Ordering::Release);
                match r {
                    Ok(v) => convert::to_value_core(&v, "execution intercept result"),
                    Err(e) => Err(errors::from_py(py, e)),
                }
            })
        }))
    }
}

fn stream_intercept(f: Py<PyAny>) -> baton::StreamIntercept {
    Arc::new(move |ctx: &CallCtx, inner: baton::ChunkStream| {
        Python::attach(|py| {
            let r = f.bind(py).call1((PyCallContext { ctx: ctx.clone() }, stream::PyChunks::new(inner)));
            match r {
                Ok(obj) => stream::to_chunk_stream(&obj),
                Err(e) => Err(errors::from_py(py, e)),
            }
        })
    })
}

fn payload_sanitizer(f: Py<PyAny>) -> baton::PayloadSanitizer {
    Arc::new(move |info: &CallInfo, v: Value| {
        Python::attach(|py| {
            let r = (|| f.bind(py).call1((info_obj(py, info)?, convert::to_py(py, &v)?)))();
            match r {
                Ok(r) if r.is_none() => Ok(None),
                Ok(r) => convert::to_value_core(&r, "sanitizer result").map(Some),
                Err(e) => Err(errors::from_py(py, e)),
            }
        })
    })
}

fn event_sanitizer(f: Py<PyAny>) -> baton::EventSanitizer {
    Arc::new(move |info: &EventInfo, fields: EventFields| {
        Python::attach(|py| {
            let r = (|| {
                f.bind(py).call1((
                    PyEventInfo { info: info.clone() },
                    convert::to_py(py, &fields.data)?,
                    convert::to_py(py, &Value::Object(fields.metadata))?,
                ))
            })();
            match r {
                Ok(r) if r.is_none() => Ok(None),
                Ok(r) => {
                    let (data, metadata): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                        r.extract().map_err(|_| Error::invalid_argument("event sanitizer: expected (data, metadata) or None"))?;
                    let data = convert::to_value_core(&data, "data")?;
                    let metadata = match convert::to_value_core(&metadata, "metadata")? {
                        Value::Object(m) => m,
                        Value::Null => Map::new(),
                        _ => return Err(Error::invalid_argument("event sanitizer: metadata must be a dict")),
                    };
                    Ok(Some(EventFields { data, metadata }))
                }
                Err(e) => Err(errors::from_py(py, e)),
            }
        })
    })
}

fn metadata_injector(f: Py<PyAny>) -> baton::MetadataInjector {
    Arc::new(move |info: &EventInfo| {
        Python::attach(|py| match f.bind(py).call1((PyEventInfo { info: info.clone() },)) {
            Ok(r) if r.is_none() => Ok(Map::new()),
            Ok(r) => match convert::to_value_core(&r, "injected metadata")? {
                Value::Object(m) => Ok(m),
                _ => Err(Error::invalid_argument("metadata injector: expected a dict")),
            },
            Err(e) => Err(errors::from_py(py, e)),
        })
    })
}

/// The GIL, held by the delivering thread across a batch of events (see [`hold_gil`]).
struct Held {
    state: pyo3::ffi::PyGILState_STATE,
    since: std::time::Instant,
    /// Events delivered since the clock was last read.
    events: u32,
}

/// Events between two reads of the clock while the GIL is held (a read costs about as much
/// as the rest of a delivery's bookkeeping).
const CLOCK_EVERY: u32 = 16;

thread_local! {
    static HELD: std::cell::RefCell<Option<Held>> = const { std::cell::RefCell::new(None) };
}

/// Longest the delivering thread keeps the GIL before letting other threads run.
const HOLD_MAX: std::time::Duration = std::time::Duration::from_millis(2);

/// Takes the GIL for the delivering thread unless it already holds it. Taking the GIL once per
/// event makes the dispatcher and the Python thread hand it back and forth for every event;
/// held across a batch (released by the core's batch hook, or after `HOLD_MAX`), delivery
/// to Python subscribers costs one hand-off per batch.
fn hold_gil() {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_none() {
            // SAFETY: paired with PyGILState_Release in `release_gil`, on this thread.
            let state = unsafe { pyo3::ffi::PyGILState_Ensure() };
            *h = Some(Held { state, since: std::time::Instant::now(), events: 0 });
        }
    })
}

fn release_gil(only_if_older: Option<std::time::Duration>) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(held) = h.as_mut() {
            if let Some(max) = only_if_older {
                held.events += 1;
                if held.events < CLOCK_EVERY {
                    return;
                }
                held.events = 0;
                if held.since.elapsed() < max {
                    return;
                }
            }
            let held = h.take().expect("checked");
            // SAFETY: the state came from PyGILState_Ensure on this thread.
            unsafe { pyo3::ffi::PyGILState_Release(held.state) };
        }
    })
}

fn install_batch_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        baton::set_batch_hook(baton::Runtime::global(), Arc::new(|| release_gil(None)));
    });
}

/// The ATOF dict of an event, built directly (the same fields, in the same cases, as the
/// core's `Serialize for Event`, which `to_json` uses), with interned keys: this runs once per
/// event per Python subscriber, on the delivery thread.
fn event_to_py<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    use pyo3::intern;
    use pyo3::types::{PyDict, PyList};
    let d = PyDict::new(py);
    let uuid = |u: &baton::Uuid| u.to_string();
    match e.kind {
        EventKind::Scope(sc) => {
            d.set_item(intern!(py, "kind"), intern!(py, "scope"))?;
            d.set_item(
                intern!(py, "scope_category"),
                match sc {
                    ScopeCategory::Start => intern!(py, "start"),
                    ScopeCategory::End => intern!(py, "end"),
                },
            )?;
        }
        EventKind::Mark => d.set_item(intern!(py, "kind"), intern!(py, "mark"))?,
    }
    d.set_item(intern!(py, "atof_version"), intern!(py, "0.1"))?;
    d.set_item(intern!(py, "uuid"), uuid(&e.uuid))?;
    d.set_item(intern!(py, "parent_uuid"), e.parent_uuid.as_ref().map(uuid))?;
    d.set_item(intern!(py, "timestamp"), e.timestamp())?;
    d.set_item(intern!(py, "name"), &*e.name)?;
    if matches!(e.kind, EventKind::Scope(_)) {
        d.set_item(intern!(py, "category"), e.category.as_ref().map(|c| c.as_str()).unwrap_or("unknown"))?;
        d.set_item(intern!(py, "attributes"), PyList::new(py, e.attributes.iter())?)?;
        let profile = match &e.category_profile {
            Some(p) => convert::to_py(py, p)?,
            None => py.None(),
        };
        d.set_item(intern!(py, "category_profile"), profile)?;
    } else {
        if let Some(c) = &e.category {
            d.set_item(intern!(py, "category"), c.as_str())?;
        }
        if let Some(p) = &e.category_profile {
            d.set_item(intern!(py, "category_profile"), convert::to_py(py, p)?)?;
        }
    }
    let data = if e.data.is_null() { py.None() } else { convert::to_py(py, &e.data.to_value())? };
    d.set_item(intern!(py, "data"), data)?;
    let schema = match &e.data_schema {
        Some(s) => {
            let sd = PyDict::new(py);
            sd.set_item(intern!(py, "name"), &s.name)?;
            sd.set_item(intern!(py, "version"), &s.version)?;
            sd.into_any().unbind()
        }
        None => py.None(),
    };
    d.set_item(intern!(py, "data_schema"), schema)?;
    let meta = PyDict::new(py);
    for (k, v) in &e.metadata {
        meta.set_item(k, convert::to_py(py, v)?)?;
    }
    for (k, v) in e.typed_metadata() {
        meta.set_item(k, convert::to_py(py, &v)?)?;
    }
    d.set_item(intern!(py, "metadata"), meta)?;
    Ok(d)
}

/// An event as a subscriber receives it: a read-only mapping with the ATOF fields, built
/// only when read (`event["name"]`, `event.get(...)`, `to_dict()`); `name`, `kind`, `uuid`,
/// `parent_uuid` and `scope_category` are also attributes that build nothing.
///
/// The delivery thread reuses an `Event` object nobody kept for the next event (not frozen:
/// it swaps the event in and out while it alone holds the object).
#[pyclass(freelist = 256, name = "Event", module = "baton._native")]
pub struct PyEvent {
    /// The event; `None` only while the object is parked for reuse (unreachable from Python).
    e: Option<Arc<Event>>,
    dict: pyo3::sync::PyOnceLock<Py<pyo3::types::PyDict>>,
}

impl PyEvent {
    fn ev(&self) -> &Event {
        self.e.as_deref().expect("a delivered event")
    }
    fn dict<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, pyo3::types::PyDict>> {
        if self.dict.get(py).is_none() {
            let d = event_to_py(py, self.ev())?.unbind();
            let _ = self.dict.set(py, d);
        }
        Ok(self.dict.get(py).expect("set above").bind(py))
    }
}

#[pymethods]
impl PyEvent {
    #[getter]
    fn name(&self) -> &str {
        &self.ev().name
    }
    /// `"scope"` or `"mark"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.ev().kind {
            EventKind::Mark => "mark",
            EventKind::Scope(_) => "scope",
        }
    }
    #[getter]
    fn scope_category(&self) -> Option<&'static str> {
        match self.ev().kind {
            EventKind::Mark => None,
            EventKind::Scope(sc) => Some(sc.as_str()),
        }
    }
    #[getter]
    fn uuid(&self) -> String {
        self.ev().uuid.to_string()
    }
    #[getter]
    fn parent_uuid(&self) -> Option<String> {
        uuid_str(self.ev().parent_uuid)
    }
    /// The ATOF object as a dict (built once, then shared by later reads).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyDict>> {
        Ok(self.dict(py)?.clone().unbind())
    }
    /// The ATOF JSON text (one JSONL line without the newline).
    fn to_json(&self) -> String {
        self.ev().to_json_string()
    }
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.as_any().get_item(key)
    }
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>, default: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        match self.dict(py)?.get_item(key)? {
            Some(v) => Ok(v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }
    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.dict(py)?.contains(key)
    }
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.dict(py)?.len())
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        self.dict(py)?.as_any().try_iter()
    }
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.call_method0("keys")
    }
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.call_method0("values")
    }
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.dict(py)?.call_method0("items")
    }
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let mine = self.dict(py)?;
        match other.cast::<PyEvent>() {
            Ok(o) => mine.as_any().eq(o.borrow().dict(py)?),
            Err(_) => mine.as_any().eq(other),
        }
    }
    fn __repr__(&self) -> String {
        format!("Event({})", self.ev().to_json_string())
    }
}

/// A Python function as a subscriber: receives each event as a `baton.Event` (a lazy,
/// read-only mapping of the ATOF fields).
/// A Python subscriber: the function, its reusable argument tuple, and a parked `Event`
/// object to deliver the next event in.
struct PySubscriber(Py<PyAny>, std::sync::Mutex<Option<Py<PyTuple>>>, std::sync::Mutex<Option<Py<PyEvent>>>);

impl PySubscriber {
    /// Calls the function with `event`, reusing one argument tuple across calls (a call per
    /// event: the tuple's allocation is a good part of the crossing's cost). A tuple the
    /// function kept (`*args`) is left to it and a new one made.
    fn call(&self, py: Python<'_>, event: Py<PyEvent>) -> PyResult<()> {
        let mut slot = self.1.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: reading the refcount of a live object.
        let reusable = slot.as_ref().is_some_and(|t| unsafe { pyo3::ffi::Py_REFCNT(t.as_ptr()) } == 1);
        let args = if reusable { slot.take().expect("checked") } else { PyTuple::new(py, [py.None()])?.unbind() };
        // SAFETY: `args` is a 1-tuple only this code holds (refcount 1): setting its item
        // (stealing `event`, releasing the previous item) is what PyTuple_SetItem allows.
        unsafe { pyo3::ffi::PyTuple_SetItem(args.as_ptr(), 0, event.into_ptr()) };
        // SAFETY: plain call with a tuple and no keywords; a new reference or NULL.
        let r = unsafe { pyo3::ffi::PyObject_Call(self.0.as_ptr(), args.as_ptr(), std::ptr::null_mut()) };
        let out = if r.is_null() {
            Err(PyErr::fetch(py))
        } else {
            // SAFETY: a new reference we own.
            unsafe { pyo3::ffi::Py_DecRef(r) };
            Ok(())
        };
        // SAFETY: reading the refcount of a live object.
        if unsafe { pyo3::ffi::Py_REFCNT(args.as_ptr()) } == 1 {
            // SAFETY: as above; drops our event now rather than at the next call.
            unsafe { pyo3::ffi::PyTuple_SetItem(args.as_ptr(), 0, py.None().into_ptr()) };
            *slot = Some(args);
        }
        out
    }
}

impl Subscriber for PySubscriber {
    fn on_event(&self, event: &Event) -> baton::Result<()> {
        self.on_shared_event(&Arc::new(event.clone()))
    }
    /// The `baton.Event` shares the queued event (no copy of it per delivery).
    fn on_shared_event(&self, event: &Arc<Event>) -> baton::Result<()> {
        hold_gil();
        // SAFETY: `hold_gil` holds the GIL for this thread (PyGILState_Ensure) until
        // `release_gil`. Not telling pyo3 saves a nested GIL-state round trip per event; a
        // `Py` dropped here (rarely: a kept event, an error) is released at pyo3's next entry.
        let py = unsafe { Python::assume_attached() };
        let out = (|| {
            let parked = self.2.lock().unwrap_or_else(|p| p.into_inner()).take();
            let d = match parked {
                Some(d) => {
                    if let Ok(mut m) = d.bind(py).try_borrow_mut() {
                        m.e = Some(event.clone());
                    }
                    d
                }
                None => Py::new(py, PyEvent { e: Some(event.clone()), dict: pyo3::sync::PyOnceLock::new() })
                    .map_err(|e| errors::from_py(py, e))?,
            };
            let out = self.call(py, d.clone_ref(py)).map_err(|e| errors::from_py(py, e));
            // Nobody kept it: park it for the next event (without this event, which must be
            // released here as if the object had gone, and without its dict).
            // SAFETY: reading the refcount of a live object.
            if unsafe { pyo3::ffi::Py_REFCNT(d.as_ptr()) } == 1 {
                if let Ok(mut m) = d.bind(py).try_borrow_mut() {
                    m.e = None;
                    m.dict = pyo3::sync::PyOnceLock::new();
                    drop(m);
                    *self.2.lock().unwrap_or_else(|p| p.into_inner()) = Some(d);
                }
            }
            out
        })();
        release_gil(Some(HOLD_MAX));
        out
    }
    fn close(&self) -> baton::Result<()> {
        release_gil(None);
        Ok(())
    }
}

/// Builds the middleware of `family` around a Python function.
pub fn build(family: Family, name: &str, f: Py<PyAny>, is_async: bool) -> baton::Result<Middleware> {
    let sync_only = |what: &str| {
        if is_async {
            Err(Error::invalid_argument(format!("{}: {what} must be a plain function, not a coroutine function", family.as_str())))
        } else {
            Ok(())
        }
    };
    Ok(match family {
        Family::ToolConditionalExecution => Middleware::ToolConditionalExecution(guardrail(name.into(), f, is_async)),
        Family::LlmConditionalExecution => Middleware::LlmConditionalExecution(guardrail(name.into(), f, is_async)),
        Family::ToolRequestIntercept => Middleware::ToolRequestIntercept(request_intercept(f, is_async)),
        Family::LlmRequestIntercept => Middleware::LlmRequestIntercept(request_intercept(f, is_async)),
        Family::ToolExecutionIntercept => Middleware::ToolExecutionIntercept(execution_intercept(f, is_async)),
        Family::LlmExecutionIntercept => Middleware::LlmExecutionIntercept(execution_intercept(f, is_async)),
        Family::LlmStreamExecutionIntercept => {
            sync_only("a stream intercept (it may return an async generator)")?;
            Middleware::LlmStreamExecutionIntercept(stream_intercept(f))
        }
        Family::ToolSanitizeRequest => {
            sync_only("a sanitizer")?;
            Middleware::ToolSanitizeRequest(payload_sanitizer(f))
        }
        Family::ToolSanitizeResponse => {
            sync_only("a sanitizer")?;
            Middleware::ToolSanitizeResponse(payload_sanitizer(f))
        }
        Family::LlmSanitizeRequest => {
            sync_only("a sanitizer")?;
            Middleware::LlmSanitizeRequest(payload_sanitizer(f))
        }
        Family::LlmSanitizeResponse => {
            sync_only("a sanitizer")?;
            Middleware::LlmSanitizeResponse(payload_sanitizer(f))
        }
        Family::MarkSanitize => {
            sync_only("an event sanitizer")?;
            Middleware::MarkSanitize(event_sanitizer(f))
        }
        Family::ScopeSanitizeStart => {
            sync_only("an event sanitizer")?;
            Middleware::ScopeSanitizeStart(event_sanitizer(f))
        }
        Family::ScopeSanitizeEnd => {
            sync_only("an event sanitizer")?;
            Middleware::ScopeSanitizeEnd(event_sanitizer(f))
        }
        Family::EventMetadataInjector => {
            sync_only("a metadata injector")?;
            Middleware::EventMetadataInjector(metadata_injector(f))
        }
        Family::Subscriber => {
            sync_only("a subscriber")?;
            install_batch_hook();
            Middleware::Subscriber(Arc::new(PySubscriber(f, std::sync::Mutex::new(None), std::sync::Mutex::new(None))))
        }
    })
}
