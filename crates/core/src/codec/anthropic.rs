//! Anthropic Messages (`POST /v1/messages`).

use serde_json::{json, Value};

use super::normalized::{FinishReason, NormalizedResponse, ToolCall, Usage};
use super::stream::{ChunkDecoder, StreamEvent};
use super::*;

pub(crate) struct Anthropic;

const NAME: &str = "anthropic_messages";

const PARAMS: [(&str, &[&str]); 4] =
    [("temperature", &["temperature"]), ("max_tokens", &["max_tokens"]), ("top_p", &["top_p"]), ("stop", &["stop_sequences"])];

fn decode_block(p: &Value, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    match o.get("type").and_then(Value::as_str) {
        Some("text") if o.get("text").is_some_and(Value::is_string) => {
            Ok(text_part(o["text"].as_str().unwrap_or_default(), unknown_keys(o, &["type", "text"])))
        }
        Some("image") => {
            let Some(src) = o.get("source").and_then(Value::as_object) else { return Ok(raw(p)) };
            let url = match src.get("type").and_then(Value::as_str) {
                Some("base64") if src.len() == 3 => {
                    match (src.get("media_type").and_then(Value::as_str), src.get("data").and_then(Value::as_str)) {
                        (Some(mt), Some(d)) => format!("data:{mt};base64,{d}"),
                        _ => return Ok(raw(p)),
                    }
                }
                Some("url") if src.len() == 2 => match src.get("url").and_then(Value::as_str) {
                    Some(u) => u.to_string(),
                    None => return Ok(raw(p)),
                },
                _ => return Ok(raw(p)),
            };
            Ok(object([
                ("type", Some(json!("image_url"))),
                ("image_url", Some(json!({"url": url}))),
                ("extra", unknown_keys(o, &["type", "source"])),
            ]))
        }
        Some("tool_result") => {
            let id = as_str(req(o, "tool_use_id", field)?, &format!("{field}.tool_use_id"))?;
            let content = match o.get("content") {
                None => None,
                Some(Value::String(s)) => Some(json!(s)),
                Some(Value::Array(parts)) => Some(Value::Array(
                    parts.iter().enumerate().map(|(i, p)| decode_block(p, &format!("{field}.content[{i}]"))).collect::<Result<_>>()?,
                )),
                Some(other) => {
                    return Err(bad(&format!("{field}.content"), format!("expected a string or an array of blocks, got {other}")))
                }
            };
            Ok(object([
                ("type", Some(json!("tool_result"))),
                ("tool_call_id", Some(json!(id))),
                ("content", content),
                ("is_error", o.get("is_error").cloned()),
                ("extra", unknown_keys(o, &["type", "tool_use_id", "content", "is_error"])),
            ]))
        }
        _ => Ok(raw(p)),
    }
}

