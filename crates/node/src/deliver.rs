//! Subscribers on the JS thread.
//!
//! The core's dispatcher thread calls `JsSubscriber::on_event`, which serializes the event
//! (off the JS thread) into a batch and, when the batch was empty, asks the JS thread — through
//! one thread-safe function call — to drain it. The drain hands the facade one text holding
//! the batch's events back to back, where each event ends (in UTF-16 units, so the facade
//! slices without decoding), each event's layout (where its top-level values lie and their
//! form, from `Event::write_json_layout`) and who receives what. For a subscriber that wants
//! objects the facade builds each event once from slices of the text and parses only its
//! structured values (`JSON.parse` of the whole event costs more than everything else a
//! delivery does); `format: 'json'` subscribers get the slice itself. The dispatcher never
//! waits for JS, so nothing can deadlock; `flush` waits for the core on a worker thread and
//! then drains on the JS thread.
//!
//! Memory: the core's queue is bounded, but this batch is filled by the dispatcher as fast as
//! it can serialize, and a JS thread that keeps producing never yields to the drain. So the
//! number of batched events is published in [`PENDING`], which the facade reads (a typed
//! array over it, no call) after each call that emits, and past a high-water mark it drains
//! inline, on the caller's path: back-pressure instead of unbounded growth.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Mutex;

use baton::{Event, EventLayout, Result, Subscriber};

const _: () = assert!(EventLayout::NUMBERS == 34, "node/lib/common.js reads 34 numbers per event");
use napi::sys;

use crate::util::{self, ck, Env, JsResult, JsVal};

/// A close marker in the delivery list: the facade forgets the subscriber.
const CLOSED: u32 = u32::MAX;

struct Batch {
    /// The events' JSON, back to back.
    text: String,
    /// Where each event ends in `text`, counted in UTF-16 units (as JS strings index).
    ends: Vec<u32>,
    /// UTF-16 length of `text`.
    units: u32,
    events: u32,
    /// (subscriber id, event index or CLOSED), in delivery order.
    deliveries: Vec<u32>,
    /// Identity of the last serialized event (its uuid and kind), to share it between
    /// subscribers receiving the same event.
    last: Option<(baton::Uuid, baton::EventKind)>,
    /// Per event, `EventLayout::NUMBERS` numbers (the facade's `LAYOUT`): its kind, then
    /// per `baton::EventField` the value's form and where it starts and ends, in UTF-16 units from
    /// the start of `text`.
    layouts: Vec<u32>,
    /// Whether `text` is all ASCII (then JS gets it as a one-byte string, without decoding).
    ascii: bool,
    /// Scratch for one event's layout.
    scratch: EventLayout,
}

static BATCH: Mutex<Batch> = Mutex::new(Batch {
    text: String::new(),
    ends: Vec::new(),
    units: 0,
    events: 0,
    deliveries: Vec::new(),
    last: None,
    layouts: Vec::new(),
    ascii: true,
    scratch: EventLayout::EMPTY,
});

/// Events waiting in the batch. Read by the facade through an external `Uint32Array` (see
/// [`pending_counter`]); a plain aligned `u32` underneath.
static PENDING: AtomicU32 = AtomicU32::new(0);
static TSFN: AtomicPtr<sys::napi_threadsafe_function__> = AtomicPtr::new(ptr::null_mut());

pub struct JsSubscriber {
    id: u32,
}

impl JsSubscriber {
    pub fn new(id: u32) -> JsSubscriber {
        JsSubscriber { id }
    }
}

