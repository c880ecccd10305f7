//! Plugins from `plugins.toml` text.

use super::*;

/// Makes the `opentelemetry` section and `https://` stream sinks of plugin documents work
/// (`baton_otel::install`), once per process, before the first document is read.
fn with_otel() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        baton_otel::install();
    });
}

/// Checks a plugins document (the `plugins.toml` format, as JSON); pure, installs nothing.
/// @param diagnostics_out receives the JSON array of diagnostics
///        `[{level, code, component?, field?, message}]`; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_plugin_validate(runtime: BatonRuntime, document_json: *const c_char, diagnostics_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(diagnostics_out, "diagnostics_out")?;
        let doc = json_arg(document_json, "document_json")?;
        with_otel();
        let d = HANDLES.runtime(runtime)?.plugin_validate(&doc);
        write_string(diagnostics_out, Value::Array(d.iter().map(|d| d.to_json()).collect()).to_string())
    })
}

/// Validates a plugins document, replaces the active configuration with it (rolling back on
/// failure) and reports what was installed.
/// @param report_out receives `{diagnostics, components: [{kind, registrations: [{kind, name}]}]}`;
///        free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_plugin_initialize(runtime: BatonRuntime, document_json: *const c_char, report_out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(report_out, "report_out")?;
        let doc = json_arg(document_json, "document_json")?;
        with_otel();
        let report = HANDLES.runtime(runtime)?.plugin_initialize(&doc)?;
        write_string(report_out, report.to_json().to_string())
    })
}

/// Removes everything the active plugin configuration installed.
#[no_mangle]
pub extern "C" fn baton_plugin_clear(runtime: BatonRuntime) -> i32 {
    ffi(|| HANDLES.runtime(runtime)?.plugin_clear())
}
