//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::{Event, Middleware, Registration, Runtime, RuntimeConfig};

pub const T: Duration = Duration::from_secs(30);

/// A runtime of its own (tests run in parallel) plus a recorder of every event.
pub fn runtime_with_recorder() -> (Runtime, Arc<Mutex<Vec<Event>>>) {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    rt.register(
        Registration::new("recorder"),
        Middleware::subscriber(move |e| {
            sink.lock().unwrap().push(e.clone());
            Ok(())
        }),
    )
    .unwrap();
    (rt, seen)
}

pub fn names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let tag = if e.is_scope_start() {
                "start"
            } else if e.is_scope_end() {
                "end"
            } else {
                "mark"
            };
            format!("{tag}:{}", e.name)
        })
        .collect()
}
