//! The runtime: one registry, one dispatcher, and the event pipeline between them.
//!
//! Most programs use the process-wide [`Runtime::global`]; tests and embedders that need
//! isolation create their own with [`Runtime::new`]. Stacks belong to a runtime, so every
//! event a stack produces goes to that runtime's subscribers.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::data::Data;
use crate::dispatch::{close_later, Diagnostics, Dispatcher, OverflowPolicy};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, EventStatus, Payload, ScopeCategory};
use crate::exec;
use crate::middleware::{CallInfo, EventFields, EventInfo, Family, Middleware, Registration};
use crate::reentry;
use crate::scope::{Parent, ScopeNode};
use crate::stack::Stack;

/// The families that may change an event before delivery (`event_middleware`).
const EVENT_MIDDLEWARE_FAMILIES: u32 =
    Family::bits(&[Family::EventMetadataInjector, Family::ScopeSanitizeStart, Family::ScopeSanitizeEnd, Family::MarkSanitize]);

/// Runtime settings.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeConfig {
    /// Bound of the delivery queue (events); default 65,536.
    pub queue_capacity: usize,
    pub overflow: OverflowPolicy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { queue_capacity: 65_536, overflow: OverflowPolicy::Block }
    }
}

/// A Baton runtime. Cloning is cheap and shares the same runtime.
#[derive(Clone)]
pub struct Runtime(pub(crate) Arc<RuntimeInner>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.0.config).field("shutdown", &self.is_shutdown()).finish()
    }
}

pub(crate) struct RuntimeInner {
    pub registry: crate::registry::Registry,
    pub dispatcher: Dispatcher,
    shutdown: AtomicBool,
    pub config: RuntimeConfig,
    pub plugins: crate::plugin::SharedPluginState,
}

