//! What an LLM scope's events say about the call: model, usage, messages, finish reasons.
//!
//! Two sources, in order: the codec annotations in `category_profile`
//! (`annotated_request` on the start, `annotated_response` on the end, in the normalized
//! shape of DESIGN §2.8), then the raw provider JSON in `data` (OpenAI Chat Completions and
//! Responses, Anthropic Messages, Gemini generateContent). Every lookup tolerates absence.

use serde_json::Value;

/// One chat message, reduced to what trace attributes show.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Message {
    pub role: String,
    pub content: Option<String>,
    pub tool_call_id: Option<String>,
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ToolCall {
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Usage {
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub total: Option<i64>,
    pub cache_read: Option<i64>,
    pub cache_write: Option<i64>,
}

/// The facts of one LLM call.
#[derive(Clone, Debug, Default)]
pub(crate) struct LlmCall {
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    pub finish_reasons: Vec<String>,
    pub usage: Usage,
    pub input_messages: Vec<Message>,
    pub output_messages: Vec<Message>,
    /// Request parameters other than messages and tools (`temperature`, `max_tokens`, ...).
    pub params: serde_json::Map<String, Value>,
}

fn s(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn n(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as i64))
}

/// The provider request inside a managed-call request (`{"headers", "content"}`), or the
/// value itself when it is not wrapped.
pub(crate) fn request_content(start_data: &Value) -> &Value {
    match start_data.get("content") {
        Some(c @ Value::Object(_)) if start_data.get("headers").is_some() || start_data.as_object().is_some_and(|o| o.len() == 1) => c,
        _ => start_data,
    }
}

/// Text of a message `content`: a string, or the text parts of a part list joined by
/// newlines; anything else as JSON text.
pub(crate) fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("text").and_then(Value::as_str),
                    _ => None,
                })
                .collect();
            if texts.is_empty() {
                Some(content.to_string())
            } else {
                Some(texts.join("\n"))
            }
        }
        other => Some(other.to_string()),
    }
}

fn args_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Tool calls of a message: OpenAI `tool_calls[].{id, function{name, arguments}}`, the
/// normalized `tool_calls[].{id, name, arguments}`, Anthropic `tool_use` parts.
fn tool_calls(msg: &Value) -> Vec<ToolCall> {
    let mut out = Vec::new();
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for c in calls {
            let f = c.get("function");
            out.push(ToolCall {
                id: s(c.get("id")),
                name: s(c.get("name")).or_else(|| s(f.and_then(|f| f.get("name")))),
                arguments: args_text(c.get("arguments")).or_else(|| args_text(f.and_then(|f| f.get("arguments")))),
            });
        }
    }
    if let Some(parts) = msg.get("content").and_then(Value::as_array) {
        for p in parts.iter().filter(|p| p.get("type").and_then(Value::as_str) == Some("tool_use")) {
            out.push(ToolCall { id: s(p.get("id")), name: s(p.get("name")), arguments: args_text(p.get("input")) });
        }
    }
    out
}

fn message(msg: &Value, default_role: &str) -> Option<Message> {
    let obj = msg.as_object()?;
    let role = s(obj.get("role")).unwrap_or_else(|| default_role.to_string());
    let content = match obj.get("content") {
        Some(c) => content_text(c),
        // Gemini: {role, parts: [{text}]}
        None => obj.get("parts").and_then(content_text),
    };
    Some(Message { role, content, tool_call_id: s(obj.get("tool_call_id")), tool_calls: tool_calls(msg) })
}

fn system_message(v: Option<&Value>) -> Option<Message> {
    let text = match v? {
        Value::Object(o) => o.get("parts").and_then(content_text), // Gemini systemInstruction
        other => content_text(other),
    }?;
    Some(Message { role: "system".into(), content: Some(text), ..Default::default() })
}

/// Input messages of a provider request or a normalized annotated request.
fn input_messages(req: &Value) -> Vec<Message> {
    let mut out = Vec::new();
    out.extend(system_message(req.get("instructions")).or_else(|| system_message(req.get("system"))));
    out.extend(system_message(req.get("systemInstruction").or_else(|| req.get("system_instruction"))));
    let list =
        req.get("messages").or_else(|| req.get("contents")).or_else(|| req.get("input").filter(|i| i.is_array())).and_then(Value::as_array);
    match list {
        Some(items) => out.extend(items.iter().filter_map(|m| message(m, "user"))),
        None => {
            if let Some(Value::String(text)) = req.get("input") {
                out.push(Message { role: "user".into(), content: Some(text.clone()), ..Default::default() });
            }
        }
    }
    out
}

