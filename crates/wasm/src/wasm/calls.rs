//! Managed tool and LLM calls: run by the core with JS callbacks, or entered (only
//! subscribers see them) and run by the facade between `enterTool` and `exitTool`.

use super::*;

/// Calls a JS function that takes and returns JSON text; a throw becomes the call's error.
pub(super) fn call_json(f: &Function, input: &Value) -> baton::Result<Value> {
    call_json_with(f, input, None)
}

/// The `CallInfo` middleware receives, as JSON text (the core's writer, node/'s key names).
pub(super) fn info_json(info: &baton::CallInfo) -> String {
    info.to_json(baton::KeyStyle::Camel)
}

pub(super) fn call_js(f: &Function, input: &Value, info: Option<&baton::CallInfo>) -> Result<JsValue, JsValue> {
    let input = JsValue::from_str(&json_text(input));
    match info {
        Some(i) => f.call2(&JsValue::NULL, &input, &JsValue::from_str(&info_json(i))),
        None => f.call1(&JsValue::NULL, &input),
    }
}

pub(super) fn call_json_with(f: &Function, input: &Value, info: Option<&baton::CallInfo>) -> baton::Result<Value> {
    match call_js(f, input, info) {
        Ok(r) => match r.as_string() {
            Some(t) => serde_json::from_str(&t).map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}"))),
            None if r.is_undefined() => Ok(Value::Null),
            None => Err(Error::internal("callback result: the facade must return JSON text")),
        },
        Err(e) => Err(from_thrown(e)),
    }
}

/// Like [`call_json`], but `undefined` (the facade's "omit") is `None`.
pub(super) fn call_json_opt(f: &Function, input: &Value, info: &baton::CallInfo) -> baton::Result<Option<Value>> {
    match call_js(f, input, Some(info)) {
        Ok(r) if r.is_undefined() => Ok(None),
        Ok(r) => match r.as_string() {
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::internal(format!("callback result: invalid JSON: {e}"))),
            None => Err(Error::internal("callback result: the facade must return JSON text")),
        },
        Err(e) => Err(from_thrown(e)),
    }
}