fn push(id: u32, event: Option<&Event>) {
    let mut b = BATCH.lock().unwrap_or_else(|p| p.into_inner());
    let was_empty = b.deliveries.is_empty();
    match event {
        Some(e) => {
            if b.last != Some((e.uuid, e.kind)) || b.events == 0 {
                let b = &mut *b;
                let start = b.text.len();
                // SAFETY of the write: `write_json_layout` writes valid UTF-8 only.
                e.write_json_layout(unsafe { b.text.as_mut_vec() }, &mut b.scratch);
                let written = &b.text[start..];
                // ASCII (the usual case) has one UTF-16 unit per byte; count only otherwise.
                let units = if written.is_ascii() {
                    written.len()
                } else {
                    b.ascii = false;
                    b.scratch.to_utf16(written.as_bytes());
                    written.encode_utf16().count()
                };
                let base = b.units;
                b.layouts.extend_from_slice(&b.scratch.numbers(base));
                b.units += units as u32;
                let end = b.units;
                b.ends.push(end);
                b.events += 1;
                PENDING.store(b.events, Ordering::Relaxed);
                b.last = Some((e.uuid, e.kind));
            }
            let index = b.events - 1;
            b.deliveries.push(id);
            b.deliveries.push(index);
        }
        None => {
            b.deliveries.push(id);
            b.deliveries.push(CLOSED);
        }
    }
    drop(b);
    if was_empty {
        let f = TSFN.load(Ordering::Acquire);
        if !f.is_null() {
            unsafe { sys::napi_call_threadsafe_function(f, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        }
    }
}

impl Subscriber for JsSubscriber {
    fn on_event(&self, event: &Event) -> Result<()> {
        push(self.id, Some(event));
        Ok(())
    }
    fn close(&self) -> Result<()> {
        push(self.id, None);
        Ok(())
    }
}

/// `takeEvents()` → `null` or `[text, Uint32Array deliveries, Uint32Array ends,
/// Uint32Array layouts]`.
pub fn take(env: Env) -> JsResult<JsVal> {
    let (text, ascii, mut bufs) = {
        let mut b = BATCH.lock().unwrap_or_else(|p| p.into_inner());
        if b.deliveries.is_empty() {
            return util::null(env);
        }
        b.events = 0;
        b.units = 0;
        b.last = None;
        PENDING.store(0, Ordering::Relaxed);
        let ascii = std::mem::replace(&mut b.ascii, true);
        let bufs = [std::mem::take(&mut b.deliveries), std::mem::take(&mut b.ends), std::mem::take(&mut b.layouts)];
        (std::mem::take(&mut b.text), ascii, bufs)
    };
    let out = util::array(env, 4)?;
    let (t, text) = if ascii { latin1(env, text)? } else { (util::string(env, &text)?, Some(text)) };
    util::set_index(env, out, 0, t)?;
    for (i, items) in bufs.iter().enumerate() {
        let a = u32_array(env, items)?;
        util::set_index(env, out, i as u32 + 1, a)?;
    }
    recycle(text, &mut bufs);
    Ok(out)
}

/// Batches at least this long become external strings (below it, a copy is cheaper than the
/// finalizer).
const EXTERNAL_MIN: usize = 16 * 1024;

/// `node_api_create_external_string_latin1` (Node ≥ 20.12 / 21.7), looked up when first
/// needed: on older Nodes the text is copied instead.
type CreateExternalLatin1 = unsafe extern "C" fn(
    sys::napi_env,
    *mut std::ffi::c_char,
    usize,
    sys::napi_finalize,
    *mut c_void,
    *mut sys::napi_value,
    *mut bool,
) -> sys::napi_status;

fn create_external_latin1() -> Option<CreateExternalLatin1> {
    static F: std::sync::OnceLock<Option<CreateExternalLatin1>> = std::sync::OnceLock::new();
    *F.get_or_init(|| {
        extern "C" {
            fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
        }
        // RTLD_DEFAULT (a null handle on glibc and macOS): the symbols of the process, where
        // node's own N-API functions are.
        let f = unsafe { dlsym(ptr::null_mut(), c"node_api_create_external_string_latin1".as_ptr()) };
        // SAFETY: the symbol, when Node has it, has exactly this signature (js_native_api.h).
        (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, CreateExternalLatin1>(f) })
    })
}

unsafe extern "C" fn free_external(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    drop(unsafe { Box::from_raw(hint.cast::<String>()) });
}

/// A JS string of ASCII text: V8 stores it as one byte per character as it is, where the
/// UTF-8 path would decode it first. A long batch is handed over without a copy (an external
/// string owning the text, freed when V8 collects it); the text comes back to be reused
/// otherwise.
fn latin1(env: Env, text: String) -> JsResult<(JsVal, Option<String>)> {
    let mut v = ptr::null_mut();
    if text.len() >= EXTERNAL_MIN {
        if let Some(create) = create_external_latin1() {
            let owned = Box::new(text);
            let data = owned.as_ptr() as *mut std::ffi::c_char;
            let len = owned.len();
            let hint = Box::into_raw(owned);
            let mut copied = false;
            let status = unsafe { create(env, data, len, Some(free_external), hint.cast(), &mut v, &mut copied) };
            if status != sys::Status::napi_ok {
                // Not created: the finalizer did not run, the text is still ours to free.
                drop(unsafe { Box::from_raw(hint) });
                util::status(env, status)?;
            }
            // Copied or not, the text now belongs to the finalizer (it already ran if copied).
            return Ok((v, None));
        }
    }
    ck!(env, sys::napi_create_string_latin1(env, text.as_ptr().cast(), text.len() as isize, &mut v));
    Ok((v, Some(text)))
}

/// Gives the taken buffers back (emptied) when the dispatcher has not started new ones, so
/// a steady stream of batches does not regrow them from nothing each time. A burst's
/// oversized buffers are dropped instead.
fn recycle(text: Option<String>, bufs: &mut [Vec<u32>; 3]) {
    let mut b = BATCH.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(mut text) = text.filter(|t| t.capacity() <= 1 << 20) {
        if b.text.capacity() == 0 && b.events == 0 {
            text.clear();
            b.text = text;
        }
    }
    let b = &mut *b;
    let [deliveries, ends, layouts] = bufs;
    for (mine, taken) in [(&mut b.deliveries, deliveries), (&mut b.ends, ends), (&mut b.layouts, layouts)] {
        if mine.capacity() == 0 && mine.is_empty() && taken.capacity() <= 1 << 18 {
            taken.clear();
            *mine = std::mem::take(taken);
        }
    }
}

fn u32_array(env: Env, items: &[u32]) -> JsResult<JsVal> {
    let mut buf = ptr::null_mut();
    let mut data: *mut c_void = ptr::null_mut();
    let bytes = std::mem::size_of_val(items);
    ck!(env, sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buf));
    if bytes > 0 {
        unsafe { ptr::copy_nonoverlapping(items.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes) };
    }
    let mut arr = ptr::null_mut();
    ck!(env, sys::napi_create_typedarray(env, sys::TypedarrayType::uint32_array, items.len(), buf, 0, &mut arr));
    Ok(arr)
}

