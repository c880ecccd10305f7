//! Managed tool and LLM calls: the pipeline of DESIGN.md §2.3, in a sync and an async form.
//!
//! Both forms share every step that emits events or applies rules ([`Call`]); they differ
//! only in how they wait for middleware and callbacks. Order: guardrails (each in its own
//! `guardrail` scope), request intercepts, start event, execution intercepts around the
//! callback, end event, then marks queued by intercepts.

use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::codec::{self, Codec, CodecKind};
use crate::data::Data;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Attributes, Category, Payload};
use crate::exec;
use crate::middleware::{BoxFuture, CallCtx, CallInfo, CallKind, Decision, ExecutionIntercept, Guardrail, Middleware, RequestIntercept};
use crate::reentry;
use crate::registry::{Chain, Entry};
use crate::runtime::{RuntimeInner, Status};
use crate::scope::{Parent, ScopeHandle, ScopeNode};
use crate::stack::{with_stack, MarkOptions, Stack, StackFutureExt};

/// Options of a managed tool call.
#[derive(Clone, Debug, Default)]
pub struct ToolOptions {
    pub tool_call_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub attributes: Vec<String>,
    pub parent: Option<ScopeHandle>,
}

/// Options of a managed LLM call.
#[derive(Clone, Debug)]
pub struct LlmOptions {
    pub model_name: Option<String>,
    pub metadata: Map<String, Value>,
    pub attributes: Vec<String>,
    pub parent: Option<ScopeHandle>,
    /// Streams only: emit an `llm.chunk` mark per chunk (default true).
    pub chunk_marks: bool,
    /// Provider codec of `request.content` (or `Codec::Auto`): request intercepts and request
    /// sanitizers then also see `annotated_request` (the normalized request; edits are encoded
    /// back), and the start event's `category_profile` carries it (docs/codecs.md).
    pub codec: Option<Codec>,
    /// Codec of the response when it differs from `codec` (default: the request's codec). The
    /// end event's `category_profile` then carries `annotated_response`.
    pub response_codec: Option<Codec>,
}

impl Default for LlmOptions {
    fn default() -> Self {
        LlmOptions {
            model_name: None,
            metadata: Map::new(),
            attributes: Vec::new(),
            parent: None,
            chunk_marks: true,
            codec: None,
            response_codec: None,
        }
    }
}

/// Headers stripped from every event copy of an LLM request (DESIGN.md §6).
pub const CREDENTIAL_HEADERS: [&str; 7] =
    ["authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "anthropic-api-key", "x-goog-api-key"];

/// True when an LLM request carries a credential header.
pub(crate) fn has_credentials(request: &Value) -> bool {
    request
        .get("headers")
        .and_then(Value::as_object)
        .is_some_and(|h| h.keys().any(|k| CREDENTIAL_HEADERS.iter().any(|c| k.eq_ignore_ascii_case(c))))
}

/// Removes credential headers (any case) from an LLM request copy.
pub fn strip_credentials(request: &mut Value) {
    if let Some(headers) = request.get_mut("headers").and_then(Value::as_object_mut) {
        headers.retain(|k, _| !CREDENTIAL_HEADERS.iter().any(|c| k.eq_ignore_ascii_case(c)));
    }
}

/// Checks an LLM request is `{"headers": {...}?, "content": ...}`; adds empty headers.
pub(crate) fn validate_llm_request(request: &mut Value) -> Result<()> {
    let Some(obj) = request.as_object_mut() else {
        return Err(Error::invalid_argument(format!("request: expected an object {{headers, content}}, got {request}")));
    };
    match obj.get("headers") {
        None | Some(Value::Null) => {
            obj.insert("headers".into(), json!({}));
        }
        Some(Value::Object(h)) => {
            if let Some((k, v)) = h.iter().find(|(_, v)| !v.is_string()) {
                return Err(Error::invalid_argument(format!("request.headers[\"{k}\"]: expected a string, got {v}")));
            }
        }
        Some(other) => return Err(Error::invalid_argument(format!("request.headers: expected an object, got {other}"))),
    }
    if !obj.contains_key("content") {
        return Err(Error::invalid_argument("request.content: missing (an LLM request is {headers, content})"));
    }
    Ok(())
}

thread_local! {
    /// Recently used call names: agents call the same few tools over and over, and sharing
    /// the name saves an allocation per call.
    static NAMES: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The shared `Arc<str>` for a call name (a small per-thread cache, most recent first).
pub(crate) fn intern(name: &str) -> Arc<str> {
    const KEEP: usize = 32;
    NAMES.with(|cell| {
        let Ok(mut names) = cell.try_borrow_mut() else {
            return Arc::from(name);
        };
        if let Some(pos) = names.iter().position(|n| &**n == name) {
            let found = names[pos].clone();
            if pos > 0 {
                names[..=pos].rotate_right(1);
            }
            return found;
        }
        let fresh: Arc<str> = Arc::from(name);
        if names.len() == KEEP {
            names.pop();
        }
        names.insert(0, fresh.clone());
        fresh
    })
}

/// Every call needs a name (it names the scope and its events).
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_argument("name: a call needs a non-empty name"));
    }
    Ok(())
}

