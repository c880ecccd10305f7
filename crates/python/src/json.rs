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
pub const MAX_DEPTH: u32 = 200;

/// Where a value failed: path segments from the failing value outwards, and the reason.
pub struct NotJson {
    segments: Vec<String>,
    reason: String,
}

impl NotJson {
    pub fn new(reason: String) -> NotJson {
        NotJson { segments: Vec::new(), reason }
    }
    pub fn at(mut self, segment: String) -> NotJson {
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

/// The UTF-8 text of a `str` object, borrowed from it (no copy for ASCII text); the error
/// is the encoding error's message (lone surrogates).
pub fn str_of<'a>(s: &'a Bound<'_, pyo3::types::PyString>) -> Result<&'a str, String> {
    // SAFETY: a live str object, GIL held; the text lives as long as the object.
    unsafe { utf8(s.py(), s.as_ptr()) }.map_err(|e| e.reason)
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

/// Writes a JSON string exactly as serde_json escapes it (`\"`, `\\`, the short escapes
/// `\b \t \n \f \r`, other control bytes as `\u00xx`; everything else verbatim).
fn write_str(out: &mut Vec<u8>, s: &str) {
    /// Bytes that need an escape: control bytes, the quote and the backslash.
    const NEEDS: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 0x20 {
            t[i] = true;
            i += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    // Whole 8-byte words with nothing to escape are skipped at once (most text has none).
    let clean = clean_words(bytes);
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        if !NEEDS[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]]);
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The length of the longest prefix of `bytes` made of whole 8-byte words in which no byte
/// needs a JSON escape (no control byte, quote or backslash). Word-at-a-time tests: a byte
/// below 0x20 and a byte equal to a given one are each found with the classic
/// "has a zero byte" trick; bytes of 0x80 and above never match.
fn clean_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut n = 0;
    for word in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        if control | zero_byte(w ^ (ONES * b'"' as u64)) | zero_byte(w ^ (ONES * b'\\' as u64)) != 0 {
            break;
        }
        n += 8;
    }
    n
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
unsafe fn walk<const W: bool>(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    out: &mut Vec<u8>,
    keys: &mut Keys,
    depth: u32,
) -> Result<(), NotJson> {
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
            write_str(out, s);
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
        return dict::<W>(py, obj, out, keys, depth);
    }
    if is_type(obj, &raw mut ffi::PyList_Type) {
        return list::<W>(py, obj, out, keys, depth);
    }
    if is_type(obj, &raw mut ffi::PyFloat_Type) {
        return float::<W>(obj, out);
    }
    // Subclasses (an IntEnum, an OrderedDict, a str enum...) count as their base type.
    let flags = ffi::PyType_GetFlags(ffi::Py_TYPE(obj));
    if flags & ffi::Py_TPFLAGS_UNICODE_SUBCLASS != 0 {
        let s = utf8(py, obj)?;
        if W {
            write_str(out, s);
        }
        return Ok(());
    }
    if flags & ffi::Py_TPFLAGS_LONG_SUBCLASS != 0 {
        return int::<W>(py, obj, out);
    }
    if flags & ffi::Py_TPFLAGS_DICT_SUBCLASS != 0 {
        return dict::<W>(py, obj, out, keys, depth);
    }
    if flags & ffi::Py_TPFLAGS_LIST_SUBCLASS != 0 {
        return list::<W>(py, obj, out, keys, depth);
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
            write_int(out, i < 0, i.unsigned_abs());
        }
        return Ok(());
    }
    if overflow > 0 {
        let u = ffi::PyLong_AsUnsignedLongLong(obj);
        if u != u64::MAX || ffi::PyErr_Occurred().is_null() {
            if W {
                write_int(out, false, u);
            }
            return Ok(());
        }
        ffi::PyErr_Clear();
    }
    Err(NotJson::new("int out of the 64-bit range is not JSON".into()))
}

