//! Baton demo: a small research agent, instrumented end to end.
//!
//! The agent asks a scripted fake LLM provider what to do, runs the tools it asks for, and
//! streams a final answer. Baton wraps every step: a guardrail blocks the dangerous shell
//! tool, a sanitizer redacts the API key from what observability sees, and every event goes
//! to ATOF JSONL and an ATIF trajectory (installed from `plugins.toml` by the plugin system)
//! and to a tree printed at the end.
//!
//! Usage: `baton-demo [--out DIR] [--plugins FILE]` (defaults `out/demo`,
//! `examples/rust/demo/plugins.toml`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::{
    CallKind, Decision, EndOptions, Error, Event, LlmOptions, MarkOptions, Middleware, Registration, Result, Runtime, ScopeOptions,
    ToolOptions,
};
use serde_json::{json, Map, Value};

const SECRET: &str = "sk-demo-0123456789abcdef";

/// The scripted provider: answers like an OpenAI-style chat completion.
fn fake_provider(request: &Value) -> Value {
    let turn = request["content"]["messages"].as_array().map_or(0, |m| m.len());
    if turn <= 2 {
        json!({
            "id": "chatcmpl-demo-1", "model": "fake-gpt-1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "web.search", "arguments": "{\"query\":\"baton runtime\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":\"6*7\"}"}},
                {"id": "call_3", "type": "function", "function": {"name": "shell.rm", "arguments": "{\"path\":\"/\"}"}}
            ]}}],
            "usage": {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59}
        })
    } else {
        json!({"id": "chatcmpl-demo-2", "choices": [{"message": {"role": "assistant", "content": "done"}}]})
    }
}

fn run_tool(name: &str, args: &Value) -> Result<Value> {
    match name {
        "web.search" => Ok(
            json!({"results": [{"title": "Baton: an agent execution runtime", "url": "https://example.invalid/baton", "api_key": SECRET}]}),
        ),
        "calculator" => Ok(json!({"value": 42, "expression": args["expression"]})),
        other => Err(Error::callback_failed(format!("unknown tool {other}"))),
    }
}

fn install_middleware(rt: &Runtime) -> Result<()> {
    rt.register(
        Registration::new("no-dangerous-shell"),
        Middleware::guardrail(CallKind::Tool, |info, _args| {
            Ok(if info.name.starts_with("shell.") {
                Decision::Reject("shell commands are not allowed in this agent".into())
            } else {
                Decision::Allow
            })
        }),
    )?;
    // Redact the secret wherever it appears in what events carry (tool results, LLM requests).
    let redact = |_: &baton::CallInfo, v: Value| Ok(Some(redact_value(v)));
    rt.register(Registration::new("redact-secrets"), Middleware::sanitize_response(CallKind::Tool, redact))?;
    rt.register(Registration::new("redact-secrets"), Middleware::sanitize_request(CallKind::Llm, redact))?;
    rt.register(
        Registration::new("demo-run"),
        Middleware::EventMetadataInjector(Arc::new(|_| Ok(Map::from_iter([("demo.app".to_string(), json!("baton-demo"))])))),
    )?;
    Ok(())
}

fn redact_value(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains(SECRET) => Value::String(s.replace(SECRET, "[REDACTED]")),
        Value::Array(a) => Value::Array(a.into_iter().map(redact_value).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, redact_value(v))).collect()),
        other => other,
    }
}

