//! Scope stacks and "the current stack".
//!
//! The core always works on an explicit [`Stack`]. The Rust convenience layer keeps one
//! current stack per thread, and [`WithStack`] carries a stack across the polls of a future
//! (the way `tracing::Instrument` carries a span), so concurrent tasks never share scopes.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::event::{Attributes, Category, DataSchema, Event, EventKind, Payload};
use crate::id::Uuid;
use crate::reentry;
use crate::runtime::{Runtime, Status};
use crate::scope::{EndOptions, Parent, ScopeHandle, ScopeNode, ScopeOptions};

/// A stack of open scopes. Cloning shares the same stack.
#[derive(Clone)]
pub struct Stack(pub(crate) Arc<StackInner>);

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("depth", &self.depth()).finish()
    }
}

pub(crate) struct StackInner {
    pub rt: Runtime,
    /// Parent of scopes pushed on an empty stack (set by fork or propagation).
    pub base: Parent,
    pub scopes: Mutex<Vec<Arc<ScopeNode>>>,
}

/// Options for a mark.
#[derive(Clone, Debug, Default)]
pub struct MarkOptions {
    pub name: String,
    pub data: Option<Value>,
    pub metadata: Map<String, Value>,
    pub parent: Option<ScopeHandle>,
    pub category: Option<Category>,
    pub category_profile: Option<Value>,
    pub data_schema: Option<DataSchema>,
}

impl MarkOptions {
    pub fn new(name: impl Into<String>) -> MarkOptions {
        MarkOptions { name: name.into(), ..Default::default() }
    }
    pub fn data(mut self, v: Value) -> Self {
        self.data = Some(v);
        self
    }
    pub fn metadata(mut self, m: Map<String, Value>) -> Self {
        self.metadata = m;
        self
    }
}

/// The `data_schema` of metric marks.
pub const METRIC_SCHEMA: &str = "baton.metric";

impl Stack {
    pub(crate) fn new(rt: Runtime, base: Parent) -> Stack {
        Stack(Arc::new(StackInner { rt, base, scopes: Mutex::new(Vec::new()) }))
    }

    pub fn runtime(&self) -> &Runtime {
        &self.0.rt
    }

    pub(crate) fn scopes(&self) -> MutexGuard<'_, Vec<Arc<ScopeNode>>> {
        self.0.scopes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where new work on this stack is parented right now.
    pub(crate) fn current_parent(&self) -> Parent {
        match self.scopes().last() {
            Some(n) => Parent::Node(n.clone()),
            None => self.0.base.clone(),
        }
    }

    pub(crate) fn parent_of(&self, explicit: Option<&ScopeHandle>) -> Parent {
        match explicit {
            Some(h) => Parent::Node(h.node.clone()),
            None => self.current_parent(),
        }
    }

    /// The parent for new work: `explicit`, which must still be open (`not_found` otherwise),
    /// or the current top of the stack.
    pub(crate) fn open_parent(&self, explicit: Option<&ScopeHandle>) -> Result<Parent> {
        if let Some(p) = explicit {
            if p.node.is_ended() {
                return Err(Error::not_found(format!("parent scope '{}' ({}) has already ended", p.node.name, p.node.uuid)));
            }
        }
        Ok(self.parent_of(explicit))
    }

    /// The innermost open scope, if any.
    pub fn current(&self) -> Option<ScopeHandle> {
        self.scopes().last().map(|n| ScopeHandle { node: n.clone(), stack: Arc::downgrade(&self.0) })
    }

    /// Number of open scopes on this stack.
    pub fn depth(&self) -> usize {
        self.scopes().len()
    }

    /// Opens a scope and emits its start event.
    pub fn push(&self, options: ScopeOptions) -> Result<ScopeHandle> {
        self.0.rt.0.check_open()?;
        reentry::check_can_emit()?;
        let parent = self.open_parent(options.parent.as_ref())?;
        let node = ScopeNode::new(
            options.name.into(),
            options.category,
            Attributes::new(&options.attributes),
            options.category_profile,
            &parent,
            options.metadata,
        );
        let input = options.input;
        self.0.rt.0.emit_start(&node, || input.as_ref().map(Payload::from_value).unwrap_or_default(), options.data_schema);
        self.scopes().push(node.clone());
        Ok(ScopeHandle { node, stack: Arc::downgrade(&self.0) })
    }

