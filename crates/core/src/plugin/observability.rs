//! The `observability` component: ATOF, ATIF and OpenTelemetry export configured from the
//! plugins document, with the reference's keys so an existing `plugins.toml` works.
//!
//! ```toml
//! [components.config]
//! version = 1                      # 1..=4 accepted (the reference's schema versions)
//! enable_full_payloads = false     # exported LLM starts keep the complete request?
//! [components.config.atof]
//! enabled = true
//! [[components.config.atof.sinks]]
//! type = "file"                    # or "stream": url, transport = http_post|ndjson, headers, header_env, timeout_millis, certificate
//! output_directory = "logs"
//! filename = "events.jsonl"
//! mode = "append"                  # or "overwrite"
//! [[components.config.atof.sinks]]
//! type = "callback"                # a host sink registered with baton::export::sink::register
//! sink = "ui"
//! [components.config.atif]         # enabled, agent_name, agent_version, model_name, output_directory,
//! enabled = true                   # filename_template (with {session_id}), tool_definitions, extra,
//!                                  # sink (a registered host sink instead of output_directory)
//! [components.config.opentelemetry] # needs the baton-otel crate: baton_otel::install()
//! ```

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::{join, Activation, Component, Diagnostics};
use crate::error::{Error, Result};
use crate::event::{Event, Payload};
use crate::export::atof::{AtofFileExporter, FileMode};
use crate::export::{self, sink::ExportSink};
use crate::middleware::{Middleware, Subscriber};

/// Exported LLM request strings longer than this are cut unless `enable_full_payloads`.
pub const TRIMMED_STRING_BYTES: usize = 4096;

/// Builds OpenTelemetry exporters from the `opentelemetry` section. The core has no OTel
/// dependency (and its wasm build none at all): the `baton-otel` crate installs this.
pub trait OtelFactory: Send + Sync {
    /// Checks the section (an object); field paths relative to `at`.
    fn validate(&self, section: &Map<String, Value>, at: &str, diagnostics: &mut Diagnostics);
    /// One subscriber per configured endpoint (or pipeline), with a name for each.
    fn build(&self, section: &Map<String, Value>) -> Result<Vec<(String, Arc<dyn Subscriber>)>>;
}

static OTEL: OnceLock<Arc<dyn OtelFactory>> = OnceLock::new();

/// Installs the OpenTelemetry factory (once per process). Returns false if one was installed.
pub fn install_otel_factory(factory: Arc<dyn OtelFactory>) -> bool {
    OTEL.set(factory).is_ok()
}

/// The built-in `observability` component.
pub struct Observability;

const ROOT_KEYS: &[&str] = &["version", "enable_full_payloads", "policy", "insecure_http_hosts", "atof", "atif", "opentelemetry"];
const ATOF_KEYS: &[&str] = &["enabled", "sinks", "output_directory", "filename", "mode"];
const FILE_SINK_KEYS: &[&str] = &["type", "output_directory", "filename", "mode"];
const STREAM_SINK_KEYS: &[&str] = &["type", "url", "transport", "headers", "header_env", "timeout_millis", "certificate"];
const CALLBACK_SINK_KEYS: &[&str] = &["type", "sink"];
const ATIF_KEYS: &[&str] =
    &["enabled", "agent_name", "agent_version", "model_name", "output_directory", "filename_template", "tool_definitions", "extra", "sink"];

/// One ATOF sink, as configured.
#[derive(Clone, Debug, PartialEq)]
pub enum AtofSink {
    File {
        output_directory: String,
        filename: String,
        mode: FileMode,
    },
    Stream(crate::export::atof_stream::StreamConfig),
    /// A host sink registered with [`crate::export::sink::register`], by name.
    Callback {
        sink: String,
    },
}

impl Observability {
    fn atof_sinks(atof: &Map<String, Value>, at: &str, d: &mut Diagnostics) -> Vec<AtofSink> {
        let mut sinks = Vec::new();
        // The older single-file form: output_directory / filename / mode on the section.
        if atof.contains_key("output_directory") || atof.contains_key("filename") {
            if let Some(s) = Self::file_sink(atof, at, d) {
                sinks.push(s);
            }
        }
        for (i, s) in d.get_array(atof, at, "sinks").into_iter().flatten().enumerate() {
            let sat = format!("{at}.sinks[{i}]");
            let Some(obj) = s.as_object() else {
                d.error("invalid_type", &sat, format!("expected a table/object, got {}", super::type_name(s)));
                continue;
            };
            match d.get_str(obj, &sat, "type") {
                Some("file") => {
                    d.check_keys(obj, &sat, FILE_SINK_KEYS);
                    sinks.extend(Self::file_sink(obj, &sat, d));
                }
                Some("stream") => {
                    d.check_keys(obj, &sat, STREAM_SINK_KEYS);
                    if let Some(c) = crate::export::atof_stream::StreamConfig::parse(obj, &sat, d) {
                        sinks.push(AtofSink::Stream(c));
                    }
                }
                Some("callback") => {
                    d.check_keys(obj, &sat, CALLBACK_SINK_KEYS);
                    let field = format!("{sat}.sink");
                    if let Some(name) = Self::host_sink(obj, &sat, &field, d, |s| s.accepts_atof(), "ATOF lines") {
                        sinks.push(AtofSink::Callback { sink: name });
                    }
                }
                Some(other) => {
                    d.unsupported_value(&format!("{sat}.type"), format!("'{other}' is not a sink type (file, stream, callback)"))
                }
                None => d.error("missing_field", &format!("{sat}.type"), "missing; a sink's type is file, stream or callback"),
            }
        }
        sinks
    }

