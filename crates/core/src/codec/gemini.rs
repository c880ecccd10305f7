//! Gemini `generateContent` / `streamGenerateContent` (REST, camelCase).

use serde_json::{json, Value};

use super::normalized::{FinishReason, NormalizedResponse, ToolCall, Usage};
use super::stream::{ChunkDecoder, StreamEvent};
use super::*;

pub(crate) struct Gemini;

const NAME: &str = "gemini_generate_content";

const PARAMS: [(&str, &[&str]); 4] = [
    ("temperature", &["generationConfig", "temperature"]),
    ("max_tokens", &["generationConfig", "maxOutputTokens"]),
    ("top_p", &["generationConfig", "topP"]),
    ("stop", &["generationConfig", "stopSequences"]),
];

fn decode_part(p: &Value, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    if let Some(t) = o.get("text").and_then(Value::as_str) {
        return Ok(text_part(t, unknown_keys(o, &["text"])));
    }
    if let Some(d) = o.get("inlineData").and_then(Value::as_object) {
        if let (Some(mt), Some(data), 2) = (d.get("mimeType").and_then(Value::as_str), d.get("data").and_then(Value::as_str), d.len()) {
            if mt.starts_with("image/") {
                return Ok(object([
                    ("type", Some(json!("image_url"))),
                    ("image_url", Some(json!({"url": format!("data:{mt};base64,{data}")}))),
                    ("extra", unknown_keys(o, &["inlineData"])),
                ]));
            }
        }
    }
    if let Some(d) = o.get("fileData").and_then(Value::as_object) {
        if let (Some(mt), Some(uri), 2) = (d.get("mimeType").and_then(Value::as_str), d.get("fileUri").and_then(Value::as_str), d.len()) {
            if mt.starts_with("image/") {
                return Ok(object([
                    ("type", Some(json!("image_url"))),
                    ("image_url", Some(json!({"url": uri, "mime_type": mt}))),
                    ("extra", unknown_keys(o, &["fileData"])),
                ]));
            }
        }
    }
    if let Some(r) = o.get("functionResponse").and_then(Value::as_object) {
        let rf = format!("{field}.functionResponse");
        return Ok(object([
            ("type", Some(json!("tool_result"))),
            ("tool_call_id", Some(r.get("id").cloned().unwrap_or(Value::Null))),
            ("name", Some(json!(as_str(req(r, "name", &rf)?, &format!("{rf}.name"))?))),
            ("content", Some(r.get("response").cloned().unwrap_or(Value::Null))),
            ("extra", unknown_keys(o, &["functionResponse"])),
        ]));
    }
    Ok(raw(p))
}

