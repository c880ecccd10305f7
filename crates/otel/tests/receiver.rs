//! OTLP export received by a real receiver (the official `opentelemetry-proto` Python package
//! behind `grpcio` and an HTTP server, tests/receiver/receiver.py) over both transports, for
//! every projection; plus a slow receiver. `just test-otel` runs these with the receiver
//! required; a plain `cargo test` skips them (with a note) when its venv is not installed.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use baton::{Middleware, Registration, Runtime, RuntimeConfig, ToolOptions};
use baton_otel::{EndpointConfig, OtelExporter};
use common::*;
use serde_json::{json, Value};

fn shared_receiver() -> Option<&'static Receiver> {
    init_env();
    static R: OnceLock<Option<Receiver>> = OnceLock::new();
    R.get_or_init(Receiver::start).as_ref()
}

/// Runs the scenario against the shared receiver and returns what it received.
fn scenario(transport: &str, kind: &str) -> Option<(Scenario, Received)> {
    let r = shared_receiver()?;
    let service = format!("svc-{kind}-{transport}");
    let s = run_scenario(&r.endpoint(transport), transport, kind, &service);
    let got = r.received(&service);
    Some((s, got))
}

fn str_attr(item: &Value, key: &str) -> String {
    attr(item, key).unwrap_or_else(|| panic!("no attribute {key} in {:?}", attr_keys(item))).as_str().unwrap().to_string()
}

