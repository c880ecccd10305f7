//! Runtimes: create, flush, shut down, diagnostics.

use super::*;

fn runtime_config(p: *const c_char) -> Result<RuntimeConfig> {
    let o = options(p, "config", &["queue_capacity", "overflow"])?;
    let mut c = RuntimeConfig::default();
    if let Some(v) = o.get("queue_capacity") {
        c.queue_capacity = v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::invalid_argument(format!("config.queue_capacity: expected a positive integer, got {v}")))?
            as usize;
    }
    if let Some(v) = o.get("overflow") {
        let s = v.as_str().ok_or_else(|| Error::invalid_argument(format!("config.overflow: expected \"block\" or \"drop\", got {v}")))?;
        c.overflow = baton::OverflowPolicy::parse(s)?;
    }
    Ok(c)
}

/// Creates an independent runtime (its own registry and dispatcher).
/// @param config_json `{"queue_capacity": n, "overflow": "block"|"drop"}` or `NULL` for defaults.
/// @param out receives the runtime id; free it with baton_runtime_free().
#[no_mangle]
pub extern "C" fn baton_runtime_new(config_json: *const c_char, out: *mut BatonRuntime) -> i32 {
    ffi(|| {
        let config = runtime_config(config_json)?;
        write_id(out, || Ok(HANDLES.insert(Handle::Runtime(Runtime::new(config)))))
    })
}

/// Configures the global runtime (id 0) before its first use; `BATON_ERR_ALREADY_EXISTS` after.
#[no_mangle]
pub extern "C" fn baton_runtime_init_global(config_json: *const c_char) -> i32 {
    ffi(|| Runtime::init_global(runtime_config(config_json)?).map(|_| ()))
}

/// Releases a runtime id (not the global runtime). Stacks made from it keep it alive.
#[no_mangle]
pub extern "C" fn baton_runtime_free(runtime: BatonRuntime) -> i32 {
    ffi(|| {
        if runtime == 0 {
            return Err(Error::invalid_argument("runtime: the global runtime (0) cannot be freed"));
        }
        HANDLES.remove(runtime, "runtime", |h| matches!(h, Handle::Runtime(_))).map(drop)
    })
}

/// Waits until every event emitted before this call has been delivered.
/// @param completed receives whether that happened within `timeout_ms` (may be `NULL`).
#[no_mangle]
pub extern "C" fn baton_runtime_flush(runtime: BatonRuntime, timeout_ms: u64, completed: *mut bool) -> i32 {
    ffi(|| {
        let done = HANDLES.runtime(runtime)?.flush(Duration::from_millis(timeout_ms))?;
        write_bool(completed, done)
    })
}

/// Flushes, then stops the runtime; afterwards operations return `BATON_ERR_ALREADY_SHUTDOWN`.
/// @param completed receives whether the flush finished within `timeout_ms` (may be `NULL`).
#[no_mangle]
pub extern "C" fn baton_runtime_shutdown(runtime: BatonRuntime, timeout_ms: u64, completed: *mut bool) -> i32 {
    ffi(|| {
        let done = HANDLES.runtime(runtime)?.shutdown(Duration::from_millis(timeout_ms))?;
        write_bool(completed, done)
    })
}

/// Delivery counters as JSON: `{delivered_events, dropped_events, subscriber_failures,
/// middleware_failures, queued}`.
/// @param out receives the JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_runtime_diagnostics(runtime: BatonRuntime, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        let d = HANDLES.runtime(runtime)?.diagnostics();
        write_string(
            out,
            json!({
                "delivered_events": d.delivered_events,
                "dropped_events": d.dropped_events,
                "subscriber_failures": d.subscriber_failures,
                "middleware_failures": d.middleware_failures,
                "queued": d.queued,
            })
            .to_string(),
        )
    })
}
