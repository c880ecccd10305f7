//! One OTLP endpoint's configuration: the keys of the reference's `plugins.toml`
//! (`[[components.config.opentelemetry.endpoints]]`), their defaults, and their validation.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// Which attribute vocabulary spans are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Every ATOF field as `baton.*` attributes (plus metadata, flattened).
    Full,
    /// OpenTelemetry GenAI semantic conventions (`gen_ai.*`, `chat {model}`, ...).
    GenAi,
    /// OpenInference (`openinference.span.kind`, `input.value`, `llm.*`, `tool.*`).
    OpenInference,
}

impl Projection {
    pub const NAMES: [&'static str; 3] = ["full", "gen_ai", "openinference"];

    pub fn parse(s: &str) -> Option<Projection> {
        match s {
            "full" => Some(Projection::Full),
            "gen_ai" => Some(Projection::GenAi),
            "openinference" => Some(Projection::OpenInference),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Projection::Full => "full",
            Projection::GenAi => "gen_ai",
            Projection::OpenInference => "openinference",
        }
    }
}

/// How OTLP reaches the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/HTTP with protobuf bodies (`POST {endpoint}/v1/traces`, ...).
    HttpBinary,
    /// OTLP/gRPC (`opentelemetry.proto.collector.*.v1.*Service/Export`).
    Grpc,
}

impl Transport {
    pub const NAMES: [&'static str; 2] = ["http_binary", "grpc"];

    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "http_binary" => Some(Transport::HttpBinary),
            "grpc" => Some(Transport::Grpc),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::HttpBinary => "http_binary",
            Transport::Grpc => "grpc",
        }
    }
    /// The OTLP default endpoint for this transport.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Transport::HttpBinary => "http://localhost:4318",
            Transport::Grpc => "http://localhost:4317",
        }
    }
}

/// One endpoint (`opentelemetry.endpoints[i]` in `plugins.toml`).
///
/// Every key is optional; unknown keys are ignored here (the plugin layer applies its
/// `unknown_field` policy). `type` and `transport` stay strings so that [`validate`] can name
/// a bad value instead of failing deserialization.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct EndpointConfig {
    /// `full` | `gen_ai` | `openinference` (default `full`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Base URL (`http://host:4318` for HTTP, `http://host:4317` for gRPC; `https://` for
    /// TLS). Empty means the transport's OTLP default. For HTTP a URL already ending in
    /// `/v1/traces` is used as is.
    pub endpoint: String,
    /// `http_binary` | `grpc` (default `http_binary`).
    pub transport: String,
    /// `service.name` of the resource (default `baton`).
    pub service_name: String,
    /// Extra request headers (HTTP headers / gRPC metadata).
    pub headers: BTreeMap<String, String>,
    /// Name of an environment variable holding more headers as `k=v,k2=v2` (read when the
    /// exporter is built; its entries win over `headers`).
    pub header_env: Option<String>,
    /// Deadline of one export request, connection included (default 10,000).
    pub timeout_millis: u64,
    /// Items (spans, log records, metric points: each signal separately) waiting for export;
    /// beyond it new items are dropped and counted (default 2,048).
    pub max_queue_size: usize,
    /// Items per export request (default 512).
    pub max_export_batch_size: usize,
    /// How long an item may wait before a batch is sent (default 5,000).
    pub scheduled_delay_millis: u64,
    /// Extra resource attributes (strings, numbers, booleans, arrays of them).
    pub resource_attributes: BTreeMap<String, Value>,
    /// Baton extension: scopes tracked while open; beyond it the oldest open scope is
    /// forgotten (its span is never exported) and counted in `evicted` (default 65,536).
    pub max_open_spans: usize,
    /// `https` endpoints: a PEM file of CA certificates trusted besides the system's roots
    /// (default: `OTEL_EXPORTER_OTLP_{SIGNAL}_CERTIFICATE`, then `OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub certificate: Option<String>,
    /// `https` endpoints, mutual TLS: the client's PEM certificate chain (default:
    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_CERTIFICATE`, then `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`).
    pub client_certificate: Option<String>,
    /// `https` endpoints, mutual TLS: the client's PEM private key (default:
    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_CLIENT_KEY`, then `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub client_key: Option<String>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            kind: "full".into(),
            endpoint: String::new(),
            transport: "http_binary".into(),
            service_name: "baton".into(),
            headers: BTreeMap::new(),
            header_env: None,
            timeout_millis: 10_000,
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay_millis: 5000,
            resource_attributes: BTreeMap::new(),
            max_open_spans: 65_536,
            certificate: None,
            client_certificate: None,
            client_key: None,
        }
    }
}

impl EndpointConfig {
    /// A config for `endpoint` over `transport` with projection `kind`, defaults elsewhere.
    pub fn new(kind: &str, endpoint: &str, transport: &str) -> EndpointConfig {
        EndpointConfig { kind: kind.into(), endpoint: endpoint.into(), transport: transport.into(), ..Default::default() }
    }

    /// The effective endpoint URL (the transport's default when `endpoint` is empty).
    pub fn endpoint_or_default(&self) -> String {
        if self.endpoint.trim().is_empty() {
            Transport::parse(&self.transport).unwrap_or(Transport::HttpBinary).default_endpoint().to_string()
        } else {
            self.endpoint.trim().to_string()
        }
    }

    /// `headers`, then the entries of `header_env` (which win). Problems are diagnostics.
    pub fn resolved_headers(&self) -> (Vec<(String, String)>, Vec<Diagnostic>) {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let mut diags = Vec::new();
        for (k, v) in &self.headers {
            out.insert(k.trim().to_ascii_lowercase(), v.clone());
        }
        if let Some(var) = self.header_env.as_deref().filter(|v| !v.is_empty()) {
            match std::env::var(var) {
                Ok(text) => {
                    for (i, part) in text.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
                        match part.split_once('=') {
                            Some((k, v)) if !k.trim().is_empty() => {
                                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                            _ => diags.push(Diagnostic::warning(
                                "header_env",
                                format!("${var}: entry {i} is not of the form key=value; ignored"),
                            )),
                        }
                    }
                }
                Err(_) => diags.push(Diagnostic::warning(
                    "header_env",
                    format!("environment variable '{var}' is not set; no headers are read from it"),
                )),
            }
        }
        for (k, v) in &out {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                diags.push(Diagnostic::error(format!("headers.{k}"), format!("'{k}' is not a valid header name")));
            } else if http::HeaderValue::from_str(v).is_err() {
                diags.push(Diagnostic::error(format!("headers.{k}"), "the value is not a valid header value (control characters?)"));
            }
        }
        (out.into_iter().collect(), diags)
    }
}

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Error,
}

impl Level {
    /// `"warning"` | `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One problem found in an [`EndpointConfig`]; `field` is relative to the endpoint object