fn encode_part(p: &Value, field: &str) -> Result<Value> {
    let o = as_obj(p, field)?;
    if let Some(r) = raw_of(o) {
        return Ok(r.clone());
    }
    let mut out = Obj::new();
    match o.get("type").and_then(Value::as_str) {
        Some("text") => {
            out.insert("text".into(), edited_text(o, field, NAME)?);
        }
        Some("image_url") => {
            only_keys(o, &["type", "image_url"], field, NAME)?;
            let img = as_obj(req(o, "image_url", field)?, &format!("{field}.image_url"))?;
            let url = as_str(req(img, "url", &format!("{field}.image_url"))?, &format!("{field}.image_url.url"))?;
            match parse_data_url(url) {
                Some((mt, data)) => out.insert("inlineData".into(), json!({"mimeType": mt, "data": data})),
                None => {
                    let Some(mt) = img.get("mime_type").and_then(Value::as_str) else {
                        return Err(bad(
                            &format!("{field}.image_url.mime_type"),
                            format!("{NAME} needs the mime_type of an image given by URL"),
                        ));
                    };
                    out.insert("fileData".into(), json!({"mimeType": mt, "fileUri": url}))
                }
            };
        }
        Some("tool_result") => {
            only_keys(o, &["type", "tool_call_id", "name", "content"], field, NAME)?;
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{field}.name"), format!("{NAME} needs the function name of a tool result")))?;
            let mut r = Obj::new();
            if let Some(id) = o.get("tool_call_id").filter(|v| !v.is_null()) {
                r.insert("id".into(), id.clone());
            }
            r.insert("name".into(), json!(name));
            r.insert(
                "response".into(),
                match o.get("content") {
                    Some(v @ Value::Object(_)) => v.clone(),
                    None | Some(Value::Null) => json!({}),
                    Some(other) => json!({ "output": other }),
                },
            );
            out.insert("functionResponse".into(), Value::Object(r));
        }
        other => {
            return Err(bad(
                &format!("{field}.type"),
                format!("{NAME} has no part of type {}", other.map_or("(none)".into(), |t| format!("'{t}'"))),
            ))
        }
    }
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_content(m: &Value, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = match o.get("role") {
        None | Some(Value::Null) => "user",
        Some(r) => as_str(r, &format!("{field}.role"))?,
    };
    let role = match role {
        "user" => "user",
        "model" => "assistant",
        _ => return Ok(json!({"role": "other", "raw": m})),
    };
    let parts = match o.get("parts") {
        None => &[][..],
        Some(p) => as_arr(p, &format!("{field}.parts"))?.as_slice(),
    };
    let mut content = Vec::new();
    let mut calls = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let pf = format!("{field}.parts[{i}]");
        match p.get("functionCall").and_then(Value::as_object) {
            Some(fc) if role == "assistant" => {
                let ff = format!("{pf}.functionCall");
                calls.push(object([
                    ("id", Some(fc.get("id").cloned().unwrap_or(Value::Null))),
                    ("name", Some(json!(as_str(req(fc, "name", &ff)?, &format!("{ff}.name"))?))),
                    ("arguments", Some(json!(args_string(fc.get("args").unwrap_or(&Value::Null))))),
                    ("extra", unknown_keys(as_obj(p, &pf)?, &["functionCall"])),
                ]));
            }
            _ => content.push(decode_part(p, &pf)?),
        }
    }
    let mut out = Obj::new();
    out.insert("role".into(), json!(role));
    out.insert("content".into(), Value::Array(content));
    if !calls.is_empty() {
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(e) = unknown_keys(o, &["role", "parts"]) {
        out.insert("extra".into(), e);
    }
    Ok(Value::Object(out))
}

fn encode_content(m: &Value, base: Option<&Value>, orig: Option<&Value>, field: &str) -> Result<Value> {
    let o = as_obj(m, field)?;
    let role = as_str(req(o, "role", field)?, &format!("{field}.role"))?;
    let grole = match role {
        "other" => return Ok(req(o, "raw", field)?.clone()),
        "user" => "user",
        "assistant" => "model",
        "system" | "developer" => {
            return Err(bad(&format!("{field}.role"), format!("{NAME} has no {role} messages; use instructions (systemInstruction)")))
        }
        "tool" => {
            return Err(bad(&format!("{field}.role"), format!("{NAME} has no tool messages; use a user message with tool_result parts")))
        }
        other => return Err(bad(&format!("{field}.role"), format!("{NAME} has no role '{other}'"))),
    };
    only_keys(o, &["role", "content", "tool_calls"], field, NAME)?;
    if o.contains_key("tool_calls") && role != "assistant" {
        return Err(bad(&format!("{field}.tool_calls"), format!("{NAME} carries function calls only on model (assistant) messages")));
    }
    let orig_parts = orig.and_then(|m| m.get("parts")).and_then(Value::as_array);
    let is_call = |p: &&Value| role == "assistant" && p.get("functionCall").is_some_and(Value::is_object);
    let orig_content: Option<Vec<Value>> = orig_parts.map(|ps| ps.iter().filter(|p| !is_call(p)).cloned().collect());
    let orig_calls: Option<Vec<Value>> = orig_parts.map(|ps| ps.iter().filter(is_call).cloned().collect());
    let mut parts = match o.get("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![json!({"text": s})],
        Some(Value::Array(ps)) => {
            let b = base.and_then(|b| b.get("content")).and_then(Value::as_array).map(|v| &v[..]);
            patch_list(ps, b, orig_content.as_deref(), |i, p, _, _| encode_part(p, &format!("{field}.content[{i}]")))?
        }
        Some(other) => return Err(bad(&format!("{field}.content"), format!("expected a string or an array of parts, got {other}"))),
    };
    if let Some(calls) = o.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = as_arr(calls, &format!("{field}.tool_calls"))?;
        let b = base.and_then(|b| b.get("tool_calls")).and_then(Value::as_array).map(|v| &v[..]);
        parts.extend(patch_list(calls, b, orig_calls.as_deref(), |i, c, _, _| {
            let cf = format!("{field}.tool_calls[{i}]");
            let t = as_obj(c, &cf)?;
            only_keys(t, &["id", "name", "arguments"], &cf, NAME)?;
            let mut fc = Obj::new();
            if let Some(id) = t.get("id").filter(|v| !v.is_null()) {
                fc.insert("id".into(), id.clone());
            }
            fc.insert("name".into(), json!(as_str(req(t, "name", &cf)?, &format!("{cf}.name"))?));
            fc.insert("args".into(), args_object(t.get("arguments").unwrap_or(&Value::Null), &format!("{cf}.arguments"), NAME)?);
            let mut part = Obj::new();
            part.insert("functionCall".into(), Value::Object(fc));
            put_extra(&mut part, t, &cf)?;
            Ok(Value::Object(part))
        })?);
    }
    let mut out = Obj::new();
    out.insert("role".into(), json!(grole));
    out.insert("parts".into(), Value::Array(parts));
    put_extra(&mut out, o, field)?;
    Ok(Value::Object(out))
}

