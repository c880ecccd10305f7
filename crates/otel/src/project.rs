//! Projections: how a finished scope (its start and end events) becomes an OTLP span's
//! name, kind and attributes, and how marks become span events and log records.

use baton::{Category, Event, CHUNK_INDEX_KEY as CHUNK_INDEX};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;

use crate::attrs::Attrs;
use crate::config::Projection;
use crate::llm::{self, LlmCall, Message};

/// Span name, kind and attributes of one scope.
pub(crate) struct Projected {
    pub name: String,
    pub kind: SpanKind,
    pub attributes: Vec<KeyValue>,
}

fn category(e: &Event) -> &str {
    e.category.as_ref().map(Category::as_str).unwrap_or("unknown")
}

/// Metadata as attributes: dotted keys at the top level (nested objects flattened); the
/// status code and description are the span's status, not attributes.
fn metadata(a: &mut Attrs, e: &Event) {
    for (k, v) in &e.metadata {
        if k == "otel.status_code" || k == "otel.status_description" {
            continue;
        }
        a.flatten(k, v);
    }
    if let Some(i) = e.chunk_index.filter(|_| !e.metadata.contains_key(CHUNK_INDEX)) {
        a.flatten(CHUNK_INDEX, &Value::from(i));
    }
    if let Some(st) = &e.status {
        if let Some(t) = &st.error_type {
            a.str("error.type", t.as_ref());
        }
        if let Some(t) = &st.exception_type {
            a.str("exception.type", t.as_ref());
        }
    }
}

