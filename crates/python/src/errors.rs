//! Error mapping: core `Error` <-> Python exceptions.
//!
//! A Python callback's own exception rides through the core as the error's payload and is
//! raised again, the very same object, when the error reaches the caller. Every other error
//! becomes the `baton.BatonError` subclass of its kind (classes live in `baton/_errors.py`).

use std::sync::Arc;

use baton::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// The host's exception object, carried through the core untouched.
pub struct HostException(pub Py<PyAny>);

static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static BASE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> &Bound<'_, PyDict> {
    CLASSES
        .get_or_init(py, || {
            let m = py.import("baton._errors").expect("baton._errors is importable");
            m.getattr("_BY_KIND").expect("_BY_KIND").cast_into::<PyDict>().expect("_BY_KIND is a dict").unbind()
        })
        .bind(py)
}

fn base(py: Python<'_>) -> &Bound<'_, PyAny> {
    BASE.get_or_init(py, || py.import("baton._errors").and_then(|m| m.getattr("BatonError")).expect("BatonError").unbind()).bind(py)
}

/// A fresh exception of `kind` with `message`.
pub fn new_err(py: Python<'_>, kind: ErrorKind, message: &str) -> PyErr {
    match classes(py).get_item(kind.as_str()) {
        Ok(Some(cls)) => match cls.call1((message,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        _ => pyo3::exceptions::PyRuntimeError::new_err(format!("{kind}: {message}")),
    }
}

/// The Python exception for a core error: the original host exception when there is one.
pub fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    if let Some(p) = e.payload() {
        if let Some(h) = (**p).downcast_ref::<HostException>() {
            return PyErr::from_value(h.0.bind(py).clone());
        }
    }
    let err = new_err(py, e.kind(), e.message());
    if let Some(detail) = e.detail() {
        let value = err.value(py);
        if detail.is_array() {
            if let Ok(pv) = crate::convert::to_py(py, detail) {
                let _ = value.setattr("diagnostics", pv);
            }
        }
        if let Some(obj) = detail.as_object() {
            for (k, v) in obj {
                if let Ok(pv) = crate::convert::to_py(py, v) {
                    let _ = value.setattr(k.as_str(), pv);
                }
            }
        }
    }
    err
}

/// A core error from an exception a Python callback raised: it keeps a Baton error's kind
/// (else `callback_failed`), its message (`str(exc)`), its type name and the object itself.
pub fn from_py(py: Python<'_>, err: PyErr) -> Error {
    let value = err.value(py);
    let type_name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let message = value.str().map(|s| s.to_string()).unwrap_or_default();
    let kind = if value.is_instance(base(py)).unwrap_or(false) {
        value
            .getattr("kind")
            .ok()
            .and_then(|k| k.extract::<String>().ok())
            .and_then(|k| ErrorKind::parse(&k))
            .unwrap_or(ErrorKind::CallbackFailed)
    } else {
        ErrorKind::CallbackFailed
    };
    let obj = value.clone().into_any().unbind();
    Error::new(kind, message).with_payload(Arc::new(HostException(obj))).with_exception_type(type_name)
}

/// Shorthand: a `PyResult` from a core result.
pub fn check<T>(py: Python<'_>, r: baton::Result<T>) -> PyResult<T> {
    r.map_err(|e| to_py(py, &e))
}
