//! Provider codecs (DESIGN.md §2.8): one normalized view of OpenAI Chat Completions, OpenAI
//! Responses, Anthropic Messages and Gemini generateContent traffic.
//!
//! Every entry point is JSON in, JSON out, so the bindings can expose it as is:
//!
//! - [`decode_request`] turns a provider request body into the normalized request;
//! - [`encode_request`] patches an edited normalized request back into the original body,
//!   touching only what changed, so `encode(decode(x), x) == x` and unknown fields survive;
//! - [`decode_response`] normalizes a buffered response ([`NormalizedResponse`]);
//! - [`StreamDecoder`] turns each stream chunk into [`StreamEvent`]s and [`Collector`]
//!   aggregates a stream into the same normalized response as the buffered call;
//! - [`detect_request`] / [`detect_response`] / [`detect_chunk`] pick a codec from the shape,
//!   and return `None` when the shape is ambiguous or unknown (never a wrong codec).
//!
//! The shapes are documented in `docs/codecs.md`. Decoders never panic: malformed input is
//! an `invalid_argument` error naming the offending field.

/// The examples of docs/codecs.md, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../../../docs/codecs.md")]
struct CodecsGuide;

mod anthropic;
mod gemini;
pub mod normalized;
mod openai_chat;
mod openai_responses;
pub mod stream;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub use normalized::{FinishReason, NormalizedResponse, ToolCall, Usage};
pub use stream::{aggregate_stream, aggregate_stream_json, Collector, StreamDecoder, StreamEvent};

pub(crate) type Obj = Map<String, Value>;

/// The four provider formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    OpenAiChat,
    OpenAiResponses,
    AnthropicMessages,
    GeminiGenerateContent,
}

impl CodecKind {
    /// Every codec, in detection order.
    pub const ALL: [CodecKind; 4] =
        [CodecKind::OpenAiChat, CodecKind::OpenAiResponses, CodecKind::AnthropicMessages, CodecKind::GeminiGenerateContent];

    /// The codec's name: `openai_chat`, `openai_responses`, `anthropic_messages`,
    /// `gemini_generate_content`.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::OpenAiChat => "openai_chat",
            CodecKind::OpenAiResponses => "openai_responses",
            CodecKind::AnthropicMessages => "anthropic_messages",
            CodecKind::GeminiGenerateContent => "gemini_generate_content",
        }
    }

    fn codec(self) -> &'static dyn ProviderCodec {
        match self {
            CodecKind::OpenAiChat => &openai_chat::OpenAiChat,
            CodecKind::OpenAiResponses => &openai_responses::OpenAiResponses,
            CodecKind::AnthropicMessages => &anthropic::Anthropic,
            CodecKind::GeminiGenerateContent => &gemini::Gemini,
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodecKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CodecKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            Error::invalid_argument(format!(
                "codec: unknown codec '{s}' (expected openai_chat, openai_responses, anthropic_messages, gemini_generate_content or auto)"
            ))
        })
    }
}

/// A codec choice: a fixed codec, or `auto` (detect from the payload's shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Auto,
    Kind(CodecKind),
}

impl Codec {
    /// Parses `auto` or a codec name.
    pub fn parse(s: &str) -> Result<Codec> {
        if s == "auto" {
            Ok(Codec::Auto)
        } else {
            s.parse().map(Codec::Kind)
        }
    }

    /// The codec's name (`auto` or the kind's name).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Auto => "auto",
            Codec::Kind(k) => k.name(),
        }
    }

    /// The fixed codec, or the one detected from `request`'s shape.
    pub fn for_request(self, request: &Value) -> Option<CodecKind> {
        match self {
            Codec::Kind(k) => Some(k),
            Codec::Auto => detect_request(request),
        }
    }

    /// The fixed codec, or the one detected from `response`'s shape.
    pub fn for_response(self, response: &Value) -> Option<CodecKind> {
        match self {
            Codec::Kind(k) => Some(k),
            Codec::Auto => detect_response(response),
        }
    }
}

impl From<CodecKind> for Codec {
    fn from(k: CodecKind) -> Codec {
        Codec::Kind(k)
    }
}

impl FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Codec::parse(s)
    }
}