/// The checks every managed call passes before anything else (the runtime is open, the call
/// does not re-enter it, it has a name); then its parent.
pub(crate) fn admit(stack: &Stack, kind: CallKind, name: &str, parent: Option<&ScopeHandle>) -> Result<Parent> {
    stack.runtime().0.check_open()?;
    reentry::check_not_nested(match kind {
        CallKind::Tool => "a managed tool call",
        CallKind::Llm => "a managed LLM call",
    })?;
    check_name(name)?;
    stack.open_parent(parent)
}

/// The `category_profile` of a call's scope: `tool_call_id` for tools, `model_name` for LLMs.
pub(crate) fn category_profile(info: &CallInfo) -> Option<Value> {
    match info.kind {
        CallKind::Tool => tool_profile(info.tool_call_id.as_deref()),
        CallKind::Llm => info.model_name.as_ref().map(|m| json!({"model_name": m})),
    }
}

/// A tool call scope's `category_profile`.
pub(crate) fn tool_profile(tool_call_id: Option<&str>) -> Option<Value> {
    tool_call_id.map(|id| json!({"tool_call_id": id}))
}

/// `profile` plus one annotation (an object holding just it when there was no profile).
fn with_profile(profile: Option<Value>, key: &str, annotation: Option<Value>) -> Option<Value> {
    let Some(a) = annotation else { return profile };
    let mut p = match profile {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    p.insert(key.into(), a);
    Some(Value::Object(p))
}

/// Internal, unified options.
pub(crate) struct CallOptions {
    pub tool_call_id: Option<String>,
    pub model_name: Option<String>,
    pub metadata: Map<String, Value>,
    pub attributes: Vec<String>,
    pub parent: Option<ScopeHandle>,
    pub chunk_marks: bool,
    pub codec: Option<Codec>,
    pub response_codec: Option<Codec>,
}

impl From<ToolOptions> for CallOptions {
    fn from(o: ToolOptions) -> Self {
        CallOptions {
            tool_call_id: o.tool_call_id,
            model_name: None,
            metadata: o.metadata,
            attributes: o.attributes,
            parent: o.parent,
            chunk_marks: false,
            codec: None,
            response_codec: None,
        }
    }
}

impl From<LlmOptions> for CallOptions {
    fn from(o: LlmOptions) -> Self {
        CallOptions {
            tool_call_id: None,
            model_name: o.model_name,
            metadata: o.metadata,
            attributes: o.attributes,
            parent: o.parent,
            chunk_marks: o.chunk_marks,
            codec: o.codec,
            response_codec: o.response_codec,
        }
    }
}

/// One managed call in flight: the shared, event-producing steps of the pipeline.
pub(crate) struct Call {
    pub stack: Stack,
    pub info: CallInfo,
    pub parent: Parent,
    pub metadata: Map<String, Value>,
    pub attributes: Vec<String>,
    pub chunk_marks: bool,
    /// The codec options as given; `request_codec` is resolved by [`Call::resolve_codecs`].
    codec_option: Option<Codec>,
    pub response_codec: Option<Codec>,
    pub request_codec: Option<CodecKind>,
}

impl Call {
    pub fn new(stack: &Stack, kind: CallKind, name: &str, options: CallOptions) -> Result<Call> {
        let parent = admit(stack, kind, name, options.parent.as_ref())?;
        Ok(Call {
            info: CallInfo::new(kind, intern(name), options.tool_call_id, options.model_name, parent.uuid()),
            stack: stack.clone(),
            parent,
            metadata: options.metadata,
            attributes: options.attributes,
            chunk_marks: options.chunk_marks,
            codec_option: options.codec,
            response_codec: options.response_codec,
            request_codec: None,
        })
    }

    // ----- codecs (docs/codecs.md) -----

    /// Picks the request codec (a fixed one must decode the request: `invalid_argument`
    /// otherwise, before any event; `auto` falls back to none) and defaults the response
    /// codec to the request's.
    pub fn resolve_codecs(&mut self, request: &Value) -> Result<()> {
        let content = request.get("content").unwrap_or(&Value::Null);
        self.request_codec = match self.codec_option {
            None => None,
            Some(Codec::Kind(k)) => {
                codec::decode_request(k, content)
                    .map_err(|e| Error::invalid_argument(format!("request.content is not a {k} request: {}", e.message())))?;
                Some(k)
            }
            Some(Codec::Auto) => codec::detect_request(content),
        };
        if self.response_codec.is_none() {
            self.response_codec = match (self.request_codec, self.codec_option) {
                (Some(k), _) => Some(Codec::Kind(k)),
                (None, Some(Codec::Auto)) => Some(Codec::Auto),
                _ => None,
            };
        }
        Ok(())
    }

    /// Adds `annotated_request` (the decoded `content`) to a request given to middleware;
    /// returns what was added, to spot edits.
    fn annotate_request(&self, input: &mut Value) -> Option<Value> {
        let k = self.request_codec?;
        let decoded = codec::decode_request(k, input.get("content")?).ok()?;
        input.as_object_mut()?.insert("annotated_request".into(), decoded.clone());
        Some(decoded)
    }

    /// Removes `annotated_request` again; an edit of it is encoded back into `content`.
    fn apply_annotation(&self, input: &mut Value, given: Option<Value>) -> Result<()> {
        // Without a codec the key means nothing to Baton and is left alone.
        let (Some(k), Some(obj)) = (self.request_codec, input.as_object_mut()) else { return Ok(()) };
        let edited = obj.remove("annotated_request");
        let (Some(edited), Some(given)) = (edited, given) else { return Ok(()) };
        if edited == given {
            return Ok(());
        }
        let content = obj.get("content").cloned().unwrap_or(Value::Null);
        let invalid = |e: Error| Error::invalid_argument(format!("annotated_request.{}", e.message()));
        // Three-way: the top-level fields edited in the annotation win over the current
        // content; the others keep what the content says now (it may have been edited too).
        let mut merged = codec::decode_request(k, &content).map_err(|e| Error::invalid_argument(format!("content: {}", e.message())))?;
        if let (Some(m), Some(e), Some(g)) = (merged.as_object_mut(), edited.as_object(), given.as_object()) {
            for key in e.keys().chain(g.keys()) {
                if e.get(key) != g.get(key) {
                    match e.get(key) {
                        Some(v) => m.insert(key.clone(), v.clone()),
                        None => m.remove(key),
                    };
                }
            }
        } else {
            merged = edited;
        }
        let encoded = codec::encode_request(k, &merged, &content).map_err(invalid)?;
        obj.insert("content".into(), encoded);
        Ok(())
    }

    /// The start event's payload and profile with codecs: the request sanitizers see
    /// `annotated_request` too; the profile's `annotated_request` is decoded from the
    /// sanitized request, so it never shows what a sanitizer removed.
    fn annotated_start(&self, node: &Arc<ScopeNode>, input: &Value) -> (Payload, Option<Value>) {
        let rt = self.rt();
        let profile = category_profile(&self.info);
        let mut augmented = input.clone();
        let given = self.annotate_request(&mut augmented);
        let payload = rt.event_payload(self.info.kind.sanitize_request(), Some(node), &self.info, &augmented);
        if payload.is_null() {
            return (payload, profile);
        }
        let mut value = payload.to_value();
        if self.apply_annotation(&mut value, given).is_err() {
            // An edit the format cannot carry: fail closed, like a failing sanitizer.
            return (Payload::NULL, profile);
        }
        let annotated = self.request_codec.and_then(|k| codec::decode_request(k, value.get("content")?).ok());
        (Payload::from_value(&value), with_profile(profile, "annotated_request", annotated))
    }

    /// The end event's payload and profile with a response codec: `annotated_response` is
    /// decoded from the sanitized response (`aggregate` for a stream's chunks).
    pub fn annotated_end(&self, node: &Arc<ScopeNode>, result: &Value, stream: bool) -> (Payload, Option<Value>) {
        let rt = self.rt();
        let profile = category_profile(&self.info);
        let payload = rt.event_payload(self.info.kind.sanitize_response(), Some(node), &self.info, result);
        let Some(c) = self.response_codec.filter(|_| !payload.is_null()) else {
            return (payload, profile);
        };
        let value = payload.to_value();
        let annotated = if stream {
            value.as_array().and_then(|chunks| {
                let kind = match c {
                    Codec::Kind(k) => Some(k),
                    Codec::Auto => chunks.iter().find_map(codec::detect_chunk),
                }?;
                codec::aggregate_stream(kind, chunks).ok()
            })
        } else {
            let decode = |v: &Value| c.for_response(v).and_then(|k| codec::decode_response(k, v).ok());
            // A callback may hand back the provider body itself or `{headers?, content}`.
            decode(&value).or_else(|| value.get("content").filter(|c| c.is_object()).and_then(decode))
        };
        (payload, with_profile(profile, "annotated_response", annotated.map(|r| r.to_json())))
    }

    pub fn rt(&self) -> &RuntimeInner {
        &self.stack.runtime().0
    }

    pub fn chain(&self, family: crate::middleware::Family) -> Option<Chain> {
        self.rt().registry.chain(family, self.parent.node())
    }

    // ----- step 1: guardrails -----

    fn begin_guardrail(&self, entry: &Entry) -> Arc<ScopeNode> {
        let node = ScopeNode::new(entry.name.clone(), Category::GUARDRAIL, Attributes::default(), None, &self.parent, Map::new());
        self.rt().emit_start(&node, || Payload::NULL, None);
        node
    }

    fn finish_guardrail(&self, entry: &Entry, node: &Arc<ScopeNode>, outcome: Result<Decision>) -> Result<()> {
        let rt = self.rt();
        match outcome {
            Ok(Decision::Allow) => {
                rt.end_scope(node, Status::Ok, || json!({"allowed": true}).into(), Map::new());
                Ok(())
            }
            Ok(Decision::Reject(reason)) => {
                rt.end_scope(node, Status::Ok, || json!({"allowed": false, "reason": reason}).into(), Map::new());
                self.stack.emit_mark(
                    &self.parent,
                    MarkOptions {
                        name: self.info.name.to_string(),
                        data: Some(json!({"rejected": true, "rejection_reason": reason})),
                        category: Some(self.info.kind.category()),
                        ..Default::default()
                    },
                );
                let what = match self.info.kind {
                    CallKind::Tool => "tool",
                    CallKind::Llm => "LLM",
                };
                Err(Error::new(
                    ErrorKind::GuardrailRejected,
                    format!("{what} call '{}' rejected by guardrail '{}': {reason}", self.info.name, entry.name),
                )
                .with_detail(json!({"guardrail": &*entry.name, "reason": reason})))
            }
            Err(e) => {
                rt.end_scope(node, Status::Error(&e), || Payload::NULL, Map::new());
                Err(e)
            }
        }
    }

    pub fn guardrails_sync(&self, input: &Value) -> Result<()> {
        let Some(chain) = self.chain(self.info.kind.guardrails()) else {
            return Ok(());
        };
        for entry in chain.iter() {
            let (Middleware::ToolConditionalExecution(g) | Middleware::LlmConditionalExecution(g)) = &entry.mw else {
                continue;
            };
            let node = self.begin_guardrail(entry);
            let outcome = self.stack.with_pushed(&node, || {
                let _flag = reentry::enter(reentry::MIDDLEWARE);
                match g {
                    Guardrail::Sync(f) => exec::guard(|| f(&self.info, input)),
                    Guardrail::Async(f) => exec::block_on(exec::catch_panic(async { f(self.info.clone(), input.clone()).await })),
                }
            });
            self.finish_guardrail(entry, &node, outcome)?;
        }
        Ok(())
    }

    pub async fn guardrails_async(&self, input: &Value) -> Result<()> {
        let Some(chain) = self.chain(self.info.kind.guardrails()) else {
            return Ok(());
        };
        for entry in chain.iter() {
            let (Middleware::ToolConditionalExecution(g) | Middleware::LlmConditionalExecution(g)) = &entry.mw else {
                continue;
            };
            let node = self.begin_guardrail(entry);
            let pushed = PushedGuard::new(&self.stack, &node);
            let outcome = match g {
                Guardrail::Sync(f) => self.stack.with_pushed(&node, || {
                    let _flag = reentry::enter(reentry::MIDDLEWARE);
                    exec::guard(|| f(&self.info, input))
                }),
                Guardrail::Async(f) => {
                    let fut = {
                        let (f, info, input) = (f.clone(), self.info.clone(), input.clone());
                        exec::catch_panic(async move { f(info, input).await })
                    };
                    reentry::as_middleware(fut).with_stack(self.stack.clone()).await
                }
            };
            pushed.finish();
            self.finish_guardrail(entry, &node, outcome)?;
        }
        Ok(())
    }

    // ----- step 2: request intercepts -----

    pub fn request_intercepts_sync(&self, mut input: Value) -> Result<Value> {
        let Some(chain) = self.chain(self.info.kind.request_intercepts()) else {
            return Ok(input);
        };
        for entry in chain.iter() {
            let (Middleware::ToolRequestIntercept(r) | Middleware::LlmRequestIntercept(r)) = &entry.mw else {
                continue;
            };
            let _flag = reentry::enter(reentry::MIDDLEWARE);
            let given = self.annotate_request(&mut input);
            input = match r {
                RequestIntercept::Sync(f) => exec::guard(|| f(&self.info, input))?,
                RequestIntercept::Async(f) => exec::block_on(exec::catch_panic(async { f(self.info.clone(), input).await }))?,
            };
            self.check_rewritten(&mut input, entry, given)?;
            if entry.break_chain {
                break;
            }
        }
        Ok(input)
    }

    pub async fn request_intercepts_async(&self, mut input: Value) -> Result<Value> {
        let Some(chain) = self.chain(self.info.kind.request_intercepts()) else {
            return Ok(input);
        };
        for entry in chain.iter() {
            let (Middleware::ToolRequestIntercept(r) | Middleware::LlmRequestIntercept(r)) = &entry.mw else {
                continue;
            };
            let given = self.annotate_request(&mut input);
            input = match r {
                RequestIntercept::Sync(f) => {
                    let _flag = reentry::enter(reentry::MIDDLEWARE);
                    exec::guard(|| f(&self.info, input))?
                }
                RequestIntercept::Async(f) => {
                    let fut = {
                        let (f, info) = (f.clone(), self.info.clone());
                        exec::catch_panic(async move { f(info, input).await })
                    };
                    reentry::as_middleware(fut).await?
                }
            };
            self.check_rewritten(&mut input, entry, given)?;
            if entry.break_chain {
                break;
            }
        }
        Ok(input)
    }

    /// An LLM request rewritten by an intercept must still be a request; an edit of its
    /// `annotated_request` is encoded back into `content` (`invalid_argument` when the format
    /// cannot carry it).
    fn check_rewritten(&self, input: &mut Value, entry: &Entry, given: Option<Value>) -> Result<()> {
        if self.info.kind == CallKind::Llm {
            validate_llm_request(input).map_err(|e| {
                Error::callback_failed(format!("request intercept '{}' returned an invalid request: {}", entry.name, e.message()))
            })?;
            self.apply_annotation(input, given)
                .map_err(|e| Error::invalid_argument(format!("request intercept '{}': {}", entry.name, e.message())))?;
        }
        Ok(())
    }

    // ----- steps 3 and 6: start and end events -----

    /// The call's scope with its start event; `input` is what the event shows (sanitized).
    pub fn start(&mut self, input: &Data) -> Arc<ScopeNode> {
        let node = self.open_node();
        let rt = self.rt();
        if self.request_codec.is_some() {
            rt.emit_start_with(&node, || self.annotated_start(&node, &input.as_value()), None);
        } else {
            rt.emit_start(&node, || rt.event_payload_data(self.info.kind.sanitize_request(), Some(&node), &self.info, input), None);
        }
        node
    }

    /// [`Call::start`] for a value (streams).
    pub fn start_value(&mut self, input: &Value) -> Arc<ScopeNode> {
        let node = self.open_node();
        let rt = self.rt();
        if self.request_codec.is_some() {
            rt.emit_start_with(&node, || self.annotated_start(&node, input), None);
        } else {
            rt.emit_start(&node, || rt.event_payload(self.info.kind.sanitize_request(), Some(&node), &self.info, input), None);
        }
        node
    }

    fn open_node(&mut self) -> Arc<ScopeNode> {
        let profile = category_profile(&self.info);
        let node = ScopeNode::new(
            self.info.name.clone(),
            self.info.kind.category(),
            Attributes::new(&self.attributes),
            profile,
            &self.parent,
            std::mem::take(&mut self.metadata),
        );
        self.info.uuid = Some(node.uuid);
        node
    }

    pub fn end(&self, node: &Arc<ScopeNode>, result: &Result<Data>, ctx: Option<&CallCtx>) {
        let rt = self.rt();
        match result {
            Ok(v) if self.response_codec.is_some() => {
                rt.end_scope_with(node, Status::Ok, || self.annotated_end(node, &v.as_value(), false), Map::new())
            }
            Ok(v) => rt.end_scope(
                node,
                Status::Ok,
                || rt.event_payload_data(self.info.kind.sanitize_response(), Some(node), &self.info, v),
                Map::new(),
            ),
            Err(e) => rt.end_scope(node, Status::Error(e), || Payload::NULL, Map::new()),
        };
        if let Some(ctx) = ctx {
            let parent = Parent::Node(node.clone());
            for m in ctx.take_marks() {
                self.stack.emit_mark(&parent, MarkOptions { name: m.name, data: Some(m.data), metadata: m.metadata, ..Default::default() });
            }
        }
    }

    // ----- steps 4 and 5: execution -----

    /// Steps 1 and 2 (codecs, guardrails, request intercepts) for data that may be text: it is
    /// parsed only when one of them is there to need its structure.
    fn prepare_sync(&mut self, mut input: Data) -> Result<Data> {
        if self.codec_option.is_some() {
            self.resolve_codecs(input.value())?;
        }
        if self.chain(self.info.kind.guardrails()).is_some() {
            self.guardrails_sync(input.value())?;
        }
        if self.chain(self.info.kind.request_intercepts()).is_some() {
            input = Data::Value(self.request_intercepts_sync(input.into_value())?);
        }
        Ok(input)
    }

    pub fn run_sync(mut self, input: Data, callback: &dyn Fn(Data) -> Result<Data>) -> Result<Data> {
        // Refuse up front, before any event: an async intercept needs an owned, 'static
        // `next`, which a borrowed sync callback cannot give it.
        let exec_chain = self.chain(self.info.kind.execution_intercepts());
        if let Some(entry) = exec_chain.iter().flat_map(|c| c.iter()).find(|e| {
            matches!(
                &e.mw,
                Middleware::ToolExecutionIntercept(ExecutionIntercept::Async(_))
                    | Middleware::LlmExecutionIntercept(ExecutionIntercept::Async(_))
            )
        }) {
            return Err(async_in_sync(&entry.name));
        }
        let input = self.prepare_sync(input)?;
        let node = self.start(&input);
        let (result, ctx) = match exec_chain {
            None => (self.stack.with_pushed(&node, || exec::guard(|| callback(input))), None),
            Some(chain) => {
                let ctx = CallCtx::new(self.info.clone());
                let callback = |v: Value| callback(Data::Value(v)).map(Data::into_value);
                let r = self.stack.with_pushed(&node, || run_exec_sync(&chain, &ctx, input.into_value(), &callback));
                (r.map(Data::Value), Some(ctx))
            }
        };
        self.end(&node, &result, ctx.as_ref());
        result
    }

    pub async fn run_async(mut self, mut input: Data, callback: AsyncDataCallback) -> Result<Data> {
        if self.codec_option.is_some() {
            self.resolve_codecs(input.value())?;
        }
        if self.chain(self.info.kind.guardrails()).is_some() {
            self.guardrails_async(input.value()).await?;
        }
        if self.chain(self.info.kind.request_intercepts()).is_some() {
            input = Data::Value(self.request_intercepts_async(input.into_value()).await?);
        }
        let node = self.start(&input);
        let ctx = CallCtx::new(self.info.clone());
        let pushed = PushedGuard::new(&self.stack, &node).ending();
        let result = match self.chain(self.info.kind.execution_intercepts()) {
            // No intercept: the callback gets the data as it is (text stays text).
            None => reentry::as_callback(exec::catch_panic(async move { callback(input).await })).with_stack(self.stack.clone()).await,
            Some(chain) => {
                let callback: AsyncCallback = Arc::new(move |v| {
                    let fut = callback(Data::Value(v));
                    Box::pin(async move { fut.await.map(Data::into_value) })
                });
                let next = AsyncNext { chain: Some(chain), index: 0, ctx: ctx.clone(), callback };
                next.call(input.into_value()).with_stack(self.stack.clone()).await.map(Data::Value)
            }
        };
        pushed.finish();
        self.end(&node, &result, Some(&ctx));
        result
    }
}

/// Runs the sync execution chain; an async intercept cannot wrap a borrowed sync callback.
fn run_exec_sync(chain: &[Arc<Entry>], ctx: &CallCtx, input: Value, callback: &dyn Fn(Value) -> Result<Value>) -> Result<Value> {
    let Some((first, rest)) = chain.split_first() else {
        let _flag = reentry::leave(reentry::MIDDLEWARE);
        return exec::guard(|| callback(input));
    };
    let (Middleware::ToolExecutionIntercept(x) | Middleware::LlmExecutionIntercept(x)) = &first.mw else {
        return run_exec_sync(rest, ctx, input, callback);
    };
    match x {
        ExecutionIntercept::Sync(f) => {
            let next = |v: Value| run_exec_sync(rest, ctx, v, callback);
            let _flag = reentry::enter(reentry::MIDDLEWARE);
            exec::guard(|| f(ctx, input, &next))
        }
        ExecutionIntercept::Async(_) => Err(async_in_sync(&first.name)),
    }
}

fn async_in_sync(name: &str) -> Error {
    Error::invalid_state(format!(
        "execution intercept '{name}' is async and cannot wrap a synchronous call; use the async form of the call"
    ))
}

/// The callback of an async managed call.
pub type AsyncCallback = Arc<dyn Fn(Value) -> BoxFuture<Result<Value>> + Send + Sync>;

/// The callback of an async managed call over [`Data`] (bindings: text in, text out).
pub type AsyncDataCallback = Arc<dyn Fn(Data) -> BoxFuture<Result<Data>> + Send + Sync>;

/// `next` for async execution intercepts: runs the rest of the chain and the callback. It can
/// be called any number of times; every call must finish before the intercept returns.
#[derive(Clone)]
pub struct AsyncNext {
    chain: Option<Chain>,
    index: usize,
    ctx: CallCtx,
    callback: AsyncCallback,
}

impl AsyncNext {
    pub fn call(&self, input: Value) -> BoxFuture<Result<Value>> {
        let this = self.clone();
        Box::pin(async move {
            let entries = this.chain.as_deref().unwrap_or(&[]);
            for (i, entry) in entries.iter().enumerate().skip(this.index) {
                let (Middleware::ToolExecutionIntercept(x) | Middleware::LlmExecutionIntercept(x)) = &entry.mw else {
                    continue;
                };
                let rest = AsyncNext { index: i + 1, ..this.clone() };
                return match x {
                    ExecutionIntercept::Async(f) => {
                        let (f, ctx) = (f.clone(), this.ctx.clone());
                        reentry::as_middleware(exec::catch_panic(async move { f(ctx, input, rest).await })).await
                    }
                    ExecutionIntercept::Sync(f) => {
                        // A sync intercept's `next` must return a value, so it blocks on the rest.
                        let next = |v: Value| {
                            let _flag = reentry::leave(reentry::MIDDLEWARE);
                            exec::block_on(rest.call(v))
                        };
                        let _flag = reentry::enter(reentry::MIDDLEWARE);
                        exec::guard(|| f(&this.ctx, input, &next))
                    }
                };
            }
            let cb = this.callback.clone();
            reentry::as_callback(exec::catch_panic(async move { cb(input).await })).await
        })
    }

    pub fn ctx(&self) -> &CallCtx {
        &self.ctx
    }
}

/// Keeps a scope pushed across awaits; if the future is dropped first, removes it and (when
/// `ending`) ends the scope as cancelled, so every start still gets an end.
pub(crate) struct PushedGuard {
    stack: Stack,
    node: Arc<ScopeNode>,
    /// Dropped while still pushed, the scope ends as cancelled (on the stack's runtime).
    end_on_drop: bool,
    done: bool,
}

impl PushedGuard {
    pub fn new(stack: &Stack, node: &Arc<ScopeNode>) -> PushedGuard {
        PushedGuard::owning(stack, node.clone())
    }
    /// [`PushedGuard::new`] taking the caller's reference to the node.
    pub fn owning(stack: &Stack, node: Arc<ScopeNode>) -> PushedGuard {
        stack.scopes().push(node.clone());
        PushedGuard { stack: stack.clone(), node, end_on_drop: false, done: false }
    }
    pub fn ending(mut self) -> Self {
        self.end_on_drop = true;
        self
    }
    pub fn finish(mut self) {
        self.remove();
    }
    /// Removes the scope from the stack without ending it; the guard then does nothing on
    /// drop (the caller ends the scope, reading it through [`PushedGuard::node`]).
    pub fn remove(&mut self) {
        if !self.done {
            self.done = true;
            self.stack.remove_pushed(&self.node);
        }
    }
    pub fn node(&self) -> &Arc<ScopeNode> {
        &self.node
    }
    pub fn stack(&self) -> &Stack {
        &self.stack
    }
}

impl Drop for PushedGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.stack.remove_pushed(&self.node);
        if self.end_on_drop {
            self.stack.runtime().0.end_scope(&self.node, Status::Cancelled, || Payload::NULL, Map::new());
        }
    }
}

