//! Standalone helpers: guardrail checks and request intercepts without a call.

use super::*;

/// Runs only the guardrails of a tool call (their scopes and any rejection mark).
/// `BATON_OK` when allowed, `BATON_ERR_GUARDRAIL_REJECTED` when rejected.
#[no_mangle]
pub extern "C" fn baton_tool_conditional_execution(stack: BatonStack, name: *const c_char, args_json: *const c_char) -> i32 {
    ffi(|| {
        let name = cstr(name, "name")?;
        let args = json_arg(args_json, "args_json")?;
        HANDLES.stack(stack)?.tool_conditional_execution(name, &args)
    })
}

/// Runs only the guardrails of an LLM call. As baton_tool_conditional_execution().
#[no_mangle]
pub extern "C" fn baton_llm_conditional_execution(stack: BatonStack, name: *const c_char, request_json: *const c_char) -> i32 {
    ffi(|| {
        let name = cstr(name, "name")?;
        let request = json_arg(request_json, "request_json")?;
        HANDLES.stack(stack)?.llm_conditional_execution(name, &request)
    })
}

/// Runs only the request intercepts of a tool call; emits nothing.
/// @param out receives the rewritten args JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_tool_request_intercepts(
    stack: BatonStack,
    name: *const c_char,
    args_json: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let name = cstr(name, "name")?;
        let args = json_arg(args_json, "args_json")?;
        write_string(out, HANDLES.stack(stack)?.tool_request_intercepts(name, args)?.to_string())
    })
}

/// Runs only the request intercepts of an LLM call. As baton_tool_request_intercepts().
#[no_mangle]
pub extern "C" fn baton_llm_request_intercepts(
    stack: BatonStack,
    name: *const c_char,
    request_json: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let name = cstr(name, "name")?;
        let request = json_arg(request_json, "request_json")?;
        write_string(out, HANDLES.stack(stack)?.llm_request_intercepts(name, request)?.to_string())
    })
}
