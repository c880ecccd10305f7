//! `baton-node`: the Node.js binding of Baton, a napi-rs addon.
//!
//! The addon is thin by design (DESIGN.md §1): it converts values at the boundary, maps
//! errors, owns handles, and trampolines between the core and JS functions. Every rule lives
//! in the core. The idiomatic API (AsyncLocalStorage, option objects, classes, types) is the
//! JS facade in `node/`, the only caller of these functions.
//!
//! - [`task`]: the async bridge (core futures polled on the JS thread; promises as futures).
//! - [`deliver`]: subscribers on the JS thread, flush off it.
//! - [`convert`]: JSON only, with path-naming errors.

/// Every event, payload and scope is a small allocation made on one thread and often freed on
/// another (the JS thread and the dispatcher); mimalloc's per-thread free lists cost a
/// fraction of glibc malloc's arena locking there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api;
mod callbacks;
mod convert;
mod deliver;
mod entered;
mod handles;
mod js;
mod middleware;
mod stream;
mod task;

use napi::bindgen_prelude::{Env, Object};
use napi::JsValue;
use napi_derive::napi;

const EXPORTS: &[(&str, js::Handler)] = &[
    ("init", api::init),
    ("settle", api::settle),
    ("configure", api::configure),
    ("newStack", api::new_stack),
    ("fork", api::fork),
    ("stackFromPropagation", api::stack_from_propagation),
    ("propagationContext", api::propagation_context),
    ("traceparent", api::traceparent),
    ("currentScope", api::current_scope),
    ("currentId", api::current_id),
    ("stackDepth", api::stack_depth),
    ("push", api::push),
    ("enterScope", api::enter_scope),
    ("exitScope", api::exit_scope),
    ("pop", api::pop),
    ("scopeInfo", api::scope_info),
    ("mark", api::mark),
    ("metric", api::metric),
    ("unobserved", api::unobserved),
    ("tool", api::tool),
    ("enterTool", api::enter_tool),
    ("exitTool", api::exit_tool),
    ("enterLlm", api::enter_llm),
    ("enteredStack", api::entered_stack),
    ("exitForked", api::exit_forked),
    ("enteredPosition", entered::position_buffer),
    ("enteredRunning", api::entered_running),
    ("llm", api::llm),
    ("llmStream", api::llm_stream),
    ("streamNext", api::stream_next),
    ("streamClose", api::stream_close),
    ("enterLlmStream", api::enter_llm_stream),
    ("streamChunk", api::stream_chunk),
    ("streamFinish", api::stream_finish),
    ("chunksNext", api::chunks_next),
    ("callNext", api::call_next),
    ("callNextSync", api::call_next_sync),
    ("queueMark", api::queue_mark),
    ("toolStart", api::tool_start),
    ("llmStart", api::llm_start),
    ("callEnd", api::call_end),
    ("callUuid", api::call_uuid),
    ("conditionalExecution", api::conditional_execution),
    ("requestIntercepts", api::request_intercepts),
    ("register", api::register),
    ("deregister", api::deregister),
    ("flush", api::flush),
    ("shutdown", api::shutdown),
    ("takeEvents", api::take_events),
    ("pendingCounter", api::pending_counter),
    ("hostWelcome", api::host_welcome),
    ("metaBuffer", api::meta_buffer),
    ("diagnostics", api::diagnostics),
    ("isShutdown", api::is_shutdown),
    ("pluginValidate", api::plugin_validate),
    ("pluginInitialize", api::plugin_initialize),
    ("pluginClear", api::plugin_clear),
    ("codec", api::codec_op),
];

/// The Node-API version this addon is built for: the experimental one, under which Node runs
/// finalizers inside the garbage collector instead of on a later turn of the event loop.
/// `js::external` drops there only what frees memory alone and posts the rest.
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    i32::MAX
}

#[napi(module_exports)]
pub fn module_init(exports: Object, env: Env) -> napi::Result<()> {
    let raw_env = env.raw();
    js::set_env(raw_env);
    // Plugin documents may enable OpenTelemetry export and https stream sinks.
    baton_otel::install();
    // With mimalloc (above), a free from the dispatcher is cheap: let it free what it delivered.
    baton::set_free_on(baton::FreeOn::Dispatcher);
    for (name, handler) in EXPORTS {
        if js::export(raw_env, exports.raw(), name, *handler).is_err() {
            return Err(napi::Error::from_reason(format!("cannot export {name}")));
        }
    }
    Ok(())
}
