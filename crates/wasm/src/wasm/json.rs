//! JSON text in and out of the module.

use super::*;

pub(super) fn parse_json(text: &str, what: &str) -> Result<Value, JsValue> {
    serde_json::from_str(text).map_err(|e| bad(format!("{what}: invalid JSON: {e}")))
}

/// The JSON text of a value handed to JS. `serde_json::to_string` writes into the string's
/// buffer; `Value`'s `Display` (what `to_string()` would use) passes every piece through a
/// `fmt::Formatter`, which showed in profiles of calls with JS middleware. Serializing a `Value`
/// cannot fail (its map keys are strings), so the fallback is never taken.
pub(super) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| String::from("null"))
}
