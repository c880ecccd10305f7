//! Trampolines: C function pointers acting as callbacks, middleware, subscribers and chunk
//! sources, and the objects those callbacks receive (`BatonOut`, `BatonNext`,
//! `BatonChunkStream`).

use std::ffi::{c_char, c_void, CString};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use baton::{
    CallCtx, CallInfo, ChunkStream, Data, Decision, Error, ErrorKind, EventFields, EventInfo, ExecutionIntercept, Family, Guardrail,
    Middleware, RequestIntercept, Result,
};
use futures_core::Stream;
use serde_json::{json, Map, Value};

use crate::{
    kind_of, BatonCallbackFn, BatonChunkNextFn, BatonExecutionInterceptFn, BatonFreeFn, BatonHookFn, BatonStreamInterceptFn,
    BatonSubscriberFn, BATON_OK,
};

/// What a callback hands back: a JSON value, an error, a rejection or a chunk source. Only
/// valid during the callback that received it.
#[derive(Default)]
pub struct BatonOut {
    /// What the callback set: kept as its JSON text until something needs the structure.
    pub(crate) value: Option<Data>,
    pub(crate) error: Option<Error>,
    pub(crate) reject: Option<String>,
    pub(crate) source: Option<ChunkSource>,
}

pub(crate) fn out_mut<'a>(out: *mut BatonOut) -> Result<&'a mut BatonOut> {
    // SAFETY: `out` is the pointer Baton passed to the running callback (or null).
    unsafe { out.as_mut() }.ok_or_else(|| Error::invalid_argument("out: null pointer"))
}

/// The result of a callback that returned `status`.
fn outcome(status: i32, mut out: BatonOut, what: &str) -> Result<BatonOut> {
    if status == BATON_OK {
        return Ok(out);
    }
    let kind = kind_of(status).unwrap_or(ErrorKind::CallbackFailed);
    Err(match out.error.take() {
        Some(e) if e.kind() == kind => e,
        Some(e) => Error::new(kind, e.message().to_string()),
        None => Error::new(kind, format!("{what} returned status {status} ({kind})")),
    })
}

fn c_json(v: &Value) -> CString {
    crate::c_string(v.to_string())
}

/// `user_data` plus its free function, called once on drop.
pub(crate) struct UserData {
    ptr: *mut c_void,
    free: BatonFreeFn,
}

// SAFETY: the ABI contract: user data given with a registration may be used from any thread.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    pub fn new(ptr: *mut c_void, free: BatonFreeFn) -> UserData {
        UserData { ptr, free }
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(f) = self.free.take() {
            // SAFETY: the caller's free function, called exactly once.
            unsafe { f(self.ptr) };
        }
    }
}

/// The borrowed callback of one managed call.
pub(crate) struct Callback {
    f: unsafe extern "C" fn(*mut c_void, *const c_char, *mut BatonOut) -> i32,
    ud: *mut c_void,
}

impl Callback {
    pub fn new(f: BatonCallbackFn, ud: *mut c_void) -> Result<Callback> {
        Ok(Callback { f: f.ok_or_else(|| Error::invalid_argument("callback: null function pointer"))?, ud })
    }

    fn run(&self, input: &str) -> Result<BatonOut> {
        let input = crate::c_string(input.to_owned());
        let mut out = BatonOut::default();
        // SAFETY: the caller's callback with its own user data.
        let status = unsafe { (self.f)(self.ud, input.as_ptr(), &mut out) };
        outcome(status, out, "callback")
    }

    /// Calls back with the input's JSON text (the caller's own text when nothing rewrote it).
    pub fn call(&self, input: &Data) -> Result<Data> {
        Ok(self.run(&input.json())?.value.unwrap_or(Data::Value(Value::Null)))
    }

    pub fn call_source(&self, input: &Value) -> Result<ChunkSource> {
        self.run(&input.to_string())?
            .source
            .ok_or_else(|| Error::invalid_argument("stream callback: it returned BATON_OK without baton_out_set_chunk_source()"))
    }
}

/// A C chunk source: `next(state, out)` per chunk, `free(state)` once.
pub(crate) struct ChunkSource {
    state: *mut c_void,
    next: unsafe extern "C" fn(*mut c_void, *mut BatonOut) -> i32,
    free: BatonFreeFn,
    done: bool,
}

// SAFETY: the ABI contract: a chunk source is pulled by one thread at a time, from any thread.
unsafe impl Send for ChunkSource {}

