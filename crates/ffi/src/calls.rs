//! Managed tool and LLM calls: executed, entered (the host runs the function) and streamed.

use super::*;

/// Runs a managed tool call: guardrails, request intercepts, start event, execution intercepts
/// around `callback`, end event.
/// @param args_json the tool arguments (JSON).
/// @param options_json `NULL` or `{"tool_call_id", "metadata", "attributes"}`.
/// @param parent explicit parent scope, or 0.
/// @param callback the tool; `user_data` is passed to it and is borrowed for this call only.
/// @param result_out receives the real (unsanitized) result JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_tool_execute(
    stack: BatonStack,
    name: *const c_char,
    args_json: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    callback: BatonCallbackFn,
    user_data: *mut c_void,
    result_out: *mut *mut c_char,
) -> i32 {
    ffi(|| {
        convert::check_out(result_out, "result_out")?;
        let name = cstr(name, "name")?;
        let args = Data::from_json(cstr(args_json, "args_json")?, "args_json")?;
        let opts = tool_options(options_json, parent)?;
        let cb = hooks::Callback::new(callback, user_data)?;
        let v = HANDLES.stack(stack)?.tool_data(name, args, |input| cb.call(&input), opts)?;
        write_string(result_out, v.json().into_owned())
    })
}

/// Enters a tool call whose callback the caller runs itself (the host-run form of
/// baton_tool_execute(), for hosts where a callback from C is costly). Three outcomes:
/// - `*call_out` is a call id: no middleware sees the call's values (only subscribers and
///   event middleware are registered), the start event was emitted and the call's scope is
///   the top of `stack`. Run the callback, then end the call with baton_tool_exit() exactly
///   once (it frees the id); the events are those baton_tool_execute() would emit.
/// - `*call_out` is 0 and `*bare_out` is true: nothing is registered anywhere; run the
///   callback, nothing is emitted.
/// - `*call_out` is 0 and `*bare_out` is false: middleware sees the values; use
///   baton_tool_execute().
///
/// @param args_json the arguments (checked to be JSON in every case).
/// @param options_json, parent as in baton_tool_execute().
#[no_mangle]
pub extern "C" fn baton_tool_enter(
    stack: BatonStack,
    name: *const c_char,
    args_json: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    bare_out: *mut bool,
    call_out: *mut BatonCall,
) -> i32 {
    ffi(|| tool_enter(stack, || cstr(name, "name"), || cstr(args_json, "args_json"), options_json, parent, bare_out, call_out))
}

/// baton_tool_enter() with explicit lengths, for hosts whose strings are not NUL-terminated
/// (Go passes its own bytes this way, without a copy): `name` is `name_len` bytes of UTF-8 and
/// `args_json` is `args_len` bytes of JSON, both borrowed for the call; either may be `NULL`
/// when its length is 0. Everything else is as baton_tool_enter().
#[no_mangle]
pub extern "C" fn baton_tool_enter_n(
    stack: BatonStack,
    name: *const c_char,
    name_len: usize,
    args_json: *const c_char,
    args_len: usize,
    options_json: *const c_char,
    parent: BatonScope,
    bare_out: *mut bool,
    call_out: *mut BatonCall,
) -> i32 {
    ffi(|| {
        tool_enter(
            stack,
            || str_n(name, name_len, "name"),
            || str_n(args_json, args_len, "args_json"),
            options_json,
            parent,
            bare_out,
            call_out,
        )
    })
}

fn tool_enter<'a>(
    stack: BatonStack,
    name: impl FnOnce() -> Result<&'a str>,
    args: impl FnOnce() -> Result<&'a str>,
    options_json: *const c_char,
    parent: BatonScope,
    bare_out: *mut bool,
    call_out: *mut BatonCall,
) -> Result<()> {
    convert::check_out(bare_out, "bare_out")?;
    convert::check_out(call_out, "call_out")?;
    write_bool(bare_out, false)?;
    write_id(call_out, || Ok(0))?;
    let name = name()?;
    let args = args()?;
    let opts = tool_options(options_json, parent)?;
    let st = HANDLES.stack(stack)?;
    if st.unobserved()? && !name.is_empty() {
        // Checked without keeping anything: the host runs the callback on its own bytes.
        json::check(args, "args_json")?;
        return write_bool(bare_out, true);
    }
    let args = json::payload(args, "args_json")?;
    match st.enter_tool(name, || Ok(args), opts)? {
        Some(call) => write_id(call_out, || Ok(ENTERED_CALLS.insert(call, stack))),
        None => Ok(()),
    }
}

/// Ends a call entered with baton_tool_enter() and frees its id: with the callback's result
/// (`result_json`, JSON), or, when `result_json` is `NULL`, as failed with `status` (a
/// `BATON_ERR_*`; others count as `BATON_ERR_CALLBACK_FAILED`), `message` and
/// `exception_type` (both borrowed, may be `NULL`). A result that is not JSON ends the call
/// as failed and returns `BATON_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn baton_tool_exit(
    call: BatonCall,
    result_json: *const c_char,
    status: i32,
    message: *const c_char,
    exception_type: *const c_char,
) -> i32 {
    ffi(|| tool_exit(call, (!result_json.is_null()).then(|| cstr(result_json, "result_json")), status, message, exception_type))
}

