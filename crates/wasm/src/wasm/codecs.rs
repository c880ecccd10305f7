//! The provider codecs.

use super::*;

/// Provider codecs: `op` is `decodeRequest`, `encodeRequest`, `decodeResponse` or
/// `aggregateStream`; values are JSON text; `original` only for `encodeRequest`.
#[wasm_bindgen]
pub fn codec(op: &str, codec: &str, value: &str, original: Option<String>) -> Result<String, JsValue> {
    use baton::codec::{self as c, Codec};
    let kind = Codec::parse(codec).map_err(to_js)?;
    let first = parse_json(value, "value")?;
    let fixed = |k: Option<c::CodecKind>, f: &dyn Fn(c::CodecKind) -> baton::Result<Value>| k.map_or(Ok(Value::Null), f);
    let out = match op {
        "decodeRequest" => fixed(kind.for_request(&first), &|k| c::decode_request(k, &first)),
        "encodeRequest" => {
            let original = parse_json(original.as_deref().unwrap_or("null"), "original")?;
            fixed(kind.for_request(&original), &|k| c::encode_request(k, &first, &original))
        }
        "decodeResponse" => fixed(kind.for_response(&first), &|k| c::decode_response_json(k, &first)),
        "aggregateStream" => {
            let chunks = first.as_array().ok_or_else(|| bad("chunks: expected an array"))?;
            let k = match kind {
                Codec::Kind(k) => Some(k),
                Codec::Auto => chunks.iter().find_map(c::detect_chunk),
            };
            fixed(k, &|k| c::aggregate_stream(k, chunks).map(|r| r.to_json()))
        }
        other => return Err(bad(format!("unknown codec op '{other}'"))),
    };
    out.map(|v| json_text(&v)).map_err(to_js)
}
