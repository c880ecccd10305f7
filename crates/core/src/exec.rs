//! Minimal future plumbing so the core needs no async runtime: `block_on` for sync entry
//! points that meet async middleware, and panic capture for futures.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::error::{Error, Result};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future to completion on the current thread, parking while it is pending.
///
/// The first poll uses a no-op waker: most futures met on sync paths (iterator-backed
/// streams, sync middleware behind an async signature) are ready at once, and that skips
/// building a thread waker. A future that is pending is polled again with the real waker,
/// which it must register on that poll.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return v;
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Runs a user callback, turning a panic into an `internal` error.
pub fn guard_public<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    guard(f)
}

/// Runs a user callback, turning a panic into an `internal` error.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Error::from_panic(p)))
}

/// A future that turns a panic while polling into an `internal` error.
pub(crate) struct CatchPanic<F>(pub Pin<Box<F>>);

impl<T, F: Future<Output = Result<T>>> Future for CatchPanic<F> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let fut = self.0.as_mut();
        catch_unwind(AssertUnwindSafe(move || fut.poll(cx))).unwrap_or_else(|p| Poll::Ready(Err(Error::from_panic(p))))
    }
}

pub(crate) fn catch_panic<T, F: Future<Output = Result<T>>>(f: F) -> CatchPanic<F> {
    CatchPanic(Box::pin(f))
}
