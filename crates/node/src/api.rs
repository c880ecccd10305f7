//! The functions the addon exports (the facade in `node/` is their only caller).

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use baton::codec::{self, Codec, CodecKind};
use baton::{
    CallKind, ChunkStream, Data, DataSchema, EndOptions, Error, Family, LlmOptions, LlmStream, MarkOptions, OverflowPolicy, Registration,
    Runtime, RuntimeConfig, ScopeOptions, Stack, ToolOptions,
};
use futures_core::Stream;
use napi::sys;
use serde_json::Value;

use crate::callbacks::{self, guarded, JsFn};
use crate::convert::{self, opt_json, opt_object, opt_strings};
use crate::entered;
use crate::handles::{self, Handle};
use crate::js::{self, Env, JsRef, JsResult, JsVal};
use crate::stream::JsChunks;
use crate::task::{self, with_js_stack, AssertSend, Finish, PromiseFuture, TaskFuture};

fn rt() -> &'static Runtime {
    Runtime::global()
}

fn undefined(env: Env) -> JsResult<JsVal> {
    js::undefined(env)
}

fn truthy(env: Env, v: JsVal) -> JsResult<bool> {
    Ok(js::type_of(env, v)? == sys::ValueType::napi_boolean && js::get_bool(env, v)?)
}

fn opt_bool(env: Env, options: JsVal, key: &str) -> JsResult<Option<bool>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, key)?;
    if js::is_nullish(env, v)? {
        return Ok(None);
    }
    Ok(Some(truthy(env, v)?))
}

fn opt_number(env: Env, options: JsVal, key: &str) -> JsResult<Option<f64>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, key)?;
    if js::is_nullish(env, v)? {
        return Ok(None);
    }
    if js::type_of(env, v)? != sys::ValueType::napi_number {
        return Err(Error::invalid_argument(format!("options.{key}: expected a number")).into());
    }
    Ok(Some(js::get_number(env, v)?))
}

fn finish_json(v: Value) -> Finish {
    Box::new(move |env| convert::text_out(env, &v))
}

fn finish_data(d: baton::Data) -> Finish {
    Box::new(move |env| convert::data_out(env, &d))
}

fn finish_undefined() -> Finish {
    Box::new(js::undefined)
}

/// The error of `pop`/`end` options: a thrown value (kept as is) or a message string.
fn opt_error(env: Env, options: JsVal) -> JsResult<Option<Error>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, "error")?;
    if js::type_of(env, v)? == sys::ValueType::napi_undefined {
        return Ok(None);
    }
    if js::type_of(env, v)? == sys::ValueType::napi_string {
        return Ok(Some(Error::callback_failed(js::get_string(env, v)?)));
    }
    Ok(Some(callbacks::host_error(env, v)))
}

fn end_options(env: Env, options: JsVal, output_key: &str) -> JsResult<EndOptions> {
    Ok(EndOptions {
        output: opt_json(env, options, output_key)?,
        metadata: opt_object(env, options, "metadata")?,
        error: opt_error(env, options)?,
    })
}

fn tool_options(env: Env, o: JsVal) -> JsResult<ToolOptions> {
    Ok(ToolOptions {
        tool_call_id: js::opt_string(env, o, "toolCallId")?,
        metadata: opt_object(env, o, "metadata")?,
        attributes: opt_strings(env, o, "attributes")?,
        parent: handles::opt_scope(env, o, "parent")?,
    })
}

fn llm_options(env: Env, o: JsVal) -> JsResult<LlmOptions> {
    Ok(LlmOptions {
        model_name: js::opt_string(env, o, "modelName")?,
        metadata: opt_object(env, o, "metadata")?,
        attributes: opt_strings(env, o, "attributes")?,
        parent: handles::opt_scope(env, o, "parent")?,
        chunk_marks: opt_bool(env, o, "chunkMarks")?.unwrap_or(true),
        codec: opt_codec(env, o, "codec")?,
        response_codec: opt_codec(env, o, "responseCodec")?,
    })
}

