//! ATOF 0.1 events: the one record of what happened, handed to subscribers and exporters.
//!
//! Events are Rust structs, not JSON trees: a subscriber written in Rust reads fields
//! directly, and JSON is produced only by whoever needs it (an exporter, a binding).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::id::Uuid;
pub use crate::payload::Payload;
use crate::time;

/// The ATOF version Baton emits.
pub const ATOF_VERSION: &str = "0.1";

/// A scope category. Well-known values have constants; any other string is preserved as is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Category(Cow<'static, str>);

impl Category {
    pub const AGENT: Category = Category(Cow::Borrowed("agent"));
    pub const FUNCTION: Category = Category(Cow::Borrowed("function"));
    pub const LLM: Category = Category(Cow::Borrowed("llm"));
    pub const TOOL: Category = Category(Cow::Borrowed("tool"));
    pub const RETRIEVER: Category = Category(Cow::Borrowed("retriever"));
    pub const EMBEDDER: Category = Category(Cow::Borrowed("embedder"));
    pub const RERANKER: Category = Category(Cow::Borrowed("reranker"));
    pub const GUARDRAIL: Category = Category(Cow::Borrowed("guardrail"));
    pub const EVALUATOR: Category = Category(Cow::Borrowed("evaluator"));
    pub const CUSTOM: Category = Category(Cow::Borrowed("custom"));
    pub const UNKNOWN: Category = Category(Cow::Borrowed("unknown"));

    const KNOWN: [Category; 11] = [
        Self::AGENT,
        Self::FUNCTION,
        Self::LLM,
        Self::TOOL,
        Self::RETRIEVER,
        Self::EMBEDDER,
        Self::RERANKER,
        Self::GUARDRAIL,
        Self::EVALUATOR,
        Self::CUSTOM,
        Self::UNKNOWN,
    ];

    /// Any category string; known names reuse their static form (no allocation).
    pub fn new(name: &str) -> Category {
        Self::KNOWN.iter().find(|c| c.as_str() == name).cloned().unwrap_or_else(|| Category(Cow::Owned(name.to_string())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Category {
    fn from(s: &str) -> Self {
        Category::new(s)
    }
}

/// Scope attribute flags: a sorted, de-duplicated set of strings (`parallel`, `relocatable`,
/// `stateful`, `streaming`, `remote`, or dotted vendor flags, all preserved).
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Attributes(Option<Arc<[Box<str>]>>);

impl Attributes {
    pub fn new<I, S>(flags: I) -> Attributes
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v: Vec<Box<str>> = flags.into_iter().map(|s| Box::from(s.as_ref())).collect();
        if v.is_empty() {
            return Attributes(None);
        }
        v.sort();
        v.dedup();
        Attributes(Some(v.into()))
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().flat_map(|a| a.iter().map(|s| &**s))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
    pub fn contains(&self, flag: &str) -> bool {
        self.iter().any(|f| f == flag)
    }
}

/// `{name, version}` naming the schema of an event's `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataSchema {
    pub name: String,
    pub version: String,
}

/// Start or end of a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeCategory {
    Start,
    End,
}

impl ScopeCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeCategory::Start => "start",
            ScopeCategory::End => "end",
        }
    }
}

/// The two ATOF event kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Scope(ScopeCategory),
    Mark,
}

/// The outcome an end event reports (`otel.status_code` and friends in `metadata`).
///
/// Kept as a field rather than four string entries in `metadata`: an end event is built on
/// every managed call, and these keys would be four allocations each time. They appear in
/// the JSON `metadata`, and [`Event::metadata_value`] reads them like any other key.
#[derive(Clone, Debug, PartialEq)]
pub struct EventStatus {
    /// `true` for `OK`, `false` for `ERROR`.
    pub ok: bool,
    /// `otel.status_description`.
    pub description: Option<String>,
    /// `error.type`: an error kind, `unwound` or `cancelled`.
    pub error_type: Option<Cow<'static, str>>,
    /// `exception.type`: the host language's type name of the original error.
    pub exception_type: Option<Arc<str>>,
}

impl EventStatus {
    pub const OK: EventStatus = EventStatus { ok: true, description: None, error_type: None, exception_type: None };

