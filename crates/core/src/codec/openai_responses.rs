//! OpenAI Responses (`POST /v1/responses`).

use serde_json::{json, Value};

use super::normalized::{FinishReason, NormalizedResponse, ToolCall, Usage};
use super::stream::{ChunkDecoder, StreamEvent};
use super::*;

pub(crate) struct OpenAiResponses;

const NAME: &str = "openai_responses";

const PARAMS: [(&str, &[&str]); 3] = [("temperature", &["temperature"]), ("max_tokens", &["max_output_tokens"]), ("top_p", &["top_p"])];

fn decode_part(p: &Value, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    match o.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text") if o.get("text").is_some_and(Value::is_string) => {
            Ok(text_part(o["text"].as_str().unwrap_or_default(), unknown_keys(o, &["type", "text"])))
        }
        Some("input_image") if o.get("image_url").is_some_and(Value::is_string) => {
            let mut img = Obj::new();
            img.insert("url".into(), o["image_url"].clone());
            if let Some(d) = o.get("detail") {
                img.insert("detail".into(), d.clone());
            }
            Ok(object([
                ("type", Some(json!("image_url"))),
                ("image_url", Some(Value::Object(img))),
                ("extra", unknown_keys(o, &["type", "image_url", "detail"])),
            ]))
        }
        _ => Ok(raw(p)),
    }
}

