//! The native layer the JS facade calls. Values cross as JSON text; errors cross as a plain
//! object `{__batonError: true, code, message, detail}` that the facade turns into a
//! `BatonError`, or as the very value a JS callback threw.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use baton::{
    CallKind, EndOptions, Error, ErrorKind, Family, MarkOptions, Middleware, Registration, Runtime, ScopeHandle, ScopeOptions, ToolOptions,
};
use js_sys::{Function, Object, Reflect};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(msg: &str);
}

thread_local! {
    /// `Date.now()` minus `performance.now()`, in µs: with `performance.now()`, a µs wall clock.
    static CLOCK_BASE: Cell<f64> = const { Cell::new(f64::NAN) };
    static CLOCK_LAST: Cell<i64> = const { Cell::new(0) };
    static CLOCK_PERF: Cell<f64> = const { Cell::new(0.0) };
    static CLOCK_READS: Cell<u32> = const { Cell::new(0) };
    /// Entropy from crypto.getRandomValues, drawn in blocks: (pool, bytes used).
    static ENTROPY: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    /// JS functions the core calls back later (subscribers), by id.
    static FUNCTIONS: RefCell<HashMap<u32, Function>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
    /// Values thrown by JS callbacks, parked while the error crosses the core.
    static THROWN: RefCell<HashMap<u32, JsValue>> = RefCell::new(HashMap::new());
    /// The message of the last Rust panic (the trap itself reaches JS as `RuntimeError`).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The `next` of every execution intercept currently running, by token (innermost last).
    static NEXTS: RefCell<Vec<(u32, NextPtr)>> = const { RefCell::new(Vec::new()) };
    /// Chunk iterators returned by JS stream callbacks, by id.
    static ITERS: RefCell<HashMap<u32, JsValue>> = RefCell::new(HashMap::new());
    /// The facade's `schedulePoll(taskId)` (queues a microtask that calls `pollTask`).
    static SCHEDULER: RefCell<Option<Function>> = const { RefCell::new(None) };
}

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

type NextPtr = *const (dyn Fn(Value) -> baton::Result<Value> + 'static);

fn next_id() -> u32 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    })
}

fn now_micros() -> i64 {
    // performance.now() gives µs resolution; Date.now() is the wall clock. Every call reads
    // performance.now(); Date.now() is read to re-anchor only every 64th call or when the
    // monotonic clock jumped (sleep, a suspended tab), since each read is a JS call.
    let perf = performance_now() * 1000.0;
    let now = CLOCK_BASE.with(|b| {
        let n = CLOCK_READS.with(|r| {
            let n = r.get().wrapping_add(1);
            r.set(n);
            n
        });
        let base = b.get();
        let last_perf = CLOCK_PERF.with(|p| p.replace(perf));
        if base.is_nan() || n % 64 == 0 || perf - last_perf > 1_000_000.0 {
            let wall = date_now() * 1000.0;
            if base.is_nan() || (base + perf - wall).abs() > 1000.0 {
                b.set(wall - perf);
                return wall;
            }
        }
        b.get() + perf
    }) as i64;
    // Never go backwards (a frozen or coarse clock still keeps ordering).
    CLOCK_LAST.with(|l| {
        let v = now.max(l.get());
        l.set(v);
        v
    })
}

fn fill_random(buf: &mut [u8]) {
    // Ids need a few bytes each; crypto.getRandomValues is a JS call, so draw 4 KiB at a time
    // and serve from that pool (bytes are used once).
    const POOL: usize = 4096;
    ENTROPY.with(|e| {
        let mut e = e.borrow_mut();
        let (pool, used) = &mut *e;
        let mut filled = 0;
        while filled < buf.len() {
            if *used >= pool.len() {
                pool.resize(POOL, 0);
                get_random_values(pool);
                *used = 0;
            }
            let n = (buf.len() - filled).min(pool.len() - *used);
            buf[filled..filled + n].copy_from_slice(&pool[*used..*used + n]);
            pool[*used..*used + n].fill(0);
            *used += n;
            filled += n;
        }
    });
}

/// Runs once when the module is instantiated: JS clock and entropy, and a panic hook that keeps
/// the message for the facade (a panic aborts: JS sees `RuntimeError: unreachable`).
#[wasm_bindgen(start)]
pub fn start() {
    baton::platform::install(baton::platform::PlatformHooks { now_micros, fill_random });
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        console_error(&format!("baton (wasm): {text}"));
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
}

/// The message of the last Rust panic, if any (the facade reads it after a trap).
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow().clone())
}

/// Panics on purpose: lets the tests check that a panic surfaces as an `internal` error.
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic(message: &str) {
    panic!("{message}");
}

// ----- errors -----

/// Marks an error whose origin is a value a JS callback threw (parked in `THROWN`).
struct Thrown(u32);

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

thread_local! {
    /// The error of the last hot-path call that answered [`FAILED`] (`takeError` hands it over).
    static FAILED_WITH: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// What the per-call functions (`enterTool`, `enterLlm`, `exitTool`, `failTool`, an entered
/// stream's `chunk`) answer when they fail; the facade then asks `takeError` for the error.
/// They return a plain number rather than a `Result`: a `Result` crosses as a multi-value
/// return, which V8 hands to JS as a new array on every call (measured: `docs/wasm.md`,
/// session 10).
const FAILED: u32 = u32::MAX;

/// `Ok(n)` as `n`, an error as [`FAILED`] with the error parked for `takeError`.
fn answer(r: Result<u32, JsValue>) -> u32 {
    match r {
        Ok(n) => n,
        Err(e) => {
            park(e);
            FAILED
        }
    }
}

/// Keeps `e` for `takeError`: the caller answers its failure value.
fn park(e: JsValue) {
    FAILED_WITH.with(|f| *f.borrow_mut() = Some(e));
}

/// The error of the last call that answered `FAILED` (`u32::MAX`), once.
#[wasm_bindgen(js_name = takeError)]
pub fn take_error() -> JsValue {
    FAILED_WITH.with(|f| f.borrow_mut().take()).unwrap_or(JsValue::UNDEFINED)
}

fn to_js(err: Error) -> JsValue {
    if let Some(t) = err.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
        if let Some(v) = THROWN.with(|m| m.borrow_mut().remove(&t.0)) {
            return v;
        }
    }
    let obj = Object::new();
    set(&obj, "__batonError", &JsValue::TRUE);
    set(&obj, "code", &JsValue::from_str(err.kind().as_str()));
    set(&obj, "message", &JsValue::from_str(err.message()));
    if let Some(d) = err.detail() {
        set(&obj, "detail", &JsValue::from_str(&json_text(d)));
    }
    obj.into()
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A value thrown by a JS callback, as a core error that carries it back to the caller.
fn from_thrown(v: JsValue) -> Error {
    let is_obj = v.is_object();
    let message = if is_obj { get(&v, "message").as_string() } else { v.as_string() }
        .unwrap_or_else(|| "a JS callback threw a non-Error value".to_string());
    let kind = if is_obj && get(&v, "__baton").is_truthy() {
        get(&v, "code").as_string().and_then(|c| ErrorKind::parse(&c)).unwrap_or(ErrorKind::CallbackFailed)
    } else {
        ErrorKind::CallbackFailed
    };
    let type_name =
        if is_obj { get(&get(&v, "constructor"), "name").as_string().unwrap_or_else(|| "Object".into()) } else { "Error".into() };
    let id = next_id();
    THROWN.with(|m| m.borrow_mut().insert(id, v));
    Error::new(kind, message).with_exception_type(type_name).with_payload(Arc::new(Thrown(id)))
}

fn bad(msg: impl Into<String>) -> JsValue {
    to_js(Error::invalid_argument(msg))
}

// ----- JSON helpers -----

fn parse_json(text: &str, what: &str) -> Result<Value, JsValue> {
    serde_json::from_str(text).map_err(|e| bad(format!("{what}: invalid JSON: {e}")))
}

/// The JSON text of a value handed to JS. `serde_json::to_string` writes into the string's
/// buffer; `Value`'s `Display` (what `to_string()` would use) passes every piece through a
/// `fmt::Formatter`, which showed in profiles of calls with JS middleware. Serializing a `Value`
/// cannot fail (its map keys are strings), so the fallback is never taken.
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| String::from("null"))
}

fn parse_opts(opts: Option<String>) -> Result<Map<String, Value>, JsValue> {
    match opts {
        None => Ok(Map::new()),
        Some(t) => match parse_json(&t, "options")? {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Map::new()),
            _ => Err(bad("options: expected an object")),
        },
    }
}

fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, JsValue> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("options.{key}: expected a string"))),
    }
}