/// Output messages of a provider response or a normalized annotated response.
fn output_messages(resp: &Value) -> Vec<Message> {
    // normalized: {message?, tool_calls?}
    if resp.get("message").is_some() || (resp.get("tool_calls").is_some() && resp.get("choices").is_none()) {
        let content = resp.get("message").and_then(|m| match m {
            Value::Object(_) => m.get("content").and_then(content_text),
            other => content_text(other),
        });
        let role = resp.get("message").and_then(|m| s(m.get("role"))).unwrap_or_else(|| "assistant".into());
        let mut calls = tool_calls(resp);
        if calls.is_empty() {
            if let Some(m) = resp.get("message") {
                calls = tool_calls(m);
            }
        }
        return vec![Message { role, content, tool_calls: calls, ..Default::default() }];
    }
    // OpenAI Chat Completions
    if let Some(choices) = resp.get("choices").and_then(Value::as_array) {
        return choices.iter().filter_map(|c| c.get("message").and_then(|m| message(m, "assistant"))).collect();
    }
    // Gemini
    if let Some(cands) = resp.get("candidates").and_then(Value::as_array) {
        return cands.iter().filter_map(|c| c.get("content").and_then(|m| message(m, "model"))).collect();
    }
    // OpenAI Responses
    if let Some(items) = resp.get("output").and_then(Value::as_array) {
        let mut out: Vec<Message> = items
            .iter()
            .filter(|i| i.get("type").and_then(Value::as_str) == Some("message"))
            .filter_map(|m| message(m, "assistant"))
            .collect();
        let calls: Vec<ToolCall> = items
            .iter()
            .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
            .map(|c| ToolCall {
                id: s(c.get("call_id")).or_else(|| s(c.get("id"))),
                name: s(c.get("name")),
                arguments: args_text(c.get("arguments")),
            })
            .collect();
        if !calls.is_empty() {
            match out.first_mut() {
                Some(m) => m.tool_calls.extend(calls),
                None => out.push(Message { role: "assistant".into(), tool_calls: calls, ..Default::default() }),
            }
        }
        return out;
    }
    // Anthropic Messages: {role: "assistant", content: [parts]}
    if resp.get("content").is_some_and(Value::is_array) {
        return message(resp, "assistant").into_iter().collect();
    }
    Vec::new()
}

fn usage_of(u: &Value) -> Usage {
    let input = n(u.get("prompt_tokens")).or_else(|| n(u.get("input_tokens"))).or_else(|| n(u.get("promptTokenCount")));
    let output = n(u.get("completion_tokens")).or_else(|| n(u.get("output_tokens"))).or_else(|| n(u.get("candidatesTokenCount")));
    let total = n(u.get("total_tokens")).or_else(|| n(u.get("totalTokenCount"))).or(match (input, output) {
        (Some(i), Some(o)) => Some(i + o),
        _ => None,
    });
    let cache_read = n(u.get("cache_read_tokens"))
        .or_else(|| n(u.get("cache_read_input_tokens")))
        .or_else(|| n(u.pointer("/prompt_tokens_details/cached_tokens")))
        .or_else(|| n(u.pointer("/input_tokens_details/cached_tokens")))
        .or_else(|| n(u.get("cachedContentTokenCount")));
    let cache_write = n(u.get("cache_write_tokens")).or_else(|| n(u.get("cache_creation_input_tokens")));
    Usage { input, output, total, cache_read, cache_write }
}

fn finish_reason(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("unknown").and_then(|u| u.as_str().map(str::to_string).or_else(|| Some(u.to_string()))),
        _ => None,
    }
}

fn response_payload(end_data: &Value) -> &Value {
    // A response wrapped like a request (`{"headers", "content": {...}}`) is unwrapped.
    match end_data.get("content") {
        Some(c @ Value::Object(_)) if end_data.get("usage").is_none() && end_data.get("model").is_none() => c,
        _ => end_data,
    }
}

