//! Where middleware lives: one global snapshot plus per-scope lists, merged into the chain a
//! call or event sees.
//!
//! Reads are the hot path, so the global lists are an immutable snapshot behind `ArcSwap`
//! (a read is a lock-free load), and scope-local lists are only consulted while at least one
//! scope-local registration is alive anywhere. Writers copy, modify and swap.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::error::{Error, Result};
use crate::middleware::{Family, Middleware};
use crate::scope::ScopeNode;

/// One registration.
pub(crate) struct Entry {
    pub name: Arc<str>,
    pub priority: i32,
    /// Registration order, used to order subscribers.
    pub seq: u64,
    pub break_chain: bool,
    pub mw: Middleware,
}

/// An ordered chain of entries, shared without copying.
pub(crate) type Chain = Arc<[Arc<Entry>]>;

/// Whether every subscriber of `chain` takes host values
/// ([`Subscriber::takes_host_values`](crate::middleware::Subscriber::takes_host_values));
/// true for an empty chain.
pub(crate) fn takes_host_values(chain: &[Arc<Entry>]) -> bool {
    chain.iter().all(|e| match &e.mw {
        Middleware::Subscriber(s) => s.takes_host_values(),
        _ => false,
    })
}

/// The lists of one owner (global or one scope), each kept sorted.
#[derive(Clone, Default)]
pub(crate) struct Lists([Chain; Family::COUNT]);

impl Lists {
    pub fn get(&self, family: Family) -> &Chain {
        &self.0[family.index()]
    }

    fn insert(&mut self, entry: Entry, owner: &str) -> Result<()> {
        let family = entry.mw.family();
        let list = &self.0[family.index()];
        if list.iter().any(|e| e.name == entry.name) {
            return Err(Error::already_exists(format!("{} '{}' is already registered {owner}", family.as_str(), entry.name)));
        }
        let mut v: Vec<Arc<Entry>> = list.iter().cloned().collect();
        v.push(Arc::new(entry));
        if family == Family::Subscriber {
            v.sort_by_key(|e| (e.priority, e.seq));
        } else {
            v.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.name.cmp(&b.name)));
        }
        self.0[family.index()] = v.into();
        Ok(())
    }

    fn remove(&mut self, family: Family, name: &str) -> Option<Arc<Entry>> {
        let list = &self.0[family.index()];
        let pos = list.iter().position(|e| &*e.name == name)?;
        let mut v: Vec<Arc<Entry>> = list.iter().cloned().collect();
        let removed = v.remove(pos);
        self.0[family.index()] = v.into();
        Some(removed)
    }

    fn mask(&self) -> u32 {
        self.0.iter().enumerate().filter(|(_, l)| !l.is_empty()).fold(0, |m, (i, _)| m | (1 << i))
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|l| l.len()).sum()
    }

    /// Every subscriber in these lists.
    pub fn subscribers(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.get(Family::Subscriber).iter()
    }
}

/// The registry of one runtime.
pub(crate) struct Registry {
    global: ArcSwap<Lists>,
    write: Mutex<()>,
    seq: AtomicU64,
    /// Number of scope-local registrations alive anywhere; zero keeps reads global-only.
    locals_live: AtomicUsize,
    /// Bit `f` set when the global list of family `f` is non-empty: lets the hot path answer
    /// "nothing registered" with one atomic load instead of a snapshot load.
    global_mask: AtomicU32,
    /// Told the new global subscriber list whenever it changes, under the write lock, so the
    /// dispatcher sees the changes in the order they happened.
    on_global_subscribers: Box<dyn Fn(Chain) + Send + Sync>,
}

impl Registry {
    pub fn new(on_global_subscribers: Box<dyn Fn(Chain) + Send + Sync>) -> Registry {
        Registry {
            on_global_subscribers,
            global: ArcSwap::from_pointee(Lists::default()),
            write: Mutex::new(()),
            seq: AtomicU64::new(0),
            locals_live: AtomicUsize::new(0),
            global_mask: AtomicU32::new(0),
        }
    }

