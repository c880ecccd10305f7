//! Runtime behaviour that the parity scenarios cannot show: threads, async, overflow,
//! panics, re-entrancy, shutdown.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use baton::{
    exec, CallKind, Data, Decision, EndOptions, Error, ErrorKind, Event, ExecutionIntercept, Family, MarkOptions, Middleware,
    OverflowPolicy, Registration, Runtime, RuntimeConfig, ScopeOptions, StackFutureExt, ToolOptions, Uuid,
};
use common::{names, runtime_with_recorder, T};
use serde_json::{json, Value};

#[test]
fn eight_threads_ten_thousand_calls_each_stay_in_their_own_trees() {
    let (rt, seen) = runtime_with_recorder();
    const THREADS: usize = 8;
    const CALLS: usize = 10_000;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let stack = rt.new_stack();
                let root = stack.push(ScopeOptions::new(format!("worker-{t}")).category("agent")).unwrap();
                for i in 0..CALLS {
                    let out = stack.tool("work", json!({"t": t, "i": i}), |a| Ok(a["i"].clone()), ToolOptions::default()).unwrap();
                    assert_eq!(out, json!(i));
                }
                stack.pop(&root, EndOptions::default()).unwrap();
                root.uuid()
            })
        })
        .collect();
    let roots: Vec<Uuid> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(rt.flush(T).unwrap());
    let events = seen.lock().unwrap();
    assert_eq!(events.len(), THREADS * (2 + 2 * CALLS));
    let parent_of: HashMap<Uuid, Option<Uuid>> = events.iter().filter(|e| e.is_scope_start()).map(|e| (e.uuid, e.parent_uuid)).collect();
    let mut per_root: HashMap<Uuid, usize> = HashMap::new();
    for e in events.iter() {
        let mut cur = e.uuid;
        while let Some(Some(p)) = parent_of.get(&cur) {
            cur = *p;
        }
        // Each tool event must carry its own thread's index in its start data.
        if e.is_scope_start() && &*e.name == "work" {
            let t = e.data.to_value()["t"].as_u64().unwrap() as usize;
            assert_eq!(cur, roots[t], "event of thread {t} attributed to another root");
        }
        *per_root.entry(cur).or_default() += 1;
    }
    for r in &roots {
        assert_eq!(per_root[r], 2 + 2 * CALLS);
    }
}

