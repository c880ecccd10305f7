//! Managed LLM calls with codecs: intercepts and sanitizers edit the normalized request, the
//! edits reach the provider call, and the events carry `annotated_request` /
//! `annotated_response` (aggregated for streams).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::codec::{Codec, CodecKind};
use baton::{CallKind, ErrorKind, Event, LlmOptions, Middleware, Registration, Runtime, RuntimeConfig};
use serde_json::{json, Value};

fn recorder(rt: &Runtime) -> Arc<Mutex<Vec<Event>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    rt.register(
        Registration::new("rec"),
        Middleware::subscriber(move |e| {
            sink.lock().unwrap().push(e.clone());
            Ok(())
        }),
    )
    .unwrap();
    seen
}

fn anthropic_request() -> Value {
    json!({"headers": {"x-api-key": "secret"}, "content": {
        "model": "claude-sonnet-4-20250514", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": "My SSN is 123-45-6789"}], "top_k": 5}})
}

fn anthropic_response() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
           "content": [{"type": "text", "text": "Noted."}], "stop_reason": "end_turn",
           "usage": {"input_tokens": 10, "cache_read_input_tokens": 20, "output_tokens": 3}})
}

fn opts(codec: &str) -> LlmOptions {
    LlmOptions { codec: Some(Codec::parse(codec).unwrap()), ..Default::default() }
}

