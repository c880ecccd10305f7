//! The Rust parity runner: executes one scenario (tests/parity/README.md) through Baton's
//! public Rust API and prints `{events, subscribers, results}` as JSON.

mod behavior;
mod codec;
mod pointer;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::{
    current_stack, exec, with_stack, CallHandle, EndOptions, Error, Family, LlmOptions, MarkOptions, Registration, Result, Runtime,
    ScopeHandle, ScopeOptions, Stack, ToolOptions,
};
use serde_json::{json, Map, Value};

use behavior::{host_error, Recorders};

const RECORDER: &str = "parity.recorder";
const FLUSH: Duration = Duration::from_secs(30);

enum Ref {
    Value(Value),
    Scope(ScopeHandle),
    Stack(Stack),
    Call(CallHandle),
}

struct Runner {
    rt: Runtime,
    refs: HashMap<String, Ref>,
    results: Map<String, Value>,
    recorders: Recorders,
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: baton-parity-rust SCENARIO.json");
        return ExitCode::from(2);
    };
    match run(Path::new(&path)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("scenario failed: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &Path) -> std::result::Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let scenario: Value = serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
    let steps = scenario.get("steps").and_then(Value::as_array).cloned().ok_or("scenario has no steps array")?;
    let out_dir = std::env::temp_dir().join(format!("baton-parity-{}-{}", std::process::id(), baton::Uuid::now_v7().simple_hex()));
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create OUT dir: {e}"))?;
    let mut runner = Runner {
        rt: Runtime::global().clone(),
        refs: HashMap::new(),
        results: Map::new(),
        recorders: Arc::new(Mutex::new(BTreeMap::new())),
        out_dir,
    };
    let recorder =
        behavior::middleware(Family::Subscriber, RECORDER, json!({"record": true}), &runner.recorders).map_err(|e| e.to_string())?;
    runner.rt.register(Registration::new(RECORDER), recorder).map_err(|e| e.to_string())?;
    let outcome = runner.run_steps(&steps);
    if !runner.rt.is_shutdown() {
        runner.rt.flush(FLUSH).map_err(|e| format!("final flush: {e}"))?;
    }
    let _ = std::fs::remove_dir_all(&runner.out_dir);
    outcome?;
    let mut recorded = std::mem::take(&mut *runner.recorders.lock().unwrap());
    let events = recorded.remove(RECORDER).unwrap_or_default();
    Ok(json!({"events": events, "subscribers": recorded, "results": runner.results}))
}

fn s<'a>(step: &'a Value, key: &str) -> Option<&'a str> {
    step.get(key).and_then(Value::as_str)
}

fn req_str<'a>(step: &'a Value, key: &str) -> Result<&'a str> {
    s(step, key).ok_or_else(|| Error::invalid_argument(format!("step.{key}: missing or not a string")))
}

fn obj(step: &Value, key: &str) -> Map<String, Value> {
    step.get(key).and_then(Value::as_object).cloned().unwrap_or_default()
}

