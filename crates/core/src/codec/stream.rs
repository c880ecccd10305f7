//! Streaming: each provider's chunks normalized to [`StreamEvent`]s, and a [`Collector`]
//! that aggregates them into the same [`NormalizedResponse`] as the buffered call.

use serde_json::{json, Value};

use super::normalized::{FinishReason, NormalizedResponse, ToolCall, Usage};
use super::{as_obj, CodecKind};
use crate::error::Result;

/// One normalized streaming event.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The response's id and model, when the stream reveals them.
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    TextDelta(String),
    /// A tool call begins; `index` identifies it in later deltas.
    ToolCallStart {
        index: u64,
        id: Option<String>,
        name: String,
    },
    ToolCallDelta {
        index: u64,
        arguments: String,
    },
    Finish {
        reason: FinishReason,
        raw: Value,
    },
    /// Usage so far (cumulative: the last one is the total).
    Usage(Usage),
    /// The provider reported an error inside the stream.
    Error(Value),
}

impl StreamEvent {
    /// `{"type": "start"|"text_delta"|"tool_call_start"|"tool_call_delta"|"finish"|"usage"|"error", ...}`.
    pub fn to_json(&self) -> Value {
        match self {
            StreamEvent::Start { id, model } => json!({"type": "start", "id": id, "model": model}),
            StreamEvent::TextDelta(t) => json!({"type": "text_delta", "text": t}),
            StreamEvent::ToolCallStart { index, id, name } => json!({"type": "tool_call_start", "index": index, "id": id, "name": name}),
            StreamEvent::ToolCallDelta { index, arguments } => json!({"type": "tool_call_delta", "index": index, "arguments": arguments}),
            StreamEvent::Finish { reason, raw } => json!({"type": "finish", "finish_reason": reason.to_json(), "finish_reason_raw": raw}),
            StreamEvent::Usage(u) => json!({"type": "usage", "usage": u.to_json()}),
            StreamEvent::Error(e) => json!({"type": "error", "error": e}),
        }
    }
}

/// A provider's stateful chunk decoder.
pub(crate) trait ChunkDecoder: Send {
    fn push(&mut self, chunk: &super::Obj, out: &mut Vec<StreamEvent>) -> Result<()>;
    /// Formats whose buffered responses carry tool arguments as objects: the collector
    /// re-serializes the streamed text compactly so both agree.
    fn object_arguments(&self) -> bool {
        false
    }
}

/// Decodes a provider's stream chunk by chunk.
pub struct StreamDecoder {
    kind: CodecKind,
    inner: Box<dyn ChunkDecoder>,
}

impl std::fmt::Debug for StreamDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecoder").field("kind", &self.kind).finish()
    }
}

impl StreamDecoder {
    pub fn new(kind: CodecKind) -> StreamDecoder {
        StreamDecoder { kind, inner: kind.codec().stream_decoder() }
    }

    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// The events of one chunk. A malformed chunk is `invalid_argument`; the decoder stays usable.
    pub fn push(&mut self, chunk: &Value) -> Result<Vec<StreamEvent>> {
        let mut out = Vec::new();
        self.inner.push(as_obj(chunk, "chunk")?, &mut out)?;
        Ok(out)
    }
}

/// Aggregates a stream into a [`NormalizedResponse`]. A stream cut short aggregates to what
/// arrived (no `finish_reason`).
#[derive(Debug)]
pub struct Collector {
    decoder: StreamDecoder,
    response: NormalizedResponse,
    /// Stream index of each tool call, in order of appearance.
    indices: Vec<u64>,
    errors: Vec<Value>,
}

impl Collector {
    pub fn new(kind: CodecKind) -> Collector {
        Collector { decoder: StreamDecoder::new(kind), response: NormalizedResponse::default(), indices: Vec::new(), errors: Vec::new() }
    }

    /// Decodes and applies one chunk; returns its events.
    pub fn push(&mut self, chunk: &Value) -> Result<Vec<StreamEvent>> {
        let events = self.decoder.push(chunk)?;
        for e in &events {
            self.apply(e);
        }
        Ok(events)
    }

    /// Applies one already-decoded event.
    pub fn apply(&mut self, event: &StreamEvent) {
        let r = &mut self.response;
        match event {
            StreamEvent::Start { id, model } => {
                if id.is_some() {
                    r.id.clone_from(id);
                }
                if model.is_some() {
                    r.model.clone_from(model);
                }
            }
            StreamEvent::TextDelta(t) => r.text.push_str(t),
            StreamEvent::ToolCallStart { index, id, name } => match self.indices.iter().position(|i| i == index) {
                Some(pos) => {
                    let call = &mut r.tool_calls[pos];
                    if id.is_some() {
                        call.id.clone_from(id);
                    }
                    if !name.is_empty() {
                        call.name.clone_from(name);
                    }
                }
                None => {
                    self.indices.push(*index);
                    r.tool_calls.push(ToolCall { id: id.clone(), name: name.clone(), arguments: String::new() });
                }
            },
            StreamEvent::ToolCallDelta { index, arguments } => {
                let pos = match self.indices.iter().position(|i| i == index) {
                    Some(p) => p,
                    None => {
                        self.indices.push(*index);
                        r.tool_calls.push(ToolCall { id: None, name: String::new(), arguments: String::new() });
                        r.tool_calls.len() - 1
                    }
                };
                r.tool_calls[pos].arguments.push_str(arguments);
            }
            StreamEvent::Finish { reason, raw } => {
                r.finish_reason = Some(reason.clone());
                r.finish_reason_raw = Some(raw.clone());
            }
            StreamEvent::Usage(u) => r.usage = Some(u.clone()),
            StreamEvent::Error(e) => self.errors.push(e.clone()),
        }
    }

    /// The response so far (the collector stays usable).
    pub fn snapshot(&self) -> NormalizedResponse {
        let mut r = self.response.clone();
        if self.decoder.inner.object_arguments() {
            for c in &mut r.tool_calls {
                c.arguments = match serde_json::from_str::<Value>(&c.arguments) {
                    Ok(v) => v.to_string(),
                    Err(_) if c.arguments.trim().is_empty() => "{}".to_string(),
                    Err(_) => std::mem::take(&mut c.arguments),
                };
            }
        }
        if !self.errors.is_empty() {
            r.extra.insert("errors".into(), Value::Array(self.errors.clone()));
        }
        r
    }

    /// The aggregated response.
    pub fn finish(self) -> NormalizedResponse {
        self.snapshot()
    }
}

/// Aggregates a whole stream of chunks (JSON in, normalized response out).
pub fn aggregate_stream(kind: CodecKind, chunks: &[Value]) -> Result<NormalizedResponse> {
    let mut c = Collector::new(kind);
    for (i, chunk) in chunks.iter().enumerate() {
        c.push(chunk).map_err(|e| crate::error::Error::invalid_argument(format!("chunks[{i}]: {}", e.message())))?;
    }
    Ok(c.finish())
}

/// [`aggregate_stream`] as JSON (what the bindings and events carry).
pub fn aggregate_stream_json(kind: CodecKind, chunks: &[Value]) -> Result<Value> {
    aggregate_stream(kind, chunks).map(|r| r.to_json())
}
