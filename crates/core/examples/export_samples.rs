//! Writes ATOF and ATIF files for representative agent runs into a folder, through the
//! plugin-installed observability component, so external validators can check them
//! (tests/observability). Usage: `export_samples DIR`.

use std::time::Duration;

use baton::{CallKind, Decision, EndOptions, LlmOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions, ToolOptions};
use serde_json::{json, Value};

fn responses() -> Vec<(&'static str, Value)> {
    vec![
        (
            "openai_chat",
            json!({"id": "chatcmpl-1", "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Looking it up.",
                "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"weather\"}"}}]}}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140, "prompt_tokens_details": {"cached_tokens": 64}}}),
        ),
        (
            "openai_responses",
            json!({"id": "resp_1", "model": "gpt-4.1", "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "call_id": "call_b", "name": "lookup", "arguments": "{\"q\":\"news\"}"}], "usage": {"input_tokens": 80, "output_tokens": 9, "input_tokens_details": {"cached_tokens": 0}}}),
        ),
        (
            "anthropic",
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet", "stop_reason": "tool_use",
                "content": [{"type": "text", "text": "I will look."}, {"type": "tool_use", "id": "toolu_c", "name": "lookup", "input": {"q": "stocks"}}],
                "usage": {"input_tokens": 50, "output_tokens": 15, "cache_read_input_tokens": 200, "cache_creation_input_tokens": 10}}),
        ),
        (
            "gemini",
            json!({"modelVersion": "gemini-2.0", "candidates": [{"content": {"role": "model", "parts": [{"text": "On it."}, {"functionCall": {"id": "call_d", "name": "lookup", "args": {"q": "sports"}}}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 6, "totalTokenCount": 46}}),
        ),
    ]
}

fn call_id(provider: &str) -> &'static str {
    match provider {
        "openai_chat" => "call_a",
        "openai_responses" => "call_b",
        "anthropic" => "toolu_c",
        _ => "call_d",
    }
}

fn main() -> baton::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "out/samples".into());
    let rt = Runtime::new(RuntimeConfig::default());
    let doc = json!({"version": 1, "components": [{"kind": "observability", "config": {"version": 1,
        "atof": {"enabled": true, "sinks": [{"type": "file", "output_directory": dir, "filename": "events.jsonl", "mode": "overwrite"}]},
        "atif": {"enabled": true, "agent_name": "samples", "agent_version": "1.0.0", "output_directory": dir, "filename_template": "trajectory-{session_id}.json",
                 "tool_definitions": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}], "extra": {"suite": "export_samples"}}}}]});
    rt.plugin_initialize(&doc)?;
    rt.register(
        Registration::new("no-delete"),
        Middleware::guardrail(CallKind::Tool, |c, _| {
            Ok(if &*c.name == "delete" { Decision::Reject("deleting is not allowed".into()) } else { Decision::Allow })
        }),
    )?;
    let stack = rt.new_stack();
    for (provider, response) in responses() {
        let agent = stack
            .push(ScopeOptions::new(format!("agent-{provider}")).category("agent").input(json!({"task": format!("use {provider}")})))?;
        let r = response.clone();
        stack.llm(
            provider,
            json!({"headers": {"authorization": "Bearer secret"}, "content": {"messages": [{"role": "user", "content": "hi"}]}}),
            move |_| Ok(r.clone()),
            LlmOptions::default(),
        )?;
        stack.tool(
            "lookup",
            json!({"q": provider}),
            |a| Ok(json!({"answer": a["q"]})),
            ToolOptions { tool_call_id: Some(call_id(provider).into()), ..Default::default() },
        )?;
        // A failing tool, a tool outside any LLM call, and a rejected one.
        let _ =
            stack.tool("flaky", json!({}), |_| Err(baton::Error::callback_failed("timeout talking to the API")), ToolOptions::default());
        let _ = stack.tool("delete", json!({"path": "/"}), |_| Ok(Value::Null), ToolOptions::default());
        // A subagent with its own LLM call, and a failing LLM call.
        let sub = stack.push(ScopeOptions::new("helper").category("agent").input(json!("summarize")))?;
        let r2 = response.clone();
        stack.llm(provider, json!({"content": {}}), move |_| Ok(r2.clone()), LlmOptions::default())?;
        stack.pop(&sub, EndOptions::default().output(json!("summary")))?;
        let _ = stack.llm(
            "broken",
            json!({"content": {}}),
            |_| Err(baton::Error::new(baton::ErrorKind::Upstream, "503 from provider")),
            LlmOptions::default(),
        );
        // A streamed final answer.
        let s = stack.llm_stream(
            "answer",
            json!({"content": {}}),
            |_| Ok(["Done", " with ", provider].map(|t| Ok(json!({"choices": [{"delta": {"content": t}}]})))),
            LlmOptions::default(),
        )?;
        s.for_each(drop);
        stack.pop(&agent, EndOptions::default().output(json!("finished")))?;
    }
    // An agent that did nothing at all still yields a valid trajectory.
    let empty = stack.push(ScopeOptions::new("idle").category("agent"))?;
    stack.pop(&empty, EndOptions::default())?;
    rt.shutdown(Duration::from_secs(10))?;
    println!("wrote samples to {dir}");
    Ok(())
}
