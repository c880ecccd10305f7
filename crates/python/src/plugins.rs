//! Plugins: the core's plugin documents (validate / initialize / clear), and Python objects as
//! plugin components (`kind`, `validate(config)`, `activate(config, activation)`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use baton::plugin::{Activation, Component, Diagnostics};
use baton::{ErrorKind, Family, Runtime};
use pyo3::prelude::*;
use serde_json::Value;

use crate::{convert, errors, mw};

/// Diagnostic codes must be `'static`; the few a component uses are interned once.
fn intern_code(code: &str) -> &'static str {
    static CODES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = CODES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = set.get(code) {
        return c;
    }
    let leaked: &'static str = Box::leak(code.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

struct PyComponent {
    kind: String,
    obj: Py<PyAny>,
}

impl Component for PyComponent {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn validate(&self, config: &Value, diagnostics: &mut Diagnostics) {
        Python::attach(|py| {
            let r = (|| -> PyResult<Vec<(String, String, String, String)>> {
                let found = self.obj.bind(py).call_method1("validate", (convert::to_py(py, config)?,))?;
                let mut out = Vec::new();
                if found.is_none() {
                    return Ok(out);
                }
                for d in found.try_iter()? {
                    let d = d?;
                    let get = |k: &str| -> PyResult<String> {
                        let v = d.get_item(k).ok().filter(|v| !v.is_none());
                        Ok(match v {
                            Some(v) => v.extract::<String>()?,
                            None => String::new(),
                        })
                    };
                    out.push((get("level")?, get("code")?, get("field")?, get("message")?));
                }
                Ok(out)
            })();
            match r {
                Ok(found) => {
                    for (level, code, field, message) in found {
                        let code = intern_code(if code.is_empty() { "invalid_value" } else { &code });
                        if level == "warning" {
                            diagnostics.warning(code, &field, message);
                        } else {
                            diagnostics.error(code, &field, message);
                        }
                    }
                }
                Err(e) => diagnostics.error("invalid_value", "", format!("component '{}': validate raised {e}", self.kind)),
            }
        })
    }

    fn activate(&self, config: &Value, activation: &mut Activation<'_>) -> baton::Result<()> {
        let ptr = activation as *mut Activation<'_> as *mut () as usize;
        Python::attach(|py| {
            let act = Py::new(py, PyActivation { ptr: AtomicUsize::new(ptr) }).map_err(|e| errors::from_py(py, e))?;
            let r = (|| self.obj.bind(py).call_method1("activate", (convert::to_py(py, config)?, act.clone_ref(py))))();
            act.get().ptr.store(0, Ordering::Release);
            r.map(|_| ()).map_err(|e| errors::from_py(py, e))
        })
    }
}

/// What a Python component's `activate` receives: `register(kind, name, fn, priority=0)`
/// installs middleware as `<component kind>.<name>`, removed again by `clear`.
#[pyclass(frozen, name = "Activation", module = "baton._native")]
pub struct PyActivation {
    ptr: AtomicUsize,
}

#[pymethods]
impl PyActivation {
    #[pyo3(signature = (kind, name, callback, *, priority=0))]
    fn register(&self, py: Python<'_>, kind: &str, name: &str, callback: Py<PyAny>, priority: i32) -> PyResult<()> {
        let is_async = py.import("inspect")?.call_method1("iscoroutinefunction", (callback.bind(py),))?.is_truthy()?;
        let p = self.ptr.load(Ordering::Acquire);
        if p == 0 {
            return Err(errors::new_err(py, ErrorKind::InvalidState, "activation.register() called after activate returned"));
        }
        let family = errors::check(py, Family::parse(kind))?;
        let m = errors::check(py, mw::build(family, name, callback, is_async))?;
        // SAFETY: `ptr` is cleared before the activation it points to goes away; the core
        // calls `activate` on this thread, which holds the GIL for the whole call.
        let act = unsafe { &mut *(p as *mut Activation<'_>) };
        errors::check(py, act.register(name, priority, m))
    }
}

#[pyfunction]
pub fn plugin_validate(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let doc = convert::to_value(config, "config")?;
    let d = py.detach(move || Runtime::global().plugin_validate(&doc));
    convert::to_py(py, &Value::Array(d.iter().map(|d| d.to_json()).collect()))
}

#[pyfunction]
pub fn plugin_initialize(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let doc = convert::to_value(config, "config")?;
    // Plugins may register Rust middleware, which may take its time: release the GIL around
    // core work from now on (crate::host).
    crate::host::set_foreign_middleware(true);
    let r = errors::check(py, py.detach(move || Runtime::global().plugin_initialize(&doc)))?;
    convert::to_py(py, &r.to_json())
}

#[pyfunction]
pub fn plugin_clear(py: Python<'_>) -> PyResult<()> {
    errors::check(py, py.detach(|| Runtime::global().plugin_clear()))?;
    crate::host::set_foreign_middleware(false);
    Ok(())
}

/// Reads a plugins document (TOML, or JSON for `.json` files) as a dict.
#[pyfunction]
pub fn plugin_load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Py<PyAny>> {
    let doc = errors::check(py, baton::plugin::load_document(&path))?;
    convert::to_py(py, &doc)
}

/// Makes a Python object a component kind: it has `kind`, `validate(config)` returning
/// diagnostics dicts `{level, code, field, message}`, and `activate(config, activation)`.
#[pyfunction]
pub fn register_component(py: Python<'_>, component: Py<PyAny>) -> PyResult<()> {
    let kind: String = component.bind(py).getattr("kind")?.extract()?;
    let c = Arc::new(PyComponent { kind, obj: component });
    errors::check(py, py.detach(move || Runtime::global().register_component(c)))
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyActivation>()?;
    m.add_function(wrap_pyfunction!(plugin_validate, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_initialize, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_clear, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_load, m)?)?;
    m.add_function(wrap_pyfunction!(register_component, m)?)?;
    Ok(())
}
