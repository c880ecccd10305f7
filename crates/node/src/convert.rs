//! JS values ↔ JSON values. Only JSON crosses: `undefined` object fields are dropped, and
//! functions, symbols, BigInt, cycles, non-finite numbers and class instances without a
//! `toJSON` are `invalid_argument`, with the path of the offending value in the message.

use std::ptr;

use baton::Error;
use napi::sys;
use serde_json::{Map, Number, Value};

use crate::js::{self, ck, Env, JsResult, JsVal};

/// Where a value sits, for error messages: `args.items[2].when`.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(r) => r.to_string(),
            Path::Key(p, k) => {
                let ident = !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                    && !k.as_bytes()[0].is_ascii_digit();
                if ident {
                    format!("{}.{k}", p.render())
                } else {
                    format!("{}[{}]", p.render(), Value::String(k.to_string()))
                }
            }
            Path::Index(p, i) => format!("{}[{i}]", p.render()),
        }
    }
}

fn bad(path: &Path<'_>, what: &str) -> js::Thrown {
    Error::invalid_argument(format!("{}: {what} is not JSON", path.render())).into()
}

/// Converts a JS value to JSON; `root` names it in errors (`args`, `request`, ...).
pub fn to_json(env: Env, v: JsVal, root: &str) -> JsResult<Value> {
    let mut seen = Vec::new();
    convert(env, v, &Path::Root(root), &mut seen, 0)
}

fn constructor_name(env: Env, v: JsVal) -> String {
    let name = (|| -> JsResult<String> {
        let c = js::get(env, v, "constructor")?;
        if !js::is_function(env, c)? {
            return Ok("object".into());
        }
        let n = js::get(env, c, "name")?;
        if js::type_of(env, n)? != sys::ValueType::napi_string {
            return Ok("object".into());
        }
        js::get_string(env, n)
    })();
    match name {
        Ok(n) if !n.is_empty() => format!("a {n} instance"),
        _ => "an object with a custom prototype".into(),
    }
}

fn convert(env: Env, v: JsVal, path: &Path<'_>, seen: &mut Vec<JsVal>, depth: usize) -> JsResult<Value> {
    use sys::ValueType as T;
    if depth > 512 {
        return Err(Error::invalid_argument(format!("{}: nested too deeply (more than 512 levels)", path.render())).into());
    }
    let t = js::type_of(env, v)?;
    Ok(match t {
        t if t == T::napi_undefined || t == T::napi_null => Value::Null,
        t if t == T::napi_boolean => Value::Bool(js::get_bool(env, v)?),
        t if t == T::napi_number => {
            let n = js::get_number(env, v)?;
            if !n.is_finite() {
                return Err(bad(path, &format!("the number {n}")));
            }
            if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                Value::Number(Number::from(n as i64))
            } else {
                Value::Number(Number::from_f64(n).ok_or_else(|| bad(path, "a number"))?)
            }
        }
        t if t == T::napi_string => Value::String(js::get_string(env, v)?),
        t if t == T::napi_function => return Err(bad(path, "a function")),
        t if t == T::napi_symbol => return Err(bad(path, "a symbol")),
        t if t == T::napi_bigint => return Err(bad(path, "a BigInt")),
        t if t == T::napi_external => return Err(bad(path, "a native handle")),
        _ => {
            for s in seen.iter() {
                let mut eq = false;
                ck!(env, sys::napi_strict_equals(env, *s, v, &mut eq));
                if eq {
                    return Err(
                        Error::invalid_argument(format!("{}: a cycle (the value contains itself) is not JSON", path.render())).into()
                    );
                }
            }
            let mut is_array = false;
            ck!(env, sys::napi_is_array(env, v, &mut is_array));
            seen.push(v);
            let out = if is_array {
                let mut len = 0u32;
                ck!(env, sys::napi_get_array_length(env, v, &mut len));
                let mut items = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let mut item = ptr::null_mut();
                    ck!(env, sys::napi_get_element(env, v, i, &mut item));
                    items.push(convert(env, item, &Path::Index(path, i as usize), seen, depth + 1)?);
                }
                Value::Array(items)
            } else if is_plain(env, v)? {
                object_fields(env, v, path, seen, depth)?
            } else {
                let to_json = js::get(env, v, "toJSON")?;
                if js::is_function(env, to_json)? {
                    let recv = v;
                    let mut out = ptr::null_mut();
                    ck!(env, sys::napi_call_function(env, recv, to_json, 0, ptr::null(), &mut out));
                    seen.pop();
                    return convert(env, out, path, seen, depth + 1);
                }
                seen.pop();
                return Err(bad(path, &constructor_name(env, v)));
            };
            seen.pop();
            out
        }
    })
}

fn is_plain(env: Env, v: JsVal) -> JsResult<bool> {
    let mut proto = ptr::null_mut();
    ck!(env, sys::napi_get_prototype(env, v, &mut proto));
    if js::type_of(env, proto)? == sys::ValueType::napi_null {
        return Ok(true);
    }
    let object_proto = js::helper(env, |h| h.object_proto)?;
    let mut eq = false;
    ck!(env, sys::napi_strict_equals(env, proto, object_proto, &mut eq));
    Ok(eq)
}