fn agent(rt: &Runtime) -> Result<String> {
    let stack = rt.new_stack();
    let root =
        stack.push(ScopeOptions::new("research-agent").category("agent").input(json!({"task": "What is Baton, and what is 6*7?"})))?;
    let mut messages = vec![
        json!({"role": "system", "content": "You are a research agent."}),
        json!({"role": "user", "content": "What is Baton, and what is 6*7?"}),
    ];
    let request = |messages: &Vec<Value>| json!({"headers": {"authorization": format!("Bearer {SECRET}")}, "content": {"model": "fake-gpt-1", "messages": messages}});

    let plan = stack.llm(
        "plan",
        request(&messages),
        |r| Ok(fake_provider(&r)),
        LlmOptions { model_name: Some("fake-gpt-1".into()), ..Default::default() },
    )?;
    let calls = plan["choices"][0]["message"]["tool_calls"].as_array().cloned().unwrap_or_default();
    messages.push(plan["choices"][0]["message"].clone());
    for call in calls {
        let name = call["function"]["name"].as_str().unwrap_or_default().to_string();
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
        let id = call["id"].as_str().map(String::from);
        let outcome = stack.tool(&name, args, |a| run_tool(&name, &a), ToolOptions { tool_call_id: id.clone(), ..Default::default() });
        let content = match outcome {
            Ok(v) => v.to_string(),
            Err(e) => {
                stack.mark(MarkOptions::new("agent.tool_skipped").data(json!({"tool": name, "reason": e.message()})))?;
                format!("error: {}", e.message())
            }
        };
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
    }
    stack.metric("agent.tool_calls", json!([{"value": 3, "attributes": {"agent": "research-agent"}}]), None)?;

    let words = ["Baton ", "is ", "an ", "agent ", "execution ", "runtime; ", "6*7 ", "= ", "42."];
    let stream = stack.llm_stream(
        "answer",
        request(&messages),
        move |_r| Ok(words.into_iter().map(|w| Ok(json!({"choices": [{"delta": {"content": w}}]})))),
        LlmOptions { model_name: Some("fake-gpt-1".into()), ..Default::default() },
    )?;
    let mut answer = String::new();
    for chunk in stream {
        let chunk = chunk?;
        answer.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
    }
    stack.pop(&root, EndOptions::default().output(json!({"answer": answer})))?;
    Ok(answer)
}

/// The recorded run, indexed for printing as a tree.
struct Tree<'a> {
    events: &'a [Event],
    children: HashMap<Option<baton::Uuid>, Vec<usize>>,
    ends: HashMap<baton::Uuid, &'a Event>,
    /// `llm.chunk` marks per stream scope, shown as one line instead of one per chunk.
    chunks: HashMap<baton::Uuid, usize>,
}

impl<'a> Tree<'a> {
    fn new(events: &'a [Event]) -> Tree<'a> {
        let mut t = Tree { events, children: HashMap::new(), ends: HashMap::new(), chunks: HashMap::new() };
        for (i, e) in events.iter().enumerate() {
            if e.is_scope_end() {
                t.ends.insert(e.uuid, e);
            } else if &*e.name == "llm.chunk" && e.is_mark() {
                *t.chunks.entry(e.parent_uuid.unwrap_or(e.uuid)).or_default() += 1;
            } else {
                t.children.entry(e.parent_uuid).or_default().push(i);
            }
        }
        t
    }

    fn line(&self, e: &Event) -> String {
        if e.is_mark() {
            return match e.data.to_value().get("rejection_reason").and_then(Value::as_str) {
                Some(reason) => format!("• {} REJECTED: {reason}", e.name),
                None => format!("• {}", e.name),
            };
        }
        let cat = e.category.as_ref().map_or("?", |c| c.as_str());
        let Some(end) = self.ends.get(&e.uuid) else {
            return format!("{} [{cat}] (still open)", e.name);
        };
        let ms = (end.timestamp_micros - e.timestamp_micros) as f64 / 1000.0;
        let status = end.metadata_value("otel.status_code").and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| "?".into());
        let rejected = if end.data.to_value().get("allowed") == Some(&Value::Bool(false)) { " (rejected)" } else { "" };
        let chunks = self.chunks.get(&e.uuid).map(|n| format!(", {n} chunks streamed")).unwrap_or_default();
        format!("{} [{cat}] {ms:.3} ms {status}{rejected}{chunks}", e.name)
    }

