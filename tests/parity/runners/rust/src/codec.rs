//! The codec ops of the parity suite (`codec_*`) and the `codec` / `response_codec` fields of
//! `llm` / `llm_stream` (tests/parity/README.md, docs/codecs.md).

use baton::codec::{self, Codec, CodecKind};
use baton::{Error, Result};
use serde_json::Value;

fn field<'a>(step: &'a Value, key: &str) -> Result<&'a Value> {
    step.get(key).ok_or_else(|| Error::invalid_argument(format!("step.{key}: missing")))
}

fn codec_of(step: &Value) -> Result<Codec> {
    let name = field(step, "codec")?.as_str().ok_or_else(|| Error::invalid_argument("step.codec: expected a string"))?;
    Codec::parse(name)
}

/// A codec option of an `llm` step (`codec` / `response_codec`), absent when not given.
pub fn option(step: &Value, key: &str) -> Result<Option<Codec>> {
    match step.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Codec::parse(s).map(Some),
        Some(other) => Err(Error::invalid_argument(format!("step.{key}: expected a codec name, got {other}"))),
    }
}

/// Runs one `codec_*` op. With `auto`, a shape no codec recognizes gives `null`.
pub fn op(op: &str, step: &Value) -> Result<Value> {
    let c = codec_of(step)?;
    let fixed = |kind: Option<CodecKind>, f: &dyn Fn(CodecKind) -> Result<Value>| kind.map_or(Ok(Value::Null), f);
    match op {
        "codec_decode_request" => {
            let request = field(step, "request")?;
            fixed(c.for_request(request), &|k| codec::decode_request(k, request))
        }
        "codec_encode_request" => {
            let (normalized, original) = (field(step, "normalized")?, field(step, "original")?);
            fixed(c.for_request(original), &|k| codec::encode_request(k, normalized, original))
        }
        "codec_decode_response" => {
            let response = field(step, "response")?;
            fixed(c.for_response(response), &|k| codec::decode_response_json(k, response))
        }
        "codec_aggregate_stream" => {
            let chunks = field(step, "chunks")?.as_array().ok_or_else(|| Error::invalid_argument("step.chunks: expected an array"))?;
            let kind = match c {
                Codec::Kind(k) => Some(k),
                Codec::Auto => chunks.iter().find_map(codec::detect_chunk),
            };
            fixed(kind, &|k| codec::aggregate_stream(k, chunks).map(|r| r.to_json()))
        }
        other => Err(Error::invalid_argument(format!("unknown op '{other}'"))),
    }
}
