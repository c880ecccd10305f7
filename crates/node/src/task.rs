//! The async bridge: core futures are driven on the JS thread, and JS promises are futures.
//!
//! `spawn` polls a future once, right away. Most calls finish in that poll (every callback
//! and middleware returned a plain value) and the caller gets the value without a promise
//! round trip. A future that is pending is parked here with a deferred promise; it is polled
//! again only when one of the JS promises it waits on settles (`settle`, called from the
//! promise's `then` handlers on the JS thread). Nothing blocks the event loop.
//!
//! A JS promise met while the core polls synchronously (a sync call, or a sync intercept's
//! `next`, which the core drives with its own `block_on`) cannot settle there: the thread would
//! wait for itself. `PromiseFuture` sees the foreign waker and fails with `invalid_state`
//! instead of deadlocking.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::Mutex;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use baton::Error;
use napi::sys;

use crate::js::{self, ck, Env, JsRef, JsResult, JsVal};

/// Produces the JS value of a finished task on the JS thread.
pub type Finish = Box<dyn FnOnce(Env) -> JsResult<JsVal>>;
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Finish, Error>>>>;

struct Task {
    fut: TaskFuture,
    deferred: sys::napi_deferred,
    /// The JS stack external current while this task runs (for AsyncLocalStorage).
    stack: Option<JsRef>,
}

#[derive(Default)]
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    fn reserve(&mut self) -> usize {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.items.push(None);
                self.items.len() - 1
            }
        }
    }
    fn release(&mut self, i: usize) {
        self.items[i] = None;
        self.free.push(i);
    }
}

thread_local! {
    // Leaked at thread exit on purpose: dropping futures then would touch a dying JS env.
    static TASKS: std::mem::ManuallyDrop<RefCell<Slab<Task>>> =
        const { std::mem::ManuallyDrop::new(RefCell::new(Slab { items: Vec::new(), free: Vec::new() })) };
    static SLOTS: RefCell<std::collections::HashMap<usize, Slot>> = RefCell::new(std::collections::HashMap::new());
    static NEXT_SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(1) };
    /// The JS stack value current for callbacks (AsyncLocalStorage store), if any.
    static CURRENT_STACK: std::cell::Cell<JsVal> = const { std::cell::Cell::new(ptr::null_mut()) };
}

static READY: Mutex<Vec<usize>> = Mutex::new(Vec::new());

// ----- wakers -----

fn vt_clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}
fn vt_wake(data: *const ()) {
    READY.lock().unwrap_or_else(|p| p.into_inner()).push(data as usize);
}
fn vt_drop(_: *const ()) {}

static VTABLE: RawWakerVTable = RawWakerVTable::new(vt_clone, vt_wake, vt_wake, vt_drop);

fn waker(id: usize) -> Waker {
    unsafe { Waker::from_raw(RawWaker::new(id as *const (), &VTABLE)) }
}

/// True when the future is polled by this executor (not by the core's `block_on`).
pub fn ours(cx: &Context<'_>) -> bool {
    ptr::eq(cx.waker().vtable(), &VTABLE)
}

// ----- the current JS stack (for callbacks) -----

/// Runs `f` with `stack` as the JS stack that callbacks see.
pub fn with_js_stack<R>(stack: JsVal, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT_STACK.with(|c| c.replace(stack));
    struct Restore(JsVal);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT_STACK.with(|c| c.set(self.0));
        }
    }
    let _r = Restore(prev);
    f()
}

pub fn current_js_stack() -> JsVal {
    CURRENT_STACK.with(|c| c.get())
}

// ----- tasks -----

/// Polls `fut` now; returns its value if it finished, else a promise of it.
pub fn spawn(env: Env, fut: TaskFuture) -> JsResult<JsVal> {
    let id = TASKS.with(|t| t.borrow_mut().reserve());
    let mut fut = fut;
    let w = waker(id);
    let polled = fut.as_mut().poll(&mut Context::from_waker(&w));
    match polled {
        Poll::Ready(r) => {
            TASKS.with(|t| t.borrow_mut().release(id));
            match r {
                Ok(finish) => finish(env),
                Err(e) => Err(e.into()),
            }
        }
        Poll::Pending => {
            let mut deferred = ptr::null_mut();
            let mut promise = ptr::null_mut();
            ck!(env, sys::napi_create_promise(env, &mut deferred, &mut promise));
            let stack = current_js_stack();
            let stack = if stack.is_null() { None } else { Some(JsRef::new(env, stack)?) };
            TASKS.with(|t| t.borrow_mut().items[id] = Some(Task { fut, deferred, stack }));
            Ok(promise)
        }
    }
}

