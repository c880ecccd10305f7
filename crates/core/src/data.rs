//! The data of a managed call, which may still be the JSON text a binding handed in.
//!
//! Every binding meets the core at JSON text (DESIGN.md §1). Parsing that text into a
//! [`Value`] only so the core can serialize it again into an event payload, and once more for
//! the host callback, cost the bindings more than the core's own work. A [`Data`] stays text
//! until a step needs its structure — middleware, codecs, sanitizers, credential stripping —
//! and is parsed once, then. With nothing of that registered, the caller's text becomes the
//! start event's payload and the callback's input untouched, and the callback's text becomes
//! the end event's payload and the caller's result.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::Payload;

/// Call data: validated JSON text, or a value.
#[derive(Clone, Debug)]
pub enum Data {
    /// JSON text, checked to be one JSON value when it was made.
    Json(Box<RawValue>),
    /// A value.
    Value(Value),
}

impl Data {
    /// Checks `text` is one JSON value (a validation pass, no copy of an owned `String`);
    /// the error names `what` (`args`, `returned value`, ...).
    ///
    /// Text with line breaks (pretty-printed JSON) is parsed instead of kept: payloads are
    /// written verbatim into line-delimited exports, where a raw line break would split an
    /// event. (Inside JSON strings line breaks are always escaped, so this is only layout.)
    pub fn from_json(text: impl Into<String>, what: &str) -> Result<Data> {
        let text = text.into();
        let invalid = |e: serde_json::Error| Error::invalid_argument(format!("{what}: invalid JSON: {e}"));
        if text.bytes().any(|b| b == b'\n' || b == b'\r') {
            return serde_json::from_str(&text).map(Data::Value).map_err(invalid);
        }
        RawValue::from_string(text).map(Data::Json).map_err(invalid)
    }

    /// The value, parsing the text once (in place) if needed.
    pub fn value(&mut self) -> &mut Value {
        if let Data::Json(raw) = self {
            *self = Data::Value(parse(raw));
        }
        match self {
            Data::Value(v) => v,
            Data::Json(_) => unreachable!("replaced above"),
        }
    }

    /// The value, borrowed when there is one and parsed (not kept) when there is text.
    pub fn as_value(&self) -> Cow<'_, Value> {
        match self {
            Data::Json(raw) => Cow::Owned(parse(raw)),
            Data::Value(v) => Cow::Borrowed(v),
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Data::Json(raw) => parse(&raw),
            Data::Value(v) => v,
        }
    }

    /// The JSON text, borrowed when there is text.
    pub fn json(&self) -> Cow<'_, str> {
        match self {
            Data::Json(raw) => Cow::Borrowed(raw.get()),
            Data::Value(v) => Cow::Owned(serde_json::to_string(v).unwrap_or_else(|_| "null".into())),
        }
    }

    /// The event payload for this data as it is (no sanitizer): the text itself, or the
    /// value serialized.
    pub fn to_payload(&self) -> Payload {
        match self {
            Data::Json(raw) => Payload::from_raw(raw),
            Data::Value(v) => Payload::from_value(v),
        }
    }

    /// [`Data::to_payload`] without copying the text (it moves into the payload).
    pub fn into_payload(self) -> Payload {
        match self {
            // Validated JSON when it was made.
            Data::Json(raw) => Payload::from_json_trusted(raw.into()),
            Data::Value(v) => Payload::from_value(&v),
        }
    }

    /// True when the data is text (nothing has needed its structure yet).
    pub fn is_json(&self) -> bool {
        matches!(self, Data::Json(_))
    }
}

impl From<Value> for Data {
    fn from(v: Value) -> Self {
        Data::Value(v)
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.as_value() == other.as_value()
    }
}

fn parse(raw: &RawValue) -> Value {
    // Validated when made; only the recursion limit could refuse it, as it would the text.
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_stays_text_until_its_structure_is_needed() {
        let mut d = Data::from_json(r#"{"q": "x", "n": [1, 2]}"#, "args").unwrap();
        assert!(d.is_json());
        assert_eq!(d.json(), r#"{"q": "x", "n": [1, 2]}"#, "the caller's text, verbatim");
        assert_eq!(d.to_payload().as_json(), r#"{"q": "x", "n": [1, 2]}"#);
        assert_eq!(d.clone().into_payload(), d.to_payload());
        assert_eq!(*d.as_value(), json!({"q": "x", "n": [1, 2]}));
        assert!(d.is_json(), "as_value does not convert");
        d.value()["q"] = json!("y");
        assert!(!d.is_json());
        assert_eq!(d.json(), r#"{"n":[1,2],"q":"y"}"#);
        assert_eq!(d, Data::Value(json!({"q": "y", "n": [1, 2]})));
    }

    #[test]
    fn bad_text_is_refused_with_the_field_named() {
        let e = Data::from_json("{\"a\": ", "args").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(e.message().starts_with("args: invalid JSON"), "{}", e.message());
        assert!(Data::from_json("null", "x").unwrap().to_payload().is_null(), "null text is the null payload");
        let pretty = Data::from_json("{\n  \"a\": \"x\\ny\"\n}", "x").unwrap();
        assert_eq!(pretty.to_payload().as_json(), r#"{"a":"x\ny"}"#, "layout line breaks never reach a payload");
    }
}
