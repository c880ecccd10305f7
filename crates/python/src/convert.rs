//! Values across the boundary: plain Python JSON data <-> `serde_json::Value`.
//!
//! Only `dict` (string keys), `list`, `str`, `int` (64-bit), finite `float`, `bool` and
//! `None` cross. Anything else is rejected with a message naming the path of the value,
//! e.g. `args["when"]: datetime is not JSON`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use serde_json::{Map, Number, Value};

use crate::errors;
use crate::json::NotJson;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}

/// Converts plain JSON data; the error message names the offending path. The path is built
/// only on the way out of an error (as in [`crate::json`]), not for every key.
fn value_at(obj: &Bound<'_, PyAny>, depth: u32) -> Result<Value, NotJson> {
    if depth > crate::json::MAX_DEPTH {
        return Err(NotJson::new(format!("nesting deeper than {} levels is not JSON", crate::json::MAX_DEPTH)));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return crate::json::str_of(s).map(|c| Value::String(c.to_owned())).map_err(NotJson::new);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(NotJson::new("int out of the 64-bit range is not JSON".into()));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v).map(Value::Number).ok_or_else(|| NotJson::new(format!("float {v} is not JSON")));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(ks) = k.cast::<PyString>() else {
                return Err(NotJson::new(format!(
                    "dict key {} ({}) is not a string",
                    k.repr().map(|r| r.to_string()).unwrap_or_default(),
                    type_name(&k)
                )));
            };
            let key = crate::json::str_of(ks).map_err(NotJson::new)?;
            let value = value_at(&v, depth + 1).map_err(|e| e.at(format!("[\"{key}\"]")))?;
            map.insert(key.to_owned(), value);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let mut out = Vec::with_capacity(l.len());
        for (i, item) in l.iter().enumerate() {
            out.push(value_at(&item, depth + 1).map_err(|e| e.at(format!("[{i}]")))?);
        }
        return Ok(Value::Array(out));
    }
    Err(NotJson::new(format!("{} is not JSON", type_name(obj))))
}

/// Converts plain JSON data or raises `baton.InvalidArgumentError` naming the path.
pub fn to_value(obj: &Bound<'_, PyAny>, root: &str) -> PyResult<Value> {
    value_at(obj, 0).map_err(|e| e.into_py(obj.py(), root))
}

/// Same, as a core error (for values coming back from callbacks).
pub fn to_value_core(obj: &Bound<'_, PyAny>, root: &str) -> baton::Result<Value> {
    value_at(obj, 0).map_err(|e| e.into_core(root))
}

/// True when converting `obj` would give exactly `v` (walked without building anything).
fn same(obj: &Bound<'_, PyAny>, v: &Value, depth: u32) -> bool {
    if depth > crate::json::MAX_DEPTH {
        return false;
    }
    // In `value_at`'s order of checks, so that a match means the same conversion.
    match v {
        Value::Null => obj.is_none(),
        Value::String(t) => obj.cast::<PyString>().is_ok_and(|s| crate::json::str_of(s).is_ok_and(|c| c == t)),
        Value::Bool(b) => obj.cast::<PyBool>().is_ok_and(|o| o.is_true() == *b),
        Value::Number(n) => {
            if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBool>() {
                return false;
            }
            if obj.is_instance_of::<PyInt>() {
                return match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => obj.extract::<i64>().is_ok_and(|o| o == i),
                    (None, Some(u)) => obj.extract::<i64>().is_err() && obj.extract::<u64>().is_ok_and(|o| o == u),
                    _ => false,
                };
            }
            match (obj.cast::<PyFloat>(), n.as_f64()) {
                (Ok(f), Some(x)) if n.is_f64() => f.value() == x,
                _ => false,
            }
        }
        Value::Array(a) => {
            if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
                return false;
            }
            let Ok(l) = obj.cast::<PyList>() else { return false };
            l.len() == a.len() && l.iter().zip(a).all(|(item, v)| same(&item, v, depth + 1))
        }
        Value::Object(m) => {
            if obj.is_instance_of::<PyString>() {
                return false;
            }
            let Ok(d) = obj.cast::<PyDict>() else { return false };
            d.len() == m.len()
                && d.iter().all(|(k, item)| {
                    k.cast::<PyString>()
                        .is_ok_and(|ks| crate::json::str_of(ks).is_ok_and(|key| m.get(key).is_some_and(|v| same(&item, v, depth + 1))))
                })
        }
    }
}

/// What a callback or middleware returned, as a value: `passed` (the object made from
/// `orig` for it) handed back unchanged gives `orig` itself, without converting it again.
pub fn to_value_reusing(obj: &Bound<'_, PyAny>, passed: &Bound<'_, PyAny>, orig: Value, root: &str) -> baton::Result<Value> {
    if obj.is(passed) && same(obj, &orig, 0) {
        return Ok(orig);
    }
    to_value_core(obj, root)
}

/// Optional metadata: `None` or a dict.
pub fn to_map(obj: Option<&Bound<'_, PyAny>>, root: &str) -> PyResult<Map<String, Value>> {
    match obj {
        None => Ok(Map::new()),
        Some(o) if o.is_none() => Ok(Map::new()),
        Some(o) => match to_value(o, root)? {
            Value::Object(m) => Ok(m),
            _ => Err(errors::new_err(o.py(), baton::ErrorKind::InvalidArgument, &format!("{root}: expected a dict, got {}", type_name(o)))),
        },
    }
}

thread_local! {
    /// Recently used dict keys as Python strings: payloads repeat the same few keys, and a
    /// string already made (with its hash cached) costs a reference instead of a decode,
    /// a hash and a free per key.
    static KEYS: std::cell::RefCell<Vec<(Box<str>, Py<PyString>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn key<'py>(py: Python<'py>, k: &str) -> Bound<'py, PyString> {
    const KEEP: usize = 32;
    if k.len() > 32 {
        return PyString::new(py, k);
    }
    KEYS.with(|cell| {
        let Ok(mut keys) = cell.try_borrow_mut() else {
            return PyString::new(py, k);
        };
        if let Some((_, s)) = keys.iter().find(|(s, _)| &**s == k) {
            return s.bind(py).clone();
        }
        let s = PyString::new(py, k);
        if keys.len() == KEEP {
            keys.remove(0);
        }
        keys.push((k.into(), s.clone().unbind()));
        s
    })
}

/// A JSON value as plain Python data.
pub fn to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any().unbind()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any().unbind(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, item) in m {
                d.set_item(key(py, k), to_py(py, item)?)?;
            }
            d.into_any().unbind()
        }
    })
}

/// Optional string list argument (attributes).
pub fn strings(obj: Option<&Bound<'_, PyAny>>, root: &str) -> PyResult<Vec<String>> {
    match obj {
        None => Ok(Vec::new()),
        Some(o) if o.is_none() => Ok(Vec::new()),
        Some(o) => {
            let mut out = Vec::new();
            for (i, item) in o.try_iter()?.enumerate() {
                let item = item?;
                match item.cast::<PyString>() {
                    Ok(s) => out.push(s.to_cow()?.into_owned()),
                    Err(_) => return Err(PyTypeError::new_err(format!("{root}[{i}]: expected a string, got {}", type_name(&item)))),
                }
            }
            Ok(out)
        }
    }
}
