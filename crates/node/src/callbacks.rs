//! Calling JS functions from the core, and carrying a JS throw through the core unchanged.

use std::sync::Arc;

use baton::{Error, ErrorKind};
use napi::sys;

use crate::js::{self, Env, JsRef, JsResult, JsVal, Thrown};
use crate::task;

/// The host value a JS callback threw, riding inside a core `Error` as its payload.
pub struct HostError(pub JsRef);

/// The JS value carried by `e`, if it came from a JS throw.
pub fn host_value(env: Env, e: &Error) -> JsResult<Option<JsVal>> {
    match e.payload().and_then(|p| p.downcast_ref::<HostError>()) {
        Some(h) => Ok(Some(h.0.get(env)?)),
        None => Ok(None),
    }
}

fn string_prop(env: Env, v: JsVal, key: &str) -> Option<String> {
    let t = js::type_of(env, v).ok()?;
    if t != sys::ValueType::napi_object && t != sys::ValueType::napi_function {
        return None;
    }
    let p = js::get(env, v, key).ok()?;
    if js::type_of(env, p).ok()? != sys::ValueType::napi_string {
        return None;
    }
    js::get_string(env, p).ok()
}

/// A core error for a thrown JS value: a `BatonError` keeps its kind, anything else is
/// `callback_failed`; the message is the error's message; the value itself rides along.
pub fn host_error(env: Env, value: JsVal) -> Error {
    let is_baton = (|| -> JsResult<bool> {
        let t = js::type_of(env, value)?;
        if t != sys::ValueType::napi_object {
            return Ok(false);
        }
        let m = js::get(env, value, "__baton")?;
        Ok(js::type_of(env, m)? == sys::ValueType::napi_boolean && js::get_bool(env, m)?)
    })()
    .unwrap_or(false);
    let kind = if is_baton { string_prop(env, value, "code").and_then(|c| ErrorKind::parse(&c)) } else { None };
    let message = string_prop(env, value, "message").unwrap_or_else(|| {
        let mut s = std::ptr::null_mut();
        let ok = unsafe { sys::napi_coerce_to_string(env, value, &mut s) } == sys::Status::napi_ok;
        if ok {
            js::get_string(env, s).unwrap_or_default()
        } else {
            let _ = js::take_exception(env);
            "a JS value was thrown".into()
        }
    });
    let exception_type = (|| {
        let c = js::get(env, value, "constructor").ok()?;
        string_prop(env, c, "name")
    })()
    .unwrap_or_else(|| "JSValue".into());
    let mut e = Error::new(kind.unwrap_or(ErrorKind::CallbackFailed), message).with_exception_type(exception_type);
    if let Ok(r) = JsRef::new(env, value) {
        e = e.with_payload(Arc::new(HostError(r)));
    }
    e
}

/// Turns a failure of a JS call into a core error (taking the pending exception).
pub fn thrown_to_error(t: Thrown) -> Error {
    match t {
        Thrown::Baton(e) => e,
        Thrown::Pending => {
            let env = js::env();
            match js::take_exception(env) {
                Ok(v) => host_error(env, v),
                Err(Thrown::Baton(e)) => e,
                Err(Thrown::Pending) => Error::internal("a JS exception could not be read"),
            }
        }
    }
}

/// A JS function held by the core (middleware, callbacks). Usable on its JS thread only.
pub struct JsFn(pub JsRef);

impl JsFn {
    pub fn new(env: Env, f: JsVal, what: &str) -> JsResult<JsFn> {
        if !js::is_function(env, f)? {
            return Err(Error::invalid_argument(format!("{what}: expected a function")).into());
        }
        Ok(JsFn(JsRef::new(env, f)?))
    }

    /// Calls the function with the current JS stack installed (AsyncLocalStorage), so work
    /// it does — also after an `await` — lands under the right scope.
    pub fn call(&self, env: Env, args: &[JsVal]) -> JsResult<JsVal> {
        let f = self.0.get(env)?;
        invoke(env, f, args)
    }
}

pub fn invoke(env: Env, f: JsVal, args: &[JsVal]) -> JsResult<JsVal> {
    let stack = task::current_js_stack();
    if stack.is_null() {
        return js::call(env, f, args);
    }
    let h = js::helper(env, |h| h.invoke)?;
    let mut all = Vec::with_capacity(args.len() + 2);
    all.push(stack);
    all.push(f);
    all.extend_from_slice(args);
    js::call(env, h, &all)
}

/// Runs a JS call, mapping a throw to a core error.
pub fn guarded<T>(f: impl FnOnce(Env) -> JsResult<T>) -> Result<T, Error> {
    if !js::on_js_thread() {
        return Err(Error::invalid_state("a JS callback was reached from a thread that is not a JS thread"));
    }
    let env = js::env();
    let _scope = js::Scope::open(env);
    f(env).map_err(thrown_to_error)
}
