//! LLM streams: JS chunk sources as core streams, stream intercepts, and streams read by
//! the facade lazily, chunk by chunk.

use super::*;

thread_local! {
    /// Chunk iterators returned by JS stream callbacks, by id.
    pub(super) static ITERS: RefCell<HashMap<u32, JsValue>> = RefCell::new(HashMap::new());
    /// True while an async stream call wraps its chunks (stream intercepts then prefer async
    /// iteration of what they return).
    pub(super) static STREAM_ASYNC: Cell<bool> = const { Cell::new(false) };
}

/// The chunks of a JS stream callback or stream intercept: the facade's iterator object, whose
/// `next()` returns a chunk's JSON text, `undefined` at the end, or `{pending}` for a Promise
/// of either (async iterables). Only ids cross the core (which wants `Send`); dropping it early
/// calls the iterator's `return()`.
pub(super) struct JsChunks {
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
pub(super) struct StreamSlot<S> {
    stream: Option<S>,
    busy: bool,
    closed: bool,
}

pub(super) type SharedSlot<S> = Rc<RefCell<StreamSlot<S>>>;

pub(super) fn shared<S>(s: S) -> SharedSlot<S> {
    Rc::new(RefCell::new(StreamSlot { stream: Some(s), busy: false, closed: false }))
}

/// The next chunk, read synchronously (JSON text, or `undefined` at the end).
pub(super) fn read_sync<S: futures_core::Stream<Item = baton::Result<Value>> + Unpin>(
    slot: &SharedSlot<S>,
) -> Result<Option<String>, JsValue> {
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
pub(super) fn read_async<S: futures_core::Stream<Item = baton::Result<Value>> + Unpin + 'static>(
    slot: &SharedSlot<S>,
) -> Result<u32, JsValue> {
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

pub(super) fn close_slot<S>(slot: &SharedSlot<S>) {
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
pub(super) fn with_stream_mode<R>(value: bool, f: impl FnOnce() -> R) -> R {
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
