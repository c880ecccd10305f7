//! Delivery of events to subscribers, off the caller's path (DESIGN.md §2.5).
//!
//! One dispatcher thread per runtime drains a bounded FIFO. Design points, each measured:
//!
//! - **Batches, not ping-pong.** Producers only push under a short lock; the dispatcher takes
//!   the whole queue at once. When it finds the queue empty it backs off with short timed
//!   parks (tens of µs) before sleeping for good, so under load it wakes to a batch instead of
//!   fighting the producer for the lock on every event. `flush` unparks it at once, so the
//!   back-off never delays a flush.
//! - **No shared refcount per event.** The dispatcher keeps its own copy of the global
//!   subscriber list, replaced by an in-order control item whenever the list changes, so an
//!   event carries only its scope-local subscribers (usually none). Registration order and
//!   emission order therefore line up exactly: an event emitted before a registration is
//!   never delivered to the new subscriber, one emitted after always is.
//! - **Frees where the allocator wants it** ([`FreeOn`]). With glibc's malloc (the default
//!   for Rust programs and the C library) delivered events go to a bounded "returned" list and
//!   each push drops two of them on the producer's own thread: glibc's per-thread caches
//!   refill only with frees on their own thread (core bench, one subscriber: ~1.4 µs against
//!   ~2.3 µs when the dispatcher freed them). The dispatcher fills the next list outside the
//!   lock and swaps it in once producers have emptied the last one (else it frees those
//!   itself): producers take that lock for every event, and filling it inside made them wait
//!   behind the dispatcher (Node A/B: 0.95-0.96 awaited tool call, 0.90-0.95 synchronous). An
//!   idle dispatcher frees leftovers, and the list never exceeds the queue capacity. With
//!   mimalloc (the Node and Python extensions), a free from another thread is one atomic
//!   push, and the dispatcher freeing the batch itself takes that work off the caller's
//!   thread: Node A/B 0.97-1.02 (Node 20) and 0.95-0.96 (Node 24) awaited tool call,
//!   0.92-0.99 synchronous.
//!
//! Control items (flush and close hooks) ride in the same FIFO, so they run after every event
//! emitted before them. On wasm32 there is no thread: `drain`, `flush`, or a full queue
//! deliver inline on the caller.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::middleware::{Middleware, Subscriber};
use crate::payload::Payload;
use crate::platform;
use crate::reentry;
use crate::registry::{self, Chain};

/// What happens when an event is emitted into a full queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// The producer waits for room; nothing is lost.
    #[default]
    Block,
    /// The event is discarded and counted in [`Diagnostics::dropped_events`].
    Drop,
}

impl OverflowPolicy {
    pub fn parse(s: &str) -> Result<OverflowPolicy> {
        match s {
            "block" => Ok(OverflowPolicy::Block),
            "drop" => Ok(OverflowPolicy::Drop),
            other => Err(Error::invalid_argument(format!("overflow policy: '{other}' is not one of block, drop"))),
        }
    }
}

/// Counters a runtime reports about its delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Events handed to subscribers (each event counted once).
    pub delivered_events: u64,
    /// Events discarded by the `drop` policy.
    pub dropped_events: u64,
    /// Subscriber calls that returned an error or panicked.
    pub subscriber_failures: u64,
    /// Sanitizer and metadata-injector calls that failed (their output was omitted).
    pub middleware_failures: u64,
    /// Items currently queued or being delivered.
    pub queued: u64,
}

type Hook = Box<dyn FnOnce() + Send>;

pub(crate) enum Item {
    /// An event, with the scope-local subscribers that see it (global ones are implied).
    Event(Arc<Event>, Option<Chain>),
    /// The global subscriber list changed.
    SetGlobal(Chain),
    /// Call `flush` on every global subscriber.
    FlushGlobal,
    /// Run once (close hooks); the `Option` lets delivery take it by reference.
    Control(Mutex<Option<Hook>>),
}

