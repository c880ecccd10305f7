//! Managed LLM streams: lazy chunk streams wrapped by stream execution intercepts.
//!
//! A stream is pulled one chunk at a time by the caller, through every intercept, so nothing
//! is buffered ahead of the consumer. Each chunk the caller receives becomes an `llm.chunk`
//! mark; the end event carries the chunks the caller received once the stream finishes,
//! fails, or is dropped (then as `cancelled`).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde_json::{Map, Value};

use crate::call::{validate_llm_request, Call, LlmOptions, PushedGuard};
use crate::error::{Error, Result};
use crate::event::{Event, Payload};
use crate::exec;
use crate::middleware::{CallCtx, CallKind, Family, Middleware};
use crate::reentry;
use crate::runtime::Status;
use crate::scope::ScopeNode;
use crate::stack::{Stack, StackFutureExt};

/// A boxed stream of chunks (or errors): what stream intercepts consume and produce.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value>> + Send>>;

struct IterStream<I>(I);

impl<I: Iterator<Item = Result<Value>> + Unpin> Stream for IterStream<I> {
    type Item = Result<Value>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        Poll::Ready(self.0.next())
    }
}

/// A chunk stream over an iterator (each `next` is one pull).
pub fn from_iter<I>(iter: I) -> ChunkStream
where
    I: IntoIterator<Item = Result<Value>>,
    I::IntoIter: Send + 'static,
{
    Box::pin(IterStream(Box::new(iter.into_iter()) as Box<dyn Iterator<Item = Result<Value>> + Send>))
}

struct MapStream<F> {
    inner: ChunkStream,
    f: F,
}

impl<F: FnMut(Value) -> Result<Value> + Send + Unpin> Stream for MapStream<F> {
    type Item = Result<Value>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(v))) => Poll::Ready(Some((this.f)(v))),
            other => other,
        }
    }
}

/// Transforms every chunk lazily.
pub fn map_chunks(inner: ChunkStream, f: impl FnMut(Value) -> Result<Value> + Send + Unpin + 'static) -> ChunkStream {
    Box::pin(MapStream { inner, f })
}

struct AppendStream {
    inner: Option<ChunkStream>,
    tail: Option<Value>,
}

impl Stream for AppendStream {
    type Item = Result<Value>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        if let Some(inner) = self.inner.as_mut() {
            match inner.as_mut().poll_next(cx) {
                Poll::Ready(None) => self.inner = None,
                Poll::Ready(Some(Err(e))) => {
                    self.inner = None;
                    self.tail = None;
                    return Poll::Ready(Some(Err(e)));
                }
                other => return other,
            }
        }
        Poll::Ready(self.tail.take().map(Ok))
    }
}

/// Yields `tail` after the inner stream finishes successfully.
pub fn append(inner: ChunkStream, tail: Value) -> ChunkStream {
    Box::pin(AppendStream { inner: Some(inner), tail: Some(tail) })
}

/// A managed LLM stream. Iterate it (blocking) or poll it as a `Stream`.
pub struct LlmStream {
    stack: Stack,
    node: Arc<ScopeNode>,
    call: Call,
    inner: Option<ChunkStream>,
    /// Chunks received so far, kept only when someone observes the end event.
    collected: Option<Vec<Value>>,
    observed: bool,
    index: u64,
    finished: bool,
    /// `llm.chunk`, shared by this stream's chunk marks (one allocation per stream).
    chunk_name: Arc<str>,
}

impl LlmStream {
    /// The uuid of the call's `llm` scope.
    pub fn uuid(&self) -> crate::id::Uuid {
        self.node.uuid
    }

    fn finish(&mut self, outcome: std::result::Result<(), Status<'_>>) {
        self.finished = true;
        self.inner = None;
        let rt = &self.stack.runtime().0;
        let collected = self.collected.take();
        match outcome {
            Ok(()) => {
                let chunks = Value::Array(collected.unwrap_or_default());
                if self.call.response_codec.is_some() {
                    rt.end_scope_with(&self.node, Status::Ok, || self.call.annotated_end(&self.node, &chunks, true), Map::new());
                } else {
                    rt.end_scope(
                        &self.node,
                        Status::Ok,
                        || rt.event_payload(Family::LlmSanitizeResponse, Some(&self.node), &self.call.info, &chunks),
                        Map::new(),
                    );
                }
            }
            Err(status) => {
                rt.end_scope(&self.node, status, || Payload::NULL, Map::new());
            }
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // The pull runs with the llm scope current, so work done while producing a chunk is
        // parented under the call.
        let polled = self.stack.with_pushed(&self.node, || catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx))));
        let polled = polled.unwrap_or_else(|p| Poll::Ready(Some(Err(Error::from_panic(p)))));
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.finish(Ok(()));
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(Err(Status::Error(&e)));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(chunk))) => {
                if self.observed {
                    let rt = &self.stack.runtime().0;
                    if self.call.chunk_marks {
                        let (node, info, index, name) = (&self.node, &self.call.info, self.index, &self.chunk_name);
                        rt.emit(Some(node), || {
                            Event::chunk_mark(node, name, index, rt.event_payload(Family::LlmSanitizeResponse, Some(node), info, &chunk))
                        });
                    }
                    if let Some(c) = self.collected.as_mut() {
                        c.push(chunk.clone());
                    }
                }
                self.index += 1;
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

impl Stream for LlmStream {
    type Item = Result<Value>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Value>>> {
        self.poll_chunk(cx)
    }
}

impl Iterator for LlmStream {
    type Item = Result<Value>;
    fn next(&mut self) -> Option<Result<Value>> {
        exec::block_on(std::future::poll_fn(|cx| self.poll_chunk(cx)))
    }
}

impl Drop for LlmStream {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(Err(Status::Cancelled));
        }
    }
}

