//! The standalone helpers (guardrails and request intercepts without a managed call).

use super::*;

/// Standalone helpers: `kind` is `toolConditionalExecution`, `llmConditionalExecution`,
/// `toolRequestIntercepts` or `llmRequestIntercepts`. Returns JSON text (`null` for guardrails).
#[wasm_bindgen]
pub fn standalone(stack: &Stack, kind: &str, name: &str, input: &str) -> Result<String, JsValue> {
    let v = parse_json(input, "input")?;
    let s = &stack.inner;
    match kind {
        "toolConditionalExecution" => s.tool_conditional_execution(name, &v).map(|()| Value::Null),
        "llmConditionalExecution" => s.llm_conditional_execution(name, &v).map(|()| Value::Null),
        "toolRequestIntercepts" => s.tool_request_intercepts(name, v),
        "llmRequestIntercepts" => s.llm_request_intercepts(name, v),
        _ => return Err(bad(format!("standalone: unknown helper '{kind}'"))),
    }
    .map(|v| json_text(&v))
    .map_err(to_js)
}

/// The async standalone helpers (`kind` as in [`standalone`]); returns a task id.
#[wasm_bindgen(js_name = standaloneAsync)]
pub fn standalone_async(stack: &Stack, kind: &str, name: &str, input: &str) -> Result<u32, JsValue> {
    let v = parse_json(input, "input")?;
    let s = &stack.inner;
    let fut: baton::BoxFuture<baton::Result<Value>> = match kind {
        "toolConditionalExecution" => {
            let f = s.tool_conditional_execution_async(name, v);
            Box::pin(async move { f.await.map(|()| Value::Null) })
        }
        "llmConditionalExecution" => {
            let f = s.llm_conditional_execution_async(name, v);
            Box::pin(async move { f.await.map(|()| Value::Null) })
        }
        "toolRequestIntercepts" => Box::pin(s.tool_request_intercepts_async(name, v)),
        "llmRequestIntercepts" => Box::pin(s.llm_request_intercepts_async(name, v)),
        _ => return Err(bad(format!("standalone: unknown helper '{kind}'"))),
    };
    Ok(spawn(async move { json_out(fut.await) }))
}