/// Polls every woken task (on the JS thread, after a promise settled).
pub fn run_ready(env: Env) {
    loop {
        let ids = std::mem::take(&mut *READY.lock().unwrap_or_else(|p| p.into_inner()));
        if ids.is_empty() {
            return;
        }
        for id in ids {
            let Some(mut task) = TASKS.with(|t| t.borrow_mut().items.get_mut(id).and_then(Option::take)) else {
                continue;
            };
            let _scope = js::Scope::open(env);
            let stack = task.stack.as_ref().and_then(|s| s.get(env).ok()).unwrap_or(ptr::null_mut());
            let w = waker(id);
            let polled = with_js_stack(stack, || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.fut.as_mut().poll(&mut Context::from_waker(&w))))
                    .unwrap_or_else(|p| Poll::Ready(Err(js::panic_error(p))))
            });
            match polled {
                Poll::Pending => TASKS.with(|t| t.borrow_mut().items[id] = Some(task)),
                Poll::Ready(r) => {
                    TASKS.with(|t| t.borrow_mut().release(id));
                    settle_deferred(env, task.deferred, r);
                }
            }
        }
    }
}

fn settle_deferred(env: Env, deferred: sys::napi_deferred, r: Result<Finish, Error>) {
    let outcome = match r {
        Ok(finish) => finish(env),
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(v) => unsafe {
            sys::napi_resolve_deferred(env, deferred, v);
        },
        Err(t) => {
            let value = match t {
                js::Thrown::Pending => js::take_exception(env),
                js::Thrown::Baton(e) => js::error_value(env, &e).or_else(|_| js::take_exception(env)),
            };
            let value = value.or_else(|_| js::undefined(env)).unwrap_or(ptr::null_mut());
            unsafe { sys::napi_reject_deferred(env, deferred, value) };
        }
    }
}

// ----- JS promises as futures -----

struct Slot {
    outcome: Option<(bool, JsRef)>,
    waker: Option<Waker>,
}

/// Watches a thenable: its settlement is stored in a slot and wakes whoever polls it.
fn watch(env: Env, thenable: JsVal) -> JsResult<usize> {
    let id = NEXT_SLOT.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    SLOTS.with(|s| s.borrow_mut().insert(id, Slot { outcome: None, waker: None }));
    let f = js::helper(env, |h| h.watch)?;
    let idv = js::number(env, id as f64)?;
    js::call(env, f, &[thenable, idv])?;
    Ok(id)
}

/// `settle(id, ok, value)`: called by the facade's `then` handlers.
pub fn settle(env: Env, id: usize, ok: bool, value: JsVal) -> JsResult<()> {
    let stored = JsRef::new(env, value)?;
    let waker = SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        match s.get_mut(&id) {
            Some(slot) => {
                slot.outcome = Some((ok, stored));
                slot.waker.take()
            }
            None => None,
        }
    });
    if let Some(w) = waker {
        w.wake();
    }
    run_ready(env);
    Ok(())
}

/// A JS promise as a future; `convert` turns the fulfilled value into `T` on the JS thread.
pub struct PromiseFuture<T> {
    slot: usize,
    convert: fn(Env, JsVal) -> JsResult<T>,
    done: bool,
}

// Only ever polled and dropped on the JS thread (the executor and `block_on` both run there).
unsafe impl<T> Send for PromiseFuture<T> {}

impl<T> PromiseFuture<T> {
    pub fn new(env: Env, thenable: JsVal, convert: fn(Env, JsVal) -> JsResult<T>) -> JsResult<PromiseFuture<T>> {
        Ok(PromiseFuture { slot: watch(env, thenable)?, convert, done: false })
    }
}

impl<T> Future for PromiseFuture<T> {
    type Output = Result<T, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        let env = js::env();
        let slot = self.slot;
        let outcome = SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            let Some(entry) = s.get_mut(&slot) else {
                return Some(Err(Error::internal("promise slot vanished")));
            };
            match entry.outcome.take() {
                Some(o) => Some(Ok(o)),
                None => {
                    if ours(cx) {
                        entry.waker = Some(cx.waker().clone());
                    }
                    None
                }
            }
        });
        let Some(outcome) = outcome else {
            if !ours(cx) {
                self.done = true;
                SLOTS.with(|s| s.borrow_mut().remove(&slot));
                return Poll::Ready(Err(Error::invalid_state(
                    "a callback returned a Promise inside a synchronous call (a *Sync call, or the `next` of a sync execution intercept); use the async form",
                )));
            }
            return Poll::Pending;
        };
        self.done = true;
        SLOTS.with(|s| s.borrow_mut().remove(&slot));
        let (ok, value) = match outcome {
            Ok(o) => o,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let _scope = js::Scope::open(env);
        let r = (|| -> Result<T, Error> {
            let v = value.get(env).map_err(crate::callbacks::thrown_to_error)?;
            if ok {
                (self.convert)(env, v).map_err(crate::callbacks::thrown_to_error)
            } else {
                Err(crate::callbacks::host_error(env, v))
            }
        })();
        Poll::Ready(r)
    }
}

impl<T> Drop for PromiseFuture<T> {
    fn drop(&mut self) {
        if !self.done && js::on_js_thread() {
            let _ = SLOTS.try_with(|s| s.try_borrow_mut().map(|mut s| s.remove(&self.slot)));
        }
    }
}

/// Asserts a value is only used on the JS thread, so it may sit inside a `Send` core future.
pub struct AssertSend<T>(pub T);
unsafe impl<T> Send for AssertSend<T> {}
unsafe impl<T> Sync for AssertSend<T> {}

impl<F: Future> Future for AssertSend<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
    }
}
