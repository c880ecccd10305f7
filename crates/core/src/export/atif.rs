//! ATIF trajectories (Harbor's Agent Trajectory Interchange Format, v1.7): one JSON document
//! per top-level agent scope, written when that scope ends.
//!
//! Mapping from the event stream:
//! - an agent scope's start `data` (its input) becomes a `user` step;
//! - an LLM end becomes an `agent` step: message, tool calls, metrics from usage, model;
//! - a tool end becomes an observation result in the step that holds its tool call (matched
//!   by `tool_call_id`), else in the latest agent step (or a `system` step when there is none);
//! - a guardrail rejection mark becomes a `system` step;
//! - a nested agent scope becomes an embedded subagent trajectory, referenced from the parent's
//!   latest step; its output is that observation's content;
//! - `final_metrics` sums the steps (and subagents).
//!
//! LLM responses are read from the codec's `annotated_response` when the call had one, else
//! from the raw shape of OpenAI Chat / Responses, Anthropic Messages or Gemini responses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::Uuid;
use crate::middleware::Subscriber;
use crate::plugin::{join, Diagnostics};

/// The ATIF version written.
pub const ATIF_SCHEMA_VERSION: &str = "ATIF-v1.7";
/// Open trajectories kept at once; beyond this the oldest is dropped (and counted).
const MAX_OPEN_RUNS: usize = 10_000;

/// Settings of the `atif` section.
#[derive(Clone, Debug, PartialEq)]
pub struct AtifConfig {
    pub agent_name: String,
    pub agent_version: String,
    pub model_name: String,
    pub output_directory: PathBuf,
    /// Must contain `{session_id}` (the top-level agent scope's uuid).
    pub filename_template: String,
    pub tool_definitions: Option<Vec<Value>>,
    pub extra: Option<Map<String, Value>>,
    /// A registered [`ExportSink`](crate::export::sink::ExportSink) that receives the
    /// trajectories instead of `output_directory` (hosts without a file system).
    pub sink: Option<String>,
}

impl Default for AtifConfig {
    fn default() -> Self {
        AtifConfig {
            agent_name: "Baton".into(),
            agent_version: "unknown".into(),
            model_name: "unknown".into(),
            output_directory: PathBuf::from("."),
            filename_template: "trajectory-{session_id}.json".into(),
            tool_definitions: None,
            extra: None,
            sink: None,
        }
    }
}

impl AtifConfig {
    /// Parses and checks an `atif` section; problems go to `d`.
    pub fn parse(obj: &Map<String, Value>, at: &str, d: &mut Diagnostics) -> Option<AtifConfig> {
        let mut c = AtifConfig::default();
        let errors_before = d.has_errors();
        if let Some(v) = d.get_str(obj, at, "agent_name") {
            c.agent_name = v.into();
        }
        if let Some(v) = d.get_str(obj, at, "agent_version") {
            c.agent_version = v.into();
        }
        if let Some(v) = d.get_str(obj, at, "model_name") {
            c.model_name = v.into();
        }
        if let Some(v) = d.get_str(obj, at, "output_directory") {
            c.output_directory = PathBuf::from(v);
        }
        if let Some(v) = d.get_str(obj, at, "filename_template") {
            c.filename_template = v.into();
        }
        if !c.filename_template.contains("{session_id}") {
            d.error(
                "invalid_value",
                &join(at, "filename_template"),
                format!("'{}' must contain {{session_id}}, or every trajectory would overwrite the last", c.filename_template),
            );
        } else if c.filename_template.contains('/') || c.filename_template.contains('\\') {
            d.error("invalid_value", &join(at, "filename_template"), "must be a plain file name (put folders in output_directory)");
        }
        if let Some(defs) = d.get_array(obj, at, "tool_definitions") {
            if let Some((i, bad)) = defs.iter().enumerate().find(|(_, v)| !v.is_object()) {
                d.error(
                    "invalid_type",
                    &format!("{at}.tool_definitions[{i}]"),
                    format!("expected an object (an OpenAI function definition), got {}", crate::plugin::type_name(bad)),
                );
            }
            c.tool_definitions = Some(defs.clone());
        }
        c.extra = d.get_object(obj, at, "extra").cloned();
        c.sink = d.get_str(obj, at, "sink").map(str::to_string);
        (errors_before || !d.has_errors()).then_some(c)
    }
}