fn decode_system(s: &Value) -> Result<Value> {
    match s {
        Value::String(_) => Ok(s.clone()),
        Value::Object(o) => {
            let parts = as_arr(req(o, "parts", "systemInstruction")?, "systemInstruction.parts")?;
            if let [p] = parts.as_slice() {
                if let Some(t) = p.as_object().filter(|p| p.len() == 1).and_then(|p| p.get("text")).and_then(Value::as_str) {
                    return Ok(json!(t));
                }
            }
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| decode_part(p, &format!("systemInstruction.parts[{i}]")))
                .collect::<Result<_>>()
                .map(Value::Array)
        }
        other => Err(bad("systemInstruction", format!("expected an object {{parts}}, got {other}"))),
    }
}

fn decode_tools(t: &Value) -> Result<Value> {
    let mut out = Vec::new();
    for (i, tool) in as_arr(t, "tools")?.iter().enumerate() {
        let o = as_obj(tool, &format!("tools[{i}]"))?;
        match o.get("functionDeclarations") {
            Some(decls) if o.len() == 1 => {
                for (j, d) in as_arr(decls, &format!("tools[{i}].functionDeclarations"))?.iter().enumerate() {
                    let f = format!("tools[{i}].functionDeclarations[{j}]");
                    let d = as_obj(d, &f)?;
                    out.push(object([
                        ("name", Some(json!(as_str(req(d, "name", &f)?, &format!("{f}.name"))?))),
                        ("description", d.get("description").cloned()),
                        ("parameters", d.get("parameters").cloned()),
                        ("extra", unknown_keys(d, &["name", "description", "parameters"])),
                    ]));
                }
            }
            _ => out.push(json!({"raw": tool})),
        }
    }
    Ok(Value::Array(out))
}

fn encode_tools(e: &Value) -> Result<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut decls_at: Option<usize> = None;
    for (i, t) in as_arr(e, "tools")?.iter().enumerate() {
        let field = format!("tools[{i}]");
        let o = as_obj(t, &field)?;
        if let Some(r) = o.get("raw") {
            out.push(r.clone());
            continue;
        }
        only_keys(o, &["name", "description", "parameters"], &field, NAME)?;
        let mut d = Obj::new();
        d.insert("name".into(), json!(as_str(req(o, "name", &field)?, &format!("{field}.name"))?));
        for k in ["description", "parameters"] {
            if let Some(v) = o.get(k) {
                d.insert(k.into(), v.clone());
            }
        }
        put_extra(&mut d, o, &field)?;
        let at = *decls_at.get_or_insert_with(|| {
            out.push(json!({"functionDeclarations": []}));
            out.len() - 1
        });
        if let Some(list) = out[at].get_mut("functionDeclarations").and_then(Value::as_array_mut) {
            list.push(Value::Object(d));
        }
    }
    Ok(Value::Array(out))
}