fn opt_codec(env: Env, o: JsVal, key: &str) -> JsResult<Option<Codec>> {
    match js::opt_string(env, o, key)? {
        None => Ok(None),
        Some(name) => Ok(Some(Codec::parse(&name)?)),
    }
}

/// codec(op, codecName, a, b): the provider codecs. With `auto`, a shape no codec
/// recognizes gives `null`.
pub fn codec_op(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let op = js::req_string(env, a[0], "op")?;
    let c = Codec::parse(&js::req_string(env, a[1], "codec")?)?;
    let first = convert::to_json(env, a[2], "value")?;
    let fixed = |kind: Option<CodecKind>, f: &dyn Fn(CodecKind) -> baton::Result<Value>| kind.map_or(Ok(Value::Null), f);
    let out = match op.as_str() {
        "decodeRequest" => fixed(c.for_request(&first), &|k| codec::decode_request(k, &first))?,
        "encodeRequest" => {
            let original = convert::to_json(env, a[3], "original")?;
            fixed(c.for_request(&original), &|k| codec::encode_request(k, &first, &original))?
        }
        "decodeResponse" => fixed(c.for_response(&first), &|k| codec::decode_response_json(k, &first))?,
        "aggregateStream" => {
            let chunks = first.as_array().ok_or_else(|| Error::invalid_argument("chunks: expected an array"))?;
            let kind = match c {
                Codec::Kind(k) => Some(k),
                Codec::Auto => chunks.iter().find_map(codec::detect_chunk),
            };
            fixed(kind, &|k| codec::aggregate_stream(k, chunks).map(|r| r.to_json()))?
        }
        other => return Err(Error::invalid_argument(format!("unknown codec op '{other}'")).into()),
    };
    convert::to_js(env, &out)
}

fn call_kind(env: Env, v: JsVal) -> JsResult<CallKind> {
    match js::req_string(env, v, "kind")?.as_str() {
        "tool" => Ok(CallKind::Tool),
        "llm" => Ok(CallKind::Llm),
        other => Err(Error::invalid_argument(format!("kind: expected 'tool' or 'llm', got '{other}'")).into()),
    }
}

// ----- init -----

pub fn init(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let h = a[0];
    let grab = |key: &str| -> JsResult<sys::napi_ref> {
        let f = js::get(env, h, key)?;
        js::make_ref(env, f).map_err(|e| match e {
            js::Thrown::Baton(e) => js::Thrown::Baton(Error::internal(format!("init: {key}: {}", e.message()))),
            p => p,
        })
    };
    let mut global = std::ptr::null_mut();
    js::status(env, unsafe { sys::napi_get_global(env, &mut global) })?;
    let object = js::get(env, global, "Object")?;
    let proto = js::get(env, object, "prototype")?;
    js::set_helpers(js::Helpers {
        make_error: grab("makeError")?,
        watch: grab("watch")?,
        invoke: grab("invoke")?,
        iter_of: grab("iterOf")?,
        object_proto: js::make_ref(env, proto)?,
    });
    let drain = js::get(env, h, "drain")?;
    crate::deliver::install(env, drain)?;
    undefined(env)
}

pub fn settle(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let id = js::get_number(env, a[0])? as usize;
    let ok = truthy(env, a[1])?;
    task::settle(env, id, ok, a[2])?;
    undefined(env)
}

pub fn configure(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let mut config = RuntimeConfig::default();
    if let Some(n) = opt_number(env, a[0], "queueCapacity")? {
        if !(n >= 1.0 && n.fract() == 0.0) {
            return Err(Error::invalid_argument("options.queueCapacity: expected a positive integer").into());
        }
        config.queue_capacity = n as usize;
    }
    if let Some(p) = js::opt_string(env, a[0], "overflow")? {
        config.overflow = OverflowPolicy::parse(&p)?;
    }
    Runtime::init_global(config)?;
    undefined(env)
}

// ----- stacks -----

pub fn new_stack(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    handles::wrap(env, Handle::Stack(rt().new_stack()))
}

pub fn fork(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    handles::wrap(env, Handle::Stack(s.fork()))
}