fn opt_metadata(m: &Map<String, Value>) -> Result<Map<String, Value>, JsValue> {
    match m.get("metadata") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(bad("options.metadata: expected an object")),
    }
}

fn opt_attributes(m: &Map<String, Value>) -> Result<Vec<String>, JsValue> {
    match m.get("attributes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad("options.attributes: expected strings"))).collect()
        }
        Some(_) => Err(bad("options.attributes: expected an array of strings")),
    }
}

fn opt_schema(m: &Map<String, Value>) -> Result<Option<baton::DataSchema>, JsValue> {
    match m.get("dataSchema") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => match (o.get("name").and_then(Value::as_str), o.get("version").and_then(Value::as_str)) {
            (Some(n), Some(v)) => Ok(Some(baton::DataSchema { name: n.to_string(), version: v.to_string() })),
            _ => Err(bad("options.dataSchema: expected {name, version} strings")),
        },
        Some(_) => Err(bad("options.dataSchema: expected {name, version}")),
    }
}

fn end_options(opts: Option<String>, error: JsValue) -> Result<EndOptions, JsValue> {
    let m = parse_opts(opts)?;
    let mut end = EndOptions::default().metadata(opt_metadata(&m)?);
    if let Some(v) = m.get("output") {
        end = end.output(v.clone());
    }
    if !error.is_undefined() {
        let e = from_thrown(error);
        // The thrown value only names the status here; nothing is rethrown.
        if let Some(t) = e.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
            THROWN.with(|m| m.borrow_mut().remove(&t.0));
        }
        end =
            end.error(Error::new(e.kind(), e.message().to_string()).with_exception_type(e.exception_type().unwrap_or("Error").to_string()));
    }
    Ok(end)
}

// ----- handles -----

/// A stack of open scopes.
#[wasm_bindgen]
pub struct Stack {
    inner: baton::Stack,
}

/// A scope handle (cheap; does not keep the stack alive).
#[wasm_bindgen]
pub struct Scope {
    inner: ScopeHandle,
}

#[wasm_bindgen]
impl Scope {
    /// A second handle to the same scope (the facade passes clones where Rust takes ownership).
    #[wasm_bindgen(js_name = cloneHandle)]
    pub fn clone_handle(&self) -> Scope {
        Scope { inner: self.inner.clone() }
    }
    /// `{uuid, name, category, parentUuid, rootUuid, ended}` as JSON text.
    pub fn info(&self) -> String {
        let h = &self.inner;
        json_text(&serde_json::json!({
            "uuid": h.uuid().to_string(),
            "name": h.name(),
            "category": h.category().as_str(),
            "parentUuid": h.parent_uuid().map(|u| u.to_string()),
            "rootUuid": h.root_uuid().to_string(),
            "ended": h.is_ended(),
        }))
    }
    #[wasm_bindgen(getter)]
    pub fn ended(&self) -> bool {
        self.inner.is_ended()
    }
}

fn rt() -> &'static Runtime {
    Runtime::global()
}

#[wasm_bindgen(js_name = newStack)]
pub fn new_stack() -> Stack {
    Stack { inner: rt().new_stack() }
}

#[wasm_bindgen]
pub fn fork(stack: &Stack) -> Stack {
    Stack { inner: stack.inner.fork() }
}

#[wasm_bindgen(js_name = stackDepth)]
pub fn stack_depth(stack: &Stack) -> u32 {
    stack.inner.depth() as u32
}

#[wasm_bindgen(js_name = currentScope)]
pub fn current_scope(stack: &Stack) -> Option<Scope> {
    stack.inner.current().map(|inner| Scope { inner })
}

#[wasm_bindgen(js_name = propagationContext)]
pub fn propagation_context(stack: &Stack) -> String {
    stack.inner.propagation_context().to_string()
}

#[wasm_bindgen]
pub fn traceparent(stack: &Stack) -> Result<String, JsValue> {
    stack.inner.traceparent().map_err(to_js)
}

#[wasm_bindgen(js_name = stackFromPropagation)]
pub fn stack_from_propagation(context: &str) -> Result<Stack, JsValue> {
    let v = parse_json(context, "context")?;
    rt().stack_from_propagation(&v).map(|inner| Stack { inner }).map_err(to_js)
}

// ----- scopes and marks -----

/// Opens a scope. `opts`: JSON `{category, input, metadata, attributes, categoryProfile, dataSchema}`.
#[wasm_bindgen]
pub fn push(stack: &Stack, name: &str, opts: Option<String>, parent: Option<Scope>) -> Result<Scope, JsValue> {
    let m = parse_opts(opts)?;
    let mut o = ScopeOptions::new(name).metadata(opt_metadata(&m)?).attributes(opt_attributes(&m)?);
    if let Some(c) = opt_string(&m, "category")? {
        o = o.category(c.as_str());
    }
    if let Some(v) = m.get("input") {
        o = o.input(v.clone());
    }
    if let Some(v) = m.get("categoryProfile") {
        if !v.is_null() {
            o = o.category_profile(v.clone());
        }
    }
    o.data_schema = opt_schema(&m)?;
    if let Some(p) = parent {
        o = o.parent(&p.inner);
    }
    stack.inner.push(o).map(|inner| Scope { inner }).map_err(to_js)
}

/// Ends a scope. `opts`: JSON `{output, metadata}`; `error`: a thrown value or message (ERROR status).
#[wasm_bindgen]
pub fn pop(stack: &Stack, scope: &Scope, opts: Option<String>, error: JsValue) -> Result<(), JsValue> {
    let end = end_options(opts, error)?;
    stack.inner.pop(&scope.inner, end).map_err(to_js)
}

/// Emits a mark. `opts`: JSON `{data, metadata, category, categoryProfile, dataSchema}`.
#[wasm_bindgen]
pub fn mark(stack: &Stack, name: &str, opts: Option<String>, parent: Option<Scope>) -> Result<(), JsValue> {
    let m = parse_opts(opts)?;
    let mut o = MarkOptions::new(name).metadata(opt_metadata(&m)?);
    if let Some(v) = m.get("data") {
        o = o.data(v.clone());
    }
    o.category = opt_string(&m, "category")?.map(|c| c.as_str().into());
    o.category_profile = m.get("categoryProfile").filter(|v| !v.is_null()).cloned();
    o.data_schema = opt_schema(&m)?;
    o.parent = parent.map(|p| p.inner);
    stack.inner.mark(o).map_err(to_js)
}

/// Emits a metric mark. `measurements`: JSON number or array; `unit` optional.
#[wasm_bindgen]
pub fn metric(stack: &Stack, name: &str, measurements: &str, unit: Option<String>) -> Result<(), JsValue> {
    let v = parse_json(measurements, "measurements")?;
    stack.inner.metric(name, v, unit.as_deref()).map_err(to_js)
}

// ----- managed calls -----

/// Calls a JS function that takes and returns JSON text; a throw becomes the call's error.
fn call_json(f: &Function, input: &Value) -> baton::Result<Value> {
    call_json_with(f, input, None)
}

/// The `CallInfo` middleware receives, as JSON text (the core's writer, node/'s key names).
fn info_json(info: &baton::CallInfo) -> String {
    info.to_json(baton::KeyStyle::Camel)
}

fn call_js(f: &Function, input: &Value, info: Option<&baton::CallInfo>) -> Result<JsValue, JsValue> {
    let input = JsValue::from_str(&json_text(input));
    match info {
        Some(i) => f.call2(&JsValue::NULL, &input, &JsValue::from_str(&info_json(i))),
        None => f.call1(&JsValue::NULL, &input),
    }
}

fn call_json_with(f: &Function, input: &Value, info: Option<&baton::CallInfo>) -> baton::Result<Value> {
    match call_js(f, input, info) {
        Ok(r) => match r.as_string() {
            Some(t) => serde_json::from_str(&t).map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}"))),
            None if r.is_undefined() => Ok(Value::Null),
            None => Err(Error::internal("callback result: the facade must return JSON text")),
        },
        Err(e) => Err(from_thrown(e)),
    }
}

/// Like [`call_json`], but `undefined` (the facade's "omit") is `None`.
fn call_json_opt(f: &Function, input: &Value, info: &baton::CallInfo) -> baton::Result<Option<Value>> {
    match call_js(f, input, Some(info)) {
        Ok(r) if r.is_undefined() => Ok(None),
        Ok(r) => match r.as_string() {
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}"))),
            None => Err(Error::internal("callback result: the facade must return JSON text")),
        },
        Err(e) => Err(from_thrown(e)),
    }
}

