//! Python JSON data written straight to JSON text (event payloads), or only checked.
//!
//! The same rules as [`crate::convert::to_value`] — `dict` with `str` keys, `list`, `str`,
//! 64-bit `int`, finite `float`, `bool`, `None` (subclasses included) — and the same error
//! messages naming the path, but without building a `serde_json::Value` first: one pass over
//! the objects writes the text the core would have serialized from the value (object keys in
//! the same sorted order, numbers and escapes by serde_json itself). `check` walks without
//! writing, for calls nobody observes.

// Every function below works on raw object pointers with the GIL held; the unsafe
// operations are the point of each of them.
#![allow(unsafe_op_in_unsafe_fn)]

use std::os::raw::{c_char, c_int};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::errors;

extern "C" {
    // In every CPython the binding supports (part of the stable ABI from 3.10, and exported
    // with this signature since 3.3); pyo3 declares it only for abi3 builds targeting 3.10+.
    // For ASCII strings it returns the object's own buffer: no copy.
    fn PyUnicode_AsUTF8AndSize(unicode: *mut ffi::PyObject, size: *mut ffi::Py_ssize_t) -> *const c_char;
}

/// Deeper nesting than this is refused (a self-containing list would never end).
const MAX_DEPTH: u32 = 200;

/// Where a value failed: path segments from the failing value outwards, and the reason.
pub struct NotJson {
    segments: Vec<String>,
    reason: String,
}

impl NotJson {
    fn new(reason: String) -> NotJson {
        NotJson { segments: Vec::new(), reason }
    }
    fn at(mut self, segment: String) -> NotJson {
        self.segments.push(segment);
        self
    }
    /// The message `root[..][..]: reason`, as `convert::to_value` words it.
    pub fn message(&self, root: &str) -> String {
        let mut m = String::from(root);
        for s in self.segments.iter().rev() {
            m.push_str(s);
        }
        m.push_str(": ");
        m.push_str(&self.reason);
        m
    }
    pub fn into_py(self, py: Python<'_>, root: &str) -> PyErr {
        errors::new_err(py, baton::ErrorKind::InvalidArgument, &self.message(root))
    }
    pub fn into_core(self, root: &str) -> baton::Error {
        baton::Error::invalid_argument(self.message(root))
    }
}

unsafe fn type_name(py: Python<'_>, obj: *mut ffi::PyObject) -> String {
    let b = Bound::from_borrowed_ptr(py, obj);
    b.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}

/// The UTF-8 text of a `str` (borrowed from the object: valid while it lives).
unsafe fn utf8<'a>(py: Python<'_>, s: *mut ffi::PyObject) -> Result<&'a str, NotJson> {
    let mut len: ffi::Py_ssize_t = 0;
    let p = PyUnicode_AsUTF8AndSize(s, &mut len);
    if p.is_null() {
        let e = PyErr::fetch(py);
        return Err(NotJson::new(e.to_string()));
    }
    // SAFETY: CPython returns valid UTF-8 of that length, owned by the str object.
    Ok(std::str::from_utf8_unchecked(std::slice::from_raw_parts(p as *const u8, len as usize)))
}

#[inline]
unsafe fn is_type(obj: *mut ffi::PyObject, t: *mut ffi::PyTypeObject) -> bool {
    ffi::Py_TYPE(obj) == t
}

#[inline]
unsafe fn is_str(obj: *mut ffi::PyObject) -> bool {
    is_type(obj, &raw mut ffi::PyUnicode_Type) || ffi::PyType_GetFlags(ffi::Py_TYPE(obj)) & ffi::Py_TPFLAGS_UNICODE_SUBCLASS != 0
}

