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
///
/// A host binding whose subscribers live in the caller's own runtime (the Node addon's
/// object-format JS subscribers) may instead hand over a *host value*: a token for a snapshot
/// of the value that the host keeps itself. Such a payload has no text; the core lets it into
/// an event only when every consumer of that event takes host values
/// ([`Subscriber::takes_host_values`](crate::Subscriber::takes_host_values)), and otherwise
/// asks the host for the text (see [`CallValue`](crate::CallValue)).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(Repr);

#[derive(Clone, Default, PartialEq, Eq)]
enum Repr {
    #[default]
    Null,
    Text(Box<str>),
    Host(std::num::NonZeroU64),
}

thread_local! {
    /// Reused serialization buffer: the payload then costs one allocation of its exact size.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Payload {
    /// `null`.
    pub const NULL: Payload = Payload(Repr::Null);

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
        Payload(Repr::Text(text))
    }
    /// Takes JSON text; `invalid_argument` when it is not JSON.
    pub fn from_json(text: &str) -> crate::Result<Payload> {
        let v: &RawValue = serde_json::from_str(text).map_err(|e| crate::Error::invalid_argument(format!("data: invalid JSON: {e}")))?;
        Ok(if v.get() == "null" { Payload::NULL } else { Payload(Repr::Text(v.get().into())) })
    }
    /// Takes already validated JSON text verbatim.
    pub(crate) fn from_raw(raw: &RawValue) -> Payload {
        let text = raw.get();
        if text == "null" {
            Payload::NULL
        } else {
            Payload(Repr::Text(text.into()))
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
            Payload(Repr::Text(text))
        }
    }
    /// A host value: the token of a snapshot the host keeps (see the type's docs). Made only
    /// from [`CallValue::Host`](crate::CallValue::Host), which carries the way to its text.
    pub(crate) fn host(token: std::num::NonZeroU64) -> Payload {
        Payload(Repr::Host(token))
    }
    /// The token of a host value, `None` for JSON.
    pub fn host_token(&self) -> Option<std::num::NonZeroU64> {
        match self.0 {
            Repr::Host(t) => Some(t),
            _ => None,
        }
    }
    /// The payload as a JSON value (parsed on each call).
    pub fn to_value(&self) -> Value {
        match &self.0 {
            Repr::Null | Repr::Host(_) => Value::Null,
            Repr::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
    /// The JSON text.
    pub fn as_json(&self) -> &str {
        match &self.0 {
            Repr::Text(text) => text,
            Repr::Null => "null",
            Repr::Host(_) => {
                // The core never lets a host value reach a reader of text (module docs).
                debug_assert!(false, "a host value has no JSON text");
                "null"
            }
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self.0, Repr::Null)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Repr::Host(token) => write!(f, "<host value {token}>"),
            _ => f.write_str(self.as_json()),
        }
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
            Repr::Null => s.serialize_unit(),
            Repr::Host(_) => Err(serde::ser::Error::custom("a host value has no JSON text")),
            // Written verbatim; the borrowed RawValue costs a validation pass, no copy.
            Repr::Text(text) => match serde_json::from_str::<&RawValue>(text) {
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
