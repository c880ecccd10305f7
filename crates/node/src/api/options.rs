//! Reading the facade's arguments and option objects into the core's types.

use super::*;

pub(super) fn rt() -> &'static Runtime {
    Runtime::global()
}

pub(super) fn undefined(env: Env) -> JsResult<JsVal> {
    js::undefined(env)
}

pub(super) fn truthy(env: Env, v: JsVal) -> JsResult<bool> {
    Ok(js::type_of(env, v)? == sys::ValueType::napi_boolean && js::get_bool(env, v)?)
}

pub(super) fn opt_bool(env: Env, options: JsVal, key: &str) -> JsResult<Option<bool>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, key)?;
    if js::is_nullish(env, v)? {
        return Ok(None);
    }
    Ok(Some(truthy(env, v)?))
}

pub(super) fn opt_number(env: Env, options: JsVal, key: &str) -> JsResult<Option<f64>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, key)?;
    if js::is_nullish(env, v)? {
        return Ok(None);
    }
    if js::type_of(env, v)? != sys::ValueType::napi_number {
        return Err(Error::invalid_argument(format!("options.{key}: expected a number")).into());
    }
    Ok(Some(js::get_number(env, v)?))
}

pub(super) fn finish_json(v: Value) -> Finish {
    Box::new(move |env| convert::text_out(env, &v))
}

pub(super) fn finish_data(d: baton::Data) -> Finish {
    Box::new(move |env| convert::data_out(env, &d))
}

pub(super) fn finish_undefined() -> Finish {
    Box::new(js::undefined)
}

/// The error of `pop`/`end` options: a thrown value (kept as is) or a message string.
pub(super) fn opt_error(env: Env, options: JsVal) -> JsResult<Option<Error>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, "error")?;
    if js::type_of(env, v)? == sys::ValueType::napi_undefined {
        return Ok(None);
    }
    if js::type_of(env, v)? == sys::ValueType::napi_string {
        return Ok(Some(Error::callback_failed(js::get_string(env, v)?)));
    }
    Ok(Some(callbacks::host_error(env, v)))
}

pub(super) fn end_options(env: Env, options: JsVal, output_key: &str) -> JsResult<EndOptions> {
    Ok(EndOptions {
        output: opt_json(env, options, output_key)?,
        metadata: opt_object(env, options, "metadata")?,
        error: opt_error(env, options)?,
    })
}

pub(super) fn tool_options(env: Env, o: JsVal) -> JsResult<ToolOptions> {
    Ok(ToolOptions {
        tool_call_id: js::opt_string(env, o, "toolCallId")?,
        metadata: opt_object(env, o, "metadata")?,
        attributes: opt_strings(env, o, "attributes")?,
        parent: handles::opt_scope(env, o, "parent")?,
    })
}

pub(super) fn llm_options(env: Env, o: JsVal) -> JsResult<LlmOptions> {
    Ok(LlmOptions {
        model_name: js::opt_string(env, o, "modelName")?,
        metadata: opt_object(env, o, "metadata")?,
        attributes: opt_strings(env, o, "attributes")?,
        parent: handles::opt_scope(env, o, "parent")?,
        chunk_marks: opt_bool(env, o, "chunkMarks")?.unwrap_or(true),
        codec: opt_codec(env, o, "codec")?,
        response_codec: opt_codec(env, o, "responseCodec")?,
    })
}

pub(super) fn opt_codec(env: Env, o: JsVal, key: &str) -> JsResult<Option<Codec>> {
    match js::opt_string(env, o, key)? {
        None => Ok(None),
        Some(name) => Ok(Some(Codec::parse(&name)?)),
    }
}

pub(super) fn call_kind(env: Env, v: JsVal) -> JsResult<CallKind> {
    match js::req_string(env, v, "kind")?.as_str() {
        "tool" => Ok(CallKind::Tool),
        "llm" => Ok(CallKind::Llm),
        other => Err(Error::invalid_argument(format!("kind: expected 'tool' or 'llm', got '{other}'")).into()),
    }
}
