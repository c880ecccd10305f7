//! Scenario behaviours as real Rust middleware, subscribers and callbacks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use baton::{
    stream, CallCtx, CallInfo, ChunkStream, Decision, Error, EventFields, EventInfo, ExecutionIntercept, Family, Guardrail, Middleware,
    RequestIntercept, Result,
};
use serde_json::{Map, Value};

use crate::pointer;

/// Events recorded per subscriber name.
pub type Recorders = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

/// A host-side failure: what a `fail` behaviour raises.
pub fn host_error(msg: &str) -> Error {
    Error::callback_failed(msg.to_string()).with_exception_type("RunnerError")
}

fn edit_err(e: String) -> Error {
    host_error(&e)
}

fn is_async(b: &Value) -> bool {
    b.get("async").and_then(Value::as_bool).unwrap_or(false)
}

fn fail_msg(b: &Value) -> Option<&str> {
    b.get("fail").and_then(Value::as_str)
}

fn guardrail(b: Value) -> Guardrail {
    let decide = move |info: &CallInfo| -> Result<Decision> {
        if let Some(m) = fail_msg(&b) {
            return Err(host_error(m));
        }
        if let Some(r) = b.get("reject").and_then(Value::as_str) {
            return Ok(Decision::Reject(r.into()));
        }
        if let Some(n) = b.get("reject_if_name").and_then(Value::as_str) {
            if &*info.name == n {
                let reason = b.get("reason").and_then(Value::as_str).unwrap_or("rejected");
                return Ok(Decision::Reject(reason.into()));
            }
            return Ok(Decision::Allow);
        }
        Ok(Decision::Allow)
    };
    Guardrail::Sync(Arc::new(move |info, _input| decide(info)))
}

fn guardrail_async(b: Value) -> Guardrail {
    let sync = guardrail(b);
    let Guardrail::Sync(f) = sync else { unreachable!() };
    Guardrail::Async(Arc::new(move |info, input| {
        let f = f.clone();
        Box::pin(async move { f(&info, &input) })
    }))
}

fn request_edit(b: &Value, mut input: Value) -> Result<Value> {
    if let Some(m) = fail_msg(b) {
        return Err(host_error(m));
    }
    if let Some(edits) = b.get("set") {
        pointer::set_all(&mut input, edits).map_err(edit_err)?;
    }
    Ok(input)
}

fn queue_marks(ctx: &CallCtx, b: &Value) {
    for m in b.get("marks").and_then(Value::as_array).into_iter().flatten() {
        let name = m.get("name").and_then(Value::as_str).unwrap_or("mark");
        ctx.queue_mark(name, m.get("data").cloned().unwrap_or(Value::Null), Map::new());
    }
}

/// What an execution-intercept behaviour does, decided before any call to `next`.
enum Plan {
    /// Return this without calling `next` (`fail`, `replace`).
    Done(Result<Value>),
    /// Call `next` n times with the input, return the last result.
    Retry(u64),
    /// Call `next`, then up to n more times while it fails.
    RetryOnError(u64),
    /// Call `next` once with this (edited) input, then apply `set_result`.
    Once(Value),
}

fn plan(ctx: &CallCtx, b: &Value, input: &Value) -> Plan {
    queue_marks(ctx, b);
    if let Some(m) = fail_msg(b) {
        return Plan::Done(Err(host_error(m)));
    }
    if let Some(v) = b.get("replace") {
        return Plan::Done(Ok(v.clone()));
    }
    if let Some(n) = b.get("retry").and_then(Value::as_u64) {
        return Plan::Retry(n);
    }
    if let Some(n) = b.get("retry_on_error").and_then(Value::as_u64) {
        return Plan::RetryOnError(n);
    }
    let mut input = input.clone();
    if let Some(edits) = b.get("set_input") {
        if let Err(e) = pointer::set_all(&mut input, edits) {
            return Plan::Done(Err(edit_err(e)));
        }
    }
    Plan::Once(input)
}

fn set_result(b: &Value, out: Result<Value>) -> Result<Value> {
    let mut out = out?;
    if let Some(edits) = b.get("set_result") {
        pointer::set_all(&mut out, edits).map_err(edit_err)?;
    }
    Ok(out)
}

fn exec_sync(b: Value) -> ExecutionIntercept {
    ExecutionIntercept::Sync(Arc::new(move |ctx, input, next| match plan(ctx, &b, &input) {
        Plan::Done(r) => r,
        Plan::Retry(n) => {
            // Every attempt runs, even after a failure; the last one is the answer.
            let mut last = Ok(Value::Null);
            for _ in 0..n {
                last = next(input.clone());
            }
            last
        }
        Plan::RetryOnError(n) => {
            let mut r = next(input.clone());
            for _ in 0..n {
                if r.is_ok() {
                    break;
                }
                r = next(input.clone());
            }
            r
        }
        Plan::Once(edited) => set_result(&b, next(edited)),
    }))
}

fn exec_async(b: Value) -> ExecutionIntercept {
    ExecutionIntercept::Async(Arc::new(move |ctx, input, next| {
        let b = b.clone();
        Box::pin(async move {
            match plan(&ctx, &b, &input) {
                Plan::Done(r) => r,
                Plan::Retry(n) => {
                    let mut last = Ok(Value::Null);
                    for _ in 0..n {
                        last = next.call(input.clone()).await;
                    }
                    last
                }
                Plan::RetryOnError(n) => {
                    let mut r = next.call(input.clone()).await;
                    for _ in 0..n {
                        if r.is_ok() {
                            break;
                        }
                        r = next.call(input.clone()).await;
                    }
                    r
                }
                Plan::Once(edited) => set_result(&b, next.call(edited).await),
            }
        })
    }))
}

