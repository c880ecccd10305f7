//! The runtime: init, configuration, flush, shutdown and diagnostics.

use super::*;

pub fn init(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let h = a[0];
    let grab = |key: &str| -> JsResult<sys::napi_ref> {
        let f = js::get(env, h, key)?;
        js::make_ref(env, f).map_err(|e| match e {
            js::Thrown::Baton(e) => js::Thrown::Baton(Error::internal(format!("init: {key}: {}", e.message()))),
            p => p,
        })
    };
    let mut global = std::ptr::null_mut();
    js::status(env, unsafe { sys::napi_get_global(env, &mut global) })?;
    let object = js::get(env, global, "Object")?;
    let proto = js::get(env, object, "prototype")?;
    js::set_helpers(js::Helpers {
        make_error: grab("makeError")?,
        watch: grab("watch")?,
        invoke: grab("invoke")?,
        iter_of: grab("iterOf")?,
        object_proto: js::make_ref(env, proto)?,
    });
    let drain = js::get(env, h, "drain")?;
    crate::deliver::install(env, drain)?;
    undefined(env)
}

pub fn settle(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let id = js::get_number(env, a[0])? as usize;
    let ok = truthy(env, a[1])?;
    task::settle(env, id, ok, a[2])?;
    undefined(env)
}

pub fn configure(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let mut config = RuntimeConfig::default();
    if let Some(n) = opt_number(env, a[0], "queueCapacity")? {
        if !(n >= 1.0 && n.fract() == 0.0) {
            return Err(Error::invalid_argument("options.queueCapacity: expected a positive integer").into());
        }
        config.queue_capacity = n as usize;
    }
    if let Some(p) = js::opt_string(env, a[0], "overflow")? {
        config.overflow = OverflowPolicy::parse(&p)?;
    }
    Runtime::init_global(config)?;
    undefined(env)
}

pub(super) fn timeout(env: Env, v: JsVal) -> JsResult<Duration> {
    if js::is_nullish(env, v)? {
        return Ok(Duration::from_secs(30));
    }
    let ms = js::get_number(env, v)?;
    if !(ms >= 0.0 && ms.is_finite()) {
        return Err(Error::invalid_argument("timeout: expected a non-negative number of milliseconds").into());
    }
    Ok(Duration::from_micros((ms * 1000.0) as u64))
}

/// Checks that flush/shutdown may run here (not inside middleware, not after shutdown).
pub(super) fn check_can_wait() -> JsResult<()> {
    rt().flush(Duration::ZERO)?;
    Ok(())
}

pub fn flush(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let t = timeout(env, a[0])?;
    check_can_wait()?;
    crate::deliver::flush_async(env, t, false)
}

pub fn shutdown(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let t = timeout(env, a[0])?;
    check_can_wait()?;
    crate::deliver::flush_async(env, t, true)
}

pub fn diagnostics(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    let d = rt().diagnostics();
    let o = js::object(env)?;
    for (k, v) in [
        ("deliveredEvents", d.delivered_events),
        ("droppedEvents", d.dropped_events),
        ("subscriberFailures", d.subscriber_failures),
        ("middlewareFailures", d.middleware_failures),
        ("queued", d.queued),
    ] {
        let n = js::number(env, v as f64)?;
        js::set(env, o, k, n)?;
    }
    Ok(o)
}

pub fn is_shutdown(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    js::boolean(env, rt().is_shutdown())
}