/// A value callback as a data callback (the `Value` API over the `Data` pipeline).
fn value_callback<F, Fut>(callback: F) -> impl Fn(Data) -> BoxFuture<Result<Data>> + Send + Sync + 'static
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value>> + Send + 'static,
{
    move |d: Data| {
        let fut = callback(d.into_value());
        Box::pin(async move { fut.await.map(Data::Value) }) as BoxFuture<Result<Data>>
    }
}

fn boxed_data_callback<F, Fut>(callback: F) -> AsyncDataCallback
where
    F: Fn(Data) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Data>> + Send + 'static,
{
    Arc::new(move |d| Box::pin(callback(d)) as BoxFuture<Result<Data>>)
}

impl Stack {
    /// True when a call can skip its scope: nothing is registered anywhere, so no middleware
    /// would run and no event could be seen. The callback then runs directly, with work it
    /// does parented under the caller's scope (a scope nobody observes would only leave
    /// nested events pointing at a parent no subscriber ever received).
    ///
    /// Public so a binding can take the same shortcut before paying for its own boundary
    /// conversions (the rule stays here): when this is `Ok(true)`, a managed tool or LLM call
    /// with a non-empty name is exactly "run the callback with the stack current". Errors as
    /// a call would give them: `already_shutdown` after shutdown, `invalid_state` from middleware.
    pub fn unobserved(&self) -> Result<bool> {
        let rt = &self.runtime().0;
        rt.check_open()?;
        if !rt.registry.is_empty() {
            return Ok(false);
        }
        reentry::check_not_nested("a managed call")?;
        Ok(true)
    }

