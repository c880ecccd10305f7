//! Turns the event stream into OTLP items: open scopes are tracked (bounded) until their end
//! event, marks become span events on their open parent (else log records), metric marks
//! become metric data points.

use std::collections::{BTreeMap, HashMap, VecDeque};

use baton::{Event, Uuid, METRIC_SCHEMA};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, NumberDataPoint};
use opentelemetry_proto::tonic::trace::v1::{span, status::StatusCode, Span, Status};
use serde_json::Value;

use crate::attrs::Attrs;
use crate::config::Projection;
use crate::project;

/// Span events kept per span; later marks are counted in `dropped_events_count`.
const MAX_EVENTS_PER_SPAN: usize = 256;
/// Ended scopes remembered (uuid → trace id) so late children and marks keep their trace.
const CLOSED_MEMORY: usize = 4096;
/// W3C trace flags: sampled.
const SAMPLED: u32 = 0x01;
/// `SEVERITY_NUMBER_INFO` / `SEVERITY_NUMBER_WARN`.
const SEVERITY_INFO: i32 = 9;
const SEVERITY_WARN: i32 = 13;

/// One metric data point, with the metric it belongs to.
pub(crate) struct MetricPoint {
    pub name: String,
    pub unit: String,
    pub point: NumberDataPoint,
}

pub(crate) enum Item {
    Span(Span),
    Log(LogRecord),
    Metric(MetricPoint),
}

struct Open {
    trace_id: u128,
    seq: u64,
    start: Event,
    events: Vec<span::Event>,
    dropped_events: u32,
}

pub(crate) struct Tracker {
    projection: Projection,
    signals: crate::Signals,
    max_open: usize,
    open: HashMap<Uuid, Open>,
    /// Open scopes by start order, for evicting the oldest.
    order: BTreeMap<u64, Uuid>,
    seq: u64,
    closed: HashMap<Uuid, u128>,
    closed_order: VecDeque<Uuid>,
    /// Open scopes forgotten because `max_open` was reached.
    pub evicted: u64,
    /// End events whose start was never seen (exported with start time = end time).
    pub orphan_ends: u64,
}

pub(crate) fn nanos(micros: i64) -> u64 {
    (micros.max(0) as u64).saturating_mul(1000)
}
pub(crate) fn trace_bytes(t: u128) -> Vec<u8> {
    t.to_be_bytes().to_vec()
}
pub(crate) fn span_bytes(u: Uuid) -> Vec<u8> {
    (u.as_u128() as u64).to_be_bytes().to_vec()
}

impl Tracker {
    pub(crate) fn new(projection: Projection, max_open: usize, signals: crate::Signals) -> Tracker {
        Tracker {
            projection,
            signals,
            max_open: max_open.max(1),
            open: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            closed: HashMap::new(),
            closed_order: VecDeque::new(),
            evicted: 0,
            orphan_ends: 0,
        }
    }

    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The trace of a child of `parent`: the parent's trace when known, else the parent's
    /// own uuid (a remote parent), else — a root — `own`.
    fn trace_for(&self, parent: Option<Uuid>, own: Uuid) -> u128 {
        match parent {
            None => own.as_u128(),
            Some(p) => self.open.get(&p).map(|o| o.trace_id).or_else(|| self.closed.get(&p).copied()).unwrap_or(p.as_u128()),
        }
    }

    fn remember_closed(&mut self, uuid: Uuid, trace: u128) {
        if self.closed.insert(uuid, trace).is_none() {
            self.closed_order.push_back(uuid);
            while self.closed_order.len() > CLOSED_MEMORY {
                if let Some(old) = self.closed_order.pop_front() {
                    self.closed.remove(&old);
                }
            }
        }
    }

    pub(crate) fn handle(&mut self, e: &Event, out: &mut Vec<Item>) {
        if e.is_scope_start() {
            self.start(e);
        } else if e.is_scope_end() {
            out.push(Item::Span(self.end(e)));
        } else if e.data_schema.as_ref().is_some_and(|s| s.name == METRIC_SCHEMA) {
            match metric_points(e) {
                Some(points) if self.signals.metrics => out.extend(points.into_iter().map(Item::Metric)),
                Some(_) => {}
                None => self.mark(e, out),
            }
        } else {
            self.mark(e, out);
        }
    }

    fn start(&mut self, e: &Event) {
        if self.open.contains_key(&e.uuid) {
            return; // a duplicate start keeps the first
        }
        while self.open.len() >= self.max_open {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(o) = self.open.remove(&oldest) {
                self.evicted += 1;
                self.remember_closed(oldest, o.trace_id);
            }
        }
        let trace_id = self.trace_for(e.parent_uuid, e.uuid);
        self.seq += 1;
        self.order.insert(self.seq, e.uuid);
        self.open.insert(e.uuid, Open { trace_id, seq: self.seq, start: e.clone(), events: Vec::new(), dropped_events: 0 });
    }

