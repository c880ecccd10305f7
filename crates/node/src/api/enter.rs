//! Entered calls: with only subscribers registered, the facade runs the callback itself
//! between `enterTool` and `exitTool` (and the stream and LLM forms), and calls with nothing
//! registered at all are just their callbacks (`unobserved`).

use super::*;

/// unobserved(stack, withId) → true when nothing is registered, so a managed tool call is just
/// its callback (the core's rule, `Stack::unobserved`); the facade then skips the boundary
/// conversions. Throws what a call would (`already_shutdown`, `invalid_state`). With `withId`
/// (an async call, which runs on a fork), the answer is `false` or, instead of `true`, what
/// `currentId(stack)` gives: one crossing instead of two on the facade's bare async path.
pub fn unobserved(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s: &Stack = handles::stack(env, a[0], "stack")?;
    let unobserved = s.unobserved()?;
    if unobserved && truthy(env, a[1])? {
        return js::number(env, id_number(s));
    }
    js::boolean(env, unobserved)
}

thread_local! {
    /// Synchronous entered calls, innermost last. A synchronous call's function runs to the
    /// end before its caller continues, so these calls end in the reverse order they began
    /// (a nested `toolSync` inside the function enters and exits above its parent), and a
    /// stack is all they need: no handle object, no finalizer.
    pub(super) static ENTERED_SYNC: std::cell::RefCell<Vec<baton::EnteredCall>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Holds an entered synchronous call; returns its depth, which `exitTool` takes.
pub(super) fn hold_sync(call: baton::EnteredCall) -> f64 {
    ENTERED_SYNC.with(|c| {
        let mut c = c.borrow_mut();
        c.push(call);
        c.len() as f64
    })
}

/// enterTool(stack, name, argsText, options, fork) → `false` (nothing registered: just call
/// the function), `null` (middleware sees the values: use `tool`), or, entered, the handle
/// for `exitTool` — for a synchronous call (`fork` false) its depth; for an async one (`fork`)
/// the token for `exitForked` (`entered`), with the caller's position published.
///
/// With only subscribers (and event middleware) registered, the facade runs the callback
/// itself between `enterTool` and `exitTool`: the core emits the same events as `tool`
/// (`Stack::enter_tool`), and the call saves the core future, the trampoline into JS and the
/// text round trips. `argsText` comes from the facade's `JSON.stringify`. With `fork` (async
/// calls) the call runs on a fork of `stack`, which gets a JS handle only if the function asks
/// for it (`enteredStack`).
///
/// `argsText` may instead be a host value's token (a number), with its snapshot as a sixth
/// argument (see [`call_value`]).
pub fn enter_tool(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let o = tool_options(env, a[3])?;
    if s.unobserved()? && !name.is_empty() {
        return js::boolean(env, false);
    }
    let fork = truthy(env, a[4])?;
    let args = call_value(env, a[2], a[5], "args")?;
    let out = if !fork {
        match s.enter_tool_value(&name, || Ok(args), o)? {
            None => js::null(env),
            Some(call) => js::number(env, hold_sync(call)),
        }
    } else {
        let position = id_number(s);
        let stack = s.fork();
        match stack.enter_tool_value(&name, || Ok(args), o)? {
            None => js::null(env),
            Some(call) => js::number(env, entered::hold(position, stack, entered::Held::Call(call))?),
        }
    };
    crate::deliver::refresh_welcome(rt());
    out
}

/// A call's arguments or result from the facade: JSON text, or a host value — the token
/// (a number) of a snapshot the facade keeps for its object subscribers, with the snapshot
/// itself, whose text the core may still ask for (`JSON.stringify` of it, on this thread
/// during this call) when some consumer of the event needs JSON.
pub(super) fn call_value(env: Env, v: JsVal, snapshot: JsVal, what: &str) -> JsResult<baton::CallValue<impl FnOnce() -> baton::Payload>> {
    let text = move || snapshot_text(env, snapshot);
    if js::type_of(env, v)? != sys::ValueType::napi_number {
        return Ok(baton::CallValue::Json(trusted_text(env, v, what)?));
    }
    if !js::on_delivery_thread() {
        // Not reached (this thread's hint is always 0): its snapshots would be looked up in
        // another thread's table.
        return Ok(baton::CallValue::Json(snapshot_text(env, snapshot)));
    }
    let t = js::get_number(env, v)?;
    let token = (t >= 1.0 && t < 2f64.powi(53) && t.fract() == 0.0)
        .then(|| std::num::NonZeroU64::new(t as u64))
        .flatten()
        .ok_or_else(|| Error::internal(format!("{what}: not a host value token: {t}")))?;
    Ok(baton::CallValue::Host { token, text })
}

/// `JSON.stringify(snapshot)`: a snapshot is a plain copy of a value that was exactly JSON, so
/// this runs no user code and cannot fail; if it did, the event would say `null`.
fn snapshot_text(env: Env, snapshot: JsVal) -> baton::Payload {
    let text = || -> JsResult<baton::Payload> {
        let mut global = std::ptr::null_mut();
        js::status(env, unsafe { sys::napi_get_global(env, &mut global) })?;
        let json = js::get(env, global, "JSON")?;
        let stringify = js::get(env, json, "stringify")?;
        let out = js::call(env, stringify, &[snapshot])?;
        trusted_text(env, out, "snapshot")
    };
    text().unwrap_or(baton::Payload::NULL)
}

/// enterLlm(stack, name, requestText, options, fork) → `null` (nothing registered, or
/// middleware or a codec sees the values: use `llm`), or, entered, `[call, requestText]`:
/// `call` as `enterTool` gives it (a synchronous call's depth for `exitTool`, an async call's
/// token for `exitForked`, the caller's position published) and, only when the core's check
/// changed the request (`headers` added), the request the function gets (else `undefined`:
/// the request as given). The same events as `llm`
/// (`Stack::enter_llm`), without the core's call machinery and the trampoline into JS.
pub fn enter_llm(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let o = llm_options(env, a[3])?;
    // Nothing registered: `llm` checks the request and calls the function directly.
    if s.unobserved()? && !name.is_empty() {
        return js::null(env);
    }
    let request = convert::text_in(env, a[2], "request")?;
    let (call, request) = if truthy(env, a[4])? {
        let position = id_number(s);
        let stack = s.fork();
        let Some((call, request)) = stack.enter_llm(&name, request, o)? else {
            return js::null(env);
        };
        (entered::hold(position, stack, entered::Held::Call(call))?, request)
    } else {
        let Some((call, request)) = s.enter_llm(&name, request, o)? else {
            return js::null(env);
        };
        (hold_sync(call), request)
    };
    let out = js::array(env, 2)?;
    js::set_index(env, out, 0, js::number(env, call)?)?;
    if let Some(request) = request {
        js::set_index(env, out, 1, convert::text_out(env, &request)?)?;
    }
    Ok(out)
}

/// enteredStack(token) → a stack handle for the fork a running entered async call runs on
/// (its scope current), or `null` once the call has exited. Made only when the call's
/// function uses Baton (`entered`).
pub fn entered_stack(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    match entered::stack_of(js::get_number(env, a[0])?) {
        Some(stack) => handles::wrap(env, Handle::Stack(stack)),
        None => js::null(env),
    }
}

/// exitForked(token, resultText) or exitForked(token, undefined, thrown): ends an entered async
/// call (its end event) and frees its slot.
pub fn exit_forked(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Some((_stack, entered::Held::Call(call))) = entered::take(js::get_number(env, a[0])?, |h| matches!(h, entered::Held::Call(_)))
    else {
        return Err(Error::invalid_state("call: not a running tool call (already ended?)").into());
    };
    exit_with(env, call, a[1], a[2], a[3])
}

/// `enteredRunning()` → entered async calls and `withScope` scopes not yet ended on this
/// thread (tests check that none is left behind).
pub fn entered_running(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    js::number(env, entered::running() as f64)
}

/// exitTool(depth, resultText) or exitTool(depth, undefined, thrown): the end event of an
/// entered synchronous call.
pub fn exit_tool(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let call = if js::type_of(env, a[0])? == sys::ValueType::napi_number {
        let depth = js::get_number(env, a[0])?;
        ENTERED_SYNC.with(|c| {
            let mut c = c.borrow_mut();
            if depth != c.len() as f64 {
                return Err(Error::invalid_state(format!(
                    "call: synchronous tool calls must end innermost first (ending {depth} with {} open)",
                    c.len()
                )));
            }
            c.pop().ok_or_else(|| Error::invalid_state("call: already ended"))
        })?
    } else {
        return Err(Error::invalid_argument("call: expected the depth of a synchronous tool call").into());
    };
    exit_with(env, call, a[1], a[2], a[3])
}

/// Exits an entered call with the result text (or host value, with its `snapshot`), or with
/// the thrown value when there is none.
pub(super) fn exit_with(env: Env, call: baton::EnteredCall, result: JsVal, thrown: JsVal, snapshot: JsVal) -> JsResult<JsVal> {
    let t = js::type_of(env, result)?;
    if t == sys::ValueType::napi_string || t == sys::ValueType::napi_number {
        call.exit_value(Ok(call_value(env, result, snapshot, "returned value")?));
    } else {
        let e = callbacks::host_error(env, thrown);
        call.exit(Err(&e));
    }
    crate::deliver::refresh_welcome(rt());
    js::undefined(env)
}

/// enterLlmStream(stack, name, requestText, options) → `null` (middleware or a codec sees the
/// values: use `llmStream`), or `[handle, requestText]`: the stream entered on a fork of
/// `stack` with its scope current there (start event emitted), and the request its callback
/// gets (checked, `headers` added when it had none).
///
/// With only subscribers (and event middleware) registered, the facade pulls the source itself
/// under the handle (which is the fork's stack handle too) and reports each chunk with
/// `streamChunk` and the end with `streamFinish`: the same events as `llmStream`
/// (`Stack::enter_llm_stream`), with one crossing per chunk instead of the core's stream
/// machinery and a trampoline into JS per pull.
pub fn enter_llm_stream(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let request = convert::text_in(env, a[2], "request")?;
    let o = llm_options(env, a[3])?;
    let stack = s.fork();
    let Some(mut stream) = stack.enter_llm_stream(&name, request, o)? else {
        return js::null(env);
    };
    let request = stream.take_request().unwrap_or(Value::Null);
    stream.push();
    let out = js::array(env, 2)?;
    let h = handles::wrap(env, Handle::EnteredStream { stack, stream: std::cell::RefCell::new(Some(stream)) })?;
    js::set_index(env, out, 0, h)?;
    let r = convert::text_out(env, &request)?;
    js::set_index(env, out, 1, r)?;
    Ok(out)
}

pub(super) fn entered_stream<'a>(env: Env, v: JsVal) -> JsResult<&'a std::cell::RefCell<Option<baton::EnteredStream>>> {
    match handles::handle(env, v, "stream")? {
        Handle::EnteredStream { stream, .. } => Ok(stream),
        _ => Err(Error::invalid_argument("stream: expected an entered stream").into()),
    }
}

/// streamChunk(handle, chunkText): records the next chunk (its `llm.chunk` mark and its place
/// in the end event).
pub fn stream_chunk(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let cell = entered_stream(env, a[0])?;
    let mut guard = cell.borrow_mut();
    let Some(stream) = guard.as_mut() else {
        return Err(Error::invalid_state("stream: already ended").into());
    };
    let text = trusted_text(env, a[1], "chunk")?;
    stream.chunk(|| text);
    js::undefined(env)
}

/// streamFinish(handle, ok, thrown): ends the stream — `ok` true: its end event with the
/// recorded chunks; false: `ERROR` status from the thrown value (or cancelled when `thrown` is
/// undefined, the consumer having stopped early). Ending twice does nothing.
pub fn stream_finish(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let cell = entered_stream(env, a[0])?;
    let Some(stream) = cell.borrow_mut().take() else {
        return js::undefined(env);
    };
    stream.pop();
    if truthy(env, a[1])? {
        stream.finish(Ok(()));
    } else if js::type_of(env, a[2])? != sys::ValueType::napi_undefined {
        let e = callbacks::host_error(env, a[2]);
        stream.finish(Err(&e));
    } else {
        drop(stream);
    }
    js::undefined(env)
}

/// JSON text the facade made with `JSON.stringify` (valid JSON, no raw line breaks).
pub(super) fn trusted_text(env: Env, v: JsVal, what: &str) -> JsResult<baton::Payload> {
    if js::type_of(env, v)? != sys::ValueType::napi_string {
        return Err(Error::internal(format!("{what}: expected JSON text from the facade")).into());
    }
    Ok(baton::Payload::from_json_trusted(js::get_string(env, v)?.into_boxed_str()))
}
