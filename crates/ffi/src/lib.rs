//! Baton's C ABI. `cbindgen` turns the `extern "C"` items of this crate into
//! `include/baton.h`; docs/c-go.md describes the conventions.
//!
//! The crate holds only the boundary: JSON in and out, handle ids, error mapping, and
//! trampolines that let C function pointers act as callbacks, middleware and subscribers.
//! Every rule lives in the core (`baton`).

#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod convert;
mod handles;
mod hooks;
mod json;

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::{Data, Error, ErrorKind, Family, Registration, Result, Runtime, RuntimeConfig};
use serde_json::{json, Value};

use crate::convert::{
    cstr, end_options, json_arg, llm_options, mark_options, opt_cstr, options, scope_options, str_n, tool_options, write_bool, write_id,
    write_string,
};
use crate::handles::{Handle, ENTERED_CALLS, HANDLES};
pub use crate::hooks::{BatonChunkStream, BatonNext, BatonOut};

/// The version of this ABI. It changes whenever a function, type or callback signature changes
/// incompatibly; compare it with baton_abi_version() at startup.
pub const BATON_ABI_VERSION: u32 = 1;

/// Success.
pub const BATON_OK: i32 = 0;
/// An argument is invalid: a null pointer, invalid UTF-8, invalid JSON, a bad option.
pub const BATON_ERR_INVALID_ARGUMENT: i32 = 1;
/// The operation is not allowed now (for example a managed call from inside middleware).
pub const BATON_ERR_INVALID_STATE: i32 = 2;
/// Unknown or freed handle, or a scope or call that already ended.
pub const BATON_ERR_NOT_FOUND: i32 = 3;
/// A registration of that name already exists.
pub const BATON_ERR_ALREADY_EXISTS: i32 = 4;
/// A conditional-execution guardrail rejected the call.
pub const BATON_ERR_GUARDRAIL_REJECTED: i32 = 5;
/// A host callback failed.
pub const BATON_ERR_CALLBACK_FAILED: i32 = 6;
/// An upstream service failed.
pub const BATON_ERR_UPSTREAM: i32 = 7;
/// A timeout passed.
pub const BATON_ERR_TIMEOUT: i32 = 8;
/// The runtime has been shut down.
pub const BATON_ERR_ALREADY_SHUTDOWN: i32 = 9;
/// A bug or a panic inside Baton (never crosses the ABI as a crash).
pub const BATON_ERR_INTERNAL: i32 = 10;

/// A runtime id. `0` is the process-wide (global) runtime.
pub type BatonRuntime = u64;
/// A stack id. As an argument, `0` is the calling thread's current stack (on the global runtime).
pub type BatonStack = u64;
/// A scope id. As a `parent` argument, `0` means "the top of the stack".
pub type BatonScope = u64;
/// A manual-lifecycle call id (from baton_tool_start() / baton_llm_start()).
pub type BatonCall = u64;
/// A managed LLM stream id (from baton_llm_stream_start()).
pub type BatonStream = u64;

/// Frees a `user_data` pointer (or a chunk source's `state`). Called exactly once.
pub type BatonFreeFn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The host callback of a managed call (tool, LLM, LLM stream).
///
/// `input_json` is the (intercepted) args or request, borrowed for the call. Return
/// `BATON_OK` after setting the result with baton_out_set_json() (not set: `null`); for a
/// stream, set the chunk source with baton_out_set_chunk_source() instead. To fail, return a
/// `BATON_ERR_*` status, ideally after baton_out_set_error(). It may call back into Baton
/// (nested scopes, marks, managed calls) on the same thread.
pub type BatonCallbackFn = Option<unsafe extern "C" fn(user_data: *mut c_void, input_json: *const c_char, out: *mut BatonOut) -> i32>;