    /// The metadata entries, in a fixed order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        let code = Some(("otel.status_code", Value::from(if self.ok { "OK" } else { "ERROR" })));
        let desc = self.description.as_ref().map(|d| ("otel.status_description", Value::from(d.as_str())));
        let ty = self.error_type.as_ref().map(|t| ("error.type", Value::from(t.as_ref())));
        let exc = self.exception_type.as_ref().map(|t| ("exception.type", Value::from(t.as_ref())));
        [code, desc, ty, exc].into_iter().flatten()
    }

    /// True for the metadata keys a status owns.
    pub fn is_status_key(key: &str) -> bool {
        matches!(key, "otel.status_code" | "otel.status_description" | "error.type" | "exception.type")
    }
}

/// One ATOF 0.1 event.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub uuid: Uuid,
    pub parent_uuid: Option<Uuid>,
    /// Microseconds since the Unix epoch.
    pub timestamp_micros: i64,
    pub name: Arc<str>,
    /// Always present on scope events; optional on marks.
    pub category: Option<Category>,
    /// Scope events only (marks serialize none).
    pub attributes: Attributes,
    pub category_profile: Option<Value>,
    pub data: Payload,
    pub data_schema: Option<DataSchema>,
    /// Metadata, except the typed entries below (a chunk mark's index, an end's status).
    pub metadata: Map<String, Value>,
    /// End events: the status, serialized into `metadata` (a key already in `metadata` wins).
    pub status: Option<EventStatus>,
    /// A stream's `llm.chunk` marks: `llm.chunk.index`, serialized into `metadata` (a key
    /// already in `metadata` wins). A field rather than a map entry for the same reason as
    /// `status`: one is written per chunk, and a map entry costs a node and a key allocation.
    pub chunk_index: Option<u64>,
}

impl Event {
    /// A stream's `llm.chunk` mark for chunk `index` under the call's scope, stamped now.
    /// `name` is `llm.chunk`, shared by a stream's marks (one allocation per stream).
    pub(crate) fn chunk_mark(call: &crate::scope::ScopeNode, name: &Arc<str>, index: u64, data: Payload) -> Event {
        // One clock read serves the timestamp and the id's milliseconds.
        let now = time::event_time(0);
        Event {
            kind: EventKind::Mark,
            uuid: Uuid::v7_at(now),
            parent_uuid: Some(call.uuid),
            timestamp_micros: now,
            name: name.clone(),
            category: Some(Category::LLM),
            attributes: Attributes::default(),
            category_profile: None,
            data,
            data_schema: None,
            metadata: Map::new(),
            status: None,
            chunk_index: Some(index),
        }
    }

    /// The entries the JSON `metadata` shows beyond [`Event::metadata`]: the chunk index, then
    /// the status entries, each only where `metadata` has no entry of that key.
    pub fn typed_metadata(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        let chunk = self.chunk_index.map(|i| (CHUNK_INDEX_KEY, Value::from(i)));
        chunk.into_iter().chain(self.status.iter().flat_map(EventStatus::entries)).filter(|(k, _)| !self.metadata.contains_key(*k))
    }

    /// A metadata entry as the JSON `metadata` shows it (typed entries included).
    pub fn metadata_value(&self, key: &str) -> Option<Value> {
        if let Some(v) = self.metadata.get(key) {
            return Some(v.clone());
        }
        self.typed_metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// True when `key` is present in the JSON `metadata`.
    pub fn has_metadata(&self, key: &str) -> bool {
        self.metadata.contains_key(key) || self.typed_metadata().any(|(k, _)| k == key)
    }

    /// Moves the typed entries (chunk index, status) into `metadata` (existing keys win) and
    /// clears their fields: for code that edits the metadata as the JSON shows it.
    pub fn materialize_metadata(&mut self) {
        let typed: Vec<_> = self.typed_metadata().collect();
        for (k, v) in typed {
            self.metadata.insert(k.to_string(), v);
        }
        self.status = None;
        self.chunk_index = None;
    }

    /// The JSON `metadata` object, typed entries included.
    pub fn metadata_json(&self) -> Map<String, Value> {
        let mut m = self.metadata.clone();
        for (k, v) in self.typed_metadata() {
            m.insert(k.to_string(), v);
        }
        m
    }

    pub fn is_scope_start(&self) -> bool {
        self.kind == EventKind::Scope(ScopeCategory::Start)
    }
    pub fn is_scope_end(&self) -> bool {
        self.kind == EventKind::Scope(ScopeCategory::End)
    }
    pub fn is_mark(&self) -> bool {
        self.kind == EventKind::Mark
    }
    /// The RFC 3339 timestamp string.
    pub fn timestamp(&self) -> String {
        time::format_micros(self.timestamp_micros)
    }
    /// The ATOF JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
    /// The ATOF JSON text on one line (a JSONL record without the newline).
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::with_capacity(320 + self.data.as_json().len());
        self.write_json(&mut out);
        // `write_json` writes UTF-8 only (our ASCII, escaped strings, verbatim JSON text).
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the ATOF JSON text (one line, the same as the `Serialize` form) to `out`.
    ///
    /// Every subscriber behind a binding boundary and every ATOF writer serializes every
    /// event, so this writes the envelope directly: ids and the timestamp as fixed-width
    /// ASCII, the payload text verbatim (a [`Payload`] is valid JSON by construction, so it
    /// is not parsed again), serde only for strings and user JSON values.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_with(out, &mut NoLayout);
    }

