//! OTLP over TLS (`https://` endpoints) against the real receiver (tests/receiver/receiver.py
//! with `--tls`: Python `ssl` for OTLP/HTTP, `grpc.ssl_server_credentials` for OTLP/gRPC, a
//! throwaway CA generated at each start). The CA reaches the exporter through
//! OTEL_EXPORTER_OTLP_CERTIFICATE, set once for this test binary before any exporter is built.
//! A server certificate the exporter does not trust is a counted export failure, never a crash
//! or a hang. Skipped (with a note) without the receiver venv, like tests/receiver.rs.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use baton::{EndOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions};
use baton_otel::{validate, EndpointConfig, Level, OtelExporter};
use common::*;
use serde_json::json;

/// The shared TLS receiver; its CA is in OTEL_EXPORTER_OTLP_CERTIFICATE from here on.
fn tls_receiver() -> Option<&'static Receiver> {
    static R: OnceLock<Option<Receiver>> = OnceLock::new();
    R.get_or_init(|| {
        init_env();
        let r = Receiver::start_tls(false)?;
        // set before any exporter of this process reads the environment
        std::env::set_var("OTEL_EXPORTER_OTLP_CERTIFICATE", &r.tls.as_ref().unwrap().ca);
        Some(r)
    })
    .as_ref()
}

/// The scenario of tests/receiver.rs over https: spans, parentage, logs, metrics and headers
/// arrive, decoded by the official OTLP package behind the receiver's TLS servers.
fn scenario_over_tls(transport: &str) {
    let Some(r) = tls_receiver() else { return };
    assert!(r.endpoint(transport).starts_with("https://"));
    let service = format!("tls-{transport}");
    let s = run_scenario(&r.endpoint(transport), transport, "gen_ai", &service);
    let got = r.received(&service);
    let st = &s.stats;
    assert_eq!((st.spans_exported, st.logs_exported, st.metrics_exported), (3, 1, 2), "{st:?}");
    assert_eq!(st.dropped(), 0, "{st:?}");
    assert_eq!(st.last_error, None);
    let mut names: Vec<&str> = got.spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["chat gpt-4o", "execute_tool add", "invoke_agent planner"]);
    let agent = got.span("invoke_agent planner");
    assert_eq!(agent["trace_id"], s.agent_uuid.as_str());
    assert_eq!(agent["span_id"], s.agent_span.as_str());
    assert_eq!(got.span("chat gpt-4o")["parent_span_id"], s.agent_span.as_str());
    assert_eq!(attr(got.span("chat gpt-4o"), "gen_ai.usage.input_tokens"), Some(json!(42)));
    assert_eq!(got.logs.len(), 1);
    assert_eq!(got.metrics.len(), 1);
    for req in &got.requests {
        assert_eq!(req["transport"], if transport == "grpc" { "grpc" } else { "http" });
        assert_eq!(req["headers"]["x-team"], "baton");
        assert_eq!(req["headers"]["x-from-env"], "from-env");
    }
}

#[test]
fn https_http_binary_with_ca_from_env() {
    scenario_over_tls("http_binary");
}

#[test]
fn https_grpc_with_ca_from_env() {
    scenario_over_tls("grpc");
}

/// 50 scopes to an endpoint whose certificate the exporter does not trust: nothing is
/// exported, everything is counted, `last_error` says why, and neither the application nor
/// flush/shutdown wait beyond their bounds.
fn untrusted(transport: &str, endpoint: &str, config: EndpointConfig, expect: &[&str]) {
    let config = EndpointConfig {
        service_name: format!("untrusted-{transport}"),
        timeout_millis: 2000,
        max_queue_size: 16,
        max_export_batch_size: 8,
        scheduled_delay_millis: 10,
        ..config
    };
    let config = EndpointConfig { endpoint: endpoint.into(), transport: transport.into(), ..config };
    assert!(validate(&config).iter().all(|d| d.level != Level::Error), "{:?}", validate(&config));
    let exporter = Arc::new(OtelExporter::new(config).unwrap());
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("otel"), Middleware::Subscriber(exporter.clone())).unwrap();
    let stack = rt.new_stack();
    let t = Instant::now();
    for i in 0..50 {
        let s = stack.push(ScopeOptions::new(format!("s{i}"))).unwrap();
        stack.pop(&s, EndOptions::default()).unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(1), "emitting took {:?}", t.elapsed());
    let t = Instant::now();
    let _ = rt.flush(Duration::from_secs(30)).unwrap();
    rt.shutdown(Duration::from_secs(30)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(8), "flush + shutdown took {:?}", t.elapsed());
    let st = exporter.stats();
    assert_eq!(st.spans_exported, 0, "{st:?}");
    assert_eq!(st.spans_failed + st.spans_dropped, 50, "every span counted: {st:?}");
    assert!(st.spans_failed > 0 && st.requests_failed > 0, "{st:?}");
    let err = st.last_error.clone().unwrap_or_default().to_lowercase();
    eprintln!("{transport} {}: last_error = {err}", exporter.config().endpoint);
    assert!(expect.iter().any(|e| err.contains(e)), "last_error {err:?} should mention one of {expect:?}");
}