/// What each provider codec implements.
pub(crate) trait ProviderCodec: Sync {
    fn decode_request(&self, request: &Obj) -> Result<Value>;
    /// Every provider path the normalized request models (present or not) for this original;
    /// everything else is `extra`.
    fn modeled_paths(&self, original: &Obj) -> Vec<&'static [&'static str]>;
    /// Writes the edited normalized `field` (None = removed) into `out`.
    fn patch(&self, field: &str, edited: Option<&Value>, base: Option<&Value>, out: &mut Obj, original: &Obj) -> Result<()>;
    fn decode_response(&self, response: &Obj) -> Result<NormalizedResponse>;
    fn stream_decoder(&self) -> Box<dyn stream::ChunkDecoder>;
}

/// Top-level fields of the normalized request, in patch order.
const FIELDS: [&str; 7] = ["model", "instructions", "messages", "params", "tools", "tool_choice", "stream"];

/// Decodes a provider request body into the normalized request.
pub fn decode_request(kind: CodecKind, request: &Value) -> Result<Value> {
    let obj = as_obj(request, "request")?;
    kind.codec().decode_request(obj)
}

/// Encodes an edited normalized request back into `original`, patching only the fields that
/// differ from `decode_request(original)`. An edit the format cannot carry is
/// `invalid_argument`, naming the field.
pub fn encode_request(kind: CodecKind, edited: &Value, original: &Value) -> Result<Value> {
    let codec = kind.codec();
    let orig = as_obj(original, "original")?;
    let base = codec.decode_request(orig)?;
    if edited == &base {
        return Ok(original.clone());
    }
    let ed = as_obj(edited, "normalized")?;
    if let Some(k) = ed.keys().find(|k| !FIELDS.contains(&k.as_str()) && *k != "extra") {
        return Err(bad(k, format!("not a field of the normalized request ({})", kind.name())));
    }
    let mut out = orig.clone();
    let base_extra = base.get("extra");
    let ed_extra = ed.get("extra");
    if ed_extra != base_extra {
        let empty = Obj::new();
        let new_extra = match ed_extra {
            None | Some(Value::Null) => &empty,
            Some(v) => as_obj(v, "extra")?,
        };
        let paths = codec.modeled_paths(orig);
        for p in &paths {
            if get_path(new_extra, p).is_some() {
                return Err(bad(
                    &format!("extra.{}", p.join(".")),
                    format!("modeled by the normalized request; edit the normalized field instead ({})", kind.name()),
                ));
            }
        }
        let mut rebuilt = new_extra.clone();
        for p in &paths {
            if let Some(v) = get_path(orig, p) {
                set_path(&mut rebuilt, p, v.clone());
            }
        }
        out = rebuilt;
    }
    let base_obj = base.as_object();
    for f in FIELDS {
        let (e, b) = (ed.get(f).filter(|v| !v.is_null()), base_obj.and_then(|o| o.get(f)).filter(|v| !v.is_null()));
        if e != b {
            codec.patch(f, e, b, &mut out, orig)?;
        }
    }
    Ok(Value::Object(out))
}

/// Normalizes a buffered provider response.
pub fn decode_response(kind: CodecKind, response: &Value) -> Result<NormalizedResponse> {
    kind.codec().decode_response(as_obj(response, "response")?)
}

/// [`decode_response`] as JSON (what the bindings and events carry).
pub fn decode_response_json(kind: CodecKind, response: &Value) -> Result<Value> {
    decode_response(kind, response).map(|r| r.to_json())
}

// ----- detection -----