    /// [`Event::write_json`], also recording in `layout` where each top-level value lies in
    /// the text written and what form it has.
    ///
    /// A host whose own JSON parser is its slowest step (V8's `JSON.parse` costs more than
    /// everything else a JS subscriber's event does) can then build the event object from
    /// slices of the text: strings without escapes are the slice between their quotes, and
    /// only what is really structured (`data`, user metadata) is parsed.
    pub fn write_json_layout(&self, out: &mut Vec<u8>, layout: &mut EventLayout) {
        *layout = EventLayout::default();
        layout.base = out.len();
        layout.kind = match self.kind {
            EventKind::Scope(ScopeCategory::Start) => LayoutKind::ScopeStart,
            EventKind::Scope(ScopeCategory::End) => LayoutKind::ScopeEnd,
            EventKind::Mark => LayoutKind::Mark,
        };
        self.write_with(out, layout);
    }

    fn write_with<R: Recorder>(&self, out: &mut Vec<u8>, rec: &mut R) {
        fn str_val<R: Recorder>(out: &mut Vec<u8>, rec: &mut R, f: EventField, s: &str) {
            let start = out.len();
            let form = if write_str(out, s) { ValueForm::PlainString } else { ValueForm::Json };
            rec.record(f, start, out.len(), form);
        }
        fn json_val<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
            if serde_json::to_writer(&mut *out, v).is_err() {
                put(out, b"null");
            }
        }
        fn null<R: Recorder>(out: &mut Vec<u8>, rec: &mut R, f: EventField) {
            let start = out.len();
            put(out, b"null");
            rec.record(f, start, out.len(), ValueForm::Null);
        }
        fn uuid<R: Recorder>(out: &mut Vec<u8>, rec: &mut R, f: EventField, id: &Uuid) {
            let start = out.len();
            put(out, b"\"");
            put(out, id.encode(&mut [0; 36]).as_bytes());
            put(out, b"\"");
            rec.record(f, start, out.len(), ValueForm::PlainString);
        }
        // Room for the envelope, the name and the payload at once: the pieces below then
        // only check it.
        // A host value is written as `null` and reported as `ValueForm::Host`: the event reaches
        // only subscribers that read it from their host's table, never this text.
        let data_text = if self.data.host_token().is_some() { "null" } else { self.data.as_json() };
        out.reserve(320 + self.name.len() + data_text.len());
        match self.kind {
            EventKind::Scope(sc) => {
                put(out, b"{\"kind\":\"scope\",\"scope_category\":\"");
                put(out, sc.as_str().as_bytes());
                put(out, b"\",");
            }
            EventKind::Mark => put(out, b"{\"kind\":\"mark\","),
        }
        put(out, b"\"atof_version\":");
        str_val(out, rec, EventField::AtofVersion, ATOF_VERSION);
        put(out, b",\"uuid\":");
        uuid(out, rec, EventField::Uuid, &self.uuid);
        put(out, b",\"parent_uuid\":");
        match &self.parent_uuid {
            Some(p) => uuid(out, rec, EventField::ParentUuid, p),
            None => null(out, rec, EventField::ParentUuid),
        }
        put(out, b",\"timestamp\":");
        let start = out.len();
        put(out, b"\"");
        // The timestamp's fixed-width text is copied in directly (no `String` per event).
        match time::micros_text(self.timestamp_micros) {
            Some(b) => put(out, &b),
            None => {
                let mut ts = String::new();
                time::write_micros(&mut ts, self.timestamp_micros);
                put(out, ts.as_bytes());
            }
        }
        put(out, b"\"");
        rec.record(EventField::Timestamp, start, out.len(), ValueForm::PlainString);
        put(out, b",\"name\":");
        str_val(out, rec, EventField::Name, &self.name);
        if matches!(self.kind, EventKind::Scope(_)) {
            put(out, b",\"category\":");
            str_val(out, rec, EventField::Category, self.category.as_ref().map(Category::as_str).unwrap_or("unknown"));
            put(out, b",\"attributes\":");
            let start = out.len();
            put(out, b"[");
            for (i, a) in self.attributes.iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                write_str(out, a);
            }
            put(out, b"]");
            let form = if self.attributes.is_empty() { ValueForm::EmptyArray } else { ValueForm::Json };
            rec.record(EventField::Attributes, start, out.len(), form);
            put(out, b",\"category_profile\":");
            match &self.category_profile {
                Some(p) => {
                    let start = out.len();
                    json_val(out, p);
                    rec.record(EventField::CategoryProfile, start, out.len(), ValueForm::Json);
                }
                None => null(out, rec, EventField::CategoryProfile),
            }
        } else {
            if let Some(c) = &self.category {
                put(out, b",\"category\":");
                str_val(out, rec, EventField::Category, c.as_str());
            }
            if let Some(p) = &self.category_profile {
                put(out, b",\"category_profile\":");
                let start = out.len();
                json_val(out, p);
                rec.record(EventField::CategoryProfile, start, out.len(), ValueForm::Json);
            }
        }
        put(out, b",\"data\":");
        let start = out.len();
        put(out, data_text.as_bytes());
        let form = if self.data.host_token().is_some() { ValueForm::Host } else { ValueForm::Json };
        rec.record(EventField::Data, start, out.len(), form);
        put(out, b",\"data_schema\":");
        match &self.data_schema {
            Some(s) => {
                let start = out.len();
                json_val(out, s);
                rec.record(EventField::DataSchema, start, out.len(), ValueForm::Json);
            }
            None => null(out, rec, EventField::DataSchema),
        }
        put(out, b",\"metadata\":");
        let start = out.len();
        // The two metadata nearly every event has are written as they are.
        let chunk_index = match (&self.status, self.metadata.len(), self.chunk_index) {
            (None, 0, Some(i)) => Some(i),
            (None, 1, None) => self.metadata.get(CHUNK_INDEX_KEY).and_then(Value::as_u64),
            _ => None,
        };
        let form = match &self.status {
            _ if chunk_index.is_some() => ValueForm::ChunkIndex,
            _ if !self.metadata.is_empty() || self.chunk_index.is_some() => ValueForm::Json,
            None => ValueForm::EmptyObject,
            Some(s) if *s == EventStatus::OK => ValueForm::StatusOk,
            Some(_) => ValueForm::Json,
        };
        match (form, chunk_index) {
            (ValueForm::EmptyObject, _) => put(out, b"{}"),
            (ValueForm::StatusOk, _) => put(out, b"{\"otel.status_code\":\"OK\"}"),
            (ValueForm::ChunkIndex, Some(i)) => {
                put(out, b"{\"llm.chunk.index\":");
                // serde_json writes integers straight into the buffer (no `String`).
                json_val(out, &i);
                put(out, b"}");
            }
            _ => json_val(out, &MetaSer(self)),
        }
        rec.record(EventField::Metadata, start, out.len(), form);
        put(out, b"}");
    }
}