/// A managed tool call with a synchronous callback (`(argsJson) => resultJson`).
/// `opts`: JSON `{toolCallId, metadata, attributes}`. Returns the result as JSON text.
#[wasm_bindgen]
pub fn tool(
    stack: &Stack,
    name: &str,
    args: &str,
    callback: &Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<String, JsValue> {
    let args = parse_json(args, "args")?;
    let m = parse_opts(opts)?;
    let options = ToolOptions {
        tool_call_id: opt_string(&m, "toolCallId")?,
        metadata: opt_metadata(&m)?,
        attributes: opt_attributes(&m)?,
        parent: parent.map(|p| p.inner),
    };
    stack.inner.tool(name, args, |a| call_json(callback, &a), options).map(|v| json_text(&v)).map_err(to_js)
}

/// -1 when something is registered; otherwise nothing is, so a managed tool call is just its
/// callback (the core's rule, `Stack::unobserved`) and the facade calls the function itself,
/// and the answer is where new work on `stack` is parented now (`Stack::current_id`, ≥ 0): the
/// facade reuses one fork of `stack` per position for async calls' functions. `-2` when it
/// fails as a call would (`already_shutdown`, `invalid_state`), with the error for `takeError`
/// (a number, as the per-call functions answer: see [`FAILED`]).
#[wasm_bindgen]
#[cfg_attr(baton_optimize, optimize(speed))]
pub fn unobserved(stack: &Stack) -> f64 {
    match stack.inner.unobserved() {
        Ok(true) => stack.inner.current_id() as f64,
        Ok(false) => -1.0,
        Err(e) => {
            park(to_js(e));
            -2.0
        }
    }
}

/// A tool call the facade runs itself, and for an async call the fork it runs on.
pub(super) type Entered = (baton::EnteredCall, Option<baton::Stack>);

thread_local! {
    /// Tool calls the facade runs itself (`enterTool` .. `exitTool`), by slot (id - 2). An
    /// async call's fork is held here too, and gets a JS object only if the function uses
    /// Baton (`enteredStack`): most functions never do, and every such object would live until
    /// a `FinalizationRegistry` callback, which needs a turn of the event loop.
    pub(super) static ENTERED: RefCell<(Vec<Option<Entered>>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// The caller's position at the last async `enterTool` (`Stack::current_id`).
    pub(super) static POSITION: std::cell::Cell<f64> = const { std::cell::Cell::new(-1.0) };
}

/// enterTool(stack, name, argsJson, opts, parent) → `0`: middleware sees the values, use the
/// managed path (`tool` / `callAsync`); `1`: nothing is registered, just call the function;
/// otherwise the id of the entered call for `exitTool`; `FAILED` with the error for `takeError`.
///
/// With only subscribers (and event middleware) registered, the facade runs the callback
/// itself between `enterTool` and `exitTool`: the core emits the same events as `tool`
/// (`Stack::enter_tool`), without the core's call machinery, the crossings into the callback
/// and the text round trips. `args` comes from the facade's `JSON.stringify` (kept as is).
///
/// `fork` (async calls): the call is entered on a fork of `stack`, so concurrent calls on
/// `stack` do not interleave with its scope. `enteredStack(id)` gives that fork while the call
/// runs, and `enteredPosition()` where the caller was (for the facade's pin of it).
#[wasm_bindgen(js_name = enterTool)]
#[cfg_attr(baton_optimize, optimize(speed))]
pub fn enter_tool(stack: &Stack, name: &str, args: String, opts: Option<String>, parent: Option<Scope>, fork: bool) -> u32 {
    answer(enter_tool_with(stack, name, args, opts, parent, fork))
}

#[cfg_attr(baton_optimize, optimize(speed))]
pub(super) fn enter_tool_with(
    stack: &Stack,
    name: &str,
    args: String,
    opts: Option<String>,
    parent: Option<Scope>,
    fork: bool,
) -> Result<u32, JsValue> {
    let o = tool_options(opts, parent)?;
    if stack.inner.unobserved().map_err(to_js)? && !name.is_empty() {
        return Ok(1);
    }
    let payload = baton::Payload::from_json_trusted(args.into_boxed_str());
    let forked = fork.then(|| stack.inner.fork());
    let on = forked.as_ref().unwrap_or(&stack.inner);
    match on.enter_tool(name, || Ok(payload), o).map_err(to_js)? {
        None => Ok(0),
        Some(call) => Ok(hold_entered(stack, call, forked)),
    }
}

/// Holds an entered call (and an async call's fork) for `exitTool`; returns its id (≥ 2). For
/// an async call, publishes where the caller (`stack`) was (`enteredPosition`).
#[cfg_attr(baton_optimize, optimize(speed))]
pub(super) fn hold_entered(stack: &Stack, call: baton::EnteredCall, forked: Option<baton::Stack>) -> u32 {
    if forked.is_some() {
        POSITION.with(|p| p.set(stack.inner.current_id() as f64));
    }
    ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        let (slots, free) = &mut *e;
        match free.pop() {
            Some(i) => {
                slots[i as usize] = Some((call, forked));
                i + 2
            }
            None => {
                slots.push(Some((call, forked)));
                slots.len() as u32 + 1
            }
        }
    })
}

