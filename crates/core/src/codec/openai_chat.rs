//! OpenAI Chat Completions (`POST /v1/chat/completions`).

use serde_json::{json, Value};

use super::normalized::{FinishReason, NormalizedResponse, ToolCall, Usage};
use super::stream::{ChunkDecoder, StreamEvent};
use super::*;

pub(crate) struct OpenAiChat;

const NAME: &str = "openai_chat";

fn max_key(o: &Obj) -> &'static str {
    if o.contains_key("max_completion_tokens") || !o.contains_key("max_tokens") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

fn param_table(o: &Obj) -> [(&'static str, &'static [&'static str]); 4] {
    let max: &'static [&'static str] = if max_key(o) == "max_tokens" { &["max_tokens"] } else { &["max_completion_tokens"] };
    [("temperature", &["temperature"]), ("max_tokens", max), ("top_p", &["top_p"]), ("stop", &["stop"])]
}

fn decode_part(p: &Value, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    match o.get("type").and_then(Value::as_str) {
        Some("text") => Ok(text_part(as_str(req(o, "text", field)?, &format!("{field}.text"))?, unknown_keys(o, &["type", "text"]))),
        Some("image_url") => {
            let img = as_obj(req(o, "image_url", field)?, &format!("{field}.image_url"))?;
            as_str(req(img, "url", &format!("{field}.image_url"))?, &format!("{field}.image_url.url"))?;
            Ok(object([
                ("type", Some(json!("image_url"))),
                ("image_url", Some(Value::Object(img.clone()))),
                ("extra", unknown_keys(o, &["type", "image_url"])),
            ]))
        }
        _ => Ok(raw(p)),
    }
}

fn encode_part(p: &Value, field: &str) -> Result<Value> {
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
            as_str(req(img, "url", &format!("{field}.image_url"))?, &format!("{field}.image_url.url"))?;
            out.insert("type".into(), "image_url".into());
            out.insert("image_url".into(), Value::Object(img.clone()));
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
        Value::Null | Value::String(_) => Ok(c.clone()),
        Value::Array(parts) => {
            parts.iter().enumerate().map(|(i, p)| decode_part(p, &format!("{field}[{i}]"))).collect::<Result<_>>().map(Value::Array)
        }
        other => Err(bad(field, format!("expected a string, null or an array of parts, got {other}"))),
    }
}

fn encode_content(c: &Value, base: Option<&Value>, orig: Option<&Value>, field: &str) -> Result<Value> {
    match c {
        Value::Null | Value::String(_) => Ok(c.clone()),
        Value::Array(parts) => patch_list(
            parts,
            base.and_then(Value::as_array).map(|v| &v[..]),
            orig.and_then(Value::as_array).map(|v| &v[..]),
            |i, p, _, _| encode_part(p, &format!("{field}[{i}]")),
        )
        .map(Value::Array),
        other => Err(bad(field, format!("expected a string, null or an array of parts, got {other}"))),
    }
}

fn decode_tool_call(tc: &Value, field: &str) -> Result<Value> {
    let o = as_obj(tc, field)?;
    if o.get("type").and_then(Value::as_str).unwrap_or("function") != "function" {
        return Ok(raw(tc));
    }
    let f = as_obj(req(o, "function", field)?, &format!("{field}.function"))?;
    let name = as_str(req(f, "name", &format!("{field}.function"))?, &format!("{field}.function.name"))?;
    let args = match f.get("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(v) => as_str(v, &format!("{field}.function.arguments"))?.to_string(),
    };
    let mut extra = unknown_keys(o, &["id", "type", "function"]);
    if let Some(fe) = unknown_keys(f, &["name", "arguments"]) {
        extra.get_or_insert_with(|| json!({})).as_object_mut().map(|e| e.insert("function".into(), fe));
    }
    Ok(object([
        ("id", Some(o.get("id").cloned().unwrap_or(Value::Null))),
        ("name", Some(json!(name))),
        ("arguments", Some(json!(args))),
        ("extra", extra),
    ]))
}