    /// Ends `scope` on the stack it was pushed on (see [`ScopeHandle`]), unwinding any scope
    /// still open above it. `not_found` when it already ended or is not on that stack.
    pub fn pop(&self, scope: &ScopeHandle, options: EndOptions) -> Result<()> {
        let owner = match scope.stack.upgrade() {
            Some(inner) => Stack(inner),
            None => {
                return Err(Error::not_found(format!("scope '{}' ({}) is not open on any live stack", scope.node.name, scope.node.uuid)))
            }
        };
        owner.pop_here(scope, options)
    }

    fn pop_here(&self, scope: &ScopeHandle, options: EndOptions) -> Result<()> {
        self.0.rt.0.check_open()?;
        reentry::check_can_emit()?;
        let removed: Vec<Arc<ScopeNode>> = {
            let mut scopes = self.scopes();
            let Some(pos) = scopes.iter().rposition(|n| Arc::ptr_eq(n, &scope.node)) else {
                return Err(Error::not_found(format!(
                    "scope '{}' ({}) is not open on its stack (already ended?)",
                    scope.node.name, scope.node.uuid
                )));
            };
            scopes.drain(pos..).collect()
        };
        let rt = &self.0.rt.0;
        for above in removed[1..].iter().rev() {
            rt.end_scope(above, Status::Unwound(&scope.node.name), || Payload::NULL, Map::new());
        }
        let EndOptions { output, metadata, error } = options;
        let status = match &error {
            Some(e) => Status::Error(e),
            None => Status::Ok,
        };
        rt.end_scope(&removed[0], status, || output.as_ref().map(Payload::from_value).unwrap_or_default(), metadata);
        Ok(())
    }

    /// Pushes `node` (whose start was already emitted) for the duration of `f`, with this
    /// stack current on the thread; afterwards removes it, unwinding whatever `f` left open.
    pub(crate) fn with_pushed<R>(&self, node: &Arc<ScopeNode>, f: impl FnOnce() -> R) -> R {
        self.scopes().push(node.clone());
        let out = with_stack(self, f);
        self.remove_pushed(node);
        out
    }

    pub(crate) fn remove_pushed(&self, node: &Arc<ScopeNode>) {
        let left: Vec<Arc<ScopeNode>> = {
            let mut scopes = self.scopes();
            if scopes.last().is_some_and(|n| Arc::ptr_eq(n, node)) {
                scopes.pop();
                return;
            }
            match scopes.iter().rposition(|n| Arc::ptr_eq(n, node)) {
                Some(pos) => scopes.drain(pos..).skip(1).collect(),
                None => Vec::new(),
            }
        };
        for above in left.iter().rev() {
            self.0.rt.0.end_scope(above, Status::Unwound(&node.name), || Payload::NULL, Map::new());
        }
    }

    /// Emits a mark under `options.parent` or the current scope.
    pub fn mark(&self, options: MarkOptions) -> Result<()> {
        self.0.rt.0.check_open()?;
        reentry::check_can_emit()?;
        let parent = self.parent_of(options.parent.as_ref());
        self.emit_mark(&parent, options);
        Ok(())
    }

    pub(crate) fn emit_mark(&self, parent: &Parent, options: MarkOptions) {
        let MarkOptions { name, data, metadata, category, category_profile, data_schema, .. } = options;
        self.0.rt.0.emit(parent.node(), || Event {
            category_profile,
            data: data.map(|d| Payload::from_value(&d)).unwrap_or_default(),
            data_schema,
            metadata,
            ..mark_event(parent, &name, category)
        });
    }

    /// Emits a metric mark: `measurements` is an array of `{value, attributes?}` (or one
    /// bare number); every value must be a finite number.
    pub fn metric(&self, name: &str, measurements: Value, unit: Option<&str>) -> Result<()> {
        let list = match measurements {
            Value::Number(_) => vec![json!({"value": measurements})],
            Value::Array(a) => a,
            other => {
                return Err(Error::invalid_argument(format!(
                    "metric '{name}' measurements: expected an array of {{value, attributes?}} or a number, got {other}"
                )))
            }
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, m) in list.into_iter().enumerate() {
            let obj = match m {
                Value::Number(_) => json!({"value": m, "attributes": {}}),
                Value::Object(mut o) => {
                    match o.get("value") {
                        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {}
                        Some(v) => {
                            return Err(Error::invalid_argument(format!(
                                "metric '{name}' measurements[{i}].value: expected a finite number, got {v}"
                            )))
                        }
                        None => return Err(Error::invalid_argument(format!("metric '{name}' measurements[{i}].value: missing"))),
                    }
                    match o.get("attributes") {
                        None => {
                            o.insert("attributes".into(), json!({}));
                        }
                        Some(Value::Object(_)) => {}
                        Some(v) => {
                            return Err(Error::invalid_argument(format!(
                                "metric '{name}' measurements[{i}].attributes: expected an object, got {v}"
                            )))
                        }
                    }
                    Value::Object(o)
                }
                other => {
                    return Err(Error::invalid_argument(format!(
                        "metric '{name}' measurements[{i}]: expected an object or a number, got {other}"
                    )))
                }
            };
            out.push(obj);
        }
        let mut data = json!({"measurements": out});
        if let Some(u) = unit {
            data["unit"] = u.into();
        }
        self.mark(MarkOptions {
            name: name.into(),
            data: Some(data),
            data_schema: Some(DataSchema { name: METRIC_SCHEMA.into(), version: "0.1".into() }),
            ..Default::default()
        })
    }