/// Writes `s` as a JSON string; returns whether it needed no escapes (its text is then the
/// bytes between the quotes). Names, categories and attributes nearly always are plain, so
/// they are copied as they are instead of going through the escaping writer.
fn write_str(out: &mut Vec<u8>, s: &str) -> bool {
    if plain(s.as_bytes()) {
        put(out, b"\"");
        put(out, s.as_bytes());
        put(out, b"\"");
        true
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
        false
    }
}

/// True when `s` needs no escape in a JSON string. A counted loop: the size-optimized wasm
/// build keeps an iterator adapter's `next` as a call per byte.
fn plain(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x20 || b == b'"' || b == b'\\' {
            return false;
        }
        i += 1;
    }
    true
}

/// Appends `bytes` to `out`. The event writer appends ~30 small pieces per event; in the
/// size-optimized wasm build `Vec::extend_from_slice` stays two out-of-line calls per piece
/// (most of the writer's time there), so this is always inlined and a literal piece becomes
/// a few stores.
#[inline(always)]
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    if out.capacity() - out.len() < bytes.len() {
        out.reserve(bytes.len());
    }
    let len = out.len();
    // SAFETY: `reserve` made room for `bytes.len()` more bytes after `len`; the copy
    // initializes exactly those before the length covers them.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().add(len), bytes.len());
        out.set_len(len + bytes.len());
    }
}

/// What [`Event::write_with`] reports as it writes each top-level value.
trait Recorder {
    fn record(&mut self, field: EventField, start: usize, end: usize, form: ValueForm);
}

