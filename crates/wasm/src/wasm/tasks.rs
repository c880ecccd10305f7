//! Async plumbing: JS Promises as futures, and core futures as tasks the facade polls.
//!
//! A core future (an async call, an async `next`, one chunk of an async stream) is a *task*: the
//! facade polls it right away (`pollTask`) and again on a microtask whenever its waker fires.
//! A JS callback that returns a Promise gives the facade a slot id (`newPending`) instead of a
//! value; the facade `settle`s the slot when the Promise settles, which wakes the task.
//!
//! The core drives sync calls (`toolSync`, a sync intercept's `next`, `llmStreamSync`) with its
//! own `block_on`. A Promise can never settle inside that (there is one thread, and it would be
//! waiting for itself), so a `PromiseFuture` polled by any waker but ours fails at once with
//! `invalid_state` instead of hanging.

use super::*;

/// A JS value now, or the thrown value / Baton error, as the facade receives it.
pub(super) type JsOutcome = Result<JsValue, JsValue>;
pub(super) type Task = Pin<Box<dyn Future<Output = JsOutcome>>>;

/// What a watched Promise settled with: JSON (None = `undefined`), or an error.
pub(super) type Settled = baton::Result<Option<Value>>;

#[derive(Default)]
pub(super) struct Slot {
    outcome: Option<Settled>,
    waker: Option<Waker>,
}

thread_local! {
    pub(super) static TASKS: RefCell<HashMap<u32, Task>> = RefCell::new(HashMap::new());
    pub(super) static SLOTS: RefCell<HashMap<u32, Slot>> = RefCell::new(HashMap::new());
    /// The facade's `schedulePoll(taskId)` (queues a microtask that calls `pollTask`).
    pub(super) static SCHEDULER: RefCell<Option<Function>> = const { RefCell::new(None) };
}

// Our waker: the data pointer is the task id; waking asks the facade to poll it on a microtask.
pub(super) fn vt_clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}
pub(super) fn vt_wake(data: *const ()) {
    if let Some(f) = SCHEDULER.with(|s| s.borrow().clone()) {
        let _ = f.call1(&JsValue::NULL, &JsValue::from(data as usize as u32));
    }
}
pub(super) fn vt_drop(_: *const ()) {}
pub(super) static VTABLE: RawWakerVTable = RawWakerVTable::new(vt_clone, vt_wake, vt_wake, vt_drop);

pub(super) fn task_waker(id: u32) -> Waker {
    // SAFETY: the vtable functions never dereference the data pointer (it is only an id).
    unsafe { Waker::from_raw(RawWaker::new(id as usize as *const (), &VTABLE)) }
}

/// True when the future is polled by our task executor (not by the core's `block_on`).
pub(super) fn ours(cx: &Context<'_>) -> bool {
    std::ptr::eq(cx.waker().vtable(), &VTABLE)
}

/// Sets the facade's `schedulePoll(taskId)`.
#[wasm_bindgen(js_name = setScheduler)]
pub fn set_scheduler(f: Function) {
    SCHEDULER.with(|s| *s.borrow_mut() = Some(f));
}

pub(super) fn spawn(fut: impl Future<Output = JsOutcome> + 'static) -> u32 {
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

pub(super) fn fill_slot(id: u32, outcome: Settled) {
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
pub(super) struct PromiseFuture(pub(super) u32);

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
pub(super) enum Later {
    Now(Option<Value>),
    Pending(u32),
}

/// Reads a facade callback result: JSON text, `undefined`, or `{pending: slotId}`.
pub(super) fn later_of(r: JsValue) -> baton::Result<Later> {
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
pub(super) fn later_future(l: baton::Result<Later>) -> baton::BoxFuture<Settled> {
    match l {
        Err(e) => Box::pin(std::future::ready(Err(e))),
        Ok(Later::Now(v)) => Box::pin(std::future::ready(Ok(v))),
        Ok(Later::Pending(id)) => Box::pin(PromiseFuture(id)),
    }
}

/// Calls `f(input, info?)` and returns its (possibly later) outcome.
pub(super) fn call_later(f: &Function, input: &Value, info: Option<&baton::CallInfo>) -> baton::BoxFuture<Settled> {
    later_future(call_js(f, input, info).map_err(from_thrown).and_then(later_of))
}

pub(super) fn json_out(r: baton::Result<Value>) -> JsOutcome {
    r.map(|v| JsValue::from_str(&json_text(&v))).map_err(to_js)
}

/// The callback of an async call: the JS function (by id) returns JSON text, or `{pending}`.
pub(super) fn async_callback(fid: u32) -> impl Fn(Value) -> baton::BoxFuture<baton::Result<Value>> + Send + Sync + 'static {
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
pub(super) struct Forget(pub(super) u32);

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = FUNCTIONS.try_with(|m| m.try_borrow_mut().map(|mut m| m.remove(&self.0)));
    }
}