struct State {
    queue: VecDeque<Item>,
    returned: Vec<Item>,
    enqueued: u64,
    done: u64,
    waiters: usize,
    /// The dispatcher is parked without a timeout and must be unparked.
    idle: bool,
    started: bool,
    stopping: bool,
    stopped: bool,
    /// Whether every subscriber of the newest global list, as [`Dispatcher::set_global`]
    /// queued or applied it, takes host values: the list an event pushed now will meet.
    global_takes_host: bool,
}

struct Shared {
    state: Mutex<State>,
    progress: Condvar,
    capacity: u64,
    policy: OverflowPolicy,
    thread: OnceLock<Thread>,
    /// The dispatcher's copy of the global subscriber list.
    global: Mutex<Chain>,
    delivered: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
    middleware_failures: AtomicU64,
    /// Runs on the delivering thread after each batch (see [`set_batch_hook`]).
    batch_hook: OnceLock<BatchHook>,
    /// `State::global_takes_host`, for readers that must not take the lock (a hint only).
    global_takes_host: AtomicBool,
}

/// A hook run on the delivering thread after each batch of events.
pub type BatchHook = Arc<dyn Fn() + Send + Sync>;

/// Makes `hook` run on the delivering thread (the dispatcher, or whoever calls `drain`) right
/// after each batch of events has been handed to the subscribers, before it waits for more.
/// A binding uses it to hold a host lock, such as Python's GIL, across a whole batch rather
/// than taking it once per event. Returns `false` if the runtime already has a hook.
pub fn set_batch_hook(runtime: &crate::Runtime, hook: BatchHook) -> bool {
    runtime.0.dispatcher.0.batch_hook.set(hook).is_ok()
}

fn run_batch_hook(shared: &Shared) {
    if let Some(hook) = shared.batch_hook.get() {
        let _ = catch_unwind(AssertUnwindSafe(|| hook()));
    }
}

/// Which thread frees delivered events (see the module docs): the right choice depends on the
/// allocator the program links, which only the program (or a binding) knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FreeOn {
    /// Producers take delivered events back and free them, two per push: best for allocators
    /// with per-thread caches that a remote free does not refill (glibc's malloc).
    #[default]
    Producer,
    /// The dispatcher frees each batch after delivering it: best for allocators whose remote
    /// free is cheap (mimalloc), since it takes the work off the caller's thread.
    Dispatcher,
}

/// Sets which thread frees delivered events, for every runtime of the process from its next
/// batch on (default [`FreeOn::Producer`]). Process-wide like the allocator it depends on: a
/// binding that installs its own allocator says so once, before or after runtimes exist.
/// Events already handed back to producers are still freed by them.
pub fn set_free_on(free_on: FreeOn) {
    FREE_ON_DISPATCHER.store(free_on == FreeOn::Dispatcher, Ordering::Relaxed);
}

/// [`FreeOn::Dispatcher`] (see [`set_free_on`]).
static FREE_ON_DISPATCHER: AtomicBool = AtomicBool::new(false);

#[derive(Clone)]
pub(crate) struct Dispatcher(Arc<Shared>);

/// Back-off schedule when the queue is empty: short timed parks, then sleep until woken.
const BACKOFF_PARK: Duration = Duration::from_micros(50);
const BACKOFF_ROUNDS: u32 = 40;

