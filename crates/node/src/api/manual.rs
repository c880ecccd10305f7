//! Manual lifecycle: tool and LLM calls started and ended by the caller.

use super::*;

pub fn tool_start(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let args = convert::to_json(env, a[2], "args")?;
    let o = tool_options(env, a[3])?;
    let h = with_js_stack(std::ptr::null_mut(), || s.tool_start(&name, &args, o))?;
    handles::wrap(env, Handle::Call(h))
}

pub fn llm_start(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let request = convert::to_json(env, a[2], "request")?;
    let o = llm_options(env, a[3])?;
    let h = with_js_stack(std::ptr::null_mut(), || s.llm_start(&name, &request, o))?;
    handles::wrap(env, Handle::Call(h))
}

/// callEnd(handle, options{output, metadata, error})
pub fn call_end(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Call(h) = handles::handle(env, a[0], "handle")? else {
        return Err(Error::invalid_argument("handle: expected a call handle").into());
    };
    h.end(end_options(env, a[1], "output")?)?;
    undefined(env)
}

pub fn call_uuid(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Call(h) = handles::handle(env, a[0], "handle")? else {
        return Err(Error::invalid_argument("handle: expected a call handle").into());
    };
    js::string(env, &h.uuid().to_string())
}
