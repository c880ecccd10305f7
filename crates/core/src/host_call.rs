//! Host-run tool calls: a seam for bindings whose payloads are host-language objects.
//!
//! A managed call converts its arguments and result into JSON values because middleware may
//! read or rewrite them. When no middleware of the call's kind is registered (no guardrail,
//! request or execution intercept, no payload sanitizer — subscribers and event middleware are
//! fine), nothing but the events ever sees those values, and only as JSON text. A binding can
//! then keep its own objects: it enters the call with the arguments' JSON text
//! ([`Stack::enter_tool`]), runs its callback itself (synchronously or awaiting it), and exits
//! with the result's JSON text ([`EnteredCall::exit`]). The events are the same as those of
//! [`Stack::tool`]; the host saves converting each payload into a value and back.
//!
//! Buffered LLM calls too ([`Stack::enter_llm`]: the request is checked and its event copy
//! loses credential headers, as in [`Stack::llm`]). Streams work the same way
//! ([`Stack::enter_llm_stream`]): the host pulls its chunks itself,
//! with the call's scope current while it does ([`EnteredStream::push`] / [`EnteredStream::pop`]),
//! and hands each chunk's JSON text to [`EnteredStream::chunk`]; the `llm.chunk` marks and the
//! end event (the chunks as a JSON array) are those of [`Stack::llm_stream`].
//!
//! A host whose subscribers live in its own runtime (the Node addon's JS subscribers) can go
//! one step further and hand over a host value instead of text ([`CallValue::Host`]): a token
//! for a snapshot it keeps, plus a way to get the text. The core keeps the token in the event
//! when every consumer takes host values and asks for the text otherwise (see
//! [`Payload`]'s docs).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::call::{admit, category_profile, intern, tool_profile, validate_llm_request, Call, LlmOptions, PushedGuard, ToolOptions};
use crate::error::{Error, Result};
use crate::event::Payload;
use crate::event::{Attributes, Event};
use crate::middleware::{CallKind, Family};
use crate::runtime::Status;
use crate::scope::ScopeNode;
use crate::stack::Stack;

/// The families that see or change a tool call's values: while one of them applies, a host
/// must run the call through [`Stack::tool`].
const TOOL_VALUE_FAMILIES: [Family; 5] = [
    Family::ToolConditionalExecution,
    Family::ToolRequestIntercept,
    Family::ToolExecutionIntercept,
    Family::ToolSanitizeRequest,
    Family::ToolSanitizeResponse,
];

/// A call's arguments or result from a host: JSON text, or a host value with a way to get its
/// text (called at most once, on the calling thread, while the call that was given it runs).
pub enum CallValue<F: FnOnce() -> Payload> {
    Json(Payload),
    Host { token: std::num::NonZeroU64, text: F },
}

impl<F: FnOnce() -> Payload> CallValue<F> {
    /// The payload for the event, and the text source for when the core needs JSON after all.
    fn split(self) -> (Payload, Option<F>) {
        match self {
            CallValue::Json(p) => (p, None),
            CallValue::Host { token, text } => (Payload::host(token), Some(text)),
        }
    }
}

/// The host's text callback as the core's emitters take it (called at most once; `null` for a
/// payload that is already JSON, where it is never called).
fn text_source<F: FnOnce() -> Payload>(mut text: Option<F>) -> impl FnMut() -> Payload {
    move || text.take().map_or(Payload::NULL, |t| t())
}

/// A tool call entered by [`Stack::enter_tool`]: its start event is emitted and its scope is
/// the top of the stack until [`EnteredCall::exit`]. Dropped without `exit`, it is removed
/// from the stack and ends as cancelled, so every start still gets an end.
///
/// It holds only its pushed scope (the guard knows the stack, the node and the runtime), not
/// the call's options: hosts move it into their own handles, and a small value moves cheaply.
pub struct EnteredCall {
    pushed: PushedGuard,
}

impl std::fmt::Debug for EnteredCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = self.pushed.node();
        f.debug_struct("EnteredCall").field("uuid", &node.uuid).field("name", &node.name).finish()
    }
}