#[test]
fn intercept_edits_of_the_normalized_request_reach_the_callback() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    rt.register(
        Registration::new("cool-down"),
        Middleware::request_intercept(CallKind::Llm, |_, mut req| {
            assert_eq!(req["annotated_request"]["params"]["max_tokens"], json!(100));
            req["annotated_request"]["params"]["temperature"] = json!(0.1);
            req["annotated_request"]["instructions"] = json!("Be very brief.");
            Ok(req)
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    let got = Arc::new(Mutex::new(Value::Null));
    let g = got.clone();
    let out = stack
        .llm(
            "claude",
            anthropic_request(),
            move |req| {
                *g.lock().unwrap() = req;
                Ok(anthropic_response())
            },
            opts("anthropic_messages"),
        )
        .unwrap();
    assert_eq!(out, anthropic_response());
    let req = got.lock().unwrap().clone();
    assert!(req.get("annotated_request").is_none(), "the callback gets the provider request only");
    assert_eq!(req["headers"]["x-api-key"], "secret");
    let mut expected = anthropic_request()["content"].clone();
    expected["temperature"] = json!(0.1);
    expected["system"] = json!("Be very brief.");
    assert_eq!(req["content"], expected);

    rt.flush(Duration::from_secs(5)).unwrap();
    let events = seen.lock().unwrap();
    let start = events[0].to_json();
    let end = events[1].to_json();
    assert_eq!(start["category_profile"]["annotated_request"]["params"]["temperature"], json!(0.1));
    assert_eq!(start["category_profile"]["annotated_request"]["extra"], json!({"top_k": 5}));
    assert!(start["data"].get("annotated_request").is_none());
    assert!(start["data"]["headers"].get("x-api-key").is_none());
    assert!(end["category_profile"].get("annotated_request").is_none());
    assert_eq!(
        end["category_profile"]["annotated_response"],
        json!({"id": "msg_1", "model": "claude-sonnet-4-20250514", "message": {"role": "assistant", "content": "Noted."},
               "finish_reason": "complete", "finish_reason_raw": "end_turn",
               "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33, "cache_read_tokens": 20},
               "extra": {"type": "message", "role": "assistant"}})
    );
}

#[test]
fn a_sanitizer_redacting_the_normalized_request_redacts_the_event_only() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    rt.register(
        Registration::new("redact"),
        Middleware::sanitize_request(CallKind::Llm, |_, mut req| {
            req["annotated_request"]["messages"][0]["content"] = json!("[redacted]");
            Ok(Some(req))
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    let got = Arc::new(Mutex::new(Value::Null));
    let g = got.clone();
    stack
        .llm(
            "claude",
            anthropic_request(),
            move |req| {
                *g.lock().unwrap() = req;
                Ok(anthropic_response())
            },
            opts("auto"),
        )
        .unwrap();
    assert_eq!(got.lock().unwrap()["content"], anthropic_request()["content"]);
    rt.flush(Duration::from_secs(5)).unwrap();
    let start = seen.lock().unwrap()[0].to_json();
    assert_eq!(start["data"]["content"]["messages"][0]["content"], json!("[redacted]"));
    assert_eq!(start["category_profile"]["annotated_request"]["messages"][0]["content"], json!("[redacted]"));
}

#[test]
fn an_unrepresentable_edit_fails_before_the_provider_call() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    rt.register(
        Registration::new("bad-edit"),
        Middleware::request_intercept(CallKind::Llm, |_, mut req| {
            req["annotated_request"]["messages"].as_array_mut().unwrap().insert(0, json!({"role": "system", "content": "x"}));
            Ok(req)
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    let err = stack.llm("claude", anthropic_request(), |_| panic!("must not be called"), opts("anthropic_messages")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("request intercept 'bad-edit': annotated_request.messages[0].role:"), "{}", err.message());
    rt.flush(Duration::from_secs(5)).unwrap();
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn a_fixed_codec_must_fit_the_request_and_auto_falls_back_to_none() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    let stack = rt.new_stack();
    let req = json!({"content": {"prompt": "hi"}});
    let err = stack.llm("x", req.clone(), |_| Ok(json!({})), opts("gemini_generate_content")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.message(), "request.content is not a gemini_generate_content request: request.contents: missing");
    stack.llm("x", req, |_| Ok(json!({"text": "?"})), opts("auto")).unwrap();
    rt.flush(Duration::from_secs(5)).unwrap();
    let events = seen.lock().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].to_json()["category_profile"], Value::Null);
    assert_eq!(events[1].to_json()["category_profile"], Value::Null);
}

#[test]
fn streams_end_with_the_aggregated_response() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    let stack = rt.new_stack();
    let request = json!({"content": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}], "stream": true}});
    let chunks = vec![
        json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}, "finish_reason": null}]}),
        json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": "llo"}, "finish_reason": "stop"}]}),
        json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}),
    ];
    let c2 = chunks.clone();
    let options = LlmOptions { model_name: Some("gpt-4o-mini".into()), chunk_marks: false, ..opts("openai_chat") };
    let got: Vec<Value> =
        stack.llm_stream("chat", request, move |_| Ok(c2.into_iter().map(Ok)), options).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(got, chunks);
    rt.flush(Duration::from_secs(5)).unwrap();
    let events = seen.lock().unwrap();
    let start = events[0].to_json();
    assert_eq!(start["category_profile"]["model_name"], "gpt-4o-mini");
    assert_eq!(start["category_profile"]["annotated_request"]["stream"], json!(true));
    let end = events.last().unwrap().to_json();
    assert_eq!(end["category_profile"]["model_name"], "gpt-4o-mini");
    assert_eq!(
        end["category_profile"]["annotated_response"],
        json!({"id": "c1", "model": "gpt-4o-mini", "message": {"role": "assistant", "content": "Hello"},
               "finish_reason": "complete", "finish_reason_raw": "stop",
               "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}, "extra": {}})
    );
}

#[test]
fn a_response_codec_can_differ_and_is_detected_with_auto() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    let stack = rt.new_stack();
    let options = LlmOptions { response_codec: Some(Codec::Auto), ..Default::default() };
    stack
        .llm(
            "gem",
            json!({"content": {"anything": true}}),
            |_| Ok(json!({"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]})),
            options,
        )
        .unwrap();
    rt.flush(Duration::from_secs(5)).unwrap();
    let end = seen.lock().unwrap()[1].to_json();
    assert_eq!(end["category_profile"]["annotated_response"]["message"]["content"], "ok");
    assert_eq!(Codec::Kind(CodecKind::GeminiGenerateContent).name(), "gemini_generate_content");
}

#[test]
fn async_calls_apply_codecs_too() {
    let rt = Runtime::new(RuntimeConfig::default());
    let seen = recorder(&rt);
    rt.register(
        Registration::new("cool-down"),
        Middleware::request_intercept(CallKind::Llm, |_, mut req| {
            req["annotated_request"]["params"]["temperature"] = json!(0.3);
            Ok(req)
        }),
    )
    .unwrap();
    let stack = rt.new_stack();
    let fut = stack.llm_async("claude", anthropic_request(), |req| async move { Ok(req) }, opts("anthropic_messages"));
    let echoed = baton::exec::block_on(fut).unwrap();
    assert_eq!(echoed["content"]["temperature"], json!(0.3));
    assert!(echoed.get("annotated_request").is_none());
    rt.flush(Duration::from_secs(5)).unwrap();
    let events = seen.lock().unwrap();
    assert_eq!(events[0].to_json()["category_profile"]["annotated_request"]["params"]["temperature"], json!(0.3));
}

#[test]
fn without_a_codec_an_annotated_request_key_is_left_alone() {
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(
        Registration::new("adds-key"),
        Middleware::request_intercept(CallKind::Llm, |_, mut req| {
            req["annotated_request"] = json!("mine");
            Ok(req)
        }),
    )
    .unwrap();
    let out = rt.new_stack().llm("x", json!({"content": {}}), Ok, LlmOptions::default()).unwrap();
    assert_eq!(out["annotated_request"], "mine");
}

#[test]
fn content_and_annotation_edits_by_one_intercept_both_apply() {
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(
        Registration::new("both"),
        Middleware::request_intercept(CallKind::Llm, |_, mut req| {
            req["content"]["top_k"] = json!(9);
            req["content"]["max_tokens"] = json!(50);
            req["annotated_request"]["params"]["temperature"] = json!(0.4);
            Ok(req)
        }),
    )
    .unwrap();
    let out = rt.new_stack().llm("x", anthropic_request(), Ok, opts("anthropic_messages")).unwrap();
    // The annotation edited params (temperature added, max_tokens as it was given), so params
    // win as a whole; the unmodeled top_k edit of the content survives.
    assert_eq!(out["content"]["temperature"], json!(0.4));
    assert_eq!(out["content"]["max_tokens"], json!(100));
    assert_eq!(out["content"]["top_k"], json!(9));
}
