//! Trampolines: JS functions as core middleware of every family.

use std::cell::RefCell;
use std::sync::Arc;

use baton::{
    AsyncNext, CallCtx, CallInfo, ChunkStream, Decision, Error, EventFields, EventInfo, ExecutionIntercept, Family, Guardrail, Middleware,
    RequestIntercept, Result,
};
use napi::sys;
use serde_json::{Map, Value};

use crate::callbacks::{guarded, JsFn};
use crate::convert;
use crate::handles::{self, Handle};
use crate::js::{self, Env, JsResult, JsVal};
use crate::stream::JsChunks;
use crate::task::{AssertSend, PromiseFuture};

/// Either a value now, or a JS promise of it.
enum Later<T> {
    Now(T),
    Promise(PromiseFuture<T>),
}

fn later<T>(env: Env, r: JsVal, convert: fn(Env, JsVal) -> JsResult<T>) -> JsResult<Later<T>> {
    if js::is_thenable(env, r)? {
        Ok(Later::Promise(PromiseFuture::new(env, r, convert)?))
    } else {
        Ok(Later::Now(convert(env, r)?))
    }
}

fn boxed<T: Send + 'static>(l: Result<Later<T>>) -> baton::BoxFuture<Result<T>> {
    match l {
        Err(e) => Box::pin(std::future::ready(Err(e))),
        Ok(Later::Now(v)) => Box::pin(std::future::ready(Ok(v))),
        Ok(Later::Promise(p)) => Box::pin(AssertSend(p)),
    }
}

fn to_value(env: Env, v: JsVal) -> JsResult<Value> {
    convert::text_in(env, v, "returned value")
}

fn decision(env: Env, v: JsVal) -> JsResult<Decision> {
    let t = js::type_of(env, v)?;
    if t == sys::ValueType::napi_undefined || t == sys::ValueType::napi_null {
        return Ok(Decision::Allow);
    }
    if t == sys::ValueType::napi_boolean {
        return Ok(if js::get_bool(env, v)? { Decision::Allow } else { Decision::Reject("rejected by guardrail".into()) });
    }
    if t == sys::ValueType::napi_object {
        let allow = js::get(env, v, "allow")?;
        let allowed = js::type_of(env, allow)? == sys::ValueType::napi_boolean && js::get_bool(env, allow)?;
        if allowed {
            return Ok(Decision::Allow);
        }
        let reason = js::opt_string(env, v, "reason")?.unwrap_or_else(|| "rejected by guardrail".into());
        return Ok(Decision::Reject(reason));
    }
    Err(Error::callback_failed("a guardrail must return a boolean, {allow, reason?} or nothing").into())
}

thread_local! {
    /// `next` of the sync execution intercepts now running: (token, borrowed next).
    static SYNC_NEXT: RefCell<Vec<(u32, usize, usize)>> = const { RefCell::new(Vec::new()) };
    static NEXT_TOKEN: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

type NextFn<'a> = &'a dyn Fn(Value) -> Result<Value>;

/// Calls the `next` registered under `token`; `invalid_state` once its intercept returned.
pub fn call_sync_next(token: u32, input: Value) -> Result<Value> {
    let found = SYNC_NEXT.with(|s| s.borrow().iter().rev().find(|(t, _, _)| *t == token).map(|(_, a, b)| (*a, *b)));
    let Some((a, b)) = found else {
        return Err(Error::invalid_state("next() was called after its execution intercept returned"));
    };
    let next: NextFn<'_> = unsafe { std::mem::transmute::<(usize, usize), NextFn<'_>>((a, b)) };
    next(input)
}

