//! Host-run tool calls ([`baton::EnteredCall`]): when no middleware sees a call's values, the
//! Python objects pass through untouched and only the events get JSON text, written
//! straight from them ([`crate::json`]).
//!
//! These paths keep the GIL while the core emits (a short, non-blocking push onto the
//! delivery queue) instead of releasing it around each step: every release lets the delivery
//! thread take the GIL for a batch while the caller waits. The one case where emitting can
//! wait — the `block` policy with a (nearly) full queue — releases it, since delivering to a
//! Python subscriber, which is what makes room, needs the GIL.

use baton::{EnteredCall, OverflowPolicy, Stack, ToolOptions};
use pyo3::prelude::*;

use crate::{bridge, errors, json, rt};

/// Room kept in the queue before emitting with the GIL held: events emitted meanwhile by
/// threads that do not hold it (Rust code, or Python code inside Baton's own GIL-free
/// sections) can use at most this much.
const MARGIN: u64 = 1024;

/// True when emitting now could wait for the delivery thread (see the module docs).
pub fn may_block() -> bool {
    let rt = rt();
    let config = rt.config();
    config.overflow == OverflowPolicy::Block && rt.diagnostics().queued + MARGIN >= config.queue_capacity as u64
}

/// Runs `f` (which emits) with the GIL held, or released when emitting could wait.
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