thread_local! {
    /// The request an entered LLM call's function gets, when the core's check changed it.
    pub(super) static CHECKED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// enterLlm(stack, name, requestJson, opts, parent, fork) → `0`: nothing registered, or
/// middleware or a codec sees the values: use the managed path (`llm` / `callAsync`);
/// otherwise the id of the entered call for `exitTool` (`Stack::enter_llm`: the events of
/// `llm`). `takeCheckedRequest` then gives the request the function gets when the core's
/// check changed it (`headers` added). `fork` and `FAILED` as for `enterTool`.
#[wasm_bindgen(js_name = enterLlm)]
pub fn enter_llm(stack: &Stack, name: &str, request: &str, opts: Option<String>, parent: Option<Scope>, fork: bool) -> u32 {
    answer(enter_llm_with(stack, name, request, opts, parent, fork))
}

pub(super) fn enter_llm_with(
    stack: &Stack,
    name: &str,
    request: &str,
    opts: Option<String>,
    parent: Option<Scope>,
    fork: bool,
) -> Result<u32, JsValue> {
    let options = llm_options(opts, parent)?;
    if stack.inner.unobserved().map_err(to_js)? && !name.is_empty() {
        return Ok(0);
    }
    let request = parse_json(request, "request")?;
    let forked = fork.then(|| stack.inner.fork());
    let on = forked.as_ref().unwrap_or(&stack.inner);
    let Some((call, checked)) = on.enter_llm(name, request, options).map_err(to_js)? else {
        return Ok(0);
    };
    CHECKED.with(|c| *c.borrow_mut() = checked.map(|v| json_text(&v)));
    Ok(hold_entered(stack, call, forked))
}

/// The request the last entered LLM call's function gets when the core's check changed it
/// (JSON text), once; `undefined` when it is the request as given.
#[wasm_bindgen(js_name = takeCheckedRequest)]
pub fn take_checked_request() -> Option<String> {
    CHECKED.with(|c| c.borrow_mut().take())
}

/// The caller's position at the last async `enterTool` (`Stack::current_id`).
#[wasm_bindgen(js_name = enteredPosition)]
#[cfg_attr(baton_optimize, optimize(speed))]
pub fn entered_position() -> f64 {
    POSITION.with(|p| p.get())
}

/// The fork a running async entered call runs on (its scope current), or `undefined` when the
/// id names no running async call.
#[wasm_bindgen(js_name = enteredStack)]
pub fn entered_stack(id: u32) -> Option<Stack> {
    ENTERED.with(|e| {
        let e = e.borrow();
        let (_, fork) = e.0.get(id.wrapping_sub(2) as usize)?.as_ref()?;
        fork.clone().map(|inner| Stack { inner })
    })
}

/// exitTool(id, resultJson): ends an entered call with its result (its end event). Returns how
/// many events wait in the batch (the facade drains inline past its high-water mark), or
/// `FAILED` (the id names no running call).
#[wasm_bindgen(js_name = exitTool)]
#[cfg_attr(baton_optimize, optimize(speed))]
pub fn exit_tool(id: u32, result: String) -> u32 {
    answer(take_entered(id).map(|(call, _fork)| {
        call.exit(Ok(baton::Payload::from_json_trusted(result.into_boxed_str())));
        batched()
    }))
}

/// failTool(id, thrown): ends an entered call whose function threw `thrown` (its end event with
/// ERROR status). Answers as `exitTool`. A function of its own so that the common exit passes
/// no JS value (each one is a slot in the module's table of JS values).
#[wasm_bindgen(js_name = failTool)]
#[cfg_attr(baton_optimize, optimize(speed))]
pub fn fail_tool(id: u32, thrown: JsValue) -> u32 {
    answer(take_entered(id).map(|(call, _fork)| {
        let e = from_thrown(thrown);
        // The thrown value only names the status here; the facade rethrows it itself.
        if let Some(t) = e.payload().and_then(|p| p.downcast_ref::<Thrown>()) {
            THROWN.with(|m| m.borrow_mut().remove(&t.0));
        }
        call.exit(Err(&e));
        batched()
    }))
}

/// Takes a running entered call out of its slot (the fork goes with it; a JS object made of it
/// by `enteredStack` keeps its own share).
#[cfg_attr(baton_optimize, optimize(speed))]
pub(super) fn take_entered(id: u32) -> Result<Entered, JsValue> {
    let call = ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        let (slots, free) = &mut *e;
        let call = slots.get_mut(id.wrapping_sub(2) as usize).and_then(Option::take);
        if call.is_some() {
            free.push(id - 2);
        }
        call
    });
    call.ok_or_else(|| to_js(Error::invalid_state("call: already ended")))
}

/// A managed LLM call with a synchronous callback. `request`: JSON `{headers, content}`;
/// `opts`: JSON `{modelName, metadata, attributes}`. Returns the response as JSON text.
#[wasm_bindgen]
pub fn llm(
    stack: &Stack,
    name: &str,
    request: &str,
    callback: &Function,
    opts: Option<String>,
    parent: Option<Scope>,
) -> Result<String, JsValue> {
    let request = parse_json(request, "request")?;
    let options = llm_options(opts, parent)?;
    stack.inner.llm(name, request, |r| call_json(callback, &r), options).map(|v| json_text(&v)).map_err(to_js)
}
