//! Test helpers: the Python OTLP receiver (tests/receiver/receiver.py) as a child process,
//! the scenario every projection test runs, and readers for the receiver's JSON.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use baton::{EndOptions, LlmOptions, MarkOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions, ToolOptions};
use baton_otel::{EndpointConfig, OtelExporter, OtelStats};
use serde_json::{json, Map, Value};

/// A running receiver; killed when dropped.
pub struct Receiver {
    child: Child,
    _stdin: ChildStdin,
    pub http_port: u16,
    pub grpc_port: u16,
    /// The plain-HTTP port of the control API (the HTTP port unless TLS).
    pub control_port: u16,
    /// TLS mode: the receiver's CA (ca.pem), an unrelated CA, and the directory with
    /// client.pem/client.key (signed by the CA).
    pub tls: Option<TlsFiles>,
}

pub struct TlsFiles {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BATON_OTEL_RECEIVER_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/receiver/.venv/bin/python");
    venv.exists().then_some(venv)
}

impl Receiver {
    /// Starts the receiver, or `None` (with a note) when its venv is not installed —
    /// unless `BATON_OTEL_REQUIRE_RECEIVER=1` (set by `just test-otel`), which makes that a failure.
    pub fn start() -> Option<Receiver> {
        Self::start_with(&[])
    }

    /// A receiver serving both transports over TLS with a CA of its own (see receiver.py);
    /// `mutual` makes it demand a client certificate signed by that CA.
    pub fn start_tls(mutual: bool) -> Option<Receiver> {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--tls".to_string(), dir.path().display().to_string()];
        if mutual {
            args.push("--require-client-cert".into());
        }
        let mut r = Self::start_with(&args)?;
        r.tls = Some(TlsFiles { ca: dir.path().join("ca.pem"), other_ca: dir.path().join("other-ca.pem"), dir });
        Some(r)
    }

    fn start_with(args: &[String]) -> Option<Receiver> {
        let required = std::env::var("BATON_OTEL_REQUIRE_RECEIVER").is_ok_and(|v| v == "1");
        let Some(py) = python() else {
            assert!(!required, "BATON_OTEL_REQUIRE_RECEIVER=1 but the receiver venv is missing: run scripts/setup.sh --bindings");
            eprintln!("SKIPPED: OTLP receiver venv not installed (scripts/setup.sh --bindings installs it)");
            return None;
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/receiver/receiver.py");
        let mut child = Command::new(&py)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", py.display()));
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let ports: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("receiver said {line:?}: {e}"));
        Some(Receiver {
            child,
            _stdin: stdin,
            http_port: ports["http"].as_u64().unwrap() as u16,
            grpc_port: ports["grpc"].as_u64().unwrap() as u16,
            control_port: ports["control"].as_u64().unwrap() as u16,
            tls: None,
        })
    }

    pub fn endpoint(&self, transport: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match transport {
            "grpc" => format!("{scheme}://127.0.0.1:{}", self.grpc_port),
            _ => format!("{scheme}://127.0.0.1:{}", self.http_port),
        }
    }

    /// The raw `GET /received` answer.
    pub fn received_all(&self) -> Value {
        self.call("GET", "/received")
    }

    fn call(&self, method: &str, path: &str) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.control_port)).unwrap();
        write!(s, "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("receiver answered {out:?}: {e}"))
    }

    pub fn set_delay(&self, seconds: f64) {
        self.call("POST", &format!("/control/delay?seconds={seconds}"));
    }

    /// Everything received for `service` (by `service.name`), per signal.
    pub fn received(&self, service: &str) -> Received {
        let all = self.call("GET", "/received");
        let pick = |signal: &str, resource_key: &str, scope_key: &str, items_key: &str| -> (Vec<Value>, Vec<Value>) {
            let mut items = Vec::new();
            let mut requests = Vec::new();
            for r in all[signal].as_array().unwrap() {
                let mut mine = false;
                for res in r["request"][resource_key].as_array().into_iter().flatten() {
                    if attr(&res["resource"], "service.name") != Some(json!(service)) {
                        continue;
                    }
                    mine = true;
                    for sc in res[scope_key].as_array().into_iter().flatten() {
                        items.extend(sc[items_key].as_array().into_iter().flatten().cloned());
                    }
                }
                if mine {
                    requests.push(r.clone());
                }
            }
            (items, requests)
        };
        let (spans, span_requests) = pick("traces", "resource_spans", "scope_spans", "spans");
        let (logs, log_requests) = pick("logs", "resource_logs", "scope_logs", "log_records");
        let (metrics, metric_requests) = pick("metrics", "resource_metrics", "scope_metrics", "metrics");
        let mut requests = span_requests;
        requests.extend(log_requests);
        requests.extend(metric_requests);
        Received { spans, logs, metrics, requests }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Received {
    pub spans: Vec<Value>,
    pub logs: Vec<Value>,
    pub metrics: Vec<Value>,
    /// Whole requests (`{transport, headers, request}`) that carried this service's data.
    pub requests: Vec<Value>,
}

impl Received {
    pub fn span(&self, name: &str) -> &Value {
        let found: Vec<&Value> = self.spans.iter().filter(|s| s["name"] == name).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one span named {name:?}; spans: {:?}",
            self.spans.iter().map(|s| &s["name"]).collect::<Vec<_>>()
        );
        found[0]
    }
}