/// Plain [`Event::write_json`]: records nothing (compiled away).
struct NoLayout;

impl Recorder for NoLayout {
    #[inline(always)]
    fn record(&mut self, _: EventField, _: usize, _: usize, _: ValueForm) {}
}

/// The top-level values of an ATOF event after `kind` (and `scope_category`), in the order
/// [`Event::write_json`] writes them. [`EventLayout::fields`] is indexed by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventField {
    AtofVersion = 0,
    Uuid = 1,
    ParentUuid = 2,
    Timestamp = 3,
    Name = 4,
    /// Always on scope events; on marks only when set.
    Category = 5,
    /// Scope events only.
    Attributes = 6,
    /// Always on scope events (maybe `null`); on marks only when set.
    CategoryProfile = 7,
    Data = 8,
    DataSchema = 9,
    Metadata = 10,
}

impl EventField {
    /// How many fields an [`EventLayout`] holds.
    pub const COUNT: usize = 11;
    /// Their JSON keys, indexed by `Field as usize`.
    pub const KEYS: [&'static str; EventField::COUNT] = [
        "atof_version",
        "uuid",
        "parent_uuid",
        "timestamp",
        "name",
        "category",
        "attributes",
        "category_profile",
        "data",
        "data_schema",
        "metadata",
    ];
}

/// The form of one top-level value in an event's text, so a host can skip its parser for
/// the common ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueForm {
    /// Not written (a mark's optional `category` or `category_profile`).
    #[default]
    Absent = 0,
    /// `null`.
    Null = 1,
    /// A string without escapes: its value is the text between the quotes.
    PlainString = 2,
    /// Any other JSON (parse the slice).
    Json = 3,
    /// `[]`.
    EmptyArray = 4,
    /// `{}`.
    EmptyObject = 5,
    /// `{"otel.status_code":"OK"}` (the metadata of a successful end with nothing else).
    StatusOk = 6,
    /// `{"llm.chunk.index":N}` (the metadata of a stream's chunk marks): `N` is the text
    /// between the 19 characters of `{"llm.chunk.index":` and the closing brace.
    ChunkIndex = 7,
    /// A host value ([`crate::CallValue::Host`]): `null` in the text; the host's own table holds it.
    Host = 8,
}

/// The metadata key of a stream's chunk marks.
pub const CHUNK_INDEX_KEY: &str = "llm.chunk.index";

/// The event's kind and scope category, as an [`EventLayout`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum LayoutKind {
    #[default]
    ScopeStart = 1,
    ScopeEnd = 2,
    Mark = 3,
}

/// Where one value lies: byte offsets from the start of the event's text (`end` exclusive,
/// quotes of strings included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldSpan {
    pub start: u32,
    pub end: u32,
    pub form: ValueForm,
}

/// What [`Event::write_json_layout`] records: the event's kind and, per [`Field`], where its
/// value lies in the text written and its form.
#[derive(Clone, Debug, Default)]
pub struct EventLayout {
    pub kind: LayoutKind,
    pub fields: [FieldSpan; EventField::COUNT],
    /// Where the event's text starts in the buffer it was written to.
    base: usize,
}

impl EventLayout {
    /// A layout with nothing recorded (for statics; the same as `default()`).
    pub const EMPTY: EventLayout = EventLayout {
        kind: LayoutKind::ScopeStart,
        fields: [FieldSpan { start: 0, end: 0, form: ValueForm::Absent }; EventField::COUNT],
        base: 0,
    };

    /// How many numbers [`EventLayout::numbers`] gives.
    pub const NUMBERS: usize = 1 + 3 * EventField::COUNT;

    /// The layout as flat numbers for a host that reads it from a typed array: the kind, then
    /// per field its form, start and end, with `base` added to the offsets (where the event's
    /// text starts in the host's buffer).
    pub fn numbers(&self, base: u32) -> [u32; Self::NUMBERS] {
        let mut out = [0u32; Self::NUMBERS];
        out[0] = self.kind as u32;
        for (i, f) in self.fields.iter().enumerate() {
            out[1 + 3 * i] = f.form as u32;
            out[2 + 3 * i] = base + f.start;
            out[3 + 3 * i] = base + f.end;
        }
        out
    }