impl Call {
    /// Wraps the callback's stream in the stream intercepts (innermost = highest priority).
    fn wrap_stream(&self, base: ChunkStream, ctx: &CallCtx) -> Result<ChunkStream> {
        let Some(chain) = self.chain(Family::LlmStreamExecutionIntercept) else {
            return Ok(base);
        };
        let mut s = base;
        for entry in chain.iter().rev() {
            if let Middleware::LlmStreamExecutionIntercept(f) = &entry.mw {
                let _flag = reentry::enter(reentry::MIDDLEWARE);
                s = exec::guard(|| f(ctx, s))?;
            }
        }
        Ok(s)
    }

    fn into_stream(self, node: Arc<ScopeNode>, produced: Result<ChunkStream>) -> Result<LlmStream> {
        let ctx = CallCtx::new(self.info.clone());
        let wrapped = produced.and_then(|base| self.wrap_stream(base, &ctx));
        let rt = &self.stack.runtime().0;
        match wrapped {
            Err(e) => {
                rt.end_scope(&node, Status::Error(&e), || Payload::NULL, Map::new());
                Err(e)
            }
            Ok(inner) => {
                let observed = rt.registry.has_subscribers(Some(&node));
                Ok(LlmStream {
                    stack: self.stack.clone(),
                    node,
                    inner: Some(inner),
                    collected: if observed { Some(Vec::new()) } else { None },
                    observed,
                    index: 0,
                    finished: false,
                    chunk_name: Arc::from(crate::host_call::CHUNK_MARK),
                    call: self,
                })
            }
        }
    }
}

impl Stack {
    /// Starts a managed streaming LLM call. `callback` receives the (intercepted) request and
    /// returns the provider's chunks; the returned [`LlmStream`] yields them lazily.
    pub fn llm_stream<I>(
        &self,
        name: &str,
        mut request: Value,
        callback: impl FnOnce(Value) -> Result<I>,
        options: LlmOptions,
    ) -> Result<LlmStream>
    where
        I: IntoIterator<Item = Result<Value>>,
        I::IntoIter: Send + 'static,
    {
        validate_llm_request(&mut request)?;
        let mut call = Call::new(self, CallKind::Llm, name, options.into())?;
        call.resolve_codecs(&request)?;
        call.guardrails_sync(&request)?;
        let request = call.request_intercepts_sync(request)?;
        let node = call.start_value(&request);
        let produced = self.with_pushed(&node, || {
            let _flag = reentry::leave(reentry::MIDDLEWARE);
            exec::guard(|| callback(request).map(from_iter))
        });
        call.into_stream(node, produced)
    }

    /// The async form of [`Stack::llm_stream`]: `callback` resolves to a [`ChunkStream`].
    pub fn llm_stream_async<F, Fut>(
        &self,
        name: &str,
        mut request: Value,
        callback: F,
        options: LlmOptions,
    ) -> impl Future<Output = Result<LlmStream>> + Send + 'static
    where
        F: FnOnce(Value) -> Fut + Send + 'static,
        Fut: Future<Output = Result<ChunkStream>> + Send + 'static,
    {
        let call = validate_llm_request(&mut request).and_then(|_| Call::new(self, CallKind::Llm, name, options.into()));
        async move {
            let mut call = call?;
            call.resolve_codecs(&request)?;
            call.guardrails_async(&request).await?;
            let request = call.request_intercepts_async(request).await?;
            let node = call.start_value(&request);
            let pushed = PushedGuard::new(&call.stack, &node).ending();
            let produced =
                reentry::as_callback(exec::catch_panic(async move { callback(request).await })).with_stack(call.stack.clone()).await;
            pushed.finish();
            call.into_stream(node, produced)
        }
    }
}
