//! The process's runtime: configuration, flush, shutdown and diagnostics.

use super::*;

pub(super) fn rt() -> &'static Runtime {
    Runtime::global()
}

#[wasm_bindgen]
pub fn flush(timeout_ms: f64) -> Result<bool, JsValue> {
    rt().flush(Duration::from_secs_f64((timeout_ms / 1000.0).max(0.0))).map_err(to_js)
}

#[wasm_bindgen]
pub fn shutdown(timeout_ms: f64) -> Result<bool, JsValue> {
    rt().shutdown(Duration::from_secs_f64((timeout_ms / 1000.0).max(0.0))).map_err(to_js)
}

/// Sets up the global runtime before its first use (`already_exists` afterwards).
#[wasm_bindgen]
pub fn configure(queue_capacity: Option<f64>, overflow: Option<String>) -> Result<(), JsValue> {
    let mut config = baton::RuntimeConfig::default();
    if let Some(n) = queue_capacity {
        if !(n >= 1.0 && n.fract() == 0.0) {
            return Err(bad("options.queueCapacity: expected a positive integer"));
        }
        config.queue_capacity = n as usize;
    }
    if let Some(p) = overflow {
        config.overflow = baton::OverflowPolicy::parse(&p).map_err(to_js)?;
    }
    Runtime::init_global(config).map(|_| ()).map_err(to_js)
}

#[wasm_bindgen(js_name = isShutdown)]
pub fn is_shutdown() -> bool {
    rt().is_shutdown()
}

/// `{deliveredEvents, droppedEvents, subscriberFailures, middlewareFailures, queued,
/// memoryBytes}` as JSON text.
#[wasm_bindgen]
pub fn diagnostics() -> String {
    let d = rt().diagnostics();
    json_text(&serde_json::json!({
        "deliveredEvents": d.delivered_events,
        "droppedEvents": d.dropped_events,
        "subscriberFailures": d.subscriber_failures,
        "middlewareFailures": d.middleware_failures,
        "queued": d.queued,
        "memoryBytes": memory_bytes(),
    }))
}

/// The module's linear memory in bytes: it grows in 64 KiB pages and never shrinks.
pub(super) fn memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65_536;
    #[cfg(not(target_arch = "wasm32"))]
    0 // `host-lint` builds, which never run
}