/// The codec a request body belongs to, or `None` when its shape is unknown or ambiguous.
pub fn detect_request(request: &Value) -> Option<CodecKind> {
    let o = request.as_object()?;
    let has = |k: &str| o.contains_key(k);
    if has("contents") {
        return (!has("messages") && !has("input")).then_some(CodecKind::GeminiGenerateContent);
    }
    if has("input") || (has("instructions") && !has("messages")) || has("previous_response_id") || has("max_output_tokens") {
        return (!has("messages")).then_some(CodecKind::OpenAiResponses);
    }
    let messages = o.get("messages")?.as_array()?;
    let mut anthropic =
        has("system") || has("stop_sequences") || has("top_k") || o.get("metadata").is_some_and(|m| m.get("user_id").is_some());
    let mut openai =
        ["max_completion_tokens", "n", "response_format", "frequency_penalty", "presence_penalty", "logprobs", "seed", "stream_options"]
            .iter()
            .any(|k| has(k));
    if let Some(tools) = o.get("tools").and_then(Value::as_array) {
        for t in tools {
            if t.get("function").is_some() {
                openai = true;
            }
            if t.get("input_schema").is_some() {
                anthropic = true;
            }
        }
    }
    if let Some(tc) = o.get("tool_choice") {
        if tc.is_string() || tc.get("function").is_some() {
            openai = true;
        } else if tc.get("type").and_then(Value::as_str).is_some_and(|t| ["any", "tool"].contains(&t) || tc.get("name").is_some()) {
            anthropic = true;
        }
    }
    for m in messages {
        if let Some("system" | "developer" | "tool" | "function") = m.get("role").and_then(Value::as_str) {
            openai = true;
        }
        if m.get("tool_calls").is_some() || m.get("tool_call_id").is_some() {
            openai = true;
        }
        if let Some(parts) = m.get("content").and_then(Value::as_array) {
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("image_url" | "input_audio" | "file" | "refusal") => openai = true,
                    Some("tool_use" | "tool_result" | "image" | "document" | "thinking" | "redacted_thinking") => anthropic = true,
                    Some("text") if p.get("cache_control").is_some() => anthropic = true,
                    _ => {}
                }
            }
        }
    }
    match (openai, anthropic) {
        (true, false) => Some(CodecKind::OpenAiChat),
        (false, true) => Some(CodecKind::AnthropicMessages),
        _ => None,
    }
}

/// The codec a buffered response belongs to, or `None`.
pub fn detect_response(response: &Value) -> Option<CodecKind> {
    let o = response.as_object()?;
    let object = o.get("object").and_then(Value::as_str);
    let mut found = Vec::new();
    if object == Some("chat.completion") || (object.is_none() && o.get("choices").is_some_and(Value::is_array)) {
        found.push(CodecKind::OpenAiChat);
    }
    if object == Some("response") || (object.is_none() && o.get("output").is_some_and(Value::is_array)) {
        found.push(CodecKind::OpenAiResponses);
    }
    if o.get("type").and_then(Value::as_str) == Some("message") && o.get("content").is_some_and(Value::is_array) {
        found.push(CodecKind::AnthropicMessages);
    }
    if o.get("candidates").is_some_and(Value::is_array) || (o.contains_key("usageMetadata") && o.contains_key("modelVersion")) {
        found.push(CodecKind::GeminiGenerateContent);
    }
    (found.len() == 1).then(|| found[0])
}

/// The codec a stream chunk belongs to, or `None`.
pub fn detect_chunk(chunk: &Value) -> Option<CodecKind> {
    let o = chunk.as_object()?;
    if o.get("object").and_then(Value::as_str) == Some("chat.completion.chunk") {
        return Some(CodecKind::OpenAiChat);
    }
    if let Some(t) = o.get("type").and_then(Value::as_str) {
        if t.starts_with("response.") {
            return Some(CodecKind::OpenAiResponses);
        }
        if matches!(
            t,
            "message_start"
                | "content_block_start"
                | "content_block_delta"
                | "content_block_stop"
                | "message_delta"
                | "message_stop"
                | "ping"
        ) {
            return Some(CodecKind::AnthropicMessages);
        }
        return None;
    }
    if o.get("choices").and_then(Value::as_array).is_some_and(|c| c.iter().any(|c| c.get("delta").is_some())) {
        return Some(CodecKind::OpenAiChat);
    }
    if o.get("candidates").is_some_and(Value::is_array) || o.contains_key("usageMetadata") {
        return Some(CodecKind::GeminiGenerateContent);
    }
    None
}

// ----- helpers shared by the codecs -----

/// An `invalid_argument` error about `field`.
pub(crate) fn bad(field: &str, msg: impl fmt::Display) -> Error {
    Error::invalid_argument(format!("{field}: {msg}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn as_obj<'a>(v: &'a Value, field: &str) -> Result<&'a Obj> {
    v.as_object().ok_or_else(|| bad(field, format!("expected an object, got {}", type_name(v))))
}

pub(crate) fn as_arr<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| bad(field, format!("expected an array, got {}", type_name(v))))
}

pub(crate) fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| bad(field, format!("expected a string, got {}", type_name(v))))
}

/// A required key.
pub(crate) fn req<'a>(o: &'a Obj, key: &str, field: &str) -> Result<&'a Value> {
    o.get(key).ok_or_else(|| bad(&format!("{field}.{key}"), "missing"))
}

/// An optional string (`null` counts as absent).
pub(crate) fn opt_str(o: &Obj, key: &str, field: &str) -> Result<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_str(v, &format!("{field}.{key}")).map(|s| Some(s.to_string())),
    }
}