    /// The name of a registered host sink at `obj.sink`, checked to exist and to take `what`.
    fn host_sink(
        obj: &Map<String, Value>,
        at: &str,
        field: &str,
        d: &mut Diagnostics,
        accepts: impl Fn(&dyn ExportSink) -> bool,
        what: &str,
    ) -> Option<String> {
        let Some(name) = d.get_str(obj, at, "sink") else {
            if !obj.contains_key("sink") {
                d.error("missing_field", field, "missing; the name of a registered export sink");
            }
            return None;
        };
        match export::sink::get(name) {
            None => {
                let known = export::sink::names();
                let known = if known.is_empty() { "none is registered".to_string() } else { format!("registered: {}", known.join(", ")) };
                d.error("invalid_value", field, format!("no export sink named '{name}' ({known})"));
                None
            }
            Some(s) if !accepts(&*s) => {
                d.error("invalid_value", field, format!("export sink '{name}' does not take {what}"));
                None
            }
            Some(_) => Some(name.to_string()),
        }
    }

    fn file_sink(obj: &Map<String, Value>, at: &str, d: &mut Diagnostics) -> Option<AtofSink> {
        let dir = d.get_str(obj, at, "output_directory");
        let filename = d.get_str(obj, at, "filename").unwrap_or("events.jsonl");
        let mode = match d.get_str(obj, at, "mode") {
            None => FileMode::Append,
            Some(m) => match FileMode::parse(m) {
                Ok(m) => m,
                Err(_) => {
                    d.unsupported_value(&join(at, "mode"), format!("'{m}' is not one of append, overwrite"));
                    return None;
                }
            },
        };
        if filename.is_empty() || filename.contains('/') || filename.contains('\\') {
            d.error(
                "invalid_value",
                &join(at, "filename"),
                format!("'{filename}' must be a plain file name (put folders in output_directory)"),
            );
            return None;
        }
        let Some(dir) = dir else {
            d.error("missing_field", &join(at, "output_directory"), "missing; where should the ATOF file be written?");
            return None;
        };
        Some(AtofSink::File { output_directory: dir.to_string(), filename: filename.to_string(), mode })
    }

    /// Validates everything and returns the parsed pieces (used by both validate and activate).
    fn parse(config: &Value, d: &mut Diagnostics) -> Parsed {
        let mut p = Parsed::default();
        let Some(root) = config.as_object() else {
            return p;
        };
        d.check_keys(root, "", ROOT_KEYS);
        if let Some(v) = d.get_u64(root, "", "version") {
            if !(1..=4).contains(&v) {
                d.unsupported_value("version", format!("observability config version {v} is not supported (1 to 4)"));
            }
        }
        p.full_payloads = d.get_bool(root, "", "enable_full_payloads").unwrap_or(false);
        if let Some(pol) = d.get_object(root, "", "policy") {
            d.check_keys(pol, "policy", &["unknown_component", "unknown_field", "unsupported_value"]);
        }
        if let Some(hosts) = d.get_array(root, "", "insecure_http_hosts") {
            if let Some((i, h)) = hosts.iter().enumerate().find(|(_, h)| !h.is_string()) {
                d.error("invalid_type", &format!("insecure_http_hosts[{i}]"), format!("expected a string, got {}", super::type_name(h)));
            }
        }
        if let Some(atof) = d.get_object(root, "", "atof") {
            d.check_keys(atof, "atof", ATOF_KEYS);
            let enabled = d.get_bool(atof, "atof", "enabled").unwrap_or(false);
            let sinks = Self::atof_sinks(atof, "atof", d);
            if enabled {
                if sinks.is_empty() && !d.has_errors() {
                    d.error("missing_field", "atof.sinks", "ATOF export is enabled but no sink is configured");
                }
                p.atof = sinks;
            }
        }
        if let Some(atif) = d.get_object(root, "", "atif") {
            d.check_keys(atif, "atif", ATIF_KEYS);
            let cfg = crate::export::atif::AtifConfig::parse(atif, "atif", d);
            if atif.contains_key("sink") {
                Self::host_sink(atif, "atif", "atif.sink", d, |s| s.accepts_atif(), "ATIF documents");
            }
            if d.get_bool(atif, "atif", "enabled").unwrap_or(false) {
                p.atif = cfg;
            }
        }
        if let Some(otel) = d.get_object(root, "", "opentelemetry") {
            let enabled = d.get_bool(otel, "opentelemetry", "enabled").unwrap_or(false);
            match OTEL.get() {
                Some(f) => {
                    f.validate(otel, "opentelemetry", d);
                    if enabled {
                        p.otel = Some(otel.clone());
                    }
                }
                None if enabled => d.unsupported_value(
                    "opentelemetry.enabled",
                    "OpenTelemetry export is not available in this build (it comes with the baton-otel crate and the native bindings; not in wasm)",
                ),
                None => {}
            }
        }
        p
    }
}

