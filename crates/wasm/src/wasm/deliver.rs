//! Subscribers: events batched as text for the facade, which delivers them on the JS side.
//!
//! A JS subscriber is a `BatchSubscriber` with the facade's id. The core's drain calls it for
//! each event; it writes the event's ATOF JSON once into one shared text, however many
//! subscribers receive it, with the event's layout (`Event::write_json_layout`: where each
//! top-level value lies and its form), and records who receives which event. The facade takes
//! the batch (`takeEvents` + `takenMeta`: two crossings per drain, not one per event and
//! subscriber), slices each event out of the text (for `format: 'json'`) or builds its object
//! from the layout, parsing only the structured values, once for every subscriber that wants
//! objects, and calls them in order, outside any wasm call (so a subscriber may emit marks).

use super::*;

/// Marks a subscriber's removal in the deliveries (its `close`): the facade forgets the id
/// after delivering what came before.
pub(super) const CLOSED: u32 = u32::MAX;

pub(super) struct Batch {
    /// The events' JSON, back to back (UTF-8; reused between drains).
    text: Vec<u8>,
    /// Where each event ends in `text`, in UTF-16 units (as JS strings index).
    ends: Vec<u32>,
    /// UTF-16 length of `text`.
    units: u32,
    /// (subscriber id, event index or CLOSED), in delivery order.
    deliveries: Vec<u32>,
    /// The last event written (consecutive deliveries of one event to several subscribers
    /// share its text).
    last: Option<(baton::Uuid, baton::EventKind)>,
    /// Per event, [`LAYOUT`] numbers: its kind, then per `baton::EventField` the value's form
    /// and where it starts and ends, in UTF-16 units from the start of the batch text.
    layouts: Vec<u32>,
    /// The taken batch's `[events, ends..., layouts..., deliveries...]` (reused).
    meta: Vec<u32>,
    /// The taken batch's text (swapped with `text`; the facade reads it from memory).
    taken: Vec<u8>,
    /// Scratch for one event's layout.
    scratch: baton::EventLayout,
}

/// Numbers per event in `Batch::layouts` (the facade's `LAYOUT`, which must agree).
pub(super) const LAYOUT: usize = baton::EventLayout::NUMBERS;
const _: () = assert!(LAYOUT == 34, "wasm/lib/api.js reads 34 numbers per event");

thread_local! {
    pub(super) static BATCH: RefCell<Batch> = const {
        RefCell::new(Batch {
            text: Vec::new(),
            ends: Vec::new(),
            units: 0,
            deliveries: Vec::new(),
            last: None,
            layouts: Vec::new(),
            meta: Vec::new(),
            taken: Vec::new(),
            scratch: baton::EventLayout::EMPTY,
        })
    };
}

pub(super) struct BatchSubscriber(u32);

impl BatchSubscriber {
    #[cfg_attr(baton_optimize, optimize(speed))]
    fn push(&self, event: Option<&baton::Event>) {
        BATCH.with(|b| {
            let mut b = b.borrow_mut();
            let b = &mut *b;
            let index = match event {
                Some(e) => {
                    if b.last != Some((e.uuid, e.kind)) || b.ends.is_empty() {
                        let start = b.text.len();
                        e.write_json_layout(&mut b.text, &mut b.scratch);
                        let written = &b.text[start..];
                        let units = units(written);
                        if units as usize != written.len() {
                            b.scratch.to_utf16(written);
                        }
                        let base = b.units;
                        b.layouts.extend_from_slice(&b.scratch.numbers(base));
                        b.units += units;
                        b.ends.push(b.units);
                        b.last = Some((e.uuid, e.kind));
                    }
                    b.ends.len() as u32 - 1
                }
                None => CLOSED,
            };
            b.deliveries.push(self.0);
            b.deliveries.push(index);
        });
    }
}

/// UTF-16 length of UTF-8 text (ASCII, the usual case, has one unit per byte).
pub(super) fn units(bytes: &[u8]) -> u32 {
    if bytes.is_ascii() {
        bytes.len() as u32
    } else {
        // SAFETY: only UTF-8 is written to the batch (`write_json_layout`).
        unsafe { std::str::from_utf8_unchecked(bytes) }.encode_utf16().count() as u32
    }
}

impl baton::Subscriber for BatchSubscriber {
    #[cfg_attr(baton_optimize, optimize(speed))]
    fn on_event(&self, event: &baton::Event) -> baton::Result<()> {
        self.push(Some(event));
        Ok(())
    }
    fn close(&self) -> baton::Result<()> {
        self.push(None);
        Ok(())
    }
}

/// Events waiting for the facade: queued in the core or batched here (it drains inline past
/// a high-water mark).
#[cfg_attr(baton_optimize, optimize(speed))]
pub(super) fn batched() -> u32 {
    let queued = rt().backlog().min(u32::MAX as u64) as u32;
    BATCH.with(|b| b.borrow().ends.len() as u32).saturating_add(queued)
}

/// Registers a subscriber the facade delivers to: `id` is the facade's. Events reach it
/// through `takeEvents` (see above), in emission order.
#[wasm_bindgen]
pub fn subscribe(name: &str, id: u32, priority: i32, scope: Option<Scope>) -> Result<(), JsValue> {
    let mw = Middleware::Subscriber(Arc::new(BatchSubscriber(id)));
    rt().register(registration(name, priority, scope, false), mw).map_err(to_js)
}

/// Delivers what the core has queued into the batch and takes it: returns the byte length
/// of the events' text (UTF-8, `takenText` until the next take), or -1 when nobody has
/// anything to receive. `takenMeta` then gives its layout. The facade
/// decodes the bytes itself: an ASCII batch (the usual case) is a Latin-1 copy in Node,
/// about four times faster than `TextDecoder`.
#[wasm_bindgen(js_name = takeEvents)]
#[cfg_attr(baton_optimize, optimize(speed))]
pub fn take_events() -> i32 {
    rt().drain();
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let b = &mut *b;
        if b.deliveries.is_empty() {
            return -1;
        }
        std::mem::swap(&mut b.text, &mut b.taken);
        b.text.clear();
        b.meta.clear();
        b.meta.push(b.ends.len() as u32);
        b.meta.extend_from_slice(&b.ends);
        b.meta.extend_from_slice(&b.layouts);
        b.meta.extend_from_slice(&b.deliveries);
        b.ends.clear();
        b.layouts.clear();
        b.deliveries.clear();
        b.units = 0;
        b.last = None;
        b.taken.len() as i32
    })
}

/// The text of the batch `takeEvents` took, as a view on the module's memory: valid until
/// the next call into the module (which may grow the memory), so the facade copies it out
/// at once.
#[wasm_bindgen(js_name = takenText)]
pub fn taken_text() -> js_sys::Uint8Array {
    // SAFETY: the view is read by the facade before it calls into the module again; nothing
    // allocates or frees in between (see above).
    BATCH.with(|b| unsafe { js_sys::Uint8Array::view(&b.borrow().taken) })
}

/// The layout of the batch `takeEvents` took: `[n, end_0..end_n-1, layouts (LAYOUT per
/// event), (id, index)...]` (offsets in UTF-16 units; index `0xffffffff`: the subscriber was
/// removed).
///
/// A view on the module's memory, like `takenText`: the facade copies it out at once.
#[wasm_bindgen(js_name = takenMeta)]
pub fn taken_meta() -> js_sys::Uint32Array {
    // SAFETY: read by the facade before it calls into the module again (see `takenText`).
    BATCH.with(|b| unsafe { js_sys::Uint32Array::view(&b.borrow().meta) })
}