/// A middleware callback of the families registered with baton_middleware_register().
///
/// `info_json` describes the call (`{kind, name, tool_call_id, model_name, parent_uuid, uuid}`)
/// or, for event middleware, the event (`{kind, scope_category, uuid, parent_uuid, name,
/// category}`). `input_json` and what to set in `out` depend on the family; see
/// baton_middleware_register(). Both strings are borrowed for the call.
pub type BatonHookFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, info_json: *const c_char, input_json: *const c_char, out: *mut BatonOut) -> i32>;

/// An execution intercept: call the rest of the chain with baton_next_call() zero, one or several
/// times (only until this function returns), then set the result with baton_out_set_json().
pub type BatonExecutionInterceptFn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        info_json: *const c_char,
        input_json: *const c_char,
        next: *mut BatonNext,
        out: *mut BatonOut,
    ) -> i32,
>;

/// A stream execution intercept: wraps `inner` (pull it with baton_chunk_stream_next()). Set a
/// chunk source with baton_out_set_chunk_source() to replace the stream (it may keep pulling
/// `inner` until its free function runs), or set nothing to pass `inner` through unchanged.
pub type BatonStreamInterceptFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, info_json: *const c_char, inner: *mut BatonChunkStream, out: *mut BatonOut) -> i32>;

/// A subscriber: receives one ATOF event as JSON (borrowed for the call) on Baton's dispatcher
/// thread. A non-OK status counts as a subscriber failure; other subscribers are unaffected.
pub type BatonSubscriberFn = Option<unsafe extern "C" fn(user_data: *mut c_void, event_json: *const c_char) -> i32>;

/// A batch subscriber: receives the events of one dispatcher batch at once (borrowed for the
/// call), on Baton's dispatcher thread, in emission order. Event `i` is the ATOF JSON in
/// `events[ends[i-1] .. ends[i]]` (`ends[-1]` being 0); the text is not NUL-separated.
/// Returns how many of the `count` events it failed to handle (each counts as a subscriber
/// failure); 0 when all were handled.
pub type BatonSubscriberBatchFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, events: *const c_char, ends: *const usize, count: usize) -> usize>;

/// Pulls the next chunk of a chunk source: set it with baton_out_set_json() and return
/// `BATON_OK`; return `BATON_OK` without setting anything at the end of the stream; return a
/// `BATON_ERR_*` status to fail the stream.
pub type BatonChunkNextFn = Option<unsafe extern "C" fn(state: *mut c_void, out: *mut BatonOut) -> i32>;

// ----- errors -----

thread_local! {
    static LAST_ERROR: std::cell::RefCell<(i32, std::ffi::CString)> = std::cell::RefCell::new((BATON_OK, std::ffi::CString::default()));
}

pub(crate) fn status_of(kind: ErrorKind) -> i32 {
    ErrorKind::ALL.iter().position(|k| *k == kind).map_or(BATON_ERR_INTERNAL, |i| i as i32 + 1)
}

pub(crate) fn kind_of(status: i32) -> Option<ErrorKind> {
    usize::try_from(status).ok().and_then(|s| s.checked_sub(1)).and_then(|i| ErrorKind::ALL.get(i).copied())
}

/// A C string of `s` (no copy unless it holds a NUL, which becomes U+FFFD).
pub(crate) fn c_string(s: impl Into<String>) -> std::ffi::CString {
    std::ffi::CString::new(s.into()).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\u{fffd}");
        std::ffi::CString::new(text).unwrap_or_default()
    })
}

fn set_last_error(e: &Error) -> i32 {
    let status = status_of(e.kind());
    LAST_ERROR.with(|l| *l.borrow_mut() = (status, c_string(e.message())));
    status
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic: non-string payload".to_string()
    }
}

/// Runs an entry point: catches panics and records the error of a failure.
fn ffi(f: impl FnOnce() -> Result<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => BATON_OK,
        Ok(Err(e)) => set_last_error(&e),
        Err(p) => set_last_error(&Error::internal(panic_message(p))),
    }
}

