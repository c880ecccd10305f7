//! Native objects behind JS handles (externals), and the plain JS objects that describe
//! calls and events to middleware.

use std::cell::RefCell;

use baton::{AsyncNext, CallCtx, CallHandle, CallInfo, ChunkStream, EventInfo, LlmStream, ScopeHandle, Stack};

use crate::js::{self, Env, JsResult, JsVal};

/// What a JS handle (an external) holds.
pub enum Handle {
    Stack(Stack),
    Scope(ScopeHandle),
    Call(CallHandle),
    /// A managed stream; `None` while a `next` is in flight or after it ended.
    Stream(RefCell<Option<LlmStream>>),
    /// The inner chunks handed to a stream intercept.
    Chunks(RefCell<Option<ChunkStream>>),
    Next(AsyncNext),
    Ctx(CallCtx),
    /// An LLM stream the facade pulls itself (`enterLlmStream`; `None` once finished), on a
    /// fork of the caller's stack with the call's scope current: this handle is also that
    /// fork's stack handle, under which the facade runs the source.
    EnteredStream {
        stack: Stack,
        stream: RefCell<Option<baton::EnteredStream>>,
    },
}

pub fn wrap(env: Env, h: Handle) -> JsResult<JsVal> {
    js::external(env, h)
}

impl js::Finalize for Handle {
    /// Stacks, scopes, call handles, contexts and `next` functions hold memory, and JS
    /// references that a drop inside the collector releases later. A stream (or a stream
    /// intercept's inner chunks) still held unfinished ends its call when dropped (a cancelled
    /// end event, whose middleware may be JS) and closes a JS source: not inside the collector.
    /// One that finished, or whose `next` is in flight (the stream is then owned by that
    /// call), holds nothing.
    fn frees_only_memory(&self) -> bool {
        match self {
            Handle::Stack(_) | Handle::Scope(_) | Handle::Call(_) | Handle::Ctx(_) | Handle::Next(_) => true,
            Handle::Stream(s) => s.try_borrow().is_ok_and(|s| s.is_none()),
            Handle::Chunks(c) => c.try_borrow().is_ok_and(|c| c.is_none()),
            Handle::EnteredStream { stream, .. } => stream.try_borrow().is_ok_and(|s| s.is_none()),
        }
    }
}

pub fn handle<'a>(env: Env, v: JsVal, what: &str) -> JsResult<&'a Handle> {
    js::external_ref::<Handle>(env, v, what)
}

fn wrong(what: &str, expected: &str) -> js::Thrown {
    baton::Error::invalid_argument(format!("{what}: expected a {expected} handle")).into()
}

pub fn stack<'a>(env: Env, v: JsVal, what: &str) -> JsResult<&'a Stack> {
    match handle(env, v, what)? {
        Handle::Stack(s) | Handle::EnteredStream { stack: s, .. } => Ok(s),
        _ => Err(wrong(what, "stack")),
    }
}

pub fn scope<'a>(env: Env, v: JsVal, what: &str) -> JsResult<&'a ScopeHandle> {
    match handle(env, v, what)? {
        Handle::Scope(s) => Ok(s),
        _ => Err(wrong(what, "scope")),
    }
}

/// An optional scope handle field of an options object (`parent`, `scope`).
pub fn opt_scope(env: Env, options: JsVal, key: &str) -> JsResult<Option<ScopeHandle>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, key)?;
    if js::is_nullish(env, v)? {
        return Ok(None);
    }
    Ok(Some(scope(env, v, &format!("options.{key}"))?.clone()))
}

fn set_str(env: Env, obj: JsVal, key: &str, v: Option<&str>) -> JsResult<()> {
    let x = match v {
        Some(s) => js::string(env, s)?,
        None => js::null(env)?,
    };
    js::set(env, obj, key, x)
}

/// `{kind, name, toolCallId, modelName, parentUuid, uuid}` as JSON text (the core's writer).
pub fn call_info(env: Env, info: &CallInfo) -> JsResult<JsVal> {
    js::string(env, &info.to_json(baton::KeyStyle::Camel))
}

/// `{kind, scopeCategory, uuid, parentUuid, name, category}` for event middleware (JSON text).
pub fn event_info(env: Env, info: &EventInfo) -> JsResult<JsVal> {
    js::string(env, &info.to_json(baton::KeyStyle::Camel))
}

/// `{uuid, name, category, parentUuid, rootUuid}` of a scope.
pub fn scope_info(env: Env, s: &ScopeHandle) -> JsResult<JsVal> {
    let o = js::object(env)?;
    set_str(env, o, "uuid", Some(&s.uuid().to_string()))?;
    set_str(env, o, "name", Some(s.name()))?;
    set_str(env, o, "category", Some(s.category().as_str()))?;
    set_str(env, o, "parentUuid", s.parent_uuid().map(|u| u.to_string()).as_deref())?;
    set_str(env, o, "rootUuid", Some(&s.root_uuid().to_string()))?;
    let ended = js::boolean(env, s.is_ended())?;
    js::set(env, o, "ended", ended)?;
    Ok(o)
}
