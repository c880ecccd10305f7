//! # baton-otel
//!
//! Baton's OpenTelemetry exporter: a [`baton::Subscriber`] that turns ATOF events into OTLP
//! and sends them over OTLP/HTTP (protobuf) or OTLP/gRPC, in clear or over TLS (`https://`
//! endpoints: rustls, the system's roots plus `OTEL_EXPORTER_OTLP_CERTIFICATE`). It is its own crate so that the
//! core (and its wasm build) has no network or OpenTelemetry dependencies.
//!
//! - One span per scope: the start event opens it, the end event closes and exports it.
//!   Trace id = the root scope's uuid (128 bits), span id = the last 8 bytes of the scope's
//!   uuid, parent span id = the last 8 bytes of `parent_uuid` — the same ids as Baton's W3C
//!   `traceparent`, so parentage is exact.
//! - Projections ([`Projection`]): `full`, `gen_ai` (OTel GenAI semantic conventions),
//!   `openinference`.
//! - Marks become span events on their open parent span, or log records when no parent span
//!   is open; metric marks (`data_schema.name == "baton.metric"`) become gauge data points.
//! - A bounded queue per signal; overflow and failed exports are counted ([`OtelExporter::stats`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use baton::{Middleware, Registration, Runtime, RuntimeConfig};
//! use baton_otel::{EndpointConfig, OtelExporter};
//!
//! let rt = Runtime::new(RuntimeConfig::default());
//! let exporter = Arc::new(OtelExporter::new(EndpointConfig::new("gen_ai", "http://localhost:4318", "http_binary")).unwrap());
//! rt.register(Registration::new("otel"), Middleware::Subscriber(exporter.clone())).unwrap();
//! // ... scopes and managed calls ...
//! rt.shutdown(std::time::Duration::from_secs(5)).unwrap(); // closes (flushes) the exporter
//! println!("{:?}", exporter.stats());
//! ```
//!
//! The exact mapping is in `docs/otel.md`.

mod attrs;
mod config;
mod export;
mod llm;
pub mod plugin;
mod project;
mod tls;
mod tracker;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::{Error, ErrorKind, Event, Subscriber};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

pub use config::{validate, Diagnostic, EndpointConfig, Level, Projection, Transport};
pub use plugin::install;

use attrs::Attrs;
use export::Shared;
use tracker::Tracker;

/// The instrumentation scope name on every exported item.
pub const SCOPE_NAME: &str = "baton";

/// What an exporter did so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelStats {
    /// Spans accepted by the receiver.
    pub spans_exported: u64,
    /// Spans dropped because the queue was full (or the exporter was shutting down).
    pub spans_dropped: u64,
    /// Spans in export requests that failed (receiver down, slow, or refusing).
    pub spans_failed: u64,
    pub logs_exported: u64,
    pub logs_dropped: u64,
    pub logs_failed: u64,
    /// Metric data points.
    pub metrics_exported: u64,
    pub metrics_dropped: u64,
    pub metrics_failed: u64,
    /// Open scopes forgotten because `max_open_spans` was reached (never exported).
    pub spans_evicted: u64,
    /// End events whose start was never seen (exported with start time = end time).
    pub orphan_ends: u64,
    /// Export requests that failed.
    pub requests_failed: u64,
    /// Scopes currently open.
    pub open_spans: u64,
    /// Items waiting in the queues or in the request in flight.
    pub queued: u64,
    /// The last export error, if any.
    pub last_error: Option<String>,
}

impl OtelStats {
    /// Everything that will never reach the receiver: queue overflow, failed exports and
    /// evicted open scopes, over all signals.
    pub fn dropped(&self) -> u64 {
        self.spans_dropped
            + self.spans_failed
            + self.logs_dropped
            + self.logs_failed
            + self.metrics_dropped
            + self.metrics_failed
            + self.spans_evicted
    }
}

/// Which signals besides traces are exported (the `logs {enabled}` / `metrics {enabled}`
/// tables of the `opentelemetry` section). Both on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signals {
    /// Marks without an open parent span become log records (else they are not exported).
    pub logs: bool,
    /// Metric marks become metric data points (else they are not exported).
    pub metrics: bool,
}

impl Default for Signals {
    fn default() -> Self {
        Signals { logs: true, metrics: true }
    }
}

/// An OTLP exporter for one endpoint; register it as a subscriber.
pub struct OtelExporter {
    config: EndpointConfig,
    projection: Projection,
    transport: Transport,
    tracker: Mutex<Tracker>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OtelExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelExporter")
            .field("endpoint", &self.config.endpoint_or_default())
            .field("transport", &self.transport)
            .field("projection", &self.projection)
            .finish_non_exhaustive()
    }
}

impl OtelExporter {
    /// Validates `config` and starts the export worker. Fails with `invalid_argument` listing
    /// the error diagnostics ([`validate`]); warnings do not stop it. Nothing is connected
    /// yet: a receiver that is down shows up as failed exports, not as an error here.
    pub fn new(config: EndpointConfig) -> baton::Result<OtelExporter> {
        Self::with_signals(config, Signals::default())
    }