impl Stack {
    /// Enters a tool call whose callback the host runs itself, when no middleware could see
    /// its values (see the module docs). `args` is called once, only then and before any
    /// event, for the arguments' JSON text; its error aborts the call with no event.
    /// `Ok(None)`: some middleware of the tool families applies, so run the call through
    /// [`Stack::tool`] instead (`args` was not called).
    pub fn enter_tool(&self, name: &str, args: impl FnOnce() -> Result<Payload>, options: ToolOptions) -> Result<Option<EnteredCall>> {
        self.enter_tool_value(name, || args().map(CallValue::<fn() -> Payload>::Json), options)
    }

    /// [`Stack::enter_tool`] whose arguments may be a host value ([`CallValue`]).
    pub fn enter_tool_value<F: FnOnce() -> Payload>(
        &self,
        name: &str,
        args: impl FnOnce() -> Result<CallValue<F>>,
        options: ToolOptions,
    ) -> Result<Option<EnteredCall>> {
        // No `Call` here: nothing of the pipeline runs, so the scope is built straight from
        // the options (fewer moves and reference counts on the path every host call takes).
        let parent = admit(self, CallKind::Tool, name, options.parent.as_ref())?;
        let rt = &self.runtime().0;
        if rt.registry.any_of(&TOOL_VALUE_FAMILIES, parent.node()) {
            return Ok(None);
        }
        let (payload, text) = args()?.split();
        let ToolOptions { tool_call_id, metadata, attributes, .. } = options;
        let node = ScopeNode::new(
            intern(name),
            CallKind::Tool.category(),
            Attributes::new(&attributes),
            tool_profile(tool_call_id.as_deref()),
            &parent,
            metadata,
        );
        rt.emit_start_or_text(&node, || (payload, node.category_profile.clone()), None, &mut text_source(text));
        Ok(Some(EnteredCall { pushed: PushedGuard::owning(self, node).ending() }))
    }
}

impl EnteredCall {
    /// The call's scope uuid.
    pub fn uuid(&self) -> crate::id::Uuid {
        self.pushed.node().uuid
    }

    /// Ends the call: removes its scope from the stack (ending scopes the callback left open
    /// above it as unwound) and emits the end event with the result's JSON text, or with
    /// `ERROR` status for `Err`.
    pub fn exit(self, result: std::result::Result<Payload, &Error>) {
        self.exit_value(result.map(CallValue::<fn() -> Payload>::Json));
    }

    /// [`EnteredCall::exit`] whose result may be a host value ([`CallValue`]).
    pub fn exit_value<F: FnOnce() -> Payload>(self, result: std::result::Result<CallValue<F>, &Error>) {
        let mut pushed = self.pushed;
        pushed.remove();
        let rt = &pushed.stack().runtime().0;
        let node = pushed.node();
        match result {
            Ok(value) => {
                let (payload, text) = value.split();
                rt.end_scope_or_text(node, Status::Ok, || (payload, node.category_profile.clone()), Map::new(), &mut text_source(text))
            }
            Err(e) => rt.end_scope(node, Status::Error(e), || Payload::NULL, Map::new()),
        };
    }
}

/// The families that see or change a (buffered) LLM call's values.
const LLM_VALUE_FAMILIES: [Family; 5] = [
    Family::LlmConditionalExecution,
    Family::LlmRequestIntercept,
    Family::LlmExecutionIntercept,
    Family::LlmSanitizeRequest,
    Family::LlmSanitizeResponse,
];

impl Stack {
    /// Enters a (buffered) LLM call whose callback the host runs itself, when no middleware
    /// could see its values and no codec is asked for (`Ok(None)` otherwise: use
    /// [`Stack::llm`]). `request` is checked as `llm` checks it, and its event copy loses
    /// credential headers the same way. The request `llm`'s callback would get is returned
    /// when the check changed it (`headers` added when it had none), `None` when it is the
    /// request given. [`EnteredCall::exit`] takes the response's JSON text: the end event is
    /// the one `llm` emits.
    pub fn enter_llm(&self, name: &str, mut request: Value, options: LlmOptions) -> Result<Option<(EnteredCall, Option<Value>)>> {
        let had_headers = matches!(request.get("headers"), Some(Value::Object(_)));
        let Some((_, node)) = self.start_host_llm(name, &mut request, options, &LLM_VALUE_FAMILIES)? else {
            return Ok(None);
        };
        let changed = (!had_headers).then_some(request);
        Ok(Some((EnteredCall { pushed: PushedGuard::owning(self, node).ending() }, changed)))
    }

