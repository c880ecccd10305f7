//! Middleware families and the callback shapes each one takes (DESIGN.md §2.4).
//!
//! Guardrails, request intercepts and execution intercepts come in a sync and an async form,
//! so a Rust caller can use closures or futures and a binding can bridge whatever its host
//! language returns. Sanitizers, metadata injectors and subscribers act on events, which are
//! emitted from synchronous places (push, pop, mark), so they are synchronous by design.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::event::{Category, Event, EventKind};
use crate::id::Uuid;
use crate::stream::ChunkStream;

/// A boxed, sendable future: the async callback currency of the core.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The canonical middleware family names, used by plugins and the parity suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    ToolConditionalExecution,
    ToolRequestIntercept,
    ToolExecutionIntercept,
    ToolSanitizeRequest,
    ToolSanitizeResponse,
    LlmConditionalExecution,
    LlmRequestIntercept,
    LlmExecutionIntercept,
    LlmStreamExecutionIntercept,
    LlmSanitizeRequest,
    LlmSanitizeResponse,
    MarkSanitize,
    ScopeSanitizeStart,
    ScopeSanitizeEnd,
    EventMetadataInjector,
    Subscriber,
}

impl Family {
    pub const COUNT: usize = 16;
    pub const ALL: [Family; Family::COUNT] = [
        Family::ToolConditionalExecution,
        Family::ToolRequestIntercept,
        Family::ToolExecutionIntercept,
        Family::ToolSanitizeRequest,
        Family::ToolSanitizeResponse,
        Family::LlmConditionalExecution,
        Family::LlmRequestIntercept,
        Family::LlmExecutionIntercept,
        Family::LlmStreamExecutionIntercept,
        Family::LlmSanitizeRequest,
        Family::LlmSanitizeResponse,
        Family::MarkSanitize,
        Family::ScopeSanitizeStart,
        Family::ScopeSanitizeEnd,
        Family::EventMetadataInjector,
        Family::Subscriber,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Family::ToolConditionalExecution => "tool_conditional_execution",
            Family::ToolRequestIntercept => "tool_request_intercept",
            Family::ToolExecutionIntercept => "tool_execution_intercept",
            Family::ToolSanitizeRequest => "tool_sanitize_request",
            Family::ToolSanitizeResponse => "tool_sanitize_response",
            Family::LlmConditionalExecution => "llm_conditional_execution",
            Family::LlmRequestIntercept => "llm_request_intercept",
            Family::LlmExecutionIntercept => "llm_execution_intercept",
            Family::LlmStreamExecutionIntercept => "llm_stream_execution_intercept",
            Family::LlmSanitizeRequest => "llm_sanitize_request",
            Family::LlmSanitizeResponse => "llm_sanitize_response",
            Family::MarkSanitize => "mark_sanitize",
            Family::ScopeSanitizeStart => "scope_sanitize_start",
            Family::ScopeSanitizeEnd => "scope_sanitize_end",
            Family::EventMetadataInjector => "event_metadata_injector",
            Family::Subscriber => "subscriber",
        }
    }

    /// Parses a canonical family name; anything else is `invalid_argument` naming it.
    pub fn parse(s: &str) -> Result<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            Error::invalid_argument(format!(
                "unknown middleware kind '{s}' (expected one of: {})",
                Family::ALL.map(Family::as_str).join(", ")
            ))
        })
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The bit set of `families`, as the registry's masks hold them (see
    /// `Registry::none_of`).
    pub(crate) const fn bits(families: &[Family]) -> u32 {
        let mut bits = 0;
        let mut i = 0;
        while i < families.len() {
            bits |= 1 << families[i].index();
            i += 1;
        }
        bits
    }
}

/// Whether a call is a tool call or an LLM call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Tool,
    Llm,
}

impl CallKind {
    pub fn category(self) -> Category {
        match self {
            CallKind::Tool => Category::TOOL,
            CallKind::Llm => Category::LLM,
        }
    }
    pub(crate) fn guardrails(self) -> Family {
        match self {
            CallKind::Tool => Family::ToolConditionalExecution,
            CallKind::Llm => Family::LlmConditionalExecution,
        }
    }
    pub(crate) fn request_intercepts(self) -> Family {
        match self {
            CallKind::Tool => Family::ToolRequestIntercept,
            CallKind::Llm => Family::LlmRequestIntercept,
        }
    }
    pub(crate) fn execution_intercepts(self) -> Family {
        match self {
            CallKind::Tool => Family::ToolExecutionIntercept,
            CallKind::Llm => Family::LlmExecutionIntercept,
        }
    }
    pub(crate) fn sanitize_request(self) -> Family {
        match self {
            CallKind::Tool => Family::ToolSanitizeRequest,
            CallKind::Llm => Family::LlmSanitizeRequest,
        }
    }
    pub(crate) fn sanitize_response(self) -> Family {
        match self {
            CallKind::Tool => Family::ToolSanitizeResponse,
            CallKind::Llm => Family::LlmSanitizeResponse,
        }
    }
}