/// An OTLP `AnyValue` (protobuf JSON) as plain JSON; int64s arrive as strings.
pub fn any_value(v: &Value) -> Value {
    if let Some(s) = v.get("string_value") {
        return s.clone();
    }
    if let Some(i) = v.get("int_value") {
        return json!(i.as_str().map(|s| s.parse::<i64>().unwrap()).or(i.as_i64()).unwrap());
    }
    if let Some(d) = v.get("double_value") {
        return d.clone();
    }
    if let Some(b) = v.get("bool_value") {
        return b.clone();
    }
    if let Some(a) = v.get("array_value") {
        return Value::Array(a["values"].as_array().into_iter().flatten().map(any_value).collect());
    }
    Value::Null
}

/// Attribute `key` of anything with an `attributes` list.
pub fn attr(item: &Value, key: &str) -> Option<Value> {
    item["attributes"].as_array()?.iter().find(|kv| kv["key"] == key).map(|kv| any_value(&kv["value"]))
}

pub fn attr_keys(item: &Value) -> Vec<String> {
    item["attributes"].as_array().into_iter().flatten().map(|kv| kv["key"].as_str().unwrap().to_string()).collect()
}

/// The variable `header_env` names in the scenario.
pub const HEADER_ENV: &str = "BATON_OTEL_TEST_HEADERS";

/// Sets the test environment once, before any exporter of this process runs (setting a
/// variable while another thread resolves a host name is not safe).
pub fn init_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var(HEADER_ENV, "x-from-env=from-env, x-second = 2"));
}

/// What the scenario did, for assertions.
pub struct Scenario {
    pub service: String,
    pub stats: OtelStats,
    pub agent_uuid: String,
    pub agent_span: String,
    pub llm_parent: String,
}

fn meta(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// The OpenAI Chat Completions response the scenario's LLM callback returns.
pub fn openai_response() -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Let me add.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1,\"b\":2}"}}]}}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
}

