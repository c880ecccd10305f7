//! Raw N-API plumbing: errors that cross into JS, function trampolines, strings, objects,
//! externals and references that remember their thread.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;
use std::thread::ThreadId;

use baton::Error;
use napi::sys;

pub type Env = sys::napi_env;
pub type JsVal = sys::napi_value;

/// Why a native call did not produce a value.
pub enum Thrown {
    /// A JS exception is already pending in the env (it propagates as is).
    Pending,
    /// A Baton error, thrown as a `BatonError` (or as the host value it carries).
    Baton(Error),
}

impl From<Error> for Thrown {
    fn from(e: Error) -> Self {
        Thrown::Baton(e)
    }
}

pub type JsResult<T> = Result<T, Thrown>;

thread_local! {
    static ENV: Cell<Env> = const { Cell::new(ptr::null_mut()) };
    static HELPERS: RefCell<Option<Helpers>> = const { RefCell::new(None) };
    static JS_THREAD: Cell<bool> = const { Cell::new(false) };
    /// This is the first JS thread that loaded the addon (see `on_delivery_thread`).
    static FIRST_JS_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Set while a finalizer runs: possibly inside the garbage collector, where no call that
    /// touches the JS heap is allowed (see `external`).
    static FINALIZING: Cell<bool> = const { Cell::new(false) };
}

static MAIN_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);

/// JS functions the facade hands over at `init`.
pub struct Helpers {
    pub make_error: sys::napi_ref,
    pub watch: sys::napi_ref,
    pub invoke: sys::napi_ref,
    pub iter_of: sys::napi_ref,
    pub object_proto: sys::napi_ref,
}

pub fn set_env(env: Env) {
    ENV.with(|e| e.set(env));
    JS_THREAD.with(|j| j.set(true));
    let mut main = MAIN_THREAD.lock().unwrap_or_else(|p| p.into_inner());
    if main.is_none() {
        *main = Some(std::thread::current().id());
        FIRST_JS_THREAD.with(|f| f.set(true));
    }
}

/// True on the first JS thread that loaded the addon: the one deliveries go to (the facade
/// installs the delivery function at load, and only the first install counts). Host values
/// live in that thread's facade, so only its calls may offer them.
pub fn on_delivery_thread() -> bool {
    FIRST_JS_THREAD.try_with(|f| f.get()).unwrap_or(false)
}

pub fn env() -> Env {
    ENV.try_with(|e| e.get()).unwrap_or(ptr::null_mut())
}

/// True on a thread that loaded the addon (a JS thread).
pub fn on_js_thread() -> bool {
    JS_THREAD.try_with(|j| j.get()).unwrap_or(false)
}

pub fn set_helpers(h: Helpers) {
    HELPERS.with(|c| *c.borrow_mut() = Some(h));
}

pub fn helper(env: Env, pick: fn(&Helpers) -> sys::napi_ref) -> JsResult<JsVal> {
    let r = HELPERS.with(|c| c.borrow().as_ref().map(pick)).ok_or_else(|| Error::internal("baton native module not initialized"))?;
    ref_value(env, r)
}

pub fn status(env: Env, s: sys::napi_status) -> JsResult<()> {
    if s == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        Err(Thrown::Pending)
    } else {
        Err(Thrown::Baton(Error::internal(format!("N-API call failed with status {s}"))))
    }
}

macro_rules! ck {
    ($env:expr, $call:expr) => {
        $crate::js::status($env, unsafe { $call })?
    };
}
pub(crate) use ck;

// ----- values -----

pub fn undefined(env: Env) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_get_undefined(env, &mut v));
    Ok(v)
}

pub fn null(env: Env) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_get_null(env, &mut v));
    Ok(v)
}

pub fn boolean(env: Env, b: bool) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_get_boolean(env, b, &mut v));
    Ok(v)
}

pub fn number(env: Env, n: f64) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_create_double(env, n, &mut v));
    Ok(v)
}

pub fn string(env: Env, s: &str) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v));
    Ok(v)
}

pub fn type_of(env: Env, v: JsVal) -> JsResult<i32> {
    let mut t = 0;
    ck!(env, sys::napi_typeof(env, v, &mut t));
    Ok(t)
}

pub fn is_nullish(env: Env, v: JsVal) -> JsResult<bool> {
    let t = type_of(env, v)?;
    Ok(t == sys::ValueType::napi_undefined || t == sys::ValueType::napi_null)
}