/// What every projection shares: ids and parentage, timing, status, events, logs, metrics,
/// resource, headers and transport, counters.
fn common_checks(s: &Scenario, got: &Received, transport: &str, names: [&str; 3]) {
    let [agent_name, llm_name, tool_name] = names;
    assert_eq!(got.spans.len(), 3, "{:#?}", got.spans);
    let agent = got.span(agent_name);
    let llm = got.span(llm_name);
    let tool = got.span(tool_name);
    // trace id = root scope uuid; span id = last 8 bytes of the scope uuid; exact parentage
    for span in [agent, llm, tool] {
        assert_eq!(span["trace_id"], s.agent_uuid.as_str(), "{span:#}");
        assert_eq!(span["span_id"].as_str().unwrap().len(), 16);
        assert_eq!(span["status"]["code"], "STATUS_CODE_OK");
        let (start, end) = (ns(&span["start_time_unix_nano"]), ns(&span["end_time_unix_nano"]));
        assert!(start > 1_600_000_000_000_000_000 && end > start, "{start} {end}");
    }
    assert_eq!(agent["span_id"], s.agent_span.as_str());
    assert!(agent.get("parent_span_id").is_none(), "root has no parent: {agent:#}");
    assert_eq!(llm["parent_span_id"], s.agent_span.as_str());
    assert_eq!(tool["parent_span_id"], s.agent_span.as_str());
    assert_ne!(llm["span_id"], tool["span_id"]);
    assert!(ns(&llm["start_time_unix_nano"]) >= ns(&agent["start_time_unix_nano"]));
    assert!(ns(&tool["end_time_unix_nano"]) <= ns(&agent["end_time_unix_nano"]));
    assert_eq!(llm["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(tool["kind"], "SPAN_KIND_INTERNAL");
    // metadata flattened with dotted keys
    assert_eq!(str_attr(agent, "session.id"), "sess-1");
    assert_eq!(str_attr(agent, "user.id"), "u-7");
    // the mark is a span event on its open parent
    let events = agent["events"].as_array().expect("agent span events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["name"], "note");
    assert_eq!(str_attr(&events[0], "baton.data"), r#"{"text":"added"}"#);
    // the mark without an open parent is a log record without trace context
    assert_eq!(got.logs.len(), 1, "{:#?}", got.logs);
    assert_eq!(got.logs[0]["event_name"], "orphan");
    assert_eq!(got.logs[0]["body"]["string_value"], r#"{"level":"info"}"#);
    assert_eq!(got.logs[0]["severity_number"], "SEVERITY_NUMBER_INFO");
    assert!(got.logs[0].get("trace_id").is_none());
    // the metric mark is a gauge with one point per measurement
    assert_eq!(got.metrics.len(), 1, "{:#?}", got.metrics);
    let m = &got.metrics[0];
    assert_eq!((m["name"].as_str(), m["unit"].as_str()), (Some("latency"), Some("ms")));
    let points = m["gauge"]["data_points"].as_array().expect("a gauge");
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["as_double"], 12.5);
    assert_eq!(str_attr(&points[0], "route"), "add");
    assert_eq!(points[1]["as_int"], "3");
    assert_eq!(str_attr(&points[1], "route"), "llm");
    // resource, transport and headers (config + header_env) on every request
    assert!(got.requests.len() >= 3);
    for r in &got.requests {
        assert_eq!(r["transport"], if transport == "grpc" { "grpc" } else { "http" });
        assert_eq!(r["headers"]["x-team"], "baton", "{:#}", r["headers"]);
        assert_eq!(r["headers"]["x-from-env"], "from-env");
        assert_eq!(r["headers"]["x-second"], "2");
        if transport != "grpc" {
            assert_eq!(r["headers"]["content-type"], "application/x-protobuf");
        }
    }
    let resource = &got.requests[0]["request"];
    let res = resource.as_object().unwrap().values().next().unwrap()[0]["resource"].clone();
    assert_eq!(str_attr(&res, "deployment.environment"), "test");
    assert_eq!(str_attr(&res, "telemetry.sdk.name"), "baton");
    // counters
    let st = &s.stats;
    assert_eq!((st.spans_exported, st.logs_exported, st.metrics_exported), (3, 1, 2), "{st:?}");
    assert_eq!(st.dropped(), 0, "{st:?}");
    assert_eq!(st.open_spans, 0);
}

fn ns(v: &Value) -> u64 {
    v.as_str().map(|s| s.parse().unwrap()).or(v.as_u64()).unwrap()
}

fn check_full(s: &Scenario, got: &Received, transport: &str) {
    common_checks(s, got, transport, ["planner", "openai", "add"]);
    let agent = got.span("planner");
    assert_eq!(str_attr(agent, "baton.category"), "agent");
    assert_eq!(str_attr(agent, "baton.name"), "planner");
    assert_eq!(str_attr(agent, "baton.input"), r#""plan a sum""#);
    assert_eq!(str_attr(agent, "baton.output"), r#"{"answer":3}"#);
    let uuid = str_attr(agent, "baton.uuid");
    assert_eq!(uuid.replace('-', ""), s.agent_uuid);
    let llm = got.span("openai");
    assert_eq!(str_attr(llm, "baton.category"), "llm");
    assert_eq!(str_attr(llm, "baton.category_profile.model_name"), "gpt-4o");
    assert_eq!(str_attr(llm, "baton.parent_uuid"), uuid);
    let input: Value = serde_json::from_str(&str_attr(llm, "baton.input")).unwrap();
    assert_eq!(input["content"]["model"], "gpt-4o");
    assert!(input["headers"].get("authorization").is_none(), "credentials are stripped before export");
    let output: Value = serde_json::from_str(&str_attr(llm, "baton.output")).unwrap();
    assert_eq!(output, openai_response());
    let tool = got.span("add");
    assert_eq!(str_attr(tool, "baton.category_profile.tool_call_id"), "call_1");
    assert_eq!(str_attr(tool, "baton.input"), r#"{"a":1,"b":2}"#);
    assert_eq!(str_attr(tool, "baton.output"), "3");
    // span id = last 8 bytes of the scope uuid
    for span in [agent, llm, tool] {
        let u = str_attr(span, "baton.uuid").replace('-', "");
        assert_eq!(span["span_id"].as_str().unwrap(), &u[16..]);
    }
}

fn check_gen_ai(s: &Scenario, got: &Received, transport: &str) {
    common_checks(s, got, transport, ["invoke_agent planner", "chat gpt-4o", "execute_tool add"]);
    let agent = got.span("invoke_agent planner");
    assert_eq!(str_attr(agent, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(str_attr(agent, "gen_ai.agent.name"), "planner");
    let llm = got.span("chat gpt-4o");
    assert_eq!(str_attr(llm, "gen_ai.operation.name"), "chat");
    assert_eq!(str_attr(llm, "gen_ai.request.model"), "gpt-4o");
    assert_eq!(str_attr(llm, "gen_ai.response.model"), "gpt-4o-2024-08-06");
    assert_eq!(str_attr(llm, "gen_ai.response.id"), "chatcmpl-1");
    assert_eq!(attr(llm, "gen_ai.usage.input_tokens"), Some(json!(42)));
    assert_eq!(attr(llm, "gen_ai.usage.output_tokens"), Some(json!(7)));
    assert_eq!(attr(llm, "gen_ai.response.finish_reasons"), Some(json!(["tool_calls"])));
    assert_eq!(attr(llm, "gen_ai.request.temperature"), Some(json!(0.2)));
    assert_eq!(attr(llm, "gen_ai.request.max_tokens"), Some(json!(64)));
    assert!(attr(llm, "baton.input").is_none(), "gen_ai does not carry payloads");
    let tool = got.span("execute_tool add");
    assert_eq!(str_attr(tool, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(str_attr(tool, "gen_ai.tool.name"), "add");
    assert_eq!(str_attr(tool, "gen_ai.tool.call.id"), "call_1");
}

fn check_openinference(s: &Scenario, got: &Received, transport: &str) {
    common_checks(s, got, transport, ["planner", "openai", "add"]);
    let agent = got.span("planner");
    assert_eq!(str_attr(agent, "openinference.span.kind"), "AGENT");
    assert_eq!(str_attr(agent, "input.value"), "plan a sum");
    assert_eq!(str_attr(agent, "input.mime_type"), "text/plain");
    assert_eq!(str_attr(agent, "output.value"), r#"{"answer":3}"#);
    assert_eq!(str_attr(agent, "output.mime_type"), "application/json");
    let llm = got.span("openai");
    assert_eq!(str_attr(llm, "openinference.span.kind"), "LLM");
    assert_eq!(str_attr(llm, "llm.model_name"), "gpt-4o-2024-08-06");
    assert_eq!(attr(llm, "llm.token_count.prompt"), Some(json!(42)));
    assert_eq!(attr(llm, "llm.token_count.completion"), Some(json!(7)));
    assert_eq!(attr(llm, "llm.token_count.total"), Some(json!(49)));
    assert_eq!(str_attr(llm, "llm.input_messages.0.message.role"), "system");
    assert_eq!(str_attr(llm, "llm.input_messages.0.message.content"), "You add numbers.");
    assert_eq!(str_attr(llm, "llm.input_messages.1.message.role"), "user");
    assert_eq!(str_attr(llm, "llm.input_messages.1.message.content"), "What is 1+2?");
    assert_eq!(str_attr(llm, "llm.output_messages.0.message.role"), "assistant");
    assert_eq!(str_attr(llm, "llm.output_messages.0.message.content"), "Let me add.");
    assert_eq!(str_attr(llm, "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"), "add");
    assert_eq!(str_attr(llm, "llm.output_messages.0.message.tool_calls.0.tool_call.id"), "call_1");
    let params: Value = serde_json::from_str(&str_attr(llm, "llm.invocation_parameters")).unwrap();
    assert_eq!(params, json!({"temperature": 0.2, "max_tokens": 64}));
    let input: Value = serde_json::from_str(&str_attr(llm, "input.value")).unwrap();
    assert_eq!(input["content"]["messages"][1]["content"], "What is 1+2?");
    let tool = got.span("add");
    assert_eq!(str_attr(tool, "openinference.span.kind"), "TOOL");
    assert_eq!(str_attr(tool, "tool.name"), "add");
    assert_eq!(str_attr(tool, "tool_call.id"), "call_1");
    assert_eq!(str_attr(tool, "output.value"), "3");
}

#[test]
fn http_full() {
    if let Some((s, got)) = scenario("http_binary", "full") {
        check_full(&s, &got, "http_binary");
    }
}

#[test]
fn grpc_full() {
    if let Some((s, got)) = scenario("grpc", "full") {
        check_full(&s, &got, "grpc");
    }
}

#[test]
fn http_gen_ai() {
    if let Some((s, got)) = scenario("http_binary", "gen_ai") {
        check_gen_ai(&s, &got, "http_binary");
    }
}

#[test]
fn grpc_gen_ai() {
    if let Some((s, got)) = scenario("grpc", "gen_ai") {
        check_gen_ai(&s, &got, "grpc");
    }
}

#[test]
fn http_openinference() {
    if let Some((s, got)) = scenario("http_binary", "openinference") {
        check_openinference(&s, &got, "http_binary");
    }
}

#[test]
fn grpc_openinference() {
    if let Some((s, got)) = scenario("grpc", "openinference") {
        check_openinference(&s, &got, "grpc");
    }
}

/// A receiver that answers 2 s late, an exporter with a 300 ms timeout and a queue of 8:
/// the application never waits for it, flush and shutdown return within the timeout bounds,
/// and every span is accounted for as exported, failed or dropped.
fn slow_receiver(transport: &str) {
    init_env();
    let Some(r) = Receiver::start() else { return };
    r.set_delay(2.0);
    let config = EndpointConfig {
        service_name: format!("slow-{transport}"),
        timeout_millis: 300,
        max_queue_size: 8,
        max_export_batch_size: 4,
        scheduled_delay_millis: 10,
        ..EndpointConfig::new("full", &r.endpoint(transport), transport)
    };
    let exporter = Arc::new(OtelExporter::new(config).unwrap());
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("otel"), Middleware::Subscriber(exporter.clone())).unwrap();
    let stack = rt.new_stack();
    let t = Instant::now();
    for i in 0..200 {
        stack.tool("t", json!({"i": i}), Ok, ToolOptions::default()).unwrap();
    }
    let emit = t.elapsed();
    assert!(emit < Duration::from_secs(2), "200 tool calls took {emit:?}: the application waited for the receiver");

    let t = Instant::now();
    let _ = rt.flush(Duration::from_secs(30)).unwrap();
    let flush = t.elapsed();
    assert!(flush < Duration::from_millis(1500), "flush took {flush:?} (timeout_millis = 300)");

    let t = Instant::now();
    rt.shutdown(Duration::from_secs(30)).unwrap();
    let shutdown = t.elapsed();
    assert!(shutdown < Duration::from_millis(2500), "shutdown took {shutdown:?}");

    let st = exporter.stats();
    assert!(st.spans_failed >= 4, "{st:?}");
    assert!(st.spans_dropped > 0, "{st:?}");
    assert!(st.requests_failed >= 1, "{st:?}");
    assert!(st.last_error.as_deref().unwrap_or_default().to_lowercase().contains("timeout"), "{st:?}");
    assert_eq!(st.spans_exported + st.spans_failed + st.spans_dropped, 200, "every span accounted for: {st:?}");
    assert_eq!(st.dropped(), st.spans_failed + st.spans_dropped);
}

#[test]
fn slow_receiver_http() {
    slow_receiver("http_binary");
}

#[test]
fn slow_receiver_grpc() {
    slow_receiver("grpc");
}
