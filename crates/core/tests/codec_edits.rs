//! Editing the normalized request and encoding it back: only the edit changes the provider
//! request, unknown fields survive, and edits a format cannot carry are clear errors.

use baton::codec::{self, CodecKind};
use baton::ErrorKind;
use serde_json::{json, Value};

fn fixture(kind: CodecKind, name: &str) -> Value {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec").join(kind.name()).join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Decodes, applies `edit`, encodes; also checks the result decodes to the edit.
fn edit(kind: CodecKind, original: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut n = codec::decode_request(kind, original).unwrap();
    f(&mut n);
    let out = codec::encode_request(kind, &n, original).unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert_eq!(codec::decode_request(kind, &out).unwrap(), n, "{kind}: decode(encode(n)) != n");
    out
}

fn edit_err(kind: CodecKind, original: &Value, f: impl FnOnce(&mut Value)) -> String {
    let mut n = codec::decode_request(kind, original).unwrap();
    f(&mut n);
    let e = codec::encode_request(kind, &n, original).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    e.message().to_string()
}

#[test]
fn params_edits_touch_only_their_provider_keys() {
    let cases = [
        (CodecKind::OpenAiChat, "request_tools_multiturn.json", "/temperature", "/max_completion_tokens"),
        (CodecKind::OpenAiResponses, "request_tools_multiturn.json", "/temperature", "/max_output_tokens"),
        (CodecKind::AnthropicMessages, "request_tools_cache_multiturn.json", "/temperature", "/max_tokens"),
        (
            CodecKind::GeminiGenerateContent,
            "request_tools_multiturn.json",
            "/generationConfig/temperature",
            "/generationConfig/maxOutputTokens",
        ),
    ];
    for (kind, name, temp, max) in cases {
        let orig = fixture(kind, name);
        let out = edit(kind, &orig, |n| {
            n["params"]["temperature"] = json!(0.0);
            n["params"]["max_tokens"] = json!(64);
        });
        let mut expected = orig.clone();
        *expected.pointer_mut(temp).unwrap() = json!(0.0);
        *expected.pointer_mut(max).unwrap() = json!(64);
        assert_eq!(out, expected, "{kind}");
    }
}

#[test]
fn redacting_one_text_part_keeps_every_other_byte() {
    let kind = CodecKind::AnthropicMessages;
    let orig = fixture(kind, "request_tools_cache_multiturn.json");
    let out = edit(kind, &orig, |n| n["messages"][1]["content"][1]["text"] = json!("[redacted]"));
    let mut expected = orig.clone();
    expected["messages"][1]["content"][1]["text"] = json!("[redacted]");
    assert_eq!(out, expected);

    let kind = CodecKind::GeminiGenerateContent;
    let orig = fixture(kind, "request_tools_multiturn.json");
    let out = edit(kind, &orig, |n| n["messages"][0]["content"][0]["text"] = json!("[redacted]"));
    let mut expected = orig.clone();
    expected["contents"][0]["parts"][0]["text"] = json!("[redacted]");
    assert_eq!(out, expected);

    let kind = CodecKind::OpenAiChat;
    let orig = fixture(kind, "request_tools_multiturn.json");
    let out = edit(kind, &orig, |n| n["messages"][5]["content"] = json!("[redacted]"));
    let mut expected = orig.clone();
    expected["messages"][5]["content"] = json!("[redacted]");
    assert_eq!(out, expected);

    let kind = CodecKind::OpenAiResponses;
    let orig = fixture(kind, "request_tools_multiturn.json");
    let out = edit(kind, &orig, |n| n["messages"][1]["content"][0]["text"] = json!("[redacted]"));
    let mut expected = orig.clone();
    expected["input"][1]["content"][0]["text"] = json!("[redacted]");
    assert_eq!(out, expected);
}

#[test]
fn appended_messages_use_each_providers_shape() {
    let msg = json!({"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]});
    let expect = [
        (
            CodecKind::OpenAiChat,
            "request_tools_multiturn.json",
            "/messages",
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}),
        ),
        (
            CodecKind::OpenAiResponses,
            "request_tools_multiturn.json",
            "/input",
            json!({"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}),
        ),
        (
            CodecKind::AnthropicMessages,
            "request_tools_cache_multiturn.json",
            "/messages",
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}),
        ),
        (
            CodecKind::GeminiGenerateContent,
            "request_tools_multiturn.json",
            "/contents",
            json!({"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}),
        ),
    ];
    for (kind, name, list, item) in expect {
        let orig = fixture(kind, name);
        let out = edit(kind, &orig, |n| n["messages"].as_array_mut().unwrap().push(msg.clone()));
        let mut expected = orig.clone();
        expected.pointer_mut(list).unwrap().as_array_mut().unwrap().push(item);
        assert_eq!(out, expected, "{kind}");
    }
}

#[test]
fn tool_calls_and_results_encode_per_provider() {
    let call = json!({"role": "assistant", "tool_calls": [{"id": "c9", "name": "lookup", "arguments": "{\"q\":\"x\"}"}]});
    let kind = CodecKind::AnthropicMessages;
    let orig = fixture(kind, "request_simple.json");
    let out = edit(kind, &orig, |n| {
        let m = n["messages"].as_array_mut().unwrap();
        m.push(json!({"role": "assistant", "content": [], "tool_calls": call["tool_calls"]}));
        m.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_call_id": "c9", "content": "found"}]}));
    });
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": "Hello"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "c9", "name": "lookup", "input": {"q": "x"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c9", "content": "found"}]}])
    );
    let kind = CodecKind::OpenAiResponses;
    let orig = fixture(kind, "request_string_input.json");
    let out = edit(kind, &orig, |n| {
        let m = n["messages"].as_array_mut().unwrap();
        m.push(call.clone());
        m.push(json!({"role": "tool", "tool_call_id": "c9", "content": "found"}));
    });
    assert_eq!(
        out["input"],
        json!([{"role": "user", "content": "Tell me a joke about ducks."},
               {"type": "function_call", "call_id": "c9", "name": "lookup", "arguments": "{\"q\":\"x\"}"},
               {"type": "function_call_output", "call_id": "c9", "output": "found"}])
    );
}

