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

// The entry points, one module per area of the header, declared in the header's order: cbindgen
// writes items in the order it reads them, and rustfmt sorts a run of `mod` lines (hence the
// blank lines between them).
mod errors;

mod runtimes;

mod stacks;

mod scopes;

mod calls;

mod manual;

mod standalone;

mod middleware;

mod plugins;

mod codecs;

mod out;

// What the other modules (and the existing ones above) share from them.
pub(crate) use errors::{c_string, ffi, kind_of};
