//! Profiling driver: managed tool calls with one subscriber, including delivery.
use baton::{Middleware, Registration, Runtime, RuntimeConfig, ToolOptions};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
fn main() {
    let cap: usize = std::env::var("CAP").ok().and_then(|s| s.parse().ok()).unwrap_or(65_536);
    let rt = Runtime::new(RuntimeConfig { queue_capacity: cap, ..Default::default() });
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    rt.register(
        Registration::new("count"),
        Middleware::subscriber(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    let iters: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let args = json!({"query": "weather in Paris", "limit": 3});
    let t = std::time::Instant::now();
    for _ in 0..iters {
        std::hint::black_box(stack.tool("search", args.clone(), Ok, ToolOptions::default()).unwrap());
    }
    let produced = t.elapsed();
    rt.flush(std::time::Duration::from_secs(60)).unwrap();
    let total = t.elapsed();
    eprintln!(
        "produce {:.1} ns/call, incl delivery {:.1} ns/call, delivered {}",
        produced.as_nanos() as f64 / iters as f64,
        total.as_nanos() as f64 / iters as f64,
        n.load(Ordering::Relaxed)
    );
}
