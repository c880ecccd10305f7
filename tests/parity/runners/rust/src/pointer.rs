//! JSON pointer edits used by the scenario behaviours (`set`, `remove`, `set_chunk`, ...).

use serde_json::Value;

fn tokens(ptr: &str) -> Result<Vec<String>, String> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    if !ptr.starts_with('/') {
        return Err(format!("invalid JSON pointer '{ptr}': must be empty or start with '/'"));
    }
    Ok(ptr[1..].split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

/// Sets `value` at `ptr`, creating missing intermediate objects.
pub fn set(doc: &mut Value, ptr: &str, value: Value) -> Result<(), String> {
    let toks = tokens(ptr)?;
    let Some((last, path)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => m.entry(t.clone()).or_insert_with(|| Value::Object(Default::default())),
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| format!("pointer '{ptr}': '{t}' is not an array index"))?;
                a.get_mut(i).ok_or_else(|| format!("pointer '{ptr}': index {i} out of range"))?
            }
            Value::Null => {
                *cur = Value::Object(Default::default());
                cur.as_object_mut().unwrap().entry(t.clone()).or_insert_with(|| Value::Object(Default::default()))
            }
            other => return Err(format!("pointer '{ptr}': cannot descend into {other}")),
        };
    }
    match cur {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) if last == "-" => a.push(value),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("pointer '{ptr}': '{last}' is not an array index"))?;
            *a.get_mut(i).ok_or_else(|| format!("pointer '{ptr}': index {i} out of range"))? = value;
        }
        Value::Null => {
            let mut m = serde_json::Map::new();
            m.insert(last.clone(), value);
            *cur = Value::Object(m);
        }
        other => return Err(format!("pointer '{ptr}': cannot set a field of {other}")),
    }
    Ok(())
}

/// Removes the value at `ptr` (absent is fine).
pub fn remove(doc: &mut Value, ptr: &str) -> Result<(), String> {
    let toks = tokens(ptr)?;
    let Some((last, path)) = toks.split_last() else {
        *doc = Value::Null;
        return Ok(());
    };
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => match m.get_mut(t) {
                Some(v) => v,
                None => return Ok(()),
            },
            Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
    }
    match cur {
        Value::Object(m) => {
            m.remove(last);
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Applies every `{ptr: value}` of an object.
pub fn set_all(doc: &mut Value, edits: &Value) -> Result<(), String> {
    let obj = edits.as_object().ok_or_else(|| format!("expected an object of pointer edits, got {edits}"))?;
    for (ptr, v) in obj {
        set(doc, ptr, v.clone())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_creates_and_replaces() {
        let mut d = json!({"a": {"b": 1}, "l": [1, 2]});
        set(&mut d, "/a/c/d", json!(true)).unwrap();
        set(&mut d, "/l/1", json!(9)).unwrap();
        set(&mut d, "/l/-", json!(3)).unwrap();
        set(&mut d, "/x~1y", json!("s")).unwrap();
        assert_eq!(d, json!({"a": {"b": 1, "c": {"d": true}}, "l": [1, 9, 3], "x/y": "s"}));
        assert!(set(&mut d, "no-slash", json!(1)).is_err());
        assert!(set(&mut d, "/a/b/c", json!(1)).is_err());
    }

    #[test]
    fn remove_is_lenient_about_absence() {
        let mut d = json!({"h": {"k": 1, "j": 2}});
        remove(&mut d, "/h/k").unwrap();
        remove(&mut d, "/h/zz/y").unwrap();
        assert_eq!(d, json!({"h": {"j": 2}}));
    }
}