/// An optional non-negative integer (`null` counts as absent).
pub(crate) fn opt_u64(o: &Obj, key: &str, field: &str) -> Result<Option<u64>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| bad(&format!("{field}.{key}"), format!("expected a non-negative integer, got {v}"))),
    }
}

/// The keys of `o` not in `known`, or `None` when there are none.
pub(crate) fn unknown_keys(o: &Obj, known: &[&str]) -> Option<Value> {
    let rest: Obj = o.iter().filter(|(k, _)| !known.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!rest.is_empty()).then_some(Value::Object(rest))
}

/// Copies a normalized item's `extra` into a provider object; a key the codec models is an error.
pub(crate) fn put_extra(target: &mut Obj, norm: &Obj, field: &str) -> Result<()> {
    match norm.get("extra") {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            for (k, v) in as_obj(v, &format!("{field}.extra"))? {
                if target.contains_key(k) {
                    return Err(bad(&format!("{field}.extra.{k}"), "modeled by the normalized form; edit that field instead"));
                }
                target.insert(k.clone(), v.clone());
            }
            Ok(())
        }
    }
}

/// Rejects keys of a normalized item that the codec does not know.
pub(crate) fn only_keys(o: &Obj, known: &[&str], field: &str, codec: &str) -> Result<()> {
    match o.keys().find(|k| !known.contains(&k.as_str()) && *k != "extra") {
        Some(k) => Err(bad(&format!("{field}.{k}"), format!("{codec} cannot represent this field here"))),
        None => Ok(()),
    }
}

pub(crate) fn get_path<'a>(o: &'a Obj, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let v = o.get(*first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        get_path(v.as_object()?, rest)
    }
}

pub(crate) fn set_path(o: &mut Obj, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        o.insert(first.to_string(), value);
        return;
    }
    let entry = o.entry(first.to_string()).or_insert_with(|| Value::Object(Obj::new()));
    if !entry.is_object() {
        *entry = Value::Object(Obj::new());
    }
    if let Some(inner) = entry.as_object_mut() {
        set_path(inner, rest, value);
    }
}

/// Removes a path; a container emptied by the removal is removed too.
pub(crate) fn remove_path(o: &mut Obj, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        o.remove(*first);
        return;
    }
    if let Some(inner) = o.get_mut(*first).and_then(Value::as_object_mut) {
        let was_empty = inner.is_empty();
        remove_path(inner, rest);
        if inner.is_empty() && !was_empty {
            o.remove(*first);
        }
    }
}

/// The `extra` of a request: the original minus every modeled path.
pub(crate) fn request_extra(o: &Obj, paths: &[&[&str]]) -> Value {
    let mut extra = o.clone();
    for p in paths {
        remove_path(&mut extra, p);
    }
    Value::Object(extra)
}

/// Encodes an edited list element by element: an element equal to its counterpart in `base`
/// keeps the original provider element (byte for byte); others are encoded from the edit.
pub(crate) fn patch_list(
    edited: &[Value],
    base: Option<&[Value]>,
    original: Option<&[Value]>,
    mut encode: impl FnMut(usize, &Value, Option<&Value>, Option<&Value>) -> Result<Value>,
) -> Result<Vec<Value>> {
    let aligned = match (base, original) {
        (Some(b), Some(o)) if b.len() == o.len() => Some((b, o)),
        _ => None,
    };
    edited
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let pair = aligned.and_then(|(b, o)| b.get(i).zip(o.get(i)));
            match pair {
                Some((b, o)) if b == e => Ok(o.clone()),
                Some((b, o)) => encode(i, e, Some(b), Some(o)),
                None => encode(i, e, None, None),
            }
        })
        .collect()
}

/// A tool call's arguments as a string: objects from Anthropic/Gemini are serialized compactly.
pub(crate) fn args_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_string(),
        other => other.to_string(),
    }
}

/// Parses tool-call arguments for formats that carry them as JSON objects.
pub(crate) fn args_object(v: &Value, field: &str, codec: &str) -> Result<Value> {
    match v {
        Value::String(s) if s.trim().is_empty() => Ok(Value::Object(Obj::new())),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(o @ Value::Object(_)) => Ok(o),
            _ => Err(bad(field, format!("{codec} needs the arguments to be a JSON object (text)"))),
        },
        o @ Value::Object(_) => Ok(o.clone()),
        other => Err(bad(field, format!("{codec} needs the arguments to be a JSON object, got {}", type_name(other)))),
    }
}