fn encode_block(p: &Value, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    if let Some(r) = raw_of(o) {
        return Ok(r.clone());
    }
    let mut out = Obj::new();
    match o.get("type").and_then(Value::as_str) {
        Some("text") => {
            out.insert("type".into(), "text".into());
            out.insert("text".into(), edited_text(o, field, NAME)?);
        }
        Some("image_url") => {
            only_keys(o, &["type", "image_url"], field, NAME)?;
            let img = as_obj(req(o, "image_url", field)?, &format!("{field}.image_url"))?;
            let url = as_str(req(img, "url", &format!("{field}.image_url"))?, &format!("{field}.image_url.url"))?;
            if let Some(k) = img.keys().find(|k| *k != "url") {
                return Err(bad(&format!("{field}.image_url.{k}"), format!("{NAME} images have no '{k}'")));
            }
            out.insert("type".into(), "image".into());
            out.insert(
                "source".into(),
                match parse_data_url(url) {
                    Some((mt, data)) => json!({"type": "base64", "media_type": mt, "data": data}),
                    None if url.starts_with("data:") => {
                        return Err(bad(&format!("{field}.image_url.url"), format!("{NAME} needs base64 data URLs")))
                    }
                    None => json!({"type": "url", "url": url}),
                },
            );
        }
        Some("tool_result") => {
            only_keys(o, &["type", "tool_call_id", "content", "is_error"], field, NAME)?;
            out.insert("type".into(), "tool_result".into());
            out.insert("tool_use_id".into(), json!(as_str(req(o, "tool_call_id", field)?, &format!("{field}.tool_call_id"))?));
            match o.get("content") {
                None => {}
                Some(Value::String(s)) => {
                    out.insert("content".into(), json!(s));
                }
                Some(Value::Array(parts)) => {
                    let blocks =
                        parts.iter().enumerate().map(|(i, p)| encode_block(p, &format!("{field}.content[{i}]"))).collect::<Result<_>>()?;
                    out.insert("content".into(), Value::Array(blocks));
                }
                Some(_) => return Err(bad(&format!("{field}.content"), format!("{NAME} tool results are a string or blocks"))),
            }
            if let Some(e) = o.get("is_error") {
                out.insert("is_error".into(), e.clone());
            }
        }
        other => {
            return Err(bad(
                &format!("{field}.type"),
                format!("{NAME} has no content block of type {}", other.map_or("(none)".into(), |t| format!("'{t}'"))),
            ))
        }
    }
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_message(m: &Value, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = as_str(req(o, "role", field)?, &format!("{field}.role"))?;
    if !matches!(role, "user" | "assistant") {
        return Err(bad(&format!("{field}.role"), format!("{NAME} messages are user or assistant, got '{role}'")));
    }
    let mut out = Obj::new();
    out.insert("role".into(), json!(role));
    match req(o, "content", field)? {
        Value::String(s) => {
            out.insert("content".into(), json!(s));
        }
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            let mut calls = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let bf = format!("{field}.content[{i}]");
                if role == "assistant" && b.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let t = as_obj(b, &bf)?;
                    calls.push(object([
                        ("id", Some(json!(as_str(req(t, "id", &bf)?, &format!("{bf}.id"))?))),
                        ("name", Some(json!(as_str(req(t, "name", &bf)?, &format!("{bf}.name"))?))),
                        ("arguments", Some(json!(args_string(t.get("input").unwrap_or(&Value::Null))))),
                        ("extra", unknown_keys(t, &["type", "id", "name", "input"])),
                    ]));
                } else {
                    parts.push(decode_block(b, &bf)?);
                }
            }
            out.insert("content".into(), Value::Array(parts));
            if !calls.is_empty() {
                out.insert("tool_calls".into(), Value::Array(calls));
            }
        }
        other => return Err(bad(&format!("{field}.content"), format!("expected a string or an array of blocks, got {other}"))),
    }
    if let Some(e) = unknown_keys(o, &["role", "content"]) {
        out.insert("extra".into(), e);
    }
    Ok(Value::Object(out))
}

fn encode_message(m: &Value, base: Option<&Value>, orig: Option<&Value>, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = as_str(req(o, "role", field)?, &format!("{field}.role"))?;
    match role {
        "user" | "assistant" => {}
        "system" | "developer" => {
            return Err(bad(&format!("{field}.role"), format!("{NAME} has no {role} messages; use instructions (the system prompt)")))
        }
        "tool" => {
            return Err(bad(&format!("{field}.role"), format!("{NAME} has no tool messages; use a user message with tool_result parts")))
        }
        other => return Err(bad(&format!("{field}.role"), format!("{NAME} has no role '{other}'"))),
    }
    only_keys(o, &["role", "content", "tool_calls"], field, NAME)?;
    if o.contains_key("tool_calls") && role != "assistant" {
        return Err(bad(&format!("{field}.tool_calls"), format!("{NAME} carries tool calls only on assistant messages")));
    }
    // Original blocks split like the decoder did, so unchanged parts keep their bytes.
    let orig_blocks = orig.and_then(|m| m.get("content")).and_then(Value::as_array);
    let is_call = |b: &&Value| role == "assistant" && b.get("type").and_then(Value::as_str) == Some("tool_use");
    let orig_parts: Option<Vec<Value>> = orig_blocks.map(|bs| bs.iter().filter(|b| !is_call(b)).cloned().collect());
    let orig_calls: Option<Vec<Value>> = orig_blocks.map(|bs| bs.iter().filter(is_call).cloned().collect());
    let mut out = Obj::new();
    out.insert("role".into(), json!(role));
    let content = match o.get("content") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(Value::String(s)) if !o.contains_key("tool_calls") => json!(s),
        Some(Value::String(s)) => json!([{"type": "text", "text": s}]),
        Some(Value::Array(parts)) => {
            let b = base.and_then(|b| b.get("content")).and_then(Value::as_array).map(|v| &v[..]);
            Value::Array(patch_list(parts, b, orig_parts.as_deref(), |i, p, _, _| encode_block(p, &format!("{field}.content[{i}]")))?)
        }
        Some(other) => return Err(bad(&format!("{field}.content"), format!("expected a string or an array of parts, got {other}"))),
    };
    let mut content = content;
    if let Some(calls) = o.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = as_arr(calls, &format!("{field}.tool_calls"))?;
        let b = base.and_then(|b| b.get("tool_calls")).and_then(Value::as_array).map(|v| &v[..]);
        let encoded = patch_list(calls, b, orig_calls.as_deref(), |i, c, _, _| {
            let cf = format!("{field}.tool_calls[{i}]");
            let t = as_obj(c, &cf)?;
            only_keys(t, &["id", "name", "arguments"], &cf, NAME)?;
            let mut block = Obj::new();
            block.insert("type".into(), "tool_use".into());
            block.insert("id".into(), json!(as_str(req(t, "id", &cf)?, &format!("{cf}.id"))?));
            block.insert("name".into(), json!(as_str(req(t, "name", &cf)?, &format!("{cf}.name"))?));
            block.insert("input".into(), args_object(t.get("arguments").unwrap_or(&Value::Null), &format!("{cf}.arguments"), NAME)?);
            put_extra(&mut block, t, &cf)?;
            Ok(Value::Object(block))
        })?;
        if let Some(arr) = content.as_array_mut() {
            arr.extend(encoded);
        }
    }
    out.insert("content".into(), content);
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_tool(t: &Value, field: &str) -> Result<Value> {
    let o = as_obj(t, field)?;
    if !matches!(o.get("type").and_then(Value::as_str), None | Some("custom")) || !o.contains_key("input_schema") {
        return Ok(json!({"raw": t}));
    }
    Ok(object([
        ("name", Some(json!(as_str(req(o, "name", field)?, &format!("{field}.name"))?))),
        ("description", o.get("description").cloned()),
        ("parameters", o.get("input_schema").cloned()),
        ("extra", unknown_keys(o, &["name", "description", "input_schema"])),
    ]))
}

