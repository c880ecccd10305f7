//! JS functions as core middleware of every family, their registration and `next`.

use super::*;

thread_local! {
    /// The `next` of every execution intercept currently running, by token (innermost last).
    pub(super) static NEXTS: RefCell<Vec<(u32, NextPtr)>> = const { RefCell::new(Vec::new()) };
    /// The `next` of every async execution intercept now running, by token.
    pub(super) static ASYNC_NEXTS: RefCell<HashMap<u32, baton::AsyncNext>> = RefCell::new(HashMap::new());
}

pub(super) type NextPtr = *const (dyn Fn(Value) -> baton::Result<Value> + 'static);

/// Calls the `next` of a running async execution intercept (`token` from its arguments).
/// Returns a task id whose value is the result's JSON text. After the intercept finished,
/// its `next` is gone: `invalid_state`.
#[wasm_bindgen(js_name = nextAsync)]
pub fn next_async(token: u32, input: &str) -> Result<u32, JsValue> {
    let input = parse_json(input, "input")?;
    let Some(next) = ASYNC_NEXTS.with(|n| n.borrow().get(&token).cloned()) else {
        return Err(to_js(Error::invalid_state("next() was called after its execution intercept returned")));
    };
    let fut = next.call(input);
    Ok(spawn(async move { json_out(fut.await) }))
}

/// Forgets an async intercept's `next` when the intercept's future finishes or is dropped.
pub(super) struct ForgetNext(u32);

impl Drop for ForgetNext {
    fn drop(&mut self) {
        let _ = ASYNC_NEXTS.try_with(|n| n.try_borrow_mut().map(|mut n| n.remove(&self.0)));
    }
}

pub(super) fn registration(name: &str, priority: i32, scope: Option<Scope>, break_chain: bool) -> Registration {
    let mut r = Registration::new(name).priority(priority).break_chain(break_chain);
    if let Some(s) = scope {
        r = r.scope(&s.inner);
    }
    r
}

/// `EventInfo` as JSON text (the core's writer, node/'s key names).
pub(super) fn event_info_json(info: &baton::EventInfo) -> String {
    info.to_json(baton::KeyStyle::Camel)
}

/// Calls `f(a?, b)` and parses its JSON text result; `undefined` is `None`.
pub(super) fn call_raw(f: &Function, a: Option<String>, b: String) -> baton::Result<Option<Value>> {
    let r = match a {
        Some(a) => f.call2(&JsValue::NULL, &JsValue::from_str(&a), &JsValue::from_str(&b)),
        None => f.call1(&JsValue::NULL, &JsValue::from_str(&b)),
    };
    match r {
        Ok(r) if r.is_undefined() || r.is_null() => Ok(None),
        Ok(r) => match r.as_string() {
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}"))),
            None => Err(Error::internal("callback result: the facade must return JSON text")),
        },
        Err(e) => Err(from_thrown(e)),
    }
}

