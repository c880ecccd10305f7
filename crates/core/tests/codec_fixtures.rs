//! Provider codecs against realistic fixtures (tests/fixtures/codec/<codec>/): lossless round
//! trips, detection, buffered responses, and streams aggregated to the buffered response.

use std::path::PathBuf;

use baton::codec::{self, CodecKind};
use serde_json::{json, Value};

fn dir(kind: CodecKind) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec").join(kind.name())
}

fn fixtures(kind: CodecKind, prefix: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir(kind))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            name.starts_with(prefix).then(|| (name, serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {prefix} fixtures for {kind}");
    out
}

fn fixture(kind: CodecKind, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir(kind).join(name)).unwrap()).unwrap()
}

#[test]
fn every_request_fixture_round_trips_and_is_detected() {
    for kind in CodecKind::ALL {
        for (name, req) in fixtures(kind, "request_") {
            let norm = codec::decode_request(kind, &req).unwrap_or_else(|e| panic!("{kind}/{name}: {e}"));
            assert_eq!(codec::encode_request(kind, &norm, &req).unwrap(), req, "{kind}/{name}");
            assert_eq!(codec::detect_request(&req), Some(kind), "{kind}/{name}");
            // The normalized form is plain JSON that survives serialization.
            let text = serde_json::to_string(&norm).unwrap();
            let again: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(codec::encode_request(kind, &again, &req).unwrap(), req, "{kind}/{name}");
        }
    }
}

#[test]
fn every_response_fixture_decodes_and_is_detected() {
    for kind in CodecKind::ALL {
        for (name, resp) in fixtures(kind, "response_") {
            codec::decode_response(kind, &resp).unwrap_or_else(|e| panic!("{kind}/{name}: {e}"));
            assert_eq!(codec::detect_response(&resp), Some(kind), "{kind}/{name}");
        }
        for (name, chunks) in fixtures(kind, "stream_") {
            for c in chunks.as_array().unwrap() {
                assert_eq!(codec::detect_chunk(c), Some(kind), "{kind}/{name}: {c}");
            }
        }
    }
}

#[test]
fn streams_aggregate_to_the_buffered_response() {
    let pairs = [
        (CodecKind::OpenAiChat, "stream_tool_calls.json", "response_tool_calls.json"),
        (CodecKind::OpenAiChat, "stream_text.json", "response_text.json"),
        (CodecKind::OpenAiResponses, "stream_tool_calls.json", "response_tool_calls.json"),
        (CodecKind::AnthropicMessages, "stream_tool_use_cache.json", "response_tool_use_cache.json"),
        (CodecKind::GeminiGenerateContent, "stream_function_call_cache.json", "response_function_call_cache.json"),
    ];
    for (kind, stream, buffered) in pairs {
        let chunks = fixture(kind, stream);
        let mut agg = codec::aggregate_stream(kind, chunks.as_array().unwrap()).unwrap();
        let mut buf = codec::decode_response(kind, &fixture(kind, buffered)).unwrap();
        agg.extra.clear();
        buf.extra.clear();
        assert_eq!(agg, buf, "{kind}: {stream} vs {buffered}");
    }
}

#[test]
fn openai_chat_response_normalized() {
    let r = codec::decode_response_json(CodecKind::OpenAiChat, &fixture(CodecKind::OpenAiChat, "response_tool_calls.json")).unwrap();
    assert_eq!(
        r,
        json!({
            "id": "chatcmpl-9x1", "model": "gpt-4o-2024-08-06",
            "tool_calls": [
                {"id": "call_w1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"id": "call_w2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}],
            "finish_reason": "tool_use", "finish_reason_raw": "tool_calls",
            "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306, "cache_read_tokens": 1920, "reasoning_tokens": 0},
            "extra": {"object": "chat.completion", "created": 1727000000, "system_fingerprint": "fp_abc", "service_tier": "default"}
        })
    );
}

#[test]
fn openai_responses_response_normalized() {
    let kind = CodecKind::OpenAiResponses;
    let r = codec::decode_response_json(kind, &fixture(kind, "response_tool_calls.json")).unwrap();
    assert_eq!(r["message"], json!({"role": "assistant", "content": "Let me check."}));
    assert_eq!(r["tool_calls"], json!([{"id": "call_r1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}]));
    assert_eq!((&r["finish_reason"], &r["finish_reason_raw"]), (&json!("tool_use"), &json!("completed")));
    assert_eq!(
        r["usage"],
        json!({"prompt_tokens": 3000, "completion_tokens": 150, "total_tokens": 3150, "cache_read_tokens": 2048, "reasoning_tokens": 64})
    );
    let r = codec::decode_response_json(kind, &fixture(kind, "response_incomplete.json")).unwrap();
    assert_eq!((&r["finish_reason"], &r["finish_reason_raw"]), (&json!("length"), &json!("max_output_tokens")));
}

#[test]
fn anthropic_response_normalized_with_cache_usage() {
    let kind = CodecKind::AnthropicMessages;
    let r = codec::decode_response_json(kind, &fixture(kind, "response_tool_use_cache.json")).unwrap();
    assert_eq!(
        r,
        json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "model": "claude-sonnet-4-20250514",
            "message": {"role": "assistant", "content": "Checking Rome now."},
            "tool_calls": [{"id": "toolu_01B", "name": "get_weather", "arguments": "{\"city\":\"Rome\",\"unit\":\"c\"}"}],
            "finish_reason": "tool_use", "finish_reason_raw": "tool_use",
            // prompt = input 50 + cache write 1200 + cache read 3000
            "usage": {"prompt_tokens": 4250, "completion_tokens": 80, "total_tokens": 4330, "cache_read_tokens": 3000, "cache_write_tokens": 1200},
            "extra": {"type": "message", "role": "assistant", "stop_sequence": null}
        })
    );
}

#[test]
fn gemini_response_normalized_with_thoughts_and_cache() {
    let kind = CodecKind::GeminiGenerateContent;
    let r = codec::decode_response_json(kind, &fixture(kind, "response_function_call_cache.json")).unwrap();
    assert_eq!(
        r,
        json!({
            "id": "resp-gem-1", "model": "gemini-2.5-flash",
            "message": {"role": "assistant", "content": "Checking the weather."},
            "tool_calls": [{"id": null, "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}],
            "finish_reason": "tool_use", "finish_reason_raw": "STOP",
            // completion = candidates 30 + thoughts 120
            "usage": {"prompt_tokens": 4000, "completion_tokens": 150, "total_tokens": 4150, "cache_read_tokens": 3500, "reasoning_tokens": 120},
            "extra": {}
        })
    );
    let r = codec::decode_response_json(kind, &fixture(kind, "response_text.json")).unwrap();
    assert_eq!((&r["finish_reason"], &r["finish_reason_raw"]), (&json!("length"), &json!("MAX_TOKENS")));
}

#[test]
fn unknown_finish_reasons_keep_the_raw_value() {
    let r =
        codec::decode_response_json(CodecKind::AnthropicMessages, &json!({"type": "message", "content": [], "stop_reason": "pause_turn"}))
            .unwrap();
    assert_eq!((&r["finish_reason"], &r["finish_reason_raw"]), (&json!({"unknown": "pause_turn"}), &json!("pause_turn")));
}