pub fn get_string(env: Env, v: JsVal) -> JsResult<String> {
    let mut buf = [0u8; 128];
    let mut len = 0usize;
    ck!(env, sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), buf.len(), &mut len));
    if len < buf.len() - 1 {
        // V8 writes valid UTF-8 (lone surrogates become U+FFFD), so the fast check passes; the
        // lossy path (a slower scan) is only a fallback.
        return Ok(match std::str::from_utf8(&buf[..len]) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(&buf[..len]).into_owned(),
        });
    }
    ck!(env, sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len));
    let mut big = vec![0u8; len + 1];
    ck!(env, sys::napi_get_value_string_utf8(env, v, big.as_mut_ptr().cast(), big.len(), &mut len));
    big.truncate(len);
    Ok(String::from_utf8(big).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

pub fn get_bool(env: Env, v: JsVal) -> JsResult<bool> {
    let mut b = false;
    ck!(env, sys::napi_get_value_bool(env, v, &mut b));
    Ok(b)
}

pub fn get_number(env: Env, v: JsVal) -> JsResult<f64> {
    let mut n = 0.0;
    ck!(env, sys::napi_get_value_double(env, v, &mut n));
    Ok(n)
}

pub fn object(env: Env) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_create_object(env, &mut v));
    Ok(v)
}

/// `obj[key]` (key must be NUL-free ASCII; a trailing NUL is added here).
pub fn get(env: Env, obj: JsVal, key: &str) -> JsResult<JsVal> {
    let k = string(env, key)?;
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_get_property(env, obj, k, &mut v));
    Ok(v)
}

pub fn set(env: Env, obj: JsVal, key: &str, value: JsVal) -> JsResult<()> {
    let k = string(env, key)?;
    ck!(env, sys::napi_set_property(env, obj, k, value));
    Ok(())
}

/// Reads an optional string field (undefined/null → None).
pub fn opt_string(env: Env, obj: JsVal, key: &str) -> JsResult<Option<String>> {
    if is_nullish(env, obj)? {
        return Ok(None);
    }
    let v = get(env, obj, key)?;
    match type_of(env, v)? {
        t if t == sys::ValueType::napi_undefined || t == sys::ValueType::napi_null => Ok(None),
        t if t == sys::ValueType::napi_string => Ok(Some(get_string(env, v)?)),
        _ => Err(Error::invalid_argument(format!("options.{key}: expected a string")).into()),
    }
}

/// Reads a required string argument.
pub fn req_string(env: Env, v: JsVal, what: &str) -> JsResult<String> {
    if type_of(env, v)? != sys::ValueType::napi_string {
        return Err(Error::invalid_argument(format!("{what}: expected a string")).into());
    }
    get_string(env, v)
}

pub fn array(env: Env, len: usize) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_create_array_with_length(env, len, &mut v));
    Ok(v)
}

pub fn set_index(env: Env, arr: JsVal, i: u32, v: JsVal) -> JsResult<()> {
    ck!(env, sys::napi_set_element(env, arr, i, v));
    Ok(())
}

pub fn is_function(env: Env, v: JsVal) -> JsResult<bool> {
    Ok(type_of(env, v)? == sys::ValueType::napi_function)
}

/// True for a thenable (an object or function with a callable `then`).
pub fn is_thenable(env: Env, v: JsVal) -> JsResult<bool> {
    let t = type_of(env, v)?;
    if t != sys::ValueType::napi_object && t != sys::ValueType::napi_function {
        return Ok(false);
    }
    let mut is = false;
    ck!(env, sys::napi_is_promise(env, v, &mut is));
    if is {
        return Ok(true);
    }
    let then = get(env, v, "then")?;
    is_function(env, then)
}

/// Calls `f(args...)` with `this = undefined`. A JS throw becomes `Thrown::Pending`.
pub fn call(env: Env, f: JsVal, args: &[JsVal]) -> JsResult<JsVal> {
    let recv = undefined(env)?;
    let mut out = ptr::null_mut();
    ck!(env, sys::napi_call_function(env, recv, f, args.len(), args.as_ptr(), &mut out));
    Ok(out)
}

/// Takes the pending JS exception (after `Thrown::Pending`).
pub fn take_exception(env: Env) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    let s = unsafe { sys::napi_get_and_clear_last_exception(env, &mut v) };
    if s != sys::Status::napi_ok || v.is_null() {
        return Err(Thrown::Baton(Error::internal("a JS exception was expected but none is pending")));
    }
    Ok(v)
}