/// Registers synchronous middleware: guardrails, request intercepts, payload sanitizers (tool
/// and LLM), event sanitizers and metadata injectors. Callbacks take and return JSON text (plus
/// the info as JSON text); guardrails return `{allow, reason}`.
#[wasm_bindgen(js_name = registerMiddleware)]
pub fn register_middleware(
    kind: &str,
    name: &str,
    callback: Function,
    priority: i32,
    scope: Option<Scope>,
    break_chain: bool,
) -> Result<(), JsValue> {
    let family = Family::parse(kind).map_err(to_js)?;
    let id = next_id();
    FUNCTIONS.with(|m| m.borrow_mut().insert(id, callback));
    let func = move || stored(id).ok_or_else(|| Error::not_found("middleware callback was removed"));
    let call_opt = move |info: &baton::CallInfo, v: &Value| -> baton::Result<Option<Value>> { call_json_opt(&func()?, v, info) };
    // Guardrails and request intercepts are registered in their async form: a JS function
    // may return a value or a Promise, and only the call tells which. In a sync call the core
    // polls them once (a plain value is ready at once; a Promise fails with invalid_state).
    let later = move |info: baton::CallInfo, v: Value| -> baton::BoxFuture<Settled> {
        match func() {
            Ok(f) => call_later(&f, &v, Some(&info)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    };
    let guardrail = baton::Guardrail::Async(Arc::new(move |info: baton::CallInfo, args: Value| {
        let fut = later(info, args);
        Box::pin(async move {
            // The facade encodes the decision as {allow, reason}.
            let d = fut.await?.unwrap_or(Value::Null);
            Ok(if d.get("allow").and_then(Value::as_bool) == Some(true) {
                baton::Decision::Allow
            } else {
                baton::Decision::Reject(d.get("reason").and_then(Value::as_str).unwrap_or("rejected by guardrail").to_string())
            })
        }) as baton::BoxFuture<baton::Result<baton::Decision>>
    }));
    let intercept = baton::RequestIntercept::Async(Arc::new(move |info: baton::CallInfo, args: Value| {
        let fut = later(info, args);
        Box::pin(async move { Ok(fut.await?.unwrap_or(Value::Null)) }) as baton::BoxFuture<baton::Result<Value>>
    }));
    let event_sanitizer: baton::EventSanitizer = Arc::new(move |info: &baton::EventInfo, fields: baton::EventFields| {
        let input = json_text(&serde_json::json!({"data": &fields.data, "metadata": &fields.metadata}));
        match call_raw(&func()?, Some(input), event_info_json(info))? {
            None => Ok(None),
            Some(Value::Object(mut out)) => {
                let data = out.remove("data").unwrap_or(Value::Null);
                let metadata = match out.remove("metadata") {
                    None | Some(Value::Null) => fields.metadata,
                    Some(Value::Object(m)) => m,
                    Some(_) => return Err(Error::callback_failed("an event sanitizer's metadata must be an object")),
                };
                Ok(Some(baton::EventFields { data, metadata }))
            }
            Some(_) => Err(Error::callback_failed("an event sanitizer must return {data, metadata}")),
        }
    });
    let mw = match family {
        Family::ToolConditionalExecution => Middleware::ToolConditionalExecution(guardrail),
        Family::LlmConditionalExecution => Middleware::LlmConditionalExecution(guardrail),
        Family::ToolRequestIntercept => Middleware::ToolRequestIntercept(intercept),
        Family::LlmRequestIntercept => Middleware::LlmRequestIntercept(intercept),
        Family::ToolSanitizeRequest => Middleware::sanitize_request(CallKind::Tool, move |info, v| call_opt(info, &v)),
        Family::ToolSanitizeResponse => Middleware::sanitize_response(CallKind::Tool, move |info, v| call_opt(info, &v)),
        Family::LlmSanitizeRequest => Middleware::sanitize_request(CallKind::Llm, move |info, v| call_opt(info, &v)),
        Family::LlmSanitizeResponse => Middleware::sanitize_response(CallKind::Llm, move |info, v| call_opt(info, &v)),
        Family::MarkSanitize => Middleware::MarkSanitize(event_sanitizer),
        Family::ScopeSanitizeStart => Middleware::ScopeSanitizeStart(event_sanitizer),
        Family::ScopeSanitizeEnd => Middleware::ScopeSanitizeEnd(event_sanitizer),
        Family::EventMetadataInjector => Middleware::EventMetadataInjector(Arc::new(move |info: &baton::EventInfo| {
            match call_raw(&func()?, None, event_info_json(info))? {
                None => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m),
                Some(_) => Err(Error::callback_failed("a metadata injector must return an object")),
            }
        })),
        _ => {
            FUNCTIONS.with(|m| m.borrow_mut().remove(&id));
            return Err(to_js(Error::invalid_argument(format!("{kind}: not supported by the wasm binding yet"))));
        }
    };
    rt().register(registration(name, priority, scope, break_chain), mw).map_err(|e| {
        FUNCTIONS.with(|m| m.borrow_mut().remove(&id));
        to_js(e)
    })
}

/// What an execution intercept gets besides its input: the call's info and `queueMark`.
#[wasm_bindgen]
pub struct CallContext {
    pub(super) inner: baton::CallCtx,
}

#[wasm_bindgen]
impl CallContext {
    /// The call's `CallInfo` as JSON text.
    pub fn info(&self) -> String {
        info_json(self.inner.info())
    }
    /// Queues a mark, emitted right after the call's end event. `data`, `metadata`: JSON text.
    #[wasm_bindgen(js_name = queueMark)]
    pub fn queue_mark(&self, name: &str, data: Option<String>, metadata: Option<String>) -> Result<(), JsValue> {
        let data = match data {
            Some(t) => parse_json(&t, "data")?,
            None => Value::Null,
        };
        let metadata = match metadata.map(|t| parse_json(&t, "metadata")).transpose()? {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("metadata: expected an object")),
        };
        self.inner.queue_mark(name, data, metadata);
        Ok(())
    }
}