    /// Runs a managed tool call: guardrails, request intercepts, start event, execution
    /// intercepts around `callback`, end event. Returns the real (unsanitized) result.
    pub fn tool(&self, name: &str, args: Value, callback: impl Fn(Value) -> Result<Value>, options: ToolOptions) -> Result<Value> {
        // The unobserved path stays direct: it is the cost every call pays when nobody listens.
        if self.unobserved()? && !name.is_empty() {
            return with_stack(self, || exec::guard(|| callback(args)));
        }
        self.tool_data(name, Data::Value(args), |d| callback(d.into_value()).map(Data::Value), options).map(Data::into_value)
    }

    /// [`Stack::tool`] over [`Data`]: for bindings, whose arguments and results are JSON text.
    /// The text is parsed only if something registered needs its structure, so with just
    /// subscribers it goes from the caller to the events and the callback unchanged.
    pub fn tool_data(&self, name: &str, args: Data, callback: impl Fn(Data) -> Result<Data>, options: ToolOptions) -> Result<Data> {
        if self.unobserved()? && !name.is_empty() {
            return with_stack(self, || exec::guard(|| callback(args)));
        }
        Call::new(self, CallKind::Tool, name, options.into())?.run_sync(args, &callback)
    }

    /// The async form of [`Stack::tool_data`].
    pub fn tool_data_async<F, Fut>(
        &self,
        name: &str,
        args: Data,
        callback: F,
        options: ToolOptions,
    ) -> impl Future<Output = Result<Data>> + Send + 'static
    where
        F: Fn(Data) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Data>> + Send + 'static,
    {
        let plan = match self.unobserved() {
            Ok(true) if !name.is_empty() => Ok(None),
            Ok(_) => Call::new(self, CallKind::Tool, name, options.into()).map(Some),
            Err(e) => Err(e),
        };
        let stack = self.clone();
        async move {
            match plan? {
                None => reentry::as_callback(exec::catch_panic(async move { callback(args).await })).with_stack(stack).await,
                Some(call) => call.run_async(args, boxed_data_callback(callback)).await,
            }
        }
    }

