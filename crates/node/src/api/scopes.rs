//! Scopes (pushed, popped, and entered for `withScope`), marks and metrics.

use super::*;

pub(super) fn data_schema(env: Env, o: JsVal) -> JsResult<Option<DataSchema>> {
    match opt_json(env, o, "dataSchema")? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(d)) => Ok(Some(DataSchema {
            name: d.get("name").and_then(Value::as_str).unwrap_or_default().into(),
            version: d.get("version").and_then(Value::as_str).unwrap_or_default().into(),
        })),
        Some(_) => Err(Error::invalid_argument("options.dataSchema: expected {name, version}").into()),
    }
}

pub fn push(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let opts = scope_options(env, a[1], a[2])?;
    handles::wrap(env, Handle::Scope(s.push(opts)?))
}

pub(super) fn scope_options(env: Env, name: JsVal, o: JsVal) -> JsResult<ScopeOptions> {
    let name = js::req_string(env, name, "name")?;
    let mut opts = ScopeOptions::new(name).category(js::opt_string(env, o, "category")?.unwrap_or_else(|| "function".into()).as_str());
    opts.input = opt_json(env, o, "input")?;
    opts.metadata = opt_object(env, o, "metadata")?;
    opts.attributes = opt_strings(env, o, "attributes")?;
    opts.category_profile = opt_json(env, o, "categoryProfile")?.filter(|v| !v.is_null());
    opts.data_schema = data_schema(env, o)?;
    opts.parent = handles::opt_scope(env, o, "parent")?;
    Ok(opts)
}

/// enterScope(stack, name, options) → `[token, scope]`: a scope pushed on a fork of `stack`
/// for `withScope`. The fork stays here under `token` (its handle made only when the function
/// uses Baton: `enteredStack`), the caller's position published; `exitScope` pops the scope.
pub fn enter_scope(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let opts = scope_options(env, a[1], a[2])?;
    let position = id_number(s);
    let fork = s.fork();
    let scope = fork.push(opts)?;
    let out = js::array(env, 2)?;
    let h = handles::wrap(env, Handle::Scope(scope.clone()))?;
    js::set_index(env, out, 0, js::number(env, entered::hold(position, fork, entered::Held::Scope(scope))?)?)?;
    js::set_index(env, out, 1, h)?;
    Ok(out)
}

/// exitScope(token, endOptions): pops the scope of `enterScope` (its end event) and frees the
/// slot.
pub fn exit_scope(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let Some((stack, entered::Held::Scope(scope))) = entered::take(js::get_number(env, a[0])?, |h| matches!(h, entered::Held::Scope(_)))
    else {
        return Err(Error::invalid_state("scope: not a running withScope scope (already ended?)").into());
    };
    let end = end_options(env, a[1], "output")?;
    stack.pop(&scope, end)?;
    undefined(env)
}

pub fn pop(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let scope = handles::scope(env, a[1], "scope")?;
    let end = end_options(env, a[2], "output")?;
    s.pop(scope, end)?;
    undefined(env)
}

pub fn scope_info(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    handles::scope_info(env, handles::scope(env, a[0], "scope")?)
}

pub fn mark(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let o = a[2];
    let mut opts = MarkOptions::new(name);
    opts.data = opt_json(env, o, "data")?;
    opts.metadata = opt_object(env, o, "metadata")?;
    opts.parent = handles::opt_scope(env, o, "parent")?;
    opts.category = js::opt_string(env, o, "category")?.map(|c| c.as_str().into());
    opts.category_profile = opt_json(env, o, "categoryProfile")?.filter(|v| !v.is_null());
    opts.data_schema = data_schema(env, o)?;
    s.mark(opts)?;
    undefined(env)
}

pub fn metric(env: Env, a: &[JsVal]) -> JsResult<JsVal> {
    let s = handles::stack(env, a[0], "stack")?;
    let name = js::req_string(env, a[1], "name")?;
    let m = convert::to_json(env, a[2], "measurements")?;
    let unit = js::opt_string(env, a[3], "unit")?;
    s.metric(&name, m, unit.as_deref())?;
    undefined(env)
}