    /// The same layout with offsets counted in UTF-16 code units instead of bytes (what JS,
    /// Java and .NET strings index by). `text` is the event's text as written (from its
    /// first byte). ASCII text, the usual case, has the same offsets in both.
    pub fn to_utf16(&mut self, text: &[u8]) {
        if text.is_ascii() {
            return;
        }
        let units = |to: u32| -> u32 {
            let s = String::from_utf8_lossy(&text[..to as usize]);
            s.encode_utf16().count() as u32
        };
        for f in &mut self.fields {
            if f.form != ValueForm::Absent {
                f.start = units(f.start);
                f.end = units(f.end);
            }
        }
    }
}

impl Recorder for EventLayout {
    #[inline]
    fn record(&mut self, field: EventField, start: usize, end: usize, form: ValueForm) {
        self.fields[field as usize] = FieldSpan { start: (start - self.base) as u32, end: (end - self.base) as u32, form };
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.kind {
            EventKind::Scope(sc) => {
                m.serialize_entry("kind", "scope")?;
                m.serialize_entry("scope_category", sc.as_str())?;
            }
            EventKind::Mark => m.serialize_entry("kind", "mark")?,
        }
        m.serialize_entry("atof_version", ATOF_VERSION)?;
        m.serialize_entry("uuid", &self.uuid)?;
        m.serialize_entry("parent_uuid", &self.parent_uuid)?;
        m.serialize_entry("timestamp", &self.timestamp())?;
        m.serialize_entry("name", &*self.name)?;
        let scope = matches!(self.kind, EventKind::Scope(_));
        if scope {
            let cat = self.category.as_ref().map(Category::as_str).unwrap_or("unknown");
            m.serialize_entry("category", cat)?;
            m.serialize_entry("attributes", &AttrSer(&self.attributes))?;
            m.serialize_entry("category_profile", &self.category_profile)?;
        } else {
            if let Some(c) = &self.category {
                m.serialize_entry("category", c.as_str())?;
            }
            if let Some(p) = &self.category_profile {
                m.serialize_entry("category_profile", p)?;
            }
        }
        m.serialize_entry("data", &self.data)?;
        m.serialize_entry("data_schema", &self.data_schema)?;
        m.serialize_entry("metadata", &MetaSer(self))?;
        m.end()
    }
}

struct MetaSer<'a>(&'a Event);

impl Serialize for MetaSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        // `metadata` is ordered by key; the chunk index takes its place among the keys (the
        // order the JSON had when it was a map entry), the status entries follow them.
        let mut chunk = e.chunk_index.filter(|_| !e.metadata.contains_key(CHUNK_INDEX_KEY));
        for (k, v) in &e.metadata {
            if let Some(i) = chunk.filter(|_| k.as_str() > CHUNK_INDEX_KEY) {
                m.serialize_entry(CHUNK_INDEX_KEY, &i)?;
                chunk = None;
            }
            m.serialize_entry(k, v)?;
        }
        if let Some(i) = chunk {
            m.serialize_entry(CHUNK_INDEX_KEY, &i)?;
        }
        if let Some(status) = &e.status {
            for (k, v) in status.entries().filter(|(k, _)| !e.metadata.contains_key(*k)) {
                m.serialize_entry(k, &v)?;
            }
        }
        m.end()
    }
}

struct AttrSer<'a>(&'a Attributes);