/// The ABI version of the loaded library (compare with `BATON_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn baton_abi_version() -> u32 {
    BATON_ABI_VERSION
}

/// The kind (`BATON_ERR_*`) of the last failure on this thread, or `BATON_OK` if none yet.
#[no_mangle]
pub extern "C" fn baton_last_error_kind() -> i32 {
    LAST_ERROR.with(|l| l.borrow().0)
}

/// The message of the last failure on this thread (empty if none). The string is owned by
/// Baton and stays valid until the next failing call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn baton_last_error_message() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().1.as_ptr())
}

/// The canonical name of a status (`"ok"`, `"invalid_argument"`, ...); `"unknown"` otherwise.
/// The string is static: never free it.
#[no_mangle]
pub extern "C" fn baton_status_name(status: i32) -> *const c_char {
    static NAMES: [&CStr; 11] = [
        c"ok",
        c"invalid_argument",
        c"invalid_state",
        c"not_found",
        c"already_exists",
        c"guardrail_rejected",
        c"callback_failed",
        c"upstream",
        c"timeout",
        c"already_shutdown",
        c"internal",
    ];
    usize::try_from(status).ok().and_then(|i| NAMES.get(i)).unwrap_or(&c"unknown").as_ptr()
}

/// Frees a string returned by Baton through a `char **` out-parameter. `NULL` is a no-op.
#[no_mangle]
pub extern "C" fn baton_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: every string handed out by this crate comes from CString::into_raw.
        drop(unsafe { std::ffi::CString::from_raw(s) });
    }
}

// ----- runtimes -----

fn runtime_config(p: *const c_char) -> Result<RuntimeConfig> {
    let o = options(p, "config", &["queue_capacity", "overflow"])?;
    let mut c = RuntimeConfig::default();
    if let Some(v) = o.get("queue_capacity") {
        c.queue_capacity = v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::invalid_argument(format!("config.queue_capacity: expected a positive integer, got {v}")))?
            as usize;
    }
    if let Some(v) = o.get("overflow") {
        let s = v.as_str().ok_or_else(|| Error::invalid_argument(format!("config.overflow: expected \"block\" or \"drop\", got {v}")))?;
        c.overflow = baton::OverflowPolicy::parse(s)?;
    }
    Ok(c)
}

/// Creates an independent runtime (its own registry and dispatcher).
/// @param config_json `{"queue_capacity": n, "overflow": "block"|"drop"}` or `NULL` for defaults.
/// @param out receives the runtime id; free it with baton_runtime_free().
#[no_mangle]
pub extern "C" fn baton_runtime_new(config_json: *const c_char, out: *mut BatonRuntime) -> i32 {
    ffi(|| {
        let config = runtime_config(config_json)?;
        write_id(out, || Ok(HANDLES.insert(Handle::Runtime(Runtime::new(config)))))
    })
}

/// Configures the global runtime (id 0) before its first use; `BATON_ERR_ALREADY_EXISTS` after.
#[no_mangle]
pub extern "C" fn baton_runtime_init_global(config_json: *const c_char) -> i32 {
    ffi(|| Runtime::init_global(runtime_config(config_json)?).map(|_| ()))
}

/// Releases a runtime id (not the global runtime). Stacks made from it keep it alive.
#[no_mangle]
pub extern "C" fn baton_runtime_free(runtime: BatonRuntime) -> i32 {
    ffi(|| {
        if runtime == 0 {
            return Err(Error::invalid_argument("runtime: the global runtime (0) cannot be freed"));
        }
        HANDLES.remove(runtime, "runtime", |h| matches!(h, Handle::Runtime(_))).map(drop)
    })
}