/// (`endpoint`, `transport`, `headers.x-key`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    /// `invalid_value` (a value that can never work) or `unsupported_value` (a value this
    /// build cannot honour: an unknown `type`/`transport`), matching the plugin system's codes.
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(field: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { level: Level::Error, code: "invalid_value", field: field.into(), message: message.into() }
    }
    pub fn unsupported(field: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { level: Level::Error, code: "unsupported_value", field: field.into(), message: message.into() }
    }
    pub fn warning(field: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { level: Level::Warning, code: "invalid_value", field: field.into(), message: message.into() }
    }
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.level.as_str(), self.field, self.message)
    }
}

/// Checks one endpoint config without side effects (the environment is read for
/// `header_env` and the TLS variables, an `https` endpoint's CA and client files and the
/// system's roots are read; nothing is connected). Errors make [`crate::OtelExporter::new`] fail.
pub fn validate(config: &EndpointConfig) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    if Projection::parse(&config.kind).is_none() {
        d.push(Diagnostic::unsupported("type", format!("'{}' is not one of {}", config.kind, Projection::NAMES.join(", "))));
    }
    if Transport::parse(&config.transport).is_none() {
        d.push(Diagnostic::unsupported("transport", format!("'{}' is not one of {}", config.transport, Transport::NAMES.join(", "))));
    }
    match parse_endpoint(&config.endpoint_or_default()) {
        Err(msg) => d.push(Diagnostic::error("endpoint", msg)),
        Ok(uri) if uri.scheme_str() == Some("https") => {
            if let Err(errors) = crate::tls::setup(config) {
                d.extend(errors);
            }
        }
        Ok(_) => {
            for (field, v) in [
                ("certificate", &config.certificate),
                ("client_certificate", &config.client_certificate),
                ("client_key", &config.client_key),
            ] {
                if v.as_deref().is_some_and(|v| !v.trim().is_empty()) {
                    d.push(Diagnostic::warning(field, "only used for https:// endpoints; this one is http://"));
                }
            }
        }
    }
    if config.service_name.trim().is_empty() {
        d.push(Diagnostic::warning("service_name", "empty; receivers will show the service as unknown"));
    }
    for (field, v) in [
        ("timeout_millis", config.timeout_millis as u128),
        ("max_queue_size", config.max_queue_size as u128),
        ("max_export_batch_size", config.max_export_batch_size as u128),
        ("max_open_spans", config.max_open_spans as u128),
    ] {
        if v == 0 {
            d.push(Diagnostic::error(field, "must be greater than 0"));
        }
    }
    if config.max_export_batch_size > config.max_queue_size && config.max_queue_size > 0 {
        d.push(Diagnostic::warning(
            "max_export_batch_size",
            format!(
                "{} is larger than max_queue_size ({}); batches are capped at the queue size",
                config.max_export_batch_size, config.max_queue_size
            ),
        ));
    }
    for (k, v) in &config.resource_attributes {
        if v.is_null() || v.is_object() {
            d.push(Diagnostic::warning(
                format!("resource_attributes.{k}"),
                "expected a string, number, boolean or array; the value is sent as JSON text",
            ));
        }
    }
    d.extend(config.resolved_headers().1);
    d
}