fn encode_part(p: &Value, role: &str, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    if let Some(r) = raw_of(o) {
        return Ok(r.clone());
    }
    let mut out = Obj::new();
    match o.get("type").and_then(Value::as_str) {
        Some("text") => {
            out.insert("type".into(), json!(if role == "assistant" { "output_text" } else { "input_text" }));
            out.insert("text".into(), edited_text(o, field, NAME)?);
        }
        Some("image_url") => {
            only_keys(o, &["type", "image_url"], field, NAME)?;
            if role == "assistant" {
                return Err(bad(field, format!("{NAME} has no images in assistant messages")));
            }
            let img = as_obj(req(o, "image_url", field)?, &format!("{field}.image_url"))?;
            out.insert("type".into(), "input_image".into());
            out.insert(
                "image_url".into(),
                json!(as_str(req(img, "url", &format!("{field}.image_url"))?, &format!("{field}.image_url.url"))?),
            );
            if let Some(d) = img.get("detail") {
                out.insert("detail".into(), d.clone());
            }
        }
        other => {
            return Err(bad(
                &format!("{field}.type"),
                format!("{NAME} has no content part of type {}", other.map_or("(none)".into(), |t| format!("'{t}'"))),
            ))
        }
    }
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_content(c: &Value, field: &str) -> Result<Value> {
    match c {
        Value::String(_) => Ok(c.clone()),
        Value::Array(parts) => {
            parts.iter().enumerate().map(|(i, p)| decode_part(p, &format!("{field}[{i}]"))).collect::<Result<_>>().map(Value::Array)
        }
        other => Err(bad(field, format!("expected a string or an array of parts, got {other}"))),
    }
}

fn encode_content(c: &Value, role: &str, base: Option<&Value>, orig: Option<&Value>, field: &str) -> Result<Value> {
    match c {
        Value::String(_) => Ok(c.clone()),
        Value::Array(parts) => patch_list(
            parts,
            base.and_then(Value::as_array).map(|v| &v[..]),
            orig.and_then(Value::as_array).map(|v| &v[..]),
            |i, p, _, _| encode_part(p, role, &format!("{field}[{i}]")),
        )
        .map(Value::Array),
        other => Err(bad(field, format!("expected a string or an array of parts, got {other}"))),
    }
}

fn decode_item(item: &Value, field: &str) -> Result<Value> {
    let o = as_obj(item, field)?;
    let ty = o.get("type").and_then(Value::as_str);
    match ty {
        None | Some("message") if o.get("role").is_some_and(Value::is_string) && o.contains_key("content") => {
            let role = o["role"].as_str().unwrap_or_default();
            if !matches!(role, "system" | "developer" | "user" | "assistant") {
                return Ok(json!({"role": "other", "raw": item}));
            }
            Ok(object([
                ("role", Some(json!(role))),
                ("content", Some(decode_content(&o["content"], &format!("{field}.content"))?)),
                ("extra", unknown_keys(o, &["role", "content"])),
            ]))
        }
        Some("function_call") => {
            let call = object([
                ("id", Some(o.get("call_id").cloned().unwrap_or(Value::Null))),
                ("name", Some(json!(as_str(req(o, "name", field)?, &format!("{field}.name"))?))),
                ("arguments", Some(json!(as_str(req(o, "arguments", field)?, &format!("{field}.arguments"))?))),
            ]);
            Ok(object([
                ("role", Some(json!("assistant"))),
                ("tool_calls", Some(json!([call]))),
                ("extra", unknown_keys(o, &["type", "call_id", "name", "arguments"])),
            ]))
        }
        Some("function_call_output") => {
            let output = req(o, "output", field)?;
            Ok(object([
                ("role", Some(json!("tool"))),
                ("content", Some(decode_content(output, &format!("{field}.output"))?)),
                ("tool_call_id", Some(o.get("call_id").cloned().unwrap_or(Value::Null))),
                ("extra", unknown_keys(o, &["type", "call_id", "output"])),
            ]))
        }
        _ => Ok(json!({"role": "other", "raw": item})),
    }
}

fn encode_item(m: &Value, base: Option<&Value>, orig: Option<&Value>, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = as_str(req(o, "role", field)?, &format!("{field}.role"))?;
    let mut out = Obj::new();
    match role {
        "other" => return Ok(req(o, "raw", field)?.clone()),
        "assistant" if o.contains_key("tool_calls") => {
            only_keys(o, &["role", "tool_calls"], field, NAME).map_err(|_| {
                bad(
                    field,
                    format!(
                        "{NAME} represents each tool call as its own input item: use one assistant message per tool call, without content"
                    ),
                )
            })?;
            let calls = as_arr(&o["tool_calls"], &format!("{field}.tool_calls"))?;
            let [call] = calls.as_slice() else {
                return Err(bad(
                    &format!("{field}.tool_calls"),
                    format!("{NAME} represents each tool call as its own input item: use one assistant message per tool call"),
                ));
            };
            let cf = format!("{field}.tool_calls[0]");
            let c = as_obj(call, &cf)?;
            only_keys(c, &["id", "name", "arguments"], &cf, NAME)?;
            out.insert("type".into(), "function_call".into());
            out.insert("call_id".into(), c.get("id").cloned().unwrap_or(Value::Null));
            out.insert("name".into(), json!(as_str(req(c, "name", &cf)?, &format!("{cf}.name"))?));
            out.insert("arguments".into(), json!(args_string(c.get("arguments").unwrap_or(&Value::Null))));
        }
        "tool" => {
            only_keys(o, &["role", "content", "tool_call_id"], field, NAME)?;
            out.insert("type".into(), "function_call_output".into());
            out.insert("call_id".into(), req(o, "tool_call_id", field)?.clone());
            let c = req(o, "content", field)?;
            out.insert(
                "output".into(),
                encode_content(
                    c,
                    "user",
                    base.and_then(|b| b.get("content")),
                    orig.and_then(|b| b.get("output")),
                    &format!("{field}.content"),
                )?,
            );
        }
        "system" | "developer" | "user" | "assistant" => {
            only_keys(o, &["role", "content"], field, NAME)?;
            out.insert("role".into(), json!(role));
            let c = req(o, "content", field)?;
            out.insert(
                "content".into(),
                encode_content(
                    c,
                    role,
                    base.and_then(|b| b.get("content")),
                    orig.and_then(|b| b.get("content")),
                    &format!("{field}.content"),
                )?,
            );
        }
        other => return Err(bad(&format!("{field}.role"), format!("{NAME} has no role '{other}'"))),
    }
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_tool(t: &Value, field: &str) -> Result<Value> {
    let o = as_obj(t, field)?;
    if o.get("type").and_then(Value::as_str) != Some("function") {
        return Ok(json!({"raw": t}));
    }
    Ok(object([
        ("name", Some(json!(as_str(req(o, "name", field)?, &format!("{field}.name"))?))),
        ("description", o.get("description").cloned()),
        ("parameters", o.get("parameters").cloned()),
        ("extra", unknown_keys(o, &["type", "name", "description", "parameters"])),
    ]))
}

fn encode_tool(t: &Value, field: &str) -> Result<Value> {
    let o = as_obj(t, field)?;
    if let Some(r) = o.get("raw") {
        return Ok(r.clone());
    }
    only_keys(o, &["name", "description", "parameters"], field, NAME)?;
    let mut out = Obj::new();
    out.insert("type".into(), "function".into());
    out.insert("name".into(), json!(as_str(req(o, "name", field)?, &format!("{field}.name"))?));
    for k in ["description", "parameters"] {
        if let Some(v) = o.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

impl ProviderCodec for OpenAiResponses {
    fn decode_request(&self, o: &Obj) -> Result<Value> {
        let messages = match o.get("input") {
            None => Value::Array(Vec::new()),
            Some(Value::String(s)) => json!([{"role": "user", "content": s}]),
            Some(v) => Value::Array(
                as_arr(v, "input")?.iter().enumerate().map(|(i, m)| decode_item(m, &format!("input[{i}]"))).collect::<Result<_>>()?,
            ),
        };
        let tools = match o.get("tools") {
            None => None,
            Some(t) => Some(Value::Array(
                as_arr(t, "tools")?.iter().enumerate().map(|(i, t)| decode_tool(t, &format!("tools[{i}]"))).collect::<Result<_>>()?,
            )),
        };
        let tool_choice =
            o.get("tool_choice").map(|tc| match (tc.get("type").and_then(Value::as_str), tc.get("name").and_then(Value::as_str)) {
                (Some("function"), Some(n)) if tc.as_object().is_some_and(|m| m.len() == 2) => json!({"name": n}),
                _ => super::openai_chat::decode_tool_choice_generic(tc),
            });
        if let Some(i) = o.get("instructions").filter(|i| !i.is_null()) {
            as_str(i, "instructions")?;
        }
        Ok(object([
            ("model", o.get("model").cloned()),
            ("instructions", o.get("instructions").filter(|i| !i.is_null()).cloned()),
            ("messages", Some(messages)),
            ("params", params_of(o, &PARAMS)),
            ("tools", tools),
            ("tool_choice", tool_choice),
            ("stream", o.get("stream").cloned()),
            ("extra", Some(request_extra(o, &self.modeled_paths(o)))),
        ]))
    }

    fn modeled_paths(&self, o: &Obj) -> Vec<&'static [&'static str]> {
        let mut p: Vec<&'static [&'static str]> =
            vec![&["model"], &["input"], &["tools"], &["tool_choice"], &["stream"], &["max_output_tokens"], &["temperature"], &["top_p"]];
        if o.get("instructions").is_some_and(|i| !i.is_null()) {
            p.push(&["instructions"]);
        }
        p
    }

    fn patch(&self, field: &str, e: Option<&Value>, b: Option<&Value>, out: &mut Obj, orig: &Obj) -> Result<()> {
        match field {
            "model" => set_or_remove(out, "model", e.map(|m| as_str(m, "model").map(|_| m.clone())).transpose()?),
            "instructions" => set_or_remove(out, "instructions", e.map(|m| as_str(m, "instructions").map(|_| m.clone())).transpose()?),
            "messages" => {
                let empty = Vec::new();
                let e = match e {
                    Some(v) => as_arr(v, "messages")?,
                    None => &empty,
                };
                // A string input stays a string while it is one plain user message.
                if orig.get("input").is_some_and(Value::is_string) {
                    if let [m] = e.as_slice() {
                        if m.as_object().is_some_and(|m| {
                            m.len() == 2 && m.get("role") == Some(&json!("user")) && m.get("content").is_some_and(Value::is_string)
                        }) {
                            out.insert("input".into(), m["content"].clone());
                            return Ok(());
                        }
                    }
                }
                if e.is_empty() && !orig.contains_key("input") {
                    out.remove("input");
                    return Ok(());
                }
                let b = b.and_then(Value::as_array).map(|v| &v[..]);
                let o = orig.get("input").and_then(Value::as_array).map(|v| &v[..]);
                let v = patch_list(e, b, o, |i, m, bm, om| encode_item(m, bm, om, &format!("messages[{i}]")))?;
                out.insert("input".into(), Value::Array(v));
            }
            "params" => {
                if let Some(s) = e.and_then(|p| p.get("stop")) {
                    if !s.is_null() {
                        return Err(bad("params.stop", format!("{NAME} has no stop sequences")));
                    }
                }
                patch_params(e, out, &PARAMS, NAME)?
            }
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
                let v = match e {
                    None => None,
                    Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => Some(json!(s)),
                    Some(tc) => match tc.as_object() {
                        Some(m) if m.get("raw").is_some() => m.get("raw").cloned(),
                        Some(m) if m.get("name").is_some_and(Value::is_string) && m.len() == 1 => {
                            Some(json!({"type": "function", "name": m["name"]}))
                        }
                        _ => return Err(bad("tool_choice", format!("{NAME} accepts auto, none, required or {{\"name\": ...}}"))),
                    },
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
        let output = match o.get("output") {
            Some(v) => as_arr(v, "output")?.as_slice(),
            None => &[],
        };
        for (i, item) in output.iter().enumerate() {
            let field = format!("output[{i}]");
            let it = as_obj(item, &field)?;
            match it.get("type").and_then(Value::as_str) {
                Some("message") => {
                    if let Some(c) = it.get("content") {
                        for p in as_arr(c, &format!("{field}.content"))? {
                            if p.get("type").and_then(Value::as_str) == Some("output_text") {
                                if let Some(t) = p.get("text").and_then(Value::as_str) {
                                    r.text.push_str(t);
                                }
                            }
                        }
                    }
                }
                Some("function_call") => r.tool_calls.push(ToolCall {
                    id: opt_str(it, "call_id", &field)?,
                    name: opt_str(it, "name", &field)?.unwrap_or_default(),
                    arguments: opt_str(it, "arguments", &field)?.unwrap_or_default(),
                }),
                _ => {}
            }
        }
        if let Some((reason, raw)) = finish(o, !r.tool_calls.is_empty())? {
            r.finish_reason = Some(reason);
            r.finish_reason_raw = Some(raw);
        }
        if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
            r.usage = Some(usage(as_obj(u, "usage")?)?);
        }
        r.extra = o
            .iter()
            .filter(|(k, _)| !["id", "model", "output", "usage", "status", "incomplete_details"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(r)
    }

    fn stream_decoder(&self) -> Box<dyn ChunkDecoder> {
        Box::new(ResponsesStream { started: false })
    }
}

/// The finish reason of a response object (`status`, `incomplete_details.reason`).
fn finish(o: &Obj, has_calls: bool) -> Result<Option<(FinishReason, Value)>> {
    let Some(status) = opt_str(o, "status", "response")? else { return Ok(None) };
    Ok(match status.as_str() {
        "completed" if has_calls => Some((FinishReason::ToolUse, json!(status))),
        "completed" => Some((FinishReason::Complete, json!(status))),
        "incomplete" => {
            let reason =
                o.get("incomplete_details").and_then(|d| d.get("reason")).and_then(Value::as_str).unwrap_or("incomplete").to_string();
            let f = match reason.as_str() {
                "max_output_tokens" => FinishReason::Length,
                "content_filter" => FinishReason::ContentFilter,
                _ => FinishReason::Unknown(reason.clone()),
            };
            Some((f, json!(reason)))
        }
        "in_progress" | "queued" => None,
        other => Some((FinishReason::Unknown(other.to_string()), json!(other))),
    })
}

fn usage(u: &Obj) -> Result<Usage> {
    let d = |k: &str| u.get(k).and_then(Value::as_object);
    Ok(Usage {
        prompt_tokens: opt_u64(u, "input_tokens", "usage")?,
        completion_tokens: opt_u64(u, "output_tokens", "usage")?,
        total_tokens: opt_u64(u, "total_tokens", "usage")?,
        cache_read_tokens: d("input_tokens_details")
            .map(|p| opt_u64(p, "cached_tokens", "usage.input_tokens_details"))
            .transpose()?
            .flatten(),
        cache_write_tokens: None,
        reasoning_tokens: d("output_tokens_details")
            .map(|p| opt_u64(p, "reasoning_tokens", "usage.output_tokens_details"))
            .transpose()?
            .flatten(),
    }
    .with_total())
}

struct ResponsesStream {
    started: bool,
}

impl ChunkDecoder for ResponsesStream {
    fn push(&mut self, o: &Obj, out: &mut Vec<StreamEvent>) -> Result<()> {
        let ty = as_str(req(o, "type", "chunk")?, "chunk.type")?;
        match ty {
            "response.created" | "response.in_progress" | "response.completed" | "response.incomplete" | "response.failed" => {
                let resp = as_obj(req(o, "response", "chunk")?, "chunk.response")?;
                if !self.started {
                    self.started = true;
                    out.push(StreamEvent::Start {
                        id: opt_str(resp, "id", "chunk.response")?,
                        model: opt_str(resp, "model", "chunk.response")?,
                    });
                }
                if matches!(ty, "response.completed" | "response.incomplete" | "response.failed") {
                    let has_calls = resp
                        .get("output")
                        .and_then(Value::as_array)
                        .is_some_and(|items| items.iter().any(|i| i.get("type").and_then(Value::as_str) == Some("function_call")));
                    if let Some((reason, raw)) = finish(resp, has_calls)? {
                        out.push(StreamEvent::Finish { reason, raw });
                    }
                    if let Some(u) = resp.get("usage").filter(|u| !u.is_null()) {
                        out.push(StreamEvent::Usage(usage(as_obj(u, "chunk.response.usage")?)?));
                    }
                    if let Some(e) = resp.get("error").filter(|e| !e.is_null()) {
                        out.push(StreamEvent::Error(e.clone()));
                    }
                }
            }
            "response.output_text.delta" => out.push(StreamEvent::TextDelta(as_str(req(o, "delta", "chunk")?, "chunk.delta")?.to_string())),
            "response.output_item.added" => {
                let item = as_obj(req(o, "item", "chunk")?, "chunk.item")?;
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    let index = opt_u64(o, "output_index", "chunk")?.unwrap_or(0);
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: opt_str(item, "call_id", "chunk.item")?,
                        name: opt_str(item, "name", "chunk.item")?.unwrap_or_default(),
                    });
                    if let Some(a) = opt_str(item, "arguments", "chunk.item")?.filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolCallDelta { index, arguments: a });
                    }
                }
            }
            "response.function_call_arguments.delta" => out.push(StreamEvent::ToolCallDelta {
                index: opt_u64(o, "output_index", "chunk")?.unwrap_or(0),
                arguments: as_str(req(o, "delta", "chunk")?, "chunk.delta")?.to_string(),
            }),
            "error" => out.push(StreamEvent::Error(Value::Object(o.clone()))),
            _ => {}
        }
        Ok(())
    }
}