impl Dispatcher {
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Dispatcher {
        Dispatcher(Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                returned: Vec::new(),
                enqueued: 0,
                done: 0,
                waiters: 0,
                idle: false,
                started: false,
                stopping: false,
                stopped: false,
                global_takes_host: true,
            }),
            progress: Condvar::new(),
            capacity: capacity.max(1) as u64,
            policy,
            thread: OnceLock::new(),
            global: Mutex::new(Chain::default()),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            middleware_failures: AtomicU64::new(0),
            batch_hook: OnceLock::new(),
            global_takes_host: AtomicBool::new(true),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count_middleware_failure(&self) {
        self.0.middleware_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues an event for the global subscribers plus `locals`, applying the overflow policy.
    pub fn enqueue_event(&self, event: Arc<Event>, locals: Option<Chain>) {
        self.enqueue_event_or_text(event, locals, &mut || Payload::NULL);
    }

    /// [`Self::enqueue_event`] for an event whose `data` may be a host value: unless every
    /// subscriber it will meet takes host values, its data is replaced by `text()` first. The
    /// check is made under the queue lock, against the global list that holds for an item
    /// pushed now, so no registration can come between the decision and the push; `text` runs
    /// outside the lock (a host may run its own code in it).
    pub fn enqueue_event_or_text(&self, mut event: Arc<Event>, locals: Option<Chain>, text: &mut dyn FnMut() -> Payload) {
        let on_dispatcher = reentry::is_set(reentry::DISPATCHER);
        let mut st = self.lock();
        loop {
            if st.stopping {
                return;
            }
            // The dispatcher never waits for room: it is the one that makes room.
            if !on_dispatcher {
                while st.enqueued - st.done >= self.0.capacity {
                    match self.0.policy {
                        OverflowPolicy::Drop => {
                            self.0.dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        OverflowPolicy::Block if !platform::HAS_THREADS => {
                            drop(st);
                            self.drain();
                            st = self.lock();
                        }
                        OverflowPolicy::Block => {
                            st.waiters += 1;
                            st = self.0.progress.wait(st).unwrap_or_else(|p| p.into_inner());
                            st.waiters -= 1;
                        }
                    }
                }
            }
            // Checked last, right before the push and under the same lock: waiting for room
            // above lets registrations in.
            let keeps_host = st.global_takes_host && locals.as_deref().is_none_or(registry::takes_host_values);
            if event.data.host_token().is_none() || keeps_host {
                break;
            }
            drop(st);
            // The event is not shared before it is queued, so this clones nothing.
            Arc::make_mut(&mut event).data = text();
            st = self.lock();
        }
        self.push(st, Item::Event(event, locals));
    }

    /// Queues a control item; never dropped, never blocks. `None` once stopped.
    fn enqueue_control(&self, item: Item) -> Option<u64> {
        let st = self.lock();
        if st.stopped {
            return None;
        }
        let seq = self.push(st, item);
        self.wake();
        Some(seq)
    }

    /// Replaces the global subscriber list, in order with the events around it.
    pub fn set_global(&self, chain: Chain) {
        let mut st = self.lock();
        st.global_takes_host = registry::takes_host_values(&chain);
        self.0.global_takes_host.store(st.global_takes_host, Ordering::Relaxed);
        if st.stopped || st.done == st.enqueued {
            // Nothing queued or in delivery ahead of it: apply directly.
            *self.0.global.lock().unwrap_or_else(|p| p.into_inner()) = chain;
            return;
        }
        self.push(st, Item::SetGlobal(chain));
    }

    /// Whether the newest global subscriber list takes host values: a hint for hosts deciding
    /// whether to offer one (the decision itself is [`Self::enqueue_event_or_text`]'s).
    pub fn global_takes_host_values(&self) -> bool {
        self.0.global_takes_host.load(Ordering::Relaxed)
    }

    /// Queues `flush` of the global subscribers; returns the sequence to wait for.
    pub fn enqueue_flush(&self) -> Option<u64> {
        self.enqueue_control(Item::FlushGlobal)
    }

    /// Queues a hook to run after everything queued so far.
    pub fn enqueue_hook(&self, hook: Hook) -> Option<u64> {
        self.enqueue_control(Item::Control(Mutex::new(Some(hook))))
    }

    fn push(&self, mut st: MutexGuard<'_, State>, item: Item) -> u64 {
        // Take back two delivered items per push: each event frees about what it allocated,
        // and freeing a few at a time keeps both on the allocator's per-thread fast path.
        let garbage = [st.returned.pop(), st.returned.pop()];
        st.queue.push_back(item);
        st.enqueued += 1;
        let seq = st.enqueued;
        let mut wake = false;
        if !st.started && platform::HAS_THREADS {
            st.started = true;
            let shared = Arc::clone(&self.0);
            if std::thread::Builder::new().name("baton-dispatch".into()).spawn(move || run(shared)).is_err() {
                st.started = false;
            }
        } else if st.idle {
            st.idle = false;
            wake = true;
        }
        drop(st);
        if wake {
            self.wake();
        }
        drop(garbage); // freed here, on the producer's thread, outside the lock
        seq
    }

    fn wake(&self) {
        if let Some(t) = self.0.thread.get() {
            t.unpark();
        }
    }

    /// Waits until item `seq` is processed, or the timeout passes.
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        if !platform::HAS_THREADS {
            self.drain();
            return self.lock().done >= seq;
        }
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while st.done < seq {
            let now = Instant::now();
            if now >= deadline || st.stopped {
                return st.done >= seq;
            }
            st.waiters += 1;
            let (g, _) = self.0.progress.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner());
            st = g;
            st.waiters -= 1;
        }
        true
    }

