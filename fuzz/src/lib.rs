//! The checks every codec fuzz target runs on one input (shared by the libFuzzer targets and
//! the randomized driver).

use baton::codec::{self, CodecKind, Collector};
use serde_json::{json, Value};

/// Runs every decoder of `kind` on `data`; panics only when a codec property breaks.
pub fn check(kind: CodecKind, data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    check_value(kind, &value);
}

pub fn check_value(kind: CodecKind, value: &Value) {
    // Requests: decode, then the lossless round trip and a few edits.
    if let Ok(norm) = codec::decode_request(kind, value) {
        let back = codec::encode_request(kind, &norm, value).expect("encode(decode(x), x) must succeed");
        assert_eq!(&back, value, "encode(decode(x), x) != x for {}", kind.name());
        for edited in edits(&norm) {
            if let Ok(out) = codec::encode_request(kind, &edited, value) {
                let again = codec::decode_request(kind, &out).expect("an encoded request must decode");
                // Re-encoding the decoded result over itself is the identity too.
                assert_eq!(codec::encode_request(kind, &again, &out).expect("identity"), out);
            }
        }
    }
    // Responses.
    let _ = codec::decode_response(kind, value).map(|r| r.to_json());
    // Streams: the value as one chunk, and an array as a whole stream.
    let mut c = Collector::new(kind);
    let _ = c.push(value);
    if let Some(chunks) = value.as_array() {
        for chunk in chunks {
            let _ = c.push(chunk);
        }
        let _ = codec::aggregate_stream(kind, chunks);
    }
    let _ = c.finish().to_json();
    let _ = (codec::detect_request(value), codec::detect_response(value), codec::detect_chunk(value));
}

/// A few edits middleware typically makes.
fn edits(norm: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut e = norm.clone();
    e["params"] = json!({"temperature": 0.5, "max_tokens": 7});
    out.push(e);
    let mut e = norm.clone();
    e["model"] = json!("fuzz-model");
    out.push(e);
    let mut e = norm.clone();
    if let Some(msgs) = e.get_mut("messages").and_then(Value::as_array_mut) {
        for m in msgs.iter_mut() {
            if let Some(c) = m.get_mut("content") {
                match c {
                    Value::String(s) => s.push_str(" [redacted]"),
                    Value::Array(parts) => {
                        for p in parts.iter_mut() {
                            if let Some(Value::String(t)) = p.get_mut("text") {
                                t.push_str(" [redacted]");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        msgs.push(json!({"role": "user", "content": "one more"}));
    }
    out.push(e);
    let mut e = norm.clone();
    if let Some(x) = e.get_mut("extra").and_then(Value::as_object_mut) {
        x.insert("fuzz_extra".into(), json!(1));
    }
    out.push(e);
    let mut e = norm.clone();
    e["tool_choice"] = json!({"name": "f"});
    e["tools"] = json!([{"name": "f", "parameters": {"type": "object"}}]);
    out.push(e);
    out
}
