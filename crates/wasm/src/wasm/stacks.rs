//! Stacks and scope handles, forks and propagation.

use super::*;

/// A stack of open scopes.
#[wasm_bindgen]
pub struct Stack {
    pub(super) inner: baton::Stack,
}

/// A scope handle (cheap; does not keep the stack alive).
#[wasm_bindgen]
pub struct Scope {
    pub(super) inner: ScopeHandle,
}

#[wasm_bindgen]
impl Scope {
    /// A second handle to the same scope (the facade passes clones where Rust takes ownership).
    #[wasm_bindgen(js_name = cloneHandle)]
    pub fn clone_handle(&self) -> Scope {
        Scope { inner: self.inner.clone() }
    }
    /// `{uuid, name, category, parentUuid, rootUuid, ended}` as JSON text.
    pub fn info(&self) -> String {
        let h = &self.inner;
        json_text(&serde_json::json!({
            "uuid": h.uuid().to_string(),
            "name": h.name(),
            "category": h.category().as_str(),
            "parentUuid": h.parent_uuid().map(|u| u.to_string()),
            "rootUuid": h.root_uuid().to_string(),
            "ended": h.is_ended(),
        }))
    }
    #[wasm_bindgen(getter)]
    pub fn ended(&self) -> bool {
        self.inner.is_ended()
    }
}

#[wasm_bindgen(js_name = newStack)]
pub fn new_stack() -> Stack {
    Stack { inner: rt().new_stack() }
}

#[wasm_bindgen]
pub fn fork(stack: &Stack) -> Stack {
    Stack { inner: stack.inner.fork() }
}

#[wasm_bindgen(js_name = stackDepth)]
pub fn stack_depth(stack: &Stack) -> u32 {
    stack.inner.depth() as u32
}

#[wasm_bindgen(js_name = currentScope)]
pub fn current_scope(stack: &Stack) -> Option<Scope> {
    stack.inner.current().map(|inner| Scope { inner })
}

#[wasm_bindgen(js_name = propagationContext)]
pub fn propagation_context(stack: &Stack) -> String {
    stack.inner.propagation_context().to_string()
}

#[wasm_bindgen]
pub fn traceparent(stack: &Stack) -> Result<String, JsValue> {
    stack.inner.traceparent().map_err(to_js)
}

#[wasm_bindgen(js_name = stackFromPropagation)]
pub fn stack_from_propagation(context: &str) -> Result<Stack, JsValue> {
    let v = parse_json(context, "context")?;
    rt().stack_from_propagation(&v).map(|inner| Stack { inner }).map_err(to_js)
}
