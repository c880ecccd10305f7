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
//!
//! The batch is cut into segments of at most [`SEGMENT_TEXT`] bytes of text, and `takeEvents`
//! hands over one segment per call (the facade's drain loops until there is none). Small
//! segments keep every copy cheap and every buffer reusable: a taken segment's buffers come
//! back emptied ([`POOL`]), so a steady stream of events writes into memory that is already
//! mapped and in cache. One buffer per batch, regrown from nothing after each hand-over, cost
//! more than the rest of a delivery: megabytes copied by `realloc` on the dispatcher thread,
//! fresh pages faulted in and zeroed on both threads.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Mutex;

use baton::{Event, EventLayout, Result, Subscriber, ValueForm};

const _: () = assert!(EventLayout::NUMBERS == 34, "node/lib/common.js reads 34 numbers per event");
use napi::sys;

use crate::js::{self, ck, Env, JsResult, JsVal};

/// A close marker in the delivery list: the facade forgets the subscriber.
const CLOSED: u32 = u32::MAX;

/// One segment of the batch: events back to back, where each ends, their layouts and who
/// receives which.
struct Segment {
    /// The events' JSON, back to back.
    text: String,
    /// Where each event ends in `text`, counted in UTF-16 units (as JS strings index).
    ends: Vec<u32>,
    /// UTF-16 length of `text`.
    units: u32,
    /// (subscriber id, event index or CLOSED), in delivery order.
    deliveries: Vec<u32>,
    /// Per event, `EventLayout::NUMBERS` numbers (the facade's `LAYOUT`): its kind, then
    /// per `baton::EventField` the value's form and where it starts and ends, in UTF-16 units from
    /// the start of `text`.
    layouts: Vec<u32>,
    /// Whether `text` is all ASCII (then JS gets it as a one-byte string, without decoding).
    ascii: bool,
    /// The events' structured values (form `Json`), copied out of `text` as the elements of
    /// one JSON array (`[` written with the first, `]` at hand-over; empty when there are
    /// none). Their layout entries hold their index here instead of their start. The facade
    /// parses them with one `JSON.parse` of a flat string: slicing them out of `text` and
    /// joining them on the JS thread cost more than the parse itself, and the copy is made
    /// here, off the JS thread.
    values: String,
    /// How many values `values` holds. (`values` is ASCII whenever `text` is: it is copied
    /// from it.)
    value_count: u32,
}

impl Segment {
    const EMPTY: Segment = Segment {
        text: String::new(),
        ends: Vec::new(),
        units: 0,
        deliveries: Vec::new(),
        layouts: Vec::new(),
        ascii: true,
        values: String::new(),
        value_count: 0,
    };

    fn events(&self) -> u32 {
        self.ends.len() as u32
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.units = 0;
        self.deliveries.clear();
        self.layouts.clear();
        self.ascii = true;
        self.values.clear();
        self.value_count = 0;
    }

    /// Copies the structured values of the event just written at `start` (its layout in
    /// `layout`, byte offsets) into `values`, in field order.
    fn copy_values(&mut self, start: usize, layout: &EventLayout) {
        for f in layout.fields.iter().filter(|f| f.form == ValueForm::Json) {
            self.values.push(if self.value_count == 0 { '[' } else { ',' });
            self.values.push_str(&self.text[start + f.start as usize..start + f.end as usize]);
            self.value_count += 1;
        }
    }
}

/// A segment is closed before an event that would start past this much text (an event is
/// never split: one larger than this makes a segment of its own).
const SEGMENT_TEXT: usize = 64 * 1024;
/// Emptied segments kept for reuse; more are freed.
const POOL_MAX: usize = 4;

struct Batch {
    /// Closed segments, oldest first.
    full: std::collections::VecDeque<Segment>,
    /// The segment being written.
    open: Segment,
    /// Events in `full` and `open`, as published in [`PENDING`].
    events: u32,
    /// Identity of the last serialized event (its uuid and kind), to share it between
    /// subscribers receiving the same event (always in `open`).
    last: Option<(baton::Uuid, baton::EventKind)>,
    /// Whether every subscriber due the last event has it: the dispatcher ended its batch
    /// (`end_batch`). Until then `takeEvents` leaves the open segment alone, so that one
    /// event's deliveries are never split between segments (each subscriber that takes
    /// objects then gets the same object).
    settled: bool,
    /// A take left the open segment alone: `end_batch` asks the JS thread to drain again.
    deferred: bool,
    /// Scratch for one event's layout.
    scratch: EventLayout,
}

