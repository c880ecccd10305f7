//! Malformed provider payloads: clear `invalid_argument` errors or a clean fallback, never a
//! panic; ambiguous shapes detect as no codec.

use baton::codec::{self, CodecKind, Collector};
use baton::ErrorKind;
use serde_json::{json, Value};

fn req_err(kind: CodecKind, v: Value) -> String {
    let e = codec::decode_request(kind, &v).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    e.message().to_string()
}

fn resp_err(kind: CodecKind, v: Value) -> String {
    let e = codec::decode_response(kind, &v).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    e.message().to_string()
}

#[test]
fn malformed_requests_name_the_field() {
    assert_eq!(req_err(CodecKind::OpenAiChat, json!({"model": "m"})), "request.messages: missing");
    assert_eq!(req_err(CodecKind::OpenAiChat, json!("text")), "request: expected an object, got a string");
    assert_eq!(req_err(CodecKind::OpenAiChat, json!({"messages": {}})), "messages: expected an array, got an object");
    assert_eq!(req_err(CodecKind::OpenAiChat, json!({"messages": [{"content": "x"}]})), "messages[0].role: missing");
    assert!(req_err(CodecKind::OpenAiChat, json!({"messages": [{"role": "user", "content": 3}]})).starts_with("messages[0].content:"));
    assert!(req_err(CodecKind::OpenAiChat, json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "x", "function": {}}]}]}))
        .starts_with("messages[0].tool_calls[0].function.name:"));
    assert!(req_err(CodecKind::OpenAiResponses, json!({"input": 5})).starts_with("input:"));
    assert!(
        req_err(CodecKind::OpenAiResponses, json!({"input": [{"type": "function_call", "call_id": "c"}]})).starts_with("input[0].name:")
    );
    assert!(
        req_err(CodecKind::AnthropicMessages, json!({"messages": [{"role": "system", "content": "x"}]})).starts_with("messages[0].role:")
    );
    assert!(req_err(CodecKind::AnthropicMessages, json!({"messages": [], "system": 4})).starts_with("system:"));
    assert!(req_err(CodecKind::AnthropicMessages, json!({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}))
        .starts_with("messages[0].content[0].tool_use_id:"));
    assert!(req_err(CodecKind::GeminiGenerateContent, json!({"contents": [{"parts": "x"}]})).starts_with("contents[0].parts:"));
    assert!(req_err(CodecKind::GeminiGenerateContent, json!({"contents": [], "generationConfig": []})).starts_with("generationConfig:"));
}

#[test]
fn malformed_responses_name_the_field() {
    assert_eq!(resp_err(CodecKind::OpenAiChat, json!({"id": "x"})), "response.choices: missing");
    assert!(resp_err(CodecKind::OpenAiChat, json!({"choices": [{"message": {"content": 1}}]})).starts_with("choices[0].message.content:"));
    assert!(resp_err(CodecKind::OpenAiChat, json!({"choices": [], "usage": {"prompt_tokens": "many"}})).starts_with("usage.prompt_tokens:"));
    assert!(resp_err(CodecKind::OpenAiResponses, json!({"output": {}})).starts_with("output:"));
    assert!(resp_err(CodecKind::AnthropicMessages, json!({"type": "message"})).starts_with("response.content:"));
    assert!(
        resp_err(CodecKind::AnthropicMessages, json!({"content": [], "usage": {"input_tokens": -1}})).starts_with("usage.input_tokens:")
    );
    assert!(resp_err(CodecKind::GeminiGenerateContent, json!({"candidates": [{"content": {"parts": [7]}}]}))
        .starts_with("candidates[0].content.parts[0]:"));
    // A Gemini response blocked before any candidate still has a finish reason.
    let r = codec::decode_response_json(CodecKind::GeminiGenerateContent, &json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap();
    assert_eq!((&r["finish_reason"], &r["finish_reason_raw"]), (&json!("content_filter"), &json!("SAFETY")));
}

#[test]
fn truncated_streams_aggregate_what_arrived() {
    let chunks = [
        json!({"type": "message_start", "message": {"id": "m1", "model": "claude", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": "}}),
    ];
    let r = codec::aggregate_stream(CodecKind::AnthropicMessages, &chunks).unwrap().to_json();
    assert_eq!(
        r,
        json!({"id": "m1", "model": "claude", "message": {"role": "assistant", "content": "Hel"},
               "tool_calls": [{"id": "t1", "name": "f", "arguments": "{\"a\": "}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}, "extra": {}})
    );
}

#[test]
fn malformed_chunks_are_errors_and_the_collector_goes_on() {
    let mut c = Collector::new(CodecKind::OpenAiChat);
    c.push(&json!({"id": "a", "model": "m", "choices": [{"index": 0, "delta": {"content": "x"}}]})).unwrap();
    let e = c.push(&json!({"choices": [{"index": 0, "delta": {"content": 5}}]})).unwrap_err();
    assert_eq!(e.message(), "chunk.choices[0].delta.content: expected a string, got a number");
    c.push(&json!({"choices": [{"index": 0, "delta": {"content": "y"}, "finish_reason": "stop"}]})).unwrap();
    assert_eq!(c.finish().text, "xy");
    let e = codec::aggregate_stream(CodecKind::OpenAiResponses, &[json!({"type": "response.output_text.delta"})]).unwrap_err();
    assert_eq!(e.message(), "chunks[0]: chunk.delta: missing");
    let e = codec::aggregate_stream(CodecKind::GeminiGenerateContent, &[json!([1])]).unwrap_err();
    assert_eq!(e.message(), "chunks[0]: chunk: expected an object, got an array");
    // Provider errors inside a stream are kept.
    let r = codec::aggregate_stream(
        CodecKind::AnthropicMessages,
        &[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})],
    )
    .unwrap();
    assert_eq!(r.extra["errors"], json!([{"type": "overloaded_error", "message": "Overloaded"}]));
}

#[test]
fn ambiguous_or_unknown_shapes_detect_no_codec() {
    for v in [
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}),
        json!({"messages": [{"role": "system", "content": "x"}], "system": "y"}),
        json!({"prompt": "hi"}),
        json!([1, 2]),
        json!(null),
    ] {
        assert_eq!(codec::detect_request(&v), None, "{v}");
    }
    assert_eq!(codec::detect_response(&json!({"choices": [], "candidates": []})), None);
    assert_eq!(codec::detect_response(&json!({"text": "hi"})), None);
    assert_eq!(codec::detect_chunk(&json!({"type": "something"})), None);
    assert_eq!(
        codec::detect_request(&json!({"messages": [{"role": "user", "content": "x"}], "system": "s"})),
        Some(CodecKind::AnthropicMessages)
    );
    assert_eq!(codec::detect_request(&json!({"messages": [{"role": "system", "content": "s"}]})), Some(CodecKind::OpenAiChat));
}

#[test]
fn codec_names_parse() {
    assert_eq!(codec::Codec::parse("auto").unwrap(), codec::Codec::Auto);
    for k in CodecKind::ALL {
        assert_eq!(codec::Codec::parse(k.name()).unwrap(), codec::Codec::Kind(k));
    }
    assert_eq!(codec::Codec::parse("openai").unwrap_err().kind(), ErrorKind::InvalidArgument);
}