/// A parsed endpoint: `http://host:port/path` or `https://host:port/path`.
pub(crate) fn parse_endpoint(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("'{url}' is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("'{url}': scheme '{other}' is not http or https")),
        None => return Err(format!("'{url}' has no scheme (expected http://host:port or https://host:port)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("'{url}' has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("'{url}': a query string is not allowed in an OTLP endpoint"));
    }
    Ok(uri)
}

/// The HTTP URL of one signal: `{base}/v1/{signal}`, or the given URL when it already names
/// a signal path (`.../v1/traces` → `.../v1/metrics` for metrics).
pub(crate) fn signal_url(base: &http::Uri, signal: &str) -> String {
    let s = base.to_string();
    let path = base.path();
    for known in ["traces", "metrics", "logs"] {
        let suffix = format!("/v1/{known}");
        if path.ends_with(&suffix) {
            let prefix = &s[..s.len() - known.len()];
            return format!("{prefix}{signal}");
        }
    }
    format!("{}/v1/{signal}", s.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_deserialize_from_an_empty_table() {
        let c: EndpointConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, EndpointConfig::default());
        assert!(validate(&c).is_empty(), "{:?}", validate(&c));
        assert_eq!(c.endpoint_or_default(), "http://localhost:4318");
    }

    #[test]
    fn reference_keys_deserialize_and_unknown_keys_are_ignored() {
        let c: EndpointConfig = serde_json::from_value(serde_json::json!({
            "type": "gen_ai", "endpoint": "http://collector:4317", "transport": "grpc",
            "service_name": "svc", "headers": {"X-Team": "a"}, "timeout_millis": 500,
            "max_queue_size": 10, "max_export_batch_size": 5, "scheduled_delay_millis": 100,
            "resource_attributes": {"deployment.environment": "test"}, "something_new": 1
        }))
        .unwrap();
        assert_eq!(c.kind, "gen_ai");
        assert_eq!(c.transport, "grpc");
        assert_eq!(c.max_export_batch_size, 5);
        assert!(validate(&c).is_empty());
        assert_eq!(c.resolved_headers().0, vec![("x-team".to_string(), "a".to_string())]);
    }

    #[test]
    fn bad_values_name_their_field() {
        let c = EndpointConfig {
            kind: "zipkin".into(),
            transport: "http_json".into(),
            endpoint: "localhost:4318".into(),
            max_queue_size: 0,
            max_export_batch_size: 0,
            timeout_millis: 0,
            ..Default::default()
        };
        let d = validate(&c);
        let fields: Vec<&str> = d.iter().filter(|d| d.is_error()).map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["type", "transport", "endpoint", "timeout_millis", "max_queue_size", "max_export_batch_size"]);
        for url in ["ftp://x", "http://", "https://", "not a url", "http://h:1/?a=b"] {
            let c = EndpointConfig { endpoint: url.into(), ..Default::default() };
            assert!(validate(&c).iter().any(|d| d.field == "endpoint" && d.is_error()), "{url}");
        }
    }

    #[test]
    fn header_env_missing_is_a_warning_and_present_is_parsed() {
        let c = EndpointConfig { header_env: Some("BATON_OTEL_TEST_SURELY_UNSET_VAR".into()), ..Default::default() };
        let d = validate(&c);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].level, d[0].field.as_str()), (Level::Warning, "header_env"));

        std::env::set_var("BATON_OTEL_TEST_HEADERS_VAR", "api-key=s3cret, x-b = 2 ,broken");
        let c = EndpointConfig {
            header_env: Some("BATON_OTEL_TEST_HEADERS_VAR".into()),
            headers: BTreeMap::from([("API-Key".to_string(), "from-config".to_string())]),
            ..Default::default()
        };
        let (h, d) = c.resolved_headers();
        assert_eq!(h, vec![("api-key".into(), "s3cret".into()), ("x-b".into(), "2".into())]);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].level, Level::Warning);
    }

    #[test]
    fn signal_urls() {
        let u = parse_endpoint("http://h:4318").unwrap();
        assert_eq!(signal_url(&u, "traces"), "http://h:4318/v1/traces");
        let u = parse_endpoint("http://h:4318/otlp/").unwrap();
        assert_eq!(signal_url(&u, "logs"), "http://h:4318/otlp/v1/logs");
        let u = parse_endpoint("http://h:4318/x/v1/traces").unwrap();
        assert_eq!(signal_url(&u, "metrics"), "http://h:4318/x/v1/metrics");
        assert_eq!(signal_url(&u, "traces"), "http://h:4318/x/v1/traces");
    }
}