static BATCH: Mutex<Batch> = Mutex::new(Batch {
    full: std::collections::VecDeque::new(),
    open: Segment::EMPTY,
    events: 0,
    last: None,
    settled: true,
    deferred: false,
    scratch: EventLayout::EMPTY,
});

/// Emptied segments handed back by `takeEvents`, for the dispatcher to write into again.
static POOL: Mutex<Vec<Segment>> = Mutex::new(Vec::new());

/// Events waiting in the batch. Read by the facade through an external `Uint32Array` (see
/// [`pending_counter`]); a plain aligned `u32` underneath.
static PENDING: AtomicU32 = AtomicU32::new(0);
static TSFN: AtomicPtr<sys::napi_threadsafe_function__> = AtomicPtr::new(ptr::null_mut());

pub struct JsSubscriber {
    id: u32,
    /// Takes event objects (not `format: 'json'`): it reads `data` from the facade's table of
    /// host values when an event carries one.
    objects: bool,
}

impl JsSubscriber {
    pub fn new(id: u32, objects: bool) -> JsSubscriber {
        JsSubscriber { id, objects }
    }
}

fn push(id: u32, event: Option<&Event>) {
    let mut b = BATCH.lock().unwrap_or_else(|p| p.into_inner());
    let b = &mut *b;
    let was_empty = b.open.deliveries.is_empty() && b.full.is_empty();
    match event {
        Some(e) => {
            if b.last != Some((e.uuid, e.kind)) || b.open.events() == 0 {
                if b.open.text.len() >= SEGMENT_TEXT {
                    let fresh = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or(Segment::EMPTY);
                    b.full.push_back(std::mem::replace(&mut b.open, fresh));
                }
                let seg = &mut b.open;
                let start = seg.text.len();
                // SAFETY of the write: `write_json_layout` writes valid UTF-8 only.
                e.write_json_layout(unsafe { seg.text.as_mut_vec() }, &mut b.scratch);
                let first_value = seg.value_count;
                seg.copy_values(start, &b.scratch);
                let written = &seg.text[start..];
                // ASCII (the usual case) has one UTF-16 unit per byte; count only otherwise.
                let units = if written.is_ascii() {
                    written.len()
                } else {
                    seg.ascii = false;
                    b.scratch.to_utf16(written.as_bytes());
                    written.encode_utf16().count()
                };
                let base = seg.units;
                let mut numbers = b.scratch.numbers(base);
                // A structured value's start is its index in `values` (copied in field order).
                let mut index = first_value;
                for (i, f) in b.scratch.fields.iter().enumerate() {
                    if f.form == ValueForm::Json {
                        numbers[2 + 3 * i] = index;
                        index += 1;
                    } else if f.form == ValueForm::Host {
                        // The token's low 32 bits; the facade knows the rest (its tokens in
                        // flight span far fewer than 2^32).
                        numbers[2 + 3 * i] = e.data.host_token().map_or(0, |t| t.get() as u32);
                    }
                }
                seg.layouts.extend_from_slice(&numbers);
                seg.units += units as u32;
                seg.ends.push(seg.units);
                b.events += 1;
                PENDING.store(b.events, Ordering::Relaxed);
                b.last = Some((e.uuid, e.kind));
                b.settled = false;
            }
            let index = b.open.events() - 1;
            b.open.deliveries.push(id);
            b.open.deliveries.push(index);
        }
        None => {
            b.open.deliveries.push(id);
            b.open.deliveries.push(CLOSED);
        }
    }
    if was_empty {
        wake_js();
    }
}

