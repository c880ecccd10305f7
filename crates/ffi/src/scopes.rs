//! Scopes (push, pop) and marks, metrics included.

use super::*;

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