fn encode_tool_call(tc: &Value, field: &str) -> Result<Value> {
    let o = as_obj(tc, field)?;
    if let Some(r) = raw_of(o) {
        return Ok(r.clone());
    }
    only_keys(o, &["id", "name", "arguments"], field, NAME)?;
    let name = as_str(req(o, "name", field)?, &format!("{field}.name"))?;
    let args = match o.get("arguments") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(bad(&format!("{field}.arguments"), "expected JSON text or an object")),
    };
    let mut function = json!({"name": name, "arguments": args});
    let mut out = Obj::new();
    out.insert("id".into(), o.get("id").cloned().unwrap_or(Value::Null));
    out.insert("type".into(), "function".into());
    if let Some(fe) = o.get("extra").and_then(|e| e.get("function")).and_then(Value::as_object) {
        for (k, v) in fe {
            function[k] = v.clone();
        }
    }
    out.insert("function".into(), function);
    if let Some(e) = o.get("extra").and_then(Value::as_object) {
        for (k, v) in e {
            if k != "function" && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

fn decode_message(m: &Value, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = as_str(req(o, "role", field)?, &format!("{field}.role"))?;
    if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
        return Ok(json!({"role": "other", "raw": m}));
    }
    let mut out = Obj::new();
    out.insert("role".into(), json!(role));
    if let Some(c) = o.get("content") {
        out.insert("content".into(), decode_content(c, &format!("{field}.content"))?);
    }
    if let Some(tcs) = o.get("tool_calls") {
        let tcs = as_arr(tcs, &format!("{field}.tool_calls"))?;
        let calls = tcs.iter().enumerate().map(|(i, t)| decode_tool_call(t, &format!("{field}.tool_calls[{i}]"))).collect::<Result<_>>()?;
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = o.get("tool_call_id") {
        out.insert("tool_call_id".into(), id.clone());
    }
    if let Some(e) = unknown_keys(o, &["role", "content", "tool_calls", "tool_call_id"]) {
        out.insert("extra".into(), e);
    }
    Ok(Value::Object(out))
}

fn encode_message(m: &Value, base: Option<&Value>, orig: Option<&Value>, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = as_str(req(o, "role", field)?, &format!("{field}.role"))?;
    if role == "other" {
        return Ok(req(o, "raw", field)?.clone());
    }
    if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
        return Err(bad(&format!("{field}.role"), format!("{NAME} has no role '{role}'")));
    }
    only_keys(o, &["role", "content", "tool_calls", "tool_call_id"], field, NAME)?;
    if o.contains_key("tool_calls") && role != "assistant" {
        return Err(bad(&format!("{field}.tool_calls"), format!("{NAME} carries tool calls only on assistant messages")));
    }
    if role == "tool" && !o.contains_key("tool_call_id") {
        return Err(bad(&format!("{field}.tool_call_id"), format!("{NAME} needs the tool_call_id of a tool message")));
    }
    let mut out = Obj::new();
    out.insert("role".into(), json!(role));
    if let Some(c) = o.get("content") {
        let content =
            encode_content(c, base.and_then(|b| b.get("content")), orig.and_then(|b| b.get("content")), &format!("{field}.content"))?;
        if role == "tool" || role == "system" || role == "developer" {
            if let Some(parts) = content.as_array() {
                if let Some(i) = parts.iter().position(|p| p.get("type").and_then(Value::as_str) != Some("text")) {
                    return Err(bad(&format!("{field}.content[{i}]"), format!("{NAME} allows only text parts in {role} messages")));
                }
            }
        }
        out.insert("content".into(), content);
    }
    if let Some(tcs) = o.get("tool_calls") {
        let tcs = as_arr(tcs, &format!("{field}.tool_calls"))?;
        let base_tcs = base.and_then(|b| b.get("tool_calls")).and_then(Value::as_array).map(|v| &v[..]);
        let orig_tcs = orig.and_then(|b| b.get("tool_calls")).and_then(Value::as_array).map(|v| &v[..]);
        let calls = patch_list(tcs, base_tcs, orig_tcs, |i, t, _, _| encode_tool_call(t, &format!("{field}.tool_calls[{i}]")))?;
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = o.get("tool_call_id") {
        out.insert("tool_call_id".into(), id.clone());
    }
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_tool(t: &Value, field: &str) -> Result<Value> {
    let o = as_obj(t, field)?;
    if o.get("type").and_then(Value::as_str) != Some("function") {
        return Ok(json!({"raw": t}));
    }
    let f = as_obj(req(o, "function", field)?, &format!("{field}.function"))?;
    let name = as_str(req(f, "name", &format!("{field}.function"))?, &format!("{field}.function.name"))?;
    Ok(object([
        ("name", Some(json!(name))),
        ("description", f.get("description").cloned()),
        ("parameters", f.get("parameters").cloned()),
        ("extra", unknown_keys(f, &["name", "description", "parameters"])),
    ]))
}

fn encode_tool(t: &Value, field: &str) -> Result<Value> {
    let o = as_obj(t, field)?;
    if let Some(r) = o.get("raw") {
        return Ok(r.clone());
    }
    only_keys(o, &["name", "description", "parameters"], field, NAME)?;
    let mut f = Obj::new();
    f.insert("name".into(), json!(as_str(req(o, "name", field)?, &format!("{field}.name"))?));
    for k in ["description", "parameters"] {
        if let Some(v) = o.get(k) {
            f.insert(k.into(), v.clone());
        }
    }
    put_extra(&mut f, o, field)?;
    Ok(json!({"type": "function", "function": f}))
}

pub(crate) fn decode_tool_choice_generic(tc: &Value) -> Value {
    match tc {
        Value::String(_) => tc.clone(),
        _ => json!({"raw": tc}),
    }
}

fn patch_list_field(
    edited: Option<&Value>,
    base: Option<&Value>,
    original: Option<&Value>,
    field: &str,
    enc: impl Fn(&Value, &str) -> Result<Value>,
) -> Result<Option<Value>> {
    let Some(e) = edited else { return Ok(None) };
    let e = as_arr(e, field)?;
    let b = base.and_then(Value::as_array).map(|v| &v[..]);
    let o = original.and_then(Value::as_array).map(|v| &v[..]);
    patch_list(e, b, o, |i, t, _, _| enc(t, &format!("{field}[{i}]"))).map(|v| Some(Value::Array(v)))
}

impl ProviderCodec for OpenAiChat {
    fn decode_request(&self, o: &Obj) -> Result<Value> {
        let msgs = as_arr(req(o, "messages", "request")?, "messages")?;
        let messages = msgs.iter().enumerate().map(|(i, m)| decode_message(m, &format!("messages[{i}]"))).collect::<Result<Vec<_>>>()?;
        let tools = match o.get("tools") {
            None => None,
            Some(t) => Some(Value::Array(
                as_arr(t, "tools")?.iter().enumerate().map(|(i, t)| decode_tool(t, &format!("tools[{i}]"))).collect::<Result<_>>()?,
            )),
        };
        let tool_choice = o.get("tool_choice").map(|tc| match tc.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) {
            Some(n) if tc.get("type").and_then(Value::as_str) == Some("function") && tc.as_object().is_some_and(|m| m.len() == 2) => {
                json!({"name": n})
            }
            _ => decode_tool_choice_generic(tc),
        });
        if let Some(m) = o.get("model") {
            as_str(m, "model")?;
        }
        Ok(object([
            ("model", o.get("model").cloned()),
            ("messages", Some(Value::Array(messages))),
            ("params", params_of(o, &param_table(o))),
            ("tools", tools),
            ("tool_choice", tool_choice),
            ("stream", o.get("stream").cloned()),
            ("extra", Some(request_extra(o, &self.modeled_paths(o)))),
        ]))
    }

    fn modeled_paths(&self, o: &Obj) -> Vec<&'static [&'static str]> {
        let mut p: Vec<&'static [&'static str]> = vec![&["model"], &["messages"], &["tools"], &["tool_choice"], &["stream"]];
        p.extend(param_table(o).iter().map(|(_, path)| *path));
        p
    }

    fn patch(&self, field: &str, e: Option<&Value>, b: Option<&Value>, out: &mut Obj, orig: &Obj) -> Result<()> {
        match field {
            "model" => set_or_remove(out, "model", e.map(|m| as_str(m, "model").map(|_| m.clone())).transpose()?),
            "instructions" => {
                return Err(bad(
                    "instructions",
                    format!("{NAME} has no separate instructions; put a system or developer message in messages"),
                ))
            }
            "messages" => {
                let Some(e) = e else { return Err(bad("messages", format!("{NAME} needs messages"))) };
                let e = as_arr(e, "messages")?;
                let b = b.and_then(Value::as_array).map(|v| &v[..]);
                let o = orig.get("messages").and_then(Value::as_array).map(|v| &v[..]);
                let v = patch_list(e, b, o, |i, m, bm, om| encode_message(m, bm, om, &format!("messages[{i}]")))?;
                out.insert("messages".into(), Value::Array(v));
            }
            "params" => patch_params(e, out, &param_table(orig), NAME)?,
            "tools" => set_or_remove(out, "tools", patch_list_field(e, b, orig.get("tools"), "tools", encode_tool)?),
            "tool_choice" => {
                let v = match e {
                    None => None,
                    Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => Some(json!(s)),
                    Some(tc) => match tc.as_object() {
                        Some(m) if m.get("raw").is_some() => m.get("raw").cloned(),
                        Some(m) if m.get("name").is_some_and(Value::is_string) && m.len() == 1 => {
                            Some(json!({"type": "function", "function": {"name": m["name"]}}))
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
        let choices = as_arr(req(o, "choices", "response")?, "choices")?;
        let mut r = NormalizedResponse { id: opt_str(o, "id", "response")?, model: opt_str(o, "model", "response")?, ..Default::default() };
        if let Some(c) = choices.first() {
            let c = as_obj(c, "choices[0]")?;
            if let Some(m) = c.get("message") {
                let m = as_obj(m, "choices[0].message")?;
                match m.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => r.text = s.clone(),
                    Some(Value::Array(parts)) => {
                        for p in parts {
                            if let Some(t) = p.get("text").and_then(Value::as_str) {
                                r.text.push_str(t);
                            }
                        }
                    }
                    Some(v) => return Err(bad("choices[0].message.content", format!("expected a string, got {v}"))),
                }
                if let Some(tcs) = m.get("tool_calls").filter(|v| !v.is_null()) {
                    for (i, tc) in as_arr(tcs, "choices[0].message.tool_calls")?.iter().enumerate() {
                        let field = format!("choices[0].message.tool_calls[{i}]");
                        let t = as_obj(tc, &field)?;
                        let f = as_obj(req(t, "function", &field)?, &format!("{field}.function"))?;
                        r.tool_calls.push(ToolCall {
                            id: opt_str(t, "id", &field)?,
                            name: opt_str(f, "name", &format!("{field}.function"))?.unwrap_or_default(),
                            arguments: opt_str(f, "arguments", &format!("{field}.function"))?.unwrap_or_default(),
                        });
                    }
                }
            }
            if let Some(f) = opt_str(c, "finish_reason", "choices[0]")? {
                r.finish_reason = Some(finish(&f));
                r.finish_reason_raw = Some(json!(f));
            }
        }
        if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
            r.usage = Some(usage(as_obj(u, "usage")?)?);
        }
        r.extra = o
            .iter()
            .filter(|(k, _)| !["id", "model", "choices", "usage"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(r)
    }

    fn stream_decoder(&self) -> Box<dyn ChunkDecoder> {
        Box::new(ChatStream { started: false })
    }
}

fn finish(f: &str) -> FinishReason {
    match f {
        "stop" => FinishReason::Complete,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolUse,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Unknown(other.to_string()),
    }
}

fn usage(u: &Obj) -> Result<Usage> {
    let d = |k: &str| u.get(k).and_then(Value::as_object);
    Ok(Usage {
        prompt_tokens: opt_u64(u, "prompt_tokens", "usage")?,
        completion_tokens: opt_u64(u, "completion_tokens", "usage")?,
        total_tokens: opt_u64(u, "total_tokens", "usage")?,
        cache_read_tokens: d("prompt_tokens_details")
            .map(|p| opt_u64(p, "cached_tokens", "usage.prompt_tokens_details"))
            .transpose()?
            .flatten(),
        cache_write_tokens: None,
        reasoning_tokens: d("completion_tokens_details")
            .map(|p| opt_u64(p, "reasoning_tokens", "usage.completion_tokens_details"))
            .transpose()?
            .flatten(),
    }
    .with_total())
}

struct ChatStream {
    started: bool,
}

impl ChunkDecoder for ChatStream {
    fn push(&mut self, o: &Obj, out: &mut Vec<StreamEvent>) -> Result<()> {
        if !self.started {
            let (id, model) = (opt_str(o, "id", "chunk")?, opt_str(o, "model", "chunk")?);
            if id.is_some() || model.is_some() {
                self.started = true;
                out.push(StreamEvent::Start { id, model });
            }
        }
        if let Some(choices) = o.get("choices") {
            for (ci, c) in as_arr(choices, "chunk.choices")?.iter().enumerate() {
                let field = format!("chunk.choices[{ci}]");
                let c = as_obj(c, &field)?;
                if c.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                    continue;
                }
                if let Some(d) = c.get("delta").filter(|d| !d.is_null()) {
                    let d = as_obj(d, &format!("{field}.delta"))?;
                    if let Some(t) = opt_str(d, "content", &format!("{field}.delta"))? {
                        if !t.is_empty() {
                            out.push(StreamEvent::TextDelta(t));
                        }
                    }
                    if let Some(tcs) = d.get("tool_calls").filter(|v| !v.is_null()) {
                        for (i, tc) in as_arr(tcs, &format!("{field}.delta.tool_calls"))?.iter().enumerate() {
                            let tf = format!("{field}.delta.tool_calls[{i}]");
                            let t = as_obj(tc, &tf)?;
                            let index = opt_u64(t, "index", &tf)?.unwrap_or(i as u64);
                            let f = match t.get("function").filter(|f| !f.is_null()) {
                                Some(f) => Some(as_obj(f, &format!("{tf}.function"))?),
                                None => None,
                            };
                            let name = f.map(|f| opt_str(f, "name", &format!("{tf}.function"))).transpose()?.flatten();
                            let id = opt_str(t, "id", &tf)?;
                            if id.is_some() || name.is_some() {
                                out.push(StreamEvent::ToolCallStart { index, id, name: name.unwrap_or_default() });
                            }
                            if let Some(a) = f.map(|f| opt_str(f, "arguments", &format!("{tf}.function"))).transpose()?.flatten() {
                                if !a.is_empty() {
                                    out.push(StreamEvent::ToolCallDelta { index, arguments: a });
                                }
                            }
                        }
                    }
                }
                if let Some(f) = opt_str(c, "finish_reason", &field)? {
                    out.push(StreamEvent::Finish { reason: finish(&f), raw: json!(f) });
                }
            }
        }
        if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
            out.push(StreamEvent::Usage(usage(as_obj(u, "chunk.usage")?)?));
        }
        Ok(())
    }
}