/// One trajectory being built.
struct Run {
    session_id: Uuid,
    parent: Option<Uuid>,
    steps: Vec<Map<String, Value>>,
    subagents: Vec<Value>,
    /// tool_call_id → index of the step holding that call.
    calls: HashMap<String, usize>,
    model: Option<String>,
    /// The latest agent step, and the system step collecting results that match no call.
    last_agent: Option<usize>,
    orphans: Option<usize>,
}

#[derive(Default)]
struct State {
    /// Every open scope → the agent run it belongs to.
    owner: HashMap<Uuid, Uuid>,
    runs: HashMap<Uuid, Run>,
    order: Vec<Uuid>,
}

/// Where finished trajectories go: files, or a callback `(session_id, document)`.
type Sink = Box<dyn Fn(&str, &Value) -> Result<()> + Send + Sync>;

/// The ATIF exporter subscriber.
pub struct AtifExporter {
    config: AtifConfig,
    sink: Option<Sink>,
    state: Mutex<State>,
    written: Mutex<Vec<PathBuf>>,
    dropped_runs: AtomicU64,
}

impl AtifExporter {
    /// Writes each trajectory to `output_directory/filename_template`.
    pub fn new(config: AtifConfig) -> AtifExporter {
        AtifExporter {
            config,
            sink: None,
            state: Mutex::new(State::default()),
            written: Mutex::new(Vec::new()),
            dropped_runs: AtomicU64::new(0),
        }
    }

    /// Hands each finished trajectory to `sink` instead of writing a file (hosts without a
    /// file system, or that store trajectories elsewhere).
    pub fn with_sink(config: AtifConfig, sink: impl Fn(&str, &Value) -> Result<()> + Send + Sync + 'static) -> AtifExporter {
        AtifExporter { sink: Some(Box::new(sink)), ..AtifExporter::new(config) }
    }