/// Plain decimal, as serde_json writes integers.
fn write_int(out: &mut Vec<u8>, negative: bool, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
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

unsafe fn list<const W: bool>(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    out: &mut Vec<u8>,
    keys: &mut Keys,
    depth: u32,
) -> Result<(), NotJson> {
    if W {
        out.push(b'[');
    }
    let mut i = 0;
    while i < ffi::PyList_Size(obj) {
        if W && i > 0 {
            out.push(b',');
        }
        let item = ffi::PyList_GetItem(obj, i);
        walk::<W>(py, item, out, keys, depth + 1).map_err(|e| e.at(format!("[{i}]")))?;
        i += 1;
    }
    if W {
        out.push(b']');
    }
    Ok(())
}

/// Dict entries being written, shared by nested dicts (each uses the slice it pushed):
/// the key's UTF-8 (borrowed from the key object) and the value.
type Keys = Vec<(*const u8, usize, *mut ffi::PyObject)>;

unsafe fn dict<const W: bool>(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    out: &mut Vec<u8>,
    keys: &mut Keys,
    depth: u32,
) -> Result<(), NotJson> {
    let mut pos: ffi::Py_ssize_t = 0;
    let mut k: *mut ffi::PyObject = std::ptr::null_mut();
    let mut v: *mut ffi::PyObject = std::ptr::null_mut();
    if ffi::PyDict_Size(obj) <= 1 {
        // Nothing to sort: no entry list (streams' chunks are often one-entry dicts).
        if W {
            out.push(b'{');
        }
        if ffi::PyDict_Next(obj, &mut pos, &mut k, &mut v) != 0 {
            if !is_str(k) {
                let key = Bound::from_borrowed_ptr(py, k);
                return Err(NotJson::new(format!(
                    "dict key {} ({}) is not a string",
                    key.repr().map(|r| r.to_string()).unwrap_or_default(),
                    type_name(py, k)
                )));
            }
            let key = utf8(py, k)?;
            if W {
                write_str(out, key);
                out.push(b':');
            }
            walk::<W>(py, v, out, keys, depth + 1).map_err(|e| e.at(format!("[\"{key}\"]")))?;
        }
        if W {
            out.push(b'}');
        }
        return Ok(());
    }
    let base = keys.len();
    while ffi::PyDict_Next(obj, &mut pos, &mut k, &mut v) != 0 {
        if !is_str(k) {
            keys.truncate(base);
            let key = Bound::from_borrowed_ptr(py, k);
            return Err(NotJson::new(format!(
                "dict key {} ({}) is not a string",
                key.repr().map(|r| r.to_string()).unwrap_or_default(),
                type_name(py, k)
            )));
        }
        let key = match utf8(py, k) {
            Ok(key) => key,
            Err(e) => {
                keys.truncate(base);
                return Err(e);
            }
        };
        keys.push((key.as_ptr(), key.len(), v));
    }
    let key_of = |e: &(*const u8, usize, *mut ffi::PyObject)| -> &str {
        // SAFETY: UTF-8 owned by a key of this dict, alive while the dict is.
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(e.0, e.1))
    };
    if W {
        // Keys in the order serde_json's map writes them (byte order of the UTF-8 text).
        let mine = &mut keys[base..];
        if !mine.is_sorted_by(|a, b| key_of(a) <= key_of(b)) {
            mine.sort_unstable_by(|a, b| key_of(a).cmp(key_of(b)));
        }
        out.push(b'{');
    }
    let mut i = base;
    let end = keys.len();
    while i < end {
        let entry = keys[i];
        let key = key_of(&entry);
        if W {
            if i > base {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
        }
        if let Err(e) = walk::<W>(py, entry.2, out, keys, depth + 1) {
            let e = e.at(format!("[\"{key}\"]"));
            keys.truncate(base);
            return Err(e);
        }
        i += 1;
    }
    keys.truncate(base);
    if W {
        out.push(b'}');
    }
    Ok(())
}

thread_local! {
    static SCRATCH: std::cell::RefCell<(Vec<u8>, Keys)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The JSON text of `obj` as an event payload, or why it is not JSON.
pub fn payload(obj: &Bound<'_, PyAny>) -> Result<baton::Payload, NotJson> {
    let py = obj.py();
    let run = |(buf, keys): &mut (Vec<u8>, Keys)| -> Result<baton::Payload, NotJson> {
        buf.clear();
        keys.clear();
        // SAFETY: the GIL is held (`obj` is bound) and nothing in the walk runs Python code.
        unsafe { walk::<true>(py, obj.as_ptr(), buf, keys, 0)? };
        // SAFETY: serde_json and the UTF-8 of Python strings wrote only valid UTF-8.
        let text: Box<str> = unsafe { std::str::from_utf8_unchecked(buf) }.into();
        Ok(baton::Payload::from_json_trusted(text))
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let r = run(&mut buf);
            if buf.0.capacity() > 64 * 1024 {
                buf.0 = Vec::new();
            }
            r
        }
        Err(_) => run(&mut (Vec::new(), Vec::new())),
    })
}

/// Checks `obj` is JSON data without writing anything.
pub fn check(obj: &Bound<'_, PyAny>) -> Result<(), NotJson> {
    // SAFETY: as in `payload`.
    unsafe { walk::<false>(obj.py(), obj.as_ptr(), &mut Vec::new(), &mut Vec::new(), 0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time skip agrees with serde_json on every escape position and length.
    #[test]
    fn write_str_matches_serde_json() {
        let specials = ["\"", "\\", "\n", "\u{1}", "\u{1f}", "\t", "é", "\u{7f}", " ", "~", "\u{10ffff}"];
        for len in 0..20 {
            for special in specials {
                for at in 0..=len {
                    let mut text: String = "abcdefghijklmnopqrstu"[..len].into();
                    text.insert_str(at, special);
                    let mut out = Vec::new();
                    write_str(&mut out, &text);
                    assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap(), "{text:?}");
                }
            }
        }
        assert_eq!(clean_words(b"weather in Paris"), 16);
        assert_eq!(clean_words(b"weather\n Paris"), 0);
        assert_eq!(clean_words(b"0123456789\\"), 8);
    }
}
