//! Middleware and subscriber registration.

use super::*;

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