/// A stream's end carries its chunks (an array): fold them into one response-shaped object
/// (OpenAI chat deltas joined, the last `usage` seen, Anthropic `message_start` /
/// `message_delta` usage combined, Gemini chunks' `usageMetadata`).
fn fold_chunks(chunks: &[Value]) -> Value {
    let mut text = String::new();
    let mut model = None;
    let mut id = None;
    let mut finish = None;
    let mut usage = serde_json::Map::new();
    for c in chunks {
        let c = c.get("data").filter(|d| d.is_object()).unwrap_or(c); // SSE-wrapped chunks
        model = model.or_else(|| s(c.get("model")).or_else(|| s(c.pointer("/message/model"))).or_else(|| s(c.get("modelVersion"))));
        id = id.or_else(|| s(c.get("id")).or_else(|| s(c.pointer("/message/id"))));
        if let Some(t) = c.pointer("/choices/0/delta/content").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(t) = c.pointer("/delta/text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(t) = c.pointer("/candidates/0/content/parts/0/text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(t) = c.as_str() {
            text.push_str(t);
        }
        if let Some(f) = c.pointer("/choices/0/finish_reason").filter(|f| !f.is_null()) {
            finish = Some(f.clone());
        } else if let Some(f) = c.pointer("/delta/stop_reason").filter(|f| !f.is_null()) {
            finish = Some(f.clone());
        }
        for u in [c.get("usage"), c.pointer("/message/usage"), c.get("usageMetadata")].into_iter().flatten() {
            if let Some(o) = u.as_object() {
                usage.extend(o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    let mut out = serde_json::Map::new();
    if let Some(m) = model {
        out.insert("model".into(), m.into());
    }
    if let Some(i) = id {
        out.insert("id".into(), i.into());
    }
    let mut choice = serde_json::json!({"message": {"role": "assistant", "content": text}});
    if let Some(f) = finish {
        choice["finish_reason"] = f;
    }
    out.insert("choices".into(), Value::Array(vec![choice]));
    if !usage.is_empty() {
        out.insert("usage".into(), Value::Object(usage));
    }
    Value::Object(out)
}

/// Gathers an LLM call's facts from its start (may be missing) and end events' JSON.
pub(crate) fn extract(start_profile: Option<&Value>, start_data: &Value, end_profile: Option<&Value>, end_data: &Value) -> LlmCall {
    let req = request_content(start_data);
    let ann_req = start_profile.and_then(|p| p.get("annotated_request")).filter(|v| v.is_object());
    let ann_resp = end_profile.and_then(|p| p.get("annotated_response")).filter(|v| v.is_object());
    let folded;
    let resp = match end_data {
        Value::Array(chunks) => {
            folded = fold_chunks(chunks);
            &folded
        }
        other => response_payload(other),
    };

    let mut call = LlmCall {
        request_model: s(start_profile.and_then(|p| p.get("model_name")))
            .or_else(|| s(end_profile.and_then(|p| p.get("model_name"))))
            .or_else(|| s(ann_req.and_then(|r| r.get("model"))))
            .or_else(|| s(req.get("model"))),
        response_model: s(ann_resp.and_then(|r| r.get("model"))).or_else(|| s(resp.get("model"))).or_else(|| s(resp.get("modelVersion"))),
        response_id: s(ann_resp.and_then(|r| r.get("id"))).or_else(|| s(resp.get("id"))).or_else(|| s(resp.get("responseId"))),
        ..Default::default()
    };

    // usage: annotation first, then the raw response; missing numbers filled from the other.
    let from_ann = ann_resp.and_then(|r| r.get("usage")).filter(|u| u.is_object()).map(usage_of).unwrap_or_default();
    let raw_usage = resp.get("usage").or_else(|| resp.get("usageMetadata")).filter(|u| u.is_object());
    let from_raw = raw_usage.map(usage_of).unwrap_or_default();
    call.usage = Usage {
        input: from_ann.input.or(from_raw.input),
        output: from_ann.output.or(from_raw.output),
        total: from_ann.total.or(from_raw.total),
        cache_read: from_ann.cache_read.or(from_raw.cache_read),
        cache_write: from_ann.cache_write.or(from_raw.cache_write),
    };

    // the provider's own value (`stop`, `end_turn`, `STOP`) first, as GenAI conventions want
    if let Some(fr) = ann_resp.and_then(|r| r.get("finish_reason_raw").or_else(|| r.get("finish_reason"))).and_then(finish_reason) {
        call.finish_reasons.push(fr);
    } else if let Some(choices) = resp.get("choices").and_then(Value::as_array) {
        call.finish_reasons.extend(choices.iter().filter_map(|c| c.get("finish_reason")).filter_map(finish_reason));
    } else if let Some(cands) = resp.get("candidates").and_then(Value::as_array) {
        call.finish_reasons.extend(cands.iter().filter_map(|c| c.get("finishReason")).filter_map(finish_reason));
    } else if let Some(fr) = resp.get("stop_reason").and_then(finish_reason) {
        call.finish_reasons.push(fr);
    } else if let Some(fr) = resp.get("status").and_then(finish_reason) {
        call.finish_reasons.push(fr);
    }

    call.input_messages = ann_req.map(input_messages).filter(|m| !m.is_empty()).unwrap_or_else(|| input_messages(req));
    call.output_messages = ann_resp.map(output_messages).filter(|m| !m.is_empty()).unwrap_or_else(|| output_messages(resp));

    let params_src = ann_req.and_then(|r| r.get("params")).and_then(Value::as_object);
    match params_src {
        Some(p) => call.params = p.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => {
            if let Some(o) = req.as_object() {
                const SKIP: [&str; 10] = [
                    "messages",
                    "input",
                    "contents",
                    "tools",
                    "system",
                    "instructions",
                    "systemInstruction",
                    "stream",
                    "model",
                    "tool_choice",
                ];
                call.params = o
                    .iter()
                    .filter(|(k, v)| !SKIP.contains(&k.as_str()) && !v.is_object() && !v.is_array())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Some(cfg) = o.get("generationConfig").and_then(Value::as_object) {
                    call.params.extend(cfg.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_chat_raw() {
        let req = json!({"headers": {}, "content": {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 50, "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "3"}
        ]}});
        let resp = json!({"id": "r1", "model": "gpt-4o-2024", "choices": [{"message": {"role": "assistant", "content": "3"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}});
        let c = extract(Some(&json!({"model_name": "gpt-4o"})), &req, None, &resp);
        assert_eq!(c.request_model.as_deref(), Some("gpt-4o"));
        assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024"));
        assert_eq!(c.response_id.as_deref(), Some("r1"));
        assert_eq!(c.usage, Usage { input: Some(11), output: Some(7), total: Some(18), ..Default::default() });
        assert_eq!(c.finish_reasons, ["stop"]);
        assert_eq!(c.input_messages.len(), 4);
        assert_eq!(c.input_messages[1].content.as_deref(), Some("hi"));
        assert_eq!(c.input_messages[2].tool_calls[0].name.as_deref(), Some("add"));
        assert_eq!(c.input_messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(c.output_messages[0].content.as_deref(), Some("3"));
        assert_eq!(c.params.get("temperature"), Some(&json!(0.2)));
        assert!(!c.params.contains_key("messages"));
    }

    #[test]
    fn annotations_win_and_anthropic_usage_is_read() {
        let req = json!({"content": {"model": "claude", "system": "sys", "messages": [{"role": "user", "content": "q"}]}});
        let resp = json!({"model": "claude-3", "content": [{"type": "text", "text": "a"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 2}});
        let c = extract(None, &req, None, &resp);
        assert_eq!(c.usage, Usage { input: Some(5), output: Some(2), total: Some(7), ..Default::default() });
        assert_eq!(c.input_messages[0].role, "system");
        assert_eq!(c.output_messages[0].tool_calls[0].arguments.as_deref(), Some("{\"x\":1}"));
        assert_eq!(c.finish_reasons, ["tool_use"]);

        let end_profile = json!({"annotated_response": {"model": "norm-model", "message": "hello", "finish_reason": {"unknown": "weird"},
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "cache_read_tokens": 3}}});
        let c = extract(None, &req, Some(&end_profile), &resp);
        assert_eq!(c.response_model.as_deref(), Some("norm-model"));
        assert_eq!(c.usage, Usage { input: Some(100), output: Some(20), total: Some(120), cache_read: Some(3), cache_write: None });
        assert_eq!(c.output_messages[0].content.as_deref(), Some("hello"));
        assert_eq!(c.finish_reasons, ["weird"]);
    }

    #[test]
    fn gemini_shapes() {
        let req = json!({"contents": [{"role": "user", "parts": [{"text": "q"}]}], "generationConfig": {"temperature": 0.1}});
        let resp = json!({"modelVersion": "gemini-2", "candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}});
        let c = extract(None, &req, None, &resp);
        assert_eq!(c.usage.total, Some(10));
        assert_eq!(c.response_model.as_deref(), Some("gemini-2"));
        assert_eq!(c.input_messages[0].content.as_deref(), Some("q"));
        assert_eq!(c.output_messages[0].content.as_deref(), Some("a"));
        assert_eq!(c.params.get("temperature"), Some(&json!(0.1)));
    }

    #[test]
    fn stream_chunks_are_folded() {
        let chunks = json!([
            {"id": "c", "model": "gpt-4o", "choices": [{"delta": {"content": "Hel"}}]},
            {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
        ]);
        let c = extract(None, &Value::Null, None, &chunks);
        assert_eq!(c.usage, Usage { input: Some(3), output: Some(2), total: Some(5), ..Default::default() });
        assert_eq!(c.output_messages[0].content.as_deref(), Some("Hello"));
        assert_eq!((c.response_model.as_deref(), c.finish_reasons.as_slice()), (Some("gpt-4o"), &["stop".to_string()][..]));
        let anthropic = json!([
            {"type": "message_start", "message": {"id": "m", "model": "claude", "usage": {"input_tokens": 9, "output_tokens": 1}}},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}
        ]);
        let c = extract(None, &Value::Null, None, &anthropic);
        assert_eq!(c.usage, Usage { input: Some(9), output: Some(4), total: Some(13), ..Default::default() });
        assert_eq!(c.output_messages[0].content.as_deref(), Some("hi"));
        assert_eq!(c.finish_reasons, ["end_turn"]);
    }

    #[test]
    fn nothing_known_is_empty_not_a_failure() {
        let c = extract(None, &json!("just text"), None, &Value::Null);
        assert_eq!(c.usage, Usage::default());
        assert!(c.input_messages.is_empty() && c.output_messages.is_empty() && c.request_model.is_none());
    }
}