/// A managed tool call with a synchronous callback (`(argsJson) => resultJson`).
/// `opts`: JSON `{toolCallId, metadata, attributes}`. Returns the result as JSON text.
#[wasm_bindgen]
pub fn tool(
    stack: &Stack,
    name: &str,
    args: &str,
    callback: &Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<String, JsValue> {
    let args = parse_json(args, "args")?;
    let m = parse_opts(opts)?;
    let options = ToolOptions {
        tool_call_id: opt_string(&m, "toolCallId")?,
        metadata: opt_metadata(&m)?,
        attributes: opt_attributes(&m)?,
        parent: parent.map(|p| p.inner),
    };
    stack.inner.tool(name, args, |a| call_json(callback, &a), options).map(|v| json_text(&v)).map_err(to_js)
}

/// -1 when something is registered; otherwise nothing is, so a managed tool call is just its
/// callback (the core's rule, `Stack::unobserved`) and the facade calls the function itself,
/// and the answer is where new work on `stack` is parented now (`Stack::current_id`, ≥ 0): the
/// facade reuses one fork of `stack` per position for async calls' functions. `-2` when it
/// fails as a call would (`already_shutdown`, `invalid_state`), with the error for `takeError`
/// (a number, as the per-call functions answer: see [`FAILED`]).
#[wasm_bindgen]
pub fn unobserved(stack: &Stack) -> f64 {
    match stack.inner.unobserved() {
        Ok(true) => stack.inner.current_id() as f64,
        Ok(false) => -1.0,
        Err(e) => {
            park(to_js(e));
            -2.0
        }
    }
}

/// A tool call the facade runs itself, and for an async call the fork it runs on.
type Entered = (baton::EnteredCall, Option<baton::Stack>);

thread_local! {
    /// Tool calls the facade runs itself (`enterTool` .. `exitTool`), by slot (id - 2). An
    /// async call's fork is held here too, and gets a JS object only if the function uses
    /// Baton (`enteredStack`): most functions never do, and every such object would live until
    /// a `FinalizationRegistry` callback, which needs a turn of the event loop.
    static ENTERED: RefCell<(Vec<Option<Entered>>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// The caller's position at the last async `enterTool` (`Stack::current_id`).
    static POSITION: std::cell::Cell<f64> = const { std::cell::Cell::new(-1.0) };
}

/// enterTool(stack, name, argsJson, opts, parent) → `0`: middleware sees the values, use the
/// managed path (`tool` / `callAsync`); `1`: nothing is registered, just call the function;
/// otherwise the id of the entered call for `exitTool`; `FAILED` with the error for `takeError`.
///
/// With only subscribers (and event middleware) registered, the facade runs the callback
/// itself between `enterTool` and `exitTool`: the core emits the same events as `tool`
/// (`Stack::enter_tool`), without the core's call machinery, the crossings into the callback
/// and the text round trips. `args` comes from the facade's `JSON.stringify` (kept as is).
///
/// `fork` (async calls): the call is entered on a fork of `stack`, so concurrent calls on
/// `stack` do not interleave with its scope. `enteredStack(id)` gives that fork while the call
/// runs, and `enteredPosition()` where the caller was (for the facade's pin of it).
#[wasm_bindgen(js_name = enterTool)]
pub fn enter_tool(stack: &Stack, name: &str, args: String, opts: Option<String>, parent: Option<Scope>, fork: bool) -> u32 {
    answer(enter_tool_with(stack, name, args, opts, parent, fork))
}

fn enter_tool_with(
    stack: &Stack,
    name: &str,
    args: String,
    opts: Option<String>,
    parent: Option<Scope>,
    fork: bool,
) -> Result<u32, JsValue> {
    let o = tool_options(opts, parent)?;
    if stack.inner.unobserved().map_err(to_js)? && !name.is_empty() {
        return Ok(1);
    }
    let payload = baton::Payload::from_json_trusted(args.into_boxed_str());
    let forked = fork.then(|| stack.inner.fork());
    let on = forked.as_ref().unwrap_or(&stack.inner);
    match on.enter_tool(name, || Ok(payload), o).map_err(to_js)? {
        None => Ok(0),
        Some(call) => Ok(hold_entered(stack, call, forked)),
    }
}

/// Holds an entered call (and an async call's fork) for `exitTool`; returns its id (≥ 2). For
/// an async call, publishes where the caller (`stack`) was (`enteredPosition`).
fn hold_entered(stack: &Stack, call: baton::EnteredCall, forked: Option<baton::Stack>) -> u32 {
    if forked.is_some() {
        POSITION.with(|p| p.set(stack.inner.current_id() as f64));
    }
    ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        let (slots, free) = &mut *e;
        match free.pop() {
            Some(i) => {
                slots[i as usize] = Some((call, forked));
                i + 2
            }
            None => {
                slots.push(Some((call, forked)));
                slots.len() as u32 + 1
            }
        }
    })
}

thread_local! {
    /// The request an entered LLM call's function gets, when the core's check changed it.
    static CHECKED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// enterLlm(stack, name, requestJson, opts, parent, fork) → `0`: nothing registered, or
/// middleware or a codec sees the values: use the managed path (`llm` / `callAsync`);
/// otherwise the id of the entered call for `exitTool` (`Stack::enter_llm`: the events of
/// `llm`). `takeCheckedRequest` then gives the request the function gets when the core's
/// check changed it (`headers` added). `fork` and `FAILED` as for `enterTool`.
#[wasm_bindgen(js_name = enterLlm)]
pub fn enter_llm(stack: &Stack, name: &str, request: &str, opts: Option<String>, parent: Option<Scope>, fork: bool) -> u32 {
    answer(enter_llm_with(stack, name, request, opts, parent, fork))
}

fn enter_llm_with(
    stack: &Stack,
    name: &str,
    request: &str,
    opts: Option<String>,
    parent: Option<Scope>,
    fork: bool,
) -> Result<u32, JsValue> {
    let options = llm_options(opts, parent)?;
    if stack.inner.unobserved().map_err(to_js)? && !name.is_empty() {
        return Ok(0);
    }
    let request = parse_json(request, "request")?;
    let forked = fork.then(|| stack.inner.fork());
    let on = forked.as_ref().unwrap_or(&stack.inner);
    let Some((call, checked)) = on.enter_llm(name, request, options).map_err(to_js)? else {
        return Ok(0);
    };
    CHECKED.with(|c| *c.borrow_mut() = checked.map(|v| json_text(&v)));
    Ok(hold_entered(stack, call, forked))
}

/// The request the last entered LLM call's function gets when the core's check changed it
/// (JSON text), once; `undefined` when it is the request as given.
#[wasm_bindgen(js_name = takeCheckedRequest)]
pub fn take_checked_request() -> Option<String> {
    CHECKED.with(|c| c.borrow_mut().take())
}

/// The caller's position at the last async `enterTool` (`Stack::current_id`).
#[wasm_bindgen(js_name = enteredPosition)]
pub fn entered_position() -> f64 {
    POSITION.with(|p| p.get())
}

/// The fork a running async entered call runs on (its scope current), or `undefined` when the
/// id names no running async call.
#[wasm_bindgen(js_name = enteredStack)]
pub fn entered_stack(id: u32) -> Option<Stack> {
    ENTERED.with(|e| {
        let e = e.borrow();
        let (_, fork) = e.0.get(id.wrapping_sub(2) as usize)?.as_ref()?;
        fork.clone().map(|inner| Stack { inner })
    })
}

/// exitTool(id, resultJson): ends an entered call with its result (its end event). Returns how
/// many events wait in the batch (the facade drains inline past its high-water mark), or
/// `FAILED` (the id names no running call).
#[wasm_bindgen(js_name = exitTool)]
pub fn exit_tool(id: u32, result: String) -> u32 {
    answer(take_entered(id).map(|(call, _fork)| {
        call.exit(Ok(baton::Payload::from_json_trusted(result.into_boxed_str())));
        batched()
    }))
}

/// failTool(id, thrown): ends an entered call whose function threw `thrown` (its end event with
/// ERROR status). Answers as `exitTool`. A function of its own so that the common exit passes
/// no JS value (each one is a slot in the module's table of JS values).
#[wasm_bindgen(js_name = failTool)]
pub fn fail_tool(id: u32, thrown: JsValue) -> u32 {
    answer(take_entered(id).map(|(call, _fork)| {
        let e = from_thrown(thrown);
        // The thrown value only names the status here; the facade rethrows it itself.
        if let Some(t) = e.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
            THROWN.with(|m| m.borrow_mut().remove(&t.0));
        }
        call.exit(Err(&e));
        batched()
    }))
}

