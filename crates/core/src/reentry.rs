//! Re-entrancy detection: what the current thread is inside of.
//!
//! Middleware and subscribers may push/pop scopes and emit marks, but a managed call, `flush`
//! or `shutdown` from inside them could wait on itself. Instead of deadlocking, those calls see
//! the flag set here and return `invalid_state`. Async middleware sets the flag on every poll.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, Result};

pub(crate) const MIDDLEWARE: u8 = 1;
pub(crate) const EVENT_MIDDLEWARE: u8 = 2;
pub(crate) const DISPATCHER: u8 = 4;

thread_local! {
    static FLAGS: Cell<u8> = const { Cell::new(0) };
}

/// Restores the previous flags when dropped (also on unwind).
pub(crate) struct FlagGuard(u8);

impl Drop for FlagGuard {
    fn drop(&mut self) {
        FLAGS.with(|f| f.set(self.0));
    }
}

/// Sets `flag` until the guard drops.
pub(crate) fn enter(flag: u8) -> FlagGuard {
    FLAGS.with(|f| {
        let prev = f.get();
        f.set(prev | flag);
        FlagGuard(prev)
    })
}

/// Clears `flag` until the guard drops (used by `next`, which runs the real callback).
pub(crate) fn leave(flag: u8) -> FlagGuard {
    FLAGS.with(|f| {
        let prev = f.get();
        f.set(prev & !flag);
        FlagGuard(prev)
    })
}

pub(crate) fn is_set(flag: u8) -> bool {
    FLAGS.with(|f| f.get() & flag != 0)
}

/// Errors when called from middleware or a subscriber (for APIs that run middleware or wait).
pub(crate) fn check_not_nested(what: &str) -> Result<()> {
    if is_set(MIDDLEWARE | DISPATCHER) {
        let place = if is_set(DISPATCHER) { "a subscriber" } else { "middleware" };
        return Err(Error::invalid_state(format!("{what} cannot be called from inside {place}: it would re-enter the runtime")));
    }
    Ok(())
}

/// Errors when an event would be emitted from inside event middleware (it would feed itself).
pub(crate) fn check_can_emit() -> Result<()> {
    if is_set(EVENT_MIDDLEWARE) {
        return Err(Error::invalid_state("events cannot be emitted from inside a sanitizer or metadata injector"));
    }
    Ok(())
}

/// A future that sets or clears a flag around every poll of the inner future.
pub(crate) struct WithFlag<F> {
    inner: Pin<Box<F>>,
    flag: u8,
    set: bool,
}

impl<F: Future> Future for WithFlag<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _g = if self.set { enter(self.flag) } else { leave(self.flag) };
        self.inner.as_mut().poll(cx)
    }
}

/// Runs `fut` as middleware (flag set during polls).
pub(crate) fn as_middleware<F: Future>(fut: F) -> WithFlag<F> {
    WithFlag { inner: Box::pin(fut), flag: MIDDLEWARE, set: true }
}

/// Runs `fut` as ordinary code even when awaited from middleware (`next`).
pub(crate) fn as_callback<F: Future>(fut: F) -> WithFlag<F> {
    WithFlag { inner: Box::pin(fut), flag: MIDDLEWARE, set: false }
}