/// `pendingCounter()` → an `ArrayBuffer` of 4 bytes over [`PENDING`], for the facade to read
/// the batch's size without a call. The memory is static, so there is nothing to free.
pub fn pending_counter(env: Env) -> JsResult<JsVal> {
    let mut buf = ptr::null_mut();
    let data = PENDING.as_ptr().cast::<c_void>();
    ck!(env, sys::napi_create_external_arraybuffer(env, data, 4, None, ptr::null_mut(), &mut buf));
    Ok(buf)
}

/// Creates the thread-safe function that wakes the JS thread to drain (`drain` is the
/// facade's function). It is unref'd: pending deliveries do not keep the process alive.
pub fn install(env: Env, drain: JsVal) -> JsResult<()> {
    if !TSFN.load(Ordering::Acquire).is_null() {
        return Ok(());
    }
    let name = util::string(env, "baton.deliver")?;
    let mut f = ptr::null_mut();
    ck!(
        env,
        sys::napi_create_threadsafe_function(env, drain, ptr::null_mut(), name, 0, 1, ptr::null_mut(), None, ptr::null_mut(), None, &mut f)
    );
    ck!(env, sys::napi_unref_threadsafe_function(env, f));
    TSFN.store(f, Ordering::Release);
    Ok(())
}

// ----- flush / shutdown off the JS thread -----

struct Work {
    shutdown: bool,
    timeout: std::time::Duration,
    result: Option<baton::Result<bool>>,
    deferred: sys::napi_deferred,
    work: sys::napi_async_work,
}

unsafe extern "C" fn work_execute(_env: Env, data: *mut c_void) {
    let w = unsafe { &mut *(data as *mut Work) };
    let rt = baton::Runtime::global();
    let r =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| if w.shutdown { rt.shutdown(w.timeout) } else { rt.flush(w.timeout) }));
    w.result = Some(r.unwrap_or_else(|p| Err(util::panic_error(p))));
}

unsafe extern "C" fn work_complete(env: Env, _status: sys::napi_status, data: *mut c_void) {
    let w = unsafe { Box::from_raw(data as *mut Work) };
    unsafe { sys::napi_delete_async_work(env, w.work) };
    match w.result.unwrap_or_else(|| Err(baton::Error::internal("flush did not run"))) {
        Ok(b) => {
            let v = util::boolean(env, b).unwrap_or(ptr::null_mut());
            unsafe { sys::napi_resolve_deferred(env, w.deferred, v) };
        }
        Err(e) => {
            let v = util::error_value(env, &e).or_else(|_| util::undefined(env)).unwrap_or(ptr::null_mut());
            unsafe { sys::napi_reject_deferred(env, w.deferred, v) };
        }
    }
}

/// Runs `flush` or `shutdown` on a worker thread; returns a promise of its boolean.
pub fn flush_async(env: Env, timeout: std::time::Duration, shutdown: bool) -> JsResult<JsVal> {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    ck!(env, sys::napi_create_promise(env, &mut deferred, &mut promise));
    let w = Box::into_raw(Box::new(Work { shutdown, timeout, result: None, deferred, work: ptr::null_mut() }));
    let name = util::string(env, if shutdown { "baton.shutdown" } else { "baton.flush" })?;
    let mut work = ptr::null_mut();
    ck!(env, sys::napi_create_async_work(env, ptr::null_mut(), name, Some(work_execute), Some(work_complete), w.cast(), &mut work));
    unsafe { (*w).work = work };
    ck!(env, sys::napi_queue_async_work(env, work));
    Ok(promise)
}