/// Writes (`W = true`) or checks (`W = false`) one value.
unsafe fn walk<const W: bool>(py: Python<'_>, obj: *mut ffi::PyObject, out: &mut Vec<u8>, depth: u32) -> Result<(), NotJson> {
    if depth > MAX_DEPTH {
        return Err(NotJson::new(format!("nesting deeper than {MAX_DEPTH} levels is not JSON")));
    }
    if obj == ffi::Py_None() {
        if W {
            out.extend_from_slice(b"null");
        }
        return Ok(());
    }
    if is_type(obj, &raw mut ffi::PyUnicode_Type) {
        let s = utf8(py, obj)?;
        if W {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        return Ok(());
    }
    if obj == ffi::Py_True() || obj == ffi::Py_False() {
        if W {
            out.extend_from_slice(if obj == ffi::Py_True() { b"true" } else { b"false" });
        }
        return Ok(());
    }
    if is_type(obj, &raw mut ffi::PyLong_Type) {
        return int::<W>(py, obj, out);
    }
    if is_type(obj, &raw mut ffi::PyDict_Type) {
        return dict::<W>(py, obj, out, depth);
    }
    if is_type(obj, &raw mut ffi::PyList_Type) {
        return list::<W>(py, obj, out, depth);
    }
    if is_type(obj, &raw mut ffi::PyFloat_Type) {
        return float::<W>(obj, out);
    }
    // Subclasses (an IntEnum, an OrderedDict, a str enum...) count as their base type.
    let flags = ffi::PyType_GetFlags(ffi::Py_TYPE(obj));
    if flags & ffi::Py_TPFLAGS_UNICODE_SUBCLASS != 0 {
        let s = utf8(py, obj)?;
        if W {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        return Ok(());
    }
    if flags & ffi::Py_TPFLAGS_LONG_SUBCLASS != 0 {
        return int::<W>(py, obj, out);
    }
    if flags & ffi::Py_TPFLAGS_DICT_SUBCLASS != 0 {
        return dict::<W>(py, obj, out, depth);
    }
    if flags & ffi::Py_TPFLAGS_LIST_SUBCLASS != 0 {
        return list::<W>(py, obj, out, depth);
    }
    if ffi::PyFloat_Check(obj) != 0 {
        return float::<W>(obj, out);
    }
    Err(NotJson::new(format!("{} is not JSON", type_name(py, obj))))
}

unsafe fn int<const W: bool>(py: Python<'_>, obj: *mut ffi::PyObject, out: &mut Vec<u8>) -> Result<(), NotJson> {
    let mut overflow: c_int = 0;
    let i = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
    if overflow == 0 {
        if i == -1 && !ffi::PyErr_Occurred().is_null() {
            return Err(NotJson::new(PyErr::fetch(py).to_string()));
        }
        if W {
            let _ = serde_json::to_writer(&mut *out, &i);
        }
        return Ok(());
    }
    if overflow > 0 {
        let u = ffi::PyLong_AsUnsignedLongLong(obj);
        if u != u64::MAX || ffi::PyErr_Occurred().is_null() {
            if W {
                let _ = serde_json::to_writer(&mut *out, &u);
            }
            return Ok(());
        }
        ffi::PyErr_Clear();
    }
    Err(NotJson::new("int out of the 64-bit range is not JSON".into()))
}

unsafe fn float<const W: bool>(obj: *mut ffi::PyObject, out: &mut Vec<u8>) -> Result<(), NotJson> {
    let v = ffi::PyFloat_AsDouble(obj);
    if !v.is_finite() {
        return Err(NotJson::new(format!("float {v} is not JSON")));
    }
    if W {
        let _ = serde_json::to_writer(&mut *out, &v);
    }
    Ok(())
}

unsafe fn list<const W: bool>(py: Python<'_>, obj: *mut ffi::PyObject, out: &mut Vec<u8>, depth: u32) -> Result<(), NotJson> {
    if W {
        out.push(b'[');
    }
    let mut i = 0;
    while i < ffi::PyList_Size(obj) {
        if W && i > 0 {
            out.push(b',');
        }
        let item = ffi::PyList_GetItem(obj, i);
        walk::<W>(py, item, out, depth + 1).map_err(|e| e.at(format!("[{i}]")))?;
        i += 1;
    }
    if W {
        out.push(b']');
    }
    Ok(())
}

unsafe fn dict<const W: bool>(py: Python<'_>, obj: *mut ffi::PyObject, out: &mut Vec<u8>, depth: u32) -> Result<(), NotJson> {
    let mut pos: ffi::Py_ssize_t = 0;
    let mut k: *mut ffi::PyObject = std::ptr::null_mut();
    let mut v: *mut ffi::PyObject = std::ptr::null_mut();
    // Keys as serde_json's map orders them (byte order of the UTF-8 text).
    let mut entries: Vec<(&str, *mut ffi::PyObject)> = Vec::new();
    while ffi::PyDict_Next(obj, &mut pos, &mut k, &mut v) != 0 {
        if !is_str(k) {
            let key = Bound::from_borrowed_ptr(py, k);
            return Err(NotJson::new(format!(
                "dict key {} ({}) is not a string",
                key.repr().map(|r| r.to_string()).unwrap_or_default(),
                type_name(py, k)
            )));
        }
        let key = utf8(py, k)?;
        entries.push((key, v));
    }
    if W {
        if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        out.push(b'{');
    }
    for (n, (key, value)) in entries.iter().enumerate() {
        if W {
            if n > 0 {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut *out, key);
            out.push(b':');
        }
        walk::<W>(py, *value, out, depth + 1).map_err(|e| e.at(format!("[\"{key}\"]")))?;
    }
    if W {
        out.push(b'}');
    }
    Ok(())
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The JSON text of `obj` as an event payload, or why it is not JSON.
pub fn payload(obj: &Bound<'_, PyAny>) -> Result<baton::Payload, NotJson> {
    let py = obj.py();
    let run = |buf: &mut Vec<u8>| -> Result<baton::Payload, NotJson> {
        buf.clear();
        // SAFETY: the GIL is held (`obj` is bound) and nothing in the walk runs Python code.
        unsafe { walk::<true>(py, obj.as_ptr(), buf, 0)? };
        // SAFETY: serde_json and the UTF-8 of Python strings wrote only valid UTF-8.
        let text: Box<str> = unsafe { std::str::from_utf8_unchecked(buf) }.into();
        Ok(baton::Payload::from_json_trusted(text))
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let r = run(&mut buf);
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => run(&mut Vec::new()),
    })
}

/// Checks `obj` is JSON data without writing anything.
pub fn check(obj: &Bound<'_, PyAny>) -> Result<(), NotJson> {
    // SAFETY: as in `payload`.
    unsafe { walk::<false>(obj.py(), obj.as_ptr(), &mut Vec::new(), 0) }
}
