//! Plugins and the export sinks that JS registers for them.

use super::*;

/// An export sink whose ATOF lines and ATIF documents go to JS functions (by id).
pub(super) struct JsExportSink {
    atof: Option<u32>,
    atif: Option<u32>,
}

impl JsExportSink {
    fn call(id: u32, args: &[JsValue]) -> baton::Result<()> {
        let f = stored(id).ok_or_else(|| Error::not_found("export sink function was removed"))?;
        let r = match args {
            [a] => f.call1(&JsValue::NULL, a),
            [a, b] => f.call2(&JsValue::NULL, a, b),
            _ => return Err(Error::internal("export sink: unexpected arity")),
        };
        r.map(|_| ()).map_err(|e| {
            let err = from_thrown(e);
            if let Some(t) = err.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
                THROWN.with(|m| m.borrow_mut().remove(&t.0));
            }
            Error::callback_failed(err.message().to_string())
        })
    }
}

impl baton::export::sink::ExportSink for JsExportSink {
    fn accepts_atof(&self) -> bool {
        self.atof.is_some()
    }
    fn accepts_atif(&self) -> bool {
        self.atif.is_some()
    }
    fn atof_line(&self, line: &str) -> baton::Result<()> {
        let id = self.atof.ok_or_else(|| Error::invalid_state("this export sink takes no ATOF lines"))?;
        Self::call(id, &[JsValue::from_str(line)])
    }
    fn atif_document(&self, session_id: &str, file_name: &str, document: &Value) -> baton::Result<()> {
        let id = self.atif.ok_or_else(|| Error::invalid_state("this export sink takes no ATIF documents"))?;
        let info = json_text(&serde_json::json!({"sessionId": session_id, "fileName": file_name}));
        Self::call(id, &[JsValue::from_str(&json_text(document)), JsValue::from_str(&info)])
    }
}

impl Drop for JsExportSink {
    fn drop(&mut self) {
        for id in [self.atof, self.atif].into_iter().flatten() {
            let _ = FUNCTIONS.try_with(|m| m.try_borrow_mut().map(|mut m| m.remove(&id)));
        }
    }
}

/// Registers an export sink named `name` for the observability component: `atof(line)` gets
/// each ATOF line, `atif(documentJson, infoJson)` each finished trajectory (either may be absent).
#[wasm_bindgen(js_name = registerExportSink)]
pub fn register_export_sink(name: &str, atof: Option<Function>, atif: Option<Function>) -> Result<(), JsValue> {
    if atof.is_none() && atif.is_none() {
        return Err(bad("sink: give an atof and/or an atif function"));
    }
    let put = |f: Option<Function>| {
        f.map(|f| {
            let id = next_id();
            FUNCTIONS.with(|m| m.borrow_mut().insert(id, f));
            id
        })
    };
    let sink = JsExportSink { atof: put(atof), atif: put(atif) };
    baton::export::sink::register(name, Arc::new(sink)).map_err(to_js)
}

/// Removes an export sink; false when none had that name.
#[wasm_bindgen(js_name = deregisterExportSink)]
pub fn deregister_export_sink(name: &str) -> bool {
    baton::export::sink::deregister(name)
}

/// Checks a plugins document (JSON text); returns the diagnostics as JSON text. Pure.
#[wasm_bindgen(js_name = pluginValidate)]
pub fn plugin_validate(config: &str) -> Result<String, JsValue> {
    let doc = parse_json(config, "config")?;
    Ok(json_text(&Value::Array(rt().plugin_validate(&doc).iter().map(|d| d.to_json()).collect())))
}

/// Validates and installs a plugins document; returns the report as JSON text. Components that
/// need a file system (file exporters) fail on wasm32, which has none.
#[wasm_bindgen(js_name = pluginInitialize)]
pub fn plugin_initialize(config: &str) -> Result<String, JsValue> {
    let doc = parse_json(config, "config")?;
    rt().plugin_initialize(&doc).map(|r| json_text(&r.to_json())).map_err(to_js)
}

#[wasm_bindgen(js_name = pluginClear)]
pub fn plugin_clear() -> Result<(), JsValue> {
    rt().plugin_clear().map_err(to_js)
}