    /// Files written so far.
    pub fn written(&self) -> Vec<PathBuf> {
        self.written.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Trajectories abandoned because too many were open at once.
    pub fn dropped_runs(&self) -> u64 {
        self.dropped_runs.load(Ordering::Relaxed)
    }

    fn write(&self, session: Uuid, doc: &Value) -> Result<()> {
        if let Some(sink) = &self.sink {
            return sink(&session.to_string(), doc);
        }
        let name = self.config.filename_template.replace("{session_id}", &session.to_string());
        let path = self.config.output_directory.join(name);
        write_atomically(&path, doc)?;
        self.written.lock().unwrap_or_else(|p| p.into_inner()).push(path);
        Ok(())
    }

    fn trajectory(&self, run: Run, subagent: bool) -> Value {
        let mut steps: Vec<Value> = Vec::with_capacity(run.steps.len().max(1));
        for (i, mut s) in run.steps.into_iter().enumerate() {
            s.insert("step_id".into(), json!(i + 1));
            steps.push(Value::Object(s));
        }
        if steps.is_empty() {
            steps.push(json!({"step_id": 1, "source": "system", "message": "the agent ended without recorded steps"}));
        }
        let sum = |key: &str| steps.iter().filter_map(|s| s.get("metrics")?.get(key)?.as_u64()).sum::<u64>();
        let sub_sum = |key: &str| run.subagents.iter().filter_map(|t| t.get("final_metrics")?.get(key)?.as_u64()).sum::<u64>();
        let final_metrics = json!({
            "total_prompt_tokens": sum("prompt_tokens") + sub_sum("total_prompt_tokens"),
            "total_completion_tokens": sum("completion_tokens") + sub_sum("total_completion_tokens"),
            "total_cached_tokens": sum("cached_tokens") + sub_sum("total_cached_tokens"),
            "total_steps": steps.len(),
        });
        let mut agent = Map::new();
        agent.insert("name".into(), self.config.agent_name.clone().into());
        agent.insert("version".into(), self.config.agent_version.clone().into());
        let model = if self.config.model_name != "unknown" { Some(self.config.model_name.clone()) } else { run.model.clone() };
        agent.insert("model_name".into(), model.unwrap_or_else(|| "unknown".into()).into());
        if let Some(defs) = &self.config.tool_definitions {
            agent.insert("tool_definitions".into(), Value::Array(defs.clone()));
        }
        if let Some(extra) = &self.config.extra {
            agent.insert("extra".into(), Value::Object(extra.clone()));
        }
        let mut doc = Map::new();
        doc.insert("schema_version".into(), ATIF_SCHEMA_VERSION.into());
        doc.insert("session_id".into(), run.session_id.to_string().into());
        if subagent {
            doc.insert("trajectory_id".into(), run.session_id.to_string().into());
        }
        doc.insert("agent".into(), Value::Object(agent));
        doc.insert("steps".into(), Value::Array(steps));
        doc.insert("final_metrics".into(), final_metrics);
        if !run.subagents.is_empty() {
            doc.insert("subagent_trajectories".into(), Value::Array(run.subagents));
        }
        Value::Object(doc)
    }
}

fn write_atomically(path: &Path, doc: &Value) -> Result<()> {
    let fail =
        |what: &str, e: std::io::Error| Error::new(crate::ErrorKind::Upstream, format!("ATIF file '{}': {what}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create its directory", e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(doc).map_err(|e| Error::internal(format!("ATIF serialization: {e}")))?;
    std::fs::write(&tmp, text).map_err(|e| fail("write failed", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("rename failed", e))
}

/// Text for a step message or observation: strings as they are, anything else as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Tool-call arguments as the object ATIF wants (JSON-string arguments are parsed).
fn arguments(v: &Value) -> Value {
    let parsed = match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| json!({"value": s})),
        other => other.clone(),
    };
    match parsed {
        Value::Object(_) => parsed,
        Value::Null => json!({}),
        other => json!({"value": other}),
    }
}

/// What an LLM end contributes to an agent step.
#[derive(Default)]
struct LlmTurn {
    message: String,
    calls: Vec<(String, String, Value)>,
    prompt: Option<u64>,
    completion: Option<u64>,
    cached: Option<u64>,
    model: Option<String>,
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_u64()
}

/// Reads a normalized (codec) response or one of the providers' raw shapes.
fn llm_turn(data: &Value, profile: Option<&Value>) -> LlmTurn {
    let mut t = LlmTurn::default();
    if let Some(n) = profile.and_then(|p| p.get("annotated_response")) {
        t.message = n.get("message").map(message_text).unwrap_or_default();
        for c in n.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            t.calls.push((text(&c["id"]), text(&c["name"]), arguments(&c["arguments"])));
        }
        if let Some(usage) = n.get("usage") {
            t.prompt = usage.get("prompt_tokens").and_then(Value::as_u64);
            t.completion = usage.get("completion_tokens").and_then(Value::as_u64);
            t.cached = usage.get("cache_read_tokens").and_then(Value::as_u64);
        }
        t.model = n.get("model").and_then(Value::as_str).map(String::from);
        return t;
    }
    // A stream's end carries its chunks; OpenAI-style deltas are joined.
    if let Some(chunks) = data.as_array() {
        for c in chunks {
            if let Some(s) = c.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                t.message.push_str(s);
            } else if let Some(s) = c.as_str() {
                t.message.push_str(s);
            }
            if let Some(usage) = c.get("usage") {
                t.prompt = usage.get("prompt_tokens").and_then(Value::as_u64).or(t.prompt);
                t.completion = usage.get("completion_tokens").and_then(Value::as_u64).or(t.completion);
            }
        }
        return t;
    }
    t.model = data.get("model").or_else(|| data.get("modelVersion")).and_then(Value::as_str).map(String::from);
    if let Some(msg) = data.pointer("/choices/0/message") {
        // OpenAI Chat Completions
        t.message = msg.get("content").map(message_text).unwrap_or_default();
        for c in msg.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            t.calls.push((text(&c["id"]), text(&c["function"]["name"]), arguments(&c["function"]["arguments"])));
        }
        t.prompt = u(data, &["usage", "prompt_tokens"]);
        t.completion = u(data, &["usage", "completion_tokens"]);
        t.cached = u(data, &["usage", "prompt_tokens_details", "cached_tokens"]);
    } else if let Some(output) = data.get("output").and_then(Value::as_array) {
        // OpenAI Responses
        for item in output {
            match item.get("type").and_then(Value::as_str) {
                Some("message") => t.message.push_str(&message_text(item.get("content").unwrap_or(&Value::Null))),
                Some("function_call") => t.calls.push((text(&item["call_id"]), text(&item["name"]), arguments(&item["arguments"]))),
                _ => {}
            }
        }
        t.prompt = u(data, &["usage", "input_tokens"]);
        t.completion = u(data, &["usage", "output_tokens"]);
        t.cached = u(data, &["usage", "input_tokens_details", "cached_tokens"]);
    } else if let Some(content) =
        data.get("content").and_then(Value::as_array).filter(|_| data.get("role").is_some() || data.get("stop_reason").is_some())
    {
        // Anthropic Messages
        for block in content {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => t.message.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
                Some("tool_use") => t.calls.push((text(&block["id"]), text(&block["name"]), arguments(&block["input"]))),
                _ => {}
            }
        }
        let input = u(data, &["usage", "input_tokens"]);
        let cache_read = u(data, &["usage", "cache_read_input_tokens"]);
        let cache_write = u(data, &["usage", "cache_creation_input_tokens"]).unwrap_or(0);
        // ATIF's prompt_tokens include cached ones; Anthropic counts them separately.
        t.prompt = input.map(|i| i + cache_read.unwrap_or(0) + cache_write);
        t.completion = u(data, &["usage", "output_tokens"]);
        t.cached = cache_read;
    } else if let Some(parts) = data.pointer("/candidates/0/content/parts").and_then(Value::as_array) {
        // Gemini generateContent
        for p in parts {
            if let Some(s) = p.get("text").and_then(Value::as_str) {
                t.message.push_str(s);
            } else if let Some(fc) = p.get("functionCall") {
                let id = fc.get("id").map(text).unwrap_or_else(|| format!("call_{}", t.calls.len()));
                t.calls.push((id, text(&fc["name"]), arguments(&fc["args"])));
            }
        }
        t.prompt = u(data, &["usageMetadata", "promptTokenCount"]);
        t.completion = u(data, &["usageMetadata", "candidatesTokenCount"]);
        t.cached = u(data, &["usageMetadata", "cachedContentTokenCount"]);
    } else {
        t.message = text(data);
    }
    t
}