/// Waits until every event emitted before this call has been delivered.
/// @param completed receives whether that happened within `timeout_ms` (may be `NULL`).
#[no_mangle]
pub extern "C" fn baton_runtime_flush(runtime: BatonRuntime, timeout_ms: u64, completed: *mut bool) -> i32 {
    ffi(|| {
        let done = HANDLES.runtime(runtime)?.flush(Duration::from_millis(timeout_ms))?;
        write_bool(completed, done)
    })
}

/// Flushes, then stops the runtime; afterwards operations return `BATON_ERR_ALREADY_SHUTDOWN`.
/// @param completed receives whether the flush finished within `timeout_ms` (may be `NULL`).
#[no_mangle]
pub extern "C" fn baton_runtime_shutdown(runtime: BatonRuntime, timeout_ms: u64, completed: *mut bool) -> i32 {
    ffi(|| {
        let done = HANDLES.runtime(runtime)?.shutdown(Duration::from_millis(timeout_ms))?;
        write_bool(completed, done)
    })
}

/// Delivery counters as JSON: `{delivered_events, dropped_events, subscriber_failures,
/// middleware_failures, queued}`.
/// @param out receives the JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_runtime_diagnostics(runtime: BatonRuntime, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        let d = HANDLES.runtime(runtime)?.diagnostics();
        write_string(
            out,
            json!({
                "delivered_events": d.delivered_events,
                "dropped_events": d.dropped_events,
                "subscriber_failures": d.subscriber_failures,
                "middleware_failures": d.middleware_failures,
                "queued": d.queued,
            })
            .to_string(),
        )
    })
}

// ----- stacks -----

/// Creates a fresh, empty stack with no parent on `runtime` (0 = global).
/// @param out receives the stack id; free it with baton_stack_free().
#[no_mangle]
pub extern "C" fn baton_stack_new(runtime: BatonRuntime, out: *mut BatonStack) -> i32 {
    ffi(|| write_id(out, || Ok(HANDLES.insert(Handle::Stack(HANDLES.runtime(runtime)?.new_stack())))))
}

/// Forks `stack`: a new, empty stack whose first scope is parented under `stack`'s current scope.
/// @param out receives the new stack id; free it with baton_stack_free().
#[no_mangle]
pub extern "C" fn baton_stack_fork(stack: BatonStack, out: *mut BatonStack) -> i32 {
    ffi(|| write_id(out, || Ok(HANDLES.insert(Handle::Stack(HANDLES.stack(stack)?.fork())))))
}

/// A stack whose top-level scopes are parented under a propagation context
/// (`{"version": 1, "root_uuid"?, "parent_uuid"}`) from another process.
/// @param out receives the new stack id; free it with baton_stack_free().
#[no_mangle]
pub extern "C" fn baton_stack_from_propagation(runtime: BatonRuntime, context_json: *const c_char, out: *mut BatonStack) -> i32 {
    ffi(|| {
        let context = json_arg(context_json, "context_json")?;
        write_id(out, || Ok(HANDLES.insert(Handle::Stack(HANDLES.runtime(runtime)?.stack_from_propagation(&context)?))))
    })
}

/// Releases a stack id. Scope ids pushed on it keep the stack alive until they are freed.
#[no_mangle]
pub extern "C" fn baton_stack_free(stack: BatonStack) -> i32 {
    ffi(|| HANDLES.remove(stack, "stack", |h| matches!(h, Handle::Stack(_))).map(drop))
}

/// The propagation context of the stack's current position, as JSON.
/// @param out receives the JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_stack_propagation_context(stack: BatonStack, out: *mut *mut c_char) -> i32 {
    ffi(|| write_string(out, HANDLES.stack(stack)?.propagation_context().to_string()))
}

/// The W3C `traceparent` of the stack's current scope (`BATON_ERR_INVALID_STATE` when empty).
/// @param out receives the string; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_stack_traceparent(stack: BatonStack, out: *mut *mut c_char) -> i32 {
    ffi(|| write_string(out, HANDLES.stack(stack)?.traceparent()?))
}

