//! Export sinks: named destinations the host provides for exported ATOF lines and ATIF
//! documents, instead of files.
//!
//! Why: a host without a file system (wasm32-unknown-unknown in a browser or an edge runtime)
//! or one that keeps exports elsewhere (a database, an upload queue, a UI) still wants the
//! observability component's output. The plugins document names such a sink, so the same
//! document shape works everywhere:
//!
//! ```toml
//! [[components.config.atof.sinks]]
//! type = "callback"
//! sink = "ui"                  # registered with baton::export::sink::register
//! [components.config.atif]
//! enabled = true
//! sink = "ui"                  # trajectories go to the sink instead of output_directory
//! ```
//!
//! Sinks are process-wide (like the OpenTelemetry factory): a name is looked up when a plugins
//! document is validated and activated; an exporter keeps the sink it was activated with, so
//! deregistering a name affects only later activations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::middleware::Subscriber;

/// A host destination for exported documents.
pub trait ExportSink: Send + Sync {
    /// Whether ATOF lines may be sent here (checked when a document names this sink).
    fn accepts_atof(&self) -> bool {
        true
    }
    /// Whether ATIF documents may be sent here.
    fn accepts_atif(&self) -> bool {
        true
    }
    /// One ATOF event as a JSON line (no trailing newline), in delivery order.
    fn atof_line(&self, line: &str) -> Result<()>;
    /// One finished ATIF trajectory. `file_name` is the `filename_template` applied to the
    /// session id: what the file exporter would have written (a suggested name).
    fn atif_document(&self, session_id: &str, file_name: &str, document: &Value) -> Result<()>;
    /// Called when the runtime flushes (after every earlier line or document was handed over).
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

static SINKS: Mutex<BTreeMap<String, Arc<dyn ExportSink>>> = Mutex::new(BTreeMap::new());

/// Registers `sink` under `name`. `already_exists` if the name is taken; `invalid_argument`
/// for an empty name.
pub fn register(name: &str, sink: Arc<dyn ExportSink>) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_argument("name: an export sink needs a non-empty name"));
    }
    let mut sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
    if sinks.contains_key(name) {
        return Err(Error::already_exists(format!("export sink '{name}' is already registered")));
    }
    sinks.insert(name.to_string(), sink);
    Ok(())
}

/// Removes the sink registered under `name`; false when there was none. Exporters already
/// activated with it keep it until their configuration is replaced or cleared.
pub fn deregister(name: &str) -> bool {
    SINKS.lock().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
}

/// The sink registered under `name`.
pub fn get(name: &str) -> Option<Arc<dyn ExportSink>> {
    SINKS.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
}

/// Names of every registered sink (for diagnostics).
pub fn names() -> Vec<String> {
    SINKS.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
}

/// The ATOF exporter for a callback sink: each delivered event becomes one line.
pub struct AtofSinkExporter(pub Arc<dyn ExportSink>);

impl Subscriber for AtofSinkExporter {
    fn on_event(&self, event: &Event) -> Result<()> {
        self.0.atof_line(&event.to_json_string())
    }
    fn flush(&self) -> Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Memory {
        lines: Mutex<Vec<String>>,
        docs: Mutex<Vec<(String, String, Value)>>,
    }

    impl ExportSink for Memory {
        fn atof_line(&self, line: &str) -> Result<()> {
            self.lines.lock().unwrap().push(line.to_string());
            Ok(())
        }
        fn atif_document(&self, session_id: &str, file_name: &str, document: &Value) -> Result<()> {
            self.docs.lock().unwrap().push((session_id.into(), file_name.into(), document.clone()));
            Ok(())
        }
    }

    #[test]
    fn names_are_unique_and_non_empty() {
        let s: Arc<dyn ExportSink> = Arc::new(Memory::default());
        register("sink-test-unique", s.clone()).unwrap();
        assert_eq!(register("sink-test-unique", s.clone()).unwrap_err().kind(), crate::ErrorKind::AlreadyExists);
        assert_eq!(register("", s).unwrap_err().kind(), crate::ErrorKind::InvalidArgument);
        assert!(names().contains(&"sink-test-unique".to_string()));
        assert!(deregister("sink-test-unique"));
        assert!(!deregister("sink-test-unique"));
        assert!(get("sink-test-unique").is_none());
    }