/// The text of a message content: a string, or the text parts of an array.
fn message_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str())).collect::<Vec<_>>().join("")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl State {
    fn run_of(&mut self, scope: Option<Uuid>) -> Option<&mut Run> {
        let owner = *self.owner.get(&scope?)?;
        self.runs.get_mut(&owner)
    }

    fn push_step(run: &mut Run, step: Map<String, Value>) -> usize {
        let agent = step.get("source").and_then(Value::as_str) == Some("agent");
        run.steps.push(step);
        let i = run.steps.len() - 1;
        if agent {
            run.last_agent = Some(i);
        }
        i
    }

    /// The step an observation without a matching call goes to: the latest agent step, else
    /// one system step that collects such results until the next step begins.
    fn observation_step(run: &mut Run, message: &str) -> usize {
        if let Some(i) = run.last_agent {
            return i;
        }
        match run.orphans {
            Some(i) if i + 1 == run.steps.len() => i,
            _ => {
                let i = Self::push_step(run, obj(json!({"source": "system", "message": message})));
                run.orphans = Some(i);
                i
            }
        }
    }

    fn add_result(run: &mut Run, index: usize, result: Value) {
        let step = &mut run.steps[index];
        let obs = step.entry("observation").or_insert_with(|| json!({"results": []}));
        if let Some(results) = obs.get_mut("results").and_then(Value::as_array_mut) {
            results.push(result);
        }
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Subscriber for AtifExporter {
    fn on_event(&self, e: &Event) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let category = e.category.as_ref().map(|c| c.as_str()).unwrap_or("");
        let ts = e.timestamp();
        if e.is_scope_start() {
            let parent_run = e.parent_uuid.and_then(|p| st.owner.get(&p).copied());
            if category == "agent" {
                if st.runs.len() >= MAX_OPEN_RUNS {
                    let oldest = st.order.remove(0);
                    st.runs.remove(&oldest);
                    self.dropped_runs.fetch_add(1, Ordering::Relaxed);
                }
                let mut run = Run {
                    session_id: e.uuid,
                    parent: parent_run,
                    steps: Vec::new(),
                    subagents: Vec::new(),
                    calls: HashMap::new(),
                    model: None,
                    last_agent: None,
                    orphans: None,
                };
                let input = e.data.to_value();
                if !input.is_null() {
                    State::push_step(&mut run, obj(json!({"source": "user", "message": text(&input), "timestamp": ts})));
                }
                st.runs.insert(e.uuid, run);
                st.order.push(e.uuid);
                st.owner.insert(e.uuid, e.uuid);
            } else if let Some(r) = parent_run {
                st.owner.insert(e.uuid, r);
            }
            return Ok(());
        }
        if e.is_mark() {
            let data = e.data.to_value();
            if data.get("rejected") == Some(&Value::Bool(true)) {
                if let Some(run) = st.run_of(e.parent_uuid) {
                    let reason = text(data.get("rejection_reason").unwrap_or(&Value::Null));
                    State::push_step(
                        run,
                        obj(
                            json!({"source": "system", "message": format!("{} call '{}' rejected by a guardrail: {reason}", category, e.name), "timestamp": ts}),
                        ),
                    );
                }
            }
            return Ok(());
        }
        // Scope ends.
        let ok = e.metadata_value("otel.status_code").and_then(|v| v.as_str().map(|s| s == "OK")).unwrap_or(true);
        match category {
            "llm" => {
                if let Some(run) = st.run_of(Some(e.uuid)) {
                    let data = e.data.to_value();
                    let turn = if ok {
                        llm_turn(&data, e.category_profile.as_ref())
                    } else {
                        LlmTurn {
                            message: format!("LLM call failed: {}", text(&e.metadata_value("otel.status_description").unwrap_or_default())),
                            ..Default::default()
                        }
                    };
                    let model = turn.model.clone().or_else(|| {
                        e.category_profile.as_ref().and_then(|p| p.get("model_name")).and_then(Value::as_str).map(String::from)
                    });
                    let mut step = obj(json!({"source": "agent", "message": turn.message, "timestamp": ts}));
                    if let Some(m) = &model {
                        step.insert("model_name".into(), m.clone().into());
                        run.model.get_or_insert_with(|| m.clone());
                    }
                    if !turn.calls.is_empty() {
                        step.insert(
                            "tool_calls".into(),
                            Value::Array(
                                turn.calls
                                    .iter()
                                    .map(|(id, name, args)| json!({"tool_call_id": id, "function_name": name, "arguments": args}))
                                    .collect(),
                            ),
                        );
                    }
                    let mut metrics = Map::new();
                    for (k, v) in [("prompt_tokens", turn.prompt), ("completion_tokens", turn.completion), ("cached_tokens", turn.cached)] {
                        if let Some(v) = v {
                            metrics.insert(k.into(), v.into());
                        }
                    }
                    if !metrics.is_empty() {
                        step.insert("metrics".into(), Value::Object(metrics));
                    }
                    let index = State::push_step(run, step);
                    for (id, _, _) in turn.calls {
                        run.calls.insert(id, index);
                    }
                }
            }
            "tool" => {
                if let Some(run) = st.run_of(Some(e.uuid)) {
                    let call_id = e.category_profile.as_ref().and_then(|p| p.get("tool_call_id")).and_then(Value::as_str).map(String::from);
                    let content = if ok {
                        text(&e.data.to_value())
                    } else {
                        format!("error: {}", text(&e.metadata_value("otel.status_description").unwrap_or_default()))
                    };
                    match call_id.as_ref().and_then(|id| run.calls.get(id).copied()) {
                        Some(index) => State::add_result(run, index, json!({"source_call_id": call_id, "content": content})),
                        None => {
                            let index = State::observation_step(run, "tool results outside any LLM tool call");
                            State::add_result(run, index, json!({"content": format!("{}: {content}", e.name)}));
                        }
                    }
                }
            }
            "agent" if st.runs.contains_key(&e.uuid) => {
                let mut run = st.runs.remove(&e.uuid).expect("checked above");
                st.order.retain(|u| *u != e.uuid);
                st.owner.remove(&e.uuid);
                let output = e.data.to_value();
                let parent = run.parent;
                if !output.is_null() && parent.is_none() {
                    State::push_step(&mut run, obj(json!({"source": "agent", "message": text(&output), "timestamp": ts})));
                }
                let subagent = parent.is_some();
                let session = run.session_id;
                let doc = self.trajectory(run, subagent);
                match parent.and_then(|p| st.runs.get_mut(&p)) {
                    Some(parent_run) => {
                        let index = State::observation_step(parent_run, "subagent delegated");
                        State::add_result(
                            parent_run,
                            index,
                            json!({"content": text(&output), "subagent_trajectory_ref": [{"trajectory_id": session.to_string(), "session_id": session.to_string()}]}),
                        );
                        parent_run.subagents.push(doc);
                    }
                    None => {
                        drop(st);
                        return self.write(session, &doc);
                    }
                }
            }
            _ => {}
        }
        st.owner.remove(&e.uuid);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_receives_each_finished_trajectory() {
        use crate::event::{Attributes, Category, EventKind, Payload, ScopeCategory};
        let got = std::sync::Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let x = AtifExporter::with_sink(AtifConfig::default(), move |id, doc| {
            g.lock().unwrap().push((id.to_string(), doc.clone()));
            Ok(())
        });
        let uuid = Uuid::now_v7();
        let ev = |sc, data: Value| Event {
            kind: EventKind::Scope(sc),
            uuid,
            parent_uuid: None,
            timestamp_micros: 1,
            name: "a".into(),
            category: Some(Category::AGENT),
            attributes: Attributes::default(),
            category_profile: None,
            data: Payload::from_value(&data),
            data_schema: None,
            metadata: Map::new(),
            status: None,
            chunk_index: None,
        };
        x.on_event(&ev(ScopeCategory::Start, json!("question"))).unwrap();
        x.on_event(&ev(ScopeCategory::End, json!("answer"))).unwrap();
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, uuid.to_string());
        assert_eq!(got[0].1["steps"][1]["message"], "answer");
        assert!(x.written().is_empty(), "no file is written");
    }

    #[test]
    fn reads_each_provider_shape() {
        let openai = json!({"model": "gpt-x", "choices": [{"message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}], "usage": {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}});
        let t = llm_turn(&openai, None);
        assert_eq!((t.message.as_str(), t.prompt, t.completion, t.cached), ("hi", Some(10), Some(2), Some(4)));
        assert_eq!(t.calls, vec![("c1".into(), "f".into(), json!({"a": 1}))]);
        let anthropic = json!({"role": "assistant", "model": "claude", "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t1", "name": "g", "input": {"b": 2}}], "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 7}});
        let t = llm_turn(&anthropic, None);
        assert_eq!((t.message.as_str(), t.prompt, t.cached), ("ok", Some(12), Some(7)));
        assert_eq!(t.calls[0].1, "g");
        let gemini = json!({"candidates": [{"content": {"parts": [{"text": "yo"}, {"functionCall": {"name": "h", "args": {"c": 3}}}]}}], "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1}});
        let t = llm_turn(&gemini, None);
        assert_eq!((t.message.as_str(), t.prompt, t.calls.len()), ("yo", Some(8), 1));
        let responses = json!({"output": [{"type": "message", "content": [{"type": "output_text", "text": "r"}]}, {"type": "function_call", "call_id": "fc", "name": "k", "arguments": "{}"}], "usage": {"input_tokens": 3, "output_tokens": 4}});
        let t = llm_turn(&responses, None);
        assert_eq!((t.message.as_str(), t.completion, t.calls[0].0.as_str()), ("r", Some(4), "fc"));
        let normalized = json!({"annotated_response": {"message": "n", "tool_calls": [{"id": "x", "name": "y", "arguments": {"z": 1}}], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "cache_read_tokens": 0}, "model": "m"}});
        let t = llm_turn(&Value::Null, Some(&normalized));
        assert_eq!((t.message.as_str(), t.prompt, t.model.as_deref()), ("n", Some(1), Some("m")));
    }
}
