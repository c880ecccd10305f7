//! Property tests: for every fixture request, random edits of the normalized form that the
//! format can represent encode losslessly — `decode(encode(edit(decode(x)), x)) ==
//! edit(decode(x))` — and every provider key the edit did not touch keeps its value.
//! Random JSON never panics a decoder.

use baton::codec::{self, CodecKind, Collector};
use proptest::prelude::*;
use serde_json::{json, Value};

fn requests() -> Vec<(CodecKind, Value)> {
    let mut out = Vec::new();
    for kind in CodecKind::ALL {
        let d = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec").join(kind.name());
        let mut names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            if p.file_name().unwrap().to_str().unwrap().starts_with("request_") {
                out.push((kind, serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()));
            }
        }
    }
    out
}

/// One random edit middleware could make.
#[derive(Clone, Debug)]
enum Edit {
    Text { msg: usize, part: usize, text: String },
    Temperature(f64),
    MaxTokens(u64),
    Model(String),
    DropMessage(usize),
    AppendUser(String),
    Extra(String, i64),
    ToolDescription { tool: usize, text: String },
    DropParams,
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..8, 0usize..4, "[a-z ]{0,12}").prop_map(|(msg, part, text)| Edit::Text { msg, part, text }),
        (0u32..200).prop_map(|t| Edit::Temperature(f64::from(t) / 100.0)),
        (1u64..100_000).prop_map(Edit::MaxTokens),
        "[a-z0-9.-]{1,16}".prop_map(Edit::Model),
        (0usize..8).prop_map(Edit::DropMessage),
        "[A-Za-z ]{1,20}".prop_map(Edit::AppendUser),
        ("x_[a-z]{1,6}", any::<i64>()).prop_map(|(k, v)| Edit::Extra(k, v)),
        (0usize..3, "[a-z ]{0,12}").prop_map(|(tool, text)| Edit::ToolDescription { tool, text }),
        Just(Edit::DropParams),
    ]
}

/// Applies an edit when it makes sense for this request; returns false otherwise.
fn apply(kind: CodecKind, n: &mut Value, e: &Edit) -> bool {
    match e {
        Edit::Text { msg, part, text } => {
            let Some(m) = n["messages"].get_mut(*msg) else { return false };
            match m.get_mut("content") {
                Some(Value::String(s)) => *s = text.clone(),
                Some(Value::Array(parts)) => match parts.get_mut(*part) {
                    Some(p) if p["type"] == "text" => p["text"] = json!(text),
                    _ => return false,
                },
                _ => return false,
            }
        }
        Edit::Temperature(t) => n["params"]["temperature"] = json!(t),
        Edit::MaxTokens(t) => n["params"]["max_tokens"] = json!(t),
        Edit::Model(m) => {
            if kind == CodecKind::GeminiGenerateContent && n.get("model").is_none() {
                return false;
            }
            n["model"] = json!(m)
        }
        Edit::DropMessage(i) => {
            let msgs = n["messages"].as_array_mut().unwrap();
            if *i >= msgs.len() || msgs.len() == 1 {
                return false;
            }
            msgs.remove(*i);
        }
        Edit::AppendUser(t) => {
            let content = match kind {
                // Gemini content is always parts; the others keep plain strings.
                CodecKind::GeminiGenerateContent => json!([{"type": "text", "text": t}]),
                _ => json!(t),
            };
            n["messages"].as_array_mut().unwrap().push(json!({"role": "user", "content": content}));
        }
        Edit::Extra(k, v) => n["extra"][k.as_str()] = json!(v),
        Edit::ToolDescription { tool, text } => match n.get_mut("tools").and_then(|t| t.get_mut(*tool)) {
            Some(t) if t.get("name").is_some() => t["description"] = json!(text),
            _ => return false,
        },
        Edit::DropParams => {
            if n.as_object_mut().unwrap().remove("params").is_none() {
                return false;
            }
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_stay_lossless(which in 0usize..64, edits in prop::collection::vec(edit_strategy(), 1..5)) {
        let all = requests();
        let (kind, original) = &all[which % all.len()];
        let mut n = codec::decode_request(*kind, original).unwrap();
        for e in &edits {
            apply(*kind, &mut n, e);
        }
        let out = codec::encode_request(*kind, &n, original).unwrap();
        prop_assert_eq!(&codec::decode_request(*kind, &out).unwrap(), &n);
        // Identity over the new request, too.
        prop_assert_eq!(&codec::encode_request(*kind, &n, &out).unwrap(), &out);
        // Provider keys no edit could reach keep their values.
        let touched = |k: &str| matches!(k, "messages" | "input" | "contents" | "model" | "tools" | "temperature" | "top_p" | "stop" | "max_tokens"
            | "max_completion_tokens" | "max_output_tokens" | "stop_sequences" | "generationConfig") || k.starts_with("x_");
        for (k, v) in original.as_object().unwrap() {
            if !touched(k) {
                prop_assert_eq!(out.get(k), Some(v), "key {} changed", k);
            }
        }
    }

    #[test]
    fn random_json_never_panics(v in json_value(4)) {
        for kind in CodecKind::ALL {
            if let Ok(n) = codec::decode_request(kind, &v) {
                prop_assert_eq!(&codec::encode_request(kind, &n, &v).unwrap(), &v);
            }
            let _ = codec::decode_response(kind, &v);
            let mut c = Collector::new(kind);
            let _ = c.push(&v);
            let _ = c.finish();
        }
        let _ = (codec::detect_request(&v), codec::detect_response(&v), codec::detect_chunk(&v));
    }
}

/// Random JSON biased toward provider field names.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("messages"),
        Just("role"),
        Just("content"),
        Just("type"),
        Just("text"),
        Just("tool_calls"),
        Just("function"),
        Just("name"),
        Just("arguments"),
        Just("input"),
        Just("contents"),
        Just("parts"),
        Just("choices"),
        Just("delta"),
        Just("usage"),
        Just("candidates"),
        Just("output"),
        Just("index"),
        Just("functionCall"),
        Just("system"),
        Just("tools"),
        Just("tool_choice"),
        Just("generationConfig"),
        Just("image_url"),
        Just("url"),
        Just("source"),
        Just("id"),
        Just("model"),
    ]
    .prop_map(String::from);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("text"),
            Just("tool"),
            Just("message_start"),
            Just("function_call"),
            Just("model"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
