//! Manual lifecycle: tool and LLM calls started and ended by the caller.

use super::*;

/// A tool or LLM call started with `toolStart` / `llmStart` (manual lifecycle).
#[wasm_bindgen]
pub struct CallHandle {
    inner: baton::CallHandle,
}

#[wasm_bindgen]
impl CallHandle {
    pub fn uuid(&self) -> String {
        self.inner.uuid().to_string()
    }
    /// Ends the call. `opts`: JSON `{output, metadata}`; `error`: a thrown value or message.
    pub fn end(&self, opts: Option<String>, error: JsValue) -> Result<(), JsValue> {
        let end = end_options(opts, error)?;
        self.inner.end(end).map_err(to_js)
    }
}

#[wasm_bindgen(js_name = toolStart)]
pub fn tool_start(stack: &Stack, name: &str, args: &str, opts: Option<String>, parent: Option<Scope>) -> Result<CallHandle, JsValue> {
    let args = parse_json(args, "args")?;
    stack.inner.tool_start(name, &args, tool_options(opts, parent)?).map(|inner| CallHandle { inner }).map_err(to_js)
}

#[wasm_bindgen(js_name = llmStart)]
pub fn llm_start(stack: &Stack, name: &str, request: &str, opts: Option<String>, parent: Option<Scope>) -> Result<CallHandle, JsValue> {
    let request = parse_json(request, "request")?;
    stack.inner.llm_start(name, &request, llm_options(opts, parent)?).map(|inner| CallHandle { inner }).map_err(to_js)
}
