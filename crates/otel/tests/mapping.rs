//! Span mapping edge cases, checked through a real OTLP/HTTP round trip to an in-process
//! receiver (no Python needed): error status and unwinding, remote parents, scopes whose end
//! never comes (bounded, counted), ends without starts, marks after their parent ended.

mod common;

use std::sync::Arc;
use std::time::Duration;

use baton::{
    Attributes, Category, EndOptions, Error, ErrorKind, Event, EventKind, EventStatus, Middleware, Registration, Runtime, RuntimeConfig,
    ScopeCategory, ScopeOptions, Subscriber, ToolOptions, Uuid,
};
use baton_otel::{EndpointConfig, OtelExporter};
use common::mini::MiniReceiver;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use serde_json::{json, Map};

fn exporter(r: &MiniReceiver, kind: &str, tweak: impl FnOnce(&mut EndpointConfig)) -> Arc<OtelExporter> {
    let mut c =
        EndpointConfig { scheduled_delay_millis: 20, timeout_millis: 2000, ..EndpointConfig::new(kind, &r.endpoint(), "http_binary") };
    tweak(&mut c);
    Arc::new(OtelExporter::new(c).unwrap())
}

fn str_attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()))
}

fn span_id(u: Uuid) -> Vec<u8> {
    (u.as_u128() as u64).to_be_bytes().to_vec()
}

fn event(kind: EventKind, uuid: Uuid, parent: Option<Uuid>, micros: i64, name: &str) -> Event {
    Event {
        kind,
        uuid,
        parent_uuid: parent,
        timestamp_micros: micros,
        name: name.into(),
        category: (kind != EventKind::Mark).then_some(Category::FUNCTION),
        attributes: Attributes::default(),
        category_profile: None,
        data: baton::Payload::NULL,
        data_schema: None,
        metadata: Map::new(),
        status: (kind == EventKind::Scope(ScopeCategory::End)).then_some(EventStatus::OK),
        chunk_index: None,
    }
}
const START: EventKind = EventKind::Scope(ScopeCategory::Start);
const END: EventKind = EventKind::Scope(ScopeCategory::End);

#[test]
fn errors_and_unwinding_set_the_span_status() {
    let r = MiniReceiver::start();
    let ex = exporter(&r, "gen_ai", |_| {});
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("otel"), Middleware::Subscriber(ex.clone())).unwrap();
    let stack = rt.new_stack();
    let agent = stack.push(ScopeOptions::new("a").category("agent")).unwrap();
    let err =
        stack.tool("boom", json!({}), |_| Err(Error::new(ErrorKind::CallbackFailed, "it broke")), ToolOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CallbackFailed);
    let _inner = stack.push(ScopeOptions::new("left-open")).unwrap();
    stack.pop(&agent, EndOptions::default()).unwrap(); // unwinds left-open
    rt.shutdown(Duration::from_secs(5)).unwrap();
    let spans = r.got.lock().unwrap().spans();
    assert_eq!(spans.len(), 3);
    let boom = by_name(&spans, "execute_tool boom");
    let st = boom.status.as_ref().unwrap();
    assert_eq!((st.code, st.message.as_str()), (StatusCode::Error as i32, "it broke"));
    assert_eq!(str_attr(boom, "error.type").as_deref(), Some("callback_failed"));
    let unwound = by_name(&spans, "left-open");
    assert_eq!(unwound.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(str_attr(unwound, "error.type").as_deref(), Some("unwound"));
    assert_eq!(by_name(&spans, "invoke_agent a").status.as_ref().unwrap().code, StatusCode::Ok as i32);
    assert_eq!(ex.dropped(), 0);
}

