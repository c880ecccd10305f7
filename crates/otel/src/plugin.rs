//! The `opentelemetry` section of the `observability` plugin component.
//!
//! The core's observability component has no OpenTelemetry dependency; it calls a factory
//! that this crate installs ([`install`]). The section, with the reference's keys:
//!
//! ```toml
//! [components.config.opentelemetry]
//! enabled = true
//! logs = { enabled = true }       # marks without an open parent span → OTLP logs
//! metrics = { enabled = true }    # metric marks → OTLP metrics (gauges)
//! [[components.config.opentelemetry.endpoints]]
//! type = "gen_ai"                 # full | gen_ai | openinference
//! endpoint = "http://localhost:4317"
//! transport = "grpc"              # http_binary | grpc
//! service_name = "my-agent"
//! headers = { "x-team" = "a" }
//! header_env = "OTLP_HEADERS"     # k=v,k2=v2
//! timeout_millis = 10000
//! max_queue_size = 2048
//! max_export_batch_size = 512
//! scheduled_delay_millis = 5000
//! resource_attributes = { "deployment.environment" = "prod" }
//! # https endpoints: extra CA file (else OTEL_EXPORTER_OTLP_CERTIFICATE) and mutual TLS
//! certificate = "/etc/baton/collector-ca.pem"
//! client_certificate = "/etc/baton/client.pem"
//! client_key = "/etc/baton/client.key"
//! ```

use std::sync::Arc;

use baton::plugin::observability::{install_otel_factory, OtelFactory};
use baton::plugin::{join, Diagnostics};
use baton::{Error, Subscriber};
use serde_json::{Map, Value};

use crate::config::{validate, EndpointConfig, Level};
use crate::{OtelExporter, Signals};

const SECTION_KEYS: &[&str] = &["enabled", "endpoints", "logs", "metrics"];
const SIGNAL_KEYS: &[&str] = &["enabled"];
/// Every key of an endpoint table ([`EndpointConfig`]'s fields; `max_open_spans` is Baton's).
pub const ENDPOINT_KEYS: &[&str] = &[
    "type",
    "endpoint",
    "transport",
    "service_name",
    "headers",
    "header_env",
    "timeout_millis",
    "max_queue_size",
    "max_export_batch_size",
    "scheduled_delay_millis",
    "resource_attributes",
    "max_open_spans",
    "certificate",
    "client_certificate",
    "client_key",
];
const STRING_KEYS: &[&str] =
    &["type", "endpoint", "transport", "service_name", "header_env", "certificate", "client_certificate", "client_key"];
const COUNT_KEYS: &[&str] = &["timeout_millis", "max_queue_size", "max_export_batch_size", "scheduled_delay_millis", "max_open_spans"];

/// Builds OTLP exporters for the plugin system's `observability` component.
#[derive(Debug, Default)]
pub struct OtelPlugin;

/// Makes `opentelemetry` sections of plugin documents work, and `https://` ATOF stream sinks
/// (the core's TLS seam gets this crate's rustls client). Once per process; call it before
/// `plugin_validate` / `plugin_initialize`. Returns false if a factory was already installed.
pub fn install() -> bool {
    baton::export::atof_stream::install_tls_provider(Arc::new(crate::tls::StreamSinkTls));
    install_otel_factory(Arc::new(OtelPlugin))
}

fn signals(section: &Map<String, Value>) -> Signals {
    let on = |k: &str| section.get(k).and_then(|t| t.get("enabled")).and_then(Value::as_bool).unwrap_or(true);
    Signals { logs: on("logs"), metrics: on("metrics") }
}