    /// An identity of where new work on this stack is parented right now: the address of the
    /// current scope, or 0 when the stack is empty (its base, fixed for the stack's life).
    ///
    /// Two reads give the same value while the same scope is current. A host that caches a
    /// [`Stack::fork`] taken at one read can reuse it while later reads give the same value:
    /// the cached fork holds that scope alive, so its address cannot be reused by another.
    pub fn current_id(&self) -> usize {
        self.scopes().last().map_or(0, |n| Arc::as_ptr(n) as usize)
    }

    /// A new, empty stack whose first scope is parented under this stack's current scope.
    pub fn fork(&self) -> Stack {
        Stack::new(self.0.rt.clone(), self.current_parent())
    }

    /// `{"version": 1, "root_uuid": R, "parent_uuid": P}` for handing work to another process.
    pub fn propagation_context(&self) -> Value {
        match self.current_parent() {
            Parent::None => json!({"version": 1, "parent_uuid": null}),
            Parent::Node(n) => {
                json!({"version": 1, "root_uuid": n.root_uuid.to_string(), "parent_uuid": n.uuid.to_string()})
            }
            Parent::Remote { root, parent } => {
                json!({"version": 1, "root_uuid": root.to_string(), "parent_uuid": parent.to_string()})
            }
        }
    }

    /// The W3C `traceparent` of the current scope; `invalid_state` on an empty stack.
    pub fn traceparent(&self) -> Result<String> {
        let (root, parent) = match self.current_parent() {
            Parent::None => return Err(Error::invalid_state("traceparent: there is no current scope on this stack")),
            Parent::Node(n) => (n.root_uuid, n.uuid),
            Parent::Remote { root, parent } => (root, parent),
        };
        Ok(format!("00-{}-{}-01", root.simple_hex(), parent.span_hex()))
    }
}

/// A mark under `parent`, stamped now, with no data, metadata or profile yet.
fn mark_event(parent: &Parent, name: &str, category: Option<Category>) -> Event {
    // One clock read serves the timestamp and the id's milliseconds.
    let now = crate::time::event_time(0);
    Event {
        kind: EventKind::Mark,
        uuid: Uuid::v7_at(now),
        parent_uuid: parent.uuid(),
        timestamp_micros: now,
        name: name.into(),
        category,
        attributes: Attributes::default(),
        category_profile: None,
        data: Payload::NULL,
        data_schema: None,
        metadata: Map::new(),
        status: None,
        chunk_index: None,
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Stack>> = const { RefCell::new(None) };
}

/// The current thread's stack; a thread without one gets a fresh stack on the global runtime.
pub fn current_stack() -> Stack {
    CURRENT.with(|c| c.borrow_mut().get_or_insert_with(|| Runtime::global().new_stack()).clone())
}

/// Runs `f` with `stack` as the current stack of this thread.
pub fn with_stack<R>(stack: &Stack, f: impl FnOnce() -> R) -> R {
    let already = CURRENT.with(|c| c.borrow().as_ref().is_some_and(|s| Arc::ptr_eq(&s.0, &stack.0)));
    if already {
        return f();
    }
    struct Restore(Option<Stack>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace(stack.clone()));
    let _restore = Restore(prev);
    f()
}

/// A future that makes `stack` current on every poll.
pub struct WithStack<F> {
    stack: Stack,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for WithStack<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        with_stack(&this.stack, || this.inner.as_mut().poll(cx))
    }
}

/// Attaches a stack to a future.
pub trait StackFutureExt: Future + Sized {
    /// Runs this future with `stack` current on every poll.
    fn with_stack(self, stack: Stack) -> WithStack<Self> {
        WithStack { stack, inner: Box::pin(self) }
    }
    /// Runs this future on a fork of the current stack (for a spawned task).
    fn forked(self) -> WithStack<Self> {
        let stack = current_stack().fork();
        self.with_stack(stack)
    }
}

impl<F: Future> StackFutureExt for F {}