fn encode_tool(t: &Value, field: &str) -> Result<Value> {
    let o = as_obj(t, field)?;
    if let Some(r) = o.get("raw") {
        return Ok(r.clone());
    }
    only_keys(o, &["name", "description", "parameters"], field, NAME)?;
    let mut out = Obj::new();
    out.insert("name".into(), json!(as_str(req(o, "name", field)?, &format!("{field}.name"))?));
    if let Some(d) = o.get("description") {
        out.insert("description".into(), d.clone());
    }
    out.insert("input_schema".into(), o.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})));
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

impl ProviderCodec for Anthropic {
    fn decode_request(&self, o: &Obj) -> Result<Value> {
        let msgs = as_arr(req(o, "messages", "request")?, "messages")?;
        let messages = msgs.iter().enumerate().map(|(i, m)| decode_message(m, &format!("messages[{i}]"))).collect::<Result<Vec<_>>>()?;
        let instructions = match o.get("system") {
            None => None,
            Some(Value::String(s)) => Some(json!(s)),
            Some(Value::Array(blocks)) => {
                Some(Value::Array(blocks.iter().enumerate().map(|(i, b)| decode_block(b, &format!("system[{i}]"))).collect::<Result<_>>()?))
            }
            Some(other) => return Err(bad("system", format!("expected a string or an array of text blocks, got {other}"))),
        };
        let tools = match o.get("tools") {
            None => None,
            Some(t) => Some(Value::Array(
                as_arr(t, "tools")?.iter().enumerate().map(|(i, t)| decode_tool(t, &format!("tools[{i}]"))).collect::<Result<_>>()?,
            )),
        };
        let tool_choice =
            o.get("tool_choice").map(|tc| match (tc.get("type").and_then(Value::as_str), tc.get("name").and_then(Value::as_str)) {
                (Some("auto"), _) => json!("auto"),
                (Some("any"), _) => json!("required"),
                (Some("none"), _) => json!("none"),
                (Some("tool"), Some(n)) => json!({"name": n}),
                _ => json!({"raw": tc}),
            });
        Ok(object([
            ("model", o.get("model").cloned()),
            ("instructions", instructions),
            ("messages", Some(Value::Array(messages))),
            ("params", params_of(o, &PARAMS)),
            ("tools", tools),
            ("tool_choice", tool_choice),
            ("stream", o.get("stream").cloned()),
            ("extra", Some(request_extra(o, &self.modeled_paths(o)))),
        ]))
    }