fn strings(step: &Value, key: &str) -> Vec<String> {
    step.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn is_async(step: &Value) -> bool {
    step.get("async").and_then(Value::as_bool).unwrap_or(false)
}

/// The host callback of a managed call, per the scenario's `impl`.
fn run_impl(imp: &Value, input: Value) -> Result<Value> {
    for m in imp.get("marks").and_then(Value::as_array).into_iter().flatten() {
        let mut opts = MarkOptions::new(m.get("name").and_then(Value::as_str).unwrap_or("mark"));
        opts.data = m.get("data").cloned();
        baton::mark(opts)?;
    }
    if let Some(msg) = imp.get("fail").and_then(Value::as_str) {
        return Err(host_error(msg));
    }
    if imp.get("echo").and_then(Value::as_bool) == Some(true) {
        return Ok(input);
    }
    Ok(imp.get("return").cloned().unwrap_or(Value::Null))
}

/// The chunks of a streaming `impl`, failing after `fail_after` chunks when given.
fn impl_chunks(imp: &Value) -> Vec<Result<Value>> {
    let chunks = imp.get("chunks").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out: Vec<Result<Value>> = Vec::new();
    match imp.get("fail_after").and_then(Value::as_u64) {
        Some(n) => {
            out.extend(chunks.into_iter().take(n as usize).map(Ok));
            let msg =
                imp.get("fail").and_then(Value::as_str).map(String::from).unwrap_or_else(|| format!("stream failed after {n} chunks"));
            out.push(Err(host_error(&msg)));
        }
        None => out.extend(chunks.into_iter().map(Ok)),
    }
    out
}

impl Runner {
    fn run_steps(&mut self, steps: &[Value]) -> std::result::Result<(), String> {
        for (i, raw) in steps.iter().enumerate() {
            let step = self.resolve(raw);
            let op = s(&step, "op").unwrap_or("<missing op>").to_string();
            let outcome = self.exec(&op, &step);
            let expect = s(&step, "expect_error");
            let stored = match (outcome, expect) {
                (Ok(r), None) => r,
                (Ok(_), Some(k)) => return Err(format!("step {i} ({op}) succeeded but expected error {k}")),
                (Err(e), Some(k)) if e.kind().as_str() == k => Some(Ref::Value(json!({"error": k}))),
                (Err(e), Some(k)) => return Err(format!("step {i} ({op}) failed with {e}, expected {k}")),
                (Err(e), None) => return Err(format!("step {i} ({op}) failed: {e}")),
            };
            if let (Some(name), Some(r)) = (s(&step, "as"), stored) {
                let shown = match &r {
                    Ref::Value(v) => v.clone(),
                    _ => json!("<handle>"),
                };
                self.results.insert(name.to_string(), shown);
                self.refs.insert(name.to_string(), r);
            }
        }
        Ok(())
    }

    /// Replaces every `{"$ref": REF}` with the stored result and `${OUT}` with the temp dir.
    fn resolve(&self, v: &Value) -> Value {
        match v {
            Value::Object(o) if o.len() == 1 && o.contains_key("$ref") => match o["$ref"].as_str().and_then(|r| self.results.get(r)) {
                Some(found) => found.clone(),
                None => v.clone(),
            },
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), self.resolve(v))).collect()),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.resolve(v)).collect()),
            Value::String(s) if s.contains("${OUT}") => Value::String(s.replace("${OUT}", &self.out_dir.to_string_lossy())),
            other => other.clone(),
        }
    }

    fn scope_ref(&self, step: &Value, key: &str) -> Result<Option<ScopeHandle>> {
        match step.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => match self.refs.get(name) {
                Some(Ref::Scope(h)) => Ok(Some(h.clone())),
                Some(_) => Err(Error::not_found(format!("{key}: '{name}' does not name a scope"))),
                None => Err(Error::not_found(format!("{key}: no step stored '{name}'"))),
            },
            Some(other) => Err(Error::not_found(format!("{key}: {other} does not name a scope"))),
        }
    }

    fn stack_ref(&self, step: &Value) -> Result<Stack> {
        let name = req_str(step, "stack")?;
        match self.refs.get(name) {
            Some(Ref::Stack(st)) => Ok(st.clone()),
            _ => Err(Error::not_found(format!("stack: '{name}' does not name a stack"))),
        }
    }

    fn call_ref(&self, step: &Value) -> Result<CallHandle> {
        let name = req_str(step, "handle")?;
        match self.refs.get(name) {
            Some(Ref::Call(h)) => Ok(h.clone()),
            _ => Err(Error::not_found(format!("handle: '{name}' does not name a call handle"))),
        }
    }

    fn value(v: Value) -> Result<Option<Ref>> {
        Ok(Some(Ref::Value(v)))
    }

    fn exec(&mut self, op: &str, step: &Value) -> Result<Option<Ref>> {
        let stack = current_stack();
        match op {
            "push" => {
                let mut o = ScopeOptions::new(req_str(step, "name")?).category(s(step, "category").unwrap_or("function"));
                o.input = step.get("input").cloned();
                o.metadata = obj(step, "metadata");
                o.attributes = strings(step, "attributes");
                o.category_profile = step.get("category_profile").cloned();
                o.parent = self.scope_ref(step, "parent")?;
                Ok(Some(Ref::Scope(stack.push(o)?)))
            }
            "pop" => {
                let h = self.scope_ref(step, "scope")?.ok_or_else(|| Error::invalid_argument("pop: step.scope is required"))?;
                let mut e = EndOptions { output: step.get("output").cloned(), metadata: obj(step, "metadata"), error: None };
                if let Some(err) = step.get("error") {
                    e.error = Some(Error::callback_failed(err.as_str().unwrap_or("error").to_string()));
                }
                stack.pop(&h, e)?;
                Ok(None)
            }
            "mark" => {
                let mut o = MarkOptions::new(req_str(step, "name")?);
                o.data = step.get("data").cloned();
                o.metadata = obj(step, "metadata");
                o.parent = self.scope_ref(step, "parent")?;
                o.category = s(step, "category").map(Into::into);
                o.category_profile = step.get("category_profile").cloned();
                o.data_schema = match step.get("data_schema") {
                    Some(Value::Object(d)) => Some(baton::DataSchema {
                        name: d.get("name").and_then(Value::as_str).unwrap_or_default().into(),
                        version: d.get("version").and_then(Value::as_str).unwrap_or_default().into(),
                    }),
                    _ => None,
                };
                stack.mark(o)?;
                Ok(None)
            }
            "metric" => {
                stack.metric(req_str(step, "name")?, step.get("measurements").cloned().unwrap_or(Value::Null), s(step, "unit"))?;
                Ok(None)
            }
            "new_stack" => Ok(Some(Ref::Stack(self.rt.new_stack()))),
            "fork" => Ok(Some(Ref::Stack(stack.fork()))),
            "from_propagation" => Ok(Some(Ref::Stack(self.rt.stack_from_propagation(step.get("context").unwrap_or(&Value::Null))?))),
            "with_stack" => {
                let st = self.stack_ref(step)?;
                let nested = step.get("steps").and_then(Value::as_array).cloned().unwrap_or_default();
                with_stack(&st, || self.run_steps(&nested)).map_err(Error::internal)?;
                Ok(None)
            }
            "propagation_context" => Self::value(stack.propagation_context()),
            "traceparent" => Self::value(json!(stack.traceparent()?)),
            "flush" => {
                self.rt.flush(FLUSH)?;
                Ok(None)
            }
            "shutdown" => Self::value(json!(self.rt.shutdown(FLUSH)?)),
            "diagnostics" => {
                self.rt.flush(FLUSH)?;
                let d = self.rt.diagnostics();
                Self::value(
                    json!({"dropped_events": d.dropped_events, "subscriber_failures": d.subscriber_failures, "middleware_failures": d.middleware_failures}),
                )
            }
            "tool" => {
                let name = req_str(step, "name")?;
                let args = step.get("args").cloned().unwrap_or(Value::Null);
                let imp = step.get("impl").cloned().unwrap_or(Value::Null);
                let o = ToolOptions {
                    tool_call_id: s(step, "tool_call_id").map(String::from),
                    metadata: obj(step, "metadata"),
                    attributes: strings(step, "attributes"),
                    parent: self.scope_ref(step, "parent")?,
                };
                let v = if is_async(step) {
                    exec::block_on(stack.tool_async(name, args, move |a| std::future::ready(run_impl(&imp, a)), o))?
                } else {
                    stack.tool(name, args, |a| run_impl(&imp, a), o)?
                };
                Self::value(v)
            }
            "llm" => {
                let name = req_str(step, "name")?;
                let request = step.get("request").cloned().unwrap_or(Value::Null);
                let imp = step.get("impl").cloned().unwrap_or(Value::Null);
                let o = self.llm_options(step)?;
                let v = if is_async(step) {
                    exec::block_on(stack.llm_async(name, request, move |r| std::future::ready(run_impl(&imp, r)), o))?
                } else {
                    stack.llm(name, request, |r| run_impl(&imp, r), o)?
                };
                Self::value(v)
            }
            "llm_stream" => {
                let name = req_str(step, "name")?;
                let request = step.get("request").cloned().unwrap_or(Value::Null);
                let imp = step.get("impl").cloned().unwrap_or(Value::Null);
                let o = self.llm_options(step)?;
                let stream = if is_async(step) {
                    exec::block_on(stack.llm_stream_async(
                        name,
                        request,
                        move |_r| std::future::ready(Ok(baton::stream::from_iter(impl_chunks(&imp)))),
                        o,
                    ))?
                } else {
                    stack.llm_stream(
                        name,
                        request,
                        |_r| {
                            if let Some(m) = imp.get("marks") {
                                run_impl(&json!({"marks": m}), Value::Null)?;
                            }
                            Ok(impl_chunks(&imp))
                        },
                        o,
                    )?
                };
                // `take: n` stops after n chunks and drops the stream (a cancelled stream).
                let take = step.get("take").and_then(Value::as_u64).map_or(usize::MAX, |n| n as usize);
                let mut got = Vec::new();
                for chunk in stream.take(take) {
                    got.push(chunk?);
                }
                Self::value(Value::Array(got))
            }
            "tool_start" => {
                let o = ToolOptions {
                    tool_call_id: s(step, "tool_call_id").map(String::from),
                    metadata: obj(step, "metadata"),
                    attributes: strings(step, "attributes"),
                    parent: self.scope_ref(step, "parent")?,
                };
                let h = stack.tool_start(req_str(step, "name")?, step.get("args").unwrap_or(&Value::Null), o)?;
                Ok(Some(Ref::Call(h)))
            }
            "llm_start" => {
                let o = self.llm_options(step)?;
                let h = stack.llm_start(req_str(step, "name")?, step.get("request").unwrap_or(&Value::Null), o)?;
                Ok(Some(Ref::Call(h)))
            }
            "tool_end" | "llm_end" => {
                let h = self.call_ref(step)?;
                let key = if op == "tool_end" { "result" } else { "response" };
                let mut e = EndOptions { output: step.get(key).cloned(), metadata: obj(step, "metadata"), error: None };
                if let Some(err) = step.get("error") {
                    e.error = Some(Error::callback_failed(err.as_str().unwrap_or("error").to_string()));
                }
                h.end(e)?;
                Ok(None)
            }
            "tool_conditional_execution" => {
                stack.tool_conditional_execution(req_str(step, "name")?, step.get("args").unwrap_or(&Value::Null))?;
                Self::value(Value::Null)
            }
            "llm_conditional_execution" => {
                stack.llm_conditional_execution(req_str(step, "name")?, step.get("request").unwrap_or(&Value::Null))?;
                Self::value(Value::Null)
            }
            "tool_request_intercepts" => {
                Self::value(stack.tool_request_intercepts(req_str(step, "name")?, step.get("args").cloned().unwrap_or(Value::Null))?)
            }
            "llm_request_intercepts" => {
                Self::value(stack.llm_request_intercepts(req_str(step, "name")?, step.get("request").cloned().unwrap_or(Value::Null))?)
            }
            "register" => {
                let family = Family::parse(req_str(step, "kind")?)?;
                let name = req_str(step, "name")?;
                let mw = behavior::middleware(family, name, step.get("behavior").cloned().unwrap_or(json!({})), &self.recorders)?;
                let mut reg = Registration::new(name).priority(step.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32);
                reg.break_chain = step.get("break_chain").and_then(Value::as_bool).unwrap_or(false);
                reg.scope = self.scope_ref(step, "scope")?;
                self.rt.register(reg, mw)?;
                Ok(None)
            }
            "deregister" => {
                let family = Family::parse(req_str(step, "kind")?)?;
                let scope = self.scope_ref(step, "scope")?;
                Self::value(json!(self.rt.deregister(family, req_str(step, "name")?, scope.as_ref())?))
            }
            "read_jsonl" => {
                let text = read_matching(req_str(step, "path")?)?;
                let lines: std::result::Result<Vec<Value>, _> =
                    text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect();
                Self::value(Value::Array(lines?))
            }
            "read_json" => Self::value(serde_json::from_str(&read_matching(req_str(step, "path")?)?)?),
            "plugin_validate" => {
                let diagnostics = self.rt.plugin_validate(step.get("config").unwrap_or(&Value::Null));
                Self::value(Value::Array(diagnostics.iter().map(|d| d.to_json()).collect()))
            }
            "plugin_initialize" => Self::value(self.rt.plugin_initialize(step.get("config").unwrap_or(&Value::Null))?.to_json()),
            "plugin_clear" => {
                self.rt.plugin_clear()?;
                Ok(None)
            }
            "codec_decode_request" | "codec_encode_request" | "codec_decode_response" | "codec_aggregate_stream" => {
                Self::value(codec::op(op, step)?)
            }
            other => Err(Error::invalid_argument(format!("unknown op '{other}'"))),
        }
    }

    fn llm_options(&self, step: &Value) -> Result<LlmOptions> {
        Ok(LlmOptions {
            model_name: s(step, "model_name").map(String::from),
            metadata: obj(step, "metadata"),
            attributes: strings(step, "attributes"),
            parent: self.scope_ref(step, "parent")?,
            chunk_marks: step.get("chunk_marks").and_then(Value::as_bool).unwrap_or(true),
            codec: codec::option(step, "codec")?,
            response_codec: codec::option(step, "response_codec")?,
        })
    }
}

/// Reads the one file matching `path` (`*` wildcards allowed in the last component).
fn read_matching(path: &str) -> Result<String> {
    let p = Path::new(path);
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let target = if name.contains('*') {
        let dir = p.parent().unwrap_or(Path::new("."));
        let matches: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::invalid_argument(format!("path '{path}': {e}")))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard(name, n)))
            .map(|e| e.path())
            .collect();
        match matches.as_slice() {
            [one] => one.clone(),
            [] => return Err(Error::invalid_argument(format!("path '{path}': no file matches"))),
            many => return Err(Error::invalid_argument(format!("path '{path}': {} files match", many.len()))),
        }
    } else {
        p.to_path_buf()
    };
    std::fs::read_to_string(&target).map_err(|e| Error::invalid_argument(format!("path '{}': {e}", target.display())))
}

fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}