pub fn stack_from_propagation(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let ctx = convert::to_json(env, a[0], "context")?;
    handles::wrap(env, Handle::Stack(rt().stack_from_propagation(&ctx)?))
}

pub fn propagation_context(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    convert::to_js(env, &s.propagation_context())
}

pub fn traceparent(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    js::string(env, &s.traceparent()?)
}

/// currentId(stack) → where new work on `stack` is parented right now, as a number
/// (`Stack::current_id`: the current scope's identity, 0 for an empty stack's base). The facade
/// keeps one shared fork (a pin) per stack and reuses it while this stays the same, instead of
/// a fork per async call.
pub fn current_id(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    js::number(env, id_number(s))
}

/// `Stack::current_id` as a JS number; an identity a number cannot hold exactly (2^53 and
/// above: no address on today's platforms) is -1, for which the facade never reuses a pin.
fn id_number(s: &Stack) -> f64 {
    let id = s.current_id();
    if (id as u64) < (1u64 << 53) {
        id as f64
    } else {
        -1.0
    }
}

pub fn current_scope(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    match s.current() {
        Some(h) => handles::wrap(env, Handle::Scope(h)),
        None => js::null(env),
    }
}

// ----- scopes and marks -----

fn data_schema(env: Env, o: JsVal) -> JsResult<Option<DataSchema>> {
    match opt_json(env, o, "dataSchema")? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(d)) => Ok(Some(DataSchema {
            name: d.get("name").and_then(Value::as_str).unwrap_or_default().into(),
            version: d.get("version").and_then(Value::as_str).unwrap_or_default().into(),
        })),
        Some(_) => Err(Error::invalid_argument("options.dataSchema: expected {name, version}").into()),
    }
}

pub fn push(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let opts = scope_options(env, a[1], a[2])?;
    handles::wrap(env, Handle::Scope(s.push(opts)?))
}

fn scope_options(env: Env, name: JsVal, o: JsVal) -> JsResult<ScopeOptions> {
    let name = js::req_string(env, name, "name")?;
    let mut opts = ScopeOptions::new(name).category(js::opt_string(env, o, "category")?.unwrap_or_else(|| "function".into()).as_str());
    opts.input = opt_json(env, o, "input")?;
    opts.metadata = opt_object(env, o, "metadata")?;
    opts.attributes = opt_strings(env, o, "attributes")?;
    opts.category_profile = opt_json(env, o, "categoryProfile")?.filter(|v| !v.is_null());
    opts.data_schema = data_schema(env, o)?;
    opts.parent = handles::opt_scope(env, o, "parent")?;
    Ok(opts)
}

/// enterScope(stack, name, options) → `[token, scope]`: a scope pushed on a fork of `stack`
/// for `withScope`. The fork stays here under `token` (its handle made only when the function
/// uses Baton: `enteredStack`), the caller's position published; `exitScope` pops the scope.
pub fn enter_scope(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let opts = scope_options(env, a[1], a[2])?;
    let position = id_number(s);
    let fork = s.fork();
    let scope = fork.push(opts)?;
    let out = js::array(env, 2)?;
    let h = handles::wrap(env, Handle::Scope(scope.clone()))?;
    js::set_index(env, out, 0, js::number(env, entered::hold(position, fork, entered::Held::Scope(scope))?)?)?;
    js::set_index(env, out, 1, h)?;
    Ok(out)
}

/// exitScope(token, endOptions): pops the scope of `enterScope` (its end event) and frees the
/// slot.
pub fn exit_scope(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Some((stack, entered::Held::Scope(scope))) = entered::take(js::get_number(env, a[0])?, |h| matches!(h, entered::Held::Scope(_)))
    else {
        return Err(Error::invalid_state("scope: not a running withScope scope (already ended?)").into());
    };
    let end = end_options(env, a[1], "output")?;
    stack.pop(&scope, end)?;
    undefined(env)
}

pub fn pop(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let scope = handles::scope(env, a[1], "scope")?;
    let end = end_options(env, a[2], "output")?;
    s.pop(scope, end)?;
    undefined(env)
}

pub fn scope_info(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    handles::scope_info(env, handles::scope(env, a[0], "scope")?)
}