    pub fn register(&self, name: &str, priority: i32, break_chain: bool, scope: Option<&Arc<ScopeNode>>, mw: Middleware) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid_argument(format!("{}: registration name must not be empty", mw.family().as_str())));
        }
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let entry = Entry { name: name.into(), priority, seq: self.seq.fetch_add(1, Ordering::Relaxed), break_chain, mw };
        match scope {
            None => {
                let mut lists = Lists::clone(&self.global.load());
                lists.insert(entry, "globally")?;
                self.publish(lists);
            }
            Some(node) => {
                let mut locals = node.locals.lock().unwrap_or_else(|p| p.into_inner());
                // Count first, then check: an ending scope that saw zero live locals is then
                // guaranteed to be seen as ended here (see `take_locals`).
                self.locals_live.fetch_add(1, Ordering::SeqCst);
                if node.is_ended() {
                    self.locals_live.fetch_sub(1, Ordering::SeqCst);
                    return Err(Error::not_found(format!("scope '{}' ({}) has ended; cannot register on it", node.name, node.uuid)));
                }
                let lists = locals.get_or_insert_with(Default::default);
                if let Err(e) = lists.insert(entry, &format!("on scope '{}'", node.name)) {
                    self.locals_live.fetch_sub(1, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes a registration; `None` when there was none of that name.
    pub fn deregister(&self, family: Family, name: &str, scope: Option<&Arc<ScopeNode>>) -> Option<Arc<Entry>> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        match scope {
            None => {
                let mut lists = Lists::clone(&self.global.load());
                let removed = lists.remove(family, name)?;
                self.publish(lists);
                Some(removed)
            }
            Some(node) => {
                let mut locals = node.locals.lock().unwrap_or_else(|p| p.into_inner());
                let removed = locals.as_mut()?.remove(family, name)?;
                self.locals_live.fetch_sub(1, Ordering::SeqCst);
                Some(removed)
            }
        }
    }

    fn publish(&self, lists: Lists) {
        let subscribers = lists.get(Family::Subscriber).clone();
        let changed = !Arc::ptr_eq(self.global.load().get(Family::Subscriber), &subscribers);
        self.global_mask.store(lists.mask(), Ordering::Release);
        self.global.store(Arc::new(lists));
        if changed {
            (self.on_global_subscribers)(subscribers);
        }
    }

    /// Detaches every scope-local registration of an ending scope (already marked ended).
    pub fn take_locals(&self, node: &ScopeNode) -> Option<Box<Lists>> {
        if self.locals_live.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let taken = node.locals.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        self.locals_live.fetch_sub(taken.len(), Ordering::SeqCst);
        Some(taken)
    }

    /// Removes every global registration and returns them (for shutdown).
    pub fn clear_global(&self) -> Lists {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let old = Lists::clone(&self.global.load());
        self.publish(Lists::default());
        old
    }

    /// The chain of `family` visible at `at`: global entries, then each ancestor's scope-local
    /// entries from the root to `at`, merged by a stable sort on priority (subscribers keep
    /// owner order: global, then root to leaf). `None` when the chain is empty.
    pub fn chain(&self, family: Family, at: Option<&Arc<ScopeNode>>) -> Option<Chain> {
        let at = at.filter(|_| self.locals_live.load(Ordering::Acquire) > 0);
        if at.is_none() && self.global_mask.load(Ordering::Acquire) & (1 << family.index()) == 0 {
            return None;
        }
        let global = self.global.load();
        let g = global.get(family);
        let locals = match at {
            Some(at) => Self::ancestor_lists(family, at),
            None => Vec::new(),
        };
        if locals.is_empty() {
            return if g.is_empty() { None } else { Some(g.clone()) };
        }
        let mut all: Vec<Arc<Entry>> = g.iter().cloned().collect();
        for l in locals.iter().rev() {
            all.extend(l.iter().cloned());
        }
        if family != Family::Subscriber {
            all.sort_by_key(|e| e.priority); // stable: global, then outer, then inner
        }
        Some(all.into())
    }

    /// Non-empty scope-local lists of `family` from `at` up to the root (innermost first).
    fn ancestor_lists(family: Family, at: &Arc<ScopeNode>) -> Vec<Chain> {
        let mut out = Vec::new();
        let mut cursor = Some(at);
        while let Some(node) = cursor {
            if let Some(lists) = node.locals.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                let l = lists.get(family);
                if !l.is_empty() {
                    out.push(l.clone());
                }
            }
            cursor = node.parent.as_ref();
        }
        out
    }

    /// Who sees an event at `at`: `None` when nobody; otherwise whether global subscribers
    /// exist plus the scope-local subscribers from the root to `at`.
    pub fn event_audience(&self, at: Option<&Arc<ScopeNode>>) -> Option<Option<Chain>> {
        let global = self.global_mask.load(Ordering::Acquire) & (1 << Family::Subscriber.index()) != 0;
        let locals = match at {
            Some(at) if self.locals_live.load(Ordering::Acquire) > 0 => {
                let lists = Self::ancestor_lists(Family::Subscriber, at);
                if lists.is_empty() {
                    None
                } else {
                    Some(lists.iter().rev().flat_map(|l| l.iter().cloned()).collect::<Vec<_>>().into())
                }
            }
            _ => None,
        };
        if !global && locals.is_none() {
            return None;
        }
        Some(locals)
    }

    /// True when no family of `families` (a [`Family::bits`] set) has an entry anywhere: no
    /// scope-local registration is alive and none of these global lists has one. Two atomic
    /// loads, so a hot path can rule a whole set of families out before looking up any chain;
    /// `false` only means it must look them up one by one.
    pub fn none_of(&self, families: u32) -> bool {
        self.locals_live.load(Ordering::Acquire) == 0 && self.global_mask.load(Ordering::Acquire) & families == 0
    }

    /// True when some family of `families` has an entry visible at `at`. The [`Self::none_of`]
    /// load answers the usual "nothing of these anywhere" before any chain is looked up.
    #[inline] // callers pass a constant list: its bit set then folds to a constant
    pub fn any_of(&self, families: &[Family], at: Option<&Arc<ScopeNode>>) -> bool {
        !self.none_of(Family::bits(families)) && families.iter().any(|f| self.chain(*f, at).is_some())
    }

    /// True when nothing at all is registered: no middleware, no subscriber, anywhere.
    pub fn is_empty(&self) -> bool {
        self.none_of(u32::MAX)
    }

    /// True when at least one subscriber could see an event at `at`.
    pub fn has_subscribers(&self, at: Option<&Arc<ScopeNode>>) -> bool {
        self.event_audience(at).is_some()
    }
}
