//! Plugin documents, the observability component, and the ATOF stream sink against a real
//! HTTP receiver on localhost.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton::plugin::{self, Activation, Component, Diagnostics};
use baton::{EndOptions, ErrorKind, MarkOptions, Middleware, Runtime, RuntimeConfig, ScopeOptions};
use common::T;
use serde_json::{json, Value};

const REFERENCE_STYLE: &str = r#"
version = 1

[policy]
unknown_field = "error"

[[components]]
kind = "observability"
enabled = true

[components.config]
version = 4
enable_full_payloads = false

[components.config.atof]
enabled = true

[[components.config.atof.sinks]]
type = "file"
output_directory = "OUT"
filename = "events.jsonl"
mode = "append"

[components.config.atif]
enabled = true
agent_name = "NeMo Relay"
model_name = "unknown"
output_directory = "OUT"
filename_template = "trajectory-{session_id}.json"
"#;

#[test]
fn a_reference_style_toml_file_loads_validates_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let file = dir.path().join("plugins.toml");
    std::fs::write(&file, REFERENCE_STYLE.replace("OUT", out)).unwrap();
    let doc = plugin::load_document(&file).unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    assert_eq!(rt.plugin_validate(&doc), vec![]);
    let report = rt.plugin_initialize(&doc).unwrap();
    assert_eq!(report.to_json()["components"][0]["registrations"].as_array().unwrap().len(), 2);
    let stack = rt.new_stack();
    let agent = stack.push(ScopeOptions::new("agent").category("agent").input(json!("task"))).unwrap();
    stack.pop(&agent, EndOptions::default().output(json!("done"))).unwrap();
    rt.flush(T).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap().lines().count(), 2);
    let traj: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("trajectory-{}.json", agent.uuid()))).unwrap()).unwrap();
    assert_eq!(traj["schema_version"], "ATIF-v1.7");
    assert_eq!(traj["steps"][0]["message"], "task");
}

#[test]
fn invalid_documents_name_the_field() {
    let rt = Runtime::new(RuntimeConfig::default());
    let cases = [
        (json!({"version": 1, "components": [{"kind": "observability", "enabled": "yes"}]}), "components[0].enabled", "invalid_type"),
        (
            json!({"version": 1, "components": [{"kind": "observability", "config": {"atof": {"enabled": true, "sinks": [{"type": "stream", "url": "ftp://x"}]}}}]}),
            "components[0].config.atof.sinks[0].url",
            "invalid_value",
        ),
        (
            json!({"version": 1, "components": [{"kind": "observability", "config": {"atif": {"enabled": true, "filename_template": "t.json"}}}]}),
            "components[0].config.atif.filename_template",
            "invalid_value",
        ),
        (
            json!({"version": 1, "policy": {"unknown_component": "error"}, "components": [{"kind": "pricing"}]}),
            "components[0].kind",
            "unknown_component",
        ),
        (json!({"version": 2}), "version", "unsupported_version"),
        (json!({"version": 1, "policy": {"unknown_field": "sometimes"}}), "policy.unknown_field", "invalid_value"),
    ];
    for (doc, field, code) in cases {
        let diags = rt.plugin_validate(&doc);
        assert!(diags.iter().any(|d| d.field.as_deref() == Some(field) && d.code == code), "{field}/{code} not in {diags:?}");
        let err = rt.plugin_initialize(&doc).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains(field), "{err}");
        assert!(err.detail().unwrap().as_array().unwrap().iter().any(|d| d["field"] == field));
    }
    assert_eq!(plugin::parse_document("version = ", false).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn discovery_prefers_the_explicit_path_then_xdg() {
    let dir = tempfile::tempdir().unwrap();
    let explicit = dir.path().join("mine.toml");
    assert_eq!(plugin::discover(Some(&explicit)), Some(explicit.clone()));
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("baton")).unwrap();
    std::fs::write(xdg.join("baton/plugins.toml"), "version = 1\n").unwrap();
    std::env::set_var("XDG_CONFIG_HOME", &xdg);
    assert_eq!(plugin::discover(None), Some(xdg.join("baton/plugins.toml")));
}

/// A component written "in a host language": counts activations, can be told to fail.
struct Counter {
    activations: Arc<AtomicUsize>,
}

impl Component for Counter {
    fn kind(&self) -> &str {
        "counter"
    }
    fn validate(&self, config: &Value, d: &mut Diagnostics) {
        if let Some(o) = config.as_object() {
            d.check_keys(o, "", &["fail"]);
        }
    }
    fn activate(&self, config: &Value, a: &mut Activation<'_>) -> baton::Result<()> {
        self.activations.fetch_add(1, Ordering::SeqCst);
        a.register("sub", 0, Middleware::subscriber(|_| Ok(())))?;
        if config["fail"] == json!(true) {
            return Err(baton::Error::callback_failed("refusing to start"));
        }
        Ok(())
    }
}

