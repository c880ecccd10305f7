//! The bounded batch queue and the export worker.
//!
//! `on_event` only appends to a bounded queue (full → the item is dropped and counted). One
//! worker thread per exporter sends batches: when a signal has `max_export_batch_size` items,
//! when the oldest waiting item is `scheduled_delay_millis` old, on flush, and on shutdown.
//! It owns a current-thread tokio runtime that drives both transports; every request is
//! bounded by `timeout_millis`, connection included. A failed request is counted, not
//! retried: the worker moves on, so a receiver that is down or slow costs at most one
//! timeout per batch and never holds up the application.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric, Gauge, Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::config::{signal_url, Transport};
use crate::tracker::{Item, MetricPoint};

/// Counters of one signal.
#[derive(Default)]
pub(crate) struct SignalCounters {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub spans: SignalCounters,
    pub logs: SignalCounters,
    pub metrics: SignalCounters,
    pub requests_failed: AtomicU64,
    /// Items taken from the queues and not yet accounted (the request in flight).
    pub in_flight: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct Queues {
    spans: VecDeque<Span>,
    logs: VecDeque<LogRecord>,
    metrics: VecDeque<MetricPoint>,
    /// When the oldest waiting item arrived (for `scheduled_delay_millis`).
    oldest: Option<Instant>,
    flush_requested: u64,
    flush_done: u64,
    shutdown: Option<Instant>,
    exited: bool,
}

impl Queues {
    fn len(&self) -> usize {
        self.spans.len() + self.logs.len() + self.metrics.len()
    }
}

pub(crate) struct Shared {
    q: Mutex<Queues>,
    /// Wakes the worker.
    work: Condvar,
    /// Wakes flush/close waiters.
    done: Condvar,
    pub counters: Counters,
    max_queue: usize,
    max_batch: usize,
    delay: Duration,
    pub timeout: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues items; what does not fit is dropped and counted. Never blocks on I/O.
    pub(crate) fn enqueue(&self, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let mut q = self.lock();
        if q.shutdown.is_some() {
            for item in items {
                self.count_drop(&item);
            }
            return;
        }
        let mut wake = false;
        for item in items {
            match item {
                Item::Span(s) if q.spans.len() < self.max_queue => q.spans.push_back(s),
                Item::Log(l) if q.logs.len() < self.max_queue => q.logs.push_back(l),
                Item::Metric(m) if q.metrics.len() < self.max_queue => q.metrics.push_back(m),
                other => {
                    self.count_drop(&other);
                    continue;
                }
            }
            if q.oldest.is_none() {
                q.oldest = Some(Instant::now());
                wake = true;
            }
        }
        let full = q.spans.len() >= self.max_batch || q.logs.len() >= self.max_batch || q.metrics.len() >= self.max_batch;
        drop(q);
        if wake || full {
            self.work.notify_one();
        }
    }