    /// What entering a host-run LLM call (buffered or streamed) shares: the request checked,
    /// `None` when one of `families` applies or a codec is asked for, else the call's scope
    /// with its start event (the request's event copy without credentials).
    fn start_host_llm(
        &self,
        name: &str,
        request: &mut Value,
        options: LlmOptions,
        families: &[Family],
    ) -> Result<Option<(Call, Arc<ScopeNode>)>> {
        validate_llm_request(request)?;
        let codecs = options.codec.is_some() || options.response_codec.is_some();
        let mut call = Call::new(self, CallKind::Llm, name, options.into())?;
        if codecs || call.rt().registry.any_of(families, call.parent.node()) {
            return Ok(None);
        }
        let node = ScopeNode::new(
            call.info.name.clone(),
            CallKind::Llm.category(),
            Attributes::new(&call.attributes),
            category_profile(&call.info),
            &call.parent,
            std::mem::take(&mut call.metadata),
        );
        call.info.uuid = Some(node.uuid);
        let rt = call.rt();
        rt.emit_start(&node, || rt.event_payload(Family::LlmSanitizeRequest, Some(&node), &call.info, request), None);
        Ok(Some((call, node)))
    }
}

/// The name of a stream's chunk marks.
pub(crate) const CHUNK_MARK: &str = "llm.chunk";

/// The families that see or change an LLM stream's values (its request or its chunks).
const LLM_STREAM_VALUE_FAMILIES: [Family; 5] = [
    Family::LlmConditionalExecution,
    Family::LlmRequestIntercept,
    Family::LlmStreamExecutionIntercept,
    Family::LlmSanitizeRequest,
    Family::LlmSanitizeResponse,
];

/// An LLM stream entered by [`Stack::enter_llm_stream`]; the host pulls the chunks. Dropped
/// before [`EnteredStream::finish`], it ends as cancelled (as a dropped [`crate::LlmStream`]).
pub struct EnteredStream {
    call: Call,
    node: Arc<ScopeNode>,
    /// Someone receives the events: only then are chunks recorded.
    observed: bool,
    /// The recorded chunks' JSON text, comma-separated: the end event's array without its
    /// brackets (one growing buffer rather than a copy of each chunk's payload).
    collected: String,
    index: u64,
    finished: bool,
    /// `llm.chunk`, shared by this stream's chunk marks (one allocation per stream).
    chunk_name: Arc<str>,
    /// The checked request, for the host's callback ([`EnteredStream::take_request`]).
    request: Option<Value>,
}

impl std::fmt::Debug for EnteredStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnteredStream").field("uuid", &self.node.uuid).field("chunks", &self.index).finish()
    }
}

impl Stack {
    /// Starts an LLM stream whose chunks the host pulls itself, when no middleware could see
    /// its values and no codec is asked for (`Ok(None)` otherwise: use [`Stack::llm_stream`]).
    /// `request` is checked as `llm_stream` checks it, and its event copy loses credential
    /// headers the same way. The host's callback should see the request with `headers`
    /// added when it had none, as `llm_stream`'s callback does: [`EnteredStream::take_request`].
    pub fn enter_llm_stream(&self, name: &str, mut request: Value, options: LlmOptions) -> Result<Option<EnteredStream>> {
        let Some((call, node)) = self.start_host_llm(name, &mut request, options, &LLM_STREAM_VALUE_FAMILIES)? else {
            return Ok(None);
        };
        let observed = call.rt().registry.has_subscribers(Some(&node));
        Ok(Some(EnteredStream {
            call,
            node,
            observed,
            collected: String::new(),
            index: 0,
            finished: false,
            chunk_name: Arc::from(CHUNK_MARK),
            request: Some(request),
        }))
    }
}

impl EnteredStream {
    /// The call's scope uuid.
    pub fn uuid(&self) -> crate::id::Uuid {
        self.node.uuid
    }

    /// The request as the host's callback should see it — checked, with `headers` added when
    /// it had none, as [`Stack::llm_stream`] hands it to its callback — once (`None` after).
    pub fn take_request(&mut self) -> Option<Value> {
        self.request.take()
    }

    /// True when chunks are recorded: the host need not write a chunk's text otherwise.
    pub fn observed(&self) -> bool {
        self.observed
    }

    /// Makes the call's scope current on its stack while the host produces a chunk (work done
    /// meanwhile is parented under the call); [`EnteredStream::pop`] ends that.
    pub fn push(&self) {
        self.call.stack.scopes().push(self.node.clone());
    }

