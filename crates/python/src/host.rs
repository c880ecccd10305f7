//! Host-run tool calls ([`baton::EnteredCall`]): when no middleware sees a call's values, the
//! Python objects pass through untouched and only the events get JSON text, written
//! straight from them ([`crate::json`]).
//!
//! Also where the binding decides whether to release the GIL around the core's work on the
//! caller's thread ([`emitting`]). That work is short bookkeeping — scopes, events pushed
//! onto the delivery queue — plus the middleware, which the binding itself registered as
//! Python functions (they need the GIL anyway). Releasing the GIL for it on every call makes
//! every call a potential hand-off to the delivery thread, which costs more than the work.
//! So the GIL stays held, except when the work may wait: with the `block` policy and a
//! (nearly) full queue — delivering to a Python subscriber, which is what makes room, needs
//! the GIL — or once plugins have been initialized, since they may register Rust middleware
//! that takes its time (other Python threads must not wait for it). Waiting calls (`flush`,
//! `shutdown`, registration) always release it.

use std::sync::atomic::{AtomicBool, Ordering};

use baton::{EnteredCall, EnteredStream, LlmOptions, OverflowPolicy, Stack, ToolOptions};
use pyo3::prelude::*;

use crate::{bridge, errors, json, rt};

/// Room kept in the queue before emitting with the GIL held: events emitted meanwhile by
/// threads that do not hold it (Rust code, or Python code inside Baton's own GIL-free
/// sections) can use at most this much.
const MARGIN: u64 = 8192;

static FOREIGN: AtomicBool = AtomicBool::new(false);

/// Plugins were initialized (`true`) or cleared (`false`): see the module docs.
pub fn set_foreign_middleware(on: bool) {
    FOREIGN.store(on, Ordering::Relaxed);
}

/// Calls between two looks at the queue's fill level while it has room (reading it takes
/// the delivery queue's lock, which the delivery thread also takes): a call emits a few
/// events, and `CHECK_EVERY` calls stay far below `MARGIN`. (A queue smaller than `MARGIN`
/// always counts as possibly full: the GIL is then always released.)
const CHECK_EVERY: u32 = 16;

thread_local! {
    /// Calls left before the next look at the queue (0: look now).
    static UNCHECKED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True when core work on the caller's thread may wait (see the module docs).
pub fn may_block() -> bool {
    if FOREIGN.load(Ordering::Relaxed) {
        return true;
    }
    let left = UNCHECKED.get();
    if left > 0 {
        UNCHECKED.set(left - 1);
        return false;
    }
    let rt = rt();
    let config = rt.config();
    let full = config.overflow == OverflowPolicy::Block && rt.diagnostics().queued + MARGIN >= config.queue_capacity as u64;
    if !full {
        UNCHECKED.set(CHECK_EVERY);
    }
    full
}

/// Runs core work `f` with the GIL held, or released when it may wait.
pub fn emitting<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    if may_block() {
        py.detach(f)
    } else {
        f()
    }
}

/// Enters a host-run tool call, or `None` when middleware needs the values.
pub fn enter_tool(py: Python<'_>, s: &Stack, name: &str, args: &Bound<'_, PyAny>, o: ToolOptions) -> PyResult<Option<EnteredCall>> {
    if may_block() {
        let p = json::payload(args).map_err(|e| e.into_py(py, "args"))?;
        return errors::check(py, py.detach(|| s.enter_tool(name, || Ok(p), o)));
    }
    errors::check(py, s.enter_tool(name, || json::payload(args).map_err(|e| e.into_core("args")), o))
}

/// Enters a host-run (buffered) LLM call, or `None` when middleware or a codec needs the
/// values. With the call, the request its callback gets when the core's check changed it
/// (`headers` added; `None`: the request as given).
pub fn enter_llm(
    py: Python<'_>,
    s: &Stack,
    name: &str,
    request: serde_json::Value,
    o: LlmOptions,
) -> PyResult<Option<(EnteredCall, Option<serde_json::Value>)>> {
    errors::check(py, emitting(py, || s.enter_llm(name, request, o)))
}

