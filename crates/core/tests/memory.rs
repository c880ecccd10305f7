//! Memory stays bounded: a million events through a subscriber grow the peak RSS by less
//! than 64 MiB, whichever thread frees delivered events (`baton::set_free_on`). This binary
//! holds this one test, so nothing else shares the process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton::{FreeOn, MarkOptions, Middleware, Registration, Runtime, RuntimeConfig};
use serde_json::json;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_million_events_grow_peak_memory_by_less_than_64_mib() {
    const WARM_UP: u64 = 1_000;
    // Producers free delivered events (the default), then the dispatcher does.
    for free_on in [FreeOn::Producer, FreeOn::Dispatcher] {
        baton::set_free_on(free_on);
        let rt = Runtime::new(RuntimeConfig::default());
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        rt.register(
            Registration::new("count"),
            Middleware::subscriber(move |e| {
                s.fetch_add(u64::from(!e.data.is_null()), Ordering::Relaxed);
                Ok(())
            }),
        )
        .unwrap();
        let stack = rt.new_stack();
        // Warm up the dispatcher thread and allocator before taking the baseline.
        for i in 0..WARM_UP {
            stack.mark(MarkOptions::new("warm").data(json!(i))).unwrap();
        }
        rt.flush(Duration::from_secs(30)).unwrap();
        let base = status_kib("VmHWM:");
        const N: u64 = 1_000_000;
        for i in 0..N {
            stack.mark(MarkOptions::new("m").data(json!({"i": i, "text": "some payload text"}))).unwrap();
        }
        assert!(rt.flush(Duration::from_secs(120)).unwrap());
        let peak = status_kib("VmHWM:");
        let growth_mib = (peak.saturating_sub(base)) as f64 / 1024.0;
        eprintln!("{free_on:?} frees: peak RSS growth for {N} events: {growth_mib:.1} MiB");
        assert_eq!(rt.diagnostics().delivered_events, N + WARM_UP);
        assert_eq!(seen.load(Ordering::Relaxed), N + WARM_UP);
        assert!(growth_mib < 64.0, "{free_on:?} frees: peak memory grew by {growth_mib:.1} MiB");
        assert!(rt.shutdown(Duration::from_secs(30)).unwrap());
    }
}
