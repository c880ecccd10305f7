//! LLM streams: started, read lazily chunk by chunk, closed; a stream intercept's inner stream.

use super::*;

/// A chunk stream pulled synchronously (for `llmStreamSync`).
pub(super) struct PollIter(ChunkStream);

impl Iterator for PollIter {
    type Item = baton::Result<Value>;
    fn next(&mut self) -> Option<baton::Result<Value>> {
        match self.0.as_mut().poll_next(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(x) => x,
            Poll::Pending => Some(Err(Error::invalid_state("a synchronous stream met an async chunk source; use the async form"))),
        }
    }
}

pub(super) fn wrap_stream(env: Env, stream: LlmStream) -> JsResult<JsVal> {
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