    /// The async form of [`Stack::tool`]; middleware may be sync or async.
    pub fn tool_async<F, Fut>(
        &self,
        name: &str,
        args: Value,
        callback: F,
        options: ToolOptions,
    ) -> impl Future<Output = Result<Value>> + Send + 'static
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        let fut = self.tool_data_async(name, Data::Value(args), value_callback(callback), options);
        async move { fut.await.map(Data::into_value) }
    }

    /// Runs a managed LLM call; `request` is `{"headers": {...}, "content": <provider JSON>}`.
    pub fn llm(&self, name: &str, request: Value, callback: impl Fn(Value) -> Result<Value>, options: LlmOptions) -> Result<Value> {
        self.llm_data(name, Data::Value(request), |d| callback(d.into_value()).map(Data::Value), options).map(Data::into_value)
    }

    /// [`Stack::llm`] over [`Data`] (see [`Stack::tool_data`]). The request is parsed to be
    /// checked (`{headers, content}`); the callback's result stays text.
    pub fn llm_data(&self, name: &str, mut request: Data, callback: impl Fn(Data) -> Result<Data>, options: LlmOptions) -> Result<Data> {
        validate_llm_request(request.value())?;
        if self.unobserved()? && !name.is_empty() {
            return with_stack(self, || exec::guard(|| callback(request)));
        }
        Call::new(self, CallKind::Llm, name, options.into())?.run_sync(request, &callback)
    }

    /// The async form of [`Stack::llm_data`].
    pub fn llm_data_async<F, Fut>(
        &self,
        name: &str,
        mut request: Data,
        callback: F,
        options: LlmOptions,
    ) -> impl Future<Output = Result<Data>> + Send + 'static
    where
        F: Fn(Data) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Data>> + Send + 'static,
    {
        let plan = validate_llm_request(request.value()).and_then(|_| match self.unobserved()? {
            true if !name.is_empty() => Ok(None),
            _ => Call::new(self, CallKind::Llm, name, options.into()).map(Some),
        });
        let stack = self.clone();
        async move {
            match plan? {
                None => reentry::as_callback(exec::catch_panic(async move { callback(request).await })).with_stack(stack).await,
                Some(call) => call.run_async(request, boxed_data_callback(callback)).await,
            }
        }
    }

    /// The async form of [`Stack::llm`].
    pub fn llm_async<F, Fut>(
        &self,
        name: &str,
        request: Value,
        callback: F,
        options: LlmOptions,
    ) -> impl Future<Output = Result<Value>> + Send + 'static
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        let fut = self.llm_data_async(name, Data::Value(request), value_callback(callback), options);
        async move { fut.await.map(Data::into_value) }
    }

    /// Runs only the guardrails of a tool call (their scopes and any rejection mark).
    pub fn tool_conditional_execution(&self, name: &str, args: &Value) -> Result<()> {
        Call::new(self, CallKind::Tool, name, ToolOptions::default().into())?.guardrails_sync(args)
    }

    /// Runs only the guardrails of an LLM call.
    pub fn llm_conditional_execution(&self, name: &str, request: &Value) -> Result<()> {
        let mut request = request.clone();
        validate_llm_request(&mut request)?;
        Call::new(self, CallKind::Llm, name, LlmOptions::default().into())?.guardrails_sync(&request)
    }

    /// Runs only the request intercepts of a tool call and returns the rewritten args.
    pub fn tool_request_intercepts(&self, name: &str, args: Value) -> Result<Value> {
        Call::new(self, CallKind::Tool, name, ToolOptions::default().into())?.request_intercepts_sync(args)
    }

    /// Runs only the request intercepts of an LLM call and returns the rewritten request.
    pub fn llm_request_intercepts(&self, name: &str, mut request: Value) -> Result<Value> {
        validate_llm_request(&mut request)?;
        Call::new(self, CallKind::Llm, name, LlmOptions::default().into())?.request_intercepts_sync(request)
    }

    /// Async form of [`Stack::tool_conditional_execution`].
    pub fn tool_conditional_execution_async(&self, name: &str, args: Value) -> impl Future<Output = Result<()>> + Send + 'static {
        let call = Call::new(self, CallKind::Tool, name, ToolOptions::default().into());
        async move { call?.guardrails_async(&args).await }
    }

    /// Async form of [`Stack::llm_conditional_execution`].
    pub fn llm_conditional_execution_async(&self, name: &str, mut request: Value) -> impl Future<Output = Result<()>> + Send + 'static {
        let call = validate_llm_request(&mut request).and_then(|_| Call::new(self, CallKind::Llm, name, LlmOptions::default().into()));
        async move { call?.guardrails_async(&request).await }
    }

    /// Async form of [`Stack::llm_request_intercepts`].
    pub fn llm_request_intercepts_async(&self, name: &str, mut request: Value) -> impl Future<Output = Result<Value>> + Send + 'static {
        let call = validate_llm_request(&mut request).and_then(|_| Call::new(self, CallKind::Llm, name, LlmOptions::default().into()));
        async move { call?.request_intercepts_async(request).await }
    }

    /// Async form of [`Stack::tool_request_intercepts`].
    pub fn tool_request_intercepts_async(&self, name: &str, args: Value) -> impl Future<Output = Result<Value>> + Send + 'static {
        let call = Call::new(self, CallKind::Tool, name, ToolOptions::default().into());
        async move { call?.request_intercepts_async(args).await }
    }
}
