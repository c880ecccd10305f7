//! Errors across the boundary: core errors as plain objects the facade turns into
//! `BatonError`s, and values thrown by JS callbacks parked while they cross the core.

use super::*;

thread_local! {
    /// Values thrown by JS callbacks, parked while the error crosses the core.
    pub(super) static THROWN: RefCell<HashMap<u32, JsValue>> = RefCell::new(HashMap::new());
}

/// Marks an error whose origin is a value a JS callback threw (parked in `THROWN`).
pub(super) struct Thrown(pub(super) u32);

pub(super) fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

thread_local! {
    /// The error of the last hot-path call that answered [`FAILED`] (`takeError` hands it over).
    pub(super) static FAILED_WITH: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// What the per-call functions (`enterTool`, `enterLlm`, `exitTool`, `failTool`, an entered
/// stream's `chunk`) answer when they fail; the facade then asks `takeError` for the error.
/// They return a plain number rather than a `Result`: a `Result` crosses as a multi-value
/// return, which V8 hands to JS as a new array on every call (measured: `docs/wasm.md`,
/// session 10).
pub(super) const FAILED: u32 = u32::MAX;

/// `Ok(n)` as `n`, an error as [`FAILED`] with the error parked for `takeError`.
pub(super) fn answer(r: Result<u32, JsValue>) -> u32 {
    match r {
        Ok(n) => n,
        Err(e) => {
            park(e);
            FAILED
        }
    }
}

/// Keeps `e` for `takeError`: the caller answers its failure value.
pub(super) fn park(e: JsValue) {
    FAILED_WITH.with(|f| *f.borrow_mut() = Some(e));
}

/// The error of the last call that answered `FAILED` (`u32::MAX`), once.
#[wasm_bindgen(js_name = takeError)]
pub fn take_error() -> JsValue {
    FAILED_WITH.with(|f| f.borrow_mut().take()).unwrap_or(JsValue::UNDEFINED)
}

pub(super) fn to_js(err: Error) -> JsValue {
    if let Some(t) = err.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
        if let Some(v) = THROWN.with(|m| m.borrow_mut().remove(&t.0)) {
            return v;
        }
    }
    let obj = Object::new();
    set(&obj, "__batonError", &JsValue::TRUE);
    set(&obj, "code", &JsValue::from_str(err.kind().as_str()));
    set(&obj, "message", &JsValue::from_str(err.message()));
    if let Some(d) = err.detail() {
        set(&obj, "detail", &JsValue::from_str(&json_text(d)));
    }
    obj.into()
}

pub(super) fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A value thrown by a JS callback, as a core error that carries it back to the caller.
pub(super) fn from_thrown(v: JsValue) -> Error {
    let is_obj = v.is_object();
    let message = if is_obj { get(&v, "message").as_string() } else { v.as_string() }
        .unwrap_or_else(|| "a JS callback threw a non-Error value".to_string());
    let kind = if is_obj && get(&v, "__baton").is_truthy() {
        get(&v, "code").as_string().and_then(|c| ErrorKind::parse(&c)).unwrap_or(ErrorKind::CallbackFailed)
    } else {
        ErrorKind::CallbackFailed
    };
    let type_name =
        if is_obj { get(&get(&v, "constructor"), "name").as_string().unwrap_or_else(|| "Object".into()) } else { "Error".into() };
    let id = next_id();
    THROWN.with(|m| m.borrow_mut().insert(id, v));
    Error::new(kind, message).with_exception_type(type_name).with_payload(Arc::new(Thrown(id)))
}

pub(super) fn bad(msg: impl Into<String>) -> JsValue {
    to_js(Error::invalid_argument(msg))
}