pub fn mark(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let o = a[2];
    let mut opts = MarkOptions::new(name);
    opts.data = opt_json(env, o, "data")?;
    opts.metadata = opt_object(env, o, "metadata")?;
    opts.parent = handles::opt_scope(env, o, "parent")?;
    opts.category = js::opt_string(env, o, "category")?.map(|c| c.as_str().into());
    opts.category_profile = opt_json(env, o, "categoryProfile")?.filter(|v| !v.is_null());
    opts.data_schema = data_schema(env, o)?;
    s.mark(opts)?;
    undefined(env)
}

pub fn metric(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let m = convert::to_json(env, a[2], "measurements")?;
    let unit = js::opt_string(env, a[3], "unit")?;
    s.metric(&name, m, unit.as_deref())?;
    undefined(env)
}

// ----- managed calls -----
//
// Sync entry points run their callbacks with a null JS stack: the callbacks then run in the
// caller's own AsyncLocalStorage context (the very stack the call uses), without `als.run`.
// Async ones run on a fork, which callbacks get through `als.run` (see `callbacks::invoke`).

fn value_later(env: Env, r: JsVal) -> JsResult<Result<Data, PromiseFuture<Data>>> {
    if js::is_thenable(env, r)? {
        Ok(Err(PromiseFuture::new(env, r, |env, v| convert::data_in(env, v, "returned value"))?))
    } else {
        Ok(Ok(convert::data_in(env, r, "returned value")?))
    }
}

