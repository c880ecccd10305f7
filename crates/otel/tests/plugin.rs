//! The `opentelemetry` section through the plugin system: field-named diagnostics, and an
//! initialized configuration exporting to a receiver (in-process OTLP/HTTP).

mod common;

use std::time::Duration;

use baton::{EndOptions, Runtime, RuntimeConfig, ScopeOptions};
use common::mini::MiniReceiver;
use serde_json::{json, Value};

fn doc(otel: Value) -> Value {
    json!({"version": 1, "components": [{"kind": "observability", "config": {"opentelemetry": otel}}]})
}

fn diags(rt: &Runtime, otel: Value) -> Vec<(String, String, String)> {
    rt.plugin_validate(&doc(otel))
        .into_iter()
        .map(|d| (d.level.as_str().to_string(), d.code.to_string(), d.field.unwrap_or_default()))
        .collect()
}

#[test]
fn invalid_sections_name_their_fields() {
    baton_otel::install();
    let rt = Runtime::new(RuntimeConfig::default());
    let p = "components[0].config.opentelemetry";
    let got = diags(
        &rt,
        json!({"enabled": true, "endpoints": [
            {"type": "zipkin", "transport": "http_json", "endpoint": "localhost:4318"},
            {"endpoint": "http://h:4318", "timeout_millis": "soon", "headers": {"x": 1}, "max_queue_size": 0, "colour": "red"},
            {"endpoint": "https://collector:4318", "header_env": "BATON_OTEL_SURELY_UNSET", "certificate": "/surely/missing/ca.pem"},
            "not a table"
        ], "logs": {"enabled": "yes"}}),
    );
    let expect = |level: &str, code: &str, field: &str| {
        assert!(
            got.iter().any(|(l, c, f)| l == level && c == code && f == &format!("{p}.{field}")),
            "missing {level} {code} {p}.{field} in {got:#?}"
        );
    };
    expect("error", "unsupported_value", "endpoints[0].type");
    expect("error", "unsupported_value", "endpoints[0].transport");
    expect("error", "invalid_value", "endpoints[0].endpoint");
    expect("error", "invalid_type", "endpoints[1].timeout_millis");
    expect("error", "invalid_type", "endpoints[1].headers.x");
    expect("warning", "unknown_field", "endpoints[1].colour");
    // https is accepted; its CA file is checked
    expect("error", "invalid_value", "endpoints[2].certificate");
    assert!(!got.iter().any(|(_, _, f)| f == &format!("{p}.endpoints[2].endpoint")), "https endpoints are valid: {got:#?}");
    expect("warning", "invalid_value", "endpoints[2].header_env");
    expect("error", "invalid_type", "endpoints[3]");
    expect("error", "invalid_type", "logs.enabled");

    let got = diags(&rt, json!({"enabled": true, "endpoints": [{"max_queue_size": 0}]}));
    assert_eq!(got, [("error".into(), "invalid_value".into(), format!("{p}.endpoints[0].max_queue_size"))]);
    let got = diags(&rt, json!({"enabled": true}));
    assert_eq!(got, [("error".into(), "missing_field".into(), format!("{p}.endpoints"))]);
    assert!(diags(&rt, json!({"enabled": true, "endpoints": [{}]})).is_empty());
    assert!(rt.plugin_initialize(&doc(json!({"enabled": true, "endpoints": [{"type": "nope"}]}))).is_err());
}

#[test]
fn initialize_exports_and_clear_flushes() {
    baton_otel::install();
    let r = MiniReceiver::start();
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt
        .plugin_initialize(&doc(json!({"enabled": true, "metrics": {"enabled": false}, "endpoints": [
            {"type": "openinference", "endpoint": r.endpoint(), "transport": "http_binary", "service_name": "plugged", "scheduled_delay_millis": 60000}
        ]})))
        .unwrap();
    let names: Vec<String> = report.components[0].registrations.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(names, ["observability.otel.0.openinference"]);
    let stack = rt.new_stack();
    let s = stack.push(ScopeOptions::new("work").category("agent")).unwrap();
    stack.metric("m", json!(1), None).unwrap();
    stack.pop(&s, EndOptions::default()).unwrap();
    // the scheduled delay is a minute: only flush (run by the runtime on the dispatcher) sends it now
    assert!(rt.flush(Duration::from_secs(5)).unwrap());
    {
        let got = r.got.lock().unwrap();
        let spans = got.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "work");
        assert!(got.metrics.is_empty(), "metrics.enabled = false");
    }
    rt.plugin_clear().unwrap();
    rt.shutdown(Duration::from_secs(5)).unwrap();
}