impl ChunkSource {
    pub fn new(state: *mut c_void, next: BatonChunkNextFn, free: BatonFreeFn) -> Result<ChunkSource> {
        match next {
            Some(next) => Ok(ChunkSource { state, next, free, done: false }),
            None => {
                if let Some(f) = free {
                    // SAFETY: ownership of `state` was handed to Baton; release it now.
                    unsafe { f(state) };
                }
                Err(Error::invalid_argument("next: null function pointer"))
            }
        }
    }
}

impl Iterator for ChunkSource {
    type Item = Result<Value>;
    fn next(&mut self) -> Option<Result<Value>> {
        if self.done {
            return None;
        }
        let mut out = BatonOut::default();
        // SAFETY: the source's own function and state.
        let status = unsafe { (self.next)(self.state, &mut out) };
        match outcome(status, out, "chunk source") {
            Ok(BatonOut { value: Some(v), .. }) => Some(Ok(v.into_value())),
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Stream for ChunkSource {
    type Item = Result<Value>;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        Poll::Ready(self.get_mut().next())
    }
}

impl Drop for ChunkSource {
    fn drop(&mut self) {
        if let Some(f) = self.free.take() {
            // SAFETY: called exactly once.
            unsafe { f(self.state) };
        }
    }
}

/// The inner stream a stream intercept pulls from.
pub struct BatonChunkStream {
    inner: ChunkStream,
}

/// A stream intercept's replacement: the C source first (it may pull `inner` until freed),
/// then the inner stream. Field order is drop order.
struct Intercepted {
    source: ChunkSource,
    _inner: Box<BatonChunkStream>,
}

impl Stream for Intercepted {
    type Item = Result<Value>;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        Poll::Ready(self.get_mut().source.next())
    }
}

pub(crate) fn chunk_stream_next(s: *mut BatonChunkStream) -> Result<Option<Value>> {
    // SAFETY: the pointer a stream intercept received, valid until its source is freed.
    let s = unsafe { s.as_mut() }.ok_or_else(|| Error::invalid_argument("stream: null pointer"))?;
    baton::exec::block_on(std::future::poll_fn(|cx| s.inner.as_mut().poll_next(cx))).transpose()
}

/// `next` of an execution intercept, valid only while the intercept runs.
pub struct BatonNext {
    ctx: *const CallCtx,
    next: *const (dyn Fn(Value) -> Result<Value> + 'static),
    /// The last error `next` returned: if the intercept passes it on, the original (with its
    /// exception type) is kept.
    last_error: std::sync::Mutex<Option<Error>>,
}

impl BatonNext {
    pub fn call(&self, input: Value) -> Result<Value> {
        // SAFETY: valid while the intercept runs (the ABI contract of baton_next_call).
        let r = unsafe { (*self.next)(input) };
        if let Err(e) = &r {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
        r
    }
    pub fn queue_mark(&self, name: &str, data: Value, metadata: Map<String, Value>) {
        // SAFETY: as above.
        unsafe { &*self.ctx }.queue_mark(name, data, metadata);
    }
}

pub(crate) fn next_ref<'a>(next: *mut BatonNext) -> Result<&'a BatonNext> {
    // SAFETY: the pointer an execution intercept received (or null).
    unsafe { next.as_ref() }.ok_or_else(|| Error::invalid_argument("next: null pointer"))
}

/// Call info for host middleware (the core's writer, snake_case keys).
fn call_info_json(info: &CallInfo) -> CString {
    crate::c_string(info.to_json(baton::KeyStyle::Snake))
}

/// Event info for host event middleware (the core's writer, snake_case keys).
fn event_info_json(info: &EventInfo) -> CString {
    crate::c_string(info.to_json(baton::KeyStyle::Snake))
}

type HookPtr = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *mut BatonOut) -> i32;

#[derive(Clone)]
struct Hook {
    f: HookPtr,
    ud: Arc<UserData>,
}

impl Hook {
    fn run(&self, info: &CString, input: &Value, what: &str) -> Result<BatonOut> {
        let input = c_json(input);
        let mut out = BatonOut::default();
        // SAFETY: the registered callback and its user data (alive while `self` is).
        let status = unsafe { (self.f)(self.ud.ptr, info.as_ptr(), input.as_ptr(), &mut out) };
        outcome(status, out, what)
    }
}

/// Middleware for the families that take a [`BatonHookFn`].
pub(crate) fn hook_middleware(family: Family, f: BatonHookFn, ud: UserData) -> Result<Middleware> {
    let f = f.ok_or_else(|| Error::invalid_argument("callback: null function pointer"))?;
    let h = Hook { f, ud: Arc::new(ud) };
    let guardrail = |h: Hook| {
        Guardrail::Sync(Arc::new(move |info: &CallInfo, input: &Value| {
            let out = h.run(&call_info_json(info), input, "guardrail")?;
            Ok(match out.reject {
                Some(r) => Decision::Reject(r),
                None => Decision::Allow,
            })
        }))
    };
    let request = |h: Hook| {
        RequestIntercept::Sync(Arc::new(move |info: &CallInfo, input: Value| {
            let out = h.run(&call_info_json(info), &input, "request intercept")?;
            Ok(out.value.map_or(input, Data::into_value))
        }))
    };
    let payload = |h: Hook| -> baton::PayloadSanitizer {
        Arc::new(move |info: &CallInfo, v: Value| Ok(h.run(&call_info_json(info), &v, "sanitizer")?.value.map(Data::into_value)))
    };
    let event = |h: Hook| -> baton::EventSanitizer {
        Arc::new(move |info: &EventInfo, f: EventFields| {
            let input = json!({"data": f.data, "metadata": f.metadata});
            match h.run(&event_info_json(info), &input, "event sanitizer")?.value.map(Data::into_value) {
                None => Ok(None),
                Some(Value::Object(mut o)) => {
                    let metadata = match o.remove("metadata") {
                        None | Some(Value::Null) => Map::new(),
                        Some(Value::Object(m)) => m,
                        Some(other) => {
                            return Err(Error::callback_failed(format!("event sanitizer: metadata must be an object, got {other}")))
                        }
                    };
                    Ok(Some(EventFields { data: o.remove("data").unwrap_or(Value::Null), metadata }))
                }
                Some(other) => Err(Error::callback_failed(format!("event sanitizer: expected {{data, metadata}}, got {other}"))),
            }
        })
    };
    Ok(match family {
        Family::ToolConditionalExecution => Middleware::ToolConditionalExecution(guardrail(h)),
        Family::LlmConditionalExecution => Middleware::LlmConditionalExecution(guardrail(h)),
        Family::ToolRequestIntercept => Middleware::ToolRequestIntercept(request(h)),
        Family::LlmRequestIntercept => Middleware::LlmRequestIntercept(request(h)),
        Family::ToolSanitizeRequest => Middleware::ToolSanitizeRequest(payload(h)),
        Family::ToolSanitizeResponse => Middleware::ToolSanitizeResponse(payload(h)),
        Family::LlmSanitizeRequest => Middleware::LlmSanitizeRequest(payload(h)),
        Family::LlmSanitizeResponse => Middleware::LlmSanitizeResponse(payload(h)),
        Family::MarkSanitize => Middleware::MarkSanitize(event(h)),
        Family::ScopeSanitizeStart => Middleware::ScopeSanitizeStart(event(h)),
        Family::ScopeSanitizeEnd => Middleware::ScopeSanitizeEnd(event(h)),
        Family::EventMetadataInjector => Middleware::EventMetadataInjector(Arc::new(move |info: &EventInfo| {
            match h.run(&event_info_json(info), &Value::Null, "metadata injector")?.value.map(Data::into_value) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m),
                Some(other) => Err(Error::callback_failed(format!("metadata injector: expected an object, got {other}"))),
            }
        })),
        other => {
            return Err(Error::invalid_argument(format!(
                "kind '{}' is not registered with baton_middleware_register (use baton_execution_intercept_register, \
                 baton_stream_intercept_register or baton_subscriber_register)",
                other.as_str()
            )))
        }
    })
}