impl Serialize for AttrSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(kind: EventKind) -> Event {
        Event {
            kind,
            uuid: "0190a8f2-7c3e-7abc-8def-0123456789ab".parse().unwrap(),
            parent_uuid: None,
            timestamp_micros: 1_700_000_000_000_001,
            name: "search".into(),
            category: Some(Category::TOOL),
            attributes: Attributes::new(["remote", "parallel", "remote"]),
            category_profile: Some(json!({"tool_call_id": "c1"})),
            data: json!({"q": 1}).into(),
            data_schema: None,
            metadata: Map::new(),
            status: None,
            chunk_index: None,
        }
    }

    #[test]
    fn scope_event_has_every_atof_field() {
        let v = sample(EventKind::Scope(ScopeCategory::Start)).to_json();
        assert_eq!(
            v,
            json!({
                "kind": "scope", "scope_category": "start", "atof_version": "0.1",
                "uuid": "0190a8f2-7c3e-7abc-8def-0123456789ab", "parent_uuid": null,
                "timestamp": "2023-11-14T22:13:20.000001Z", "name": "search",
                "category": "tool", "attributes": ["parallel", "remote"],
                "category_profile": {"tool_call_id": "c1"}, "data": {"q": 1},
                "data_schema": null, "metadata": {}
            })
        );
    }

    /// Events covering every field form: escaped and non-ASCII strings, parents or not,
    /// marks with and without their optional fields, statuses, empty and full metadata.
    fn writer_cases() -> Vec<Event> {
        let mut cases = Vec::new();
        for kind in [EventKind::Scope(ScopeCategory::Start), EventKind::Scope(ScopeCategory::End), EventKind::Mark] {
            cases.push(sample(kind));
            let mut e = sample(kind);
            e.parent_uuid = Some("0190a8f2-7c3e-7abc-8def-fedcba987654".parse().unwrap());
            e.name = "naïve \"quoted\" 東京 \u{1F680}\n".into();
            e.category = if kind == EventKind::Mark { None } else { Some(Category::new("my-cat")) };
            e.category_profile = None;
            e.data = Payload::from_value(&json!({"s": "line\nbreak", "n": [1, 2.5, null, true]}));
            e.data_schema = Some(DataSchema { name: "x".into(), version: "1".into() });
            e.metadata = Map::from_iter([("k".to_string(), json!({"nested": ["ü"]})), ("otel.status_code".to_string(), json!("OK"))]);
            e.status = Some(EventStatus {
                ok: false,
                description: Some("bo\"om".into()),
                error_type: Some("cancelled".into()),
                exception_type: None,
            });
            e.timestamp_micros = 0;
            cases.push(e);
            let mut e = sample(kind);
            e.data = Payload::NULL;
            e.attributes = Attributes::new(Vec::<String>::new());
            e.timestamp_micros = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
            cases.push(e);
        }
        for kind in [EventKind::Scope(ScopeCategory::End), EventKind::Mark] {
            let mut e = sample(kind);
            e.status = Some(EventStatus::OK);
            e.category = None;
            cases.push(e);
        }
        let mut chunk = sample(EventKind::Mark);
        chunk.metadata = Map::from_iter([(CHUNK_INDEX_KEY.to_string(), json!(12345))]);
        cases.push(chunk);
        // The typed index, alone and among metadata keys before and after it in key order.
        let mut typed = sample(EventKind::Mark);
        typed.chunk_index = Some(0);
        cases.push(typed.clone());
        typed.chunk_index = Some(u64::MAX);
        typed.metadata = Map::from_iter([("a".to_string(), json!(1)), ("z".to_string(), json!(2))]);
        cases.push(typed.clone());
        typed.metadata = Map::from_iter([("a".to_string(), json!(1))]);
        cases.push(typed);
        // Timestamps outside four-digit years take the general formatter.
        for micros in [i64::MIN / 2, -1, 0, 253_402_300_799_999_999, 253_402_300_800_000_000] {
            let mut e = sample(EventKind::Mark);
            e.timestamp_micros = micros;
            cases.push(e);
        }
        cases
    }

    /// The direct writer and the `Serialize` form give the same text, byte for byte.
    #[test]
    fn write_json_is_the_serialize_form() {
        for e in &writer_cases() {
            let mut direct = Vec::new();
            e.write_json(&mut direct);
            assert_eq!(String::from_utf8(direct).unwrap(), serde_json::to_string(e).unwrap());
            assert_eq!(e.to_json_string(), serde_json::to_string(e).unwrap());
        }
    }

    /// The layout writer writes the same text, and every field it reports is where it says,
    /// in the form it says: the slice parses to the key's value, a plain string's value is
    /// the text between its quotes, an absent field is missing from the JSON. Offsets hold
    /// after text already in the buffer, in bytes and (after `to_utf16`) in UTF-16 units.
    #[test]
    fn write_json_layout_reports_every_field() {
        let mut seen = std::collections::HashSet::new();
        for e in &writer_cases() {
            let mut out = b"[prefix \xc3\xa9]".to_vec();
            let base = out.len();
            let mut layout = EventLayout::default();
            e.write_json_layout(&mut out, &mut layout);
            let text = std::str::from_utf8(&out[base..]).unwrap();
            assert_eq!(text, serde_json::to_string(e).unwrap());
            let v: Value = serde_json::from_str(text).unwrap();
            let kind = match (v["kind"].as_str().unwrap(), v.get("scope_category").and_then(Value::as_str)) {
                ("scope", Some("start")) => LayoutKind::ScopeStart,
                ("scope", Some("end")) => LayoutKind::ScopeEnd,
                _ => LayoutKind::Mark,
            };
            assert_eq!(layout.kind, kind);
            let numbers = layout.numbers(7);
            assert_eq!(numbers[0], layout.kind as u32);
            for (i, f) in layout.fields.iter().enumerate() {
                assert_eq!(numbers[1 + 3 * i..4 + 3 * i], [f.form as u32, 7 + f.start, 7 + f.end]);
            }
            let mut utf16 = layout.clone();
            utf16.to_utf16(text.as_bytes());
            let units: Vec<u16> = text.encode_utf16().collect();
            for (i, key) in EventField::KEYS.iter().enumerate() {
                let f = layout.fields[i];
                seen.insert(f.form);
                let Some(expected) = v.get(*key) else {
                    assert_eq!(f.form, ValueForm::Absent, "{key}");
                    continue;
                };
                let slice = &text[f.start as usize..f.end as usize];
                assert_eq!(&serde_json::from_str::<Value>(slice).unwrap(), expected, "{key}");
                let u = utf16.fields[i];
                assert_eq!(String::from_utf16(&units[u.start as usize..u.end as usize]).unwrap(), slice, "{key}");
                match f.form {
                    ValueForm::Absent => panic!("{key} is present but reported absent"),
                    ValueForm::Null => assert!(expected.is_null()),
                    ValueForm::PlainString => assert_eq!(&slice[1..slice.len() - 1], expected.as_str().unwrap(), "{key}"),
                    ValueForm::Json => {}
                    ValueForm::EmptyArray => assert_eq!(expected, &json!([])),
                    ValueForm::EmptyObject => assert_eq!(expected, &json!({})),
                    ValueForm::StatusOk => assert_eq!(expected, &json!({"otel.status_code": "OK"})),
                    ValueForm::Host => panic!("{key}: none of these events carries a host value"),
                    ValueForm::ChunkIndex => {
                        assert_eq!(expected[CHUNK_INDEX_KEY].as_u64().unwrap().to_string(), slice[19..slice.len() - 1]);
                    }
                }
            }
        }
        assert_eq!(seen.len(), 8, "every form is exercised: {seen:?}");
    }

    #[test]
    fn mark_omits_scope_fields() {
        let mut e = sample(EventKind::Mark);
        e.category = None;
        e.category_profile = None;
        let v = e.to_json();
        let o = v.as_object().unwrap();
        assert!(!o.contains_key("attributes"));
        assert!(!o.contains_key("scope_category"));
        assert!(!o.contains_key("category"));
        assert_eq!(o["kind"], "mark");
    }

    #[test]
    fn status_serializes_into_metadata_and_explicit_keys_win() {
        let mut e = sample(EventKind::Scope(ScopeCategory::End));
        e.status = Some(EventStatus {
            ok: false,
            description: Some("boom".into()),
            error_type: Some("callback_failed".into()),
            exception_type: None,
        });
        e.metadata.insert("otel.status_description".into(), json!("overridden"));
        e.metadata.insert("k".into(), json!(1));
        let m = e.to_json()["metadata"].clone();
        assert_eq!(
            m,
            json!({"k": 1, "otel.status_code": "ERROR", "otel.status_description": "overridden", "error.type": "callback_failed"})
        );
        assert_eq!(e.metadata_value("error.type"), Some(json!("callback_failed")));
        e.materialize_metadata();
        assert!(e.status.is_none());
        assert_eq!(Value::Object(e.metadata.clone()), m);
    }

    #[test]
    fn chunk_index_serializes_into_metadata_in_key_order_and_an_explicit_key_wins() {
        let mut e = sample(EventKind::Mark);
        e.chunk_index = Some(7);
        assert_eq!(e.to_json()["metadata"], json!({"llm.chunk.index": 7}));
        assert_eq!(e.metadata_value(CHUNK_INDEX_KEY), Some(json!(7)));
        assert!(e.has_metadata(CHUNK_INDEX_KEY));
        e.metadata.insert("a".into(), json!(1));
        e.metadata.insert("z".into(), json!(2));
        assert_eq!(e.to_json_string().split("\"metadata\":").nth(1).unwrap(), r#"{"a":1,"llm.chunk.index":7,"z":2}}"#);
        e.metadata.insert(CHUNK_INDEX_KEY.into(), json!("mine"));
        assert_eq!(e.metadata_value(CHUNK_INDEX_KEY), Some(json!("mine")));
        assert_eq!(e.to_json()["metadata"], json!({"a": 1, "llm.chunk.index": "mine", "z": 2}));
        let shown = e.to_json()["metadata"].clone();
        e.materialize_metadata();
        assert_eq!(e.chunk_index, None);
        assert_eq!(Value::Object(e.metadata.clone()), shown);
    }

    #[test]
    fn unknown_category_is_preserved() {
        assert_eq!(Category::new("planner").as_str(), "planner");
        assert_eq!(Category::new("tool"), Category::TOOL);
    }
}