    fn print(&self, parent: Option<baton::Uuid>, prefix: &str) {
        let list = self.children.get(&parent).map(Vec::as_slice).unwrap_or(&[]);
        for (n, &i) in list.iter().enumerate() {
            let e = &self.events[i];
            let last = n + 1 == list.len();
            let (branch, indent) = match (parent, last) {
                (None, _) => ("", ""),
                (Some(_), true) => ("└─ ", "   "),
                (Some(_), false) => ("├─ ", "│  "),
            };
            println!("{prefix}{branch}{}", self.line(e));
            if e.is_scope_start() {
                self.print(Some(e.uuid), &format!("{prefix}{indent}"));
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut out = PathBuf::from("out/demo");
    let mut plugins = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/plugins.toml"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            "--plugins" => plugins = args.next().map(PathBuf::from).unwrap_or(plugins),
            "-h" | "--help" => {
                println!("usage: baton-demo [--out DIR] [--plugins FILE]");
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    match run(&out, &plugins) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Loads the plugins document and points every output directory at `out`.
fn plugin_document(path: &std::path::Path, out: &std::path::Path) -> Result<Value> {
    let mut doc = baton::plugin::load_document(path)?;
    let dir = json!(out.to_string_lossy());
    for c in doc["components"].as_array_mut().into_iter().flatten() {
        for sink in c["config"]["atof"]["sinks"].as_array_mut().into_iter().flatten() {
            if sink["type"] == "file" {
                sink["output_directory"] = dir.clone();
            }
        }
        if c["config"]["atif"].is_object() {
            c["config"]["atif"]["output_directory"] = dir.clone();
        }
        if let (Ok(endpoint), Some(otel)) = (std::env::var("BATON_OTLP_ENDPOINT"), c["config"]["opentelemetry"].as_object_mut()) {
            otel.insert("enabled".into(), json!(true));
            let transport = std::env::var("BATON_OTLP_TRANSPORT").unwrap_or_else(|_| "http_binary".into());
            for e in otel.get_mut("endpoints").and_then(Value::as_array_mut).into_iter().flatten() {
                e["endpoint"] = json!(endpoint);
                e["transport"] = json!(transport);
            }
        }
    }
    Ok(doc)
}

fn run(out: &std::path::Path, plugins: &std::path::Path) -> Result<()> {
    let rt = Runtime::global();
    baton_otel::install(); // lets plugins.toml enable OpenTelemetry export
    let path = out.join("events.jsonl");
    let report = rt.plugin_initialize(&plugin_document(plugins, out)?)?;
    for d in &report.diagnostics {
        eprintln!("plugins.toml {}: {} {}", d.level.as_str(), d.field.as_deref().unwrap_or(""), d.message);
    }
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    rt.register(
        Registration::new("tree"),
        Middleware::subscriber(move |e| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.clone());
            Ok(())
        }),
    )?;
    install_middleware(rt)?;
    let answer = agent(rt)?;
    rt.shutdown(Duration::from_secs(10))?;
    let events = recorded.lock().unwrap_or_else(|p| p.into_inner());
    println!("Baton demo — an instrumented research agent\n");
    Tree::new(&events).print(None, "");
    println!("\nanswer: {answer}");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::internal(format!("reading back {}: {e}", path.display())))?;
    let leaked = text.contains(SECRET);
    println!("{} ATOF events written to {}", text.lines().count(), path.display());
    let trajectories: Vec<_> = std::fs::read_dir(out)
        .map_err(|e| Error::internal(format!("reading {}: {e}", out.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("trajectory-")))
        .collect();
    for t in &trajectories {
        println!("ATIF trajectory written to {}", t.display());
    }
    if let Ok(endpoint) = std::env::var("BATON_OTLP_ENDPOINT") {
        println!("OpenTelemetry spans (gen_ai) sent to {endpoint}");
    }
    println!("secret in exported events: {}", if leaked { "LEAKED" } else { "no (redacted / stripped)" });
    if leaked {
        return Err(Error::internal("the secret reached the exported events"));
    }
    Ok(())
}