#[test]
fn untrusted_server_certificate_is_a_counted_failure() {
    let Some(r) = tls_receiver() else { return };
    let other = r.tls.as_ref().unwrap().other_ca.display().to_string();
    for transport in ["http_binary", "grpc"] {
        // the endpoint's `certificate` key wins over OTEL_EXPORTER_OTLP_CERTIFICATE: an
        // unrelated CA (plus the system roots) does not vouch for the receiver
        let config = EndpointConfig { certificate: Some(other.clone()), ..Default::default() };
        untrusted(transport, &r.endpoint(transport), config, &["certificate", "unknownissuer"]);
    }
    // nothing of it reached the receiver
    let all = r.received_all();
    let mentions = all.to_string().matches("untrusted-").count();
    assert_eq!(mentions, 0, "spans reached the receiver over an untrusted connection");
}

#[test]
fn plain_http_to_a_tls_port_is_a_counted_failure() {
    let Some(r) = tls_receiver() else { return };
    for transport in ["http_binary", "grpc"] {
        let endpoint = r.endpoint(transport).replace("https://", "http://");
        untrusted(transport, &endpoint, EndpointConfig::default(), &["timeout", "error", "closed", "reset"]);
    }
}

/// Mutual TLS: a receiver that demands a client certificate gets spans from an exporter
/// configured with `client_certificate` / `client_key`, and refuses one without.
#[test]
fn mutual_tls() {
    init_env();
    let _ = tls_receiver(); // the environment is set before exporters exist
    let Some(r) = Receiver::start_tls(true) else { return };
    let files = r.tls.as_ref().unwrap();
    let ca = files.ca.display().to_string();
    let cert = files.dir.path().join("client.pem").display().to_string();
    let key = files.dir.path().join("client.key").display().to_string();
    for transport in ["http_binary", "grpc"] {
        let service = format!("mtls-{transport}");
        let config = EndpointConfig {
            service_name: service.clone(),
            certificate: Some(ca.clone()),
            client_certificate: Some(cert.clone()),
            client_key: Some(key.clone()),
            scheduled_delay_millis: 10,
            ..EndpointConfig::new("full", &r.endpoint(transport), transport)
        };
        let exporter = Arc::new(OtelExporter::new(config).unwrap());
        let rt = Runtime::new(RuntimeConfig::default());
        rt.register(Registration::new("otel"), Middleware::Subscriber(exporter.clone())).unwrap();
        let stack = rt.new_stack();
        let s = stack.push(ScopeOptions::new("mutual")).unwrap();
        stack.pop(&s, EndOptions::default()).unwrap();
        assert!(rt.flush(Duration::from_secs(10)).unwrap());
        rt.shutdown(Duration::from_secs(10)).unwrap();
        let st = exporter.stats();
        assert_eq!(st.spans_exported, 1, "{st:?}");
        assert_eq!(r.received(&service).spans.len(), 1);

        // the same receiver refuses a client without a certificate: a counted failure
        let config = EndpointConfig { certificate: Some(ca.clone()), ..Default::default() };
        untrusted(transport, &r.endpoint(transport), config, &["certificate", "handshake", "error", "closed", "reset"]);
    }
}

/// Validation: https endpoints are accepted; TLS files are checked and named.
#[test]
fn https_config_validation() {
    let Some(r) = tls_receiver() else { return };
    let files = r.tls.as_ref().unwrap();
    let ok = EndpointConfig::new("full", "https://collector.example:4318", "http_binary");
    assert!(validate(&ok).iter().all(|d| d.level != Level::Error), "{:?}", validate(&ok));
    let ok = EndpointConfig { certificate: Some(files.ca.display().to_string()), ..ok };
    assert!(validate(&ok).is_empty(), "{:?}", validate(&ok));

    let errors = |c: &EndpointConfig| -> Vec<(String, String)> {
        validate(c).into_iter().filter(|d| d.level == Level::Error).map(|d| (d.field, d.message)).collect()
    };
    let missing = EndpointConfig { certificate: Some("/surely/missing/ca.pem".into()), ..ok.clone() };
    let e = errors(&missing);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "certificate");
    assert!(e[0].1.contains("/surely/missing/ca.pem") && e[0].1.contains("cannot read"), "{e:?}");
    // a key is not a certificate
    let not_a_cert = EndpointConfig { certificate: Some(files.dir.path().join("client.key").display().to_string()), ..ok.clone() };
    let e = errors(&not_a_cert);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "certificate");
    assert!(e[0].1.contains("no PEM certificate"), "{e:?}");
    // half of a client identity
    let half = EndpointConfig { client_certificate: Some(files.dir.path().join("client.pem").display().to_string()), ..ok.clone() };
    assert_eq!(errors(&half).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["client_key"]);
    // OtelExporter::new refuses what validate refuses, naming the field
    let err = OtelExporter::new(missing).unwrap_err();
    assert!(err.message().contains("certificate"), "{}", err.message());
    // the TLS keys on an http:// endpoint are a warning
    let plain = EndpointConfig { certificate: Some("x.pem".into()), ..EndpointConfig::default() };
    let d = validate(&plain);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].level, d[0].field.as_str()), (Level::Warning, "certificate"));
}

