//! JS iterables as core chunk streams, pulled one chunk at a time.

use std::pin::Pin;
use std::task::{Context, Poll};

use baton::{ChunkStream, Error};
use napi::sys;
use serde_json::Value;

use crate::callbacks::guarded;
use crate::convert;
use crate::js::{self, Env, JsRef, JsResult, JsVal};
use crate::task::PromiseFuture;

/// One step of the facade's chunk iterator: JSON text, or `undefined` at the end.
fn step(env: Env, r: JsVal) -> JsResult<Option<Value>> {
    if js::type_of(env, r)? == sys::ValueType::napi_undefined {
        return Ok(None);
    }
    Ok(Some(convert::text_in(env, r, "chunk")?))
}

/// A JS iterable (sync or async) of chunks. The iterator is taken at the first pull: an
/// async pull prefers `Symbol.asyncIterator`, a synchronous one (`*Sync` calls) `Symbol.iterator`.
pub struct JsChunks {
    source: JsRef,
    /// The JS stack current where the source was made (an async stream's fork): its pulls run
    /// under it, so work the source does is parented under the call, as the core's stream
    /// machinery makes the call's scope current on that stack while it pulls.
    stack: Option<JsRef>,
    iter: Option<JsRef>,
    pending: Option<PromiseFuture<Option<Value>>>,
    done: bool,
}

// Polled and dropped only on the JS thread (see `task`).
unsafe impl Send for JsChunks {}

impl JsChunks {
    /// Takes any iterable or async iterable (or an iterator).
    pub fn from_iterable(env: Env, iterable: JsVal) -> JsResult<ChunkStream> {
        let stack = crate::task::current_js_stack();
        let stack = if stack.is_null() { None } else { Some(JsRef::new(env, stack)?) };
        Ok(Box::pin(JsChunks { source: JsRef::new(env, iterable)?, stack, iter: None, pending: None, done: false }))
    }
}

impl futures_core::Stream for JsChunks {
    type Item = Result<Value, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Value, Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.pending.is_none() {
            let prefer_async = crate::task::ours(cx);
            let called = guarded(|env| {
                if this.iter.is_none() {
                    let f = js::helper(env, |h| h.iter_of)?;
                    let source = this.source.get(env)?;
                    let pref = js::boolean(env, prefer_async)?;
                    let iter = js::call(env, f, &[source, pref])?;
                    this.iter = Some(JsRef::new(env, iter)?);
                }
                let iter = this.iter.as_ref().expect("iterator").get(env)?;
                let next = js::get(env, iter, "next")?;
                let r = match &this.stack {
                    // The facade's iterator does not use `this`: `invoke(stack, next)` runs it.
                    Some(stack) => js::call(env, js::helper(env, |h| h.invoke)?, &[stack.get(env)?, next])?,
                    None => {
                        let mut r = std::ptr::null_mut();
                        js::status(env, unsafe { sys::napi_call_function(env, iter, next, 0, std::ptr::null(), &mut r) })?;
                        r
                    }
                };
                if js::is_thenable(env, r)? {
                    Ok(Err(PromiseFuture::new(env, r, step)?))
                } else {
                    Ok(Ok(step(env, r)?))
                }
            });
            match called {
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(Ok(chunk)) => {
                    if chunk.is_none() {
                        this.done = true;
                    }
                    return Poll::Ready(chunk.map(Ok));
                }
                Ok(Err(p)) => this.pending = Some(p),
            }
        }
        let p = this.pending.as_mut().expect("pending promise");
        match Pin::new(p).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.pending = None;
                match r {
                    Ok(Some(v)) => Poll::Ready(Some(Ok(v))),
                    Ok(None) => {
                        this.done = true;
                        Poll::Ready(None)
                    }
                    Err(e) => {
                        this.done = true;
                        Poll::Ready(Some(Err(e)))
                    }
                }
            }
        }
    }
}

impl Drop for JsChunks {
    fn drop(&mut self) {
        // An iterator left early gets `return()`, so generators run their `finally`.
        if self.done || !js::on_js_thread() {
            return;
        }
        let Some(iter) = self.iter.as_ref() else {
            return;
        };
        let _ = guarded(|env| {
            let iter = iter.get(env)?;
            let ret = js::get(env, iter, "return")?;
            if js::is_function(env, ret)? {
                let mut r = std::ptr::null_mut();
                let s = unsafe { sys::napi_call_function(env, iter, ret, 0, std::ptr::null(), &mut r) };
                if s != sys::Status::napi_ok {
                    let _ = js::take_exception(env);
                } else if js::is_thenable(env, r).unwrap_or(false) {
                    // Observe it so a rejection is not unhandled.
                    let _ = PromiseFuture::new(env, r, |_, _| Ok(()));
                }
            }
            Ok(())
        });
    }
}

use std::future::Future;