const CHOICE: &[&str] = &["toolConfig", "functionCallingConfig"];

fn decode_choice(c: &Value) -> Value {
    let mode = c.get("mode").and_then(Value::as_str);
    let names = c.get("allowedFunctionNames").and_then(Value::as_array);
    let len = c.as_object().map_or(0, |m| m.len());
    match (mode, names) {
        (Some("AUTO"), None) if len == 1 => json!("auto"),
        (Some("NONE"), None) if len == 1 => json!("none"),
        (Some("ANY"), None) if len == 1 => json!("required"),
        (Some("ANY"), Some(n)) if n.len() == 1 && n[0].is_string() && len == 2 => json!({"name": n[0]}),
        _ => json!({"raw": c}),
    }
}

impl ProviderCodec for Gemini {
    fn decode_request(&self, o: &Obj) -> Result<Value> {
        let contents = as_arr(req(o, "contents", "request")?, "contents")?;
        let messages =
            contents.iter().enumerate().map(|(i, m)| decode_content(m, &format!("contents[{i}]"))).collect::<Result<Vec<_>>>()?;
        if let Some(g) = o.get("generationConfig") {
            as_obj(g, "generationConfig")?;
        }
        if let Some(g) = o.get("toolConfig") {
            as_obj(g, "toolConfig")?;
        }
        Ok(object([
            ("model", o.get("model").cloned()),
            ("instructions", o.get("systemInstruction").map(decode_system).transpose()?),
            ("messages", Some(Value::Array(messages))),
            ("params", params_of(o, &PARAMS)),
            ("tools", o.get("tools").map(decode_tools).transpose()?),
            ("tool_choice", get_path(o, CHOICE).map(decode_choice)),
            ("extra", Some(request_extra(o, &self.modeled_paths(o)))),
        ]))
    }

