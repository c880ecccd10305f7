//! The last error of a thread, status codes and names, and `ffi`: the wrapper every entry point runs in (panics become `BATON_ERR_INTERNAL`).

use super::*;

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
pub(crate) fn ffi(f: impl FnOnce() -> Result<()>) -> i32 {
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