    /// [`OtelExporter::new`] with logs and/or metrics turned off.
    pub fn with_signals(config: EndpointConfig, signals: Signals) -> baton::Result<OtelExporter> {
        let errors: Vec<String> =
            validate(&config).into_iter().filter(Diagnostic::is_error).map(|d| format!("{}: {}", d.field, d.message)).collect();
        if !errors.is_empty() {
            return Err(Error::invalid_argument(format!("opentelemetry endpoint: {}", errors.join("; "))));
        }
        let projection = Projection::parse(&config.kind).expect("validated");
        let transport = Transport::parse(&config.transport).expect("validated");
        let endpoint = config::parse_endpoint(&config.endpoint_or_default()).map_err(Error::invalid_argument)?;
        let headers = config.resolved_headers().0;
        let tls = if endpoint.scheme_str() == Some("https") {
            // validated above; read again here so that what the worker uses is what was checked
            Some(tls::setup(&config).map_err(|errors| {
                let errors: Vec<String> = errors.iter().map(|d| format!("{}: {}", d.field, d.message)).collect();
                Error::invalid_argument(format!("opentelemetry endpoint: {}", errors.join("; ")))
            })?)
        } else {
            None
        };
        let target = export::Target { transport, endpoint, headers, tls, resource: resource(&config), scope: scope() };
        let shared = export::start(
            target,
            config.max_queue_size,
            config.max_export_batch_size,
            Duration::from_millis(config.scheduled_delay_millis),
            Duration::from_millis(config.timeout_millis),
        )
        .map_err(|e| Error::new(ErrorKind::Internal, format!("opentelemetry: cannot start the export thread: {e}")))?;
        Ok(OtelExporter {
            tracker: Mutex::new(Tracker::new(projection, config.max_open_spans, signals)),
            projection,
            transport,
            config,
            shared,
        })
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }
    pub fn projection(&self) -> Projection {
        self.projection
    }
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Counters so far.
    pub fn stats(&self) -> OtelStats {
        let c = &self.shared.counters;
        let (evicted, orphans, open) = {
            let t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            (t.evicted, t.orphan_ends, t.open_count() as u64)
        };
        let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        OtelStats {
            spans_exported: r(&c.spans.exported),
            spans_dropped: r(&c.spans.dropped),
            spans_failed: r(&c.spans.failed),
            logs_exported: r(&c.logs.exported),
            logs_dropped: r(&c.logs.dropped),
            logs_failed: r(&c.logs.failed),
            metrics_exported: r(&c.metrics.exported),
            metrics_dropped: r(&c.metrics.dropped),
            metrics_failed: r(&c.metrics.failed),
            spans_evicted: evicted,
            orphan_ends: orphans,
            requests_failed: r(&c.requests_failed),
            open_spans: open,
            queued: self.shared.queued() as u64 + r(&c.in_flight),
            last_error: c.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Items that will never reach the receiver (see [`OtelStats::dropped`]).
    pub fn dropped(&self) -> u64 {
        self.stats().dropped()
    }

    /// Sends everything queued; waits at most `timeout_millis`. `timeout` error when the
    /// receiver did not take it in time (the items are then counted as failed or still queued).
    pub fn force_flush(&self) -> baton::Result<()> {
        if self.shared.flush(self.shared.timeout) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("opentelemetry: export not finished within timeout_millis = {}", self.shared.timeout.as_millis()),
            ))
        }
    }

    /// Stops the worker after sending what is queued (bounded by `timeout_millis`); later
    /// events are dropped and counted. Idempotent.
    pub fn shutdown(&self) -> baton::Result<()> {
        if self.shared.shutdown(self.shared.timeout) {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Timeout, "opentelemetry: the export thread did not stop within timeout_millis"))
        }
    }
}

impl Subscriber for OtelExporter {
    fn on_event(&self, event: &Event) -> baton::Result<()> {
        let mut items = Vec::new();
        self.tracker.lock().unwrap_or_else(|p| p.into_inner()).handle(event, &mut items);
        self.shared.enqueue(items);
        Ok(())
    }

    fn flush(&self) -> baton::Result<()> {
        self.force_flush()
    }

    fn close(&self) -> baton::Result<()> {
        self.shutdown()
    }
}

impl Drop for OtelExporter {
    fn drop(&mut self) {
        // Not waiting: a drop must not stall; the worker sends what is queued (bounded by
        // timeout_millis) and exits on its own.
        self.shared.begin_shutdown(self.shared.timeout);
    }
}

fn resource(config: &EndpointConfig) -> Resource {
    let mut a = Attrs::default();
    a.str("service.name", config.service_name.as_str());
    for (k, v) in &config.resource_attributes {
        if v.is_object() || v.is_null() {
            a.str(k.as_str(), v.to_string());
        } else {
            a.json(k.as_str(), v);
        }
    }
    a.str("telemetry.sdk.name", "baton");
    a.str("telemetry.sdk.language", "rust");
    a.str("telemetry.sdk.version", env!("CARGO_PKG_VERSION"));
    Resource { attributes: a.into_vec(), ..Default::default() }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope { name: SCOPE_NAME.into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() }
}