/// The innermost open scope of the stack as a new scope id (0 when the stack is empty).
/// @param out receives the scope id (free it with baton_scope_free()) or 0.
#[no_mangle]
pub extern "C" fn baton_stack_current_scope(stack: BatonStack, out: *mut BatonScope) -> i32 {
    ffi(|| {
        write_id(out, || {
            let st = HANDLES.stack(stack)?;
            Ok(st.current().map_or(0, |h| HANDLES.insert(Handle::Scope(h, st.clone()))))
        })
    })
}

/// Whether a managed tool call on this stack would only run its callback: nothing is
/// registered anywhere, so no middleware runs and no event is emitted (the core's rule). A
/// host may then call its callback itself and skip the boundary crossings; the call must
/// still have a non-empty name and JSON arguments.
/// @param out receives the answer.
/// @return `BATON_ERR_ALREADY_SHUTDOWN` after shutdown, `BATON_ERR_INVALID_STATE` from inside
///         middleware: what the call itself would return.
#[no_mangle]
pub extern "C" fn baton_stack_unobserved(stack: BatonStack, out: *mut bool) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let bare = HANDLES.stack(stack)?.unobserved()?;
        write_bool(out, bare)
    })
}

// ----- scopes and marks -----

/// Opens a scope on `stack` and emits its start event.
/// @param name the scope name (UTF-8, borrowed).
/// @param options_json `NULL` or `{"category", "input", "metadata", "attributes",
///        "category_profile", "data_schema"}` (category defaults to `"function"`).
/// @param parent an explicit parent scope, or 0 for the top of the stack.
/// @param out receives the scope id; free it with baton_scope_free() (ending is baton_scope_pop()).
///        The id keeps its stack alive until it is freed.
#[no_mangle]
pub extern "C" fn baton_scope_push(
    stack: BatonStack,
    name: *const c_char,
    options_json: *const c_char,
    parent: BatonScope,
    out: *mut BatonScope,
) -> i32 {
    ffi(|| {
        let opts = scope_options(cstr(name, "name")?, options_json, parent)?;
        write_id(out, || {
            let st = HANDLES.stack(stack)?;
            let h = st.push(opts)?;
            Ok(HANDLES.insert(Handle::Scope(h, st)))
        })
    })
}

/// Ends a scope on the stack it was pushed on, unwinding scopes still open above it.
/// @param options_json `NULL` or `{"output", "metadata", "error": "msg" | {"kind", "message"}}`.
/// The scope id stays valid (ending again is `BATON_ERR_NOT_FOUND`) until baton_scope_free().
#[no_mangle]
pub extern "C" fn baton_scope_pop(scope: BatonScope, options_json: *const c_char) -> i32 {
    ffi(|| {
        let (h, st) = HANDLES.scope_and_stack(scope)?;
        let end = end_options(options_json)?;
        st.pop(&h, end)
    })
}

/// The scope's uuid.
/// @param out receives the uuid string; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_scope_uuid(scope: BatonScope, out: *mut *mut c_char) -> i32 {
    ffi(|| write_string(out, HANDLES.scope(scope)?.uuid().to_string()))
}

/// Releases a scope id (does not end the scope).
#[no_mangle]
pub extern "C" fn baton_scope_free(scope: BatonScope) -> i32 {
    ffi(|| HANDLES.remove(scope, "scope", |h| matches!(h, Handle::Scope(..))).map(drop))
}

/// Emits a mark under `parent` (0: the top of the stack).
/// @param options_json `NULL` or `{"data", "metadata", "category", "category_profile", "data_schema"}`.
#[no_mangle]
pub extern "C" fn baton_mark_emit(stack: BatonStack, name: *const c_char, options_json: *const c_char, parent: BatonScope) -> i32 {
    ffi(|| {
        let opts = mark_options(cstr(name, "name")?, options_json, parent)?;
        HANDLES.stack(stack)?.mark(opts)
    })
}

