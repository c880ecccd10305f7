//! The provider codecs.

use super::*;

/// codec(op, codecName, a, b): the provider codecs. With `auto`, a shape no codec
/// recognizes gives `null`.
pub fn codec_op(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let op = js::req_string(env, a[0], "op")?;
    let c = Codec::parse(&js::req_string(env, a[1], "codec")?)?;
    let first = convert::to_json(env, a[2], "value")?;
    let fixed = |kind: Option<CodecKind>, f: &dyn Fn(CodecKind) -> baton::Result<Value>| kind.map_or(Ok(Value::Null), f);
    let out = match op.as_str() {
        "decodeRequest" => fixed(c.for_request(&first), &|k| codec::decode_request(k, &first))?,
        "encodeRequest" => {
            let original = convert::to_json(env, a[3], "original")?;
            fixed(c.for_request(&original), &|k| codec::encode_request(k, &first, &original))?
        }
        "decodeResponse" => fixed(c.for_response(&first), &|k| codec::decode_response_json(k, &first))?,
        "aggregateStream" => {
            let chunks = first.as_array().ok_or_else(|| Error::invalid_argument("chunks: expected an array"))?;
            let kind = match c {
                Codec::Kind(k) => Some(k),
                Codec::Auto => chunks.iter().find_map(codec::detect_chunk),
            };
            fixed(kind, &|k| codec::aggregate_stream(k, chunks).map(|r| r.to_json()))?
        }
        other => return Err(Error::invalid_argument(format!("unknown codec op '{other}'")).into()),
    };
    convert::to_js(env, &out)
}
