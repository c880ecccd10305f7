//! Profiling driver for the managed-call hot path (`perf record` / callgrind target).
use baton::{Runtime, RuntimeConfig, ToolOptions};
use serde_json::json;
fn main() {
    let rt = Runtime::new(RuntimeConfig::default());
    let stack = rt.new_stack();
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let args = json!({"query": "weather in Paris", "limit": 3});
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(stack.tool("search", args.clone(), Ok, ToolOptions::default()).unwrap());
    }
    eprintln!("{:.1} ns/call", t.elapsed().as_nanos() as f64 / n as f64);
}