#[test]
fn remote_parents_orphan_ends_and_late_marks() {
    let r = MiniReceiver::start();
    let ex = exporter(&r, "full", |_| {});
    let remote = Uuid::now_v7(); // a scope in another process
    let child = Uuid::now_v7();
    let grandchild = Uuid::now_v7();
    let orphan = Uuid::now_v7();
    ex.on_event(&event(START, child, Some(remote), 1_000, "child")).unwrap();
    ex.on_event(&event(START, grandchild, Some(child), 1_001, "grandchild")).unwrap();
    ex.on_event(&event(END, grandchild, Some(child), 1_005, "grandchild")).unwrap();
    ex.on_event(&event(END, child, Some(remote), 1_010, "child")).unwrap();
    // a mark whose parent already ended: a log record in that parent's trace and span
    ex.on_event(&event(EventKind::Mark, Uuid::now_v7(), Some(child), 1_011, "late")).unwrap();
    // an end whose start was never seen
    ex.on_event(&event(END, orphan, None, 2_000, "orphan")).unwrap();
    ex.shutdown().unwrap();

    let got = r.got.lock().unwrap();
    let spans = got.spans();
    let trace = remote.as_u128().to_be_bytes().to_vec();
    let c = by_name(&spans, "child");
    assert_eq!(c.trace_id, trace, "remote parent: its uuid is the trace id");
    assert_eq!(c.parent_span_id, span_id(remote));
    assert_eq!((c.start_time_unix_nano, c.end_time_unix_nano), (1_000_000, 1_010_000));
    let g = by_name(&spans, "grandchild");
    assert_eq!(g.trace_id, trace, "children inherit the root from their parent");
    assert_eq!(g.parent_span_id, span_id(child));
    assert_eq!(g.span_id, span_id(grandchild));
    let o = by_name(&spans, "orphan");
    assert_eq!(o.trace_id, orphan.as_u128().to_be_bytes().to_vec());
    assert!(o.parent_span_id.is_empty());
    assert_eq!(o.start_time_unix_nano, o.end_time_unix_nano);
    let logs = got.log_records();
    assert_eq!(logs.len(), 1);
    assert_eq!((logs[0].event_name.as_str(), &logs[0].trace_id, &logs[0].span_id), ("late", &trace, &span_id(child)));
    assert_eq!(ex.stats().orphan_ends, 1);
}

#[test]
fn open_scopes_are_bounded_and_evictions_counted() {
    let r = MiniReceiver::start();
    let ex = exporter(&r, "full", |c| c.max_open_spans = 4);
    let ids: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    for (i, u) in ids.iter().enumerate() {
        ex.on_event(&event(START, *u, None, 1_000 + i as i64, &format!("s{i}"))).unwrap();
    }
    let st = ex.stats();
    assert_eq!((st.open_spans, st.spans_evicted), (4, 6));
    // the newest four are still open and end normally
    for (i, u) in ids.iter().enumerate().skip(6) {
        ex.on_event(&event(END, *u, None, 5_000 + i as i64, &format!("s{i}"))).unwrap();
    }
    ex.shutdown().unwrap();
    let st = ex.stats();
    assert_eq!((st.open_spans, st.spans_exported, st.spans_evicted, st.orphan_ends), (0, 4, 6, 0), "{st:?}");
    assert_eq!(st.dropped(), 6, "evicted scopes count as dropped");
    let spans = r.got.lock().unwrap().spans();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["s6", "s7", "s8", "s9"]);
    assert!(spans.iter().all(|s| s.start_time_unix_nano < s.end_time_unix_nano));
}

#[test]
fn after_shutdown_events_are_dropped_and_counted() {
    let r = MiniReceiver::start();
    let ex = exporter(&r, "full", |_| {});
    ex.shutdown().unwrap();
    let u = Uuid::now_v7();
    ex.on_event(&event(START, u, None, 1, "x")).unwrap();
    ex.on_event(&event(END, u, None, 2, "x")).unwrap();
    let st = ex.stats();
    assert_eq!((st.spans_dropped, st.spans_exported), (1, 0));
    assert!(ex.flush().is_ok(), "flush after shutdown returns at once");
}

