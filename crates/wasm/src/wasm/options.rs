//! The options objects of the facade (JSON text) as the core's option types.

use super::*;

pub(super) fn parse_opts(opts: Option<String>) -> Result<Map<String, Value>, JsValue> {
    match opts {
        None => Ok(Map::new()),
        Some(t) => match parse_json(&t, "options")? {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Map::new()),
            _ => Err(bad("options: expected an object")),
        },
    }
}

pub(super) fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, JsValue> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("options.{key}: expected a string"))),
    }
}

pub(super) fn opt_metadata(m: &Map<String, Value>) -> Result<Map<String, Value>, JsValue> {
    match m.get("metadata") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(bad("options.metadata: expected an object")),
    }
}

pub(super) fn opt_attributes(m: &Map<String, Value>) -> Result<Vec<String>, JsValue> {
    match m.get("attributes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad("options.attributes: expected strings"))).collect()
        }
        Some(_) => Err(bad("options.attributes: expected an array of strings")),
    }
}

pub(super) fn opt_schema(m: &Map<String, Value>) -> Result<Option<baton::DataSchema>, JsValue> {
    match m.get("dataSchema") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => match (o.get("name").and_then(Value::as_str), o.get("version").and_then(Value::as_str)) {
            (Some(n), Some(v)) => Ok(Some(baton::DataSchema { name: n.to_string(), version: v.to_string() })),
            _ => Err(bad("options.dataSchema: expected {name, version} strings")),
        },
        Some(_) => Err(bad("options.dataSchema: expected {name, version}")),
    }
}

pub(super) fn end_options(opts: Option<String>, error: JsValue) -> Result<EndOptions, JsValue> {
    let m = parse_opts(opts)?;
    let mut end = EndOptions::default().metadata(opt_metadata(&m)?);
    if let Some(v) = m.get("output") {
        end = end.output(v.clone());
    }
    if !error.is_undefined() {
        let e = from_thrown(error);
        // The thrown value only names the status here; nothing is rethrown.
        if let Some(t) = e.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
            THROWN.with(|m| m.borrow_mut().remove(&t.0));
        }
        end =
            end.error(Error::new(e.kind(), e.message().to_string()).with_exception_type(e.exception_type().unwrap_or("Error").to_string()));
    }
    Ok(end)
}

pub(super) fn tool_options(opts: Option<String>, parent: Option<Scope>) -> Result<ToolOptions, JsValue> {
    let m = parse_opts(opts)?;
    Ok(ToolOptions {
        tool_call_id: opt_string(&m, "toolCallId")?,
        metadata: opt_metadata(&m)?,
        attributes: opt_attributes(&m)?,
        parent: parent.map(|p| p.inner),
    })
}

pub(super) fn llm_options(opts: Option<String>, parent: Option<Scope>) -> Result<baton::LlmOptions, JsValue> {
    let m = parse_opts(opts)?;
    Ok(baton::LlmOptions {
        model_name: opt_string(&m, "modelName")?,
        metadata: opt_metadata(&m)?,
        attributes: opt_attributes(&m)?,
        parent: parent.map(|p| p.inner),
        chunk_marks: m.get("chunkMarks").and_then(Value::as_bool).unwrap_or(true),
        codec: opt_string(&m, "codec")?.map(|c| baton::codec::Codec::parse(&c)).transpose().map_err(to_js)?,
        response_codec: opt_string(&m, "responseCodec")?.map(|c| baton::codec::Codec::parse(&c)).transpose().map_err(to_js)?,
    })
}
