//! The standalone helpers (guardrails and request intercepts without a managed call).

use super::*;

/// conditionalExecution(stack, kind, name, input, async)
pub fn conditional_execution(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let kind = call_kind(env, a[1])?;
    let name = js::req_string(env, a[2], "name")?;
    let input = convert::to_json(env, a[3], if kind == CallKind::Tool { "args" } else { "request" })?;
    if !truthy(env, a[4])? {
        with_js_stack(std::ptr::null_mut(), || match kind {
            CallKind::Tool => s.tool_conditional_execution(&name, &input),
            CallKind::Llm => s.llm_conditional_execution(&name, &input),
        })?;
        return undefined(env);
    }
    let fork = s.fork();
    let fork_js = handles::wrap(env, Handle::Stack(fork.clone()))?;
    let fut: TaskFuture = match kind {
        CallKind::Tool => {
            let f = with_js_stack(fork_js, || fork.tool_conditional_execution_async(&name, input));
            Box::pin(async move { f.await.map(|_| finish_undefined()) })
        }
        CallKind::Llm => {
            let f = with_js_stack(fork_js, || fork.llm_conditional_execution_async(&name, input));
            Box::pin(async move { f.await.map(|_| finish_undefined()) })
        }
    };
    with_js_stack(fork_js, || task::spawn(env, fut))
}

/// requestIntercepts(stack, kind, name, input, async)
pub fn request_intercepts(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let kind = call_kind(env, a[1])?;
    let name = js::req_string(env, a[2], "name")?;
    let input = convert::to_json(env, a[3], if kind == CallKind::Tool { "args" } else { "request" })?;
    if !truthy(env, a[4])? {
        let out = with_js_stack(std::ptr::null_mut(), || match kind {
            CallKind::Tool => s.tool_request_intercepts(&name, input),
            CallKind::Llm => s.llm_request_intercepts(&name, input),
        })?;
        return convert::text_out(env, &out);
    }
    let fork = s.fork();
    let fork_js = handles::wrap(env, Handle::Stack(fork.clone()))?;
    let fut: TaskFuture = match kind {
        CallKind::Tool => {
            let f = with_js_stack(fork_js, || fork.tool_request_intercepts_async(&name, input));
            Box::pin(async move { f.await.map(finish_json) })
        }
        CallKind::Llm => {
            let f = with_js_stack(fork_js, || fork.llm_request_intercepts_async(&name, input));
            Box::pin(async move { f.await.map(finish_json) })
        }
    };
    with_js_stack(fork_js, || task::spawn(env, fut))
}