/// The request a host-run LLM call's callback gets: the one the core's check made (headers
/// added), else the caller's own object, as the value path would hand on.
pub fn llm_request<'py>(py: Python<'py>, request: &Bound<'py, PyAny>, checked: Option<serde_json::Value>) -> PyResult<Bound<'py, PyAny>> {
    match checked {
        Some(v) => Ok(crate::convert::to_py(py, &v)?.into_bound(py)),
        None => Ok(request.clone()),
    }
}

/// Enters a host-run LLM stream, or `None` when middleware or a codec needs the values.
pub fn enter_llm_stream(
    py: Python<'_>,
    s: &Stack,
    name: &str,
    request: &serde_json::Value,
    o: &LlmOptions,
) -> PyResult<Option<EnteredStream>> {
    let (request, o) = (request.clone(), o.clone());
    errors::check(py, emitting(py, || s.enter_llm_stream(name, request, o)))
}

/// The request a stream callback receives: the caller's own object, or a copy with empty
/// `headers` when it had none (as the core hands it to callbacks).
pub fn callback_request<'py>(request: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = request.py();
    if let Ok(d) = request.cast::<pyo3::types::PyDict>() {
        let headers = d.get_item(pyo3::intern!(py, "headers"))?;
        if headers.is_none_or(|h| h.is_none()) {
            let copy = d.copy()?;
            copy.set_item(pyo3::intern!(py, "headers"), pyo3::types::PyDict::new(py))?;
            return Ok(copy.into_any());
        }
    }
    Ok(request.clone())
}

/// Ends a host-run call with the callback's outcome; returns what the caller gets.
pub fn exit(py: Python<'_>, h: EnteredCall, outcome: PyResult<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    let err = match outcome {
        Ok(r) => match json::payload(&r) {
            Ok(p) => {
                emitting(py, || h.exit(Ok(p)));
                return Ok(r.unbind());
            }
            Err(e) => e.into_core("result"),
        },
        Err(e) => errors::from_py(py, e),
    };
    emitting(py, || h.exit(Err(&err)));
    Err(errors::to_py(py, &err))
}

/// Runs the callback of a host-run sync call and ends the call.
pub fn run_sync(py: Python<'_>, h: EnteredCall, args: &Bound<'_, PyAny>, callback: &Py<PyAny>) -> PyResult<Py<PyAny>> {
    let r = callback.bind(py).call1((args,)).and_then(bridge::resolve_sync);
    exit(py, h, r)
}

/// A host-run call entered from Python (`baton.tool_async`): the package runs (and awaits)
/// the callback itself, then ends the call with `exit(result)`, `fail(exception)` or
/// `cancel()`. Dropped without any of them, the call ends as cancelled.
#[pyclass(frozen, name = "HostCall", module = "baton._native")]
pub struct PyHostCall {
    call: std::sync::Mutex<Option<EnteredCall>>,
}

impl PyHostCall {
    pub fn new(h: EnteredCall) -> PyHostCall {
        PyHostCall { call: std::sync::Mutex::new(Some(h)) }
    }
    fn take(&self, py: Python<'_>) -> PyResult<EnteredCall> {
        self.call
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| errors::new_err(py, baton::ErrorKind::InvalidState, "this call has already ended"))
    }
}

#[pymethods]
impl PyHostCall {
    /// Ends the call with the callback's result and returns it (`InvalidArgumentError`, after
    /// ending the call with that error, when the result is not JSON).
    fn exit(&self, py: Python<'_>, result: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let h = self.take(py)?;
        exit(py, h, Ok(result))
    }
    /// Ends the call with the exception the callback raised (the caller re-raises it).
    fn fail(&self, py: Python<'_>, exception: Bound<'_, PyAny>) -> PyResult<()> {
        let h = self.take(py)?;
        let err = errors::from_py(py, PyErr::from_value(exception));
        emitting(py, || h.exit(Err(&err)));
        Ok(())
    }
    /// Ends the call as cancelled.
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        let h = self.take(py)?;
        emitting(py, || drop(h));
        Ok(())
    }
}

impl Drop for PyHostCall {
    fn drop(&mut self) {
        let h = self.call.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h {
            Python::attach(|py| emitting(py, || drop(h)));
        }
    }
}