    fn modeled_paths(&self, _o: &Obj) -> Vec<&'static [&'static str]> {
        vec![
            &["model"],
            &["system"],
            &["messages"],
            &["tools"],
            &["tool_choice"],
            &["stream"],
            &["temperature"],
            &["max_tokens"],
            &["top_p"],
            &["stop_sequences"],
        ]
    }

    fn patch(&self, field: &str, e: Option<&Value>, b: Option<&Value>, out: &mut Obj, orig: &Obj) -> Result<()> {
        match field {
            "model" => set_or_remove(out, "model", e.map(|m| as_str(m, "model").map(|_| m.clone())).transpose()?),
            "instructions" => {
                let v = match e {
                    None => None,
                    Some(Value::String(s)) => Some(json!(s)),
                    Some(Value::Array(parts)) => {
                        let bb = b.and_then(Value::as_array).map(|v| &v[..]);
                        let oo = orig.get("system").and_then(Value::as_array).map(|v| &v[..]);
                        let blocks = patch_list(parts, bb, oo, |i, p, _, _| {
                            let block = encode_block(p, &format!("instructions[{i}]"))?;
                            if block.get("type").and_then(Value::as_str) != Some("text") {
                                return Err(bad(&format!("instructions[{i}]"), format!("{NAME} system prompts hold only text blocks")));
                            }
                            Ok(block)
                        })?;
                        Some(Value::Array(blocks))
                    }
                    Some(_) => return Err(bad("instructions", "expected a string or an array of text parts")),
                };
                set_or_remove(out, "system", v);
            }
            "messages" => {
                let Some(e) = e else { return Err(bad("messages", format!("{NAME} needs messages"))) };
                let e = as_arr(e, "messages")?;
                let bb = b.and_then(Value::as_array).map(|v| &v[..]);
                let oo = orig.get("messages").and_then(Value::as_array).map(|v| &v[..]);
                let v = patch_list(e, bb, oo, |i, m, bm, om| encode_message(m, bm, om, &format!("messages[{i}]")))?;
                out.insert("messages".into(), Value::Array(v));
            }
            "params" => patch_params(e, out, &PARAMS, NAME)?,
            "tools" => {
                let v = match e {
                    None => None,
                    Some(e) => {
                        let e = as_arr(e, "tools")?;
                        let bb = b.and_then(Value::as_array).map(|v| &v[..]);
                        let oo = orig.get("tools").and_then(Value::as_array).map(|v| &v[..]);
                        Some(Value::Array(patch_list(e, bb, oo, |i, t, _, _| encode_tool(t, &format!("tools[{i}]")))?))
                    }
                };
                set_or_remove(out, "tools", v);
            }
            "tool_choice" => {
                let mut base_obj = orig.get("tool_choice").and_then(Value::as_object).cloned().unwrap_or_default();
                base_obj.remove("name");
                let v = match e {
                    None => None,
                    Some(tc) => {
                        let (ty, name) = match tc {
                            Value::String(s) if s == "auto" => ("auto", None),
                            Value::String(s) if s == "required" => ("any", None),
                            Value::String(s) if s == "none" => ("none", None),
                            Value::Object(m) if m.get("raw").is_some() => {
                                set_or_remove(out, "tool_choice", m.get("raw").cloned());
                                return Ok(());
                            }
                            Value::Object(m) if m.len() == 1 && m.get("name").is_some_and(Value::is_string) => {
                                ("tool", m.get("name").cloned())
                            }
                            _ => return Err(bad("tool_choice", format!("{NAME} accepts auto, none, required or {{\"name\": ...}}"))),
                        };
                        base_obj.insert("type".into(), json!(ty));
                        if let Some(n) = name {
                            base_obj.insert("name".into(), n);
                        }
                        Some(Value::Object(base_obj))
                    }
                };
                set_or_remove(out, "tool_choice", v);
            }
            "stream" => set_or_remove(out, "stream", edited_stream(e)?),
            _ => {}
        }
        Ok(())
    }

    fn decode_response(&self, o: &Obj) -> Result<NormalizedResponse> {
        let mut r = NormalizedResponse { id: opt_str(o, "id", "response")?, model: opt_str(o, "model", "response")?, ..Default::default() };
        for (i, b) in as_arr(req(o, "content", "response")?, "content")?.iter().enumerate() {
            let field = format!("content[{i}]");
            let b = as_obj(b, &field)?;
            match b.get("type").and_then(Value::as_str) {
                Some("text") => r.text.push_str(&opt_str(b, "text", &field)?.unwrap_or_default()),
                Some("tool_use") => r.tool_calls.push(ToolCall {
                    id: opt_str(b, "id", &field)?,
                    name: opt_str(b, "name", &field)?.unwrap_or_default(),
                    arguments: args_string(b.get("input").unwrap_or(&Value::Null)),
                }),
                _ => {}
            }
        }
        if let Some(s) = opt_str(o, "stop_reason", "response")? {
            r.finish_reason = Some(finish(&s));
            r.finish_reason_raw = Some(json!(s));
        }
        if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
            r.usage = Some(usage(as_obj(u, "usage")?)?);
        }
        r.extra = o
            .iter()
            .filter(|(k, _)| !["id", "model", "content", "stop_reason", "usage"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(r)
    }

    fn stream_decoder(&self) -> Box<dyn ChunkDecoder> {
        Box::new(AnthropicStream { usage: Obj::new(), tool_blocks: Vec::new() })
    }
}