/// baton_tool_exit() with the result's length: `result_json` is `result_len` bytes of JSON
/// (not NUL-terminated, borrowed for the call), or `NULL` to end the call as failed with
/// `status`, `message` and `exception_type` (NUL-terminated, as in baton_tool_exit()).
#[no_mangle]
pub extern "C" fn baton_tool_exit_n(
    call: BatonCall,
    result_json: *const c_char,
    result_len: usize,
    status: i32,
    message: *const c_char,
    exception_type: *const c_char,
) -> i32 {
    ffi(|| {
        let result = (!result_json.is_null()).then(|| str_n(result_json, result_len, "result_json"));
        tool_exit(call, result, status, message, exception_type)
    })
}

/// Ends an entered call: with `result` (`Some`: the result's text, or the error reading it),
/// or as failed with the reported status, message and exception type (`None`).
fn tool_exit(
    call: BatonCall,
    result: Option<Result<&str>>,
    status: i32,
    message: *const c_char,
    exception_type: *const c_char,
) -> Result<()> {
    let entered = ENTERED_CALLS.remove(call)?;
    if let Some(text) = result {
        return match text.and_then(|t| json::payload(t, "result_json")) {
            Ok(p) => {
                entered.exit(Ok(p));
                Ok(())
            }
            Err(e) => {
                entered.exit(Err(&e));
                Err(e)
            }
        };
    }
    let e = reported_error(status, message, exception_type)?;
    entered.exit(Err(&e));
    Ok(())
}

/// The error a host reports with a status, a message and its own exception type (both
/// borrowed, may be `NULL`): what baton_out_set_error() and baton_tool_exit() record.
pub(super) fn reported_error(status: i32, message: *const c_char, exception_type: *const c_char) -> Result<Error> {
    let kind = kind_of(status).unwrap_or(ErrorKind::CallbackFailed);
    let e = Error::new(kind, opt_cstr(message, "message")?.unwrap_or("callback failed"));
    Ok(match opt_cstr(exception_type, "exception_type")? {
        Some(t) => e.with_exception_type(t),
        None => e,
    })
}

/// Runs a managed LLM call; `request_json` is `{"headers": {...}, "content": <provider JSON>}`.
/// @param options_json `NULL` or `{"model_name", "metadata", "attributes", "codec",
///        "response_codec"}` (codecs: see baton_codec_decode_request()).
/// Otherwise as baton_tool_execute().
#[no_mangle]
pub extern "C" fn baton_llm_execute(
    stack: BatonStack,
    name: *const c_char,
    request_json: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    callback: BatonCallbackFn,
    user_data: *mut c_void,
    result_out: *mut *mut c_char,
) -> i32 {
    ffi(|| {
        convert::check_out(result_out, "result_out")?;
        let name = cstr(name, "name")?;
        let request = Data::from_json(cstr(request_json, "request_json")?, "request_json")?;
        let opts = llm_options(options_json, parent)?;
        let cb = hooks::Callback::new(callback, user_data)?;
        let v = HANDLES.stack(stack)?.llm_data(name, request, |input| cb.call(&input), opts)?;
        write_string(result_out, v.json().into_owned())
    })
}

/// Starts a managed streaming LLM call. `callback` runs once, now, and must set a chunk source
/// with baton_out_set_chunk_source(); the chunks are then pulled lazily, one per
/// baton_llm_stream_next(), through the stream execution intercepts.
/// @param options_json `NULL` or `{"model_name", "metadata", "attributes", "chunk_marks": bool,
///        "codec", "response_codec"}`.
/// @param user_data borrowed for this call only (the chunk source has its own state).
/// @param out receives the stream id; baton_llm_stream_free() drops it (an unfinished stream
///        then ends as cancelled).
#[no_mangle]
pub extern "C" fn baton_llm_stream_start(
    stack: BatonStack,
    name: *const c_char,
    request_json: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    callback: BatonCallbackFn,
    user_data: *mut c_void,
    out: *mut BatonStream,
) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let name = cstr(name, "name")?;
        let request = json_arg(request_json, "request_json")?;
        let opts = llm_options(options_json, parent)?;
        let cb = hooks::Callback::new(callback, user_data)?;
        let stream = HANDLES.stack(stack)?.llm_stream(name, request, |input| cb.call_source(&input), opts)?;
        write_id(out, || Ok(HANDLES.insert(Handle::Stream(Arc::new(Mutex::new(Some(stream)))))))
    })
}

/// Pulls the next chunk of a managed stream.
/// @param chunk_out receives the chunk JSON (free it with baton_string_free()), or `NULL` when
///        the stream has ended.
#[no_mangle]
pub extern "C" fn baton_llm_stream_next(stream: BatonStream, chunk_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(chunk_out, "chunk_out")?;
        // SAFETY: checked non-null above.
        unsafe { *chunk_out = std::ptr::null_mut() };
        let s = HANDLES.stream(stream)?;
        let mut guard = s.lock().unwrap_or_else(|p| p.into_inner());
        let Some(st) = guard.as_mut() else {
            return Ok(());
        };
        match st.next() {
            None => Ok(()),
            Some(Err(e)) => Err(e),
            Some(Ok(chunk)) => write_string(chunk_out, chunk.to_string()),
        }
    })
}

/// Releases a stream id. An unfinished stream ends with `ERROR` status `cancelled`.
#[no_mangle]
pub extern "C" fn baton_llm_stream_free(stream: BatonStream) -> i32 {
    ffi(|| {
        let h = HANDLES.remove(stream, "stream", |h| matches!(h, Handle::Stream(_)))?;
        if let Handle::Stream(s) = h {
            let taken = s.lock().unwrap_or_else(|p| p.into_inner()).take();
            drop(taken);
        }
        Ok(())
    })
}