fn object_fields(env: Env, v: JsVal, path: &Path<'_>, seen: &mut Vec<JsVal>, depth: usize) -> JsResult<Value> {
    let mut keys = ptr::null_mut();
    ck!(
        env,
        sys::napi_get_all_property_names(
            env,
            v,
            sys::KeyCollectionMode::own_only,
            sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
            sys::KeyConversion::numbers_to_strings,
            &mut keys,
        )
    );
    let mut len = 0u32;
    ck!(env, sys::napi_get_array_length(env, keys, &mut len));
    let mut map = Map::new();
    for i in 0..len {
        let mut k = ptr::null_mut();
        ck!(env, sys::napi_get_element(env, keys, i, &mut k));
        let key = js::get_string(env, k)?;
        let mut item = ptr::null_mut();
        ck!(env, sys::napi_get_property(env, v, k, &mut item));
        if js::type_of(env, item)? == sys::ValueType::napi_undefined {
            continue;
        }
        let value = convert(env, item, &Path::Key(path, &key), seen, depth + 1)?;
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

/// An options field that must be a JSON object (`metadata`): absent → empty.
pub fn opt_object(env: Env, options: JsVal, key: &str) -> JsResult<Map<String, Value>> {
    if js::is_nullish(env, options)? {
        return Ok(Map::new());
    }
    let v = js::get(env, options, key)?;
    if js::is_nullish(env, v)? {
        return Ok(Map::new());
    }
    match to_json(env, v, &format!("options.{key}"))? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::invalid_argument(format!("options.{key}: expected an object")).into()),
    }
}

/// An options field holding any JSON value; `None` when absent.
pub fn opt_json(env: Env, options: JsVal, key: &str) -> JsResult<Option<Value>> {
    if js::is_nullish(env, options)? {
        return Ok(None);
    }
    let v = js::get(env, options, key)?;
    if js::type_of(env, v)? == sys::ValueType::napi_undefined {
        return Ok(None);
    }
    Ok(Some(to_json(env, v, &format!("options.{key}"))?))
}

/// An options field holding an array of strings (`attributes`).
pub fn opt_strings(env: Env, options: JsVal, key: &str) -> JsResult<Vec<String>> {
    match opt_json(env, options, key)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, s)| match s {
                Value::String(s) => Ok(s),
                other => Err(Error::invalid_argument(format!("options.{key}[{i}]: expected a string, got {other}")).into()),
            })
            .collect(),
        Some(other) => Err(Error::invalid_argument(format!("options.{key}: expected an array of strings, got {other}")).into()),
    }
}

/// Converts JSON to a fresh JS value.
pub fn to_js(env: Env, v: &Value) -> JsResult<JsVal> {
    match v {
        Value::Null => js::null(env),
        Value::Bool(b) => js::boolean(env, *b),
        Value::Number(n) => {
            let mut out = ptr::null_mut();
            if let Some(i) = n.as_i64().filter(|i| i32::try_from(*i).is_ok()) {
                ck!(env, sys::napi_create_int32(env, i as i32, &mut out));
                Ok(out)
            } else {
                js::number(env, n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => js::string(env, s),
        Value::Array(items) => {
            let arr = js::array(env, items.len())?;
            for (i, item) in items.iter().enumerate() {
                let x = to_js(env, item)?;
                js::set_index(env, arr, i as u32, x)?;
            }
            Ok(arr)
        }
        Value::Object(map) => {
            let obj = js::object(env)?;
            for (k, item) in map {
                let key = js::string(env, k)?;
                let x = to_js(env, item)?;
                ck!(env, sys::napi_set_property(env, obj, key, x));
            }
            Ok(obj)
        }
    }
}

/// JSON text made by the facade (which validated the value and named paths in errors).
pub fn text_in(env: Env, v: JsVal, what: &str) -> JsResult<Value> {
    if js::type_of(env, v)? != sys::ValueType::napi_string {
        return Err(Error::internal(format!("{what}: expected JSON text from the facade")).into());
    }
    let text = js::get_string(env, v)?;
    serde_json::from_str(&text).map_err(|e| Error::invalid_argument(format!("{what}: invalid JSON: {e}")).into())
}

/// JSON text for the facade to parse (one string instead of a tree of N-API calls).
pub fn text_out(env: Env, v: &Value) -> JsResult<JsVal> {
    let text = serde_json::to_string(v).map_err(|e| Error::internal(format!("cannot serialize: {e}")))?;
    js::string(env, &text)
}

/// JSON text from the facade as call data, kept as text (the core parses it only if
/// middleware needs its structure).
pub fn data_in(env: Env, v: JsVal, what: &str) -> JsResult<baton::Data> {
    if js::type_of(env, v)? != sys::ValueType::napi_string {
        return Err(Error::internal(format!("{what}: expected JSON text from the facade")).into());
    }
    Ok(baton::Data::from_json(js::get_string(env, v)?, what)?)
}

/// Call data as JSON text for the facade (text the facade gave is handed back as it is).
pub fn data_out(env: Env, d: &baton::Data) -> JsResult<JsVal> {
    js::string(env, &d.json())
}
