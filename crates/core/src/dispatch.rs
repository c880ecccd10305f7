//! Delivery of events to subscribers, off the caller's path (DESIGN.md §2.5).
//!
//! One dispatcher thread per runtime drains a bounded FIFO. Producers only push; the
//! dispatcher takes the whole queue at once (one lock per batch, not per event) and delivers
//! each event to its subscriber snapshot in order. When the queue is empty the dispatcher
//! spins briefly before sleeping, so a steady producer rarely pays for a wake-up syscall.
//! Control items (flush and close hooks) ride in the same FIFO, which is what orders them
//! after every event emitted before them. On wasm32 there is no thread: the queue is drained
//! by `drain`, `flush`, or inline when it fills up.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::middleware::{Middleware, Subscriber};
use crate::platform;
use crate::reentry;
use crate::registry::Chain;

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
            other => Err(Error::invalid_argument(format!(
                "overflow policy: '{other}' is not one of block, drop"
            ))),
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
    /// Events currently queued or being delivered.
    pub queued: u64,
}

pub(crate) enum Item {
    Event(Arc<Event>, Chain),
    Control(Box<dyn FnOnce() + Send>),
}

struct State {
    queue: VecDeque<Item>,
    enqueued: u64,
    done: u64,
    sleeping: bool,
    waiters: usize,
    started: bool,
    stopping: bool,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    progress: Condvar,
    capacity: u64,
    policy: OverflowPolicy,
    /// Mirror of `enqueued` that the dispatcher reads while spinning, without the lock.
    enqueued_hint: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
    pub middleware_failures: AtomicU64,
}

pub(crate) struct Dispatcher(Arc<Shared>);

const SPIN_ROUNDS: u32 = 2_000;

impl Dispatcher {
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Dispatcher {
        Dispatcher(Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                enqueued: 0,
                done: 0,
                sleeping: false,
                waiters: 0,
                started: false,
                stopping: false,
                stopped: false,
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1) as u64,
            policy,
            enqueued_hint: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            middleware_failures: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count_middleware_failure(&self) {
        self.0.middleware_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues an event for its subscribers, applying the overflow policy.
    pub fn enqueue_event(&self, event: Arc<Event>, subscribers: Chain) {
        let on_dispatcher = reentry::is_set(reentry::DISPATCHER);
        let mut st = self.lock();
        if st.stopping {
            return;
        }
        // The dispatcher thread never waits for room: it is the one that makes room.
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
        self.push(st, Item::Event(event, subscribers));
    }

    /// Queues a control item; never dropped, never blocks. Returns its sequence number.
    pub fn enqueue_control(&self, f: Box<dyn FnOnce() + Send>) -> Option<u64> {
        let st = self.lock();
        if st.stopped {
            return None;
        }
        Some(self.push(st, Item::Control(f)))
    }

    fn push(&self, mut st: MutexGuard<'_, State>, item: Item) -> u64 {
        st.queue.push_back(item);
        st.enqueued += 1;
        let seq = st.enqueued;
        self.0.enqueued_hint.store(seq, Ordering::Release);
        if !st.started && platform::HAS_THREADS {
            st.started = true;
            let shared = Arc::clone(&self.0);
            let spawned = std::thread::Builder::new()
                .name("baton-dispatch".into())
                .spawn(move || run(shared));
            if spawned.is_err() {
                st.started = false;
            }
        } else if st.sleeping {
            self.0.wake.notify_one();
        }
        seq
    }

    /// Waits until every item queued so far is processed, or the timeout passes.
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
            let (g, _) = self
                .0
                .progress
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner());
            st = g;
            st.waiters -= 1;
        }
        true
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
            for item in batch {
                deliver(&self.0, item);
            }
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
            self.0.wake.notify_all();
            st.enqueued
        };
        let finished = self.wait_for(seq, timeout);
        let mut st = self.lock();
        st.stopped = true;
        self.0.wake.notify_all();
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

fn deliver(shared: &Shared, item: Item) {
    match item {
        Item::Event(event, subscribers) => {
            for entry in subscribers.iter() {
                if let Middleware::Subscriber(sub) = &entry.mw {
                    let ok = catch_unwind(AssertUnwindSafe(|| sub.on_event(&event)))
                        .map(|r| r.is_ok())
                        .unwrap_or(false);
                    if !ok {
                        shared.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
        Item::Control(f) => {
            let _ = catch_unwind(AssertUnwindSafe(f));
        }
    }
}

fn run(shared: Arc<Shared>) {
    let _flag = reentry::enter(reentry::DISPATCHER);
    let mut batch: VecDeque<Item> = VecDeque::new();
    loop {
        {
            let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if !st.queue.is_empty() {
                    break;
                }
                if st.stopped || (st.stopping && st.done == st.enqueued) {
                    st.stopped = true;
                    shared.progress.notify_all();
                    return;
                }
                let seen = st.enqueued;
                drop(st);
                let mut spins = 0;
                while spins < SPIN_ROUNDS && shared.enqueued_hint.load(Ordering::Acquire) == seen {
                    if spins % 64 == 63 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                    spins += 1;
                }
                st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                if st.queue.is_empty() && !st.stopped && !st.stopping {
                    st.sleeping = true;
                    st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.sleeping = false;
                }
            }
            std::mem::swap(&mut st.queue, &mut batch);
        }
        let n = batch.len() as u64;
        for item in batch.drain(..) {
            deliver(&shared, item);
        }
        let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.done += n;
        if st.waiters > 0 {
            shared.progress.notify_all();
        }
    }
}

/// Closes a removed subscriber after every event already queued for it.
pub(crate) fn close_later(dispatcher: &Dispatcher, sub: Arc<dyn Subscriber>) {
    let close = move || {
        let _ = sub.close();
    };
    if dispatcher
        .enqueue_control(Box::new(close.clone()))
        .is_none()
    {
        close();
    }
}