    /// Undoes [`EnteredStream::push`] (scopes left open above it are ended as unwound).
    pub fn pop(&self) {
        self.call.stack.remove_pushed(&self.node);
    }

    /// Records the next chunk: its `llm.chunk` mark (when `chunk_marks`) and its place in the
    /// end event. `text` is called only when [`EnteredStream::observed`].
    pub fn chunk(&mut self, text: impl FnOnce() -> Payload) {
        if self.observed {
            let payload = text();
            if self.index > 0 {
                self.collected.push(',');
            }
            self.collected.push_str(payload.as_json());
            if self.call.chunk_marks {
                let (index, node, name) = (self.index, &self.node, &self.chunk_name);
                self.call.rt().emit(Some(node), || Event::chunk_mark(node, name, index, payload));
            }
        }
        self.index += 1;
    }

    /// Ends the stream: the end event carries the recorded chunks, or `ERROR` status.
    pub fn finish(mut self, result: std::result::Result<(), &Error>) {
        self.end(result.map_err(Status::Error));
    }

    fn end(&mut self, outcome: std::result::Result<(), Status<'_>>) {
        self.finished = true;
        let collected = std::mem::take(&mut self.collected);
        let rt = self.call.rt();
        match outcome {
            Ok(()) => rt.end_scope(
                &self.node,
                Status::Ok,
                || {
                    let mut text = String::with_capacity(collected.len() + 2);
                    text.push('[');
                    text.push_str(&collected);
                    text.push(']');
                    Payload::from_json_trusted(text.into_boxed_str())
                },
                Map::new(),
            ),
            Err(status) => rt.end_scope(&self.node, status, || Payload::NULL, Map::new()),
        };
    }
}