fn finish(s: &str) -> FinishReason {
    match s {
        "end_turn" | "stop_sequence" => FinishReason::Complete,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolUse,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Unknown(other.to_string()),
    }
}

/// Anthropic's `input_tokens` excludes cached tokens; the normalized prompt counts them all.
fn usage(u: &Obj) -> Result<Usage> {
    let input = opt_u64(u, "input_tokens", "usage")?;
    let write = opt_u64(u, "cache_creation_input_tokens", "usage")?;
    let read = opt_u64(u, "cache_read_input_tokens", "usage")?;
    let prompt = input.map(|i| i.saturating_add(write.unwrap_or(0)).saturating_add(read.unwrap_or(0)));
    Ok(Usage {
        prompt_tokens: prompt,
        completion_tokens: opt_u64(u, "output_tokens", "usage")?,
        total_tokens: None,
        cache_read_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: None,
    }
    .with_total())
}

struct AnthropicStream {
    /// Raw usage merged across `message_start` and `message_delta` (later keys win).
    usage: Obj,
    tool_blocks: Vec<u64>,
}

impl ChunkDecoder for AnthropicStream {
    fn object_arguments(&self) -> bool {
        true
    }

    fn push(&mut self, o: &Obj, out: &mut Vec<StreamEvent>) -> Result<()> {
        let ty = as_str(req(o, "type", "chunk")?, "chunk.type")?;
        match ty {
            "message_start" => {
                let m = as_obj(req(o, "message", "chunk")?, "chunk.message")?;
                out.push(StreamEvent::Start { id: opt_str(m, "id", "chunk.message")?, model: opt_str(m, "model", "chunk.message")? });
                if let Some(u) = m.get("usage").filter(|u| !u.is_null()) {
                    self.merge_usage(as_obj(u, "chunk.message.usage")?, out)?;
                }
            }
            "content_block_start" => {
                let index = opt_u64(o, "index", "chunk")?.unwrap_or(0);
                let b = as_obj(req(o, "content_block", "chunk")?, "chunk.content_block")?;
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = opt_str(b, "text", "chunk.content_block")?.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t));
                        }
                    }
                    Some("tool_use") => {
                        self.tool_blocks.push(index);
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: opt_str(b, "id", "chunk.content_block")?,
                            name: opt_str(b, "name", "chunk.content_block")?.unwrap_or_default(),
                        });
                        if let Some(input) = b.get("input").filter(|i| i.as_object().is_some_and(|m| !m.is_empty())) {
                            out.push(StreamEvent::ToolCallDelta { index, arguments: input.to_string() });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = opt_u64(o, "index", "chunk")?.unwrap_or(0);
                let d = as_obj(req(o, "delta", "chunk")?, "chunk.delta")?;
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => out.push(StreamEvent::TextDelta(opt_str(d, "text", "chunk.delta")?.unwrap_or_default())),
                    Some("input_json_delta") => out.push(StreamEvent::ToolCallDelta {
                        index,
                        arguments: opt_str(d, "partial_json", "chunk.delta")?.unwrap_or_default(),
                    }),
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(d) = o.get("delta").filter(|d| !d.is_null()) {
                    let d = as_obj(d, "chunk.delta")?;
                    if let Some(s) = opt_str(d, "stop_reason", "chunk.delta")? {
                        out.push(StreamEvent::Finish { reason: finish(&s), raw: json!(s) });
                    }
                }
                if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
                    self.merge_usage(as_obj(u, "chunk.usage")?, out)?;
                }
            }
            "error" => out.push(StreamEvent::Error(o.get("error").cloned().unwrap_or_else(|| Value::Object(o.clone())))),
            _ => {}
        }
        Ok(())
    }
}

impl AnthropicStream {
    fn merge_usage(&mut self, u: &Obj, out: &mut Vec<StreamEvent>) -> Result<()> {
        for (k, v) in u {
            if !v.is_null() {
                self.usage.insert(k.clone(), v.clone());
            }
        }
        out.push(StreamEvent::Usage(usage(&self.usage)?));
        Ok(())
    }
}