#[test]
fn a_failing_activation_rolls_back_to_the_previous_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    let activations = Arc::new(AtomicUsize::new(0));
    rt.register_component(Arc::new(Counter { activations: activations.clone() })).unwrap();
    assert_eq!(rt.register_component(Arc::new(Counter { activations: activations.clone() })).unwrap_err().kind(), ErrorKind::AlreadyExists);
    let atof = |name: &str| json!({"kind": "observability", "config": {"atof": {"enabled": true, "output_directory": dir.path(), "filename": name}}});
    let good = json!({"version": 1, "components": [atof("a.jsonl"), {"kind": "counter"}]});
    rt.plugin_initialize(&good).unwrap();
    let bad = json!({"version": 1, "components": [atof("b.jsonl"), {"kind": "counter", "config": {"fail": true}}]});
    let err = rt.plugin_initialize(&bad).unwrap_err();
    assert!(err.message().contains("components[1] (counter) failed to activate: refusing to start"), "{err}");
    // Rolled back: the previous document is active again (a.jsonl receives, b.jsonl does not).
    rt.new_stack().mark(MarkOptions::new("after")).unwrap();
    rt.flush(T).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap().lines().count(), 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("b.jsonl")).unwrap_or_default().lines().count(), 0);
    assert_eq!(activations.load(Ordering::SeqCst), 3, "good, bad, and the restore of good");
    rt.plugin_clear().unwrap();
    rt.new_stack().mark(MarkOptions::new("cleared")).unwrap();
    rt.flush(T).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap().lines().count(), 1);
}

/// `(content type, body)` of every request a receiver got.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A minimal HTTP receiver on localhost: records bodies, answers 200 (after `delay`).
fn receiver(delay: Duration) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(10_000) {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut ctype, mut line) = (0usize, String::new(), String::new());
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if let Some(v) = lower.strip_prefix("content-type:") {
                    ctype = v.trim().to_string();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            std::thread::sleep(delay);
            sink.lock().unwrap().push((ctype, String::from_utf8(body).unwrap()));
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (format!("http://{addr}/ingest"), got)
}

fn stream_doc(url: &str, transport: &str, timeout_ms: u64) -> Value {
    json!({"version": 1, "components": [{"kind": "observability", "config": {"enable_full_payloads": true, "atof": {"enabled": true,
        "sinks": [{"type": "stream", "url": url, "transport": transport, "headers": {"x-team": "baton"}, "timeout_millis": timeout_ms}]}}}]})
}

#[test]
fn stream_sinks_post_each_event_or_ndjson_batches_to_a_real_receiver() {
    for transport in ["http_post", "ndjson"] {
        let (url, got) = receiver(Duration::ZERO);
        let rt = Runtime::new(RuntimeConfig::default());
        rt.plugin_initialize(&stream_doc(&url, transport, 2_000)).unwrap();
        let stack = rt.new_stack();
        for i in 0..20 {
            stack.mark(MarkOptions::new("m").data(json!(i))).unwrap();
        }
        rt.flush(T).unwrap();
        let got = got.lock().unwrap();
        let lines: Vec<Value> =
            got.iter().flat_map(|(_, b)| b.lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<Value>>()).collect();
        assert_eq!(lines.iter().map(|l| l["data"].as_u64().unwrap()).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>(), "{transport}");
        match transport {
            "http_post" => assert!(got.len() == 20 && got.iter().all(|(t, _)| t == "application/json")),
            _ => assert!(got.len() < 20 && got.iter().all(|(t, _)| t == "application/x-ndjson"), "batched: {} requests", got.len()),
        }
    }
}

#[test]
fn a_receiver_that_is_down_or_slow_never_blocks_the_application() {
    // Down: nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rt = Runtime::new(RuntimeConfig::default());
    rt.plugin_initialize(&stream_doc(&format!("http://127.0.0.1:{port}/"), "http_post", 200)).unwrap();
    let stack = rt.new_stack();
    let started = Instant::now();
    for _ in 0..1_000 {
        stack.mark(MarkOptions::new("m")).unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(2), "emitting never waits on the network");
    rt.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rt.diagnostics().dropped_events, 0, "the runtime queue itself never overflowed");

    // Slow: every request takes 300 ms; the sink's queue absorbs, then drops and counts.
    let (url, got) = receiver(Duration::from_millis(300));
    let rt = Runtime::new(RuntimeConfig::default());
    let mut doc = stream_doc(&url, "http_post", 1_000);
    doc["components"][0]["config"]["atof"]["sinks"][0]["transport"] = json!("http_post");
    rt.plugin_initialize(&doc).unwrap();
    let stack = rt.new_stack();
    let started = Instant::now();
    for _ in 0..20_000 {
        stack.mark(MarkOptions::new("m")).unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(3), "a slow receiver does not slow the producer");
    let t = Instant::now();
    let _ = rt.flush(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(8), "flush is bounded by the sink's timeouts");
    let diag = rt.diagnostics();
    assert!(diag.subscriber_failures > 0, "the sink's drops are counted as failed deliveries");
    assert!(!got.lock().unwrap().is_empty() || diag.subscriber_failures >= 10_000);
    // Removing the sink closes it on the dispatcher: that must not wait for the backlog.
    let t = Instant::now();
    rt.plugin_clear().unwrap();
    stack.mark(MarkOptions::new("after-clear")).unwrap();
    assert!(rt.flush(Duration::from_secs(10)).unwrap(), "delivery continues after the slow sink is closed");
    assert!(t.elapsed() < Duration::from_secs(5), "closing a sink with a slow receiver took {:?}", t.elapsed());
}