    /// Items queued and not yet processed.
    pub fn backlog(&self) -> u64 {
        let st = self.lock();
        st.enqueued - st.done
    }

    /// Delivers everything queued, on the calling thread (wasm32, or a host-driven loop).
    /// Returns how many items were processed.
    pub fn drain(&self) -> usize {
        if reentry::is_set(reentry::DISPATCHER) {
            return 0;
        }
        let _flag = reentry::enter(reentry::DISPATCHER);
        let mut total = 0;
        loop {
            let batch = std::mem::take(&mut self.lock().queue);
            if batch.is_empty() {
                return total;
            }
            let n = batch.len();
            deliver_batch(&self.0, &batch);
            run_batch_hook(&self.0);
            total += n;
            let mut st = self.lock();
            st.done += n as u64;
            if st.waiters > 0 {
                self.0.progress.notify_all();
            }
        }
    }

    /// Stops accepting events, lets the dispatcher finish what is queued, and waits for it.
    pub fn stop(&self, timeout: Duration) -> bool {
        let seq = {
            let mut st = self.lock();
            st.stopping = true;
            st.enqueued
        };
        self.wake();
        let finished = self.wait_for(seq, timeout);
        self.lock().stopped = true;
        self.wake();
        finished
    }

    pub fn diagnostics(&self) -> Diagnostics {
        let st = self.lock();
        Diagnostics {
            delivered_events: self.0.delivered.load(Ordering::Relaxed),
            dropped_events: self.0.dropped.load(Ordering::Relaxed),
            subscriber_failures: self.0.failures.load(Ordering::Relaxed),
            middleware_failures: self.0.middleware_failures.load(Ordering::Relaxed),
            queued: st.enqueued - st.done,
        }
    }
}