fn stream_intercept(b: Value) -> baton::StreamIntercept {
    Arc::new(move |_ctx: &CallCtx, s: ChunkStream| -> Result<ChunkStream> {
        if let Some(m) = fail_msg(&b) {
            return Err(host_error(m));
        }
        let mut s = s;
        if let Some(edits) = b.get("set_chunk").cloned() {
            s = stream::map_chunks(s, move |mut c| {
                pointer::set_all(&mut c, &edits).map_err(edit_err)?;
                Ok(c)
            });
        }
        if let Some(tail) = b.get("append") {
            s = stream::append(s, tail.clone());
        }
        Ok(s)
    })
}

fn payload_sanitizer(b: Value) -> baton::PayloadSanitizer {
    Arc::new(move |_info: &CallInfo, mut v: Value| -> Result<Option<Value>> {
        if let Some(m) = fail_msg(&b) {
            return Err(host_error(m));
        }
        if b.get("omit").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        if let Some(edits) = b.get("set") {
            pointer::set_all(&mut v, edits).map_err(edit_err)?;
        }
        for p in b.get("remove").and_then(Value::as_array).into_iter().flatten() {
            pointer::remove(&mut v, p.as_str().unwrap_or_default()).map_err(edit_err)?;
        }
        Ok(Some(v))
    })
}

fn event_sanitizer(b: Value) -> baton::EventSanitizer {
    Arc::new(move |_info: &EventInfo, mut f: EventFields| -> Result<Option<EventFields>> {
        if let Some(m) = fail_msg(&b) {
            return Err(host_error(m));
        }
        if let Some(Value::Object(meta)) = b.get("set_metadata") {
            f.metadata = meta.clone();
        }
        if let Some(d) = b.get("set_data") {
            f.data = d.clone();
        }
        Ok(Some(f))
    })
}

/// Builds the middleware of `family` that acts out behaviour `b`.
pub fn middleware(family: Family, name: &str, b: Value, recorders: &Recorders) -> Result<Middleware> {
    if !b.is_object() {
        return Err(Error::invalid_argument(format!("behavior: expected an object, got {b}")));
    }
    let request = |b: Value| {
        if is_async(&b) {
            RequestIntercept::Async(Arc::new(move |_info, input| {
                let b = b.clone();
                Box::pin(async move { request_edit(&b, input) })
            }))
        } else {
            RequestIntercept::Sync(Arc::new(move |_info, input| request_edit(&b, input)))
        }
    };
    let guard = |b: Value| {
        if is_async(&b) {
            guardrail_async(b)
        } else {
            guardrail(b)
        }
    };
    let exec = |b: Value| {
        if is_async(&b) {
            exec_async(b)
        } else {
            exec_sync(b)
        }
    };
    Ok(match family {
        Family::ToolConditionalExecution => Middleware::ToolConditionalExecution(guard(b)),
        Family::LlmConditionalExecution => Middleware::LlmConditionalExecution(guard(b)),
        Family::ToolRequestIntercept => Middleware::ToolRequestIntercept(request(b)),
        Family::LlmRequestIntercept => Middleware::LlmRequestIntercept(request(b)),
        Family::ToolExecutionIntercept => Middleware::ToolExecutionIntercept(exec(b)),
        Family::LlmExecutionIntercept => Middleware::LlmExecutionIntercept(exec(b)),
        Family::LlmStreamExecutionIntercept => Middleware::LlmStreamExecutionIntercept(stream_intercept(b)),
        Family::ToolSanitizeRequest => Middleware::ToolSanitizeRequest(payload_sanitizer(b)),
        Family::ToolSanitizeResponse => Middleware::ToolSanitizeResponse(payload_sanitizer(b)),
        Family::LlmSanitizeRequest => Middleware::LlmSanitizeRequest(payload_sanitizer(b)),
        Family::LlmSanitizeResponse => Middleware::LlmSanitizeResponse(payload_sanitizer(b)),
        Family::MarkSanitize => Middleware::MarkSanitize(event_sanitizer(b)),
        Family::ScopeSanitizeStart => Middleware::ScopeSanitizeStart(event_sanitizer(b)),
        Family::ScopeSanitizeEnd => Middleware::ScopeSanitizeEnd(event_sanitizer(b)),
        Family::EventMetadataInjector => {
            Middleware::EventMetadataInjector(Arc::new(move |_info: &EventInfo| -> Result<Map<String, Value>> {
                if let Some(m) = fail_msg(&b) {
                    return Err(host_error(m));
                }
                Ok(b.get("inject").and_then(Value::as_object).cloned().unwrap_or_default())
            }))
        }
        Family::Subscriber => {
            if let Some(m) = fail_msg(&b).map(str::to_string) {
                Middleware::subscriber(move |_e| Err(host_error(&m)))
            } else {
                let rec = recorders.clone();
                let key = name.to_string();
                rec.lock().unwrap().entry(key.clone()).or_default();
                Middleware::subscriber(move |e| {
                    rec.lock().unwrap().entry(key.clone()).or_default().push(e.to_json());
                    Ok(())
                })
            }
        }
    })
}