/// What middleware knows about the call it is looking at.
#[derive(Clone, Debug)]
pub struct CallInfo {
    pub kind: CallKind,
    pub name: Arc<str>,
    pub tool_call_id: Option<String>,
    pub model_name: Option<String>,
    /// The scope the call runs under (`None` at top level).
    pub parent_uuid: Option<Uuid>,
    /// The call's own scope; `None` before the start event (guardrails, request intercepts).
    pub uuid: Option<Uuid>,
}

impl CallInfo {
    pub(crate) fn new(
        kind: CallKind,
        name: Arc<str>,
        tool_call_id: Option<String>,
        model_name: Option<String>,
        parent_uuid: Option<Uuid>,
    ) -> CallInfo {
        CallInfo { kind, name, tool_call_id, model_name, parent_uuid, uuid: None }
    }
}

/// A mark queued by an execution intercept, emitted after the call's end event.
#[derive(Clone, Debug)]
pub struct PendingMark {
    pub name: String,
    pub data: Value,
    pub metadata: Map<String, Value>,
}

/// The context an execution or stream intercept receives: the call, plus a place to queue
/// marks. Cloning is cheap (one `Arc`).
#[derive(Clone, Debug)]
pub struct CallCtx(Arc<CallCtxInner>);

#[derive(Debug)]
struct CallCtxInner {
    info: CallInfo,
    marks: Mutex<Vec<PendingMark>>,
}

