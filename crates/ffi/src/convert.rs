//! Values crossing the boundary: C strings, JSON arguments, option objects, out-parameters.

use std::ffi::{c_char, CStr};

use baton::codec::Codec;
use baton::{DataSchema, EndOptions, Error, ErrorKind, LlmOptions, MarkOptions, Result, ScopeOptions, ToolOptions};
use serde_json::{Map, Value};

use crate::handles::HANDLES;

/// A borrowed, required UTF-8 string.
pub(crate) fn cstr<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what}: null pointer")));
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the call.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| Error::invalid_argument(format!("{what}: invalid UTF-8 ({e})")))
}

/// A borrowed, required UTF-8 string of `len` bytes (not NUL-terminated); `NULL` only when
/// `len` is 0.
pub(crate) fn str_n<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a str> {
    if len == 0 {
        return Ok("");
    }
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what}: null pointer with length {len}")));
    }
    // SAFETY: the caller passes `len` readable bytes that outlive the call.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| Error::invalid_argument(format!("{what}: invalid UTF-8 ({e})")))
}

/// A borrowed, optional UTF-8 string (`NULL` is `None`).
pub(crate) fn opt_cstr<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        cstr(p, what).map(Some)
    }
}

/// A required JSON argument.
pub(crate) fn json_arg(p: *const c_char, what: &str) -> Result<Value> {
    serde_json::from_str(cstr(p, what)?).map_err(|e| Error::invalid_argument(format!("{what}: invalid JSON ({e})")))
}

/// An optional JSON object (`NULL` or `null` is empty).
pub(crate) fn object_arg(p: *const c_char, what: &str) -> Result<Map<String, Value>> {
    if p.is_null() {
        return Ok(Map::new());
    }
    match json_arg(p, what)? {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        other => Err(Error::invalid_argument(format!("{what}: expected a JSON object, got {other}"))),
    }
}

/// An options object: `NULL`/`null` is empty; keys outside `allowed` are rejected by name.
pub(crate) fn options(p: *const c_char, what: &str, allowed: &[&str]) -> Result<Map<String, Value>> {
    let m = object_arg(p, what)?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid_argument(format!("{what}.{k}: unknown option (expected one of: {})", allowed.join(", "))));
    }
    Ok(m)
}

fn opt_string(m: &Map<String, Value>, what: &str, key: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::invalid_argument(format!("{what}.{key}: expected a string, got {other}"))),
    }
}

fn opt_object(m: &mut Map<String, Value>, what: &str, key: &str) -> Result<Map<String, Value>> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(Error::invalid_argument(format!("{what}.{key}: expected an object, got {other}"))),
    }
}

fn opt_strings(m: &Map<String, Value>, what: &str, key: &str) -> Result<Vec<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(String::from).ok_or_else(|| Error::invalid_argument(format!("{what}.{key}: expected strings, got {v}")))
            })
            .collect(),
        Some(other) => Err(Error::invalid_argument(format!("{what}.{key}: expected an array of strings, got {other}"))),
    }
}

fn opt_bool(m: &Map<String, Value>, what: &str, key: &str, default: bool) -> Result<bool> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::invalid_argument(format!("{what}.{key}: expected a boolean, got {other}"))),
    }
}

fn data_schema(m: &Map<String, Value>, what: &str) -> Result<Option<DataSchema>> {
    match m.get("data_schema") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(d)) => {
            let get = |k: &str| {
                d.get(k)
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(|| Error::invalid_argument(format!("{what}.data_schema.{k}: expected a string")))
            };
            Ok(Some(DataSchema { name: get("name")?, version: get("version")? }))
        }
        Some(other) => Err(Error::invalid_argument(format!("{what}.data_schema: expected {{name, version}}, got {other}"))),
    }
}

fn parent(parent: u64) -> Result<Option<baton::ScopeHandle>> {
    if parent == 0 {
        Ok(None)
    } else {
        HANDLES.scope(parent).map(Some)
    }
}

pub(crate) fn scope_options(name: &str, p: *const c_char, parent_id: u64) -> Result<ScopeOptions> {
    const W: &str = "options_json";
    let mut m = options(p, W, &["category", "input", "metadata", "attributes", "category_profile", "data_schema"])?;
    let mut o = ScopeOptions::new(name);
    if let Some(c) = opt_string(&m, W, "category")? {
        o = o.category(c.as_str());
    }
    o.attributes = opt_strings(&m, W, "attributes")?;
    o.data_schema = data_schema(&m, W)?;
    o.metadata = opt_object(&mut m, W, "metadata")?;
    o.input = m.remove("input");
    o.category_profile = m.remove("category_profile").filter(|v| !v.is_null());
    o.parent = parent(parent_id)?;
    Ok(o)
}