// ----- references -----

pub fn make_ref(env: Env, v: JsVal) -> JsResult<sys::napi_ref> {
    let mut r = ptr::null_mut();
    ck!(env, sys::napi_create_reference(env, v, 1, &mut r));
    Ok(r)
}

pub fn ref_value(env: Env, r: sys::napi_ref) -> JsResult<JsVal> {
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_get_reference_value(env, r, &mut v));
    Ok(v)
}

/// References whose owner was dropped off the JS thread, deleted at the next native call.
static GARBAGE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static HAS_GARBAGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A strong reference to a JS value, usable only on the JS thread that made it. It is `Send`
/// and `Sync` so core closures can hold it; touching it elsewhere is refused, and dropping it
/// elsewhere defers the delete to the JS thread.
pub struct JsRef {
    r: sys::napi_ref,
    thread: ThreadId,
    /// Primitives cannot be referenced directly (N-API 8): they sit in a one-element array.
    boxed: bool,
}

unsafe impl Send for JsRef {}
unsafe impl Sync for JsRef {}

impl JsRef {
    pub fn new(env: Env, v: JsVal) -> JsResult<JsRef> {
        let t = type_of(env, v)?;
        let boxed = !(t == sys::ValueType::napi_object || t == sys::ValueType::napi_function || t == sys::ValueType::napi_external);
        let target = if boxed {
            let holder = array(env, 1)?;
            set_index(env, holder, 0, v)?;
            holder
        } else {
            v
        };
        Ok(JsRef { r: make_ref(env, target)?, thread: std::thread::current().id(), boxed })
    }
    pub fn get(&self, env: Env) -> JsResult<JsVal> {
        if std::thread::current().id() != self.thread {
            return Err(Error::invalid_state("a JS function or value was used from another thread than the one that created it").into());
        }
        let v = ref_value(env, self.r)?;
        if !self.boxed {
            return Ok(v);
        }
        let mut out = ptr::null_mut();
        ck!(env, sys::napi_get_element(env, v, 0, &mut out));
        Ok(out)
    }
}

impl Drop for JsRef {
    fn drop(&mut self) {
        if std::thread::current().id() == self.thread && on_js_thread() && !env().is_null() && !finalizing() {
            unsafe { sys::napi_delete_reference(env(), self.r) };
        } else {
            GARBAGE.lock().unwrap_or_else(|p| p.into_inner()).push(self.r as usize);
            HAS_GARBAGE.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

pub fn collect_garbage(env: Env) {
    if !HAS_GARBAGE.swap(false, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    let refs = std::mem::take(&mut *GARBAGE.lock().unwrap_or_else(|p| p.into_inner()));
    for r in refs {
        unsafe { sys::napi_delete_reference(env, r as sys::napi_ref) };
    }
}

// ----- externals -----

/// A value held by a JS external, asked at collection time how it may be dropped.
pub trait Finalize {
    /// Whether dropping it now frees native memory only: no JS call, no event, no lock a
    /// running call could hold. Node may run the finalizer inside the garbage collector (see
    /// [`external`]), where nothing else is allowed.
    fn frees_only_memory(&self) -> bool;
}

/// The finalizer of every external: drops the value on the spot when that only frees memory,
/// else posts the drop to run right after the collection, where it may call JS.
unsafe extern "C" fn finalize<T: Finalize>(env: Env, data: *mut c_void, hint: *mut c_void) {
    if unsafe { &*(data as *const T) }.frees_only_memory() {
        FINALIZING.with(|f| f.set(true));
        drop(unsafe { Box::from_raw(data as *mut T) });
        FINALIZING.with(|f| f.set(false));
    } else if unsafe { sys::node_api_post_finalizer(env.cast(), Some(drop_later::<T>), data, hint) } != sys::Status::napi_ok {
        // A Node without it runs every finalizer after the collection anyway.
        unsafe { drop_later::<T>(env, data, hint) };
    }
}

unsafe extern "C" fn drop_later<T>(_env: Env, data: *mut c_void, _hint: *mut c_void) {
    drop(unsafe { Box::from_raw(data as *mut T) });
}

/// True while a finalizer drops a value inside the collector: JS references are then
/// released later ([`collect_garbage`]).
fn finalizing() -> bool {
    FINALIZING.try_with(|f| f.get()).unwrap_or(false)
}

/// Wraps `value` in a JS external; the value is dropped when the external is collected.
///
/// This addon declares the experimental Node-API version (`node_api_module_get_api_version_v1`),
/// under which Node runs finalizers inside the garbage collector. So a loop that makes handles
/// and never yields to the event loop frees them as it goes (under version 8 they all waited
/// for a turn of the loop). What may call JS when dropped ([`Finalize`]: an unfinished stream
/// ends its call and closes its source) is posted to run after the collection.
pub fn external<T: Finalize + 'static>(env: Env, value: T) -> JsResult<JsVal> {
    let raw = Box::into_raw(Box::new(value));
    let mut v = ptr::null_mut();
    let s = unsafe { sys::napi_create_external(env, raw.cast(), Some(finalize::<T>), ptr::null_mut(), &mut v) };
    if s != sys::Status::napi_ok {
        drop(unsafe { Box::from_raw(raw) });
        status(env, s)?;
    }
    Ok(v)
}

/// Reads an external made by [`external`]; `what` names the argument in the error.
///
/// # Safety
/// Every external this addon makes holds a [`crate::handles::Handle`], and only those are read.
pub fn external_ref<'a, T>(env: Env, v: JsVal, what: &str) -> JsResult<&'a T> {
    if type_of(env, v)? != sys::ValueType::napi_external {
        return Err(Error::invalid_argument(format!("{what}: expected a Baton handle")).into());
    }
    let mut p = ptr::null_mut();
    ck!(env, sys::napi_get_value_external(env, v, &mut p));
    Ok(unsafe { &*(p as *const T) })
}

// ----- exported functions -----

pub type Handler = fn(Env, &[JsVal]) -> JsResult<JsVal>;
pub const MAX_ARGS: usize = 8;

unsafe extern "C" fn trampoline(env: Env, info: sys::napi_callback_info) -> JsVal {
    let mut argc = MAX_ARGS;
    let mut argv = [ptr::null_mut(); MAX_ARGS];
    let mut data = ptr::null_mut();
    unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) };
    let handler: Handler = unsafe { std::mem::transmute::<*mut c_void, Handler>(data) };
    collect_garbage(env);
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(env, &argv)));
    let thrown = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(t)) => t,
        Err(p) => Thrown::Baton(panic_error(p)),
    };
    throw(env, thrown);
    ptr::null_mut()
}