#[test]
fn extra_edits_keep_modeled_fields() {
    let kind = CodecKind::GeminiGenerateContent;
    let orig = fixture(kind, "request_tools_multiturn.json");
    let out = edit(kind, &orig, |n| {
        n["extra"]["generationConfig"]["topK"] = json!(10);
        n["extra"].as_object_mut().unwrap().remove("cachedContent");
    });
    let mut expected = orig.clone();
    expected["generationConfig"]["topK"] = json!(10);
    expected.as_object_mut().unwrap().remove("cachedContent");
    assert_eq!(out, expected);
    // A modeled field smuggled through extra is refused.
    let msg = edit_err(kind, &orig, |n| n["extra"]["generationConfig"]["temperature"] = json!(1));
    assert!(msg.starts_with("extra.generationConfig.temperature:"), "{msg}");
}

#[test]
fn unrepresentable_edits_name_the_field() {
    let a = fixture(CodecKind::AnthropicMessages, "request_simple.json");
    let m = edit_err(CodecKind::AnthropicMessages, &a, |n| {
        n["messages"].as_array_mut().unwrap().insert(0, json!({"role": "system", "content": "x"}))
    });
    assert!(m.starts_with("messages[0].role:") && m.contains("instructions"), "{m}");
    let m = edit_err(CodecKind::AnthropicMessages, &a, |n| n["messages"][0]["content"] = json!([{"type": "audio", "data": "x"}]));
    assert!(m.starts_with("messages[0].content[0].type:"), "{m}");

    let c = fixture(CodecKind::OpenAiChat, "request_simple_stream.json");
    let m = edit_err(CodecKind::OpenAiChat, &c, |n| n["instructions"] = json!("be nice"));
    assert!(m.starts_with("instructions:"), "{m}");
    let m = edit_err(CodecKind::OpenAiChat, &c, |n| n["params"]["top_k"] = json!(3));
    assert!(m.starts_with("params.top_k:"), "{m}");
    let m = edit_err(CodecKind::OpenAiChat, &c, |n| n["messages"][1]["tool_calls"] = json!([]));
    assert!(m.starts_with("messages[1].tool_calls:"), "{m}");

    let r = fixture(CodecKind::OpenAiResponses, "request_string_input.json");
    let m = edit_err(CodecKind::OpenAiResponses, &r, |n| n["params"] = json!({"stop": ["x"]}));
    assert!(m.starts_with("params.stop:"), "{m}");

    let g = fixture(CodecKind::GeminiGenerateContent, "request_simple.json");
    let m = edit_err(CodecKind::GeminiGenerateContent, &g, |n| n["stream"] = json!(true));
    assert!(m.starts_with("stream:"), "{m}");
    let m = edit_err(CodecKind::GeminiGenerateContent, &g, |n| n["model"] = json!("gemini-2.5-pro"));
    assert!(m.starts_with("model:"), "{m}");
    let m = edit_err(CodecKind::GeminiGenerateContent, &g, |n| {
        n["messages"][0]["content"] = json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}])
    });
    assert!(m.starts_with("messages[0].content[0].image_url.mime_type:"), "{m}");
    let m = edit_err(CodecKind::GeminiGenerateContent, &g, |n| n["bogus"] = json!(1));
    assert!(m.starts_with("bogus:"), "{m}");
}

#[test]
fn string_input_stays_a_string_when_it_can() {
    let kind = CodecKind::OpenAiResponses;
    let orig = fixture(kind, "request_string_input.json");
    let out = edit(kind, &orig, |n| n["messages"][0]["content"] = json!("Tell me a joke about geese."));
    assert_eq!(out["input"], json!("Tell me a joke about geese."));
}
