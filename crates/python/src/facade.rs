//! The hot entry points of the `baton` package (`baton.tool`), in Rust.
//!
//! `baton/__init__.py` keeps the current stack in a `ContextVar` holding `(stack, owner)`,
//! where the owner is the asyncio task or thread that made it (`current_stack()` there). A
//! managed call from Python first looks that up, checks it is not inside middleware, and then
//! calls the stack. Written in Python those steps cost more than the call itself, so the
//! package hands its context variables and helpers to [`install`] and the entry points here
//! take the same steps natively: the same variables, the same owner rule, and the Python
//! `current_stack()` whenever the stack must be created or forked.

use std::os::raw::c_int;

use baton::ErrorKind;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::{convert, errors, host, json, PyScope, PyStack};

extern "C" {
    // Public C API since 3.7 (not in the limited API, exported with this signature by every
    // CPython the binding supports).
    fn PyContextVar_Get(var: *mut ffi::PyObject, default_value: *mut ffi::PyObject, value: *mut *mut ffi::PyObject) -> c_int;
}

struct Facade {
    current: Py<PyAny>,
    in_middleware: Py<PyAny>,
    current_stack: Py<PyAny>,
    handle: Py<PyAny>,
    get_running_loop: Py<PyAny>,
    current_task: Py<PyAny>,
}

static FACADE: PyOnceLock<Facade> = PyOnceLock::new();

fn facade(py: Python<'_>) -> PyResult<&Facade> {
    FACADE.get(py).ok_or_else(|| errors::new_err(py, ErrorKind::Internal, "baton's Python facade is not installed"))
}

/// Called once by `baton/__init__.py` with its context variables and helpers.
#[pyfunction]
fn install_facade(
    py: Python<'_>,
    current: Py<PyAny>,
    in_middleware: Py<PyAny>,
    current_stack: Py<PyAny>,
    handle: Py<PyAny>,
    get_running_loop: Py<PyAny>,
    current_task: Py<PyAny>,
) {
    let _ = FACADE.set(py, Facade { current, in_middleware, current_stack, handle, get_running_loop, current_task });
}

/// The value of a context variable, or `None` when unset.
fn var_get<'py>(py: Python<'py>, var: &Py<PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut out: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `var` is a ContextVar (installed by the package); `out` receives a new reference.
    let rc = unsafe { PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut out) };
    if rc < 0 {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference or NULL.
    Ok(unsafe { Bound::from_owned_ptr_or_opt(py, out) })
}

/// Raises like the package's `_not_nested(what)` when called from inside async middleware.
fn not_nested(py: Python<'_>, f: &Facade, what: &str) -> PyResult<()> {
    if let Some(v) = var_get(py, &f.in_middleware)? {
        if v.is_truthy()? {
            return Err(errors::new_err(
                py,
                ErrorKind::InvalidState,
                &format!("{what} cannot be called from inside middleware: it would re-enter the runtime"),
            ));
        }
    }
    Ok(())
}

/// `current_stack()` of the package: the stack in the context variable when this task or
/// thread owns it, else whatever the Python function makes (a new stack or a fork).
fn current_stack<'py>(py: Python<'py>, f: &Facade) -> PyResult<Bound<'py, PyStack>> {
    if let Some(cur) = var_get(py, &f.current)? {
        if let Ok(t) = cur.cast::<pyo3::types::PyTuple>() {
            if t.len() == 2 {
                let owner = t.get_item(1)?;
                let running = f.get_running_loop.bind(py).call0()?;
                let task = if running.is_none() { None } else { Some(f.current_task.bind(py).call0()?).filter(|t| !t.is_none()) };
                let mine = match task {
                    Some(task) => owner.is(&task),
                    None => {
                        // SAFETY: plain C call.
                        let me = unsafe { ffi::PyThread_get_thread_ident() };
                        owner.extract::<std::os::raw::c_ulong>().is_ok_and(|o| o == me)
                    }
                };
                if mine {
                    if let Ok(s) = t.get_item(0)?.cast_into::<PyStack>() {
                        return Ok(s);
                    }
                }
            }
        }
    }
    Ok(f.current_stack.bind(py).call0()?.cast_into::<PyStack>()?)
}

