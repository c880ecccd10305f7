//! Scopes: units of work with a start and an end, forming a parent–child tree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Map, Value};

use crate::error::Error;
use crate::event::{Attributes, Category, DataSchema};
use crate::id::Uuid;
use crate::registry::Lists;
use crate::stack::StackInner;

/// The shared state of one scope. Children hold their parent alive, which is what lets a
/// forked stack on another thread still see its ancestors' scope-local middleware.
pub(crate) struct ScopeNode {
    pub uuid: Uuid,
    pub name: Arc<str>,
    pub category: Category,
    pub attributes: Attributes,
    pub category_profile: Option<Value>,
    pub parent: Option<Arc<ScopeNode>>,
    /// The parent's uuid; also set when the parent lives in another process (propagation).
    pub parent_uuid: Option<Uuid>,
    /// The root of this scope's tree (the W3C trace id).
    pub root_uuid: Uuid,
    pub start_micros: i64,
    /// Metadata given at start; the end event merges into it.
    pub metadata: Map<String, Value>,
    ended: AtomicBool,
    /// Boxed: most scopes never have local registrations, and nodes are allocated per call.
    pub locals: Mutex<Option<Box<Lists>>>,
}

/// Where a new scope hangs in the tree.
#[derive(Clone)]
pub(crate) enum Parent {
    None,
    Node(Arc<ScopeNode>),
    /// A scope in another process, known only by ids.
    Remote {
        root: Uuid,
        parent: Uuid,
    },
}

impl Parent {
    pub fn node(&self) -> Option<&Arc<ScopeNode>> {
        match self {
            Parent::Node(n) => Some(n),
            _ => None,
        }
    }
    pub fn uuid(&self) -> Option<Uuid> {
        match self {
            Parent::None => None,
            Parent::Node(n) => Some(n.uuid),
            Parent::Remote { parent, .. } => Some(*parent),
        }
    }
}

impl ScopeNode {
    pub fn new(
        name: Arc<str>,
        category: Category,
        attributes: Attributes,
        category_profile: Option<Value>,
        parent: &Parent,
        metadata: Map<String, Value>,
    ) -> Arc<ScopeNode> {
        let now = crate::time::event_time(0);
        let uuid = Uuid::v7_at(now);
        let root_uuid = match parent {
            Parent::None => uuid,
            Parent::Node(n) => n.root_uuid,
            Parent::Remote { root, .. } => *root,
        };
        Arc::new(ScopeNode {
            uuid,
            name,
            category,
            attributes,
            category_profile,
            parent: parent.node().cloned(),
            parent_uuid: parent.uuid(),
            root_uuid,
            start_micros: now,
            metadata,
            ended: AtomicBool::new(false),
            locals: Mutex::new(None),
        })
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Marks the scope ended; `false` if it already was.
    pub fn mark_ended(&self) -> bool {
        !self.ended.swap(true, Ordering::AcqRel)
    }

    /// The end timestamp: now, but never less than 1 µs after the start.
    pub fn end_micros(&self) -> i64 {
        crate::time::event_time(self.start_micros + 1)
    }
}

/// Unlinks the ancestor chain iteratively. Each node holds its parent alive, so a plain drop
/// of the last reference to a deep chain (a host that pushed a million scopes and never popped
/// them) would recurse once per ancestor and overflow the thread's stack: a crash in whatever
/// language the host is. Here each ancestor this node held last is taken apart in a loop.
impl Drop for ScopeNode {
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            // `into_inner` releases our reference either way; it hands the node back only when
            // ours was the last, and then its parent is ours to release next.
            next = match Arc::into_inner(parent) {
                Some(mut node) => node.parent.take(),
                None => None,
            };
        }
    }
}

/// A handle to an open (or ended) scope. Cheap to clone; does not keep the stack alive.
#[derive(Clone)]
pub struct ScopeHandle {
    pub(crate) node: Arc<ScopeNode>,
    pub(crate) stack: Weak<StackInner>,
}

impl std::fmt::Debug for ScopeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeHandle").field("uuid", &self.node.uuid).field("name", &self.node.name).finish()
    }
}

impl ScopeHandle {
    pub fn uuid(&self) -> Uuid {
        self.node.uuid
    }
    pub fn name(&self) -> &str {
        &self.node.name
    }
    pub fn category(&self) -> &Category {
        &self.node.category
    }
    pub fn parent_uuid(&self) -> Option<Uuid> {
        self.node.parent_uuid
    }
    pub fn root_uuid(&self) -> Uuid {
        self.node.root_uuid
    }
    pub fn is_ended(&self) -> bool {
        self.node.is_ended()
    }
}

/// Options for pushing a scope.
#[derive(Clone, Debug)]
pub struct ScopeOptions {
    pub name: String,
    pub category: Category,
    pub input: Option<Value>,
    pub metadata: Map<String, Value>,
    pub attributes: Vec<String>,
    pub category_profile: Option<Value>,
    pub data_schema: Option<DataSchema>,
    /// Explicit parent; default is the top of the stack.
    pub parent: Option<ScopeHandle>,
}

impl ScopeOptions {
    pub fn new(name: impl Into<String>) -> ScopeOptions {
        ScopeOptions {
            name: name.into(),
            category: Category::FUNCTION,
            input: None,
            metadata: Map::new(),
            attributes: Vec::new(),
            category_profile: None,
            data_schema: None,
            parent: None,
        }
    }
    pub fn category(mut self, c: impl Into<Category>) -> Self {
        self.category = c.into();
        self
    }
    pub fn input(mut self, v: Value) -> Self {
        self.input = Some(v);
        self
    }
    pub fn metadata(mut self, m: Map<String, Value>) -> Self {
        self.metadata = m;
        self
    }
    pub fn attributes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.attributes = a.into_iter().map(Into::into).collect();
        self
    }
    pub fn category_profile(mut self, p: Value) -> Self {
        self.category_profile = Some(p);
        self
    }
    pub fn parent(mut self, p: &ScopeHandle) -> Self {
        self.parent = Some(p.clone());
        self
    }
}

/// Options for ending a scope.
#[derive(Clone, Debug, Default)]
pub struct EndOptions {
    pub output: Option<Value>,
    pub metadata: Map<String, Value>,
    /// Ends the scope with `ERROR` status.
    pub error: Option<Error>,
}

impl EndOptions {
    pub fn output(mut self, v: Value) -> Self {
        self.output = Some(v);
        self
    }
    pub fn metadata(mut self, m: Map<String, Value>) -> Self {
        self.metadata = m;
        self
    }
    pub fn error(mut self, e: Error) -> Self {
        self.error = Some(e);
        self
    }
}
