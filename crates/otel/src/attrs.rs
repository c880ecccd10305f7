//! JSON → OTLP attribute values, and attribute lists without duplicate keys.

use std::collections::HashSet;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use serde_json::Value;

/// Deepest nesting flattened into dotted keys; deeper objects become JSON text.
const MAX_DEPTH: usize = 8;

pub(crate) fn string(s: impl Into<String>) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(s.into())) }
}
pub(crate) fn int(v: i64) -> AnyValue {
    AnyValue { value: Some(any_value::Value::IntValue(v)) }
}

/// A scalar JSON value (or an array of scalars) as an attribute value; objects and mixed
/// arrays as JSON text. `null` is `None` (OTLP attributes have no null).
pub(crate) fn any(v: &Value) -> Option<AnyValue> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => AnyValue { value: Some(any_value::Value::BoolValue(*b)) },
        Value::Number(n) => match n.as_i64() {
            Some(i) => int(i),
            None => AnyValue { value: Some(any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN))) },
        },
        Value::String(s) => string(s.as_str()),
        Value::Array(items) if items.iter().all(|i| matches!(i, Value::Bool(_) | Value::Number(_) | Value::String(_))) => {
            AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: items.iter().filter_map(any).collect() })) }
        }
        other => string(other.to_string()),
    })
}

/// An attribute list that keeps the first value given for a key.
#[derive(Default)]
pub(crate) struct Attrs {
    list: Vec<KeyValue>,
    seen: HashSet<String>,
}

impl Attrs {
    pub(crate) fn put(&mut self, key: impl Into<String>, value: AnyValue) {
        let key = key.into();
        if self.seen.insert(key.clone()) {
            self.list.push(KeyValue { key, value: Some(value), ..Default::default() });
        }
    }
    pub(crate) fn str(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.put(key, string(value));
    }
    pub(crate) fn int(&mut self, key: impl Into<String>, value: i64) {
        self.put(key, int(value));
    }
    /// A JSON value; `null` is skipped.
    pub(crate) fn json(&mut self, key: impl Into<String>, value: &Value) {
        if let Some(v) = any(value) {
            self.put(key, v);
        }
    }
    /// Objects become dotted keys under `prefix` (`prefix.a.b`); other values as [`any`].
    pub(crate) fn flatten(&mut self, prefix: &str, value: &Value) {
        self.flatten_at(prefix, value, 0);
    }
    fn flatten_at(&mut self, prefix: &str, value: &Value, depth: usize) {
        match value {
            Value::Object(map) if depth < MAX_DEPTH => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    self.flatten_at(&key, v, depth + 1);
                }
            }
            other if !prefix.is_empty() => self.json(prefix.to_string(), other),
            _ => {}
        }
    }
    pub(crate) fn into_vec(self) -> Vec<KeyValue> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(v: Value) -> Vec<(String, String)> {
        let mut a = Attrs::default();
        a.flatten("", &v);
        a.into_vec().into_iter().map(|kv| (kv.key, format!("{:?}", kv.value.unwrap().value.unwrap()))).collect()
    }

    #[test]
    fn flattening_uses_dotted_keys_and_keeps_scalars_typed() {
        let f = flat(json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": null, "f": [{"g": 1}], "h": 1.5, "i": true}));
        assert_eq!(
            f,
            [
                ("a.b".to_string(), "IntValue(1)".to_string()),
                (
                    "a.c".into(),
                    "ArrayValue(ArrayValue { values: [AnyValue { value: Some(IntValue(1)) }, AnyValue { value: Some(IntValue(2)) }] })"
                        .into()
                ),
                ("d".into(), "StringValue(\"x\")".into()),
                ("f".into(), "StringValue(\"[{\\\"g\\\":1}]\")".into()),
                ("h".into(), "DoubleValue(1.5)".into()),
                ("i".into(), "BoolValue(true)".into()),
            ]
        );
    }

    #[test]
    fn first_value_for_a_key_wins() {
        let mut a = Attrs::default();
        a.str("k", "first");
        a.str("k", "second");
        let v = a.into_vec();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].value.as_ref().unwrap().value, Some(any_value::Value::StringValue("first".into())));
    }
}