#[test]
fn block_policy_with_a_slow_subscriber_loses_nothing() {
    let rt = Runtime::new(RuntimeConfig { queue_capacity: 8, overflow: OverflowPolicy::Block });
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    rt.register(
        Registration::new("slow"),
        Middleware::subscriber(move |_| {
            std::thread::sleep(Duration::from_micros(200));
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    for i in 0..500 {
        stack.mark(MarkOptions::new("m").data(json!(i))).unwrap();
    }
    assert!(rt.flush(T).unwrap());
    assert_eq!(count.load(Ordering::SeqCst), 500);
    assert_eq!(rt.diagnostics().dropped_events, 0);
}

#[test]
fn drop_policy_counts_exactly_what_it_dropped() {
    let rt = Runtime::new(RuntimeConfig { queue_capacity: 16, overflow: OverflowPolicy::Drop });
    let gate = Arc::new(Barrier::new(2));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (g, r) = (gate.clone(), received.clone());
    let first = Arc::new(AtomicUsize::new(0));
    rt.register(
        Registration::new("gated"),
        Middleware::subscriber(move |e| {
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                g.wait(); // hold the dispatcher until the producer is done
            }
            r.lock().unwrap().push(e.data.to_value().as_u64().unwrap());
            Ok(())
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    const N: u64 = 1_000;
    for i in 0..N {
        stack.mark(MarkOptions::new("m").data(json!(i))).unwrap();
    }
    gate.wait();
    assert!(rt.flush(T).unwrap());
    let got = received.lock().unwrap();
    let dropped = rt.diagnostics().dropped_events;
    assert!(dropped > 0, "the queue of 16 must overflow");
    assert_eq!(got.len() as u64 + dropped, N);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "delivery keeps emission order");
}

#[test]
fn backlog_counts_what_is_queued_and_not_yet_delivered() {
    let rt = Runtime::new(RuntimeConfig::default());
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let first = AtomicUsize::new(0);
    rt.register(
        Registration::new("gated"),
        Middleware::subscriber(move |_| {
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                g.wait(); // hold the dispatcher in its first event
            }
            Ok(())
        }),
    )
    .unwrap();
    assert_eq!(rt.backlog(), 0);
    let stack = rt.new_stack();
    for i in 0..10 {
        stack.mark(MarkOptions::new("m").data(json!(i))).unwrap();
    }
    // The dispatcher is held in the first event: none of the ten is done.
    assert_eq!(rt.backlog(), 10);
    gate.wait();
    assert!(rt.flush(T).unwrap());
    assert_eq!(rt.backlog(), 0);
}

#[test]
fn a_panicking_callback_is_internal_and_the_runtime_stays_usable() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    let err = stack.tool("boom", json!({}), |_| panic!("kaboom"), ToolOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(err.message().contains("kaboom"));
    // Panicking middleware and subscribers are contained too.
    rt.register(Registration::new("bad-guard"), Middleware::guardrail(CallKind::Tool, |_, _| panic!("guard panic"))).unwrap();
    let err = stack.tool("t", json!({}), |_| Ok(json!(1)), ToolOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(rt.deregister(Family::ToolConditionalExecution, "bad-guard", None).unwrap());
    rt.register(Registration::new("bad-sub"), Middleware::subscriber(|_| panic!("sub panic"))).unwrap();
    assert_eq!(stack.tool("t", json!({}), |_| Ok(json!(2)), ToolOptions::default()).unwrap(), json!(2));
    assert!(rt.flush(T).unwrap());
    assert!(rt.diagnostics().subscriber_failures >= 2);
    let events = seen.lock().unwrap();
    let end = events.iter().find(|e| e.is_scope_end() && &*e.name == "boom").unwrap();
    assert_eq!(end.metadata_value("otel.status_code").unwrap(), "ERROR");
    assert_eq!(end.metadata_value("error.type").unwrap(), "internal");
}

#[test]
fn bad_input_gets_errors_that_name_the_problem() {
    let rt = Runtime::new(RuntimeConfig::default());
    let stack = rt.new_stack();
    let e = stack.llm("chat", json!("not an object"), Ok, Default::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("request"), "{e}");
    let e = stack.llm("chat", json!({"headers": {"x": 1}, "content": {}}), Ok, Default::default()).unwrap_err();
    assert!(e.message().contains("request.headers[\"x\"]"), "{e}");
    let e = Family::parse("tool_guard").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("tool_guard"));
    let e = stack.metric("latency", json!([{"value": "fast"}]), None).unwrap_err();
    assert!(e.message().contains("measurements[0].value"), "{e}");
    let e = rt.stack_from_propagation(&json!({"version": 1, "parent_uuid": "nope"})).unwrap_err();
    assert!(e.message().contains("parent_uuid"), "{e}");
    let s = stack.push(ScopeOptions::new("a")).unwrap();
    stack.pop(&s, EndOptions::default()).unwrap();
    assert_eq!(stack.pop(&s, EndOptions::default()).unwrap_err().kind(), ErrorKind::NotFound);
    let e = rt.register(Registration::new(""), Middleware::subscriber(|_| Ok(()))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // Still usable.
    assert_eq!(stack.tool("ok", json!(1), Ok, ToolOptions::default()).unwrap(), json!(1));
}

#[test]
fn reentrant_calls_from_subscribers_and_middleware_are_invalid_state_not_deadlocks() {
    let rt = Runtime::new(RuntimeConfig { queue_capacity: 4, overflow: OverflowPolicy::Block });
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (rt2, errs) = (rt.clone(), errors.clone());
    let marked = Arc::new(AtomicUsize::new(0));
    let m2 = marked.clone();
    rt.register(
        Registration::new("reentrant"),
        Middleware::subscriber(move |e| {
            if &*e.name == "trigger" {
                let stack = rt2.new_stack();
                errs.lock().unwrap().push(stack.tool("t", json!({}), Ok, ToolOptions::default()).unwrap_err().kind());
                errs.lock().unwrap().push(rt2.flush(Duration::from_secs(1)).unwrap_err().kind());
                // Emitting marks from a subscriber is allowed and never blocks, even past capacity.
                for _ in 0..10 {
                    stack.mark(MarkOptions::new("from-subscriber")).unwrap();
                }
                m2.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }),
    )
    .unwrap();
    let rt3 = rt.clone();
    rt.register(
        Registration::new("flushing-guard"),
        Middleware::guardrail(CallKind::Tool, move |_, _| {
            let e = rt3.flush(Duration::from_secs(1)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidState);
            let inner = rt3.new_stack().tool("nested", json!({}), Ok, ToolOptions::default()).unwrap_err();
            assert_eq!(inner.kind(), ErrorKind::InvalidState);
            Ok(Decision::Allow)
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    stack.mark(MarkOptions::new("trigger")).unwrap();
    assert_eq!(stack.tool("outer", json!(1), Ok, ToolOptions::default()).unwrap(), json!(1));
    assert!(rt.flush(T).unwrap());
    assert_eq!(marked.load(Ordering::SeqCst), 1);
    assert_eq!(*errors.lock().unwrap(), vec![ErrorKind::InvalidState, ErrorKind::InvalidState]);
}

#[test]
fn a_tool_callback_may_make_nested_managed_calls() {
    let (rt, seen) = runtime_with_recorder();
    rt.register(Registration::new("wrap"), Middleware::execution_intercept(CallKind::Tool, |_, v, next| next(v))).unwrap();
    let stack = rt.new_stack();
    let s2 = stack.clone();
    let out = stack
        .tool(
            "outer",
            json!(2),
            move |v| s2.tool("inner", v, |x| Ok(json!(x.as_i64().unwrap() * 10)), ToolOptions::default()),
            ToolOptions::default(),
        )
        .unwrap();
    assert_eq!(out, json!(20));
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert_eq!(names(&ev), ["start:outer", "start:inner", "end:inner", "end:outer"]);
    assert_eq!(ev[1].parent_uuid, Some(ev[0].uuid));
}

#[test]
fn nothing_is_built_when_nobody_listens() {
    let rt = Runtime::new(RuntimeConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    rt.register(
        Registration::new("counting"),
        Middleware::sanitize_request(CallKind::Tool, move |_, v| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(Some(v))
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    for _ in 0..100 {
        stack.tool("t", json!({}), Ok, ToolOptions::default()).unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no subscriber: no event, no sanitizer run");
    rt.register(Registration::new("sub"), Middleware::subscriber(|_| Ok(()))).unwrap();
    stack.tool("t", json!({}), Ok, ToolOptions::default()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(rt.flush(T).unwrap());
    assert_eq!(rt.diagnostics().delivered_events, 2, "only the call made while listening produced events");
}

/// A future that is pending once, then ready.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn async_calls_run_async_intercepts_and_carry_the_stack_across_polls() {
    let (rt, seen) = runtime_with_recorder();
    rt.register(
        Registration::new("twice"),
        Middleware::ToolExecutionIntercept(ExecutionIntercept::Async(Arc::new(|_ctx, v, next| {
            Box::pin(async move {
                let a = next.call(v.clone()).await?;
                YieldOnce(false).await;
                let b = next.call(v).await?;
                Ok(json!([a, b]))
            })
        }))),
    )
    .unwrap();
    let stack = rt.new_stack();
    let root = stack.push(ScopeOptions::new("root")).unwrap();
    let fut = stack.tool_async(
        "t",
        json!(1),
        |v| async move {
            YieldOnce(false).await;
            // The call's scope is current inside the callback, even after a yield.
            baton::mark(MarkOptions::new("inside"))?;
            Ok(v)
        },
        ToolOptions::default(),
    );
    let out = exec::block_on(fut).unwrap();
    assert_eq!(out, json!([1, 1]));
    stack.pop(&root, EndOptions::default()).unwrap();
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert_eq!(names(&ev), ["start:root", "start:t", "mark:inside", "mark:inside", "end:t", "end:root"]);
    assert_eq!(ev[2].parent_uuid, Some(ev[1].uuid));
    assert_eq!(ev[1].parent_uuid, Some(ev[0].uuid));
}

#[test]
fn with_stack_future_isolates_interleaved_tasks() {
    let (rt, seen) = runtime_with_recorder();
    let make = |name: &'static str| {
        let stack = rt.new_stack();
        async move {
            let s = baton::push(ScopeOptions::new(name))?;
            YieldOnce(false).await;
            baton::mark(MarkOptions::new(format!("{name}-mark")))?;
            YieldOnce(false).await;
            baton::pop(&s, EndOptions::default())
        }
        .with_stack(stack)
    };
    let (mut a, mut b) = (Box::pin(make("a")), Box::pin(make("b")));
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let (mut da, mut db) = (false, false);
    while !(da && db) {
        if !da {
            da = a.as_mut().poll(&mut cx).is_ready();
        }
        if !db {
            db = b.as_mut().poll(&mut cx).is_ready();
        }
    }
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    let start_a = ev.iter().find(|e| &*e.name == "a").unwrap().uuid;
    let start_b = ev.iter().find(|e| &*e.name == "b").unwrap().uuid;
    assert_eq!(ev.iter().find(|e| &*e.name == "a-mark").unwrap().parent_uuid, Some(start_a));
    assert_eq!(ev.iter().find(|e| &*e.name == "b-mark").unwrap().parent_uuid, Some(start_b));
    assert!(ev.iter().filter(|e| e.is_scope_start()).all(|e| e.parent_uuid.is_none()));
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn dropping_an_async_call_midway_ends_it_as_cancelled() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    let mut fut = Box::pin(stack.tool_async(
        "slow",
        json!({}),
        |_| async {
            std::future::pending::<()>().await;
            Ok(Value::Null)
        },
        ToolOptions::default(),
    ));
    let waker = Waker::from(Arc::new(Noop));
    assert!(fut.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    assert_eq!(stack.depth(), 1, "the call's scope is current while it runs");
    drop(fut);
    assert_eq!(stack.depth(), 0);
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert_eq!(names(&ev), ["start:slow", "end:slow"]);
    assert_eq!(ev[1].metadata_value("error.type").unwrap(), "cancelled");
}

#[test]
fn dropping_a_stream_early_ends_it_as_cancelled_with_what_was_received() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    let mut s = stack.llm_stream("chat", json!({"content": {}}), |_| Ok((0..100).map(|i| Ok(json!(i)))), Default::default()).unwrap();
    assert_eq!(s.next().unwrap().unwrap(), json!(0));
    assert_eq!(s.next().unwrap().unwrap(), json!(1));
    drop(s);
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert_eq!(names(&ev), ["start:chat", "mark:llm.chunk", "mark:llm.chunk", "end:chat"]);
    assert_eq!(ev[3].metadata_value("error.type").unwrap(), "cancelled");
    assert_eq!(ev[3].metadata_value("otel.status_code").unwrap(), "ERROR");
}

#[test]
fn streams_are_pulled_lazily_through_intercepts() {
    let rt = Runtime::new(RuntimeConfig::default());
    let produced = Arc::new(AtomicUsize::new(0));
    let p = produced.clone();
    rt.register(
        Registration::new("upper"),
        Middleware::LlmStreamExecutionIntercept(Arc::new(|_, s| {
            Ok(baton::stream::map_chunks(s, |c| Ok(json!(c.as_str().unwrap().to_uppercase()))))
        })),
    )
    .unwrap();
    let stack = rt.new_stack();
    let mut s = stack
        .llm_stream(
            "chat",
            json!({"content": {}}),
            move |_| {
                Ok(["a", "b", "c"].into_iter().map(move |c| {
                    p.fetch_add(1, Ordering::SeqCst);
                    Ok(json!(c))
                }))
            },
            Default::default(),
        )
        .unwrap();
    assert_eq!(produced.load(Ordering::SeqCst), 0, "nothing pulled before the caller asks");
    assert_eq!(s.next().unwrap().unwrap(), json!("A"));
    assert_eq!(produced.load(Ordering::SeqCst), 1);
    assert_eq!(s.by_ref().map(|c| c.unwrap()).collect::<Vec<_>>(), vec![json!("B"), json!("C")]);
}

#[test]
fn shutdown_flushes_closes_and_rejects_later_calls() {
    let rt = Runtime::new(RuntimeConfig::default());
    let closed = Arc::new(AtomicUsize::new(0));
    struct Sub(Arc<AtomicUsize>, Arc<AtomicUsize>);
    impl baton::Subscriber for Sub {
        fn on_event(&self, _: &Event) -> baton::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn close(&self) -> baton::Result<()> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    rt.register(Registration::new("s"), Middleware::Subscriber(Arc::new(Sub(count.clone(), closed.clone())))).unwrap();
    let stack = rt.new_stack();
    for _ in 0..1000 {
        stack.mark(MarkOptions::new("m")).unwrap();
    }
    assert!(rt.shutdown(T).unwrap());
    assert_eq!(count.load(Ordering::SeqCst), 1000);
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    for e in [
        stack.mark(MarkOptions::new("late")).unwrap_err(),
        stack.push(ScopeOptions::new("late")).unwrap_err(),
        stack.tool("t", json!({}), Ok, ToolOptions::default()).unwrap_err(),
        rt.flush(T).unwrap_err(),
        rt.shutdown(T).unwrap_err(),
        rt.register(Registration::new("x"), Middleware::subscriber(|_| Ok(()))).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::AlreadyShutdown, "{e}");
    }
}

#[test]
fn scope_helper_ends_with_the_closure_outcome() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    baton::with_stack(&stack, || {
        let r: baton::Result<()> = baton::scope(ScopeOptions::new("work"), |_| Err(Error::callback_failed("nope")));
        assert_eq!(r.unwrap_err().message(), "nope");
    });
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert_eq!(ev[1].metadata_value("otel.status_code").unwrap(), "ERROR");
    assert_eq!(ev[1].metadata_value("otel.status_description").unwrap(), "nope");
}

#[test]
fn propagation_round_trips_through_another_stack() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    let root = stack.push(ScopeOptions::new("client")).unwrap();
    let ctx = stack.propagation_context();
    let tp = stack.traceparent().unwrap();
    assert_eq!(tp, format!("00-{}-{}-01", root.uuid().simple_hex(), root.uuid().span_hex()));
    let remote = rt.stack_from_propagation(&ctx).unwrap();
    let server = remote.push(ScopeOptions::new("server")).unwrap();
    assert_eq!(server.parent_uuid(), Some(root.uuid()));
    assert_eq!(remote.traceparent().unwrap()[3..35], tp[3..35], "same trace id");
    remote.pop(&server, EndOptions::default()).unwrap();
    stack.pop(&root, EndOptions::default()).unwrap();
    rt.flush(T).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[test]
fn an_unobserved_call_opens_no_scope_and_an_observed_one_does() {
    let rt = Runtime::new(RuntimeConfig::default());
    let stack = rt.new_stack();
    let outer = stack.push(ScopeOptions::new("outer")).unwrap();
    let s2 = stack.clone();
    let seen = move |_: Value| Ok(json!(s2.current().map(|h| h.name().to_string())));
    // Nothing registered: the callback runs on the caller's scope.
    assert!(stack.unobserved().unwrap(), "nothing registered");
    assert_eq!(stack.tool("t", json!({}), &seen, ToolOptions::default()).unwrap(), json!("outer"));
    assert_eq!(
        exec::block_on(stack.tool_async("t", json!({}), |_| async { Ok(json!(baton::current_stack().depth())) }, ToolOptions::default()))
            .unwrap(),
        json!(1)
    );
    // Anything registered (here a guardrail, no subscriber): the call has its own scope.
    rt.register(Registration::new("g"), Middleware::guardrail(CallKind::Tool, |_, _| Ok(Decision::Allow))).unwrap();
    assert!(!stack.unobserved().unwrap(), "a guardrail is registered");
    assert_eq!(stack.tool("t", json!({}), &seen, ToolOptions::default()).unwrap(), json!("t"));
    assert_eq!(
        exec::block_on(stack.tool_async("t", json!({}), |_| async { Ok(json!(baton::current_stack().depth())) }, ToolOptions::default()))
            .unwrap(),
        json!(2)
    );
    stack.pop(&outer, EndOptions::default()).unwrap();
    // After shutdown the query fails as a call would.
    rt.shutdown(T).unwrap();
    assert_eq!(stack.unobserved().unwrap_err().kind(), ErrorKind::AlreadyShutdown);
}

#[test]
fn timestamps_follow_emission_order_on_a_thread() {
    let (rt, seen) = runtime_with_recorder();
    rt.register(Registration::new("g"), Middleware::guardrail(CallKind::Tool, |_, _| Ok(Decision::Allow))).unwrap();
    let stack = rt.new_stack();
    for i in 0..2_000 {
        // Quick scopes end on the 1 µs clamp; the next event must still not be stamped earlier.
        stack.tool("t", json!(i), Ok, ToolOptions::default()).unwrap();
        stack.mark(MarkOptions::new("m")).unwrap();
    }
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert!(ev.windows(2).all(|w| w[0].timestamp_micros <= w[1].timestamp_micros), "a later event was stamped before an earlier one");
}

/// Bindings hand the core JSON text (`Data`): with only a subscriber it must reach the
/// callback and the events as given, and be parsed as soon as middleware needs structure.
#[test]
fn call_data_stays_text_until_middleware_needs_it() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    let args = || Data::from_json(r#"{"q":"paris","n":3}"#, "args").unwrap();
    let echo = |d: Data| {
        assert!(d.is_json(), "nothing needed the structure: the callback gets the text");
        assert_eq!(d.json(), r#"{"q":"paris","n":3}"#);
        Data::from_json(r#"{"temp":21}"#, "returned value")
    };
    let out = stack.tool_data("weather", args(), echo, ToolOptions::default()).unwrap();
    assert!(out.is_json());
    assert_eq!(out.json(), r#"{"temp":21}"#);
    let out = exec::block_on(stack.tool_data_async("weather", args(), move |d| async move { echo(d) }, ToolOptions::default())).unwrap();
    assert_eq!(out.json(), r#"{"temp":21}"#);
    rt.flush(T).unwrap();
    {
        let ev = seen.lock().unwrap();
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0].data.as_json(), r#"{"q":"paris","n":3}"#, "the caller's text is the start payload");
        assert_eq!(ev[1].data.as_json(), r#"{"temp":21}"#);
    }
    // A request intercept and a response sanitizer need the structure: both see values and
    // what they do shows up in the callback and the events.
    rt.register(
        Registration::new("rewrite"),
        Middleware::request_intercept(CallKind::Tool, |_, mut v| {
            v["n"] = json!(5);
            Ok(v)
        }),
    )
    .unwrap();
    rt.register(
        Registration::new("hide"),
        Middleware::sanitize_response(CallKind::Tool, |_, mut v| {
            v["temp"] = json!("[hidden]");
            Ok(Some(v))
        }),
    )
    .unwrap();
    let got =
        stack.tool_data("weather", args(), |d| Ok(Data::Value(json!({"temp": 21, "saw": d.as_value().into_owned()}))), Default::default());
    assert_eq!(got.unwrap().as_value().into_owned(), json!({"temp": 21, "saw": {"q": "paris", "n": 5}}), "the caller gets the real result");
    rt.flush(T).unwrap();
    let ev = seen.lock().unwrap();
    assert_eq!(ev[4].data.to_value(), json!({"q": "paris", "n": 5}));
    assert_eq!(ev[5].data.to_value(), json!({"temp": "[hidden]", "saw": {"q": "paris", "n": 5}}));
    // Invalid text never gets that far.
    assert_eq!(Data::from_json("{", "args").unwrap_err().kind(), ErrorKind::InvalidArgument);
}

/// A subscriber may gather a batch's events and hand them on in `end_batch`, which runs
/// before a `flush` covering them returns; the failures it reports are counted.
#[test]
fn end_batch_hands_a_gathered_batch_over_before_flush_returns() {
    #[derive(Default)]
    struct Gather {
        pending: Mutex<Vec<String>>,
        handed: Mutex<Vec<String>>,
        batches: AtomicUsize,
    }
    impl baton::Subscriber for Gather {
        fn on_event(&self, e: &Event) -> baton::Result<()> {
            self.pending.lock().unwrap().push(e.name.to_string());
            Ok(())
        }
        fn end_batch(&self) -> usize {
            let batch = std::mem::take(&mut *self.pending.lock().unwrap());
            if !batch.is_empty() {
                self.batches.fetch_add(1, Ordering::SeqCst);
            }
            let failed = batch.iter().filter(|n| n.as_str() == "bad").count();
            self.handed.lock().unwrap().extend(batch);
            failed
        }
    }
    let rt = Runtime::new(RuntimeConfig::default());
    let global = Arc::new(Gather::default());
    rt.register(Registration::new("g"), Middleware::Subscriber(global.clone())).unwrap();
    let stack = rt.new_stack();
    let scope = stack.push(ScopeOptions::new("s")).unwrap();
    let local = Arc::new(Gather::default());
    rt.register(Registration::new("l").scope(&scope), Middleware::Subscriber(local.clone())).unwrap();
    for i in 0..5_000 {
        stack.mark(MarkOptions::new(if i % 1000 == 999 { "bad" } else { "m" })).unwrap();
    }
    assert!(rt.flush(T).unwrap());
    assert_eq!(global.handed.lock().unwrap().len(), 5_001, "scope start + 5,000 marks, all handed over by flush");
    assert_eq!(local.handed.lock().unwrap().len(), 5_000, "the scope-local subscriber's batches end too");
    assert!(global.pending.lock().unwrap().is_empty() && local.pending.lock().unwrap().is_empty());
    assert!(global.batches.load(Ordering::SeqCst) < 5_001, "events were handed over in batches");
    assert_eq!(rt.diagnostics().subscriber_failures, 10, "5 failed events for each subscriber");
    stack.pop(&scope, EndOptions::default()).unwrap();
}

#[test]
fn current_id_names_the_current_scope_and_a_fork_taken_at_one_id_parents_under_it() {
    let (rt, seen) = runtime_with_recorder();
    let stack = rt.new_stack();
    assert_eq!(stack.current_id(), 0, "an empty stack reports its base");
    let outer = stack.push(ScopeOptions::new("outer")).unwrap();
    let at_outer = stack.current_id();
    assert_ne!(at_outer, 0);
    assert_eq!(stack.current_id(), at_outer, "stable while the same scope is current");
    let pinned = stack.fork();
    let inner = stack.push(ScopeOptions::new("inner")).unwrap();
    assert_ne!(stack.current_id(), at_outer);
    // Work on the fork taken at `outer` still parents there, whatever the stack did since.
    pinned.mark(MarkOptions::new("late")).unwrap();
    stack.pop(&inner, EndOptions::default()).unwrap();
    assert_eq!(stack.current_id(), at_outer);
    stack.pop(&outer, EndOptions::default()).unwrap();
    assert_eq!(stack.current_id(), 0);
    assert!(rt.flush(T).unwrap());
    let events = seen.lock().unwrap();
    let late = events.iter().find(|e| &*e.name == "late").unwrap();
    assert_eq!(late.parent_uuid, Some(outer.uuid()));
}

/// A host that pushes scopes and never pops them builds a chain where each scope holds its
/// parent alive. Dropping it must not recurse once per scope: 300,000 nested scopes overflowed
/// a 2 MiB thread stack (a segfault in the host) before `ScopeNode` unlinked its ancestors in
/// a loop. Run on a thread with a small stack, so the test fails the same way anywhere.
#[test]
fn dropping_a_very_deep_scope_chain_does_not_overflow_the_stack() {
    let rt = Runtime::new(RuntimeConfig::default());
    let stack = rt.new_stack();
    let mut innermost = None;
    for _ in 0..300_000 {
        innermost = Some(stack.push(ScopeOptions::new("deep")).unwrap());
    }
    assert_eq!(stack.depth(), 300_000);
    let innermost = innermost.unwrap();
    assert_eq!(innermost.name(), "deep");
    let dropped = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            drop(stack);
            drop(innermost);
            true
        })
        .unwrap()
        .join();
    assert!(matches!(dropped, Ok(true)), "dropping the chain crashed its thread");
}
