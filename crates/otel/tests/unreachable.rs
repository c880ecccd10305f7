//! A receiver that is down (connection refused) or never answers (accepts, then silence):
//! over both transports, the application is never blocked beyond the export timeout and
//! everything that was not delivered is counted. No Python needed.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::{EndOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions};
use baton_otel::{EndpointConfig, OtelExporter};

/// A port with nothing listening.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A listener that accepts connections and never answers (kept open until the test ends).
fn black_hole() -> (u16, Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            h.lock().unwrap().push(c);
        }
    });
    (port, held)
}

fn run(transport: &str, port: u16, expect_error: &str) {
    let config = EndpointConfig {
        service_name: "down".into(),
        timeout_millis: 300,
        max_queue_size: 16,
        max_export_batch_size: 8,
        scheduled_delay_millis: 10,
        ..EndpointConfig::new("gen_ai", &format!("http://127.0.0.1:{port}"), transport)
    };
    let exporter = Arc::new(OtelExporter::new(config).unwrap());
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("otel"), Middleware::Subscriber(exporter.clone())).unwrap();
    let stack = rt.new_stack();
    let t = Instant::now();
    for i in 0..100 {
        let s = stack.push(ScopeOptions::new(format!("s{i}"))).unwrap();
        stack.metric("m", serde_json::json!(i), None).unwrap();
        stack.pop(&s, EndOptions::default()).unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(2), "emitting took {:?}", t.elapsed());
    let t = Instant::now();
    let _ = rt.flush(Duration::from_secs(30)).unwrap();
    assert!(t.elapsed() < Duration::from_millis(1500), "flush took {:?}", t.elapsed());
    let t = Instant::now();
    rt.shutdown(Duration::from_secs(30)).unwrap();
    assert!(t.elapsed() < Duration::from_millis(2500), "shutdown took {:?}", t.elapsed());

    let st = exporter.stats();
    assert_eq!(st.spans_exported + st.metrics_exported, 0, "{st:?}");
    assert_eq!(st.spans_failed + st.spans_dropped, 100, "every span counted: {st:?}");
    assert_eq!(st.metrics_failed + st.metrics_dropped, 100, "every metric point counted: {st:?}");
    assert!(st.spans_failed > 0 && st.requests_failed > 0, "{st:?}");
    assert_eq!(st.dropped(), 200);
    let err = st.last_error.unwrap_or_default().to_lowercase();
    assert!(err.contains(expect_error), "last_error {err:?} should mention {expect_error:?}");
}

#[test]
fn receiver_down_http() {
    run("http_binary", closed_port(), "refused");
}

#[test]
fn receiver_down_grpc() {
    run("grpc", closed_port(), "unavailable");
}

#[test]
fn receiver_silent_http() {
    let (port, _held) = black_hole();
    run("http_binary", port, "timeout");
}

#[test]
fn receiver_silent_grpc() {
    let (port, _held) = black_hole();
    run("grpc", port, "timeout");
}
