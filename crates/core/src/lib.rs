//! # Baton
//!
//! A portable execution runtime for AI agent systems. Frameworks call Baton at the
//! boundaries they already cross — a run, a turn, a tool call, an LLM call, a subagent — and
//! Baton gives them:
//!
//! - **scopes** ([`Stack::push`], [`Stack::pop`]): a parent–child tree of work, isolated per
//!   request, task or thread ([`current_stack`], [`with_stack`], [`StackFutureExt`]);
//! - **managed calls** ([`Stack::tool`], [`Stack::llm`], [`Stack::llm_stream`], and their
//!   async forms) run through **middleware** ([`Middleware`], [`Runtime::register`]);
//! - **events** in ATOF 0.1 ([`Event`]) delivered to **subscribers** off the caller's path;
//! - **exporters**, starting with ATOF JSONL ([`export::atof`]).
//!
//! The exact behaviour is specified in `docs/runtime.md` and checked by the parity suite.
//!
//! ```
//! use baton::{Runtime, RuntimeConfig, Middleware, Registration, ScopeOptions, EndOptions, ToolOptions};
//! use serde_json::json;
//! use std::sync::{Arc, Mutex};
//!
//! let rt = Runtime::new(RuntimeConfig::default());
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! rt.register(Registration::new("log"), Middleware::subscriber(move |e| {
//!     sink.lock().unwrap().push(e.name.to_string());
//!     Ok(())
//! })).unwrap();
//!
//! let stack = rt.new_stack();
//! let agent = stack.push(ScopeOptions::new("agent").category("agent")).unwrap();
//! let out = stack.tool("add", json!({"a": 1, "b": 2}), |args| {
//!     Ok(json!(args["a"].as_i64().unwrap() + args["b"].as_i64().unwrap()))
//! }, ToolOptions::default()).unwrap();
//! assert_eq!(out, json!(3));
//! stack.pop(&agent, EndOptions::default()).unwrap();
//! rt.flush(std::time::Duration::from_secs(5)).unwrap();
//! assert_eq!(*seen.lock().unwrap(), ["agent", "add", "add", "agent"]);
//! ```

/// The README's Rust example, compiled and run as a doctest so it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;

/// The examples of docs/rust.md, compiled as doctests for the same reason.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/rust.md")]
struct RustGuideExamples;

mod call;
pub mod codec;
mod data;
mod dispatch;
mod error;
mod event;
pub mod exec;
pub mod export;
mod host_call;
mod id;
mod lifecycle;
mod middleware;
mod payload;
pub mod platform;
pub mod plugin;
mod reentry;
mod registry;
mod runtime;
mod scope;
mod stack;
pub mod stream;
pub mod time;

pub use call::{strip_credentials, AsyncCallback, AsyncDataCallback, AsyncNext, LlmOptions, ToolOptions, CREDENTIAL_HEADERS};
pub use data::Data;
pub use dispatch::{set_batch_hook, set_free_on, BatchHook, Diagnostics, FreeOn, OverflowPolicy};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    Attributes, Category, DataSchema, Event, EventField, EventKind, EventLayout, EventStatus, FieldSpan, LayoutKind, Payload,
    ScopeCategory, ValueForm, ATOF_VERSION, CHUNK_INDEX_KEY,
};
pub use host_call::{CallValue, EnteredCall, EnteredStream};
pub use id::Uuid;
pub use lifecycle::CallHandle;
pub use middleware::{
    BoxFuture, CallCtx, CallInfo, CallKind, Decision, EventFields, EventInfo, EventSanitizer, ExecutionIntercept, Family, FnSubscriber,
    Guardrail, KeyStyle, MetadataInjector, Middleware, Next, PayloadSanitizer, PendingMark, Registration, RequestIntercept,
    StreamIntercept, Subscriber,
};
pub use runtime::{Runtime, RuntimeConfig};
pub use scope::{EndOptions, ScopeHandle, ScopeOptions};
pub use stack::{current_stack, with_stack, MarkOptions, Stack, StackFutureExt, WithStack, METRIC_SCHEMA};
pub use stream::{ChunkStream, LlmStream};

use serde_json::Value;

/// Pushes a scope on the current stack.
pub fn push(options: ScopeOptions) -> Result<ScopeHandle> {
    current_stack().push(options)
}

/// Ends a scope (on the stack it was pushed on).
pub fn pop(scope: &ScopeHandle, options: EndOptions) -> Result<()> {
    current_stack().pop(scope, options)
}

/// Runs `f` inside a scope on the current stack; the scope ends with `f`'s outcome.
pub fn scope<T>(options: ScopeOptions, f: impl FnOnce(&ScopeHandle) -> Result<T>) -> Result<T> {
    let stack = current_stack();
    let handle = stack.push(options)?;
    let out = exec::guard_public(|| f(&handle));
    let end = match &out {
        Ok(_) => EndOptions::default(),
        Err(e) => EndOptions::default().error(e.clone()),
    };
    stack.pop(&handle, end)?;
    out
}

/// Emits a mark on the current stack.
pub fn mark(options: MarkOptions) -> Result<()> {
    current_stack().mark(options)
}

/// Emits a metric mark on the current stack.
pub fn metric(name: &str, measurements: Value, unit: Option<&str>) -> Result<()> {
    current_stack().metric(name, measurements, unit)
}

/// A managed tool call on the current stack.
pub fn tool(name: &str, args: Value, callback: impl Fn(Value) -> Result<Value>, options: ToolOptions) -> Result<Value> {
    current_stack().tool(name, args, callback, options)
}

/// A managed LLM call on the current stack.
pub fn llm(name: &str, request: Value, callback: impl Fn(Value) -> Result<Value>, options: LlmOptions) -> Result<Value> {
    current_stack().llm(name, request, callback, options)
}