/// Splits a `data:<mime>;base64,<data>` URL.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

/// A normalized text part.
/// The text of an edited `{"type": "text", "text"}` part, which may carry nothing else.
pub(crate) fn edited_text(o: &Obj, field: &str, codec: &str) -> Result<Value> {
    only_keys(o, &["type", "text"], field, codec)?;
    Ok(Value::from(as_str(req(o, "text", field)?, &format!("{field}.text"))?))
}

/// Sets `key` to `v`, or removes it when `v` is `None`.
pub(crate) fn set_or_remove(out: &mut Obj, key: &str, v: Option<Value>) {
    match v {
        Some(v) => {
            out.insert(key.into(), v);
        }
        None => {
            out.remove(key);
        }
    }
}

/// An edited `stream` flag: a boolean, or absent.
pub(crate) fn edited_stream(e: Option<&Value>) -> Result<Option<Value>> {
    e.map(|s| if s.is_boolean() { Ok(s.clone()) } else { Err(bad("stream", "expected a boolean")) }).transpose()
}

pub(crate) fn text_part(text: &str, extra: Option<Value>) -> Value {
    let mut p = Obj::new();
    p.insert("type".into(), "text".into());
    p.insert("text".into(), text.into());
    if let Some(e) = extra {
        p.insert("extra".into(), e);
    }
    Value::Object(p)
}

/// A normalized raw part / message / tool for what the codec does not model.
pub(crate) fn raw(v: &Value) -> Value {
    let mut p = Obj::new();
    p.insert("type".into(), "raw".into());
    p.insert("raw".into(), v.clone());
    Value::Object(p)
}

/// The `raw` payload of a normalized raw item, if it is one.
pub(crate) fn raw_of(o: &Obj) -> Option<&Value> {
    (o.get("type").and_then(Value::as_str) == Some("raw")).then(|| o.get("raw")).flatten()
}

/// Builds a JSON object from key/value pairs, skipping `None`s.
pub(crate) fn object(pairs: impl IntoIterator<Item = (&'static str, Option<Value>)>) -> Value {
    Value::Object(pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))).collect())
}

/// The normalized `params` object (or `None` when empty).
pub(crate) fn params_of(o: &Obj, table: &[(&str, &[&str])]) -> Option<Value> {
    let p: Obj = table.iter().filter_map(|(norm, path)| get_path(o, path).map(|v| (norm.to_string(), v.clone()))).collect();
    (!p.is_empty()).then_some(Value::Object(p))
}

/// Writes edited `params` through a table of `normalized name → provider path`.
pub(crate) fn patch_params(edited: Option<&Value>, out: &mut Obj, table: &[(&str, &[&str])], codec: &str) -> Result<()> {
    let empty = Obj::new();
    let e = match edited {
        None => &empty,
        Some(v) => as_obj(v, "params")?,
    };
    for k in e.keys() {
        if !table.iter().any(|(n, _)| n == k) {
            return Err(bad(
                &format!("params.{k}"),
                format!("{codec} has no such parameter (known: temperature, max_tokens, top_p, stop; others live in extra)"),
            ));
        }
    }
    for (norm, path) in table {
        match e.get(*norm).filter(|v| !v.is_null()) {
            None => remove_path(out, path),
            Some(v) => {
                let field = format!("params.{norm}");
                let v = match *norm {
                    "temperature" | "top_p" => {
                        if !v.is_number() {
                            return Err(bad(&field, "expected a number"));
                        }
                        v.clone()
                    }
                    "max_tokens" => {
                        if v.as_u64().is_none() {
                            return Err(bad(&field, "expected a non-negative integer"));
                        }
                        v.clone()
                    }
                    "stop" => check_stop(v, &field, path.last() != Some(&"stop"))?,
                    _ => v.clone(),
                };
                if get_path(out, path) != Some(&v) {
                    set_path(out, path, v);
                }
            }
        }
    }
    Ok(())
}

fn check_stop(v: &Value, field: &str, array_only: bool) -> Result<Value> {
    match v {
        Value::String(s) if array_only => Ok(Value::Array(vec![Value::String(s.clone())])),
        Value::String(_) => Ok(v.clone()),
        Value::Array(a) if a.iter().all(Value::is_string) => Ok(v.clone()),
        _ => Err(bad(field, "expected a string or an array of strings")),
    }
}