/// Takes a running entered call out of its slot (the fork goes with it; a JS object made of it
/// by `enteredStack` keeps its own share).
fn take_entered(id: u32) -> Result<Entered, JsValue> {
    let call = ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        let (slots, free) = &mut *e;
        let call = slots.get_mut(id.wrapping_sub(2) as usize).and_then(Option::take);
        if call.is_some() {
            free.push(id - 2);
        }
        call
    });
    call.ok_or_else(|| to_js(Error::invalid_state("call: already ended")))
}

/// A managed LLM call with a synchronous callback. `request`: JSON `{headers, content}`;
/// `opts`: JSON `{modelName, metadata, attributes}`. Returns the response as JSON text.
#[wasm_bindgen]
pub fn llm(
    stack: &Stack,
    name: &str,
    request: &str,
    callback: &Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<String, JsValue> {
    let request = parse_json(request, "request")?;
    let options = llm_options(opts, parent)?;
    stack.inner.llm(name, request, |r| call_json(callback, &r), options).map(|v| json_text(&v)).map_err(to_js)
}

fn tool_options(opts: Option<String>, parent: Option<Scope>) -> Result<ToolOptions, JsValue> {
    let m = parse_opts(opts)?;
    Ok(ToolOptions {
        tool_call_id: opt_string(&m, "toolCallId")?,
        metadata: opt_metadata(&m)?,
        attributes: opt_attributes(&m)?,
        parent: parent.map(|p| p.inner),
    })
}

fn llm_options(opts: Option<String>, parent: Option<Scope>) -> Result<baton::LlmOptions, JsValue> {
    let m = parse_opts(opts)?;
    Ok(baton::LlmOptions {
        model_name: opt_string(&m, "modelName")?,
        metadata: opt_metadata(&m)?,
        attributes: opt_attributes(&m)?,
        parent: parent.map(|p| p.inner),
        chunk_marks: m.get("chunkMarks").and_then(Value::as_bool).unwrap_or(true),
        codec: opt_string(&m, "codec")?.map(|c| baton::codec::Codec::parse(&c)).transpose().map_err(to_js)?,
        response_codec: opt_string(&m, "responseCodec")?.map(|c| baton::codec::Codec::parse(&c)).transpose().map_err(to_js)?,
    })
}

/// Provider codecs: `op` is `decodeRequest`, `encodeRequest`, `decodeResponse` or
/// `aggregateStream`; values are JSON text; `original` only for `encodeRequest`.
#[wasm_bindgen]
pub fn codec(op: &str, codec: &str, value: &str, original: Option<String>) -> Result<String, JsValue> {
    use baton::codec::{self as c, Codec};
    let kind = Codec::parse(codec).map_err(to_js)?;
    let first = parse_json(value, "value")?;
    let fixed = |k: Option<c::CodecKind>, f: &dyn Fn(c::CodecKind) -> baton::Result<Value>| k.map_or(Ok(Value::Null), f);
    let out = match op {
        "decodeRequest" => fixed(kind.for_request(&first), &|k| c::decode_request(k, &first)),
        "encodeRequest" => {
            let original = parse_json(original.as_deref().unwrap_or("null"), "original")?;
            fixed(kind.for_request(&original), &|k| c::encode_request(k, &first, &original))
        }
        "decodeResponse" => fixed(kind.for_response(&first), &|k| c::decode_response_json(k, &first)),
        "aggregateStream" => {
            let chunks = first.as_array().ok_or_else(|| bad("chunks: expected an array"))?;
            let k = match kind {
                Codec::Kind(k) => Some(k),
                Codec::Auto => chunks.iter().find_map(c::detect_chunk),
            };
            fixed(k, &|k| c::aggregate_stream(k, chunks).map(|r| r.to_json()))
        }
        other => return Err(bad(format!("unknown codec op '{other}'"))),
    };
    out.map(|v| json_text(&v)).map_err(to_js)
}

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

// ----- async plumbing: JS Promises as futures, a task table polled from microtasks -----
//
// A core future (an async call, an async `next`, one chunk of an async stream) is a *task*: the
// facade polls it right away (`pollTask`) and again on a microtask whenever its waker fires.
// A JS callback that returns a Promise gives the facade a slot id (`newPending`) instead of a
// value; the facade `settle`s the slot when the Promise settles, which wakes the task.
//
// The core drives sync calls (`toolSync`, a sync intercept's `next`, `llmStreamSync`) with its
// own `block_on`. A Promise can never settle inside that (there is one thread, and it would be
// waiting for itself), so a `PromiseFuture` polled by any waker but ours fails at once with
// `invalid_state` instead of hanging.

/// A JS value now, or the thrown value / Baton error, as the facade receives it.
type JsOutcome = Result<JsValue, JsValue>;
type Task = Pin<Box<dyn Future<Output = JsOutcome>>>;

/// What a watched Promise settled with: JSON (None = `undefined`), or an error.
type Settled = baton::Result<Option<Value>>;

#[derive(Default)]
struct Slot {
    outcome: Option<Settled>,
    waker: Option<Waker>,
}

thread_local! {
    static TASKS: RefCell<HashMap<u32, Task>> = RefCell::new(HashMap::new());
    static SLOTS: RefCell<HashMap<u32, Slot>> = RefCell::new(HashMap::new());
    /// The `next` of every async execution intercept now running, by token.
    static ASYNC_NEXTS: RefCell<HashMap<u32, baton::AsyncNext>> = RefCell::new(HashMap::new());
    /// True while an async stream call wraps its chunks (stream intercepts then prefer async
    /// iteration of what they return).
    static STREAM_ASYNC: Cell<bool> = const { Cell::new(false) };
}

// Our waker: the data pointer is the task id; waking asks the facade to poll it on a microtask.
fn vt_clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}
fn vt_wake(data: *const ()) {
    if let Some(f) = SCHEDULER.with(|s| s.borrow().clone()) {
        let _ = f.call1(&JsValue::NULL, &JsValue::from(data as usize as u32));
    }
}
fn vt_drop(_: *const ()) {}
static VTABLE: RawWakerVTable = RawWakerVTable::new(vt_clone, vt_wake, vt_wake, vt_drop);

fn task_waker(id: u32) -> Waker {
    // SAFETY: the vtable functions never dereference the data pointer (it is only an id).
    unsafe { Waker::from_raw(RawWaker::new(id as usize as *const (), &VTABLE)) }
}

/// True when the future is polled by our task executor (not by the core's `block_on`).
fn ours(cx: &Context<'_>) -> bool {
    std::ptr::eq(cx.waker().vtable(), &VTABLE)
}

/// Sets the facade's `schedulePoll(taskId)`.
#[wasm_bindgen(js_name = setScheduler)]
pub fn set_scheduler(f: Function) {
    SCHEDULER.with(|s| *s.borrow_mut() = Some(f));
}

fn spawn(fut: impl Future<Output = JsOutcome> + 'static) -> u32 {
    let id = next_id();
    TASKS.with(|t| t.borrow_mut().insert(id, Box::pin(fut)));
    id
}

/// Polls a task. Returns `undefined` while pending; when done, `{ok: true, value}` or
/// `{ok: false, error}`, and the task is removed.
#[wasm_bindgen(js_name = pollTask)]
pub fn poll_task(id: u32) -> JsValue {
    let Some(mut fut) = TASKS.with(|t| t.borrow_mut().remove(&id)) else { return JsValue::UNDEFINED };
    let waker = task_waker(id);
    match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Pending => {
            TASKS.with(|t| t.borrow_mut().insert(id, fut));
            JsValue::UNDEFINED
        }
        Poll::Ready(r) => {
            let obj = Object::new();
            match r {
                Ok(v) => {
                    set(&obj, "ok", &JsValue::TRUE);
                    set(&obj, "value", &v);
                }
                Err(e) => {
                    set(&obj, "ok", &JsValue::FALSE);
                    set(&obj, "error", &e);
                }
            }
            obj.into()
        }
    }
}

/// A fresh slot for a Promise the facade is about to watch.
#[wasm_bindgen(js_name = newPending)]
pub fn new_pending() -> u32 {
    let id = next_id();
    SLOTS.with(|s| s.borrow_mut().insert(id, Slot::default()));
    id
}

fn fill_slot(id: u32, outcome: Settled) {
    let waker = SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        // No slot: its future was dropped (or gave up in a sync call); nobody waits.
        let slot = s.get_mut(&id)?;
        slot.outcome = Some(outcome);
        slot.waker.take()
    });
    if let Some(w) = waker {
        w.wake();
    }
}