    /// The whole path: a plugins document names the sink; ATOF lines and the ATIF trajectory
    /// arrive there (and nothing needs a file system).
    #[test]
    fn observability_component_writes_to_a_named_sink() {
        let mem = Arc::new(Memory::default());
        register("sink-test-observability", mem.clone()).unwrap();
        let rt = crate::Runtime::new(crate::RuntimeConfig::default());
        let report = rt
            .plugin_initialize(&serde_json::json!({
                "version": 1,
                "components": [{"kind": "observability", "config": {
                    "atof": {"enabled": true, "sinks": [{"type": "callback", "sink": "sink-test-observability"}]},
                    "atif": {"enabled": true, "sink": "sink-test-observability", "filename_template": "t-{session_id}.json"},
                }}],
            }))
            .unwrap();
        let names: Vec<_> = report.components[0].registrations.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["observability.atof.0", "observability.atif"]);
        let stack = rt.new_stack();
        let agent = stack.push(crate::ScopeOptions::new("agent").category("agent").input(Value::from("hi"))).unwrap();
        stack.mark(crate::MarkOptions::new("note")).unwrap();
        stack.pop(&agent, crate::EndOptions::default().output(Value::from("bye"))).unwrap();
        rt.flush(std::time::Duration::from_secs(5)).unwrap();
        let lines = mem.lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 3);
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["name"], "agent");
        assert_eq!(first["scope_category"], "start");
        let docs = mem.docs.lock().unwrap().clone();
        assert_eq!(docs.len(), 1);
        let (session, file, doc) = &docs[0];
        assert_eq!(session, &agent.uuid().to_string());
        assert_eq!(file, &format!("t-{session}.json"));
        assert_eq!(doc["session_id"], Value::from(session.as_str()));
        rt.plugin_clear().unwrap();
        deregister("sink-test-observability");
    }

    #[test]
    fn unknown_or_unfit_sinks_are_diagnosed_with_the_field() {
        struct AtofOnly;
        impl ExportSink for AtofOnly {
            fn accepts_atif(&self) -> bool {
                false
            }
            fn atof_line(&self, _: &str) -> Result<()> {
                Ok(())
            }
            fn atif_document(&self, _: &str, _: &str, _: &Value) -> Result<()> {
                Err(Error::invalid_state("unreachable"))
            }
        }
        register("sink-test-atof-only", Arc::new(AtofOnly)).unwrap();
        let rt = crate::Runtime::new(crate::RuntimeConfig::default());
        let fields = |config: Value| -> Vec<String> {
            rt.plugin_validate(&serde_json::json!({"version": 1, "components": [{"kind": "observability", "config": config}]}))
                .into_iter()
                .filter(|d| d.level == crate::plugin::Level::Error)
                .filter_map(|d| d.field)
                .collect()
        };
        assert_eq!(
            fields(serde_json::json!({"atof": {"enabled": true, "sinks": [{"type": "callback", "sink": "sink-test-nope"}]}})),
            ["components[0].config.atof.sinks[0].sink"]
        );
        assert_eq!(
            fields(serde_json::json!({"atof": {"enabled": true, "sinks": [{"type": "callback"}]}})),
            ["components[0].config.atof.sinks[0].sink"]
        );
        assert_eq!(
            fields(serde_json::json!({"atif": {"enabled": true, "sink": "sink-test-atof-only"}})),
            ["components[0].config.atif.sink"]
        );
        assert!(fields(serde_json::json!({"atof": {"enabled": true, "sinks": [{"type": "callback", "sink": "sink-test-atof-only"}]}}))
            .is_empty());
        deregister("sink-test-atof-only");
    }
}