/// With a provider codec, usage, model and messages come from the codec's annotations
/// (`annotated_request` on the start, `annotated_response` on the end).
#[test]
fn codec_annotations_feed_gen_ai_and_openinference() {
    use baton::codec::Codec;
    use baton::LlmOptions;
    for kind in ["full", "gen_ai", "openinference"] {
        let r = MiniReceiver::start();
        let ex = exporter(&r, kind, |_| {});
        let rt = Runtime::new(RuntimeConfig::default());
        rt.register(Registration::new("otel"), Middleware::Subscriber(ex.clone())).unwrap();
        let stack = rt.new_stack();
        let request = json!({"headers": {"x-api-key": "k"}, "content": {
            "model": "claude-sonnet-4", "max_tokens": 100, "system": "Be terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}});
        let response = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "Hello."}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 12, "output_tokens": 3}});
        let opts = LlmOptions { codec: Some(Codec::Auto), ..Default::default() };
        stack.llm("anthropic", request, move |_| Ok(response.clone()), opts).unwrap();
        rt.shutdown(Duration::from_secs(5)).unwrap();
        let spans = r.got.lock().unwrap().spans();
        assert_eq!(spans.len(), 1, "{kind}");
        let s = &spans[0];
        let int = |k: &str| {
            s.attributes.iter().find(|kv| kv.key == k).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::IntValue(i) => Some(*i),
                _ => None,
            })
        };
        if kind == "full" {
            // the annotations the other projections read are really there
            let ann: serde_json::Value = serde_json::from_str(&str_attr(s, "baton.category_profile.annotated_response").unwrap()).unwrap();
            assert_eq!(ann["usage"]["prompt_tokens"], 12);
            assert!(str_attr(s, "baton.category_profile.annotated_request").is_some());
        } else if kind == "gen_ai" {
            assert_eq!(s.name, "chat claude-sonnet-4");
            assert_eq!((int("gen_ai.usage.input_tokens"), int("gen_ai.usage.output_tokens")), (Some(12), Some(3)));
            assert_eq!(str_attr(s, "gen_ai.response.model").as_deref(), Some("claude-sonnet-4-20250514"));
            assert_eq!(str_attr(s, "gen_ai.response.id").as_deref(), Some("msg_1"));
            assert_eq!(int("gen_ai.request.max_tokens"), Some(100));
        } else {
            assert_eq!(str_attr(s, "openinference.span.kind").as_deref(), Some("LLM"));
            assert_eq!(
                (int("llm.token_count.prompt"), int("llm.token_count.completion"), int("llm.token_count.total")),
                (Some(12), Some(3), Some(15))
            );
            assert_eq!(str_attr(s, "llm.input_messages.0.message.role").as_deref(), Some("system"));
            assert_eq!(str_attr(s, "llm.input_messages.0.message.content").as_deref(), Some("Be terse."));
            assert_eq!(str_attr(s, "llm.input_messages.1.message.content").as_deref(), Some("Hi"));
            assert_eq!(str_attr(s, "llm.output_messages.0.message.content").as_deref(), Some("Hello."));
            assert!(!str_attr(s, "input.value").unwrap().contains("\"k\""), "credential header stripped");
        }
    }
}

/// An OTLP partial success that rejects spans counts them as failed.
#[test]
fn rejected_spans_count_as_failed() {
    let r = MiniReceiver::start();
    r.reject.store(true, std::sync::atomic::Ordering::Relaxed);
    let ex = exporter(&r, "full", |_| {});
    for i in 0..3 {
        let u = Uuid::now_v7();
        ex.on_event(&event(START, u, None, 10 + i, "x")).unwrap();
        ex.on_event(&event(END, u, None, 20 + i, "x")).unwrap();
    }
    ex.shutdown().unwrap();
    let st = ex.stats();
    assert_eq!((st.spans_exported, st.spans_failed, st.requests_failed), (0, 3, 1), "{st:?}");
    assert!(st.last_error.unwrap().contains("rejected 3 spans: no thanks"));
}

#[test]
fn stream_chunk_marks_become_span_events_with_their_index() {
    let r = MiniReceiver::start();
    let ex = exporter(&r, "full", |_| {});
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register(Registration::new("otel"), Middleware::Subscriber(ex.clone())).unwrap();
    let stack = rt.new_stack();
    let chunks: Vec<_> = stack
        .llm_stream("chat", json!({"content": {}}), |_| Ok((0..3).map(|i| Ok(json!({"delta": i})))), Default::default())
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(chunks.len(), 3);
    rt.shutdown(Duration::from_secs(5)).unwrap();
    let spans = r.got.lock().unwrap().spans();
    let span = spans.iter().find(|s| s.name.contains("chat")).expect("the stream's span");
    let marks: Vec<_> = span.events.iter().filter(|e| e.name == "llm.chunk").collect();
    assert_eq!(marks.len(), 3);
    for (i, m) in marks.iter().enumerate() {
        let index =
            m.attributes.iter().find(|kv| kv.key == "llm.chunk.index").and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.clone());
        assert_eq!(index, Some(any_value::Value::IntValue(i as i64)), "chunk {i}");
    }
}
