//! The ATOF JSONL exporter writes every delivered event, one per line, and nothing is lost
//! by flush or shutdown.

mod common;

use std::sync::Arc;

use baton::export::atof::{AtofFileExporter, FileMode};
use baton::{EndOptions, Middleware, Registration, Runtime, RuntimeConfig, ScopeOptions, ToolOptions};
use common::T;
use serde_json::{json, Value};

fn read_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect()
}

fn run_agent(rt: &Runtime, n: usize) {
    let stack = rt.new_stack();
    let root = stack.push(ScopeOptions::new("agent").category("agent")).unwrap();
    for i in 0..n {
        stack.tool("t", json!({"i": i}), Ok, ToolOptions { tool_call_id: Some(format!("c{i}")), ..Default::default() }).unwrap();
    }
    stack.pop(&root, EndOptions::default()).unwrap();
}

#[test]
fn writes_every_event_and_flush_puts_them_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/events.jsonl");
    let rt = Runtime::new(RuntimeConfig::default());
    let exporter = Arc::new(AtofFileExporter::open(&path, FileMode::Overwrite).unwrap());
    rt.register(Registration::new("atof"), Middleware::Subscriber(exporter.clone())).unwrap();
    run_agent(&rt, 500);
    assert!(rt.flush(T).unwrap());
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2 + 2 * 500);
    assert_eq!(exporter.written(), 1002);
    for l in &lines {
        assert_eq!(l["atof_version"], "0.1");
        let ts = l["timestamp"].as_str().unwrap();
        assert!(baton::time::parse_micros(ts).is_some(), "bad timestamp {ts}");
    }
    assert_eq!(lines[0]["name"], "agent");
    assert_eq!(lines[1]["category_profile"], json!({"tool_call_id": "c0"}));
    assert_eq!(lines.last().unwrap()["scope_category"], "end");
}

#[test]
fn append_keeps_and_overwrite_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.jsonl");
    for (mode, expected) in [(FileMode::Append, 4), (FileMode::Append, 8), (FileMode::Overwrite, 4)] {
        let rt = Runtime::new(RuntimeConfig::default());
        rt.register(Registration::new("atof"), Middleware::Subscriber(Arc::new(AtofFileExporter::open(&path, mode).unwrap()))).unwrap();
        run_agent(&rt, 1);
        assert!(rt.shutdown(T).unwrap(), "shutdown flushes the exporter");
        assert_eq!(read_lines(&path).len(), expected);
    }
}

#[test]
fn unwritable_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let err = AtofFileExporter::open(blocker.join("sub/e.jsonl"), FileMode::Append).err().unwrap();
    assert_eq!(err.kind(), baton::ErrorKind::InvalidArgument);
    assert!(err.message().contains("output_directory"), "{err}");
    assert_eq!(FileMode::parse("truncate").unwrap_err().kind(), baton::ErrorKind::InvalidArgument);
}