/// Calls the `next` of a running execution intercept (`token` from the intercept's arguments).
/// `input`: JSON text; returns the result as JSON text. After the intercept returned, its
/// `next` is gone: `invalid_state`.
#[wasm_bindgen(js_name = callNext)]
pub fn call_next(token: u32, input: &str) -> Result<String, JsValue> {
    let input = parse_json(input, "input")?;
    let Some(ptr) = NEXTS.with(|n| n.borrow().iter().find(|(t, _)| *t == token).map(|(_, p)| *p)) else {
        return Err(to_js(Error::invalid_state("next() was called after its execution intercept returned")));
    };
    // SAFETY: the pointer is in NEXTS only while the intercept that received it is running
    // (its frame is below us on this very stack), so the `next` it points to is alive.
    let next = unsafe { &*ptr };
    next(input).map(|v| json_text(&v)).map_err(to_js)
}

/// Registers an execution intercept: `callback(inputJson, token, ctx)` calls `next` zero, one
/// or several times. Sync (`sync`): it returns the result's JSON text and calls
/// `callNext(token, json)`; works in every call form. Async: it returns JSON text or
/// `{pending}` and calls `nextAsync(token, json)` (a task); only async calls can run it.
#[wasm_bindgen(js_name = registerExecutionIntercept)]
pub fn register_execution_intercept(
    kind: &str,
    name: &str,
    callback: Function,
    priority: i32,
    scope: Option<Scope>,
    sync: bool,
) -> Result<(), JsValue> {
    let call_kind = match Family::parse(kind).map_err(to_js)? {
        Family::ToolExecutionIntercept => CallKind::Tool,
        Family::LlmExecutionIntercept => CallKind::Llm,
        _ => return Err(bad(format!("{kind}: not an execution intercept kind"))),
    };
    let id = next_id();
    FUNCTIONS.with(|m| m.borrow_mut().insert(id, callback));
    if !sync {
        let x = baton::ExecutionIntercept::Async(Arc::new(move |ctx: baton::CallCtx, input: Value, next: baton::AsyncNext| {
            let token = next_id();
            ASYNC_NEXTS.with(|n| n.borrow_mut().insert(token, next));
            let forget = ForgetNext(token);
            let fut = match stored(id) {
                None => later_future(Err(Error::not_found("middleware callback was removed"))),
                Some(f) => {
                    let c: JsValue = CallContext { inner: ctx }.into();
                    later_future(
                        f.call3(&JsValue::NULL, &JsValue::from_str(&json_text(&input)), &JsValue::from(token), &c)
                            .map_err(from_thrown)
                            .and_then(later_of),
                    )
                }
            };
            Box::pin(async move {
                let _forget = forget;
                Ok(fut.await?.unwrap_or(Value::Null))
            }) as baton::BoxFuture<baton::Result<Value>>
        }));
        let mw = match call_kind {
            CallKind::Tool => Middleware::ToolExecutionIntercept(x),
            CallKind::Llm => Middleware::LlmExecutionIntercept(x),
        };
        return rt().register(registration(name, priority, scope, false), mw).map_err(|e| {
            FUNCTIONS.with(|m| m.borrow_mut().remove(&id));
            to_js(e)
        });
    }
    let mw = Middleware::execution_intercept(call_kind, move |ctx, input, next| {
        let f = stored(id).ok_or_else(|| Error::not_found("middleware callback was removed"))?;
        let token = next_id();
        let short: *const (dyn Fn(Value) -> baton::Result<Value> + '_) = next;
        // SAFETY: only the lifetime is erased; `Pop` removes the entry before `next` dies
        // (panics abort on wasm, so there is no unwinding past it).
        let ptr: NextPtr = unsafe { std::mem::transmute(short) };
        NEXTS.with(|n| n.borrow_mut().push((token, ptr)));
        struct Pop(u32);
        impl Drop for Pop {
            fn drop(&mut self) {
                NEXTS.with(|n| n.borrow_mut().retain(|(t, _)| *t != self.0));
            }
        }
        let _pop = Pop(token);
        let c: JsValue = CallContext { inner: ctx.clone() }.into();
        let r = f.call3(&JsValue::NULL, &JsValue::from_str(&json_text(&input)), &JsValue::from(token), &c);
        match r {
            Ok(r) => match r.as_string() {
                Some(t) => serde_json::from_str(&t).map_err(|e| Error::internal(format!("intercept result: invalid JSON: {e}"))),
                None => Err(Error::internal("intercept result: the facade must return JSON text")),
            },
            Err(e) => Err(from_thrown(e)),
        }
    });
    rt().register(registration(name, priority, scope, false), mw).map_err(|e| {
        FUNCTIONS.with(|m| m.borrow_mut().remove(&id));
        to_js(e)
    })
}

#[wasm_bindgen]
pub fn deregister(kind: &str, name: &str, scope: Option<Scope>) -> Result<bool, JsValue> {
    let family = Family::parse(kind).map_err(to_js)?;
    rt().deregister(family, name, scope.as_ref().map(|s| &s.inner)).map_err(to_js)
}
