//! Times a managed call with each observability exporter alone (a profiling aid for
//! docs/performance.md). Usage: `obs_parts [OTLP_HTTP_ENDPOINT]`.
use std::time::{Duration, Instant};

use baton::{EndOptions, Runtime, RuntimeConfig, ScopeOptions, ToolOptions};
use serde_json::json;

fn main() {
    baton_otel::install();
    let endpoint = std::env::args().nth(1).unwrap_or_default();
    let dir = std::env::temp_dir().join("baton-obs-parts");
    let parts = [
        (
            "atof",
            json!({"atof": {"enabled": true, "sinks": [{"type": "file", "output_directory": dir, "filename": "e.jsonl", "mode": "overwrite"}]}}),
        ),
        ("atif", json!({"atif": {"enabled": true, "output_directory": dir}})),
        (
            "otlp",
            json!({"opentelemetry": {"enabled": true, "endpoints": [{"type": "gen_ai", "endpoint": endpoint, "max_queue_size": 65536, "scheduled_delay_millis": 100}]}}),
        ),
    ];
    for (name, cfg) in parts {
        if name == "otlp" && endpoint.is_empty() {
            continue;
        }
        let rt = Runtime::new(RuntimeConfig::default());
        rt.plugin_initialize(&json!({"version": 1, "components": [{"kind": "observability", "config": cfg}]})).unwrap();
        let stack = rt.new_stack();
        let n = 20_000;
        let t = Instant::now();
        let agent = stack.push(ScopeOptions::new("agent").category("agent")).unwrap();
        for i in 0..n {
            stack
                .tool("search", json!({"q": i}), Ok, ToolOptions { tool_call_id: Some(format!("c{}", i % 64)), ..Default::default() })
                .unwrap();
        }
        stack.pop(&agent, EndOptions::default()).unwrap();
        let emitted = t.elapsed();
        rt.flush(Duration::from_secs(120)).unwrap();
        println!(
            "{name}: emit {:.2} us/call, incl flush {:.2} us/call",
            emitted.as_secs_f64() * 1e6 / n as f64,
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        rt.shutdown(Duration::from_secs(30)).unwrap();
    }
}
