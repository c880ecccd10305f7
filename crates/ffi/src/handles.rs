//! Handle ids: every object a C caller holds is a `u64` in a sharded table, so an unknown,
//! freed or mistyped id is a clean `not_found` instead of a dangling pointer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use baton::{CallHandle, EnteredCall, Error, LlmStream, Result, Runtime, ScopeHandle, Stack};

pub(crate) enum Handle {
    Runtime(Runtime),
    Stack(Stack),
    /// A scope and the stack it was pushed on (kept alive so the scope can always be popped).
    Scope(ScopeHandle, Stack),
    Call(CallHandle),
    Stream(Arc<Mutex<Option<LlmStream>>>),
}

const SHARDS: usize = 32;

/// Ids are sequential numbers Baton hands out, never attacker-chosen keys, so the table hashes
/// them with one multiplication instead of SipHash (a hot path: every host-run tool call
/// inserts and removes one id). The high half is folded in because the ids of one shard share
/// their low bits.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type Shard = HashMap<u64, Handle, BuildHasherDefault<IdHasher>>;

pub(crate) struct Table {
    next: AtomicU64,
    shards: [Mutex<Shard>; SHARDS],
}

pub(crate) static HANDLES: LazyLock<Table> =
    LazyLock::new(|| Table { next: AtomicU64::new(1), shards: std::array::from_fn(|_| Mutex::new(Shard::default())) });

impl Table {
    fn shard(&self, id: u64) -> MutexGuard<'_, Shard> {
        self.shards[(id as usize) % SHARDS].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, h: Handle) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.shard(id).insert(id, h);
        id
    }

    /// Removes `id` if `is` accepts it; the handle is dropped by the caller, outside the lock
    /// (dropping a stream ends it, which may run callbacks that use the table).
    pub fn remove(&self, id: u64, what: &str, is: impl Fn(&Handle) -> bool) -> Result<Handle> {
        let mut shard = self.shard(id);
        match shard.get(&id) {
            Some(h) if is(h) => Ok(shard.remove(&id).expect("present")),
            _ => Err(unknown(what, id)),
        }
    }

    fn get<T>(&self, id: u64, what: &str, f: impl FnOnce(&Handle) -> Option<T>) -> Result<T> {
        self.shard(id).get(&id).and_then(f).ok_or_else(|| unknown(what, id))
    }

    pub fn runtime(&self, id: u64) -> Result<Runtime> {
        if id == 0 {
            return Ok(Runtime::global().clone());
        }
        self.get(id, "runtime", |h| match h {
            Handle::Runtime(r) => Some(r.clone()),
            _ => None,
        })
    }

    pub fn stack(&self, id: u64) -> Result<Stack> {
        if id == 0 {
            return Ok(baton::current_stack());
        }
        self.get(id, "stack", |h| match h {
            Handle::Stack(s) => Some(s.clone()),
            _ => None,
        })
    }

    pub fn scope(&self, id: u64) -> Result<ScopeHandle> {
        self.get(id, "scope", |h| match h {
            Handle::Scope(s, _) => Some(s.clone()),
            _ => None,
        })
    }

    /// A scope with the stack it was pushed on.
    pub fn scope_and_stack(&self, id: u64) -> Result<(ScopeHandle, Stack)> {
        self.get(id, "scope", |h| match h {
            Handle::Scope(s, st) => Some((s.clone(), st.clone())),
            _ => None,
        })
    }

    pub fn call(&self, id: u64) -> Result<CallHandle> {
        self.get(id, "call", |h| match h {
            Handle::Call(c) => Some(c.clone()),
            _ => None,
        })
    }

    pub fn stream(&self, id: u64) -> Result<Arc<Mutex<Option<LlmStream>>>> {
        self.get(id, "stream", |h| match h {
            Handle::Stream(s) => Some(s.clone()),
            _ => None,
        })
    }
}

/// Tool calls the host runs itself (`baton_tool_enter` until `baton_tool_exit`) come and go
/// on every host-run call, so they live in slabs of reusable slots rather than in the table:
/// no allocation and no hashing per call. Their ids have the top bit set (table ids count up
/// from 1 and never reach it); below it are the slab (5 bits), the slot's generation (26 bits,
/// bumped on every reuse, so a stale id is a clean `not_found`) and the slot index (32 bits).
pub(crate) struct EnteredCalls {
    slabs: [Mutex<Slab>; SHARDS],
}

#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

struct Slot {
    generation: u32,
    call: Option<EnteredCall>,
}

const ENTERED: u64 = 1 << 63;
const _: () = assert!(SHARDS.is_power_of_two() && SHARDS <= 32, "the slab takes 5 bits of an id");
const GENERATION_BITS: u32 = 26;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;

pub(crate) static ENTERED_CALLS: LazyLock<EnteredCalls> =
    LazyLock::new(|| EnteredCalls { slabs: std::array::from_fn(|_| Mutex::new(Slab::default())) });

impl EnteredCalls {
    fn slab(&self, i: usize) -> MutexGuard<'_, Slab> {
        self.slabs[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `call`, in the slab `spread` picks (the stack's id: concurrent stacks enter their
    /// calls into different slabs, and a call may exit on any thread, its id names its slab).
    pub fn insert(&self, call: EnteredCall, spread: u64) -> u64 {
        let home = (spread as usize) & (SHARDS - 1);
        let mut slab = self.slab(home);
        let index = match slab.free.pop() {
            Some(i) => {
                slab.slots[i as usize].call = Some(call);
                i
            }
            None => {
                slab.slots.push(Slot { generation: 0, call: Some(call) });
                u32::try_from(slab.slots.len() - 1).expect("fewer than 2^32 calls open at once")
            }
        };
        let generation = slab.slots[index as usize].generation;
        ENTERED | (home as u64) << 58 | u64::from(generation) << 32 | u64::from(index)
    }

    /// Removes the call; the caller ends it (outside the lock: ending emits events).
    pub fn remove(&self, id: u64) -> Result<EnteredCall> {
        let gone = || unknown("entered call", id);
        if id & ENTERED == 0 {
            return Err(gone());
        }
        let (home, generation, index) = ((id >> 58) as usize & (SHARDS - 1), (id >> 32) as u32 & GENERATION_MASK, id as u32);
        let mut slab = self.slab(home);
        let slot = slab.slots.get_mut(index as usize).filter(|s| s.generation == generation).ok_or_else(gone)?;
        let call = slot.call.take().ok_or_else(gone)?;
        slot.generation = (slot.generation + 1) & GENERATION_MASK;
        slab.free.push(index);
        Ok(call)
    }
}

fn unknown(what: &str, id: u64) -> Error {
    if id == 0 {
        Error::not_found(format!("{what}: 0 is not a {what} id"))
    } else {
        Error::not_found(format!("{what}: no live {what} has id {id} (never created, freed, or another kind of handle)"))
    }
}
