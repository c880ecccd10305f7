//! Stacks: the thread's current one, forks, propagation.

use super::*;

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