/// Settles a watched Promise: `ok` with JSON text (or `undefined`), or the thrown value.
#[wasm_bindgen]
pub fn settle(id: u32, ok: bool, value: JsValue) {
    let outcome = if !ok {
        Err(from_thrown(value))
    } else if value.is_undefined() {
        Ok(None)
    } else {
        match value.as_string() {
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}"))),
            None => Err(Error::internal("callback result: the facade must settle with JSON text")),
        }
    };
    fill_slot(id, outcome);
}

/// Settles a watched Promise of a stream callback with the chunk iterator it resolved to.
#[wasm_bindgen(js_name = settleIter)]
pub fn settle_iter(id: u32, iter: JsValue) {
    let iter_id = next_id();
    ITERS.with(|m| m.borrow_mut().insert(iter_id, iter));
    fill_slot(id, Ok(Some(Value::from(iter_id))));
}

/// A JS Promise the facade watches (slot id from `newPending`).
struct PromiseFuture(u32);

impl Future for PromiseFuture {
    type Output = Settled;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Settled> {
        let id = self.0;
        let mine = ours(cx);
        let r = SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            let Some(slot) = s.get_mut(&id) else {
                return Some(Err(Error::internal("a watched Promise lost its slot")));
            };
            if let Some(o) = slot.outcome.take() {
                s.remove(&id);
                return Some(o);
            }
            if mine {
                slot.waker = Some(cx.waker().clone());
                return None;
            }
            s.remove(&id);
            Some(Err(Error::invalid_state(
                "a callback returned a Promise inside a synchronous call (a *Sync call, the `next` of a sync execution intercept, or a sync read of a stream); use the async form",
            )))
        });
        match r {
            Some(o) => Poll::Ready(o),
            None => Poll::Pending,
        }
    }
}

impl Drop for PromiseFuture {
    fn drop(&mut self) {
        let _ = SLOTS.try_with(|s| s.try_borrow_mut().map(|mut s| s.remove(&self.0)));
    }
}

/// What a JS callback gave back: a value now (None = `undefined`), or a watched Promise.
enum Later {
    Now(Option<Value>),
    Pending(u32),
}

/// Reads a facade callback result: JSON text, `undefined`, or `{pending: slotId}`.
fn later_of(r: JsValue) -> baton::Result<Later> {
    if let Some(t) = r.as_string() {
        return serde_json::from_str(&t)
            .map(|v| Later::Now(Some(v)))
            .map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}")));
    }
    if r.is_undefined() {
        return Ok(Later::Now(None));
    }
    match get(&r, "pending").as_f64() {
        Some(id) => Ok(Later::Pending(id as u32)),
        None => Err(Error::internal("callback result: the facade must return JSON text, undefined or {pending}")),
    }
}

/// The outcome of a JS callback as a `Send` future (only ids cross the await).
fn later_future(l: baton::Result<Later>) -> baton::BoxFuture<Settled> {
    match l {
        Err(e) => Box::pin(std::future::ready(Err(e))),
        Ok(Later::Now(v)) => Box::pin(std::future::ready(Ok(v))),
        Ok(Later::Pending(id)) => Box::pin(PromiseFuture(id)),
    }
}

/// Calls `f(input, info?)` and returns its (possibly later) outcome.
fn call_later(f: &Function, input: &Value, info: Option<&baton::CallInfo>) -> baton::BoxFuture<Settled> {
    later_future(call_js(f, input, info).map_err(from_thrown).and_then(later_of))
}

fn json_out(r: baton::Result<Value>) -> JsOutcome {
    r.map(|v| JsValue::from_str(&json_text(&v))).map_err(to_js)
}

/// The callback of an async call: the JS function (by id) returns JSON text, or `{pending}`.
fn async_callback(fid: u32) -> impl Fn(Value) -> baton::BoxFuture<baton::Result<Value>> + Send + Sync + 'static {
    move |input: Value| {
        let fut = match stored(fid) {
            Some(f) => call_later(&f, &input, None),
            None => Box::pin(std::future::ready(Err(Error::not_found("callback was removed")))),
        };
        Box::pin(async move { Ok(fut.await?.unwrap_or(Value::Null)) })
    }
}

/// Starts an async managed tool (`kind` = `tool`) or LLM (`llm`) call whose callback may return
/// a Promise. Returns a task id; the facade polls it with `pollTask`.
#[wasm_bindgen(js_name = callAsync)]
pub fn call_async(
    stack: &Stack,
    kind: &str,
    name: &str,
    input: &str,
    callback: Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<u32, JsValue> {
    let input = parse_json(input, "input")?;
    let fid = next_id();
    // The callback runs only when the future is polled, so it is stored after the options
    // are known to be valid (nothing to clean up on an early error).
    let fut: baton::BoxFuture<baton::Result<Value>> = match kind {
        "tool" => {
            let o = tool_options(opts, parent)?;
            Box::pin(stack.inner.tool_async(name, input, async_callback(fid), o))
        }
        "llm" => {
            let o = llm_options(opts, parent)?;
            Box::pin(stack.inner.llm_async(name, input, async_callback(fid), o))
        }
        _ => return Err(bad(format!("kind: expected 'tool' or 'llm', got '{kind}'"))),
    };
    FUNCTIONS.with(|m| m.borrow_mut().insert(fid, callback));
    Ok(spawn(async move {
        let _forget = Forget(fid);
        json_out(fut.await)
    }))
}

/// Removes a JS function from the table when dropped.
struct Forget(u32);

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = FUNCTIONS.try_with(|m| m.try_borrow_mut().map(|mut m| m.remove(&self.0)));
    }
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
struct ForgetNext(u32);

impl Drop for ForgetNext {
    fn drop(&mut self) {
        let _ = ASYNC_NEXTS.try_with(|n| n.try_borrow_mut().map(|mut n| n.remove(&self.0)));
    }
}

// ----- streams -----

/// The chunks of a JS stream callback or stream intercept: the facade's iterator object, whose
/// `next()` returns a chunk's JSON text, `undefined` at the end, or `{pending}` for a Promise
/// of either (async iterables). Only ids cross the core (which wants `Send`); dropping it early
/// calls the iterator's `return()`.
struct JsChunks {
    iter: u32,
    pending: Option<PromiseFuture>,
}

impl JsChunks {
    fn new(iter: JsValue) -> JsChunks {
        let id = next_id();
        ITERS.with(|m| m.borrow_mut().insert(id, iter));
        JsChunks { iter: id, pending: None }
    }
    fn end(&self) {
        ITERS.with(|m| m.borrow_mut().remove(&self.iter));
    }
}