fn parent_handle<'py>(py: Python<'py>, f: &Facade, parent: Option<Bound<'py, PyAny>>) -> PyResult<Option<PyRef<'py, PyScope>>> {
    match parent {
        None => Ok(None),
        Some(p) if p.is_none() => Ok(None),
        Some(p) => match p.cast::<PyScope>() {
            Ok(s) => Ok(Some(s.borrow())),
            Err(_) => {
                let h = f.handle.bind(py).call1((p,))?;
                if h.is_none() {
                    return Ok(None);
                }
                Ok(Some(h.cast_into::<PyScope>()?.borrow()))
            }
        },
    }
}

/// Runs ``fn(args)`` as a managed tool call (guardrails, intercepts, events) on the current
/// stack, and returns its result.
#[pyfunction]
#[pyo3(signature = (name, args, r#fn, *, tool_call_id=None, metadata=None, attributes=None, parent=None))]
#[allow(clippy::too_many_arguments)]
fn tool<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyAny>,
    r#fn: Py<PyAny>,
    tool_call_id: Option<String>,
    metadata: Option<&Bound<'py, PyAny>>,
    attributes: Option<&Bound<'py, PyAny>>,
    parent: Option<Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let f = facade(py)?;
    not_nested(py, f, "a managed tool call")?;
    let stack = current_stack(py, f)?;
    let parent = parent_handle(py, f, parent)?;
    stack.get().tool(py, name, args, r#fn, tool_call_id, metadata, attributes, parent)
}

/// The first half of `baton.tool_async` (the package awaits the callback): checks, finds the
/// current stack and enters the call. Returns `True` when nothing is registered (`args`
/// checked; run the callback and check its result with `check_result`), a `HostCall` to end
/// with the callback's outcome, or — when middleware needs the full pipeline — the call
/// through it as an awaitable (running `callback`), or the stack itself without `callback`.
#[pyfunction]
#[pyo3(signature = (name, args, tool_call_id, metadata, attributes, parent, callback=None))]
#[allow(clippy::too_many_arguments)]
fn tool_enter<'py>(
    py: Python<'py>,
    name: &str,
    args: &Bound<'py, PyAny>,
    tool_call_id: Option<String>,
    metadata: Option<&Bound<'py, PyAny>>,
    attributes: Option<&Bound<'py, PyAny>>,
    parent: Option<Bound<'py, PyAny>>,
    callback: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let f = facade(py)?;
    not_nested(py, f, "a managed tool call")?;
    let stack = current_stack(py, f)?;
    let s = &stack.get().s;
    if !name.is_empty() && errors::check(py, s.unobserved())? {
        json::check(args).map_err(|e| e.into_py(py, "args"))?;
        return Ok(pyo3::types::PyBool::new(py, true).to_owned().into_any().unbind());
    }
    let parent = parent_handle(py, f, parent)?;
    let o = baton::ToolOptions {
        tool_call_id,
        metadata: convert::to_map(metadata, "metadata")?,
        attributes: convert::strings(attributes, "attributes")?,
        parent: parent.map(|p| p.h.clone()),
    };
    let Some(callback) = callback else {
        return match host::enter_tool(py, s, name, args, o)? {
            Some(h) => Ok(Py::new(py, host::PyHostCall::new(h))?.into_any()),
            None => Ok(stack.into_any().unbind()),
        };
    };
    match host::enter_tool(py, s, name, args, o.clone())? {
        Some(h) => Ok(Py::new(py, host::PyHostCall::new(h))?.into_any()),
        None => crate::bridge::awaitable(py, crate::tool_async_pending(py, s, name, args, callback, o)?),
    }
}