/// One endpoint table: key and type checks, then [`validate`]. `None` when it cannot be read.
fn endpoint(value: &Value, at: &str, d: &mut Diagnostics) -> Option<EndpointConfig> {
    let Some(o) = value.as_object() else {
        d.error("invalid_type", at, format!("expected a table/object, got {}", baton::plugin::type_name(value)));
        return None;
    };
    d.check_keys(o, at, ENDPOINT_KEYS);
    let mut readable = true;
    for k in STRING_KEYS {
        if o.get(*k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            d.get_str(o, at, k); // reports the type
            readable = false;
        }
    }
    for k in COUNT_KEYS {
        if o.get(*k).is_some_and(|v| !v.is_null()) && d.get_u64(o, at, k).is_none() {
            readable = false;
        }
    }
    for k in ["headers", "resource_attributes"] {
        match o.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if k == "headers" => {
                for (name, v) in m.iter().filter(|(_, v)| !v.is_string()) {
                    d.error(
                        "invalid_type",
                        &format!("{}.{name}", join(at, k)),
                        format!("expected a string, got {}", baton::plugin::type_name(v)),
                    );
                    readable = false;
                }
            }
            Some(Value::Object(_)) => {}
            Some(_) => {
                d.get_object(o, at, k);
                readable = false;
            }
        }
    }
    if !readable {
        return None;
    }
    let mut clean = o.clone();
    clean.retain(|k, v| ENDPOINT_KEYS.contains(&k.as_str()) && !v.is_null());
    let cfg: EndpointConfig = match serde_json::from_value(Value::Object(clean)) {
        Ok(c) => c,
        Err(e) => {
            d.error("invalid_value", at, format!("cannot read the endpoint: {e}"));
            return None;
        }
    };
    for diag in validate(&cfg) {
        let field = join(at, &diag.field);
        match (diag.level, diag.code) {
            (Level::Error, "unsupported_value") => d.unsupported_value(&field, diag.message),
            (Level::Error, code) => d.error(code, &field, diag.message),
            (Level::Warning, code) => d.warning(code, &field, diag.message),
        }
    }
    Some(cfg)
}

impl OtelFactory for OtelPlugin {
    fn validate(&self, section: &Map<String, Value>, at: &str, d: &mut Diagnostics) {
        d.check_keys(section, at, SECTION_KEYS);
        for sig in ["logs", "metrics"] {
            if let Some(t) = d.get_object(section, at, sig) {
                let p = join(at, sig);
                d.check_keys(t, &p, SIGNAL_KEYS);
                d.get_bool(t, &p, "enabled");
            }
        }
        let enabled = section.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        let endpoints = d.get_array(section, at, "endpoints");
        if enabled && endpoints.is_none_or(|e| e.is_empty()) {
            d.error("missing_field", &join(at, "endpoints"), "opentelemetry is enabled but no endpoint is configured");
        }
        for (i, ep) in endpoints.into_iter().flatten().enumerate() {
            endpoint(ep, &format!("{}[{i}]", join(at, "endpoints")), d);
        }
    }

    fn build(&self, section: &Map<String, Value>) -> baton::Result<Vec<(String, Arc<dyn Subscriber>)>> {
        let signals = signals(section);
        let mut out: Vec<(String, Arc<dyn Subscriber>)> = Vec::new();
        let endpoints = section.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default();
        for (i, ep) in endpoints.iter().enumerate() {
            let mut clean = ep
                .as_object()
                .cloned()
                .ok_or_else(|| Error::invalid_argument(format!("opentelemetry.endpoints[{i}]: expected a table")))?;
            clean.retain(|k, v| ENDPOINT_KEYS.contains(&k.as_str()) && !v.is_null());
            let cfg: EndpointConfig = serde_json::from_value(Value::Object(clean))
                .map_err(|e| Error::invalid_argument(format!("opentelemetry.endpoints[{i}]: {e}")))?;
            let name = format!("{i}.{}", cfg.kind);
            let exporter = OtelExporter::with_signals(cfg, signals)
                .map_err(|e| Error::invalid_argument(format!("opentelemetry.endpoints[{i}]: {}", e.message())))?;
            out.push((name, Arc::new(exporter)));
        }
        Ok(out)
    }
}