    fn end(&mut self, e: &Event) -> Span {
        let open = self.open.remove(&e.uuid);
        if let Some(o) = &open {
            self.order.remove(&o.seq);
        } else {
            self.orphan_ends += 1;
        }
        let trace_id = open.as_ref().map(|o| o.trace_id).unwrap_or_else(|| self.trace_for(e.parent_uuid, e.uuid));
        self.remember_closed(e.uuid, trace_id);
        let start = open.as_ref().map(|o| &o.start);
        let p = project::scope(self.projection, start, e);
        let ok = match &e.status {
            Some(s) => Some(s.ok),
            None => e.metadata.get("otel.status_code").and_then(Value::as_str).map(|c| c != "ERROR"),
        };
        let description = e.metadata_value("otel.status_description").and_then(|v| v.as_str().map(str::to_string));
        let status = ok.map(|ok| Status {
            code: if ok { StatusCode::Ok } else { StatusCode::Error } as i32,
            message: if ok { String::new() } else { description.unwrap_or_default() },
        });
        let start_nanos = nanos(start.map(|s| s.timestamp_micros).unwrap_or(e.timestamp_micros));
        let (events, dropped_events) = open.map(|o| (o.events, o.dropped_events)).unwrap_or_default();
        Span {
            trace_id: trace_bytes(trace_id),
            span_id: span_bytes(e.uuid),
            parent_span_id: e.parent_uuid.map(span_bytes).unwrap_or_default(),
            flags: SAMPLED,
            name: p.name,
            kind: p.kind as i32,
            start_time_unix_nano: start_nanos,
            end_time_unix_nano: nanos(e.timestamp_micros).max(start_nanos),
            attributes: p.attributes,
            events,
            dropped_events_count: dropped_events,
            status,
            ..Default::default()
        }
    }

    fn mark(&mut self, e: &Event, out: &mut Vec<Item>) {
        let attributes = project::mark_attributes(self.projection, e);
        if let Some(open) = e.parent_uuid.and_then(|p| self.open.get_mut(&p)) {
            if open.events.len() < MAX_EVENTS_PER_SPAN {
                open.events.push(span::Event {
                    time_unix_nano: nanos(e.timestamp_micros),
                    name: e.name.to_string(),
                    attributes,
                    dropped_attributes_count: 0,
                });
            } else {
                open.dropped_events += 1;
            }
            return;
        }
        if !self.signals.logs {
            return;
        }
        let rejected = e.data.as_json().contains("\"rejected\"") && e.data.to_value().get("rejected") == Some(&Value::Bool(true));
        let (trace_id, span_id) = match e.parent_uuid {
            Some(p) => (trace_bytes(self.trace_for(Some(p), p)), span_bytes(p)),
            None => (Vec::new(), Vec::new()),
        };
        out.push(Item::Log(LogRecord {
            time_unix_nano: nanos(e.timestamp_micros),
            observed_time_unix_nano: nanos(baton::platform::now_micros()),
            severity_number: if rejected { SEVERITY_WARN } else { SEVERITY_INFO },
            severity_text: if rejected { "WARN" } else { "INFO" }.into(),
            body: Some(crate::attrs::string(e.data.as_json())),
            attributes,
            flags: if trace_id.is_empty() { 0 } else { SAMPLED },
            trace_id,
            span_id,
            event_name: e.name.to_string(),
            ..Default::default()
        }));
    }
}

/// `data = {measurements: [{value, attributes}], unit?}` → data points (gauge values).
fn metric_points(e: &Event) -> Option<Vec<MetricPoint>> {
    let data = e.data.to_value();
    let list = data.get("measurements")?.as_array()?;
    let unit = data.get("unit").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        let v = m.get("value")?;
        let value = match v.as_i64() {
            Some(i) => number_data_point::Value::AsInt(i),
            None => number_data_point::Value::AsDouble(v.as_f64()?),
        };
        let mut a = Attrs::default();
        if let Some(attrs) = m.get("attributes") {
            a.flatten("", attrs);
        }
        let attributes: Vec<KeyValue> = a.into_vec();
        out.push(MetricPoint {
            name: e.name.to_string(),
            unit: unit.clone(),
            point: NumberDataPoint { attributes, time_unix_nano: nanos(e.timestamp_micros), value: Some(value), ..Default::default() },
        });
    }
    Some(out)
}