/// The async core callback for a JS function (its result may be a promise).
fn async_callback(f: JsFn) -> impl Fn(Data) -> baton::BoxFuture<baton::Result<Data>> + Send + Sync + 'static {
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
fn sync_call(env: Env, f: JsVal, input: Data) -> baton::Result<Data> {
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

fn managed(env: Env, a: &[JsVal], kind: CallKind) -> JsResult<JsVal> {
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

/// A chunk stream pulled synchronously (for `llmStreamSync`).
struct PollIter(ChunkStream);

impl Iterator for PollIter {
    type Item = baton::Result<Value>;
    fn next(&mut self) -> Option<baton::Result<Value>> {
        match self.0.as_mut().poll_next(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(x) => x,
            Poll::Pending => Some(Err(Error::invalid_state("a synchronous stream met an async chunk source; use the async form"))),
        }
    }
}

fn wrap_stream(env: Env, stream: LlmStream) -> JsResult<JsVal> {
    handles::wrap(env, Handle::Stream(RefCell::new(Some(stream))))
}

/// llmStream(stack, name, request, fn, options, async)
pub fn llm_stream(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let request = convert::text_in(env, a[2], "request")?;
    let o = llm_options(env, a[4])?;
    if !truthy(env, a[5])? {
        let f = a[3];
        if !js::is_function(env, f)? {
            return Err(Error::invalid_argument("callback: expected a function").into());
        }
        let stream = with_js_stack(std::ptr::null_mut(), || {
            s.llm_stream(
                &name,
                request,
                |req| {
                    guarded(|env| {
                        let r = callbacks::invoke(env, f, &[convert::text_out(env, &req)?])?;
                        if js::is_thenable(env, r)? {
                            let _ = PromiseFuture::new(env, r, |_, _| Ok(()));
                            return Err(Error::invalid_state("the callback of llmStreamSync returned a Promise; use llmStream").into());
                        }
                        Ok(PollIter(JsChunks::from_iterable(env, r)?))
                    })
                },
                o,
            )
        })?;
        return wrap_stream(env, stream);
    }
    let f = JsFn::new(env, a[3], "callback")?;
    let fork = s.fork();
    let fork_js = handles::wrap(env, Handle::Stack(fork.clone()))?;
    let cb = move |req: Value| {
        let r = guarded(|env| {
            let r = f.call(env, &[convert::text_out(env, &req)?])?;
            if js::is_thenable(env, r)? {
                Ok(Err(PromiseFuture::new(env, r, JsChunks::from_iterable)?))
            } else {
                Ok(Ok(JsChunks::from_iterable(env, r)?))
            }
        });
        let fut: baton::BoxFuture<baton::Result<ChunkStream>> = match r {
            Err(e) => Box::pin(std::future::ready(Err(e))),
            Ok(Ok(s)) => Box::pin(std::future::ready(Ok(s))),
            Ok(Err(p)) => Box::pin(AssertSend(p)),
        };
        fut
    };
    let fut = with_js_stack(fork_js, || fork.llm_stream_async(&name, request, cb, o));
    let fut: TaskFuture = Box::pin(async move {
        let stream = fut.await?;
        let stream = AssertSend(stream);
        Ok(Box::new(move |env| wrap_stream(env, stream.0)) as Finish)
    });
    with_js_stack(fork_js, || task::spawn(env, fut))
}

/// streamNext(stream, async) → chunk, or `undefined` at the end (or a promise of either).
pub fn stream_next(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Stream(cell) = handles::handle(env, a[0], "stream")? else {
        return Err(Error::invalid_argument("stream: expected a stream handle").into());
    };
    let Some(mut stream) = cell.borrow_mut().take() else {
        return undefined(env);
    };
    if !truthy(env, a[1])? {
        return match stream.next() {
            Some(Ok(v)) => {
                *cell.borrow_mut() = Some(stream);
                convert::text_out(env, &v)
            }
            Some(Err(e)) => Err(e.into()),
            None => undefined(env),
        };
    }
    let holder = JsRef::new(env, a[0])?;
    let fut: TaskFuture = Box::pin(async move {
        let mut stream = AssertSend(stream);
        let item = std::future::poll_fn(|cx| Pin::new(&mut stream.0).poll_next(cx)).await;
        match item {
            None => Ok(finish_undefined()),
            Some(Err(e)) => Err(e),
            Some(Ok(v)) => Ok(Box::new(move |env: Env| {
                if let Ok(h) = holder.get(env) {
                    if let Ok(Handle::Stream(cell)) = handles::handle(env, h, "stream") {
                        *cell.borrow_mut() = Some(stream.0);
                    }
                }
                convert::text_out(env, &v)
            }) as Finish),
        }
    });
    task::spawn(env, fut)
}

/// streamClose(stream): drops it (an unfinished stream ends as cancelled).
pub fn stream_close(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    if let Handle::Stream(cell) = handles::handle(env, a[0], "stream")? {
        let s = cell.borrow_mut().take();
        drop(s);
    }
    undefined(env)
}

/// chunksNext(chunks, async): the inner stream of a stream intercept.
pub fn chunks_next(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Chunks(cell) = handles::handle(env, a[0], "chunks")? else {
        return Err(Error::invalid_argument("chunks: expected a chunk source").into());
    };
    let Some(mut inner) = cell.borrow_mut().take() else {
        return undefined(env);
    };
    if !truthy(env, a[1])? {
        return match inner.as_mut().poll_next(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(Some(Ok(v))) => {
                *cell.borrow_mut() = Some(inner);
                convert::text_out(env, &v)
            }
            Poll::Ready(Some(Err(e))) => Err(e.into()),
            Poll::Ready(None) => undefined(env),
            Poll::Pending => {
                *cell.borrow_mut() = Some(inner);
                Err(Error::invalid_state("the inner chunks are produced asynchronously; iterate them with `for await`").into())
            }
        };
    }
    let holder = JsRef::new(env, a[0])?;
    let fut: TaskFuture = Box::pin(async move {
        let mut inner = AssertSend(inner);
        let item = std::future::poll_fn(|cx| inner.0.as_mut().poll_next(cx)).await;
        match item {
            None => Ok(finish_undefined()),
            Some(Err(e)) => Err(e),
            Some(Ok(v)) => Ok(Box::new(move |env: Env| {
                if let Ok(h) = holder.get(env) {
                    if let Ok(Handle::Chunks(cell)) = handles::handle(env, h, "chunks") {
                        *cell.borrow_mut() = Some(inner.0);
                    }
                }
                convert::text_out(env, &v)
            }) as Finish),
        }
    });
    task::spawn(env, fut)
}

/// callNext(next, input): the async `next` of an execution intercept.
pub fn call_next(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Next(next) = handles::handle(env, a[0], "next")? else {
        return Err(Error::invalid_argument("next: expected a next handle").into());
    };
    let input = convert::text_in(env, a[1], "input")?;
    let fut = next.call(input);
    task::spawn(env, Box::pin(async move { fut.await.map(finish_json) }))
}

/// callNextSync(token, input): the `next` of a sync execution intercept.
pub fn call_next_sync(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let token = js::get_number(env, a[0])? as u32;
    let input = convert::text_in(env, a[1], "input")?;
    let out = crate::middleware::call_sync_next(token, input)?;
    convert::text_out(env, &out)
}

/// queueMark(ctx, name, data, metadata)
pub fn queue_mark(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Ctx(ctx) = handles::handle(env, a[0], "ctx")? else {
        return Err(Error::invalid_argument("ctx: expected a call context").into());
    };
    let name = js::req_string(env, a[1], "name")?;
    let data = convert::to_json(env, a[2], "data")?;
    let metadata = match convert::to_json(env, a[3], "metadata")? {
        Value::Object(m) => m,
        Value::Null => Default::default(),
        _ => return Err(Error::invalid_argument("metadata: expected an object").into()),
    };
    ctx.queue_mark(name, data, metadata);
    undefined(env)
}

// ----- manual lifecycle and standalone helpers -----

pub fn tool_start(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let args = convert::to_json(env, a[2], "args")?;
    let o = tool_options(env, a[3])?;
    let h = with_js_stack(std::ptr::null_mut(), || s.tool_start(&name, &args, o))?;
    handles::wrap(env, Handle::Call(h))
}

pub fn llm_start(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let request = convert::to_json(env, a[2], "request")?;
    let o = llm_options(env, a[3])?;
    let h = with_js_stack(std::ptr::null_mut(), || s.llm_start(&name, &request, o))?;
    handles::wrap(env, Handle::Call(h))
}

/// callEnd(handle, options{output, metadata, error})
pub fn call_end(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Call(h) = handles::handle(env, a[0], "handle")? else {
        return Err(Error::invalid_argument("handle: expected a call handle").into());
    };
    h.end(end_options(env, a[1], "output")?)?;
    undefined(env)
}

pub fn call_uuid(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Call(h) = handles::handle(env, a[0], "handle")? else {
        return Err(Error::invalid_argument("handle: expected a call handle").into());
    };
    js::string(env, &h.uuid().to_string())
}

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

// ----- middleware -----

/// register(kind, name, fn, options{priority, scope, breakChain, sync}, subscriberId)
pub fn register(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let family = Family::parse(&js::req_string(env, a[0], "kind")?)?;
    let name = js::req_string(env, a[1], "name")?;
    let o = a[3];
    let priority = opt_number(env, o, "priority")?.unwrap_or(0.0);
    if priority.fract() != 0.0 || priority < i32::MIN as f64 || priority > i32::MAX as f64 {
        return Err(Error::invalid_argument("options.priority: expected a 32-bit integer").into());
    }
    let sync = opt_bool(env, o, "sync")?.unwrap_or(false);
    let id = if js::type_of(env, a[4])? == sys::ValueType::napi_number { js::get_number(env, a[4])? as u32 } else { 0 };
    if family != Family::Subscriber && !js::is_function(env, a[2])? {
        return Err(Error::invalid_argument("middleware: expected a function").into());
    }
    let mw = crate::middleware::build(env, family, a[2], sync, id)?;
    let mut reg = Registration::new(name).priority(priority as i32).break_chain(opt_bool(env, o, "breakChain")?.unwrap_or(false));
    reg.scope = handles::opt_scope(env, o, "scope")?;
    rt().register(reg, mw)?;
    undefined(env)
}

/// deregister(kind, name, scope?)
pub fn deregister(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let family = Family::parse(&js::req_string(env, a[0], "kind")?)?;
    let name = js::req_string(env, a[1], "name")?;
    let scope = if js::is_nullish(env, a[2])? { None } else { Some(handles::scope(env, a[2], "scope")?.clone()) };
    js::boolean(env, rt().deregister(family, &name, scope.as_ref())?)
}

// ----- delivery -----

fn timeout(env: Env, v: JsVal) -> JsResult<Duration> {
    if js::is_nullish(env, v)? {
        return Ok(Duration::from_secs(30));
    }
    let ms = js::get_number(env, v)?;
    if !(ms >= 0.0 && ms.is_finite()) {
        return Err(Error::invalid_argument("timeout: expected a non-negative number of milliseconds").into());
    }
    Ok(Duration::from_micros((ms * 1000.0) as u64))
}

/// Checks that flush/shutdown may run here (not inside middleware, not after shutdown).
fn check_can_wait() -> JsResult<()> {
    rt().flush(Duration::ZERO)?;
    Ok(())
}

pub fn flush(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let t = timeout(env, a[0])?;
    check_can_wait()?;
    crate::deliver::flush_async(env, t, false)
}

pub fn shutdown(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let t = timeout(env, a[0])?;
    check_can_wait()?;
    crate::deliver::flush_async(env, t, true)
}

pub fn take_events(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::take(env)
}

pub fn pending_counter(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::pending_counter(env)
}

pub fn meta_buffer(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::meta_buffer(env)
}

pub fn diagnostics(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    let d = rt().diagnostics();
    let o = js::object(env)?;
    for (k, v) in [
        ("deliveredEvents", d.delivered_events),
        ("droppedEvents", d.dropped_events),
        ("subscriberFailures", d.subscriber_failures),
        ("middlewareFailures", d.middleware_failures),
        ("queued", d.queued),
    ] {
        let n = js::number(env, v as f64)?;
        js::set(env, o, k, n)?;
    }
    Ok(o)
}

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

pub fn is_shutdown(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    js::boolean(env, rt().is_shutdown())
}

pub fn stack_depth(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s: &Stack = handles::stack(env, a[0], "stack")?;
    js::number(env, s.depth() as f64)
}

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
    static ENTERED_SYNC: std::cell::RefCell<Vec<baton::EnteredCall>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Holds an entered synchronous call; returns its depth, which `exitTool` takes.
fn hold_sync(call: baton::EnteredCall) -> f64 {
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
pub fn enter_tool(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let o = tool_options(env, a[3])?;
    if s.unobserved()? && !name.is_empty() {
        return js::boolean(env, false);
    }
    let fork = truthy(env, a[4])?;
    let text = trusted_text(env, a[2], "args")?;
    if !fork {
        return match s.enter_tool(&name, || Ok(text), o)? {
            None => js::null(env),
            Some(call) => js::number(env, hold_sync(call)),
        };
    }
    let position = id_number(s);
    let stack = s.fork();
    match stack.enter_tool(&name, || Ok(text), o)? {
        None => js::null(env),
        Some(call) => js::number(env, entered::hold(position, stack, entered::Held::Call(call))?),
    }
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
    exit_with(env, call, a[1], a[2])
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
    exit_with(env, call, a[1], a[2])
}

/// Exits an entered call with the result text, or with the thrown value when there is none.
fn exit_with(env: Env, call: baton::EnteredCall, result: JsVal, thrown: JsVal) -> JsResult<JsVal> {
    if js::type_of(env, result)? == sys::ValueType::napi_string {
        call.exit(Ok(trusted_text(env, result, "returned value")?));
    } else {
        let e = callbacks::host_error(env, thrown);
        call.exit(Err(&e));
    }
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

fn entered_stream<'a>(env: Env, v: JsVal) -> JsResult<&'a std::cell::RefCell<Option<baton::EnteredStream>>> {
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
fn trusted_text(env: Env, v: JsVal, what: &str) -> JsResult<baton::Payload> {
    if js::type_of(env, v)? != sys::ValueType::napi_string {
        return Err(Error::internal(format!("{what}: expected JSON text from the facade")).into());
    }
    Ok(baton::Payload::from_json_trusted(js::get_string(env, v)?.into_boxed_str()))
}