    fn count_drop(&self, item: &Item) {
        let c = match item {
            Item::Span(_) => &self.counters.spans,
            Item::Log(_) => &self.counters.logs,
            Item::Metric(_) => &self.counters.metrics,
        };
        c.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks the worker to send everything queued and waits up to `timeout` for it.
    /// `Ok(false)` when the deadline passed first (the export continues in the background).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        if q.exited {
            return true;
        }
        q.flush_requested += 1;
        let mine = q.flush_requested;
        self.work.notify_one();
        while q.flush_done < mine && !q.exited {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self.done.wait_timeout(q, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }

    /// Stops accepting items, lets the worker send what is queued within `timeout`, waits
    /// for it up to `timeout` (+ a little). Whatever is still queued then is dropped and
    /// counted. `false` when the worker had not exited in time.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout + Duration::from_millis(200);
        self.begin_shutdown(timeout);
        let mut q = self.lock();
        while !q.exited {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self.done.wait_timeout(q, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }

    /// Stops accepting items; the worker sends what is queued within `timeout`, then exits.
    pub(crate) fn begin_shutdown(&self, timeout: Duration) {
        let mut q = self.lock();
        if q.shutdown.is_none() {
            q.shutdown = Some(Instant::now() + timeout);
        }
        drop(q);
        self.work.notify_one();
    }

    pub(crate) fn queued(&self) -> usize {
        self.lock().len()
    }
}

/// What the worker needs to build requests.
pub(crate) struct Target {
    pub transport: Transport,
    pub endpoint: http::Uri,
    pub headers: Vec<(String, String)>,
    /// The TLS client configurations of an `https` endpoint (`None` for `http`).
    pub tls: Option<crate::tls::TlsSetup>,
    pub resource: Resource,
    pub scope: InstrumentationScope,
}

pub(crate) fn start(
    target: Target,
    max_queue: usize,
    max_batch: usize,
    delay: Duration,
    timeout: Duration,
) -> std::io::Result<Arc<Shared>> {
    let shared = Arc::new(Shared {
        q: Mutex::new(Queues::default()),
        work: Condvar::new(),
        done: Condvar::new(),
        counters: Counters::default(),
        max_queue: max_queue.max(1),
        max_batch: max_batch.clamp(1, max_queue.max(1)),
        delay,
        timeout,
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let worker = shared.clone();
    std::thread::Builder::new().name("baton-otel-export".into()).spawn(move || {
        let sender = Sender::new(&rt, target, worker.timeout);
        run(&worker, &rt, &sender);
        let mut q = worker.lock();
        q.exited = true;
        q.flush_done = q.flush_requested;
        drop(q);
        worker.done.notify_all();
    })?;
    Ok(shared)
}

struct Batch {
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
    metrics: Vec<MetricPoint>,
}

fn run(shared: &Shared, rt: &tokio::runtime::Runtime, sender: &Sender) {
    loop {
        let (batch, flush_target, stopping) = {
            let mut q = shared.lock();
            loop {
                let n = q.len();
                let full = q.spans.len() >= shared.max_batch || q.logs.len() >= shared.max_batch || q.metrics.len() >= shared.max_batch;
                let flushing = q.flush_requested > q.flush_done;
                let due = q.oldest.is_some_and(|t| t.elapsed() >= shared.delay);
                if q.shutdown.is_some() || (n > 0 && (full || flushing || due)) || (n == 0 && flushing) {
                    break;
                }
                let wait = match q.oldest {
                    Some(t) => shared.delay.saturating_sub(t.elapsed()).max(Duration::from_millis(1)),
                    None => Duration::from_secs(3600),
                };
                q = shared.work.wait_timeout(q, wait).unwrap_or_else(|p| p.into_inner()).0;
            }
            if let Some(deadline) = q.shutdown {
                if Instant::now() >= deadline {
                    // out of time: what is left is dropped and counted
                    let c = &shared.counters;
                    c.spans.dropped.fetch_add(q.spans.len() as u64, Ordering::Relaxed);
                    c.logs.dropped.fetch_add(q.logs.len() as u64, Ordering::Relaxed);
                    c.metrics.dropped.fetch_add(q.metrics.len() as u64, Ordering::Relaxed);
                    q.spans.clear();
                    q.logs.clear();
                    q.metrics.clear();
                }
            }
            let take = shared.max_batch;
            let batch = Batch {
                spans: {
                    let n = q.spans.len().min(take);
                    q.spans.drain(..n).collect()
                },
                logs: {
                    let n = q.logs.len().min(take);
                    q.logs.drain(..n).collect()
                },
                metrics: {
                    let n = q.metrics.len().min(take);
                    q.metrics.drain(..n).collect()
                },
            };
            q.oldest = if q.len() > 0 { Some(Instant::now() - shared.delay) } else { None };
            let n = batch.spans.len() + batch.logs.len() + batch.metrics.len();
            shared.counters.in_flight.store(n as u64, Ordering::Relaxed);
            (batch, q.flush_requested, q.shutdown)
        };

        sender.send(shared, rt, batch, stopping);
        let stopping = stopping.is_some();

        let mut q = shared.lock();
        if q.len() == 0 {
            q.flush_done = q.flush_done.max(flush_target);
            shared.done.notify_all();
            if stopping {
                return;
            }
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

enum Client_ {
    Http {
        client: Box<HttpClient>,
        headers: http::HeaderMap,
    },
    Grpc {
        channel: tonic::transport::Channel,
        metadata: tonic::metadata::MetadataMap,
    },
    /// The endpoint could not be set up; every request fails with this message.
    Broken(String),
}

struct Sender {
    /// One client per distinct TLS configuration; `index[i]` is the client of signal
    /// `tls::SIGNALS[i]` (traces, metrics, logs).
    clients: Vec<Client_>,
    index: [usize; 3],
    endpoint: http::Uri,
    resource: Resource,
    scope: InstrumentationScope,
    timeout: Duration,
}

impl Sender {
    fn new(rt: &tokio::runtime::Runtime, t: Target, timeout: Duration) -> Sender {
        let (configs, index) = match t.tls {
            Some(setup) => (setup.configs.into_iter().map(Some).collect(), setup.index),
            None => (vec![None], [0; 3]),
        };
        let clients = configs.into_iter().map(|tls| Self::client(rt, &t.transport, &t.endpoint, &t.headers, tls, timeout)).collect();
        Sender { clients, index, endpoint: t.endpoint, resource: t.resource, scope: t.scope, timeout }
    }

    /// The client of `signal` (`traces`, `metrics`, `logs`).
    fn client_for(&self, signal: &str) -> &Client_ {
        let i = crate::tls::SIGNALS.iter().position(|s| *s == signal).unwrap_or(0);
        &self.clients[self.index[i]]
    }

    fn client(
        rt: &tokio::runtime::Runtime,
        transport: &Transport,
        endpoint: &http::Uri,
        headers: &[(String, String)],
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Client_ {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false); // the TLS layer above takes https URIs
        match transport {
            Transport::HttpBinary => {
                let tls = tls.map(|c| (*c).clone()).unwrap_or_else(crate::tls::unused_config);
                let https = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(connector);
                let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(https);
                let mut map = http::HeaderMap::new();
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v)) {
                        map.insert(k, v);
                    }
                }
                Client_::Http { client: Box::new(client), headers: map }
            }
            Transport::Grpc => {
                let authority = endpoint.authority().map(|a| a.to_string()).unwrap_or_default();
                let scheme = if tls.is_some() { "https" } else { "http" };
                match tonic::transport::Endpoint::from_shared(format!("{scheme}://{authority}")) {
                    Ok(ep) => {
                        let _guard = rt.enter();
                        let ep = ep.connect_timeout(timeout).timeout(timeout);
                        let channel = match tls {
                            // TLS through the same rustls connector as OTLP/HTTP, with ALPN h2
                            Some(c) => ep.connect_with_connector_lazy(
                                HttpsConnectorBuilder::new()
                                    .with_tls_config((*c).clone())
                                    .https_only()
                                    .enable_http2()
                                    .wrap_connector(connector),
                            ),
                            None => ep.connect_lazy(),
                        };
                        let mut metadata = tonic::metadata::MetadataMap::new();
                        for (k, v) in headers {
                            if let (Ok(k), Ok(v)) = (
                                tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                                tonic::metadata::MetadataValue::try_from(v.as_str()),
                            ) {
                                metadata.insert(k, v);
                            }
                        }
                        Client_::Grpc { channel, metadata }
                    }
                    Err(e) => Client_::Broken(format!("endpoint '{endpoint}': {e}")),
                }
            }
        }
    }

    /// Sends one batch per signal; during shutdown no request outlives the shutdown deadline.
    fn send(&self, shared: &Shared, rt: &tokio::runtime::Runtime, batch: Batch, deadline: Option<Instant>) {
        let c = &shared.counters;
        if !batch.spans.is_empty() {
            let n = batch.spans.len() as u64;
            let budget = self.budget(deadline);
            let req = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(self.resource.clone()),
                    scope_spans: vec![ScopeSpans { scope: Some(self.scope.clone()), spans: batch.spans, schema_url: String::new() }],
                    schema_url: String::new(),
                }],
            };
            let r = rt.block_on(self.timed(budget, async {
                match self.client_for("traces") {
                    Client_::Http { client, headers } => {
                        let body = self.post(client, headers, "traces", req.encode_to_vec()).await?;
                        // an empty or undecodable body is a full success (OTLP/HTTP allows both)
                        rejected(ExportTraceServiceResponse::decode(body).ok())
                    }
                    Client_::Grpc { channel, metadata } => {
                        let mut client = TraceServiceClient::new(channel.clone());
                        rejected(Some(client.export(with_metadata(req, metadata)).await.map_err(grpc_error)?.into_inner()))
                    }
                    Client_::Broken(e) => Err(e.clone()),
                }
            }));
            self.account(c, &c.spans, n, r, "traces");
        }
        if !batch.logs.is_empty() {
            let n = batch.logs.len() as u64;
            let budget = self.budget(deadline);
            let req = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(self.resource.clone()),
                    scope_logs: vec![ScopeLogs { scope: Some(self.scope.clone()), log_records: batch.logs, schema_url: String::new() }],
                    schema_url: String::new(),
                }],
            };
            let r = rt.block_on(self.timed(budget, async {
                match self.client_for("logs") {
                    Client_::Http { client, headers } => self.post(client, headers, "logs", req.encode_to_vec()).await.map(drop),
                    Client_::Grpc { channel, metadata } => {
                        let mut client = LogsServiceClient::new(channel.clone());
                        client.export(with_metadata(req, metadata)).await.map_err(grpc_error).map(|_| ())
                    }
                    Client_::Broken(e) => Err(e.clone()),
                }
            }));
            self.account(c, &c.logs, n, r, "logs");
        }
        if !batch.metrics.is_empty() {
            let n = batch.metrics.len() as u64;
            let budget = self.budget(deadline);
            let req = ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: Some(self.resource.clone()),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(self.scope.clone()),
                        metrics: group_metrics(batch.metrics),
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            let r = rt.block_on(self.timed(budget, async {
                match self.client_for("metrics") {
                    Client_::Http { client, headers } => self.post(client, headers, "metrics", req.encode_to_vec()).await.map(drop),
                    Client_::Grpc { channel, metadata } => {
                        let mut client = MetricsServiceClient::new(channel.clone());
                        client.export(with_metadata(req, metadata)).await.map_err(grpc_error).map(|_| ())
                    }
                    Client_::Broken(e) => Err(e.clone()),
                }
            }));
            self.account(c, &c.metrics, n, r, "metrics");
        }
    }

    fn budget(&self, deadline: Option<Instant>) -> Duration {
        match deadline {
            Some(d) => self.timeout.min(d.saturating_duration_since(Instant::now())),
            None => self.timeout,
        }
    }

    async fn timed(&self, budget: Duration, f: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
        match tokio::time::timeout(budget, f).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within timeout_millis = {}", self.timeout.as_millis())),
        }
    }

    fn account(&self, c: &Counters, s: &SignalCounters, n: u64, r: Result<(), String>, signal: &str) {
        // counted first, then no longer in flight: stats never miss an item (may briefly see it twice)
        match r {
            Ok(()) => {
                s.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                s.failed.fetch_add(n, Ordering::Relaxed);
                c.requests_failed.fetch_add(1, Ordering::Relaxed);
                *c.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{signal} export to {}: {e}", self.endpoint));
            }
        }
        c.in_flight.fetch_sub(n, Ordering::Relaxed);
    }

    /// POSTs one request; the response body on 2xx.
    async fn post(&self, client: &HttpClient, headers: &http::HeaderMap, signal: &str, body: Vec<u8>) -> Result<Bytes, String> {
        let url = signal_url(&self.endpoint, signal);
        let mut req = http::Request::post(url.as_str())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        for (k, v) in headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = client.request(req).await.map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| format!("POST {url}: reading the response: {e}"))?.to_bytes();
        if status.is_success() {
            Ok(body)
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Err(format!("POST {url}: HTTP {status}: {text}"))
        }
    }
}

