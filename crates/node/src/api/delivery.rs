//! Handing batches of events to the facade (see `crate::deliver`).

use super::*;

pub fn take_events(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::take(env)
}

pub fn pending_counter(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::pending_counter(env)
}

pub fn meta_buffer(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::meta_buffer(env)
}
