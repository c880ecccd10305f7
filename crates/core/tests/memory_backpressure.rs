//! Memory stays bounded when a subscriber is slower than the producer: the queue fills to its
//! capacity and the producer waits (block policy) instead of the queue growing. One test per
//! binary, so the peak RSS belongs to this test alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::{MarkOptions, Middleware, Registration, Runtime, RuntimeConfig};
use serde_json::json;

fn peak_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_slow_subscriber_fills_the_queue_but_memory_stays_bounded() {
    let rt = Runtime::new(RuntimeConfig::default()); // capacity 65,536, block policy
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let full = Arc::new(AtomicU64::new(0));
    let f = full.clone();
    let probe = rt.clone();
    rt.register(
        Registration::new("slow"),
        Middleware::subscriber(move |_| {
            // Hold the first event until the producer has filled the queue (whatever the
            // build's speed), so the test always exercises a full queue.
            if s.fetch_add(1, Ordering::Relaxed) == 0 {
                let deadline = Instant::now() + Duration::from_secs(60);
                while probe.diagnostics().queued < 65_536 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                f.store(probe.diagnostics().queued, Ordering::SeqCst);
            }
            Ok(())
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    let base = peak_kib();
    const N: u64 = 300_000;
    let mut max_queued = 0;
    for i in 0..N {
        stack.mark(MarkOptions::new("m").data(json!({"i": i, "text": "a payload of a few dozen bytes"}))).unwrap();
        if i % 1024 == 0 {
            max_queued = max_queued.max(rt.diagnostics().queued);
        }
    }
    assert!(rt.flush(Duration::from_secs(120)).unwrap());
    let growth_mib = peak_kib().saturating_sub(base) as f64 / 1024.0;
    eprintln!("max queued {max_queued}, peak RSS growth {growth_mib:.1} MiB");
    assert_eq!(seen.load(Ordering::Relaxed), N, "block policy loses nothing");
    let at_full = full.load(Ordering::SeqCst);
    assert!(at_full >= 65_536, "the queue filled up while the subscriber was held ({at_full} queued)");
    assert!(max_queued <= 65_536 + 2, "the queue never exceeds its capacity (max queued {max_queued})");
    assert!(growth_mib < 64.0, "peak memory grew by {growth_mib:.1} MiB");
}
