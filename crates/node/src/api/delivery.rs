//! Handing batches of events to the facade (see `crate::deliver`).

use super::*;

pub fn take_events(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::take(env)
}

pub fn pending_counter(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::pending_counter(env)
}

/// `hostWelcome()`: see `deliver::host_welcome`.
pub fn host_welcome(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::refresh_welcome(super::options::rt());
    crate::deliver::host_welcome(env)
}

pub fn meta_buffer(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    crate::deliver::meta_buffer(env)
}