impl CallCtx {
    pub(crate) fn new(info: CallInfo) -> CallCtx {
        CallCtx(Arc::new(CallCtxInner { info, marks: Mutex::new(Vec::new()) }))
    }
    pub fn info(&self) -> &CallInfo {
        &self.0.info
    }
    /// Queues a mark, emitted right after the call's end event and parented under the call.
    pub fn queue_mark(&self, name: impl Into<String>, data: Value, metadata: Map<String, Value>) {
        let mut marks = self.0.marks.lock().unwrap_or_else(|p| p.into_inner());
        marks.push(PendingMark { name: name.into(), data, metadata });
    }
    pub(crate) fn take_marks(&self) -> Vec<PendingMark> {
        std::mem::take(&mut *self.0.marks.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A guardrail's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Reject(String),
}

pub type SyncGuardrail = dyn Fn(&CallInfo, &Value) -> Result<Decision> + Send + Sync;
pub type AsyncGuardrail = dyn Fn(CallInfo, Value) -> BoxFuture<Result<Decision>> + Send + Sync;

/// A conditional-execution guardrail.
#[derive(Clone)]
pub enum Guardrail {
    Sync(Arc<SyncGuardrail>),
    Async(Arc<AsyncGuardrail>),
}

pub type SyncRequestIntercept = dyn Fn(&CallInfo, Value) -> Result<Value> + Send + Sync;
pub type AsyncRequestIntercept = dyn Fn(CallInfo, Value) -> BoxFuture<Result<Value>> + Send + Sync;

/// A request intercept: rewrites the real args / request.
#[derive(Clone)]
pub enum RequestIntercept {
    Sync(Arc<SyncRequestIntercept>),
    Async(Arc<AsyncRequestIntercept>),
}

/// `next` for a synchronous execution intercept: runs the rest of the chain and the callback.
pub type Next<'a> = &'a dyn Fn(Value) -> Result<Value>;
pub type SyncExecutionIntercept = dyn Fn(&CallCtx, Value, Next<'_>) -> Result<Value> + Send + Sync;
pub type AsyncExecutionIntercept = dyn Fn(CallCtx, Value, crate::call::AsyncNext) -> BoxFuture<Result<Value>> + Send + Sync;

/// An execution intercept: wraps the callback; may call `next` zero, one or many times.
#[derive(Clone)]
pub enum ExecutionIntercept {
    Sync(Arc<SyncExecutionIntercept>),
    Async(Arc<AsyncExecutionIntercept>),
}

/// A stream execution intercept: receives the inner chunk stream and returns the stream the
/// next layer out (finally the caller) pulls from. Transforms are lazy: nothing is buffered.
pub type StreamIntercept = Arc<dyn Fn(&CallCtx, ChunkStream) -> Result<ChunkStream> + Send + Sync>;

/// How a host spells the keys of the info objects its middleware receives:
/// `snake_case` (C, Go) or `camelCase` (JS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStyle {
    Snake,
    Camel,
}

/// Writes a flat JSON object of string-or-null values; each key is given in both styles.
fn info_object(style: KeyStyle, entries: &[(&str, &str, Option<&str>)]) -> String {
    let mut out = String::with_capacity(160);
    out.push('{');
    for (i, (snake, camel, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(if style == KeyStyle::Snake { snake } else { camel });
        out.push_str("\":");
        match v {
            // A JSON string of a `&str` always serializes.
            Some(v) => out.push_str(&serde_json::to_string(v).unwrap_or_default()),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    out
}

impl CallInfo {
    /// The call info as JSON text for middleware behind a binding boundary:
    /// `{kind, name, tool_call_id, model_name, parent_uuid, uuid}` (ids hyphenated, absent
    /// ones `null`), keys in `style`. One writer, so every binding shows the same fields.
    pub fn to_json(&self, style: KeyStyle) -> String {
        let (mut p, mut u) = ([0; 36], [0; 36]);
        let kind = match self.kind {
            CallKind::Tool => "tool",
            CallKind::Llm => "llm",
        };
        info_object(
            style,
            &[
                ("kind", "kind", Some(kind)),
                ("name", "name", Some(&self.name)),
                ("tool_call_id", "toolCallId", self.tool_call_id.as_deref()),
                ("model_name", "modelName", self.model_name.as_deref()),
                ("parent_uuid", "parentUuid", self.parent_uuid.map(|id| id.encode(&mut p))),
                ("uuid", "uuid", self.uuid.map(|id| id.encode(&mut u))),
            ],
        )
    }
}

/// A payload sanitizer: returns the payload the event should carry, or `None` to omit it.
pub type PayloadSanitizer = Arc<dyn Fn(&CallInfo, Value) -> Result<Option<Value>> + Send + Sync>;

/// What event middleware may read about an event.
#[derive(Clone, Debug)]
pub struct EventInfo {
    pub kind: EventKind,
    pub uuid: Uuid,
    pub parent_uuid: Option<Uuid>,
    pub name: Arc<str>,
    pub category: Option<Category>,
}

impl EventInfo {
    /// The event info as JSON text for middleware behind a binding boundary:
    /// `{kind, scope_category, uuid, parent_uuid, name, category}` (`scope_category` `null` on
    /// marks), keys in `style`.
    pub fn to_json(&self, style: KeyStyle) -> String {
        let (kind, sc) = match self.kind {
            EventKind::Mark => ("mark", None),
            EventKind::Scope(c) => ("scope", Some(c.as_str())),
        };
        let (mut p, mut u) = ([0; 36], [0; 36]);
        info_object(
            style,
            &[
                ("kind", "kind", Some(kind)),
                ("scope_category", "scopeCategory", sc),
                ("uuid", "uuid", Some(self.uuid.encode(&mut u))),
                ("parent_uuid", "parentUuid", self.parent_uuid.map(|id| id.encode(&mut p))),
                ("name", "name", Some(&self.name)),
                ("category", "category", self.category.as_ref().map(|c| c.as_str())),
            ],
        )
    }
}

/// The parts of an event that event sanitizers may rewrite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFields {
    pub data: Value,
    pub metadata: Map<String, Value>,
}

/// An event sanitizer (`mark_sanitize`, `scope_sanitize_start`, `scope_sanitize_end`).
pub type EventSanitizer = Arc<dyn Fn(&EventInfo, EventFields) -> Result<Option<EventFields>> + Send + Sync>;

/// An event metadata injector: returns flat dotted keys to add (never overwriting).
pub type MetadataInjector = Arc<dyn Fn(&EventInfo) -> Result<Map<String, Value>> + Send + Sync>;

/// A subscriber: receives events on the dispatcher, in emission order.
///
/// `flush` and `close` run on the dispatcher after every earlier event was delivered, which is
/// what lets an exporter promise that nothing delivered to it is lost.
pub trait Subscriber: Send + Sync {
    fn on_event(&self, event: &Event) -> Result<()>;
    /// What the dispatcher calls: the event as the queue holds it. A subscriber that keeps
    /// events beyond the call (a binding handing a lazy view of each event to a host
    /// function) overrides it to share the event instead of cloning it; the default calls
    /// [`Subscriber::on_event`].
    fn on_shared_event(&self, event: &Arc<Event>) -> Result<()> {
        self.on_event(event)
    }
    /// Called on the delivering thread after each batch of events, before a `flush` waiting
    /// on that batch returns. A subscriber that crosses an expensive boundary (a C or Go
    /// callback from the dispatcher thread) can gather a batch's events in `on_event` and
    /// hand them over here in one crossing. Returns how many of the gathered events it failed
    /// to deliver (counted as subscriber failures).
    fn end_batch(&self) -> usize {
        0
    }
    /// Whether this subscriber reads an event's `data` only through its host's own table of
    /// host values (see [`Payload`](crate::Payload)), never as JSON text. The core lets a host
    /// value into an event only when every subscriber the event reaches says so; the default,
    /// `false`, keeps every payload JSON for it.
    fn takes_host_values(&self) -> bool {
        false
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    /// Called once when the subscriber is removed (deregistered, scope ended, shutdown).
    fn close(&self) -> Result<()> {
        self.flush()
    }
}

/// Wraps a closure as a [`Subscriber`].
pub struct FnSubscriber<F>(pub F);

impl<F> Subscriber for FnSubscriber<F>
where
    F: Fn(&Event) -> Result<()> + Send + Sync,
{
    fn on_event(&self, event: &Event) -> Result<()> {
        (self.0)(event)
    }
}

/// One registered piece of middleware, of any family.
#[derive(Clone)]
pub enum Middleware {
    ToolConditionalExecution(Guardrail),
    ToolRequestIntercept(RequestIntercept),
    ToolExecutionIntercept(ExecutionIntercept),
    ToolSanitizeRequest(PayloadSanitizer),
    ToolSanitizeResponse(PayloadSanitizer),
    LlmConditionalExecution(Guardrail),
    LlmRequestIntercept(RequestIntercept),
    LlmExecutionIntercept(ExecutionIntercept),
    LlmStreamExecutionIntercept(StreamIntercept),
    LlmSanitizeRequest(PayloadSanitizer),
    LlmSanitizeResponse(PayloadSanitizer),
    MarkSanitize(EventSanitizer),
    ScopeSanitizeStart(EventSanitizer),
    ScopeSanitizeEnd(EventSanitizer),
    EventMetadataInjector(MetadataInjector),
    Subscriber(Arc<dyn Subscriber>),
}

impl Middleware {
    pub fn family(&self) -> Family {
        match self {
            Middleware::ToolConditionalExecution(_) => Family::ToolConditionalExecution,
            Middleware::ToolRequestIntercept(_) => Family::ToolRequestIntercept,
            Middleware::ToolExecutionIntercept(_) => Family::ToolExecutionIntercept,
            Middleware::ToolSanitizeRequest(_) => Family::ToolSanitizeRequest,
            Middleware::ToolSanitizeResponse(_) => Family::ToolSanitizeResponse,
            Middleware::LlmConditionalExecution(_) => Family::LlmConditionalExecution,
            Middleware::LlmRequestIntercept(_) => Family::LlmRequestIntercept,
            Middleware::LlmExecutionIntercept(_) => Family::LlmExecutionIntercept,
            Middleware::LlmStreamExecutionIntercept(_) => Family::LlmStreamExecutionIntercept,
            Middleware::LlmSanitizeRequest(_) => Family::LlmSanitizeRequest,
            Middleware::LlmSanitizeResponse(_) => Family::LlmSanitizeResponse,
            Middleware::MarkSanitize(_) => Family::MarkSanitize,
            Middleware::ScopeSanitizeStart(_) => Family::ScopeSanitizeStart,
            Middleware::ScopeSanitizeEnd(_) => Family::ScopeSanitizeEnd,
            Middleware::EventMetadataInjector(_) => Family::EventMetadataInjector,
            Middleware::Subscriber(_) => Family::Subscriber,
        }
    }

    /// A closure subscriber.
    pub fn subscriber(f: impl Fn(&Event) -> Result<()> + Send + Sync + 'static) -> Middleware {
        Middleware::Subscriber(Arc::new(FnSubscriber(f)))
    }
    /// A synchronous guardrail for the tool (`CallKind::Tool`) or LLM family.
    pub fn guardrail(kind: CallKind, f: impl Fn(&CallInfo, &Value) -> Result<Decision> + Send + Sync + 'static) -> Middleware {
        let g = Guardrail::Sync(Arc::new(f));
        match kind {
            CallKind::Tool => Middleware::ToolConditionalExecution(g),
            CallKind::Llm => Middleware::LlmConditionalExecution(g),
        }
    }
    /// A synchronous request intercept.
    pub fn request_intercept(kind: CallKind, f: impl Fn(&CallInfo, Value) -> Result<Value> + Send + Sync + 'static) -> Middleware {
        let r = RequestIntercept::Sync(Arc::new(f));
        match kind {
            CallKind::Tool => Middleware::ToolRequestIntercept(r),
            CallKind::Llm => Middleware::LlmRequestIntercept(r),
        }
    }
    /// A synchronous execution intercept.
    pub fn execution_intercept(
        kind: CallKind,
        f: impl Fn(&CallCtx, Value, Next<'_>) -> Result<Value> + Send + Sync + 'static,
    ) -> Middleware {
        let x = ExecutionIntercept::Sync(Arc::new(f));
        match kind {
            CallKind::Tool => Middleware::ToolExecutionIntercept(x),
            CallKind::Llm => Middleware::LlmExecutionIntercept(x),
        }
    }
    /// A request-payload sanitizer.
    pub fn sanitize_request(kind: CallKind, f: impl Fn(&CallInfo, Value) -> Result<Option<Value>> + Send + Sync + 'static) -> Middleware {
        match kind {
            CallKind::Tool => Middleware::ToolSanitizeRequest(Arc::new(f)),
            CallKind::Llm => Middleware::LlmSanitizeRequest(Arc::new(f)),
        }
    }
    /// A response-payload sanitizer.
    pub fn sanitize_response(kind: CallKind, f: impl Fn(&CallInfo, Value) -> Result<Option<Value>> + Send + Sync + 'static) -> Middleware {
        match kind {
            CallKind::Tool => Middleware::ToolSanitizeResponse(Arc::new(f)),
            CallKind::Llm => Middleware::LlmSanitizeResponse(Arc::new(f)),
        }
    }
}

/// How a piece of middleware is registered.
#[derive(Clone, Debug)]
pub struct Registration {
    pub name: String,
    /// Lower runs first; for execution intercepts, lower is outermost.
    pub priority: i32,
    /// Scope-local when set: active for calls and events under that scope until it ends.
    pub scope: Option<crate::scope::ScopeHandle>,
    /// For request intercepts: the later intercepts of the chain do not run.
    pub break_chain: bool,
}

impl Registration {
    pub fn new(name: impl Into<String>) -> Registration {
        Registration { name: name.into(), priority: 0, scope: None, break_chain: false }
    }
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    pub fn scope(mut self, scope: &crate::scope::ScopeHandle) -> Self {
        self.scope = Some(scope.clone());
        self
    }
    pub fn break_chain(mut self, yes: bool) -> Self {
        self.break_chain = yes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ScopeCategory;
    use serde_json::json;

    /// Both styles name the same fields; strings are escaped, absent values are `null`.
    #[test]
    fn info_json_in_both_key_styles() {
        let parent: Uuid = "0190a8f2-7c3e-7abc-8def-0123456789ab".parse().unwrap();
        let mut call = CallInfo::new(CallKind::Llm, "chat \"v2\"".into(), None, Some("m1".into()), Some(parent));
        call.uuid = Some(parent);
        let snake: Value = serde_json::from_str(&call.to_json(KeyStyle::Snake)).unwrap();
        assert_eq!(
            snake,
            json!({"kind": "llm", "name": "chat \"v2\"", "tool_call_id": null, "model_name": "m1",
                   "parent_uuid": parent.to_string(), "uuid": parent.to_string()})
        );
        let camel: Value = serde_json::from_str(&call.to_json(KeyStyle::Camel)).unwrap();
        assert_eq!(camel["toolCallId"], Value::Null);
        assert_eq!(camel["modelName"], "m1");
        assert_eq!(camel["parentUuid"], parent.to_string());
        let event = EventInfo {
            kind: EventKind::Scope(ScopeCategory::End),
            uuid: parent,
            parent_uuid: None,
            name: "agent\n".into(),
            category: Some(Category::AGENT),
        };
        let camel: Value = serde_json::from_str(&event.to_json(KeyStyle::Camel)).unwrap();
        assert_eq!(
            camel,
            json!({"kind": "scope", "scopeCategory": "end", "uuid": parent.to_string(), "parentUuid": null,
                   "name": "agent\n", "category": "agent"})
        );
        let mark = EventInfo { kind: EventKind::Mark, category: None, ..event };
        let snake: Value = serde_json::from_str(&mark.to_json(KeyStyle::Snake)).unwrap();
        assert_eq!(snake["scope_category"], Value::Null);
        assert_eq!(snake["category"], Value::Null);
    }
}