/// ATOF stream sinks over https (the core's TLS seam, filled by `baton_otel::install()`):
/// both transports deliver to the TLS receiver with `certificate` naming its CA.
#[test]
fn atof_stream_sinks_over_https() {
    let Some(r) = tls_receiver() else { return };
    baton_otel::install();
    let ca = r.tls.as_ref().unwrap().ca.display().to_string();
    let url = format!("https://127.0.0.1:{}/atof", r.http_port);
    let doc = json!({"version": 1, "components": [{"kind": "observability", "config": {"atof": {"enabled": true, "sinks": [
        {"type": "stream", "url": url, "transport": "http_post", "certificate": ca, "headers": {"x-sink": "post"}},
        {"type": "stream", "url": url, "transport": "ndjson", "certificate": ca, "headers": {"x-sink": "ndjson"}}
    ]}}}]});
    let rt = Runtime::new(RuntimeConfig::default());
    assert_eq!(rt.plugin_validate(&doc), vec![]);
    rt.plugin_initialize(&doc).unwrap();
    let stack = rt.new_stack();
    let s = stack.push(ScopeOptions::new("atof-over-tls")).unwrap();
    stack.pop(&s, EndOptions::default()).unwrap();
    assert!(rt.flush(Duration::from_secs(10)).unwrap());
    rt.plugin_clear().unwrap();
    rt.shutdown(Duration::from_secs(10)).unwrap();

    let all = r.received_all();
    let posts: Vec<&serde_json::Value> = all["atof"].as_array().unwrap().iter().collect();
    let events = |sink: &str| -> Vec<serde_json::Value> {
        posts
            .iter()
            .filter(|p| p["headers"]["x-sink"] == sink)
            .flat_map(|p| p["body"].as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>())
            .filter(|e: &serde_json::Value| e["name"] == "atof-over-tls")
            .collect()
    };
    for sink in ["post", "ndjson"] {
        let got = events(sink);
        assert_eq!(got.len(), 2, "{sink}: start and end over https: {posts:#?}");
        assert_eq!(got[0]["uuid"], got[1]["uuid"]);
    }
    let ct: Vec<&str> =
        posts.iter().filter(|p| p["headers"]["x-sink"] == "ndjson").map(|p| p["headers"]["content-type"].as_str().unwrap()).collect();
    assert!(ct.iter().all(|c| *c == "application/x-ndjson"), "{ct:?}");
}

/// An https stream sink whose server certificate is not trusted: every event is counted as
/// failed with the reason, within the timeout; a CA file that cannot be read is a
/// configuration error naming `certificate`.
#[test]
fn atof_stream_sink_untrusted_and_bad_certificate() {
    use baton::export::atof_stream::{AtofStreamExporter, StreamConfig, Transport};
    let Some(r) = tls_receiver() else { return };
    baton_otel::install();
    let files = r.tls.as_ref().unwrap();
    let url = format!("https://127.0.0.1:{}/atof", r.http_port);
    let sink = Arc::new(
        AtofStreamExporter::start(StreamConfig {
            url: url.clone(),
            transport: Transport::HttpPost,
            headers: Default::default(),
            header_env: None,
            timeout: Duration::from_millis(2000),
            queue_capacity: 100,
            certificate: Some(files.other_ca.display().to_string()),
        })
        .unwrap(),
    );
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("atof-stream"), Middleware::Subscriber(sink.clone())).unwrap();
    let stack = rt.new_stack();
    let t = Instant::now();
    for i in 0..5 {
        let s = stack.push(ScopeOptions::new(format!("untrusted-atof-{i}"))).unwrap();
        stack.pop(&s, EndOptions::default()).unwrap();
    }
    let _ = rt.flush(Duration::from_secs(30));
    rt.shutdown(Duration::from_secs(30)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(8), "took {:?}", t.elapsed());
    assert_eq!((sink.sent(), sink.failed() + sink.dropped()), (0, 10));
    let err = sink.last_error().unwrap_or_default().to_lowercase();
    assert!(err.contains("certificate") || err.contains("unknownissuer"), "{err}");
    assert!(!r.received_all().to_string().contains("untrusted-atof-"), "nothing arrives over an untrusted connection");

    let doc = json!({"version": 1, "components": [{"kind": "observability", "config": {"atof": {"enabled": true, "sinks": [
        {"type": "stream", "url": url, "certificate": "/surely/missing/ca.pem"}
    ]}}}]});
    let got = Runtime::new(RuntimeConfig::default()).plugin_validate(&doc);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].field.as_deref(), Some("components[0].config.atof.sinks[0].certificate"));
    assert!(got[0].message.contains("/surely/missing/ca.pem"), "{got:?}");
}
