//! Provider codecs, JSON in and out.

use super::*;

fn codec_arg(codec: *const c_char) -> Result<baton::codec::Codec> {
    baton::codec::Codec::parse(cstr(codec, "codec")?)
}

fn codec_result(out: *mut *mut c_char, v: Result<Option<Value>>) -> Result<()> {
    write_string(out, v?.unwrap_or(Value::Null).to_string())
}

/// Decodes a provider request into the normalized request.
/// @param codec `openai_chat`, `openai_responses`, `anthropic_messages`,
///        `gemini_generate_content` or `auto` (detect from the shape).
/// @param out receives the normalized request JSON (`null` when `auto` recognizes no codec);
///        free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_codec_decode_request(codec: *const c_char, request_json: *const c_char, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let request = json_arg(request_json, "request_json")?;
        codec_result(out, c.for_request(&request).map(|k| baton::codec::decode_request(k, &request)).transpose())
    })
}

/// Encodes an edited normalized request back into the provider request `original_json`.
/// @param out receives the provider request JSON; free it with baton_string_free().
#[no_mangle]
pub extern "C" fn baton_codec_encode_request(
    codec: *const c_char,
    normalized_json: *const c_char,
    original_json: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let normalized = json_arg(normalized_json, "normalized_json")?;
        let original = json_arg(original_json, "original_json")?;
        codec_result(out, c.for_request(&original).map(|k| baton::codec::encode_request(k, &normalized, &original)).transpose())
    })
}

/// Normalizes a buffered provider response.
/// @param out receives the normalized response JSON (`null` when `auto` recognizes no codec).
#[no_mangle]
pub extern "C" fn baton_codec_decode_response(codec: *const c_char, response_json: *const c_char, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let response = json_arg(response_json, "response_json")?;
        codec_result(out, c.for_response(&response).map(|k| baton::codec::decode_response_json(k, &response)).transpose())
    })
}

/// Aggregates a whole stream of provider chunks (a JSON array) into the normalized response.
/// @param out receives the normalized response JSON (`null` when `auto` recognizes no codec).
#[no_mangle]
pub extern "C" fn baton_codec_aggregate_stream(codec: *const c_char, chunks_json: *const c_char, out: *mut *mut c_char) -> i32 {
    ffi(|| {
        convert::check_out(out, "out")?;
        let c = codec_arg(codec)?;
        let chunks = match json_arg(chunks_json, "chunks_json")? {
            Value::Array(a) => a,
            other => return Err(Error::invalid_argument(format!("chunks_json: expected an array, got {other}"))),
        };
        let kind = match c {
            baton::codec::Codec::Kind(k) => Some(k),
            baton::codec::Codec::Auto => chunks.iter().find_map(baton::codec::detect_chunk),
        };
        codec_result(out, kind.map(|k| baton::codec::aggregate_stream(k, &chunks).map(|r| r.to_json())).transpose())
    })
}