impl futures_core::Stream for JsChunks {
    type Item = baton::Result<Value>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending.is_none() {
            let Some(it) = ITERS.with(|m| m.borrow().get(&self.iter).cloned()) else { return Poll::Ready(None) };
            let Ok(next) = get(&it, "next").dyn_into::<Function>() else {
                return Poll::Ready(Some(Err(Error::internal("chunk iterator: no next()"))));
            };
            match next.call0(&it).map_err(from_thrown).and_then(later_of) {
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(Later::Now(None)) => {
                    self.end();
                    return Poll::Ready(None);
                }
                Ok(Later::Now(Some(v))) => return Poll::Ready(Some(Ok(v))),
                Ok(Later::Pending(id)) => self.pending = Some(PromiseFuture(id)),
            }
        }
        let Some(p) = self.pending.as_mut() else { return Poll::Ready(None) };
        match Pin::new(p).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.pending = None;
                match r {
                    Ok(None) => {
                        self.end();
                        Poll::Ready(None)
                    }
                    Ok(Some(v)) => Poll::Ready(Some(Ok(v))),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

impl Iterator for JsChunks {
    type Item = baton::Result<Value>;
    /// The sync read: an async source (a Promise step) fails with `invalid_state`.
    fn next(&mut self) -> Option<Self::Item> {
        match futures_core::Stream::poll_next(Pin::new(self), &mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r,
            Poll::Pending => Some(Err(Error::invalid_state("an asynchronous chunk source cannot be read synchronously"))),
        }
    }
}

impl Drop for JsChunks {
    fn drop(&mut self) {
        if let Some(it) = ITERS.with(|m| m.borrow_mut().remove(&self.iter)) {
            if let Ok(ret) = get(&it, "return").dyn_into::<Function>() {
                let _ = ret.call0(&it);
            }
        }
    }
}

/// A stream (the caller's, or the inner one of a stream intercept) read one chunk at a time,
/// synchronously or as a task. The stream is taken out of the slot while a read is in flight.
struct StreamSlot<S> {
    stream: Option<S>,
    busy: bool,
    closed: bool,
}

type SharedSlot<S> = Rc<RefCell<StreamSlot<S>>>;

fn shared<S>(s: S) -> SharedSlot<S> {
    Rc::new(RefCell::new(StreamSlot { stream: Some(s), busy: false, closed: false }))
}

/// The next chunk, read synchronously (JSON text, or `undefined` at the end).
fn read_sync<S: futures_core::Stream<Item = baton::Result<Value>> + Unpin>(slot: &SharedSlot<S>) -> Result<Option<String>, JsValue> {
    if slot.borrow().busy {
        return Err(to_js(Error::invalid_state("a chunk is already being read asynchronously")));
    }
    let mut s = slot.borrow_mut().stream.take();
    let Some(stream) = s.as_mut() else { return Ok(None) };
    let r = match futures_core::Stream::poll_next(Pin::new(stream), &mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Some(Err(Error::invalid_state("an asynchronous chunk source cannot be read synchronously; use the async form"))),
    };
    match r {
        Some(Ok(v)) => {
            slot.borrow_mut().stream = s;
            Ok(Some(json_text(&v)))
        }
        // Ended or failed: dropping the stream now emits nothing more.
        Some(Err(e)) => Err(to_js(e)),
        None => Ok(None),
    }
}

/// The next chunk as a task (value: JSON text, or `undefined` at the end).
fn read_async<S: futures_core::Stream<Item = baton::Result<Value>> + Unpin + 'static>(slot: &SharedSlot<S>) -> Result<u32, JsValue> {
    let taken = {
        let mut sl = slot.borrow_mut();
        if sl.busy {
            return Err(to_js(Error::invalid_state("a chunk is already being read; await the previous next() first")));
        }
        let taken = sl.stream.take();
        sl.busy = taken.is_some();
        taken
    };
    let slot = slot.clone();
    Ok(spawn(async move {
        let Some(mut s) = taken else { return Ok(JsValue::UNDEFINED) };
        let r = std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut s), cx)).await;
        let mut sl = slot.borrow_mut();
        sl.busy = false;
        match r {
            Some(Ok(v)) => {
                if !sl.closed {
                    sl.stream = Some(s);
                }
                Ok(JsValue::from_str(&json_text(&v)))
            }
            Some(Err(e)) => Err(to_js(e)),
            None => Ok(JsValue::UNDEFINED),
        }
    }))
}

fn close_slot<S>(slot: &SharedSlot<S>) {
    let s = {
        let mut sl = slot.borrow_mut();
        sl.closed = true;
        sl.stream.take()
    };
    drop(s);
}

/// The inner chunks a stream execution intercept wraps.
#[wasm_bindgen]
pub struct ChunkSource {
    inner: SharedSlot<baton::ChunkStream>,
}

#[wasm_bindgen]
impl ChunkSource {
    /// The next inner chunk as JSON text, or `undefined` at the end (sync sources only).
    pub fn next(&self) -> Result<Option<String>, JsValue> {
        read_sync(&self.inner)
    }
    /// The next inner chunk as a task (async sources too).
    #[wasm_bindgen(js_name = nextAsync)]
    pub fn next_async(&self) -> Result<u32, JsValue> {
        read_async(&self.inner)
    }
}

/// Registers a stream execution intercept: `callback(source, ctx, isAsync)` returns the facade's
/// chunk iterator over the chunks it produces (pulled lazily, as the caller consumes).
#[wasm_bindgen(js_name = registerStreamIntercept)]
pub fn register_stream_intercept(name: &str, callback: Function, priority: i32, scope: Option<Scope>) -> Result<(), JsValue> {
    let id = next_id();
    FUNCTIONS.with(|m| m.borrow_mut().insert(id, callback));
    let mw = Middleware::LlmStreamExecutionIntercept(Arc::new(move |ctx: &baton::CallCtx, inner: baton::ChunkStream| {
        let f = stored(id).ok_or_else(|| Error::not_found("middleware callback was removed"))?;
        let src: JsValue = ChunkSource { inner: shared(inner) }.into();
        let c: JsValue = CallContext { inner: ctx.clone() }.into();
        let is_async = JsValue::from_bool(STREAM_ASYNC.with(Cell::get));
        let it = f.call3(&JsValue::NULL, &src, &c, &is_async).map_err(from_thrown)?;
        Ok(Box::pin(JsChunks::new(it)) as baton::ChunkStream)
    }));
    rt().register(registration(name, priority, scope, false), mw).map_err(|e| {
        FUNCTIONS.with(|m| m.borrow_mut().remove(&id));
        to_js(e)
    })
}

/// Runs `f` with [`STREAM_ASYNC`] set to `value` (restored afterwards).
fn with_stream_mode<R>(value: bool, f: impl FnOnce() -> R) -> R {
    let prev = STREAM_ASYNC.with(|m| m.replace(value));
    let r = f();
    STREAM_ASYNC.with(|m| m.set(prev));
    r
}

/// An LLM stream the facade pulls itself (`enterLlmStream`): only subscribers (and event
/// middleware) see it, so there is no need for the core's stream machinery and a crossing into
/// the source per pull. The call runs on a fork of the caller's stack with its scope current
/// (`stack()`), under which the facade runs the source; each chunk is reported with `chunk`
/// and the end with `finish`. Collected (or freed) before `finish`, the stream ends as
/// cancelled, as a dropped managed stream does.
#[wasm_bindgen]
pub struct EnteredLlmStream {
    inner: RefCell<Option<baton::EnteredStream>>,
    stack: baton::Stack,
    request: RefCell<Option<Value>>,
}

/// enterLlmStream(stack, name, requestJson, opts, parent) → an entered stream, or `undefined`
/// when middleware or a codec sees the stream's values (use `llmStream` / `llmStreamAsync`).
#[wasm_bindgen(js_name = enterLlmStream)]
pub fn enter_llm_stream(
    stack: &Stack,
    name: &str,
    request: &str,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<Option<EnteredLlmStream>, JsValue> {
    let request = parse_json(request, "request")?;
    let options = llm_options(opts, parent)?;
    let fork = stack.inner.fork();
    let Some(mut entered) = fork.enter_llm_stream(name, request, options).map_err(to_js)? else {
        return Ok(None);
    };
    let request = entered.take_request();
    entered.push();
    Ok(Some(EnteredLlmStream { inner: RefCell::new(Some(entered)), stack: fork, request: RefCell::new(request) }))
}

#[wasm_bindgen]
impl EnteredLlmStream {
    /// The fork the stream runs on, its scope current: the facade runs the source under it.
    pub fn stack(&self) -> Stack {
        Stack { inner: self.stack.clone() }
    }
    /// The request as JSON text for the source's callback (checked, `headers` added when it
    /// had none), once.
    #[wasm_bindgen(js_name = takeRequest)]
    pub fn take_request(&self) -> Option<String> {
        self.request.borrow_mut().take().map(|v| json_text(&v))
    }
    /// Records the next chunk (JSON text from the facade's `JSON.stringify`). Returns how many
    /// events wait in the batch, or `FAILED` (the stream ended) with the error for `takeError`:
    /// a number, as the per-call functions answer.
    pub fn chunk(&self, text: String) -> u32 {
        let mut guard = self.inner.borrow_mut();
        let Some(stream) = guard.as_mut() else { return answer(Err(to_js(Error::invalid_state("stream: already ended")))) };
        stream.chunk(|| baton::Payload::from_json_trusted(text.into_boxed_str()));
        drop(guard);
        batched()
    }
    /// Ends the stream: `ok` with the recorded chunks; else `ERROR` from `thrown`, or cancelled
    /// when `thrown` is undefined (the consumer stopped early). Ending twice does nothing.
    /// Returns how many events wait in the batch.
    pub fn finish(&self, ok: bool, thrown: JsValue) -> u32 {
        let Some(stream) = self.inner.borrow_mut().take() else { return batched() };
        stream.pop();
        if ok {
            stream.finish(Ok(()));
        } else if thrown.is_undefined() {
            drop(stream);
        } else {
            let e = from_thrown(thrown);
            // The thrown value only names the status here; the facade rethrows it itself.
            if let Some(t) = e.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
                THROWN.with(|m| m.borrow_mut().remove(&t.0));
            }
            stream.finish(Err(&e));
        }
        batched()
    }
}

/// A managed LLM stream, pulled one chunk at a time.
#[wasm_bindgen]
pub struct LlmStreamHandle {
    inner: SharedSlot<baton::stream::LlmStream>,
}

