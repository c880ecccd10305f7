//! Managed tool and LLM calls run by the core, with JS callbacks.
//!
//! Sync entry points run their callbacks with a null JS stack: the callbacks then run in the
//! caller's own AsyncLocalStorage context (the very stack the call uses), without `als.run`.
//! Async ones run on a fork, which callbacks get through `als.run` (see `callbacks::invoke`).

use super::*;

pub(super) fn value_later(env: Env, r: JsVal) -> JsResult<Result<Data, PromiseFuture<Data>>> {
    if js::is_thenable(env, r)? {
        Ok(Err(PromiseFuture::new(env, r, |env, v| convert::data_in(env, v, "returned value"))?))
    } else {
        Ok(Ok(convert::data_in(env, r, "returned value")?))
    }
}

/// The async core callback for a JS function (its result may be a promise).
pub(super) fn async_callback(f: JsFn) -> impl Fn(Data) -> baton::BoxFuture<baton::Result<Data>> + Send + Sync + 'static {
    move |input: Data| {
        let r = guarded(|env| {
            let a = convert::data_out(env, &input)?;
            let r = f.call(env, &[a])?;
            value_later(env, r)
        });
        match r {
            Err(e) => Box::pin(std::future::ready(Err(e))),
            Ok(Ok(v)) => Box::pin(std::future::ready(Ok(v))),
            Ok(Err(p)) => Box::pin(AssertSend(p)),
        }
    }
}

/// A sync call's callback: the JS function must return a plain value.
pub(super) fn sync_call(env: Env, f: JsVal, input: Data) -> baton::Result<Data> {
    guarded(|env2| {
        debug_assert_eq!(env, env2);
        let a = convert::data_out(env2, &input)?;
        let r = callbacks::invoke(env2, f, &[a])?;
        if js::is_thenable(env2, r)? {
            let _ = PromiseFuture::new(env2, r, |_, _| Ok(()));
            return Err(Error::invalid_state("the callback of a synchronous call returned a Promise; use the async form").into());
        }
        convert::data_in(env2, r, "returned value")
    })
}

/// tool(stack, name, args, fn, options, async)
pub fn tool(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    managed(env, a, CallKind::Tool)
}

/// llm(stack, name, request, fn, options, async)
pub fn llm(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    managed(env, a, CallKind::Llm)
}

pub(super) fn managed(env: Env, a: &[JsVal], kind: CallKind) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let input = convert::data_in(env, a[2], if kind == CallKind::Tool { "args" } else { "request" })?;
    let is_async = truthy(env, a[5])?;
    if !is_async {
        let f = a[3];
        if !js::is_function(env, f)? {
            return Err(Error::invalid_argument("callback: expected a function").into());
        }
        let out = match kind {
            CallKind::Tool => {
                let o = tool_options(env, a[4])?;
                with_js_stack(std::ptr::null_mut(), || s.tool_data(&name, input, |v| sync_call(env, f, v), o))?
            }
            CallKind::Llm => {
                let o = llm_options(env, a[4])?;
                with_js_stack(std::ptr::null_mut(), || s.llm_data(&name, input, |v| sync_call(env, f, v), o))?
            }
        };
        return convert::data_out(env, &out);
    }
    let f = JsFn::new(env, a[3], "callback")?;
    let fork = s.fork();
    let fork_js = handles::wrap(env, Handle::Stack(fork.clone()))?;
    let fut: TaskFuture = match kind {
        CallKind::Tool => {
            let o = tool_options(env, a[4])?;
            let fut = with_js_stack(fork_js, || fork.tool_data_async(&name, input, async_callback(f), o));
            Box::pin(async move { fut.await.map(finish_data) })
        }
        CallKind::Llm => {
            let o = llm_options(env, a[4])?;
            let fut = with_js_stack(fork_js, || fork.llm_data_async(&name, input, async_callback(f), o));
            Box::pin(async move { fut.await.map(finish_data) })
        }
    };
    with_js_stack(fork_js, || task::spawn(env, fut))
}
