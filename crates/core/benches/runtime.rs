//! Hot-path benchmarks (criterion). Each group reports ns per operation; compare each
//! figure with `baseline/plain_call` from the same run. `just bench` runs them;
//! docs/performance.md records the figures.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::export::atof::{AtofFileExporter, FileMode};
use baton::{
    CallKind, Decision, EndOptions, LlmOptions, MarkOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions, ToolOptions,
};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

const FLUSH: Duration = Duration::from_secs(60);

#[inline(never)]
fn plain_tool(args: Value) -> baton::Result<Value> {
    Ok(args)
}

fn counting_subscriber(rt: &Runtime) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    rt.register(
        Registration::new("count"),
        Middleware::subscriber(move |e| {
            black_box(e);
            c.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }),
    )
    .unwrap();
    n
}

/// Times `iters` operations plus the flush that delivers their events.
fn with_delivery(rt: &Runtime, iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    assert!(rt.flush(FLUSH).unwrap());
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let args = json!({"query": "weather in Paris", "limit": 3});

    c.bench_function("baseline/plain_call", |b| b.iter(|| plain_tool(black_box(args.clone()))));

    {
        let rt = Runtime::new(RuntimeConfig::default());
        let stack = rt.new_stack();
        c.bench_function("tool/nothing_registered", |b| {
            b.iter(|| stack.tool("search", black_box(args.clone()), plain_tool, ToolOptions::default()).unwrap())
        });
        c.bench_function("scope/push_pop_nothing_registered", |b| {
            b.iter(|| {
                let s = stack.push(ScopeOptions::new("step")).unwrap();
                stack.pop(&s, EndOptions::default()).unwrap();
            })
        });
    }
    {
        let rt = Runtime::new(RuntimeConfig::default());
        let _n = counting_subscriber(&rt);
        let stack = rt.new_stack();
        c.bench_function("tool/one_subscriber_incl_delivery", |b| {
            b.iter_custom(|iters| {
                with_delivery(&rt, iters, || {
                    drop(stack.tool("search", black_box(args.clone()), plain_tool, ToolOptions::default()).unwrap())
                })
            })
        });
        c.bench_function("scope/push_pop_one_subscriber_incl_delivery", |b| {
            b.iter_custom(|iters| {
                with_delivery(&rt, iters, || {
                    let s = stack.push(ScopeOptions::new("step")).unwrap();
                    stack.pop(&s, EndOptions::default()).unwrap();
                })
            })
        });
        c.bench_function("llm_stream/per_chunk_one_subscriber_incl_delivery", |b| {
            b.iter_custom(|iters| {
                let chunks = iters.max(1);
                let start = Instant::now();
                let s = stack
                    .llm_stream(
                        "chat",
                        json!({"content": {"model": "m"}}),
                        move |_| Ok((0..chunks).map(|i| Ok(json!({"delta": i})))),
                        LlmOptions::default(),
                    )
                    .unwrap();
                for c in s {
                    black_box(c.unwrap());
                }
                assert!(rt.flush(FLUSH).unwrap());
                start.elapsed()
            })
        });
    }
    {
        let rt = Runtime::new(RuntimeConfig::default());
        let _n = counting_subscriber(&rt);
        rt.register(Registration::new("guard"), Middleware::guardrail(CallKind::Tool, |_, _| Ok(Decision::Allow))).unwrap();
        rt.register(
            Registration::new("rewrite"),
            Middleware::request_intercept(CallKind::Tool, |_, mut a| {
                a["limit"] = json!(5);
                Ok(a)
            }),
        )
        .unwrap();
        rt.register(Registration::new("wrap"), Middleware::execution_intercept(CallKind::Tool, |_, a, next| next(a))).unwrap();
        let stack = rt.new_stack();
        c.bench_function("tool/full_chain_incl_delivery", |b| {
            b.iter_custom(|iters| {
                with_delivery(&rt, iters, || {
                    drop(stack.tool("search", black_box(args.clone()), plain_tool, ToolOptions::default()).unwrap())
                })
            })
        });
    }
    {
        let dir = std::env::temp_dir().join(format!("baton-bench-{}", std::process::id()));
        let rt = Runtime::new(RuntimeConfig::default());
        let exporter = Arc::new(AtofFileExporter::open(dir.join("events.jsonl"), FileMode::Overwrite).unwrap());
        rt.register(Registration::new("atof"), Middleware::Subscriber(exporter)).unwrap();
        let stack = rt.new_stack();
        let mut group = c.benchmark_group("atof_file");
        group.throughput(criterion::Throughput::Elements(1));
        group.bench_function("mark_to_file_incl_flush", |b| {
            b.iter_custom(|iters| with_delivery(&rt, iters, || stack.mark(MarkOptions::new("tick").data(json!({"n": 1}))).unwrap()))
        });
        group.finish();
        let _ = std::fs::remove_dir_all(dir);
    }
}

criterion_group! {
    name = runtime;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = benches
}
criterion_main!(runtime);