fn run_sync_intercept(f: &JsFn, ctx: &CallCtx, input: Value, next: NextFn<'_>) -> Result<Value> {
    let token = NEXT_TOKEN.with(|t| {
        let v = t.get();
        t.set(v.wrapping_add(1).max(1));
        v
    });
    let raw: (usize, usize) = unsafe { std::mem::transmute::<NextFn<'_>, (usize, usize)>(next) };
    SYNC_NEXT.with(|s| s.borrow_mut().push((token, raw.0, raw.1)));
    struct Pop(u32);
    impl Drop for Pop {
        fn drop(&mut self) {
            SYNC_NEXT.with(|s| s.borrow_mut().retain(|(t, _, _)| *t != self.0));
        }
    }
    let _pop = Pop(token);
    guarded(|env| {
        let a = convert::text_out(env, &input)?;
        let tok = js::number(env, token as f64)?;
        let c = handles::wrap(env, Handle::Ctx(ctx.clone()))?;
        let info = handles::call_info(env, ctx.info())?;
        let r = f.call(env, &[a, tok, c, info])?;
        if js::is_thenable(env, r)? {
            let _ = PromiseFuture::new(env, r, |_, _| Ok(()));
            return Err(Error::invalid_state("a sync execution intercept returned a Promise; register it without `sync: true`").into());
        }
        to_value(env, r)
    })
}

fn run_async_intercept(f: &JsFn, ctx: CallCtx, input: Value, next: AsyncNext) -> baton::BoxFuture<Result<Value>> {
    boxed(guarded(|env| {
        let a = convert::text_out(env, &input)?;
        let n = handles::wrap(env, Handle::Next(next))?;
        let info = handles::call_info(env, ctx.info())?;
        let c = handles::wrap(env, Handle::Ctx(ctx))?;
        let r = f.call(env, &[a, n, c, info])?;
        later(env, r, to_value)
    }))
}

fn stream_intercept(f: &JsFn, ctx: &CallCtx, inner: ChunkStream) -> Result<ChunkStream> {
    guarded(|env| {
        let chunks = handles::wrap(env, Handle::Chunks(RefCell::new(Some(inner))))?;
        let c = handles::wrap(env, Handle::Ctx(ctx.clone()))?;
        let info = handles::call_info(env, ctx.info())?;
        let r = f.call(env, &[chunks, c, info])?;
        if js::is_thenable(env, r)? {
            let _ = PromiseFuture::new(env, r, |_, _| Ok(()));
            return Err(Error::callback_failed("a stream intercept must return an iterable or async iterable, not a Promise").into());
        }
        JsChunks::from_iterable(env, r)
    })
}

fn payload_sanitizer(f: Arc<JsFn>) -> baton::PayloadSanitizer {
    Arc::new(move |info: &CallInfo, v: Value| -> Result<Option<Value>> {
        guarded(|env| {
            let a = convert::text_out(env, &v)?;
            let i = handles::call_info(env, info)?;
            let r = f.call(env, &[a, i])?;
            if js::type_of(env, r)? == sys::ValueType::napi_undefined {
                return Ok(None);
            }
            Ok(Some(to_value(env, r)?))
        })
    })
}

fn event_sanitizer(f: Arc<JsFn>) -> baton::EventSanitizer {
    Arc::new(move |info: &EventInfo, fields: EventFields| -> Result<Option<EventFields>> {
        guarded(|env| {
            let o = convert::text_out(env, &serde_json::json!({"data": &fields.data, "metadata": &fields.metadata}))?;
            let i = handles::event_info(env, info)?;
            let r = f.call(env, &[o, i])?;
            if js::is_nullish(env, r)? {
                return Ok(None);
            }
            let Value::Object(mut out) = to_value(env, r)? else {
                return Err(Error::callback_failed("an event sanitizer must return {data, metadata}").into());
            };
            let data = out.remove("data").unwrap_or(Value::Null);
            let metadata = match out.remove("metadata") {
                None | Some(Value::Null) => fields.metadata,
                Some(Value::Object(m)) => m,
                Some(_) => return Err(Error::callback_failed("an event sanitizer's metadata must be an object").into()),
            };
            Ok(Some(EventFields { data, metadata }))
        })
    })
}

fn injector(f: Arc<JsFn>) -> baton::MetadataInjector {
    Arc::new(move |info: &EventInfo| -> Result<Map<String, Value>> {
        guarded(|env| {
            let i = handles::event_info(env, info)?;
            let r = f.call(env, &[i])?;
            if js::is_nullish(env, r)? {
                return Ok(Map::new());
            }
            match to_value(env, r)? {
                Value::Object(m) => Ok(m),
                _ => Err(Error::callback_failed("a metadata injector must return an object").into()),
            }
        })
    })
}

fn guardrail(f: Arc<JsFn>) -> Guardrail {
    Guardrail::Async(Arc::new(move |info: CallInfo, input: Value| {
        boxed(guarded(|env| {
            let a = convert::text_out(env, &input)?;
            let i = handles::call_info(env, &info)?;
            let r = f.call(env, &[a, i])?;
            later(env, r, decision)
        }))
    }))
}

fn request_intercept(f: Arc<JsFn>) -> RequestIntercept {
    RequestIntercept::Async(Arc::new(move |info: CallInfo, input: Value| {
        let f = f.clone();
        let out = guarded(|env| {
            let a = convert::text_out(env, &input)?;
            let i = handles::call_info(env, &info)?;
            let r = f.call(env, &[a, i])?;
            if js::is_thenable(env, r)? {
                Ok(Later::Promise(PromiseFuture::new(env, r, |env, v| {
                    if js::type_of(env, v)? == sys::ValueType::napi_undefined {
                        // `undefined` keeps the input; the caller substitutes it below.
                        return Ok(None);
                    }
                    Ok(Some(to_value(env, v)?))
                })?))
            } else if js::type_of(env, r)? == sys::ValueType::napi_undefined {
                Ok(Later::Now(None))
            } else {
                Ok(Later::Now(Some(to_value(env, r)?)))
            }
        });
        let fut = boxed(out);
        Box::pin(async move { Ok(fut.await?.unwrap_or(input)) })
    }))
}

/// A subscriber's JS id (the facade keeps the function) and whether it takes event objects.
pub fn build(env: Env, family: Family, f: JsVal, sync: bool, subscriber_id: u32, objects: bool) -> JsResult<Middleware> {
    if family == Family::Subscriber {
        return Ok(Middleware::Subscriber(Arc::new(crate::deliver::JsSubscriber::new(subscriber_id, objects))));
    }
    let f = Arc::new(JsFn::new(env, f, "middleware")?);
    Ok(match family {
        Family::ToolConditionalExecution => Middleware::ToolConditionalExecution(guardrail(f)),
        Family::LlmConditionalExecution => Middleware::LlmConditionalExecution(guardrail(f)),
        Family::ToolRequestIntercept => Middleware::ToolRequestIntercept(request_intercept(f)),
        Family::LlmRequestIntercept => Middleware::LlmRequestIntercept(request_intercept(f)),
        Family::ToolExecutionIntercept | Family::LlmExecutionIntercept => {
            let x = if sync {
                ExecutionIntercept::Sync(Arc::new(move |ctx, input, next| run_sync_intercept(&f, ctx, input, next)))
            } else {
                ExecutionIntercept::Async(Arc::new(move |ctx, input, next| run_async_intercept(&f, ctx, input, next)))
            };
            if family == Family::ToolExecutionIntercept {
                Middleware::ToolExecutionIntercept(x)
            } else {
                Middleware::LlmExecutionIntercept(x)
            }
        }
        Family::LlmStreamExecutionIntercept => {
            Middleware::LlmStreamExecutionIntercept(Arc::new(move |ctx, s| stream_intercept(&f, ctx, s)))
        }
        Family::ToolSanitizeRequest => Middleware::ToolSanitizeRequest(payload_sanitizer(f)),
        Family::ToolSanitizeResponse => Middleware::ToolSanitizeResponse(payload_sanitizer(f)),
        Family::LlmSanitizeRequest => Middleware::LlmSanitizeRequest(payload_sanitizer(f)),
        Family::LlmSanitizeResponse => Middleware::LlmSanitizeResponse(payload_sanitizer(f)),
        Family::MarkSanitize => Middleware::MarkSanitize(event_sanitizer(f)),
        Family::ScopeSanitizeStart => Middleware::ScopeSanitizeStart(event_sanitizer(f)),
        Family::ScopeSanitizeEnd => Middleware::ScopeSanitizeEnd(event_sanitizer(f)),
        Family::EventMetadataInjector => Middleware::EventMetadataInjector(injector(f)),
        Family::Subscriber => unreachable!("handled above"),
    })
}
