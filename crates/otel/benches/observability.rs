//! Cost of the observability component (criterion): a managed tool call inside an agent
//! scope with ATOF (file) + ATIF (file) + OpenTelemetry (OTLP/HTTP, gen_ai) installed from a
//! plugins document, against a plain call and a single counting subscriber in the same run.
//! The OTLP endpoint is an in-process HTTP server that reads each request and answers 200.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use baton::{EndOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions, ToolOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

const FLUSH: Duration = Duration::from_secs(120);

#[inline(never)]
fn plain_tool(args: Value) -> baton::Result<Value> {
    Ok(args)
}

/// An OTLP/HTTP sink: reads a request (headers + Content-Length body), answers 200.
fn otlp_sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let (mut len, mut line) = (0usize, String::new());
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
                    if conn.write_all(ok).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/v1/traces")
}

fn observability_doc(dir: &std::path::Path, endpoint: &str) -> Value {
    json!({"version": 1, "components": [{"kind": "observability", "config": {"version": 1,
        "atof": {"enabled": true, "sinks": [{"type": "file", "output_directory": dir, "filename": "events.jsonl", "mode": "overwrite"}]},
        "atif": {"enabled": true, "output_directory": dir, "filename_template": "trajectory-{session_id}.json"},
        "opentelemetry": {"enabled": true, "endpoints": [{"type": "gen_ai", "endpoint": endpoint, "transport": "http_binary", "max_queue_size": 65536, "scheduled_delay_millis": 100}]}}}]})
}

/// `iters` tool calls inside one agent scope, then flush (delivery, files, OTLP export).
fn agent_run(rt: &Runtime, iters: u64, args: &Value) -> Duration {
    let stack = rt.new_stack();
    let start = Instant::now();
    let agent = stack.push(ScopeOptions::new("agent").category("agent").input(json!("go"))).unwrap();
    for i in 0..iters {
        let opts = ToolOptions { tool_call_id: Some(format!("c{}", i % 64)), ..Default::default() };
        black_box(stack.tool("search", args.clone(), plain_tool, opts).unwrap());
    }
    stack.pop(&agent, EndOptions::default()).unwrap();
    assert!(rt.flush(FLUSH).unwrap());
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    baton_otel::install();
    let args = json!({"query": "weather in Paris", "limit": 3});
    c.bench_function("observability/plain_call", |b| b.iter(|| plain_tool(black_box(args.clone()))));
    {
        let rt = Runtime::new(RuntimeConfig::default());
        rt.register(
            Registration::new("count"),
            Middleware::subscriber(|e| {
                black_box(e);
                Ok(())
            }),
        )
        .unwrap();
        c.bench_function("observability/one_subscriber_incl_delivery", |b| b.iter_custom(|iters| agent_run(&rt, iters, &args)));
    }
    {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig::default());
        rt.plugin_initialize(&observability_doc(dir.path(), &otlp_sink())).unwrap();
        let mut g = c.benchmark_group("observability");
        // Two events per managed call (tool start and end).
        g.throughput(Throughput::Elements(2));
        g.bench_function("atof_atif_otlp_incl_export", |b| b.iter_custom(|iters| agent_run(&rt, iters, &args)));
        g.finish();
        rt.shutdown(FLUSH).unwrap();
    }
}

criterion_group! {
    name = observability;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(4)).sample_size(20);
    targets = benches
}
criterion_main!(observability);