/// Emits a metric mark.
/// @param measurements_json an array of `{"value": number, "attributes"?: {...}}` or one number.
/// @param unit the unit, or `NULL`.
#[no_mangle]
pub extern "C" fn baton_metric_emit(stack: BatonStack, name: *const c_char, measurements_json: *const c_char, unit: *const c_char) -> i32 {
    ffi(|| {
        let name = cstr(name, "name")?;
        let m = json_arg(measurements_json, "measurements_json")?;
        let unit = opt_cstr(unit, "unit")?;
        HANDLES.stack(stack)?.metric(name, m, unit)
    })
}

// ----- managed calls -----

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
fn reported_error(status: i32, message: *const c_char, exception_type: *const c_char) -> Result<Error> {
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

// ----- manual lifecycle -----

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

// ----- standalone helpers -----

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

// ----- middleware and subscribers -----

fn registration(name: *const c_char, priority: i32, scope: BatonScope, break_chain: bool) -> Result<Registration> {
    let mut reg = Registration::new(cstr(name, "name")?).priority(priority).break_chain(break_chain);
    if scope != 0 {
        reg.scope = Some(HANDLES.scope(scope)?);
    }
    Ok(reg)
}

/// Registers a middleware callback of one of these families (`kind`), globally (`scope` 0) or
/// on a scope (removed when it ends). For each, `input_json` and what to set in `out`:
/// - `tool_conditional_execution`, `llm_conditional_execution`: the args / request;
///   baton_out_set_reject() rejects, nothing set allows.
/// - `tool_request_intercept`, `llm_request_intercept`: the args / request; set the rewritten
///   value (nothing set keeps it). `break_chain` stops the later intercepts.
/// - `tool_sanitize_request`, `tool_sanitize_response`, `llm_sanitize_request`,
///   `llm_sanitize_response`: the payload an event carries; set the sanitized payload
///   (nothing set omits it).
/// - `mark_sanitize`, `scope_sanitize_start`, `scope_sanitize_end`: `{"data", "metadata"}`;
///   set the new `{"data", "metadata"}` (nothing set omits the data).
/// - `event_metadata_injector`: `null`; set an object of keys to add.
///
/// `user_data` is passed to every call and freed with `free_user_data` (may be `NULL`) exactly
/// once, when the registration is dropped — also when this call fails. The callback may run
/// on any thread, concurrently.
#[no_mangle]
pub extern "C" fn baton_middleware_register(
    runtime: BatonRuntime,
    kind: *const c_char,
    name: *const c_char,
    priority: i32,
    scope: BatonScope,
    break_chain: bool,
    callback: BatonHookFn,
    user_data: *mut c_void,
    free_user_data: BatonFreeFn,
) -> i32 {
    let ud = hooks::UserData::new(user_data, free_user_data);
    ffi(move || {
        let family = Family::parse(cstr(kind, "kind")?)?;
        let mw = hooks::hook_middleware(family, callback, ud)?;
        HANDLES.runtime(runtime)?.register(registration(name, priority, scope, break_chain)?, mw)
    })
}

/// Registers an execution intercept (`kind` is `tool_execution_intercept` or
/// `llm_execution_intercept`); lower priority is outermost. Ownership of `user_data` as in
/// baton_middleware_register().
#[no_mangle]
pub extern "C" fn baton_execution_intercept_register(
    runtime: BatonRuntime,
    kind: *const c_char,
    name: *const c_char,
    priority: i32,
    scope: BatonScope,
    callback: BatonExecutionInterceptFn,
    user_data: *mut c_void,
    free_user_data: BatonFreeFn,
) -> i32 {
    let ud = hooks::UserData::new(user_data, free_user_data);
    ffi(move || {
        let family = Family::parse(cstr(kind, "kind")?)?;
        let mw = hooks::execution_middleware(family, callback, ud)?;
        HANDLES.runtime(runtime)?.register(registration(name, priority, scope, false)?, mw)
    })
}

/// Registers a stream execution intercept (`llm_stream_execution_intercept`). Ownership of
/// `user_data` as in baton_middleware_register().
#[no_mangle]
pub extern "C" fn baton_stream_intercept_register(
    runtime: BatonRuntime,
    name: *const c_char,
    priority: i32,
    scope: BatonScope,
    callback: BatonStreamInterceptFn,
    user_data: *mut c_void,
    free_user_data: BatonFreeFn,
) -> i32 {
    let ud = hooks::UserData::new(user_data, free_user_data);
    ffi(move || {
        let mw = hooks::stream_middleware(callback, ud)?;
        HANDLES.runtime(runtime)?.register(registration(name, priority, scope, false)?, mw)
    })
}

/// Registers a subscriber, globally (`scope` 0) or on a scope. Events arrive as ATOF JSON on the
/// dispatcher thread, in emission order. Ownership of `user_data` as in
/// baton_middleware_register(); it is freed on the dispatcher after the last event.
#[no_mangle]
pub extern "C" fn baton_subscriber_register(
    runtime: BatonRuntime,
    name: *const c_char,
    priority: i32,
    scope: BatonScope,
    callback: BatonSubscriberFn,
    user_data: *mut c_void,
    free_user_data: BatonFreeFn,
) -> i32 {
    let ud = hooks::UserData::new(user_data, free_user_data);
    ffi(move || {
        let mw = hooks::subscriber_middleware(callback, ud)?;
        HANDLES.runtime(runtime)?.register(registration(name, priority, scope, false)?, mw)
    })
}

/// Registers a batch subscriber: as baton_subscriber_register(), but the callback receives all
/// the events of a dispatcher batch in one call (see ::BatonSubscriberBatchFn). One crossing
/// per batch instead of one per event is what a host pays less for when each crossing is
/// costly (Go's cgo callbacks from a foreign thread). A baton_runtime_flush() returns after
/// the batches holding the events it covers were handed over.
#[no_mangle]
pub extern "C" fn baton_subscriber_register_batch(
    runtime: BatonRuntime,
    name: *const c_char,
    priority: i32,
    scope: BatonScope,
    callback: BatonSubscriberBatchFn,
    user_data: *mut c_void,
    free_user_data: BatonFreeFn,
) -> i32 {
    let ud = hooks::UserData::new(user_data, free_user_data);
    ffi(move || {
        let mw = hooks::batch_subscriber_middleware(callback, ud)?;
        HANDLES.runtime(runtime)?.register(registration(name, priority, scope, false)?, mw)
    })
}

/// Removes a registration of family `kind` named `name`, globally (`scope` 0) or on a scope.
/// @param removed receives whether something was removed (may be `NULL`).
#[no_mangle]
pub extern "C" fn baton_middleware_deregister(
    runtime: BatonRuntime,
    kind: *const c_char,
    name: *const c_char,
    scope: BatonScope,
    removed: *mut bool,
) -> i32 {
    ffi(|| {
        let family = Family::parse(cstr(kind, "kind")?)?;
        let name = cstr(name, "name")?;
        let scope = if scope == 0 { None } else { Some(HANDLES.scope(scope)?) };
        let done = HANDLES.runtime(runtime)?.deregister(family, name, scope.as_ref())?;
        write_bool(removed, done)
    })
}

// ----- plugins -----

/// Makes the `opentelemetry` section and `https://` stream sinks of plugin documents work
/// (`baton_otel::install`), once per process, before the first document is read.
fn with_otel() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        baton_otel::install();
    });
}

