//! Plugins from a `plugins.toml` document.

use super::*;

/// pluginValidate(document) → diagnostics
pub fn plugin_validate(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let doc = convert::to_json(env, a[0], "config")?;
    let diagnostics = rt().plugin_validate(&doc);
    convert::to_js(env, &Value::Array(diagnostics.iter().map(|d| d.to_json()).collect()))
}

/// pluginInitialize(document) → report
pub fn plugin_initialize(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let doc = convert::to_json(env, a[0], "config")?;
    convert::to_js(env, &rt().plugin_initialize(&doc)?.to_json())
}

pub fn plugin_clear(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    rt().plugin_clear()?;
    undefined(env)
}