/// A trace export response that rejected spans (OTLP partial success) is a failure.
fn rejected(resp: Option<ExportTraceServiceResponse>) -> Result<(), String> {
    match resp.and_then(|r| r.partial_success) {
        Some(p) if p.rejected_spans > 0 => Err(format!("receiver rejected {} spans: {}", p.rejected_spans, p.error_message)),
        _ => Ok(()),
    }
}

fn with_metadata<T>(msg: T, metadata: &tonic::metadata::MetadataMap) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    *req.metadata_mut() = metadata.clone();
    req
}

fn grpc_error(s: tonic::Status) -> String {
    // the source chain carries the cause (connection refused, a certificate the client does not trust)
    let mut out = format!("gRPC {:?}: {}", s.code(), s.message());
    append_causes(&mut out, std::error::Error::source(&s));
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    append_causes(&mut s, e.source());
    s
}

/// Appends each cause of the chain not already said (tonic and hyper repeat their sources).
fn append_causes(out: &mut String, mut src: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(inner) = src {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = inner.source();
    }
}

/// Points of the same metric (name and unit) become one gauge, in first-seen order.
fn group_metrics(points: Vec<MetricPoint>) -> Vec<Metric> {
    let mut out: Vec<Metric> = Vec::new();
    for p in points {
        let gauge = match out.iter_mut().find(|m| m.name == p.name && m.unit == p.unit) {
            Some(m) => m,
            None => {
                out.push(Metric { name: p.name, unit: p.unit, data: Some(metric::Data::Gauge(Gauge::default())), ..Default::default() });
                out.last_mut().expect("just pushed")
            }
        };
        if let Some(metric::Data::Gauge(g)) = &mut gauge.data {
            g.data_points.push(p.point);
        }
    }
    out
}