    fn modeled_paths(&self, _o: &Obj) -> Vec<&'static [&'static str]> {
        let mut p: Vec<&'static [&'static str]> = vec![&["model"], &["systemInstruction"], &["contents"], &["tools"], CHOICE];
        p.extend(PARAMS.iter().map(|(_, path)| *path));
        p
    }

    fn patch(&self, field: &str, e: Option<&Value>, b: Option<&Value>, out: &mut Obj, orig: &Obj) -> Result<()> {
        match field {
            "model" => {
                if !orig.contains_key("model") {
                    return Err(bad("model", format!("{NAME} carries the model in the URL, not the request body")));
                }
                set_or_remove(out, "model", e.map(|m| as_str(m, "model").map(|_| m.clone())).transpose()?)
            }
            "instructions" => {
                let v = match e {
                    None => None,
                    Some(Value::String(s)) => {
                        let mut si = orig.get("systemInstruction").and_then(Value::as_object).cloned().unwrap_or_default();
                        si.insert("parts".into(), json!([{"text": s}]));
                        Some(Value::Object(si))
                    }
                    Some(Value::Array(parts)) => {
                        let bb = b.and_then(Value::as_array).map(|v| &v[..]);
                        let oo = orig.get("systemInstruction").and_then(|s| s.get("parts")).and_then(Value::as_array).map(|v| &v[..]);
                        let ps = patch_list(parts, bb, oo, |i, p, _, _| encode_part(p, &format!("instructions[{i}]")))?;
                        let mut si = orig.get("systemInstruction").and_then(Value::as_object).cloned().unwrap_or_default();
                        si.insert("parts".into(), Value::Array(ps));
                        Some(Value::Object(si))
                    }
                    Some(_) => return Err(bad("instructions", "expected a string or an array of parts")),
                };
                set_or_remove(out, "systemInstruction", v);
            }
            "messages" => {
                let Some(e) = e else { return Err(bad("messages", format!("{NAME} needs contents"))) };
                let e = as_arr(e, "messages")?;
                let bb = b.and_then(Value::as_array).map(|v| &v[..]);
                let oo = orig.get("contents").and_then(Value::as_array).map(|v| &v[..]);
                let v = patch_list(e, bb, oo, |i, m, bm, om| encode_content(m, bm, om, &format!("messages[{i}]")))?;
                out.insert("contents".into(), Value::Array(v));
            }
            "params" => patch_params(e, out, &PARAMS, NAME)?,
            "tools" => set_or_remove(out, "tools", e.map(encode_tools).transpose()?),
            "tool_choice" => {
                let v = match e {
                    None => None,
                    Some(Value::String(s)) if s == "auto" => Some(json!({"mode": "AUTO"})),
                    Some(Value::String(s)) if s == "none" => Some(json!({"mode": "NONE"})),
                    Some(Value::String(s)) if s == "required" => Some(json!({"mode": "ANY"})),
                    Some(Value::Object(m)) if m.get("raw").is_some() => m.get("raw").cloned(),
                    Some(Value::Object(m)) if m.len() == 1 && m.get("name").is_some_and(Value::is_string) => {
                        Some(json!({"mode": "ANY", "allowedFunctionNames": [m["name"]]}))
                    }
                    Some(_) => return Err(bad("tool_choice", format!("{NAME} accepts auto, none, required or {{\"name\": ...}}"))),
                };
                match v {
                    Some(v) => set_path(out, CHOICE, v),
                    None => remove_path(out, CHOICE),
                }
            }
            "stream" => {
                return Err(bad("stream", format!("{NAME} selects streaming by endpoint (streamGenerateContent), not by a request field")));
            }
            _ => {}
        }
        Ok(())
    }

    fn decode_response(&self, o: &Obj) -> Result<NormalizedResponse> {
        let mut r = NormalizedResponse {
            id: opt_str(o, "responseId", "response")?,
            model: opt_str(o, "modelVersion", "response")?,
            ..Default::default()
        };
        let candidates = match o.get("candidates") {
            None => &[][..],
            Some(c) => as_arr(c, "candidates")?.as_slice(),
        };
        if let Some(c) = candidates.first() {
            let c = as_obj(c, "candidates[0]")?;
            if let Some(content) = c.get("content").filter(|c| !c.is_null()) {
                let content = as_obj(content, "candidates[0].content")?;
                if let Some(parts) = content.get("parts") {
                    for (i, p) in as_arr(parts, "candidates[0].content.parts")?.iter().enumerate() {
                        part_events(p, &format!("candidates[0].content.parts[{i}]"), i as u64, &mut |e| match e {
                            StreamEvent::TextDelta(t) => r.text.push_str(&t),
                            StreamEvent::ToolCallStart { id, name, .. } => {
                                r.tool_calls.push(ToolCall { id, name, arguments: String::new() })
                            }
                            StreamEvent::ToolCallDelta { arguments, .. } => {
                                if let Some(c) = r.tool_calls.last_mut() {
                                    c.arguments = arguments;
                                }
                            }
                            _ => {}
                        })?;
                    }
                }
            }
            if let Some(f) = opt_str(c, "finishReason", "candidates[0]")? {
                r.finish_reason = Some(finish(&f, !r.tool_calls.is_empty()));
                r.finish_reason_raw = Some(json!(f));
            }
        } else if let Some(block) = o.get("promptFeedback").and_then(|p| p.get("blockReason")).and_then(Value::as_str) {
            r.finish_reason = Some(FinishReason::ContentFilter);
            r.finish_reason_raw = Some(json!(block));
        }
        if let Some(u) = o.get("usageMetadata").filter(|u| !u.is_null()) {
            r.usage = Some(usage(as_obj(u, "usageMetadata")?)?);
        }
        r.extra = o
            .iter()
            .filter(|(k, _)| !["responseId", "modelVersion", "candidates", "usageMetadata"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(r)
    }

    fn stream_decoder(&self) -> Box<dyn ChunkDecoder> {
        Box::new(GeminiStream { started: false, calls: 0 })
    }
}

/// The events of one response part (text that is not a thought, or a whole function call).
fn part_events(p: &Value, field: &str, index: u64, emit: &mut dyn FnMut(StreamEvent)) -> Result<()> {
    let p = as_obj(p, field)?;
    if let Some(t) = opt_str(p, "text", field)? {
        if !p.get("thought").and_then(Value::as_bool).unwrap_or(false) && !t.is_empty() {
            emit(StreamEvent::TextDelta(t));
        }
    }
    if let Some(fc) = p.get("functionCall").filter(|f| !f.is_null()) {
        let ff = format!("{field}.functionCall");
        let fc = as_obj(fc, &ff)?;
        emit(StreamEvent::ToolCallStart { index, id: opt_str(fc, "id", &ff)?, name: opt_str(fc, "name", &ff)?.unwrap_or_default() });
        emit(StreamEvent::ToolCallDelta { index, arguments: args_string(fc.get("args").unwrap_or(&Value::Null)) });
    }
    Ok(())
}

fn finish(f: &str, has_calls: bool) -> FinishReason {
    match f {
        "STOP" if has_calls => FinishReason::ToolUse,
        "STOP" => FinishReason::Complete,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => FinishReason::ContentFilter,
        other => FinishReason::Unknown(other.to_string()),
    }
}

/// `candidatesTokenCount` excludes thoughts; the normalized completion counts them.
fn usage(u: &Obj) -> Result<Usage> {
    let candidates = opt_u64(u, "candidatesTokenCount", "usageMetadata")?;
    let thoughts = opt_u64(u, "thoughtsTokenCount", "usageMetadata")?;
    let completion = match (candidates, thoughts) {
        (None, None) => None,
        (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
    };
    Ok(Usage {
        prompt_tokens: opt_u64(u, "promptTokenCount", "usageMetadata")?,
        completion_tokens: completion,
        total_tokens: opt_u64(u, "totalTokenCount", "usageMetadata")?,
        cache_read_tokens: opt_u64(u, "cachedContentTokenCount", "usageMetadata")?,
        cache_write_tokens: None,
        reasoning_tokens: thoughts,
    }
    .with_total())
}

struct GeminiStream {
    started: bool,
    calls: u64,
}

impl ChunkDecoder for GeminiStream {
    fn object_arguments(&self) -> bool {
        true
    }

    fn push(&mut self, o: &Obj, out: &mut Vec<StreamEvent>) -> Result<()> {
        if !self.started {
            let (id, model) = (opt_str(o, "responseId", "chunk")?, opt_str(o, "modelVersion", "chunk")?);
            if id.is_some() || model.is_some() {
                self.started = true;
                out.push(StreamEvent::Start { id, model });
            }
        }
        if let Some(cands) = o.get("candidates").filter(|c| !c.is_null()) {
            if let Some(c) = as_arr(cands, "chunk.candidates")?.first() {
                let c = as_obj(c, "chunk.candidates[0]")?;
                if let Some(content) = c.get("content").filter(|c| !c.is_null()) {
                    let content = as_obj(content, "chunk.candidates[0].content")?;
                    if let Some(parts) = content.get("parts") {
                        for (i, p) in as_arr(parts, "chunk.candidates[0].content.parts")?.iter().enumerate() {
                            let calls = &mut self.calls;
                            let mut started_call = false;
                            part_events(p, &format!("chunk.candidates[0].content.parts[{i}]"), *calls, &mut |e| {
                                started_call |= matches!(e, StreamEvent::ToolCallStart { .. });
                                out.push(e)
                            })?;
                            if started_call {
                                *calls += 1;
                            }
                        }
                    }
                }
                if let Some(f) = opt_str(c, "finishReason", "chunk.candidates[0]")? {
                    out.push(StreamEvent::Finish { reason: finish(&f, self.calls > 0), raw: json!(f) });
                }
            }
        }
        if let Some(u) = o.get("usageMetadata").filter(|u| !u.is_null()) {
            out.push(StreamEvent::Usage(usage(as_obj(u, "chunk.usageMetadata")?)?));
        }
        Ok(())
    }
}
