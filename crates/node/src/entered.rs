//! Async tool and LLM calls the facade runs itself (`enterTool` / `enterLlm` with `fork`), and
//! the scopes of `withScope` (`enterScope`), held here by token until they end.
//!
//! Such a call runs on a fork of the caller's stack with its scope pushed there. The facade
//! needs a JS handle for that fork only if the function uses Baton (a nested call, a mark, a
//! push), so the call and its fork stay here, named by a token (a number), and `enteredStack`
//! makes the handle on demand. At `exitForked` the slot is freed at once. Otherwise every
//! call would make a handle whose memory only a finalizer frees, and finalizers run only when
//! the event loop turns: a loop that awaits calls and never waits for I/O kept ~0.8 KB per
//! call until it did.
//!
//! A token is a slot and its generation: a token that was used, never issued or made up names
//! nothing (each use checks the generation), so it cannot end or reach another call.

use std::cell::{Cell, RefCell};

use baton::{EnteredCall, ScopeHandle, Stack};

use crate::js::{self, Env, JsResult, JsVal};

/// What a slot holds besides the fork: an entered call, or the scope `withScope` pushed.
pub enum Held {
    Call(EnteredCall),
    Scope(ScopeHandle),
}

struct Slot {
    generation: u32,
    held: Option<(Stack, Held)>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
    /// Where [`hold`] publishes the caller's position (`Stack::current_id`) for the facade
    /// (its pin cache), so the position needs no call of its own. Leaked once per thread (8
    /// bytes) so the facade's view of it can never outlive it.
    static POSITION: Cell<*mut f64> = const { Cell::new(std::ptr::null_mut()) };
}

/// Slots are counted in the low 20 bits of a token, generations above them (a token stays
/// under 2^52, exact in a JS number); token 0 is never issued.
const SLOT_BITS: u32 = 20;
const MAX_SLOTS: usize = 1 << SLOT_BITS;

fn token(slot: u32, generation: u32) -> f64 {
    (f64::from(generation) * f64::from(1u32 << SLOT_BITS)) + f64::from(slot) + 1.0
}

fn split(token: f64) -> Option<(usize, u32)> {
    if !(token >= 1.0 && token < 2f64.powi(52) && token.fract() == 0.0) {
        return None;
    }
    let t = token as u64 - 1;
    Some(((t & (MAX_SLOTS as u64 - 1)) as usize, (t >> SLOT_BITS) as u32))
}

/// Holds an entered call (or a scope) and the fork it runs on, and publishes `position`, where
/// the caller was; the token names it for [`stack_of`] and [`take`].
pub fn hold(position: f64, stack: Stack, held: Held) -> baton::Result<f64> {
    publish_position(position);
    insert(stack, held)
}

fn insert(stack: Stack, held: Held) -> baton::Result<f64> {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let slot = match t.free.pop() {
            Some(i) => i,
            None if t.slots.len() < MAX_SLOTS => {
                t.slots.push(Slot { generation: 0, held: None });
                (t.slots.len() - 1) as u32
            }
            None => return Err(baton::Error::invalid_state(format!("call: more than {MAX_SLOTS} async calls and scopes running at once"))),
        };
        let s = &mut t.slots[slot as usize];
        s.held = Some((stack, held));
        Ok(token(slot, s.generation))
    })
}

/// The fork a running call runs on (shared: the stack is reference-counted).
pub fn stack_of(token: f64) -> Option<Stack> {
    let (slot, generation) = split(token)?;
    TABLE.with(|t| {
        let t = t.borrow();
        let s = t.slots.get(slot)?;
        if s.generation != generation {
            return None;
        }
        s.held.as_ref().map(|(stack, _)| stack.clone())
    })
}

/// Removes a running call or scope (to end it); `None` if the token names none of the kind
/// `is`, which then stays.
pub fn take(token: f64, is: fn(&Held) -> bool) -> Option<(Stack, Held)> {
    let (slot, generation) = split(token)?;
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let s = t.slots.get_mut(slot)?;
        if s.generation != generation || !s.held.as_ref().is_some_and(|(_, h)| is(h)) {
            return None;
        }
        s.generation = s.generation.wrapping_add(1) % (1 << (52 - SLOT_BITS - 1));
        let held = s.held.take();
        t.free.push(slot as u32);
        held
    })
}

/// Publishes the caller's position for the facade (see [`POSITION`]).
fn publish_position(id: f64) {
    POSITION.with(|p| {
        let p = p.get();
        if !p.is_null() {
            // SAFETY: this thread's leaked cell.
            unsafe { *p = id };
        }
    });
}

/// `enteredPosition()` → an `ArrayBuffer` of one `f64`: the caller's position at the last
/// entered async call (`Stack::current_id`, -1 when not exact).
pub fn position_buffer(env: Env, _a: &[JsVal]) -> JsResult<JsVal> {
    let p = POSITION.with(|c| {
        if c.get().is_null() {
            c.set(Box::leak(Box::new(-1.0f64)));
        }
        c.get()
    });
    let mut buf = std::ptr::null_mut();
    js::ck!(env, napi::sys::napi_create_external_arraybuffer(env, p.cast(), 8, None, std::ptr::null_mut(), &mut buf));
    Ok(buf)
}

/// Entered async calls and `withScope` scopes still held on this thread (for tests: none may
/// be left behind).
pub fn running() -> usize {
    TABLE.with(|t| {
        let t = t.borrow();
        t.slots.len() - t.free.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_one_call_once() {
        assert!(split(0.0).is_none());
        assert!(split(-1.0).is_none());
        assert!(split(1.5).is_none());
        assert!(split(f64::NAN).is_none());
        assert!(split(2f64.powi(53)).is_none());
        for (slot, generation) in [(0, 0), (5, 7), (MAX_SLOTS as u32 - 1, (1 << 31) - 1)] {
            assert_eq!(split(token(slot, generation)), Some((slot as usize, generation)));
        }
    }
}