pub(crate) fn mark_options(name: &str, p: *const c_char, parent_id: u64) -> Result<MarkOptions> {
    const W: &str = "options_json";
    let mut m = options(p, W, &["data", "metadata", "category", "category_profile", "data_schema"])?;
    let mut o = MarkOptions::new(name);
    o.category = opt_string(&m, W, "category")?.map(|c| c.as_str().into());
    o.data_schema = data_schema(&m, W)?;
    o.metadata = opt_object(&mut m, W, "metadata")?;
    o.data = m.remove("data");
    o.category_profile = m.remove("category_profile").filter(|v| !v.is_null());
    o.parent = parent(parent_id)?;
    Ok(o)
}

pub(crate) fn tool_options(p: *const c_char, parent_id: u64) -> Result<ToolOptions> {
    const W: &str = "options_json";
    if p.is_null() && parent_id == 0 {
        return Ok(ToolOptions::default());
    }
    let mut m = options(p, W, &["tool_call_id", "metadata", "attributes"])?;
    Ok(ToolOptions {
        tool_call_id: opt_string(&m, W, "tool_call_id")?,
        attributes: opt_strings(&m, W, "attributes")?,
        metadata: opt_object(&mut m, W, "metadata")?,
        parent: parent(parent_id)?,
    })
}

pub(crate) fn llm_options(p: *const c_char, parent_id: u64) -> Result<LlmOptions> {
    const W: &str = "options_json";
    if p.is_null() && parent_id == 0 {
        return Ok(LlmOptions::default());
    }
    let mut m = options(p, W, &["model_name", "metadata", "attributes", "chunk_marks", "codec", "response_codec"])?;
    let codec =
        |m: &Map<String, Value>, key: &str| -> Result<Option<Codec>> { opt_string(m, W, key)?.map(|c| Codec::parse(&c)).transpose() };
    Ok(LlmOptions {
        codec: codec(&m, "codec")?,
        response_codec: codec(&m, "response_codec")?,
        model_name: opt_string(&m, W, "model_name")?,
        attributes: opt_strings(&m, W, "attributes")?,
        chunk_marks: opt_bool(&m, W, "chunk_marks", true)?,
        metadata: opt_object(&mut m, W, "metadata")?,
        parent: parent(parent_id)?,
    })
}

/// `{"output", "metadata", "error": "msg" | {"kind"?, "message"}}`.
pub(crate) fn end_options(p: *const c_char) -> Result<EndOptions> {
    const W: &str = "options_json";
    let mut m = options(p, W, &["output", "metadata", "error"])?;
    let error = match m.remove("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(msg)) => Some(Error::callback_failed(msg)),
        Some(Value::Object(e)) => {
            let kind = match e.get("kind") {
                None | Some(Value::Null) => ErrorKind::CallbackFailed,
                Some(Value::String(k)) => {
                    ErrorKind::parse(k).ok_or_else(|| Error::invalid_argument(format!("{W}.error.kind: unknown error kind '{k}'")))?
                }
                Some(other) => return Err(Error::invalid_argument(format!("{W}.error.kind: expected a string, got {other}"))),
            };
            let message = e.get("message").and_then(Value::as_str).unwrap_or("error").to_string();
            Some(Error::new(kind, message))
        }
        Some(other) => return Err(Error::invalid_argument(format!("{W}.error: expected a message or {{kind, message}}, got {other}"))),
    };
    Ok(EndOptions { metadata: opt_object(&mut m, W, "metadata")?, output: m.remove("output"), error })
}

pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid_argument(format!("{what}: null pointer")));
    }
    Ok(())
}

/// Writes a string the caller frees with baton_string_free().
pub(crate) fn write_string(out: *mut *mut c_char, s: String) -> Result<()> {
    check_out(out, "out")?;
    let c = crate::c_string(s);
    // SAFETY: checked non-null; the caller provides a writable `char *`.
    unsafe { *out = c.into_raw() };
    Ok(())
}

/// Checks `out`, computes the id, writes it (so nothing is created when `out` is null).
pub(crate) fn write_id(out: *mut u64, make: impl FnOnce() -> Result<u64>) -> Result<()> {
    check_out(out, "out")?;
    let id = make()?;
    // SAFETY: checked non-null.
    unsafe { *out = id };
    Ok(())
}

/// Writes a bool when `out` is not null.
pub(crate) fn write_bool(out: *mut bool, v: bool) -> Result<()> {
    if !out.is_null() {
        // SAFETY: non-null, provided by the caller.
        unsafe { *out = v };
    }
    Ok(())
}