#[wasm_bindgen]
impl LlmStreamHandle {
    /// The next chunk as JSON text, or `undefined` at the end (sync read).
    pub fn next(&self) -> Result<Option<String>, JsValue> {
        read_sync(&self.inner)
    }
    /// The next chunk as a task (async read).
    #[wasm_bindgen(js_name = nextAsync)]
    pub fn next_async(&self) -> Result<u32, JsValue> {
        read_async(&self.inner)
    }
    /// Stops early: the call ends as cancelled (unless it already ended).
    pub fn close(&self) {
        close_slot(&self.inner);
    }
}

/// A managed LLM stream read synchronously: `callback(requestJson)` returns the facade's chunk
/// iterator (sync iterables only).
#[wasm_bindgen(js_name = llmStream)]
pub fn llm_stream(
    stack: &Stack,
    name: &str,
    request: &str,
    callback: &Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<LlmStreamHandle, JsValue> {
    let request = parse_json(request, "request")?;
    let options = llm_options(opts, parent)?;
    let cb = |req: Value| -> baton::Result<JsChunks> {
        let it = callback.call1(&JsValue::NULL, &JsValue::from_str(&json_text(&req))).map_err(from_thrown)?;
        Ok(JsChunks::new(it))
    };
    with_stream_mode(false, || stack.inner.llm_stream(name, request, cb, options))
        .map(|s| LlmStreamHandle { inner: shared(s) })
        .map_err(to_js)
}

/// The async form: `callback(requestJson)` returns a chunk iterator (sync or async) or
/// `{pending}` for a Promise of one (settled with `settleIter`). Returns a task id whose value
/// is the `LlmStreamHandle`.
#[wasm_bindgen(js_name = llmStreamAsync)]
pub fn llm_stream_async(
    stack: &Stack,
    name: &str,
    request: &str,
    callback: Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<u32, JsValue> {
    let request = parse_json(request, "request")?;
    let options = llm_options(opts, parent)?;
    let fid = next_id();
    FUNCTIONS.with(|m| m.borrow_mut().insert(fid, callback));
    let cb = move |req: Value| {
        let first = (|| -> baton::Result<Result<JsChunks, u32>> {
            let f = stored(fid).ok_or_else(|| Error::not_found("callback was removed"))?;
            let r = f.call1(&JsValue::NULL, &JsValue::from_str(&json_text(&req))).map_err(from_thrown)?;
            match get(&r, "pending").as_f64() {
                Some(id) => Ok(Err(id as u32)),
                None => Ok(Ok(JsChunks::new(r))),
            }
        })();
        async move {
            let chunks = match first? {
                Ok(c) => c,
                Err(id) => {
                    let iter =
                        PromiseFuture(id).await?.and_then(|v| v.as_u64()).ok_or_else(|| Error::internal("stream callback: no iterator"))?;
                    JsChunks { iter: iter as u32, pending: None }
                }
            };
            Ok(Box::pin(chunks) as baton::ChunkStream)
        }
    };
    let mut fut = Box::pin(stack.inner.llm_stream_async(name, request, cb, options));
    Ok(spawn(async move {
        let _forget = Forget(fid);
        let r = std::future::poll_fn(|cx| with_stream_mode(true, || fut.as_mut().poll(cx))).await;
        r.map(|s| JsValue::from(LlmStreamHandle { inner: shared(s) })).map_err(to_js)
    }))
}

// ----- middleware and subscribers -----

fn registration(name: &str, priority: i32, scope: Option<Scope>, break_chain: bool) -> Registration {
    let mut r = Registration::new(name).priority(priority).break_chain(break_chain);
    if let Some(s) = scope {
        r = r.scope(&s.inner);
    }
    r
}

fn stored(id: u32) -> Option<Function> {
    FUNCTIONS.with(|m| m.borrow().get(&id).cloned())
}

// ----- subscribers: events are batched here and handed to the facade as text -----
//
// A JS subscriber is a `BatchSubscriber` with the facade's id. The core's drain calls it for
// each event; it writes the event's ATOF JSON once into one shared text, however many
// subscribers receive it, with the event's layout (`Event::write_json_layout`: where each
// top-level value lies and its form), and records who receives which event. The facade takes
// the batch (`takeEvents` + `takenMeta`: two crossings per drain, not one per event and
// subscriber), slices each event out of the text (for `format: 'json'`) or builds its object
// from the layout, parsing only the structured values, once for every subscriber that wants
// objects, and calls them in order, outside any wasm call (so a subscriber may emit marks).

/// Marks a subscriber's removal in the deliveries (its `close`): the facade forgets the id
/// after delivering what came before.
const CLOSED: u32 = u32::MAX;

struct Batch {
    /// The events' JSON, back to back (UTF-8; reused between drains).
    text: Vec<u8>,
    /// Where each event ends in `text`, in UTF-16 units (as JS strings index).
    ends: Vec<u32>,
    /// UTF-16 length of `text`.
    units: u32,
    /// (subscriber id, event index or CLOSED), in delivery order.
    deliveries: Vec<u32>,
    /// The last event written (consecutive deliveries of one event to several subscribers
    /// share its text).
    last: Option<(baton::Uuid, baton::EventKind)>,
    /// Per event, [`LAYOUT`] numbers: its kind, then per `baton::EventField` the value's form
    /// and where it starts and ends, in UTF-16 units from the start of the batch text.
    layouts: Vec<u32>,
    /// The taken batch's `[events, ends..., layouts..., deliveries...]` (reused).
    meta: Vec<u32>,
    /// The taken batch's text (swapped with `text`; the facade reads it from memory).
    taken: Vec<u8>,
    /// Scratch for one event's layout.
    scratch: baton::EventLayout,
}

/// Numbers per event in `Batch::layouts` (the facade's `LAYOUT`, which must agree).
const LAYOUT: usize = baton::EventLayout::NUMBERS;
const _: () = assert!(LAYOUT == 34, "wasm/lib/api.js reads 34 numbers per event");

thread_local! {
    static BATCH: RefCell<Batch> = const {
        RefCell::new(Batch {
            text: Vec::new(),
            ends: Vec::new(),
            units: 0,
            deliveries: Vec::new(),
            last: None,
            layouts: Vec::new(),
            meta: Vec::new(),
            taken: Vec::new(),
            scratch: baton::EventLayout::EMPTY,
        })
    };
}

struct BatchSubscriber(u32);

impl BatchSubscriber {
    fn push(&self, event: Option<&baton::Event>) {
        BATCH.with(|b| {
            let mut b = b.borrow_mut();
            let b = &mut *b;
            let index = match event {
                Some(e) => {
                    if b.last != Some((e.uuid, e.kind)) || b.ends.is_empty() {
                        let start = b.text.len();
                        e.write_json_layout(&mut b.text, &mut b.scratch);
                        let written = &b.text[start..];
                        let units = units(written);
                        if units as usize != written.len() {
                            b.scratch.to_utf16(written);
                        }
                        let base = b.units;
                        b.layouts.extend_from_slice(&b.scratch.numbers(base));
                        b.units += units;
                        b.ends.push(b.units);
                        b.last = Some((e.uuid, e.kind));
                    }
                    b.ends.len() as u32 - 1
                }
                None => CLOSED,
            };
            b.deliveries.push(self.0);
            b.deliveries.push(index);
        });
    }
}

/// UTF-16 length of UTF-8 text (ASCII, the usual case, has one unit per byte).
fn units(bytes: &[u8]) -> u32 {
    if bytes.is_ascii() {
        bytes.len() as u32
    } else {
        // SAFETY: only UTF-8 is written to the batch (`write_json_layout`).
        unsafe { std::str::from_utf8_unchecked(bytes) }.encode_utf16().count() as u32
    }
}

impl baton::Subscriber for BatchSubscriber {
    fn on_event(&self, event: &baton::Event) -> baton::Result<()> {
        self.push(Some(event));
        Ok(())
    }
    fn close(&self) -> baton::Result<()> {
        self.push(None);
        Ok(())
    }
}

/// Events waiting for the facade: queued in the core or batched here (it drains inline past
/// a high-water mark).
fn batched() -> u32 {
    let queued = rt().backlog().min(u32::MAX as u64) as u32;
    BATCH.with(|b| b.borrow().ends.len() as u32).saturating_add(queued)
}

/// Registers a subscriber the facade delivers to: `id` is the facade's. Events reach it
/// through `takeEvents` (see above), in emission order.
#[wasm_bindgen]
pub fn subscribe(name: &str, id: u32, priority: i32, scope: Option<Scope>) -> Result<(), JsValue> {
    let mw = Middleware::Subscriber(Arc::new(BatchSubscriber(id)));
    rt().register(registration(name, priority, scope, false), mw).map_err(to_js)
}

/// Delivers what the core has queued into the batch and takes it: returns the byte length
/// of the events' text (UTF-8, `takenText` until the next take), or -1 when nobody has
/// anything to receive. `takenMeta` then gives its layout. The facade
/// decodes the bytes itself: an ASCII batch (the usual case) is a Latin-1 copy in Node,
/// about four times faster than `TextDecoder`.
#[wasm_bindgen(js_name = takeEvents)]
pub fn take_events() -> i32 {
    rt().drain();
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let b = &mut *b;
        if b.deliveries.is_empty() {
            return -1;
        }
        std::mem::swap(&mut b.text, &mut b.taken);
        b.text.clear();
        b.meta.clear();
        b.meta.push(b.ends.len() as u32);
        b.meta.extend_from_slice(&b.ends);
        b.meta.extend_from_slice(&b.layouts);
        b.meta.extend_from_slice(&b.deliveries);
        b.ends.clear();
        b.layouts.clear();
        b.deliveries.clear();
        b.units = 0;
        b.last = None;
        b.taken.len() as i32
    })
}