/// The merged category profile (end keys win over start keys).
fn profile(start: Option<&Event>, end: &Event) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for e in start.into_iter().chain(std::iter::once(end)) {
        if let Some(Value::Object(p)) = &e.category_profile {
            m.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    m
}

fn payload_text(e: Option<&Event>) -> Option<&str> {
    e.filter(|e| !e.data.is_null()).map(|e| e.data.as_json())
}

/// A scope's span. `start` is `None` when its start event was never seen.
pub(crate) fn scope(projection: Projection, start: Option<&Event>, end: &Event) -> Projected {
    let cat = category(end);
    let kind = if cat == "llm" { SpanKind::Client } else { SpanKind::Internal };
    let mut a = Attrs::default();
    let llm_call = (cat == "llm" && projection != Projection::Full).then(|| {
        let start_data = start.map(|s| s.data.to_value()).unwrap_or(Value::Null);
        llm::extract(start.and_then(|s| s.category_profile.as_ref()), &start_data, end.category_profile.as_ref(), &end.data.to_value())
    });
    let name = match projection {
        Projection::Full => full(&mut a, start, end),
        Projection::GenAi => gen_ai(&mut a, start, end, llm_call.as_ref()),
        Projection::OpenInference => openinference(&mut a, start, end, llm_call.as_ref()),
    };
    metadata(&mut a, end);
    if let Some(s) = start {
        metadata(&mut a, s); // keys only the start had (normally end metadata includes them)
    }
    Projected { name, kind, attributes: a.into_vec() }
}

fn full(a: &mut Attrs, start: Option<&Event>, end: &Event) -> String {
    a.str("baton.name", &*end.name);
    a.str("baton.category", category(end));
    a.str("baton.uuid", end.uuid.to_string());
    if let Some(p) = end.parent_uuid {
        a.str("baton.parent_uuid", p.to_string());
    }
    if !end.attributes.is_empty() {
        a.json("baton.attributes", &Value::Array(end.attributes.iter().map(Value::from).collect()));
    }
    for (k, v) in profile(start, end) {
        let key = format!("baton.category_profile.{k}");
        if k.starts_with("annotated_") || k == "tool_result_annotation" {
            a.str(key, v.to_string()); // whole documents stay one JSON attribute
        } else {
            a.flatten(&key, &v);
        }
    }
    if let Some(ds) = start.and_then(|s| s.data_schema.as_ref()).or(end.data_schema.as_ref()) {
        a.str("baton.data_schema.name", ds.name.as_str());
        a.str("baton.data_schema.version", ds.version.as_str());
    }
    if let Some(t) = payload_text(start) {
        a.str("baton.input", t);
    }
    if let Some(t) = payload_text(Some(end)) {
        a.str("baton.output", t);
    }
    end.name.to_string()
}

fn gen_ai(a: &mut Attrs, start: Option<&Event>, end: &Event, call: Option<&LlmCall>) -> String {
    let prof = profile(start, end);
    let name = &*end.name;
    match category(end) {
        "llm" => {
            let call = call.cloned().unwrap_or_default();
            a.str("gen_ai.operation.name", "chat");
            if let Some(m) = &call.request_model {
                a.str("gen_ai.request.model", m.as_str());
            }
            if let Some(m) = &call.response_model {
                a.str("gen_ai.response.model", m.as_str());
            }
            if let Some(id) = &call.response_id {
                a.str("gen_ai.response.id", id.as_str());
            }
            if !call.finish_reasons.is_empty() {
                a.json("gen_ai.response.finish_reasons", &Value::from(call.finish_reasons.clone()));
            }
            if let Some(n) = call.usage.input {
                a.int("gen_ai.usage.input_tokens", n);
            }
            if let Some(n) = call.usage.output {
                a.int("gen_ai.usage.output_tokens", n);
            }
            if let Some(n) = call.usage.cache_read {
                a.int("gen_ai.usage.cache_read.input_tokens", n);
            }
            if let Some(n) = call.usage.cache_write {
                a.int("gen_ai.usage.cache_creation.input_tokens", n);
            }
            for (param, keys) in [
                ("temperature", &["temperature"][..]),
                ("top_p", &["top_p", "topP"][..]),
                ("max_tokens", &["max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens"][..]),
                ("frequency_penalty", &["frequency_penalty"][..]),
                ("presence_penalty", &["presence_penalty"][..]),
                ("seed", &["seed"][..]),
            ] {
                if let Some(v) = keys.iter().find_map(|k| call.params.get(*k)) {
                    a.json(format!("gen_ai.request.{param}"), v);
                }
            }
            a.str("baton.category", "llm");
            match call.request_model.as_ref().or(call.response_model.as_ref()) {
                Some(m) => format!("chat {m}"),
                None => "chat".to_string(),
            }
        }
        "tool" => {
            a.str("gen_ai.operation.name", "execute_tool");
            a.str("gen_ai.tool.name", name);
            a.str("gen_ai.tool.type", "function");
            if let Some(id) = prof.get("tool_call_id").and_then(Value::as_str) {
                a.str("gen_ai.tool.call.id", id);
            }
            a.str("baton.category", "tool");
            format!("execute_tool {name}")
        }
        "agent" => {
            a.str("gen_ai.operation.name", "invoke_agent");
            a.str("gen_ai.agent.name", name);
            a.str("gen_ai.agent.id", end.uuid.to_string());
            a.str("baton.category", "agent");
            format!("invoke_agent {name}")
        }
        "embedder" => {
            a.str("gen_ai.operation.name", "embeddings");
            if let Some(m) = prof.get("model_name").and_then(Value::as_str) {
                a.str("gen_ai.request.model", m);
            }
            a.str("baton.category", "embedder");
            match prof.get("model_name").and_then(Value::as_str) {
                Some(m) => format!("embeddings {m}"),
                None => name.to_string(),
            }
        }
        other => {
            a.str("baton.category", other);
            name.to_string()
        }
    }
}

fn openinference_kind(category: &str) -> &'static str {
    match category {
        "llm" => "LLM",
        "tool" => "TOOL",
        "agent" => "AGENT",
        "guardrail" => "GUARDRAIL",
        "retriever" => "RETRIEVER",
        "embedder" => "EMBEDDING",
        "reranker" => "RERANKER",
        "evaluator" => "EVALUATOR",
        _ => "CHAIN",
    }
}

