//! Middleware registration, and what an execution intercept calls (`next`, queued marks).

use super::*;

/// callNext(next, input): the async `next` of an execution intercept.
pub fn call_next(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Next(next) = handles::handle(env, a[0], "next")? else {
        return Err(Error::invalid_argument("next: expected a next handle").into());
    };
    let input = convert::text_in(env, a[1], "input")?;
    let fut = next.call(input);
    task::spawn(env, Box::pin(async move { fut.await.map(finish_json) }))
}

/// callNextSync(token, input): the `next` of a sync execution intercept.
pub fn call_next_sync(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let token = js::get_number(env, a[0])? as u32;
    let input = convert::text_in(env, a[1], "input")?;
    let out = crate::middleware::call_sync_next(token, input)?;
    convert::text_out(env, &out)
}

/// queueMark(ctx, name, data, metadata)
pub fn queue_mark(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Handle::Ctx(ctx) = handles::handle(env, a[0], "ctx")? else {
        return Err(Error::invalid_argument("ctx: expected a call context").into());
    };
    let name = js::req_string(env, a[1], "name")?;
    let data = convert::to_json(env, a[2], "data")?;
    let metadata = match convert::to_json(env, a[3], "metadata")? {
        Value::Object(m) => m,
        Value::Null => Default::default(),
        _ => return Err(Error::invalid_argument("metadata: expected an object").into()),
    };
    ctx.queue_mark(name, data, metadata);
    undefined(env)
}

/// register(kind, name, fn, options{priority, scope, breakChain, sync}, subscriberId)
pub fn register(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    // register(kind, name, fn, options, subscriberId, objects)
    let family = Family::parse(&js::req_string(env, a[0], "kind")?)?;
    let name = js::req_string(env, a[1], "name")?;
    let o = a[3];
    let priority = opt_number(env, o, "priority")?.unwrap_or(0.0);
    if priority.fract() != 0.0 || priority < i32::MIN as f64 || priority > i32::MAX as f64 {
        return Err(Error::invalid_argument("options.priority: expected a 32-bit integer").into());
    }
    let sync = opt_bool(env, o, "sync")?.unwrap_or(false);
    let id = if js::type_of(env, a[4])? == sys::ValueType::napi_number { js::get_number(env, a[4])? as u32 } else { 0 };
    if family != Family::Subscriber && !js::is_function(env, a[2])? {
        return Err(Error::invalid_argument("middleware: expected a function").into());
    }
    let objects = js::type_of(env, a[5])? == sys::ValueType::napi_boolean && js::get_bool(env, a[5])?;
    let mw = crate::middleware::build(env, family, a[2], sync, id, objects)?;
    let mut reg = Registration::new(name).priority(priority as i32).break_chain(opt_bool(env, o, "breakChain")?.unwrap_or(false));
    reg.scope = handles::opt_scope(env, o, "scope")?;
    let r = rt().register(reg, mw);
    crate::deliver::refresh_welcome(rt());
    r?;
    undefined(env)
}

/// deregister(kind, name, scope?)
pub fn deregister(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let family = Family::parse(&js::req_string(env, a[0], "kind")?)?;
    let name = js::req_string(env, a[1], "name")?;
    let scope = if js::is_nullish(env, a[2])? { None } else { Some(handles::scope(env, a[2], "scope")?.clone()) };
    let r = rt().deregister(family, &name, scope.as_ref());
    crate::deliver::refresh_welcome(rt());
    js::boolean(env, r?)
}