impl Drop for EnteredStream {
    fn drop(&mut self) {
        if !self.finished {
            self.end(Err(Status::Cancelled));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::middleware::{FnSubscriber, Middleware, Registration, RequestIntercept};
    use crate::runtime::{Runtime, RuntimeConfig};
    use crate::ScopeOptions;

    /// An event without what differs between two runs of the same call (ids and time).
    fn without_ids(e: &serde_json::Value) -> serde_json::Value {
        let mut e = e.clone();
        for k in ["uuid", "parent_uuid", "timestamp"] {
            e.as_object_mut().unwrap().remove(k);
        }
        e
    }

    fn recorder(rt: &Runtime) -> Arc<Mutex<Vec<serde_json::Value>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        rt.register(
            Registration::new("rec"),
            Middleware::Subscriber(Arc::new(FnSubscriber(move |e: &crate::Event| {
                s.lock().unwrap().push(e.to_json());
                Ok(())
            }))),
        )
        .unwrap();
        seen
    }

    /// The events of an entered call equal those of `Stack::tool` (uuids and times aside),
    /// and work done while it is entered is parented under it.
    #[test]
    fn entered_call_emits_what_a_managed_call_emits() {
        let rt = Runtime::new(RuntimeConfig::default());
        let seen = recorder(&rt);
        let stack = rt.new_stack();
        let outer = stack.push(ScopeOptions::new("turn")).unwrap();
        let args = json!({"q": "x", "n": 1});
        stack.tool("search", args.clone(), Ok, ToolOptions { tool_call_id: Some("c1".into()), ..Default::default() }).unwrap();
        let opts = ToolOptions { tool_call_id: Some("c1".into()), ..Default::default() };
        let h = stack.enter_tool("search", || Ok(Payload::from_value(&args)), opts).unwrap().expect("no value middleware");
        assert_eq!(stack.current().unwrap().uuid(), h.uuid());
        stack.mark(crate::MarkOptions::new("inside")).unwrap();
        h.exit(Ok(Payload::from_value(&args)));
        assert_eq!(stack.current().unwrap().uuid(), outer.uuid());
        stack.pop(&outer, Default::default()).unwrap();
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        let events = seen.lock().unwrap().clone();
        // turn start, managed start/end, entered start, mark, entered end, turn end
        assert_eq!(events.len(), 7);
        assert_eq!(without_ids(&events[1]), without_ids(&events[3]));
        assert_eq!(without_ids(&events[2]), without_ids(&events[5]));
        assert_eq!(events[4]["parent_uuid"], events[3]["uuid"]);
        assert_eq!(events[3]["parent_uuid"], events[0]["uuid"]);
    }

    /// With value middleware registered, `enter_tool` declines without calling `args`; an
    /// error from `args` aborts before any event; a dropped call ends as cancelled.
    #[test]
    fn declines_aborts_and_cancels() {
        let rt = Runtime::new(RuntimeConfig::default());
        let seen = recorder(&rt);
        let stack = rt.new_stack();
        assert!(!stack.unobserved().unwrap());
        let err = stack.enter_tool("t", || Err(Error::invalid_argument("args: nope")), ToolOptions::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        drop(stack.enter_tool("t", || Ok(Payload::NULL), ToolOptions::default()).unwrap());
        rt.register(Registration::new("ri"), Middleware::ToolRequestIntercept(RequestIntercept::Sync(Arc::new(|_, v| Ok(v))))).unwrap();
        let declined = stack.enter_tool("t", || panic!("not called"), ToolOptions::default()).unwrap();
        assert!(declined.is_none());
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        let events = seen.lock().unwrap().clone();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["metadata"]["error.type"], "cancelled");
        assert_eq!(stack.depth(), 0);
        let quiet = Runtime::new(RuntimeConfig::default()).new_stack();
        assert!(quiet.unobserved().unwrap());
    }

    /// The registry's one-load shortcut ("none of these families anywhere") must not hide a
    /// scope-local registration: an intercept on a scope declines `enter_tool` under that scope
    /// only, and a scope-local event sanitizer still rewrites the events of calls under it.
    #[test]
    fn scope_local_middleware_is_seen_past_the_shortcut() {
        let rt = Runtime::new(RuntimeConfig::default());
        let seen = recorder(&rt);
        let stack = rt.new_stack();
        let outer = stack.push(ScopeOptions::new("outer")).unwrap();
        let intercepted = stack.push(ScopeOptions::new("intercepted")).unwrap();
        let ri = Middleware::ToolRequestIntercept(RequestIntercept::Sync(Arc::new(|_, v| Ok(v))));
        rt.register(Registration::new("ri").scope(&intercepted), ri).unwrap();
        assert!(stack.enter_tool("t", || panic!("not called"), ToolOptions::default()).unwrap().is_none());
        stack.pop(&intercepted, Default::default()).unwrap(); // its registration goes with it
        let sanitize = Middleware::ScopeSanitizeStart(Arc::new(|_, mut fields: crate::EventFields| {
            fields.data = json!("redacted");
            Ok(Some(fields))
        }));
        rt.register(Registration::new("s").scope(&outer), sanitize).unwrap();
        let call = stack.enter_tool("t", || Ok(Payload::from_json("{\"secret\":1}").unwrap()), ToolOptions::default()).unwrap();
        call.expect("no value middleware applies here").exit(Ok(Payload::NULL));
        stack.pop(&outer, Default::default()).unwrap();
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        let events = seen.lock().unwrap().clone();
        let start = events.iter().find(|e| e["name"] == "t" && e["scope_category"] == "start").expect("the call's start");
        assert_eq!(start["data"], "redacted");
    }

    /// A subscriber overriding `on_shared_event` gets the queued event itself and may keep it.
    #[test]
    fn subscribers_can_share_the_queued_event() {
        struct Keep(Mutex<Vec<Arc<crate::Event>>>);
        impl crate::Subscriber for Keep {
            fn on_event(&self, _: &crate::Event) -> Result<()> {
                panic!("on_shared_event is what the dispatcher calls")
            }
            fn on_shared_event(&self, event: &Arc<crate::Event>) -> Result<()> {
                self.0.lock().unwrap().push(event.clone());
                Ok(())
            }
        }
        let rt = Runtime::new(RuntimeConfig::default());
        let keep = Arc::new(Keep(Mutex::new(Vec::new())));
        rt.register(Registration::new("keep"), Middleware::Subscriber(keep.clone())).unwrap();
        rt.new_stack().mark(crate::MarkOptions::new("m")).unwrap();
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(&*keep.0.lock().unwrap()[0].name, "m");
        assert_eq!(rt.diagnostics().subscriber_failures, 0);
    }

    /// A subscriber that takes host values: records each event's data as its token or text.
    struct HostTaker(Mutex<Vec<std::result::Result<u64, String>>>);
    impl crate::Subscriber for HostTaker {
        fn on_event(&self, e: &crate::Event) -> Result<()> {
            self.0.lock().unwrap().push(match e.data.host_token() {
                Some(t) => Ok(t.get()),
                None => Err(e.data.as_json().to_string()),
            });
            Ok(())
        }
        fn takes_host_values(&self) -> bool {
            true
        }
    }

    /// A host value stays a token while every subscriber takes host values; the text is asked
    /// for (once per event) as soon as one does not, or when event middleware is registered,
    /// and then every subscriber gets the text.
    #[test]
    fn host_values_stay_tokens_only_while_every_consumer_takes_them() {
        use std::num::NonZeroU64;
        let rt = Runtime::new(RuntimeConfig::default());
        let taker = Arc::new(HostTaker(Mutex::new(Vec::new())));
        rt.register(Registration::new("taker"), Middleware::Subscriber(taker.clone())).unwrap();
        let stack = rt.new_stack();
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let call = |token: u64, text: &'static str| {
            let on_args = asked.clone();
            let value = CallValue::Host {
                token: NonZeroU64::new(token).unwrap(),
                text: move || {
                    on_args.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Payload::from_json_trusted(text.into())
                },
            };
            let h = stack.enter_tool_value("t", || Ok(value), ToolOptions::default()).unwrap().unwrap();
            let asked = asked.clone();
            h.exit_value(Ok(CallValue::Host {
                token: NonZeroU64::new(token + 1).unwrap(),
                text: move || {
                    asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Payload::from_json_trusted(r#""out""#.into())
                },
            }));
        };
        assert!(rt.host_values_welcome());
        call(1, r#"{"a":1}"#);
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(*taker.0.lock().unwrap(), vec![Ok(1), Ok(2)]);
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 0, "nobody needed the text");

        // A subscriber that reads JSON: both get the text, asked for once per event.
        let seen = recorder(&rt);
        assert!(!rt.host_values_welcome());
        call(3, r#"{"a":3}"#);
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(taker.0.lock().unwrap()[2..], [Err(r#"{"a":3}"#.to_string()), Err(r#""out""#.to_string())]);
        assert_eq!(seen.lock().unwrap().iter().map(|e| e["data"].clone()).collect::<Vec<_>>(), vec![json!({"a": 3}), json!("out")]);
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 2);

        // Removed again: tokens again.
        rt.deregister(crate::Family::Subscriber, "rec", None).unwrap();
        assert!(rt.host_values_welcome());
        call(5, "0");
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(taker.0.lock().unwrap()[4..], [Ok(5), Ok(6)]);

        // Event middleware reads JSON: with any registered (the core checks the event families
        // together), both events' text is asked for, and the start sanitizer sees and redacts it.
        let sanitized = Arc::new(Mutex::new(Vec::new()));
        let s = sanitized.clone();
        let sanitize = Middleware::ScopeSanitizeStart(Arc::new(move |_, mut fields: crate::EventFields| {
            s.lock().unwrap().push(fields.data.clone());
            fields.data = json!("redacted");
            Ok(Some(fields))
        }));
        rt.register(Registration::new("redact"), sanitize).unwrap();
        assert!(!rt.host_values_welcome());
        call(7, r#"{"secret":1}"#);
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(*sanitized.lock().unwrap(), vec![json!({"secret": 1})]);
        assert_eq!(taker.0.lock().unwrap()[6..], [Err(r#""redacted""#.to_string()), Err(r#""out""#.to_string())]);
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    /// An entered stream emits what `Stack::llm_stream` emits for the same chunks.
    #[test]
    fn entered_stream_emits_what_a_managed_stream_emits() {
        let rt = Runtime::new(RuntimeConfig::default());
        let seen = recorder(&rt);
        let stack = rt.new_stack();
        let request = json!({"headers": {"Authorization": "secret", "x": "y"}, "content": {"m": 1}});
        let chunks = vec![json!({"d": "a"}), Value::Null, json!([1, "b"])];
        let from_core = chunks.clone();
        let s = stack.llm_stream("chat", request.clone(), move |_| Ok(from_core.into_iter().map(Ok)), LlmOptions::default()).unwrap();
        assert_eq!(s.collect::<Result<Vec<_>>>().unwrap().len(), 3);
        let mut h = stack.enter_llm_stream("chat", request, LlmOptions::default()).unwrap().expect("no value middleware");
        assert!(h.observed());
        for c in &chunks {
            h.push();
            assert_eq!(stack.current().unwrap().uuid(), h.uuid());
            h.pop();
            h.chunk(|| Payload::from_value(c));
        }
        h.finish(Ok(()));
        let mut cancelled = stack.enter_llm_stream("chat", json!({"content": 1}), LlmOptions::default()).unwrap().unwrap();
        // The callback's request is the checked one, headers included (once).
        assert_eq!(cancelled.take_request(), Some(json!({"headers": {}, "content": 1})));
        assert_eq!(cancelled.take_request(), None);
        drop(cancelled);
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        let events = seen.lock().unwrap().clone();
        assert_eq!(events.len(), 12);
        for i in 0..5 {
            assert_eq!(without_ids(&events[i]), without_ids(&events[5 + i]), "event {i}");
        }
        assert!(events[0]["data"]["headers"].get("Authorization").is_none());
        assert_eq!(events[9]["data"], json!([{"d": "a"}, null, [1, "b"]]));
        assert_eq!(events[11]["metadata"]["error.type"], "cancelled");
        let quiet = Runtime::new(RuntimeConfig::default()).new_stack();
        let opts = LlmOptions { codec: Some(crate::codec::Codec::Auto), ..Default::default() };
        assert!(quiet.enter_llm_stream("chat", json!({"content": 1}), opts).unwrap().is_none());
    }

    /// An entered LLM call emits what `Stack::llm` emits, hands the callback the request `llm`
    /// would (credentials kept, `headers` added), strips credentials from the event copy, and
    /// declines when a value middleware or a codec applies.
    #[test]
    fn entered_llm_emits_what_a_managed_llm_call_emits() {
        let rt = Runtime::new(RuntimeConfig::default());
        let seen = recorder(&rt);
        let stack = rt.new_stack();
        let request = json!({"headers": {"Authorization": "secret", "x": "y"}, "content": {"m": 1}});
        let response = json!({"text": "hi", "n": [1, 2]});
        let opts = || LlmOptions { model_name: Some("m1".into()), ..Default::default() };
        let given = Mutex::new(None);
        let r = response.clone();
        stack
            .llm(
                "chat",
                request.clone(),
                |q| {
                    *given.lock().unwrap() = Some(q);
                    Ok(r.clone())
                },
                opts(),
            )
            .unwrap();
        let (h, q) = stack.enter_llm("chat", request.clone(), opts()).unwrap().expect("no value middleware");
        assert_eq!(q, None, "unchanged by the check");
        assert_eq!(given.lock().unwrap().take(), Some(request.clone()), "llm's callback got the request as given");
        assert_eq!(stack.current().unwrap().uuid(), h.uuid());
        h.exit(Ok(Payload::from_value(&response)));
        let (h, q) = stack.enter_llm("chat", json!({"content": 1}), LlmOptions::default()).unwrap().unwrap();
        assert_eq!(q, Some(json!({"headers": {}, "content": 1})));
        h.exit(Err(&Error::invalid_argument("provider: down")));
        assert!(stack.enter_llm("chat", json!({"headers": 1, "content": 1}), LlmOptions::default()).is_err());
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        let events = seen.lock().unwrap().clone();
        assert_eq!(events.len(), 6);
        assert_eq!(without_ids(&events[0]), without_ids(&events[2]));
        assert_eq!(without_ids(&events[1]), without_ids(&events[3]));
        assert!(events[2]["data"]["headers"].get("Authorization").is_none());
        assert_eq!(events[2]["category_profile"]["model_name"], "m1");
        assert_eq!(events[3]["data"], response);
        assert_eq!(events[5]["attributes"], events[1]["attributes"]);
        assert_eq!(
            events[5]["metadata"],
            json!({"error.type": "invalid_argument", "otel.status_code": "ERROR", "otel.status_description": "provider: down"})
        );
        let codec = LlmOptions { codec: Some(crate::codec::Codec::Auto), ..Default::default() };
        assert!(stack.enter_llm("chat", json!({"content": 1}), codec).unwrap().is_none());
        rt.register(Registration::new("ri"), Middleware::LlmRequestIntercept(RequestIntercept::Sync(Arc::new(|_, v| Ok(v))))).unwrap();
        assert!(stack.enter_llm("chat", json!({"content": 1}), LlmOptions::default()).unwrap().is_none());
    }
}