static GLOBAL: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Runtime {
        let dispatcher = Dispatcher::new(config.queue_capacity, config.overflow);
        let publish = dispatcher.clone();
        Runtime(Arc::new(RuntimeInner {
            registry: crate::registry::Registry::new(Box::new(move |subscribers| publish.set_global(subscribers))),
            dispatcher,
            shutdown: AtomicBool::new(false),
            config,
            plugins: std::sync::Mutex::new(crate::plugin::PluginState::new()),
        }))
    }

    /// The process-wide runtime, created with default settings on first use.
    pub fn global() -> &'static Runtime {
        GLOBAL.get_or_init(|| Runtime::new(RuntimeConfig::default()))
    }

    /// Creates the process-wide runtime with `config`; `already_exists` if it already exists.
    pub fn init_global(config: RuntimeConfig) -> Result<&'static Runtime> {
        let mut created = false;
        let rt = GLOBAL.get_or_init(|| {
            created = true;
            Runtime::new(config)
        });
        if created {
            Ok(rt)
        } else {
            Err(Error::already_exists("the global runtime was already initialized"))
        }
    }

    pub fn config(&self) -> RuntimeConfig {
        self.0.config
    }

    /// Registers middleware or a subscriber, globally or on `registration.scope`.
    pub fn register(&self, registration: Registration, middleware: Middleware) -> Result<()> {
        self.0.check_open()?;
        let node = registration.scope.as_ref().map(|h| &h.node);
        self.0.registry.register(&registration.name, registration.priority, registration.break_chain, node, middleware)
    }

    /// Removes a registration. `Ok(false)` when nothing of that name was registered there.
    pub fn deregister(&self, family: Family, name: &str, scope: Option<&crate::scope::ScopeHandle>) -> Result<bool> {
        self.0.check_open()?;
        match self.0.registry.deregister(family, name, scope.map(|h| &h.node)) {
            Some(entry) => {
                if let Middleware::Subscriber(sub) = &entry.mw {
                    close_later(&self.0.dispatcher, sub.clone());
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A fresh, empty stack with no parent.
    pub fn new_stack(&self) -> Stack {
        Stack::new(self.clone(), Parent::None)
    }

    /// A stack whose top-level scopes are parented under a remote scope, from the JSON
    /// propagation context `{"version": 1, "root_uuid"?, "parent_uuid"}`.
    pub fn stack_from_propagation(&self, context: &Value) -> Result<Stack> {
        let obj = context.as_object().ok_or_else(|| Error::invalid_argument("propagation context: expected a JSON object"))?;
        match obj.get("version") {
            Some(v) if v.as_u64() == Some(1) => {}
            Some(v) => return Err(Error::invalid_argument(format!("propagation context.version: unsupported version {v}"))),
            None => return Err(Error::invalid_argument("propagation context.version: missing")),
        }
        let parse = |key: &str| -> Result<Option<crate::id::Uuid>> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => {
                    s.parse().map(Some).map_err(|e: Error| Error::invalid_argument(format!("propagation context.{key}: {}", e.message())))
                }
                Some(other) => Err(Error::invalid_argument(format!("propagation context.{key}: expected a UUID string, got {other}"))),
            }
        };
        let parent = parse("parent_uuid")?;
        let root = parse("root_uuid")?;
        Ok(match parent {
            None => self.new_stack(),
            Some(p) => Stack::new(self.clone(), Parent::Remote { root: root.unwrap_or(p), parent: p }),
        })
    }

    /// Waits until every event emitted before this call has been delivered and subscribers
    /// have flushed. `Ok(false)` when the timeout passed first.
    pub fn flush(&self, timeout: Duration) -> Result<bool> {
        reentry::check_not_nested("flush")?;
        let Some(seq) = self.0.dispatcher.enqueue_flush() else {
            return Err(Error::already_shutdown());
        };
        Ok(self.0.dispatcher.wait_for(seq, timeout))
    }

    /// Flushes, closes every global subscriber, and stops the dispatcher. Afterwards every
    /// operation that emits or registers returns `already_shutdown`.
    pub fn shutdown(&self, timeout: Duration) -> Result<bool> {
        reentry::check_not_nested("shutdown")?;
        if self.0.shutdown.swap(true, Ordering::AcqRel) {
            return Err(Error::already_shutdown());
        }
        let removed = self.0.registry.clear_global();
        for entry in removed.subscribers() {
            if let Middleware::Subscriber(s) = &entry.mw {
                close_later(&self.0.dispatcher, s.clone());
            }
        }
        Ok(self.0.dispatcher.stop(timeout))
    }

    pub fn is_shutdown(&self) -> bool {
        self.0.shutdown.load(Ordering::Acquire)
    }

    /// Whether an event emitted now would keep a host value ([`crate::CallValue::Host`]): every
    /// global subscriber takes host values, and no event middleware and no scope-local
    /// registration is alive. A hint read with plain loads, for a host deciding whether to make
    /// a snapshot at all; when it is stale the core asks for the text instead, so it only costs
    /// a snapshot nobody reads.
    pub fn host_values_welcome(&self) -> bool {
        self.0.dispatcher.global_takes_host_values() && self.0.registry.none_of(EVENT_MIDDLEWARE_FAMILIES)
    }

    pub fn diagnostics(&self) -> Diagnostics {
        self.0.dispatcher.diagnostics()
    }

    /// Delivers queued events on the calling thread. Needed only where the core has no
    /// dispatcher thread (wasm32), where a binding calls it from a microtask.
    pub fn drain(&self) -> usize {
        self.0.dispatcher.drain()
    }

    /// Events (and flush or close markers) queued and not yet delivered. Where the core has
    /// no dispatcher thread, a binding drains once this passes a mark of its own, so a loop
    /// that never yields delivers in small batches instead of filling the whole queue.
    pub fn backlog(&self) -> u64 {
        self.0.dispatcher.backlog()
    }
}

/// How a scope ended, for its status metadata.
pub(crate) enum Status<'a> {
    Ok,
    Error(&'a Error),
    Unwound(&'a str),
    Cancelled,
}

impl Status<'_> {
    fn to_event_status(&self) -> EventStatus {
        let (description, error_type, exception_type) = match self {
            Status::Ok => return EventStatus::OK,
            Status::Error(e) => (e.message().to_string(), Cow::Borrowed(e.kind().as_str()), e.exception_type().map(Arc::from)),
            Status::Unwound(by) => (format!("unwound by the end of scope '{by}'"), Cow::Borrowed("unwound"), None),
            Status::Cancelled => ("the stream was dropped before it finished".to_string(), Cow::Borrowed("cancelled"), None),
        };
        EventStatus { ok: false, description: Some(description), error_type: Some(error_type), exception_type }
    }
}

impl RuntimeInner {
    pub fn check_open(&self) -> Result<()> {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(Error::already_shutdown());
        }
        Ok(())
    }

    /// Builds, post-processes and queues one event, but only if a subscriber can see it:
    /// with nobody listening, `build` never runs.
    pub fn emit(&self, at: Option<&Arc<ScopeNode>>, build: impl FnOnce() -> Event) {
        self.emit_or_text(at, build, &mut || Payload::NULL);
    }

    /// [`Self::emit`] for an event whose `data` may be a host value ([`crate::CallValue::Host`]), with
    /// `text` to get its JSON when some consumer needs it. Event middleware reads JSON, so with
    /// any of it registered the text is taken at once (and the middleware runs); otherwise the
    /// dispatcher decides, under its lock, against the subscribers the event will meet.
    ///
    /// `text` is a `dyn` callback (called at most once) so that the many emitters do not each
    /// instantiate the host-value path again (it matters for the wasm module's size).
    pub fn emit_or_text(&self, at: Option<&Arc<ScopeNode>>, build: impl FnOnce() -> Event, text: &mut dyn FnMut() -> Payload) {
        let Some(locals) = self.registry.event_audience(at) else {
            return;
        };
        let mut event = build();
        if event.data.host_token().is_some() {
            if self.registry.none_of(EVENT_MIDDLEWARE_FAMILIES) {
                self.dispatcher.enqueue_event_or_text(Arc::new(event), locals, text);
                return;
            }
            event.data = text();
        }
        self.event_middleware(at, &mut event);
        self.dispatcher.enqueue_event(Arc::new(event), locals);
    }

    /// Metadata injectors, then the event sanitizers of the event's family (fail closed).
    fn event_middleware(&self, at: Option<&Arc<ScopeNode>>, event: &mut Event) {
        if self.registry.none_of(EVENT_MIDDLEWARE_FAMILIES) {
            return; // the usual case: two loads instead of two chain lookups per event
        }
        let injectors = self.registry.chain(Family::EventMetadataInjector, at);
        let family = match event.kind {
            EventKind::Scope(ScopeCategory::Start) => Family::ScopeSanitizeStart,
            EventKind::Scope(ScopeCategory::End) => Family::ScopeSanitizeEnd,
            EventKind::Mark => Family::MarkSanitize,
        };
        let sanitizers = self.registry.chain(family, at);
        if injectors.is_none() && sanitizers.is_none() {
            return;
        }
        let info = EventInfo {
            kind: event.kind,
            uuid: event.uuid,
            parent_uuid: event.parent_uuid,
            name: event.name.clone(),
            category: event.category.clone(),
        };
        let _flag = reentry::enter(reentry::EVENT_MIDDLEWARE);
        for entry in injectors.iter().flat_map(|c| c.iter()) {
            if let Middleware::EventMetadataInjector(f) = &entry.mw {
                match exec::guard(|| f(&info)) {
                    Ok(keys) => {
                        for (k, v) in keys {
                            if !event.has_metadata(&k) {
                                event.metadata.insert(k, v);
                            }
                        }
                    }
                    Err(_) => self.dispatcher.count_middleware_failure(),
                }
            }
        }
        if sanitizers.is_some() {
            // Sanitizers see (and may replace) the metadata exactly as the JSON shows it.
            event.materialize_metadata();
        }
        for entry in sanitizers.iter().flat_map(|c| c.iter()) {
            let (Middleware::MarkSanitize(f) | Middleware::ScopeSanitizeStart(f) | Middleware::ScopeSanitizeEnd(f)) = &entry.mw else {
                continue;
            };
            let fields = EventFields { data: event.data.to_value(), metadata: std::mem::take(&mut event.metadata) };
            let kept = fields.metadata.clone();
            match exec::guard(|| f(&info, fields)) {
                Ok(Some(out)) => {
                    event.data = Payload::from_value(&out.data);
                    event.metadata = out.metadata;
                }
                other => {
                    if other.is_err() {
                        self.dispatcher.count_middleware_failure();
                    }
                    event.data = Payload::NULL;
                    event.metadata = kept;
                    break;
                }
            }
        }
    }

    /// The payload an event carries for `value`: the sanitize chain's output (a failure or
    /// `None` omits it), with credential headers removed from LLM requests. With no
    /// sanitizers the value is serialized directly, without a copy.
    pub fn event_payload(&self, family: Family, at: Option<&Arc<ScopeNode>>, info: &CallInfo, value: &Value) -> Payload {
        let strip = family == Family::LlmSanitizeRequest;
        let Some(chain) = self.registry.chain(family, at) else {
            if strip && crate::call::has_credentials(value) {
                let mut v = value.clone();
                crate::call::strip_credentials(&mut v);
                return Payload::from_value(&v);
            }
            return Payload::from_value(value);
        };
        let _flag = reentry::enter(reentry::EVENT_MIDDLEWARE);
        let mut value = value.clone();
        for entry in chain.iter() {
            let (Middleware::ToolSanitizeRequest(f)
            | Middleware::ToolSanitizeResponse(f)
            | Middleware::LlmSanitizeRequest(f)
            | Middleware::LlmSanitizeResponse(f)) = &entry.mw
            else {
                continue;
            };
            match exec::guard(|| f(info, value)) {
                Ok(Some(v)) => value = v,
                Ok(None) => return Payload::NULL,
                Err(_) => {
                    self.dispatcher.count_middleware_failure();
                    return Payload::NULL;
                }
            }
        }
        if strip {
            // After the chain, so no sanitizer can put a credential back.
            crate::call::strip_credentials(&mut value);
        }
        Payload::from_value(&value)
    }

    /// [`RuntimeInner::event_payload`] for call data: text with no sanitizer to run (and no
    /// credentials to strip: LLM requests are always checked) becomes the payload verbatim.
    pub fn event_payload_data(&self, family: Family, at: Option<&Arc<ScopeNode>>, info: &CallInfo, data: &Data) -> Payload {
        if data.is_json() && family != Family::LlmSanitizeRequest && self.registry.chain(family, at).is_none() {
            return data.to_payload();
        }
        self.event_payload(family, at, info, &data.as_value())
    }

    /// Emits a scope start for `node`.
    pub fn emit_start(&self, node: &Arc<ScopeNode>, data: impl FnOnce() -> Payload, data_schema: Option<crate::event::DataSchema>) {
        self.emit_start_with(node, || (data(), node.category_profile.clone()), data_schema)
    }

    /// [`Self::emit_start`] with the event's `category_profile` built with its data (codecs
    /// annotate the sanitized payload).
    pub fn emit_start_with(
        &self,
        node: &Arc<ScopeNode>,
        data: impl FnOnce() -> (Payload, Option<Value>),
        data_schema: Option<crate::event::DataSchema>,
    ) {
        self.emit_start_or_text(node, data, data_schema, &mut || Payload::NULL);
    }

    /// [`Self::emit_start_with`] whose data may be a host value, with `text` for its JSON (see
    /// [`Self::emit_or_text`]).
    pub fn emit_start_or_text(
        &self,
        node: &Arc<ScopeNode>,
        data: impl FnOnce() -> (Payload, Option<Value>),
        data_schema: Option<crate::event::DataSchema>,
        text: &mut dyn FnMut() -> Payload,
    ) {
        self.emit_or_text(
            Some(node),
            || {
                let (data, category_profile) = data();
                Event {
                    kind: EventKind::Scope(ScopeCategory::Start),
                    uuid: node.uuid,
                    parent_uuid: node.parent_uuid,
                    timestamp_micros: node.start_micros,
                    name: node.name.clone(),
                    category: Some(node.category.clone()),
                    attributes: node.attributes.clone(),
                    category_profile,
                    data,
                    data_schema,
                    metadata: node.metadata.clone(),
                    status: None,
                    chunk_index: None,
                }
            },
            text,
        );
    }

    /// Emits the end of `node` (exactly once), then detaches its scope-local registrations.
    /// Returns `false` if the scope had already ended.
    pub fn end_scope(
        &self,
        node: &Arc<ScopeNode>,
        status: Status<'_>,
        data: impl FnOnce() -> Payload,
        metadata: Map<String, Value>,
    ) -> bool {
        self.end_scope_with(node, status, || (data(), node.category_profile.clone()), metadata)
    }

    /// [`Self::end_scope`] with the event's `category_profile` built with its data.
    pub fn end_scope_with(
        &self,
        node: &Arc<ScopeNode>,
        status: Status<'_>,
        data: impl FnOnce() -> (Payload, Option<Value>),
        metadata: Map<String, Value>,
    ) -> bool {
        self.end_scope_or_text(node, status, data, metadata, &mut || Payload::NULL)
    }

    /// [`Self::end_scope_with`] whose data may be a host value, with `text` for its JSON (see
    /// [`Self::emit_or_text`]).
    pub fn end_scope_or_text(
        &self,
        node: &Arc<ScopeNode>,
        status: Status<'_>,
        data: impl FnOnce() -> (Payload, Option<Value>),
        metadata: Map<String, Value>,
        text: &mut dyn FnMut() -> Payload,
    ) -> bool {
        if !node.mark_ended() {
            return false;
        }
        self.emit_or_text(
            Some(node),
            || {
                // Start metadata, then the status, then the end metadata (later wins): a status key
                // in the start metadata gives way to the status; one given at end overrides it.
                let mut m = node.metadata.clone();
                if !m.is_empty() {
                    m.retain(|k, _| !EventStatus::is_status_key(k));
                }
                m.extend(metadata);
                let (data, category_profile) = data();
                Event {
                    kind: EventKind::Scope(ScopeCategory::End),
                    uuid: node.uuid,
                    parent_uuid: node.parent_uuid,
                    timestamp_micros: node.end_micros(),
                    name: node.name.clone(),
                    category: Some(node.category.clone()),
                    attributes: node.attributes.clone(),
                    category_profile,
                    data,
                    data_schema: None,
                    metadata: m,
                    status: Some(status.to_event_status()),
                    chunk_index: None,
                }
            },
            text,
        );
        if let Some(locals) = self.registry.take_locals(node) {
            for entry in locals.subscribers() {
                if let Middleware::Subscriber(s) = &entry.mw {
                    close_later(&self.dispatcher, s.clone());
                }
            }
        }
        true
    }
}