/// Asks the JS thread to drain (one thread-safe function call; it does not wait).
fn wake_js() {
    let f = TSFN.load(Ordering::Acquire);
    if !f.is_null() {
        unsafe { sys::napi_call_threadsafe_function(f, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
    }
}

/// The dispatcher ended a batch: every subscriber due the last event has it.
fn settle() {
    let mut b = BATCH.lock().unwrap_or_else(|p| p.into_inner());
    b.settled = true;
    if std::mem::take(&mut b.deferred) {
        drop(b);
        wake_js();
    }
}

impl Subscriber for JsSubscriber {
    fn on_event(&self, event: &Event) -> Result<()> {
        push(self.id, Some(event));
        Ok(())
    }
    fn takes_host_values(&self) -> bool {
        self.objects
    }
    fn end_batch(&self) -> usize {
        settle();
        0
    }
    fn close(&self) -> Result<()> {
        push(self.id, None);
        // Removed mid-batch (deregistered, or shutdown cleared the list), this subscriber gets
        // no `end_batch` for the batch that carried its last events; and when no other JS
        // subscriber ends that batch, `takeEvents` would leave them in the open segment until
        // some later batch ended. The dispatcher delivers items in order, so every event before
        // this removal already reached all its subscribers: the segment is settled.
        settle();
        Ok(())
    }
}

/// Words of [`META`].
const META_WORDS: usize = 64 * 1024;

/// Where `takeEvents` writes a segment's numbers for the facade: `[deliveries, events,
/// (id, index)..., ends..., layouts...]`, read through one `Uint32Array` the facade made once
/// (`metaBuffer`). Three typed arrays per segment cost three allocations that V8 counts as
/// external memory, and their growth triggered young-generation collections. Only the JS
/// thread touches it: `takeEvents` writes it, the facade reads it before its next call.
struct Meta(std::cell::UnsafeCell<[u32; META_WORDS]>);

// SAFETY: only the JS thread reads or writes it (see above).
unsafe impl Sync for Meta {}

static META: Meta = Meta(std::cell::UnsafeCell::new([0; META_WORDS]));

/// `metaBuffer()` → an `ArrayBuffer` over [`META`] (static memory: nothing to free).
pub fn meta_buffer(env: Env) -> JsResult<JsVal> {
    let mut buf = ptr::null_mut();
    let data = META.0.get().cast::<c_void>();
    let bytes = std::mem::size_of::<[u32; META_WORDS]>();
    ck!(env, sys::napi_create_external_arraybuffer(env, data, bytes, None, ptr::null_mut(), &mut buf));
    Ok(buf)
}

/// Writes a segment's numbers into [`META`]; `false` when they do not fit (a segment of one
/// very large event list), and the caller hands them over as typed arrays instead.
fn write_meta(seg: &Segment) -> bool {
    let words = 2 + seg.deliveries.len() + seg.ends.len() + seg.layouts.len();
    if words > META_WORDS {
        return false;
    }
    // SAFETY: on the JS thread, which alone uses META, and not while the facade reads it (it
    // reads it synchronously after this call returns).
    let meta = unsafe { &mut *META.0.get() };
    meta[0] = seg.deliveries.len() as u32;
    meta[1] = seg.events();
    let mut at = 2;
    for part in [&seg.deliveries, &seg.ends, &seg.layouts] {
        meta[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    true
}

/// `takeEvents()` → `null` or, for the oldest segment of the batch, `[text, values]` with its
/// numbers in the `metaBuffer` (see [`META`]), or, when they do not fit there, `[text, values,
/// Uint32Array deliveries, Uint32Array ends, Uint32Array layouts]`. `values` is the JSON array
/// of the segment's structured values (see [`Segment::values`]), or undefined when it has none.
pub fn take(env: Env) -> JsResult<JsVal> {
    let mut seg = {
        let mut b = BATCH.lock().unwrap_or_else(|p| p.into_inner());
        let seg = match b.full.pop_front() {
            Some(seg) => seg,
            None if b.open.deliveries.is_empty() => return js::null(env),
            None if !b.settled => {
                b.deferred = true;
                return js::null(env);
            }
            None => {
                b.last = None;
                let fresh = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or(Segment::EMPTY);
                std::mem::replace(&mut b.open, fresh)
            }
        };
        b.events -= seg.events();
        PENDING.store(b.events, Ordering::Relaxed);
        seg
    };
    let in_meta = write_meta(&seg);
    let out = js::array(env, if in_meta { 2 } else { 5 });
    let filled = out.and_then(|out| {
        js::set_index(env, out, 0, js_text(env, &seg.text, seg.ascii)?)?;
        if !in_meta {
            for (i, items) in [&seg.deliveries, &seg.ends, &seg.layouts].into_iter().enumerate() {
                let a = u32_array(env, items)?;
                js::set_index(env, out, i as u32 + 2, a)?;
            }
        }
        if seg.value_count > 0 {
            seg.values.push(']');
            js::set_index(env, out, 1, js_text(env, &seg.values, seg.ascii)?)?;
        }
        Ok(out)
    });
    // The segment's buffers were copied: reuse them (a burst's oversized ones are freed).
    if seg.text.capacity() <= 4 * SEGMENT_TEXT {
        seg.clear();
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(seg);
        }
    }
    filled
}

/// A JS string of `text`: ASCII (the usual case) is copied as a one-byte string, without
/// decoding.
fn js_text(env: Env, text: &str, ascii: bool) -> JsResult<JsVal> {
    if !ascii {
        return js::string(env, text);
    }
    let mut v = ptr::null_mut();
    ck!(env, sys::napi_create_string_latin1(env, text.as_ptr().cast(), text.len() as isize, &mut v));
    Ok(v)
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

/// Whether the facade should offer host values for the next call (`Runtime::host_values_welcome`,
/// refreshed after each entered call and registry change), read through `hostWelcome()`.
static WELCOME: AtomicU32 = AtomicU32::new(0);

/// Refreshes [`WELCOME`].
pub fn refresh_welcome(rt: &baton::Runtime) {
    WELCOME.store(u32::from(rt.host_values_welcome()), Ordering::Relaxed);
}

/// Always 0: the hint of a JS thread whose calls must not offer host values (a worker's: its
/// subscribers get no deliveries, and the events of its calls reach the first thread's
/// subscribers, whose facade does not hold its snapshots).
static NEVER: AtomicU32 = AtomicU32::new(0);

/// `hostWelcome()` → an `ArrayBuffer` of 4 bytes over [`WELCOME`] on the delivery thread, over
/// [`NEVER`] on any other (static memory, as [`pending_counter`]).
pub fn host_welcome(env: Env) -> JsResult<JsVal> {
    let mut buf = ptr::null_mut();
    let cell = if js::on_delivery_thread() { &WELCOME } else { &NEVER };
    let data = cell.as_ptr().cast::<c_void>();
    ck!(env, sys::napi_create_external_arraybuffer(env, data, 4, None, ptr::null_mut(), &mut buf));
    Ok(buf)
}

/// Creates the thread-safe function that wakes the JS thread to drain (`drain` is the
/// facade's function). It is unref'd: pending deliveries do not keep the process alive.
pub fn install(env: Env, drain: JsVal) -> JsResult<()> {
    if !TSFN.load(Ordering::Acquire).is_null() {
        return Ok(());
    }
    let name = js::string(env, "baton.deliver")?;
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
    w.result = Some(r.unwrap_or_else(|p| Err(js::panic_error(p))));
}

unsafe extern "C" fn work_complete(env: Env, _status: sys::napi_status, data: *mut c_void) {
    let w = unsafe { Box::from_raw(data as *mut Work) };
    unsafe { sys::napi_delete_async_work(env, w.work) };
    match w.result.unwrap_or_else(|| Err(baton::Error::internal("flush did not run"))) {
        Ok(b) => {
            let v = js::boolean(env, b).unwrap_or(ptr::null_mut());
            unsafe { sys::napi_resolve_deferred(env, w.deferred, v) };
        }
        Err(e) => {
            let v = js::error_value(env, &e).or_else(|_| js::undefined(env)).unwrap_or(ptr::null_mut());
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
    let name = js::string(env, if shutdown { "baton.shutdown" } else { "baton.flush" })?;
    let mut work = ptr::null_mut();
    ck!(env, sys::napi_create_async_work(env, ptr::null_mut(), name, Some(work_execute), Some(work_complete), w.cast(), &mut work));
    unsafe { (*w).work = work };
    ck!(env, sys::napi_queue_async_work(env, work));
    Ok(promise)
}
