//! Profiling driver: host-run tool calls (`enter_tool` / `exit`, the bindings' path) with one
//! subscriber, including delivery. `cargo run --release --example prof_enter -- 200000`.
use baton::{Middleware, Payload, Registration, Runtime, RuntimeConfig, ToolOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
fn main() {
    let rt = Runtime::new(RuntimeConfig::default());
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    let subscribe = std::env::var("NOSUB").is_err();
    if subscribe {
        rt.register(
            Registration::new("count"),
            Middleware::subscriber(move |_| {
                c.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }),
        )
        .unwrap();
    }
    let stack = rt.new_stack();
    let iters: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let t = std::time::Instant::now();
    for _ in 0..iters {
        let entered = stack
            .enter_tool(
                "search",
                || Ok(Payload::from_json_trusted(r#"{"query":"weather in Paris","limit":3}"#.into())),
                ToolOptions::default(),
            )
            .unwrap()
            .unwrap();
        entered.exit(Ok(Payload::from_json_trusted(r#"{"temp":21}"#.into())));
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