/// Checks a plugins document (the `plugins.toml` format, as JSON); pure, installs nothing.
/// @param diagnostics_out receives the JSON array of diagnostics
///        `[{level, code, component?, field?, message}]`; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_plugin_validate(runtime: BatonRuntime, document_json: *const c_char, diagnostics_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(diagnostics_out, "diagnostics_out")?;
        let doc = json_arg(document_json, "document_json")?;
        with_otel();
        let d = HANDLES.runtime(runtime)?.plugin_validate(&doc);
        write_string(diagnostics_out, Value::Array(d.iter().map(|d| d.to_json()).collect()).to_string())
    })
}

/// Validates a plugins document, replaces the active configuration with it (rolling back on
/// failure) and reports what was installed.
/// @param report_out receives `{diagnostics, components: [{kind, registrations: [{kind, name}]}]}`;
///        free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_plugin_initialize(runtime: BatonRuntime, document_json: *const c_char, report_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(report_out, "report_out")?;
        let doc = json_arg(document_json, "document_json")?;
        with_otel();
        let report = HANDLES.runtime(runtime)?.plugin_initialize(&doc)?;
        write_string(report_out, report.to_json().to_string())
    })
}

/// Removes everything the active plugin configuration installed.
#[no_mangle]
pub extern "C" fn baton_plugin_clear(runtime: BatonRuntime) -> i32 {
    ffi(|| HANDLES.runtime(runtime)?.plugin_clear())
}