/// The first half of `baton.llm_stream_async`: returns `(stream, request)` for a host-run
/// stream — the package calls the callback with `request` between `stream._push()` and
/// `stream._pop()` and hands its result to `stream._set_source` — or the current stack when
/// middleware or a codec needs the full pipeline.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn llm_stream_enter<'py>(
    py: Python<'py>,
    name: &str,
    request: &Bound<'py, PyAny>,
    model_name: Option<String>,
    metadata: Option<&Bound<'py, PyAny>>,
    attributes: Option<&Bound<'py, PyAny>>,
    parent: Option<Bound<'py, PyAny>>,
    chunk_marks: bool,
    codec: Option<&str>,
    response_codec: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let f = facade(py)?;
    not_nested(py, f, "a managed LLM call")?;
    let stack = current_stack(py, f)?;
    if codec.is_some() || response_codec.is_some() {
        return Ok(stack.into_any().unbind());
    }
    let value = convert::to_value(request, "request")?;
    let parent = parent_handle(py, f, parent)?;
    let o = crate::llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, chunk_marks)?;
    match host::enter_llm_stream(py, &stack.get().s, name, &value, &o)? {
        Some(h) => {
            let s = Py::new(py, crate::stream::PyLlmStream::host(h))?.into_any();
            let req = host::callback_request(request)?;
            Ok(pyo3::types::PyTuple::new(py, [s, req.unbind()])?.into_any().unbind())
        }
        None => Ok(stack.into_any().unbind()),
    }
}

/// The first half of `baton.llm_async`: returns `(call, request)` for a host-run call — the
/// package awaits the callback with `request` and ends `call` (a `HostCall`) with its outcome
/// — or the current stack when nothing is registered, or middleware or a codec needs the
/// values (the package then takes the value path, `Stack.llm_async`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn llm_enter<'py>(
    py: Python<'py>,
    name: &str,
    request: &Bound<'py, PyAny>,
    model_name: Option<String>,
    metadata: Option<&Bound<'py, PyAny>>,
    attributes: Option<&Bound<'py, PyAny>>,
    parent: Option<Bound<'py, PyAny>>,
    codec: Option<&str>,
    response_codec: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let f = facade(py)?;
    not_nested(py, f, "a managed LLM call")?;
    let stack = current_stack(py, f)?;
    let s = &stack.get().s;
    if codec.is_some() || response_codec.is_some() || name.is_empty() || errors::check(py, s.unobserved())? {
        return Ok(stack.into_any().unbind());
    }
    let value = convert::to_value(request, "request")?;
    let parent = parent_handle(py, f, parent)?;
    let o = crate::llm_options(py, (codec, response_codec), model_name, metadata, attributes, parent, true)?;
    match host::enter_llm(py, s, name, value, o)? {
        Some((h, checked)) => {
            let call = Py::new(py, host::PyHostCall::new(h))?.into_any();
            let req = host::llm_request(py, request, checked)?;
            Ok(pyo3::types::PyTuple::new(py, [call, req.unbind()])?.into_any().unbind())
        }
        None => Ok(stack.into_any().unbind()),
    }
}

/// Checks a callback's result is JSON (`InvalidArgumentError` naming the path) and returns it.
#[pyfunction]
fn check_result<'py>(py: Python<'py>, result: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    json::check(&result).map_err(|e| e.into_py(py, "result"))?;
    Ok(result)
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tool_enter, m)?)?;
    m.add_function(wrap_pyfunction!(check_result, m)?)?;
    m.add_function(wrap_pyfunction!(llm_stream_enter, m)?)?;
    m.add_function(wrap_pyfunction!(llm_enter, m)?)?;
    m.add_class::<host::PyHostCall>()?;
    m.add_function(wrap_pyfunction!(install_facade, m)?)?;
    m.add_function(wrap_pyfunction!(tool, m)?)?;
    Ok(())
}
