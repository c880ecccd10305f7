//! Profiling driver for a tool call's hot path (a `perf record` / callgrind target):
//! `cargo run --release --example prof_call -- [calls]`, with
//! - `ENTERED=1`: host-run calls (`Stack::enter_tool` / `EnteredCall::exit`, the bindings'
//!   path) instead of managed ones (`Stack::tool`);
//! - `NOSUB=1`: nothing registered instead of one counting subscriber;
//! - `CAP=n`: the delivery queue's capacity.
//!
//! Prints the time per call before and after the flush that delivers every event.
use baton::{Middleware, Payload, Registration, Runtime, RuntimeConfig, ToolOptions};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn main() {
    let cap: usize = std::env::var("CAP").ok().and_then(|s| s.parse().ok()).unwrap_or(65_536);
    let rt = Runtime::new(RuntimeConfig { queue_capacity: cap, ..Default::default() });
    let delivered = Arc::new(AtomicU64::new(0));
    if std::env::var("NOSUB").is_err() {
        let count = delivered.clone();
        let subscriber = Middleware::subscriber(move |_| {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        rt.register(Registration::new("count"), subscriber).unwrap();
    }
    let entered = std::env::var("ENTERED").is_ok();
    let stack = rt.new_stack();
    let iters: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let args = json!({"query": "weather in Paris", "limit": 3});
    let t = std::time::Instant::now();
    for _ in 0..iters {
        if entered {
            let text = || Ok(Payload::from_json_trusted(r#"{"query":"weather in Paris","limit":3}"#.into()));
            let call = stack.enter_tool("search", text, ToolOptions::default()).unwrap().expect("no value middleware");
            call.exit(Ok(Payload::from_json_trusted(r#"{"temp":21}"#.into())));
        } else {
            std::hint::black_box(stack.tool("search", args.clone(), Ok, ToolOptions::default()).unwrap());
        }
    }
    let produced = t.elapsed();
    rt.flush(std::time::Duration::from_secs(60)).unwrap();
    let total = t.elapsed();
    eprintln!(
        "produce {:.1} ns/call, incl delivery {:.1} ns/call, delivered {}",
        produced.as_nanos() as f64 / iters as f64,
        total.as_nanos() as f64 / iters as f64,
        delivered.load(Ordering::Relaxed)
    );
}