pub fn panic_error(p: Box<dyn std::any::Any + Send>) -> Error {
    let text = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
    Error::internal(format!("panic: {text}"))
}

pub fn export(env: Env, exports: JsVal, name: &str, handler: Handler) -> JsResult<()> {
    let mut f = ptr::null_mut();
    ck!(env, sys::napi_create_function(env, name.as_ptr().cast(), name.len() as isize, Some(trampoline), handler as *mut c_void, &mut f));
    set(env, exports, name, f)
}

/// Makes the JS error value for a Baton error: the host's own value when it carries one,
/// else a `BatonError` from the facade's factory.
pub fn error_value(env: Env, e: &Error) -> JsResult<JsVal> {
    if let Some(host) = crate::callbacks::host_value(env, e)? {
        return Ok(host);
    }
    let f = helper(env, |h| h.make_error)?;
    let kind = string(env, e.kind().as_str())?;
    let msg = string(env, e.message())?;
    let detail = match e.detail() {
        Some(d) => crate::convert::to_js(env, d)?,
        None => undefined(env)?,
    };
    call(env, f, &[kind, msg, detail])
}

pub fn throw(env: Env, t: Thrown) {
    if let Thrown::Baton(e) = t {
        match error_value(env, &e) {
            Ok(v) => unsafe {
                sys::napi_throw(env, v);
            },
            Err(Thrown::Pending) => {}
            Err(Thrown::Baton(inner)) => {
                let msg = std::ffi::CString::new(format!("{}: {}", e.kind(), e.message())).unwrap_or_default();
                let _ = inner;
                unsafe { sys::napi_throw_error(env, ptr::null(), msg.as_ptr()) };
            }
        }
    }
}

/// An RAII handle scope for loops that call into JS many times.
pub struct Scope {
    env: Env,
    scope: sys::napi_handle_scope,
}

impl Scope {
    pub fn open(env: Env) -> Scope {
        let mut scope = ptr::null_mut();
        unsafe { sys::napi_open_handle_scope(env, &mut scope) };
        Scope { env, scope }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if !self.scope.is_null() {
            unsafe { sys::napi_close_handle_scope(self.env, self.scope) };
        }
    }
}