fn call_subscribers(shared: &Shared, chain: &Chain, event: &Arc<Event>) {
    for entry in chain.iter() {
        if let Middleware::Subscriber(sub) = &entry.mw {
            let ok = catch_unwind(AssertUnwindSafe(|| sub.on_shared_event(event))).map(|r| r.is_ok()).unwrap_or(false);
            if !ok {
                shared.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Tells every subscriber that may have received events in this batch that it ended.
fn end_batch(shared: &Shared, chains: &[&Chain]) {
    for chain in chains {
        for entry in chain.iter() {
            if let Middleware::Subscriber(sub) = &entry.mw {
                let failed = catch_unwind(AssertUnwindSafe(|| sub.end_batch())).unwrap_or(1);
                if failed > 0 {
                    shared.failures.fetch_add(failed as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

fn deliver_batch(shared: &Shared, batch: &VecDeque<Item>) {
    let mut global = shared.global.lock().unwrap_or_else(|p| p.into_inner());
    // Scope-local chains met in this batch (consecutive events usually share one).
    let mut locals_seen: Vec<&Chain> = Vec::new();
    for item in batch {
        match item {
            Item::Event(event, locals) => {
                call_subscribers(shared, &global, event);
                if let Some(l) = locals {
                    call_subscribers(shared, l, event);
                    if !locals_seen.iter().any(|c| Arc::ptr_eq(c, l)) {
                        locals_seen.push(l);
                    }
                }
                shared.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Item::SetGlobal(chain) => *global = chain.clone(),
            Item::FlushGlobal => {
                for entry in global.iter() {
                    if let Middleware::Subscriber(s) = &entry.mw {
                        let _ = catch_unwind(AssertUnwindSafe(|| s.flush()));
                    }
                }
            }
            Item::Control(hook) => {
                if let Some(f) = hook.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = catch_unwind(AssertUnwindSafe(f));
                }
            }
        }
    }
    let global: &Chain = &global;
    locals_seen.insert(0, global);
    end_batch(shared, &locals_seen);
}

fn run(shared: Arc<Shared>) {
    let _ = shared.thread.set(std::thread::current());
    let _flag = reentry::enter(reentry::DISPATCHER);
    let mut batch: VecDeque<Item> = VecDeque::new();
    // Delivered events on their way back to producers (see the end of the loop).
    let mut back: Vec<Item> = Vec::new();
    let mut empty_rounds = 0u32;
    loop {
        {
            let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.queue.is_empty() {
                if st.stopped || (st.stopping && st.done == st.enqueued) {
                    st.stopped = true;
                    shared.progress.notify_all();
                    return;
                }
                empty_rounds += 1;
                if empty_rounds <= BACKOFF_ROUNDS {
                    drop(st);
                    std::thread::park_timeout(BACKOFF_PARK);
                } else {
                    // Idle: free what producers did not take, then sleep until pushed.
                    let leftovers = std::mem::take(&mut st.returned);
                    st.idle = true;
                    drop(st);
                    drop(leftovers);
                    std::thread::park();
                }
                continue;
            }
            empty_rounds = 0;
            std::mem::swap(&mut st.queue, &mut batch);
        }
        deliver_batch(&shared, &batch);
        run_batch_hook(&shared);
        let n = batch.len() as u64;
        let producers_free = !FREE_ON_DISPATCHER.load(Ordering::Relaxed);
        if producers_free {
            // The delivered events go back for producers to free, gathered here, outside the
            // lock: producers take that lock on every event, and a copy of a whole batch inside
            // it made them wait (and sleep) behind the dispatcher.
            let keep = shared.capacity as usize;
            back.extend(batch.drain(..).filter(|i| matches!(i, Item::Event(..))).take(keep));
        }
        let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.done += n;
        if producers_free && st.returned.is_empty() {
            std::mem::swap(&mut st.returned, &mut back);
        }
        if st.waiters > 0 {
            shared.progress.notify_all();
        }
        drop(st);
        // Freed here, after `done` (a flush waiting for this batch need not wait for it): the
        // batch when the dispatcher frees, else what producers did not take yet.
        batch.clear();
        back.clear();
    }
}

/// Closes a removed subscriber after every event already queued for it.
pub(crate) fn close_later(dispatcher: &Dispatcher, sub: Arc<dyn Subscriber>) {
    let close = move || {
        let _ = sub.close();
    };
    if dispatcher.enqueue_hook(Box::new(close.clone())).is_none() {
        close();
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::{MarkOptions, Registration, Runtime, RuntimeConfig};

    /// With `FreeOn::Dispatcher`, nothing is handed back to producers: the returned list stays
    /// empty however many batches go by. (The other tests of this binary run in the default
    /// mode; switching it only moves where their events are freed.)
    #[test]
    fn the_dispatcher_frees_what_it_delivered_when_told_to() {
        set_free_on(FreeOn::Dispatcher);
        let rt = Runtime::new(RuntimeConfig::default());
        rt.register(Registration::new("quiet"), Middleware::subscriber(|_| Ok(()))).unwrap();
        let stack = rt.new_stack();
        for i in 0..2_000 {
            stack.mark(MarkOptions::new("m").data(serde_json::json!(i))).unwrap();
        }
        assert!(rt.flush(Duration::from_secs(30)).unwrap());
        let returned = rt.0.dispatcher.0.state.lock().unwrap().returned.len();
        set_free_on(FreeOn::Producer);
        assert_eq!(returned, 0);
        assert_eq!(rt.diagnostics().delivered_events, 2_000);
    }
}
