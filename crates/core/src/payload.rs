//! Event payloads: JSON text written once, when the event is built.

use std::fmt;

use serde::ser::Serializer;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// An event payload (`data`), kept as JSON text.
///
/// Once a payload is in an event nobody changes it, so it is serialized once when the event
/// is built: one exact-size allocation instead of a deep copy of the value, and exporters
/// write it verbatim. Readers that want structure call [`Payload::to_value`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(Option<Box<str>>);

thread_local! {
    /// Reused serialization buffer: the payload then costs one allocation of its exact size.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Payload {
    /// `null`.
    pub const NULL: Payload = Payload(None);

    /// Serializes `value` (no copy of the value itself is made).
    pub fn from_value(value: &Value) -> Payload {
        if value.is_null() {
            return Payload::NULL;
        }
        let text = SCRATCH.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                let _ = serde_json::to_writer(&mut *buf, value);
                // serde_json writes UTF-8; the check is the fast ASCII path, not a re-encode.
                let text: Box<str> = std::str::from_utf8(&buf).map(Box::from).unwrap_or_else(|_| String::from_utf8_lossy(&buf).into());
                if buf.capacity() > 64 * 1024 {
                    *buf = Vec::new(); // do not keep a huge buffer alive per thread
                }
                text
            }
            Err(_) => serde_json::to_string(value).unwrap_or_default().into_boxed_str(),
        });
        Payload(Some(text))
    }
    /// Takes JSON text; `invalid_argument` when it is not JSON.
    pub fn from_json(text: &str) -> crate::Result<Payload> {
        let v: &RawValue = serde_json::from_str(text).map_err(|e| crate::Error::invalid_argument(format!("data: invalid JSON: {e}")))?;
        Ok(if v.get() == "null" { Payload::NULL } else { Payload(Some(v.get().into())) })
    }
    /// Takes already validated JSON text verbatim.
    pub(crate) fn from_raw(raw: &RawValue) -> Payload {
        let text = raw.get();
        if text == "null" {
            Payload::NULL
        } else {
            Payload(Some(text.into()))
        }
    }
    /// Takes JSON text its caller wrote with a JSON serializer, without parsing it again
    /// (bindings serialize host objects straight to text; [`Payload::from_json`] would check
    /// that text a second time). Text that is not JSON makes the events that carry it
    /// invalid for exporters, so anything else must go through `from_json`.
    pub fn from_json_trusted(text: Box<str>) -> Payload {
        if &*text == "null" {
            Payload::NULL
        } else {
            Payload(Some(text))
        }
    }
    /// The payload as a JSON value (parsed on each call).
    pub fn to_value(&self) -> Value {
        match &self.0 {
            None => Value::Null,
            Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
    /// The JSON text.
    pub fn as_json(&self) -> &str {
        self.0.as_deref().unwrap_or("null")
    }
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl From<Value> for Payload {
    fn from(v: Value) -> Self {
        Payload::from_value(&v)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            None => s.serialize_unit(),
            // Written verbatim; the borrowed RawValue costs a validation pass, no copy.
            Some(text) => match serde_json::from_str::<&RawValue>(text) {
                Ok(raw) => raw.serialize(s),
                Err(e) => Err(serde::ser::Error::custom(format!("payload is not JSON: {e}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_round_trips_and_null_is_free() {
        assert!(Payload::from_value(&Value::Null).is_null());
        let p = Payload::from_value(&json!({"a": [1, 2.5, "x\"y"]}));
        assert_eq!(p.to_value(), json!({"a": [1, 2.5, "x\"y"]}));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"a":[1,2.5,"x\"y"]}"#);
        assert_eq!(Payload::from_json("not json").unwrap_err().kind(), crate::ErrorKind::InvalidArgument);
        assert!(Payload::from_json_trusted("null".into()).is_null());
        assert_eq!(Payload::from_json_trusted(r#"{"a":1}"#.into()).to_value(), json!({"a": 1}));
    }
}