/// Runs: agent `planner` { llm `openai` (gpt-4o, usage 42/7/49); tool `add` (call_1);
/// mark `note`; metric `latency` }, then a mark with no parent; flushes and shuts down.
pub fn run_scenario(endpoint: &str, transport: &str, kind: &str, service: &str) -> Scenario {
    init_env();
    let config = EndpointConfig {
        service_name: service.into(),
        headers: [("x-team".to_string(), "baton".to_string())].into(),
        header_env: Some(HEADER_ENV.into()),
        resource_attributes: [("deployment.environment".to_string(), json!("test"))].into(),
        scheduled_delay_millis: 50,
        timeout_millis: 5000,
        ..EndpointConfig::new(kind, endpoint, transport)
    };
    let exporter = Arc::new(OtelExporter::new(config).unwrap());
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("otel"), Middleware::Subscriber(exporter.clone())).unwrap();
    let stack = rt.new_stack();
    let agent = stack
        .push(
            ScopeOptions::new("planner")
                .category("agent")
                .input(json!("plan a sum"))
                .metadata(meta(json!({"session.id": "sess-1", "user": {"id": "u-7"}}))),
        )
        .unwrap();
    let request = json!({
        "headers": {"authorization": "Bearer secret"},
        "content": {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 64, "messages": [
            {"role": "system", "content": "You add numbers."},
            {"role": "user", "content": "What is 1+2?"}
        ]}
    });
    let response = stack
        .llm("openai", request, |_req| Ok(openai_response()), LlmOptions { model_name: Some("gpt-4o".into()), ..Default::default() })
        .unwrap();
    assert_eq!(response["usage"]["total_tokens"], 49);
    let sum = stack
        .tool(
            "add",
            json!({"a": 1, "b": 2}),
            |args| Ok(json!(args["a"].as_i64().unwrap() + args["b"].as_i64().unwrap())),
            ToolOptions { tool_call_id: Some("call_1".into()), ..Default::default() },
        )
        .unwrap();
    assert_eq!(sum, json!(3));
    stack.mark(MarkOptions::new("note").data(json!({"text": "added"}))).unwrap();
    stack
        .metric(
            "latency",
            json!([{"value": 12.5, "attributes": {"route": "add"}}, {"value": 3, "attributes": {"route": "llm"}}]),
            Some("ms"),
        )
        .unwrap();
    let agent_uuid = agent.uuid();
    stack.pop(&agent, EndOptions::default().output(json!({"answer": 3}))).unwrap();
    // no open scope: this mark becomes a log record
    stack.mark(MarkOptions::new("orphan").data(json!({"level": "info"}))).unwrap();
    assert!(rt.flush(Duration::from_secs(10)).unwrap());
    rt.shutdown(Duration::from_secs(10)).unwrap();
    let stats = exporter.stats();
    Scenario {
        service: service.into(),
        stats,
        agent_uuid: format!("{:032x}", agent_uuid.as_u128()),
        agent_span: format!("{:016x}", agent_uuid.as_u128() as u64),
        llm_parent: format!("{:016x}", agent_uuid.as_u128() as u64),
    }
}

/// An in-process OTLP/HTTP receiver (std TCP + the `opentelemetry-proto` prost types), for
/// tests that must run without the Python receiver. Keeps every decoded request.
pub mod mini {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message;

    #[derive(Default)]
    pub struct Got {
        pub traces: Vec<ExportTraceServiceRequest>,
        pub logs: Vec<ExportLogsServiceRequest>,
        pub metrics: Vec<ExportMetricsServiceRequest>,
    }

    impl Got {
        pub fn spans(&self) -> Vec<Span> {
            self.traces.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).flat_map(|s| s.spans.clone()).collect()
        }
        pub fn log_records(&self) -> Vec<LogRecord> {
            self.logs.iter().flat_map(|r| &r.resource_logs).flat_map(|r| &r.scope_logs).flat_map(|s| s.log_records.clone()).collect()
        }
    }

    pub struct MiniReceiver {
        pub port: u16,
        pub got: Arc<Mutex<Got>>,
        /// When set, trace exports answer with an OTLP partial success rejecting every span.
        pub reject: Arc<std::sync::atomic::AtomicBool>,
    }

    impl MiniReceiver {
        pub fn start() -> MiniReceiver {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let got = Arc::new(Mutex::new(Got::default()));
            let reject = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (g, rj) = (got.clone(), reject.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    let (g, rj) = (g.clone(), rj.clone());
                    std::thread::spawn(move || serve(conn, &g, &rj));
                }
            });
            MiniReceiver { port, got, reject }
        }
        pub fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    fn serve(conn: TcpStream, got: &Mutex<Got>, reject: &std::sync::atomic::AtomicBool) {
        let mut out = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        loop {
            let mut request_line = String::new();
            if r.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let mut answer = Vec::new();
            {
                let mut g = got.lock().unwrap();
                match path.as_str() {
                    "/v1/traces" => {
                        let req = ExportTraceServiceRequest::decode(&body[..]).unwrap();
                        if reject.load(std::sync::atomic::Ordering::Relaxed) {
                            let n = req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>();
                            answer = ExportTraceServiceResponse {
                                partial_success: Some(ExportTracePartialSuccess {
                                    rejected_spans: n as i64,
                                    error_message: "no thanks".into(),
                                }),
                            }
                            .encode_to_vec();
                        }
                        g.traces.push(req);
                    }
                    "/v1/logs" => g.logs.push(ExportLogsServiceRequest::decode(&body[..]).unwrap()),
                    "/v1/metrics" => g.metrics.push(ExportMetricsServiceRequest::decode(&body[..]).unwrap()),
                    other => panic!("unexpected path {other}"),
                }
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n", answer.len());
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(&answer);
        }
    }
}