// ----- codecs -----

fn codec_arg(codec: *const c_char) -> Result<baton::codec::Codec> {
    baton::codec::Codec::parse(cstr(codec, "codec")?)
}

fn codec_result(out: *mut *mut c_char, v: Result<Option<Value>>) -> Result<()> {
    write_string(out, v?.unwrap_or(Value::Null).to_string())
}

/// Decodes a provider request into the normalized request.
/// @param codec `openai_chat`, `openai_responses`, `anthropic_messages`,
///        `gemini_generate_content` or `auto` (detect from the shape).
/// @param out receives the normalized request JSON (`null` when `auto` recognizes no codec);
///        free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_codec_decode_request(codec: *const c_char, request_json: *const c_char, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let request = json_arg(request_json, "request_json")?;
        codec_result(out, c.for_request(&request).map(|k| baton::codec::decode_request(k, &request)).transpose())
    })
}

/// Encodes an edited normalized request back into the provider request `original_json`.
/// @param out receives the provider request JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_codec_encode_request(
    codec: *const c_char,
    normalized_json: *const c_char,
    original_json: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let normalized = json_arg(normalized_json, "normalized_json")?;
        let original = json_arg(original_json, "original_json")?;
        codec_result(out, c.for_request(&original).map(|k| baton::codec::encode_request(k, &normalized, &original)).transpose())
    })
}

/// Normalizes a buffered provider response.
/// @param out receives the normalized response JSON (`null` when `auto` recognizes no codec).
#[no_mangle]
pub extern "C" fn baton_codec_decode_response(codec: *const c_char, response_json: *const c_char, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let response = json_arg(response_json, "response_json")?;
        codec_result(out, c.for_response(&response).map(|k| baton::codec::decode_response_json(k, &response)).transpose())
    })
}

/// Aggregates a whole stream of provider chunks (a JSON array) into the normalized response.
/// @param out receives the normalized response JSON (`null` when `auto` recognizes no codec).
#[no_mangle]
pub extern "C" fn baton_codec_aggregate_stream(codec: *const c_char, chunks_json: *const c_char, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let chunks = match json_arg(chunks_json, "chunks_json")? {
            Value::Array(a) => a,
            other => return Err(Error::invalid_argument(format!("chunks_json: expected an array, got {other}"))),
        };
        let kind = match c {
            baton::codec::Codec::Kind(k) => Some(k),
            baton::codec::Codec::Auto => chunks.iter().find_map(baton::codec::detect_chunk),
        };
        codec_result(out, kind.map(|k| baton::codec::aggregate_stream(k, &chunks).map(|r| r.to_json())).transpose())
    })
}

// ----- what callbacks use -----

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
