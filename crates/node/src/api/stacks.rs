//! Stacks, forks, propagation and positions (`currentId`).

use super::*;

pub fn new_stack(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    handles::wrap(env, Handle::Stack(rt().new_stack()))
}

pub fn fork(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    handles::wrap(env, Handle::Stack(s.fork()))
}

pub fn stack_from_propagation(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let ctx = convert::to_json(env, a[0], "context")?;
    handles::wrap(env, Handle::Stack(rt().stack_from_propagation(&ctx)?))
}

pub fn propagation_context(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    convert::to_js(env, &s.propagation_context())
}

pub fn traceparent(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    js::string(env, &s.traceparent()?)
}

/// currentId(stack) → where new work on `stack` is parented right now, as a number
/// (`Stack::current_id`: the current scope's identity, 0 for an empty stack's base). The facade
/// keeps one shared fork (a pin) per stack and reuses it while this stays the same, instead of
/// a fork per async call.
pub fn current_id(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    js::number(env, id_number(s))
}

/// `Stack::current_id` as a JS number; an identity a number cannot hold exactly (2^53 and
/// above: no address on today's platforms) is -1, for which the facade never reuses a pin.
pub(super) fn id_number(s: &Stack) -> f64 {
    let id = s.current_id();
    if (id as u64) < (1u64 << 53) {
        id as f64
    } else {
        -1.0
    }
}

pub fn current_scope(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    match s.current() {
        Some(h) => handles::wrap(env, Handle::Scope(h)),
        None => js::null(env),
    }
}

pub fn stack_depth(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s: &Stack = handles::stack(env, a[0], "stack")?;
    js::number(env, s.depth() as f64)
}