/// The text of the batch `takeEvents` took, as a view on the module's memory: valid until
/// the next call into the module (which may grow the memory), so the facade copies it out
/// at once.
#[wasm_bindgen(js_name = takenText)]
pub fn taken_text() -> js_sys::Uint8Array {
    // SAFETY: the view is read by the facade before it calls into the module again; nothing
    // allocates or frees in between (see above).
    BATCH.with(|b| unsafe { js_sys::Uint8Array::view(&b.borrow().taken) })
}

/// The layout of the batch `takeEvents` took: `[n, end_0..end_n-1, layouts (LAYOUT per
/// event), (id, index)...]` (offsets in UTF-16 units; index `0xffffffff`: the subscriber was
/// removed).
///
/// A view on the module's memory, like `takenText`: the facade copies it out at once.
#[wasm_bindgen(js_name = takenMeta)]
pub fn taken_meta() -> js_sys::Uint32Array {
    // SAFETY: read by the facade before it calls into the module again (see `takenText`).
    BATCH.with(|b| unsafe { js_sys::Uint32Array::view(&b.borrow().meta) })
}

/// `EventInfo` as JSON text (the core's writer, node/'s key names).
fn event_info_json(info: &baton::EventInfo) -> String {
    info.to_json(baton::KeyStyle::Camel)
}

/// Calls `f(a?, b)` and parses its JSON text result; `undefined` is `None`.
fn call_raw(f: &Function, a: Option<String>, b: String) -> baton::Result<Option<Value>> {
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
    inner: baton::CallCtx,
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

// ----- plugins -----

/// An export sink whose ATOF lines and ATIF documents go to JS functions (by id).
struct JsExportSink {
    atof: Option<u32>,
    atif: Option<u32>,
}

impl JsExportSink {
    fn call(id: u32, args: &[JsValue]) -> baton::Result<()> {
        let f = stored(id).ok_or_else(|| Error::not_found("export sink function was removed"))?;
        let r = match args {
            [a] => f.call1(&JsValue::NULL, a),
            [a, b] => f.call2(&JsValue::NULL, a, b),
            _ => return Err(Error::internal("export sink: unexpected arity")),
        };
        r.map(|_| ()).map_err(|e| {
            let err = from_thrown(e);
            if let Some(t) = err.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
                THROWN.with(|m| m.borrow_mut().remove(&t.0));
            }
            Error::callback_failed(err.message().to_string())
        })
    }
}

impl baton::export::sink::ExportSink for JsExportSink {
    fn accepts_atof(&self) -> bool {
        self.atof.is_some()
    }
    fn accepts_atif(&self) -> bool {
        self.atif.is_some()
    }
    fn atof_line(&self, line: &str) -> baton::Result<()> {
        let id = self.atof.ok_or_else(|| Error::invalid_state("this export sink takes no ATOF lines"))?;
        Self::call(id, &[JsValue::from_str(line)])
    }
    fn atif_document(&self, session_id: &str, file_name: &str, document: &Value) -> baton::Result<()> {
        let id = self.atif.ok_or_else(|| Error::invalid_state("this export sink takes no ATIF documents"))?;
        let info = json_text(&serde_json::json!({"sessionId": session_id, "fileName": file_name}));
        Self::call(id, &[JsValue::from_str(&json_text(document)), JsValue::from_str(&info)])
    }
}

impl Drop for JsExportSink {
    fn drop(&mut self) {
        for id in [self.atof, self.atif].into_iter().flatten() {
            let _ = FUNCTIONS.try_with(|m| m.try_borrow_mut().map(|mut m| m.remove(&id)));
        }
    }
}

/// Registers an export sink named `name` for the observability component: `atof(line)` gets
/// each ATOF line, `atif(documentJson, infoJson)` each finished trajectory (either may be absent).
#[wasm_bindgen(js_name = registerExportSink)]
pub fn register_export_sink(name: &str, atof: Option<Function>, atif: Option<Function>) -> Result<(), JsValue> {
    if atof.is_none() && atif.is_none() {
        return Err(bad("sink: give an atof and/or an atif function"));
    }
    let put = |f: Option<Function>| {
        f.map(|f| {
            let id = next_id();
            FUNCTIONS.with(|m| m.borrow_mut().insert(id, f));
            id
        })
    };
    let sink = JsExportSink { atof: put(atof), atif: put(atif) };
    baton::export::sink::register(name, Arc::new(sink)).map_err(to_js)
}

/// Removes an export sink; false when none had that name.
#[wasm_bindgen(js_name = deregisterExportSink)]
pub fn deregister_export_sink(name: &str) -> bool {
    baton::export::sink::deregister(name)
}

/// Checks a plugins document (JSON text); returns the diagnostics as JSON text. Pure.
#[wasm_bindgen(js_name = pluginValidate)]
pub fn plugin_validate(config: &str) -> Result<String, JsValue> {
    let doc = parse_json(config, "config")?;
    Ok(json_text(&Value::Array(rt().plugin_validate(&doc).iter().map(|d| d.to_json()).collect())))
}

/// Validates and installs a plugins document; returns the report as JSON text. Components that
/// need a file system (file exporters) fail on wasm32, which has none.
#[wasm_bindgen(js_name = pluginInitialize)]
pub fn plugin_initialize(config: &str) -> Result<String, JsValue> {
    let doc = parse_json(config, "config")?;
    rt().plugin_initialize(&doc).map(|r| json_text(&r.to_json())).map_err(to_js)
}

#[wasm_bindgen(js_name = pluginClear)]
pub fn plugin_clear() -> Result<(), JsValue> {
    rt().plugin_clear().map_err(to_js)
}

// ----- delivery and lifecycle -----

#[wasm_bindgen]
pub fn flush(timeout_ms: f64) -> Result<bool, JsValue> {
    rt().flush(Duration::from_secs_f64((timeout_ms / 1000.0).max(0.0))).map_err(to_js)
}

#[wasm_bindgen]
pub fn shutdown(timeout_ms: f64) -> Result<bool, JsValue> {
    rt().shutdown(Duration::from_secs_f64((timeout_ms / 1000.0).max(0.0))).map_err(to_js)
}

/// Sets up the global runtime before its first use (`already_exists` afterwards).
#[wasm_bindgen]
pub fn configure(queue_capacity: Option<f64>, overflow: Option<String>) -> Result<(), JsValue> {
    let mut config = baton::RuntimeConfig::default();
    if let Some(n) = queue_capacity {
        if !(n >= 1.0 && n.fract() == 0.0) {
            return Err(bad("options.queueCapacity: expected a positive integer"));
        }
        config.queue_capacity = n as usize;
    }
    if let Some(p) = overflow {
        config.overflow = baton::OverflowPolicy::parse(&p).map_err(to_js)?;
    }
    Runtime::init_global(config).map(|_| ()).map_err(to_js)
}

#[wasm_bindgen(js_name = isShutdown)]
pub fn is_shutdown() -> bool {
    rt().is_shutdown()
}

/// `{deliveredEvents, droppedEvents, subscriberFailures, middlewareFailures, queued,
/// memoryBytes}` as JSON text.
#[wasm_bindgen]
pub fn diagnostics() -> String {
    let d = rt().diagnostics();
    json_text(&serde_json::json!({
        "deliveredEvents": d.delivered_events,
        "droppedEvents": d.dropped_events,
        "subscriberFailures": d.subscriber_failures,
        "middlewareFailures": d.middleware_failures,
        "queued": d.queued,
        "memoryBytes": memory_bytes(),
    }))
}

/// The module's linear memory in bytes: it grows in 64 KiB pages and never shrinks.
fn memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65_536;
    #[cfg(not(target_arch = "wasm32"))]
    0 // `host-lint` builds, which never run
}
