//! Scopes, marks and metrics.

use super::*;

/// Opens a scope. `opts`: JSON `{category, input, metadata, attributes, categoryProfile, dataSchema}`.
#[wasm_bindgen]
pub fn push(stack: &Stack, name: &str, opts: Option<String>, parent: Option<Scope>) -> Result<Scope, JsValue> {
    let m = parse_opts(opts)?;
    let mut o = ScopeOptions::new(name).metadata(opt_metadata(&m)?).attributes(opt_attributes(&m)?);
    if let Some(c) = opt_string(&m, "category")? {
        o = o.category(c.as_str());
    }
    if let Some(v) = m.get("input") {
        o = o.input(v.clone());
    }
    if let Some(v) = m.get("categoryProfile") {
        if !v.is_null() {
            o = o.category_profile(v.clone());
        }
    }
    o.data_schema = opt_schema(&m)?;
    if let Some(p) = parent {
        o = o.parent(&p.inner);
    }
    stack.inner.push(o).map(|inner| Scope { inner }).map_err(to_js)
}

/// Ends a scope. `opts`: JSON `{output, metadata}`; `error`: a thrown value or message (ERROR status).
#[wasm_bindgen]
pub fn pop(stack: &Stack, scope: &Scope, opts: Option<String>, error: JsValue) -> Result<(), JsValue> {
    let end = end_options(opts, error)?;
    stack.inner.pop(&scope.inner, end).map_err(to_js)
}

/// Emits a mark. `opts`: JSON `{data, metadata, category, categoryProfile, dataSchema}`.
#[wasm_bindgen]
pub fn mark(stack: &Stack, name: &str, opts: Option<String>, parent: Option<Scope>) -> Result<(), JsValue> {
    let m = parse_opts(opts)?;
    let mut o = MarkOptions::new(name).metadata(opt_metadata(&m)?);
    if let Some(v) = m.get("data") {
        o = o.data(v.clone());
    }
    o.category = opt_string(&m, "category")?.map(|c| c.as_str().into());
    o.category_profile = m.get("categoryProfile").filter(|v| !v.is_null()).cloned();
    o.data_schema = opt_schema(&m)?;
    o.parent = parent.map(|p| p.inner);
    stack.inner.mark(o).map_err(to_js)
}

/// Emits a metric mark. `measurements`: JSON number or array; `unit` optional.
#[wasm_bindgen]
pub fn metric(stack: &Stack, name: &str, measurements: &str, unit: Option<String>) -> Result<(), JsValue> {
    let v = parse_json(measurements, "measurements")?;
    stack.inner.metric(name, v, unit.as_deref()).map_err(to_js)
}
