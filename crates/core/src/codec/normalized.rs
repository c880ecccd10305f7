//! The normalized response (DESIGN.md §2.8), typed, with its JSON form.
//!
//! The normalized *request* is plain JSON (documented in `docs/codecs.md`): it is what
//! middleware edits, in every language, and the codecs patch it back field by field.

use serde_json::{json, Map, Value};

/// Why generation stopped, normalized; the provider's own value is kept beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    Complete,
    Length,
    ToolUse,
    ContentFilter,
    Unknown(String),
}

impl FinishReason {
    /// `"complete"`, `"length"`, `"tool_use"`, `"content_filter"` or `{"unknown": raw}`.
    pub fn to_json(&self) -> Value {
        match self {
            FinishReason::Complete => json!("complete"),
            FinishReason::Length => json!("length"),
            FinishReason::ToolUse => json!("tool_use"),
            FinishReason::ContentFilter => json!("content_filter"),
            FinishReason::Unknown(raw) => json!({ "unknown": raw }),
        }
    }
}

/// Token usage. `prompt_tokens` counts every input token (cached ones included) and
/// `completion_tokens` every output token (reasoning included), whatever the provider's split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Fills `total_tokens` from prompt + completion when the provider did not give it.
    pub(crate) fn with_total(mut self) -> Usage {
        if self.total_tokens.is_none() {
            if let (Some(p), Some(c)) = (self.prompt_tokens, self.completion_tokens) {
                self.total_tokens = Some(p.saturating_add(c));
            }
        }
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("prompt_tokens", self.prompt_tokens),
            ("completion_tokens", self.completion_tokens),
            ("total_tokens", self.total_tokens),
            ("cache_read_tokens", self.cache_read_tokens),
            ("cache_write_tokens", self.cache_write_tokens),
            ("reasoning_tokens", self.reasoning_tokens),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

/// One tool call the model asked for. `arguments` is JSON text (as OpenAI sends it; Anthropic
/// and Gemini objects are serialized compactly). `id` is `None` when the provider gives none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    pub id: Option<String>,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "arguments": self.arguments})
    }
}

/// A normalized response: the first choice / candidate of a buffered response, or a whole
/// stream aggregated by [`super::Collector`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NormalizedResponse {
    pub id: Option<String>,
    pub model: Option<String>,
    /// The assistant's text (all text parts concatenated; reasoning/thought text excluded).
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<FinishReason>,
    /// The provider's own finish value (e.g. `"end_turn"`, `"STOP"`).
    pub finish_reason_raw: Option<Value>,
    pub usage: Option<Usage>,
    /// Top-level response fields the codec does not model (empty for aggregated streams).
    pub extra: Map<String, Value>,
}

impl NormalizedResponse {
    /// The JSON form: `{id?, model?, message?, tool_calls?, finish_reason?, finish_reason_raw?,
    /// usage?, extra}`; `message = {"role": "assistant", "content": text}` when there is text.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(id) = &self.id {
            m.insert("id".into(), json!(id));
        }
        if let Some(model) = &self.model {
            m.insert("model".into(), json!(model));
        }
        if !self.text.is_empty() {
            m.insert("message".into(), json!({"role": "assistant", "content": self.text}));
        }
        if !self.tool_calls.is_empty() {
            m.insert("tool_calls".into(), Value::Array(self.tool_calls.iter().map(ToolCall::to_json).collect()));
        }
        if let Some(f) = &self.finish_reason {
            m.insert("finish_reason".into(), f.to_json());
        }
        if let Some(raw) = &self.finish_reason_raw {
            m.insert("finish_reason_raw".into(), raw.clone());
        }
        if let Some(u) = &self.usage {
            m.insert("usage".into(), u.to_json());
        }
        m.insert("extra".into(), Value::Object(self.extra.clone()));
        Value::Object(m)
    }
}
