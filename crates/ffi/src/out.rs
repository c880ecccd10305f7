//! What callbacks use: setting their result (`BatonOut`), calling the rest of an execution intercept (`BatonNext`), pulling an intercepted stream (`BatonChunkStream`).

use super::calls::reported_error;
use super::*;

/// Sets the JSON result of a callback (validated; `BATON_ERR_INVALID_ARGUMENT` if not JSON).
/// `out` is only valid during the callback that received it.
#[no_mangle]
pub extern "C" fn baton_out_set_json(out: *mut BatonOut, json: *const c_char) -> i32 {
    ffi(|| {
        let v = Data::from_json(cstr(json, "json")?, "json")?;
        hooks::out_mut(out)?.value = Some(v);
        Ok(())
    })
}

/// Like baton_out_set_json() with an explicit length (`json` need not be NUL-terminated).
#[no_mangle]
pub extern "C" fn baton_out_set_json_n(out: *mut BatonOut, json: *const c_char, len: usize) -> i32 {
    ffi(|| {
        if json.is_null() {
            return Err(Error::invalid_argument("json: null pointer"));
        }
        // SAFETY: the caller passes `len` readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(json.cast::<u8>(), len) };
        let text = std::str::from_utf8(bytes).map_err(|e| Error::invalid_argument(format!("json: invalid UTF-8 ({e})")))?;
        hooks::out_mut(out)?.value = Some(Data::from_json(text, "json")?);
        Ok(())
    })
}

/// Describes the failure a callback reports by returning `status`.
/// @param status a `BATON_ERR_*` kind (others become `BATON_ERR_CALLBACK_FAILED`).
/// @param message the message (borrowed; `NULL` for none).
/// @param exception_type the host language's error type name for `exception.type`, or `NULL`.
#[no_mangle]
pub extern "C" fn baton_out_set_error(out: *mut BatonOut, status: i32, message: *const c_char, exception_type: *const c_char) -> i32 {
    ffi(|| {
        let e = reported_error(status, message, exception_type)?;
        hooks::out_mut(out)?.error = Some(e);
        Ok(())
    })
}

/// A guardrail's rejection, with its reason (borrowed).
#[no_mangle]
pub extern "C" fn baton_out_set_reject(out: *mut BatonOut, reason: *const c_char) -> i32 {
    ffi(|| {
        let r = cstr(reason, "reason")?.to_string();
        hooks::out_mut(out)?.reject = Some(r);
        Ok(())
    })
}

/// Sets a chunk source (stream callbacks and stream intercepts). Baton owns `state` from now
/// on: it calls `next(state, out)` for each chunk, on the thread pulling the stream, and
/// `free_state(state)` exactly once when the stream is done or dropped (also if the call fails).
#[no_mangle]
pub extern "C" fn baton_out_set_chunk_source(
    out: *mut BatonOut,
    state: *mut c_void,
    next: BatonChunkNextFn,
    free_state: BatonFreeFn,
) -> i32 {
    let source = hooks::ChunkSource::new(state, next, free_state);
    ffi(move || {
        let source = source?;
        hooks::out_mut(out)?.source = Some(source);
        Ok(())
    })
}

/// Calls the rest of an execution chain (and finally the callback) with `input_json`. Valid
/// only until the intercept that received `next` returns.
/// @param result_out receives the result JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_next_call(next: *mut BatonNext, input_json: *const c_char, result_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(result_out, "result_out")?;
        let input = json_arg(input_json, "input_json")?;
        let v = hooks::next_ref(next)?.call(input)?;
        write_string(result_out, v.to_string())
    })
}

/// Queues a mark from an execution intercept; it is emitted right after the call's end event,
/// parented under the call.
/// @param data_json the mark's data or `NULL`; @param metadata_json an object or `NULL`.
#[no_mangle]
pub extern "C" fn baton_next_queue_mark(
    next: *mut BatonNext,
    name: *const c_char,
    data_json: *const c_char,
    metadata_json: *const c_char,
) -> i32 {
    ffi(|| {
        let name = cstr(name, "name")?;
        let data = if data_json.is_null() { Value::Null } else { json_arg(data_json, "data_json")? };
        let metadata = convert::object_arg(metadata_json, "metadata_json")?;
        hooks::next_ref(next)?.queue_mark(name, data, metadata);
        Ok(())
    })
}

/// Pulls the next chunk of the inner stream given to a stream intercept.
/// @param chunk_out receives the chunk JSON (free it with baton_string_free()), or `NULL` at the end.
#[no_mangle]
pub extern "C" fn baton_chunk_stream_next(stream: *mut BatonChunkStream, chunk_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(chunk_out, "chunk_out")?;
        // SAFETY: checked non-null above.
        unsafe { *chunk_out = std::ptr::null_mut() };
        match hooks::chunk_stream_next(stream)? {
            None => Ok(()),
            Some(v) => write_string(chunk_out, v.to_string()),
        }
    })
}