/// `input.value` / `output.value` with their MIME type: JSON strings as plain text.
fn io_value(a: &mut Attrs, prefix: &str, e: Option<&Event>) {
    let Some(text) = payload_text(e) else { return };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => {
            a.str(format!("{prefix}.value"), s);
            a.str(format!("{prefix}.mime_type"), "text/plain");
        }
        _ => {
            a.str(format!("{prefix}.value"), text);
            a.str(format!("{prefix}.mime_type"), "application/json");
        }
    }
}

fn oi_messages(a: &mut Attrs, prefix: &str, messages: &[Message]) {
    for (i, m) in messages.iter().enumerate() {
        let p = format!("{prefix}.{i}.message");
        a.str(format!("{p}.role"), m.role.as_str());
        if let Some(c) = &m.content {
            a.str(format!("{p}.content"), c.as_str());
        }
        if let Some(id) = &m.tool_call_id {
            a.str(format!("{p}.tool_call_id"), id.as_str());
        }
        for (j, tc) in m.tool_calls.iter().enumerate() {
            let q = format!("{p}.tool_calls.{j}.tool_call");
            if let Some(id) = &tc.id {
                a.str(format!("{q}.id"), id.as_str());
            }
            if let Some(n) = &tc.name {
                a.str(format!("{q}.function.name"), n.as_str());
            }
            if let Some(args) = &tc.arguments {
                a.str(format!("{q}.function.arguments"), args.as_str());
            }
        }
    }
}

fn openinference(a: &mut Attrs, start: Option<&Event>, end: &Event, call: Option<&LlmCall>) -> String {
    let cat = category(end);
    let prof = profile(start, end);
    a.str("openinference.span.kind", openinference_kind(cat));
    io_value(a, "input", start);
    io_value(a, "output", Some(end));
    match cat {
        "llm" => {
            let call = call.cloned().unwrap_or_default();
            if let Some(m) = call.response_model.as_ref().or(call.request_model.as_ref()) {
                a.str("llm.model_name", m.as_str());
            }
            if let Some(n) = call.usage.input {
                a.int("llm.token_count.prompt", n);
            }
            if let Some(n) = call.usage.output {
                a.int("llm.token_count.completion", n);
            }
            if let Some(n) = call.usage.total {
                a.int("llm.token_count.total", n);
            }
            if let Some(n) = call.usage.cache_read {
                a.int("llm.token_count.prompt_details.cache_read", n);
            }
            if let Some(n) = call.usage.cache_write {
                a.int("llm.token_count.prompt_details.cache_write", n);
            }
            if !call.params.is_empty() {
                a.str("llm.invocation_parameters", Value::Object(call.params.clone()).to_string());
            }
            oi_messages(a, "llm.input_messages", &call.input_messages);
            oi_messages(a, "llm.output_messages", &call.output_messages);
        }
        "tool" => {
            a.str("tool.name", &*end.name);
            if let Some(id) = prof.get("tool_call_id").and_then(Value::as_str) {
                a.str("tool_call.id", id);
            }
            if let Some(t) = payload_text(start) {
                a.str("tool.parameters", t);
            }
        }
        "agent" => a.str("agent.name", &*end.name),
        "embedder" => {
            if let Some(m) = prof.get("model_name").and_then(Value::as_str) {
                a.str("embedding.model_name", m);
            }
        }
        _ => {}
    }
    a.str("baton.category", cat);
    end.name.to_string()
}

/// A mark's attributes (span event or log record).
pub(crate) fn mark_attributes(projection: Projection, e: &Event) -> Vec<KeyValue> {
    let mut a = Attrs::default();
    if let Some(c) = &e.category {
        a.str("baton.category", c.as_str());
    }
    if projection == Projection::Full {
        a.str("baton.uuid", e.uuid.to_string());
        if let Some(p) = &e.category_profile {
            a.flatten("baton.category_profile", p);
        }
        if let Some(ds) = &e.data_schema {
            a.str("baton.data_schema.name", ds.name.as_str());
            a.str("baton.data_schema.version", ds.version.as_str());
        }
    }
    if !e.data.is_null() {
        a.str("baton.data", e.data.as_json());
    }
    metadata(&mut a, e);
    a.into_vec()
}
