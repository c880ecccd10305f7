//! Manual lifecycle: a call started and ended by the host.

use super::*;

/// Emits a tool start without running the tool (only the sanitize chains run). The call is not
/// pushed on the stack.
/// @param options_json `NULL` or `{"tool_call_id", "metadata", "attributes"}`.
/// @param out receives the call id; end it with baton_call_end(), free it with baton_call_free().
#[no_mangle]
pub extern "C" fn baton_tool_start(
    stack: BatonStack,
    name: *const c_char,
    args_json: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    out: *mut BatonCall,
) -> i32 {
    ffi(|| {
        let name = cstr(name, "name")?;
        let args = json_arg(args_json, "args_json")?;
        let opts = tool_options(options_json, parent)?;
        write_id(out, || Ok(HANDLES.insert(Handle::Call(HANDLES.stack(stack)?.tool_start(name, &args, opts)?))))
    })
}

/// Emits an LLM start without calling the model. As baton_tool_start(), with a request and
/// `{"model_name", "metadata", "attributes"}` options.
#[no_mangle]
pub extern "C" fn baton_llm_start(
    stack: BatonStack,
    name: *const c_char,
    request_json: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    out: *mut BatonCall,
) -> i32 {
    ffi(|| {
        let name = cstr(name, "name")?;
        let request = json_arg(request_json, "request_json")?;
        let opts = llm_options(options_json, parent)?;
        write_id(out, || Ok(HANDLES.insert(Handle::Call(HANDLES.stack(stack)?.llm_start(name, &request, opts)?))))
    })
}

/// Ends a manual call.
/// @param options_json `NULL` or `{"output": result/response, "metadata", "error": "msg" |
///        {"kind", "message"}}` (with `error` it ends with `ERROR` status).
/// Ending twice is `BATON_ERR_NOT_FOUND`.
#[no_mangle]
pub extern "C" fn baton_call_end(call: BatonCall, options_json: *const c_char) -> i32 {
    ffi(|| {
        let h = HANDLES.call(call)?;
        h.end(end_options(options_json)?)
    })
}

/// The call's uuid.
/// @param out receives the uuid string; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_call_uuid(call: BatonCall, out: *mut *mut c_char) -> i32 {
    ffi(|| write_string(out, HANDLES.call(call)?.uuid().to_string()))
}

/// Releases a call id (does not end the call).
#[no_mangle]
pub extern "C" fn baton_call_free(call: BatonCall) -> i32 {
    ffi(|| HANDLES.remove(call, "call", |h| matches!(h, Handle::Call(_))).map(drop))
}