/// An execution intercept calling a C function with a `BatonNext`.
pub(crate) fn execution_middleware(family: Family, f: BatonExecutionInterceptFn, ud: UserData) -> Result<Middleware> {
    let f = f.ok_or_else(|| Error::invalid_argument("callback: null function pointer"))?;
    let ud = Arc::new(ud);
    let x = ExecutionIntercept::Sync(Arc::new(move |ctx: &CallCtx, input: Value, next: baton::Next<'_>| {
        let info = call_info_json(ctx.info());
        let input = c_json(&input);
        let next: *const (dyn Fn(Value) -> Result<Value> + '_) = next;
        // SAFETY: only the lifetime is erased; `BatonNext` is used only while this frame lives.
        let next: *const (dyn Fn(Value) -> Result<Value> + 'static) = unsafe { std::mem::transmute(next) };
        let mut n = BatonNext { ctx, next, last_error: std::sync::Mutex::new(None) };
        let mut out = BatonOut::default();
        // SAFETY: the registered callback and its user data.
        let status = unsafe { f(ud.ptr, info.as_ptr(), input.as_ptr(), &mut n, &mut out) };
        let last = n.last_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Returning `next`'s failing status without a new description passes its error on.
        if let (Some(orig), None) = (&last, &out.error) {
            if status != BATON_OK && kind_of(status) == Some(orig.kind()) {
                return Err(orig.clone());
            }
        }
        match outcome(status, out, "execution intercept") {
            Ok(out) => Ok(out.value.map_or(Value::Null, Data::into_value)),
            Err(e) => Err(match last {
                Some(orig) if orig.kind() == e.kind() && orig.message() == e.message() => orig,
                _ => e,
            }),
        }
    }));
    match family {
        Family::ToolExecutionIntercept => Ok(Middleware::ToolExecutionIntercept(x)),
        Family::LlmExecutionIntercept => Ok(Middleware::LlmExecutionIntercept(x)),
        other => Err(Error::invalid_argument(format!(
            "kind '{}': baton_execution_intercept_register takes tool_execution_intercept or llm_execution_intercept",
            other.as_str()
        ))),
    }
}

/// A stream execution intercept calling a C function with the inner stream.
pub(crate) fn stream_middleware(f: BatonStreamInterceptFn, ud: UserData) -> Result<Middleware> {
    let f = f.ok_or_else(|| Error::invalid_argument("callback: null function pointer"))?;
    let ud = Arc::new(ud);
    Ok(Middleware::LlmStreamExecutionIntercept(Arc::new(move |ctx: &CallCtx, inner: ChunkStream| {
        let info = call_info_json(ctx.info());
        let mut boxed = Box::new(BatonChunkStream { inner });
        let raw: *mut BatonChunkStream = &mut *boxed;
        let mut out = BatonOut::default();
        // SAFETY: the registered callback; `raw` stays valid while `boxed` lives.
        let status = unsafe { f(ud.ptr, info.as_ptr(), raw, &mut out) };
        let out = outcome(status, out, "stream intercept")?;
        Ok(match out.source {
            None => boxed.inner,
            Some(source) => Box::pin(Intercepted { source, _inner: boxed }) as ChunkStream,
        })
    })))
}

/// A subscriber calling a C function with each event's JSON.
pub(crate) fn subscriber_middleware(f: BatonSubscriberFn, ud: UserData) -> Result<Middleware> {
    let f = f.ok_or_else(|| Error::invalid_argument("callback: null function pointer"))?;
    let ud = Arc::new(ud);
    Ok(Middleware::subscriber(move |event| {
        let text = crate::c_string(event.to_json_string());
        // SAFETY: the registered callback and its user data.
        let status = unsafe { f(ud.ptr, text.as_ptr()) };
        if status == BATON_OK {
            Ok(())
        } else {
            Err(Error::callback_failed(format!("subscriber returned status {status}")))
        }
    }))
}

/// A subscriber gathering each dispatcher batch's events and handing them to a C function in
/// one call at the end of the batch ([`baton::Subscriber::end_batch`]) or when it is removed
/// (`close`), so no event is held back past a flush or a removal.
struct BatchSubscriber {
    f: unsafe extern "C" fn(*mut c_void, *const c_char, *const usize, usize) -> usize,
    ud: UserData,
    batch: std::sync::Mutex<Gathered>,
}

#[derive(Default)]
struct Gathered {
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl BatchSubscriber {
    fn hand_over(&self) -> usize {
        let mut g = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        if g.ends.is_empty() {
            return 0;
        }
        // SAFETY: the registered callback and its user data; both buffers live for the call.
        let failed = unsafe { (self.f)(self.ud.ptr, g.text.as_ptr().cast(), g.ends.as_ptr(), g.ends.len()) };
        let failed = failed.min(g.ends.len());
        g.text.clear();
        g.ends.clear();
        if g.text.capacity() > 1 << 20 {
            *g = Gathered::default(); // do not keep a burst's buffer alive
        }
        failed
    }
}

impl baton::Subscriber for BatchSubscriber {
    fn on_event(&self, event: &baton::Event) -> Result<()> {
        let mut g = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        event.write_json(&mut g.text);
        let end = g.text.len();
        g.ends.push(end);
        Ok(())
    }
    fn end_batch(&self) -> usize {
        self.hand_over()
    }
    // No `flush`: the batch holding a flush request ends (and is handed over) before that
    // flush returns.
    fn close(&self) -> Result<()> {
        // Removed mid-batch: it gets no `end_batch`, so hand over what it gathered now.
        match self.hand_over() {
            0 => Ok(()),
            n => Err(Error::callback_failed(format!("batch subscriber failed {n} events"))),
        }
    }
}

pub(crate) fn batch_subscriber_middleware(f: crate::BatonSubscriberBatchFn, ud: UserData) -> Result<Middleware> {
    let f = f.ok_or_else(|| Error::invalid_argument("callback: null function pointer"))?;
    Ok(Middleware::Subscriber(Arc::new(BatchSubscriber { f, ud, batch: Default::default() })))
}
