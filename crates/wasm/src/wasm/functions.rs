//! Ids, and the JS functions the core calls back later (subscribers, callbacks), kept by id.

use super::*;

thread_local! {
    pub(super) static NEXT_ID: Cell<u32> = const { Cell::new(1) };
    /// JS functions the core calls back later (subscribers), by id.
    pub(super) static FUNCTIONS: RefCell<HashMap<u32, Function>> = RefCell::new(HashMap::new());
}

pub(super) fn next_id() -> u32 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    })
}

pub(super) fn stored(id: u32) -> Option<Function> {
    FUNCTIONS.with(|m| m.borrow().get(&id).cloned())
}