#[derive(Default)]
struct Parsed {
    full_payloads: bool,
    atof: Vec<AtofSink>,
    atif: Option<crate::export::atif::AtifConfig>,
    otel: Option<Map<String, Value>>,
}

impl Component for Observability {
    fn kind(&self) -> &str {
        "observability"
    }

    fn validate(&self, config: &Value, diagnostics: &mut Diagnostics) {
        Self::parse(config, diagnostics);
    }

    fn activate(&self, config: &Value, activation: &mut Activation<'_>) -> Result<()> {
        let mut d = Diagnostics::new(super::Policy::default());
        let p = Self::parse(config, &mut d);
        let wrap = |s: Arc<dyn Subscriber>| -> Arc<dyn Subscriber> {
            if p.full_payloads {
                s
            } else {
                Arc::new(TrimLlmRequests(s))
            }
        };
        for (i, sink) in p.atof.iter().enumerate() {
            let sub: Arc<dyn Subscriber> = match sink {
                AtofSink::File { output_directory, filename, mode } => {
                    Arc::new(AtofFileExporter::open(std::path::Path::new(output_directory).join(filename), *mode)?)
                }
                AtofSink::Stream(cfg) => crate::export::atof_stream::open(cfg.clone())?,
                AtofSink::Callback { sink } => {
                    Arc::new(export::sink::AtofSinkExporter(registered_sink(sink, &format!("atof.sinks[{i}].sink"))?))
                }
            };
            activation.register(&format!("atof.{i}"), 0, Middleware::Subscriber(wrap(sub)))?;
        }
        if let Some(cfg) = p.atif {
            let exporter: Arc<dyn Subscriber> = match cfg.sink.clone() {
                None => Arc::new(crate::export::atif::AtifExporter::new(cfg)),
                Some(name) => {
                    let sink = registered_sink(&name, "atif.sink")?;
                    let template = cfg.filename_template.clone();
                    Arc::new(crate::export::atif::AtifExporter::with_sink(cfg, move |session, doc| {
                        sink.atif_document(session, &template.replace("{session_id}", session), doc)
                    }))
                }
            };
            activation.register("atif", 0, Middleware::Subscriber(wrap(exporter)))?;
        }
        if let Some(section) = p.otel {
            let factory = OTEL.get().ok_or_else(|| Error::invalid_state("OpenTelemetry export is not available in this build"))?;
            for (name, sub) in factory.build(&section)? {
                activation.register(&format!("otel.{name}"), 0, Middleware::Subscriber(wrap(sub)))?;
            }
        }
        Ok(())
    }
}

/// The sink a validated document named (it may have been deregistered since validation).
fn registered_sink(name: &str, field: &str) -> Result<Arc<dyn ExportSink>> {
    export::sink::get(name).ok_or_else(|| Error::invalid_argument(format!("{field}: no export sink named '{name}' is registered")))
}

/// Without `enable_full_payloads`, exported LLM start events keep their request with every
/// string longer than [`TRIMMED_STRING_BYTES`] cut (and marked), so long prompts do not
/// flood the exports. The runtime's own events, and other subscribers, are unaffected.
struct TrimLlmRequests(Arc<dyn Subscriber>);

impl Subscriber for TrimLlmRequests {
    fn on_event(&self, event: &Event) -> Result<()> {
        let is_llm_start = event.is_scope_start() && event.category.as_ref().is_some_and(|c| c.as_str() == "llm");
        if !is_llm_start || event.data.as_json().len() <= TRIMMED_STRING_BYTES {
            return self.0.on_event(event);
        }
        let mut data = event.data.to_value();
        trim_strings(&mut data);
        let trimmed = Event { data: Payload::from_value(&data), ..event.clone() };
        self.0.on_event(&trimmed)
    }
    fn flush(&self) -> Result<()> {
        self.0.flush()
    }
    fn close(&self) -> Result<()> {
        self.0.close()
    }
}

fn trim_strings(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > TRIMMED_STRING_BYTES => {
            let mut cut = TRIMMED_STRING_BYTES;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            let dropped = s.len() - cut;
            s.truncate(cut);
            s.push_str(&format!("…[{dropped} bytes trimmed; enable_full_payloads keeps them]"));
        }
        Value::Array(a) => a.iter_mut().for_each(trim_strings),
        Value::Object(o) => o.values_mut().for_each(trim_strings),
        _ => {}
    }
}
