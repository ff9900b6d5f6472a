//! Pending data: the three buckets of QEMU 11.1's merged `save_query_pending` callback, and
//! the registry of handlers that report them.
//!
//! Concurrency contract (DESIGN.md §Threading):
//! - queries may run on any thread, concurrently with each other and with unregistration;
//! - callbacks run with no registry lock held;
//! - [`Registry::unregister`] returns only when no callback of that handler runs or can start.
use crate::error::{Error, Result};
use crate::reentrancy::{self, CallbackScope};
use bitflags::bitflags;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Bytes a device (or all devices) still has to send, by when they can move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Can move while the guest runs; must reach the destination before it starts.
    pub precopy: u64,
    /// Can only move with the source stopped: the switchover downtime.
    pub stopcopy: u64,
    /// May move after the destination starts (postcopy).
    pub postcopy: u64,
}

impl Pending {
    /// `precopy + stopcopy + postcopy`, saturating at `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.precopy.saturating_add(self.stopcopy).saturating_add(self.postcopy)
    }

    /// Adds each bucket of `other` into `self`, saturating.
    pub fn accumulate(&mut self, other: &Pending) {
        self.precopy = self.precopy.saturating_add(other.precopy);
        self.stopcopy = self.stopcopy.saturating_add(other.stopcopy);
        self.postcopy = self.postcopy.saturating_add(other.postcopy);
    }
}

bitflags! {
    /// Handler flags; at the ABI these are `SWO_HANDLER_*` bits of a `uint32_t`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct HandlerFlags: u32 {
        /// The exact query must run with the guest stopped (see the engine).
        const EXACT_NEEDS_STOPPED_VM = 1 << 0;
        /// The device cannot take part in postcopy (VFIO).
        const NO_POSTCOPY = 1 << 1;
    }
}

/// Something with migration state: RAM, a VFIO device, a C handler.
pub trait PendingSource: Send + Sync {
    /// Adds this source's pending bytes into `pending` (which the registry zeroed).
    /// `exact` asks for a synchronised figure; `final_` is the last query at switchover,
    /// with the guest stopped.
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, final_: bool);

    /// Inactive sources are skipped by every query.
    fn is_active(&self) -> bool {
        true
    }
}

/// What kind of query to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// Cheap, every pass; syncs nothing.
    Fast,
    /// Synchronised (dirty-bitmap sync, VFIO size ioctls).
    Exact,
    /// The last, exact query at switchover with the guest stopped.
    Final,
}

impl QueryKind {
    pub fn exact(self) -> bool {
        !matches!(self, QueryKind::Fast)
    }
    pub fn is_final(self) -> bool {
        matches!(self, QueryKind::Final)
    }
}

#[derive(Default)]
struct Gate {
    removed: bool,
    running: u32,
}

struct Entry {
    id: u64,
    idstr: String,
    instance_id: u32,
    flags: HandlerFlags,
    source: Box<dyn PendingSource>,
    gate: Mutex<Gate>,
    idle: Condvar,
}

/// Keeps `running` counted while a callback of the entry runs.
struct Running<'a> {
    entry: &'a Entry,
}

impl Entry {
    /// Admits one more callback unless the entry was removed.
    fn admit(&self) -> Option<Running<'_>> {
        let mut gate = lock(&self.gate);
        if gate.removed {
            return None;
        }
        gate.running += 1;
        Some(Running { entry: self })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut gate = lock(&self.entry.gate);
        gate.running -= 1;
        if gate.running == 0 {
            self.entry.idle.notify_all();
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the data behind our locks stays consistent
/// (every update is a single assignment), so carry on rather than spread the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Description of a registered handler, for reports and decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerInfo {
    pub id: u64,
    pub idstr: String,
    pub instance_id: u32,
    pub flags: HandlerFlags,
}

/// The handlers of one session.
pub struct Registry {
    session_id: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    entries: Vec<Arc<Entry>>,
}

impl Registry {
    pub fn new(session_id: u64) -> Registry {
        Registry { session_id, inner: Mutex::new(Inner { next_id: 1, entries: Vec::new() }) }
    }

    /// Registers a source under `idstr` + `instance_id` (unique, like QEMU's savevm ids).
    /// Returns the handler id (never 0).
    pub fn register(
        &self,
        idstr: &str,
        instance_id: u32,
        flags: HandlerFlags,
        source: Box<dyn PendingSource>,
    ) -> Result<u64> {
        reentrancy::check(self.session_id, "swo_register_handler")?;
        if idstr.is_empty() {
            return Err(Error::invalid_arg("handler idstr must not be empty"));
        }
        let mut inner = lock(&self.inner);
        if inner.entries.iter().any(|e| e.idstr == idstr && e.instance_id == instance_id) {
            return Err(Error::exists(format!(
                "a handler '{idstr}' with instance id {instance_id} is already registered"
            )));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push(Arc::new(Entry {
            id,
            idstr: idstr.to_owned(),
            instance_id,
            flags,
            source,
            gate: Mutex::new(Gate::default()),
            idle: Condvar::new(),
        }));
        Ok(id)
    }

    /// Removes a handler and waits until none of its callbacks runs; none starts afterwards.
    pub fn unregister(&self, id: u64) -> Result<()> {
        reentrancy::check(self.session_id, "swo_unregister_handler")?;
        let entry = {
            let mut inner = lock(&self.inner);
            let pos = inner
                .entries
                .iter()
                .position(|e| e.id == id)
                .ok_or_else(|| Error::not_found(format!("no handler with id {id}")))?;
            inner.entries.remove(pos)
        };
        let mut gate = lock(&entry.gate);
        gate.removed = true;
        while gate.running > 0 {
            gate = entry.idle.wait(gate).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<Arc<Entry>> {
        lock(&self.inner).entries.clone()
    }

    /// Asks every active handler, each into its own zeroed [`Pending`], and sums the buckets
    /// with saturation. Handlers run in registration order, with no registry lock held.
    pub fn query(&self, kind: QueryKind) -> Result<Pending> {
        reentrancy::check(self.session_id, "swo_query_pending")?;
        let mut sum = Pending::default();
        for entry in self.snapshot() {
            let Some(_running) = entry.admit() else { continue };
            let _scope = CallbackScope::enter(self.session_id);
            if !entry.source.is_active() {
                continue;
            }
            let mut own = Pending::default();
            entry.source.save_query_pending(&mut own, kind.exact(), kind.is_final());
            sum.accumulate(&own);
        }
        Ok(sum)
    }

    /// Registered handlers, in registration order.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.snapshot()
            .iter()
            .map(|e| HandlerInfo {
                id: e.id,
                idstr: e.idstr.clone(),
                instance_id: e.instance_id,
                flags: e.flags,
            })
            .collect()
    }

    /// Active handlers carrying every bit of `flags` (calls `is_active`).
    pub fn active_with(&self, flags: HandlerFlags) -> Result<Vec<HandlerInfo>> {
        reentrancy::check(self.session_id, "a flag check of the handlers")?;
        let mut found = Vec::new();
        for entry in self.snapshot() {
            if !entry.flags.contains(flags) {
                continue;
            }
            let Some(_running) = entry.admit() else { continue };
            let _scope = CallbackScope::enter(self.session_id);
            if entry.source.is_active() {
                found.push(HandlerInfo {
                    id: entry.id,
                    idstr: entry.idstr.clone(),
                    instance_id: entry.instance_id,
                    flags: entry.flags,
                });
            }
        }
        Ok(found)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Fixed(Pending, bool);
    impl PendingSource for Fixed {
        fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
            p.accumulate(&self.0);
        }
        fn is_active(&self) -> bool {
            self.1
        }
    }

    fn fixed(pre: u64, stop: u64, post: u64) -> Box<Fixed> {
        Box::new(Fixed(Pending { precopy: pre, stopcopy: stop, postcopy: post }, true))
    }

    #[test]
    fn buckets_add_across_handlers_and_total_is_their_sum() {
        let r = Registry::new(1);
        r.register("ram", 0, HandlerFlags::empty(), fixed(1000, 0, 0)).unwrap();
        r.register("vfio", 0, HandlerFlags::NO_POSTCOPY, fixed(10, 2_000_000_000, 0)).unwrap();
        r.register("block", 0, HandlerFlags::empty(), fixed(0, 0, 5)).unwrap();
        let p = r.query(QueryKind::Fast).unwrap();
        assert_eq!(p, Pending { precopy: 1010, stopcopy: 2_000_000_000, postcopy: 5 });
        assert_eq!(p.total(), 2_000_001_015);
    }

    #[test]
    fn garbage_sizes_saturate_instead_of_wrapping() {
        let r = Registry::new(1);
        r.register("a", 0, HandlerFlags::empty(), fixed(u64::MAX, u64::MAX, 0)).unwrap();
        r.register("b", 0, HandlerFlags::empty(), fixed(u64::MAX, 1, u64::MAX)).unwrap();
        let p = r.query(QueryKind::Exact).unwrap();
        assert_eq!(p.precopy, u64::MAX);
        assert_eq!(p.stopcopy, u64::MAX);
        assert_eq!(p.total(), u64::MAX);
    }

    #[test]
    fn inactive_handlers_are_skipped() {
        let r = Registry::new(1);
        r.register("on", 0, HandlerFlags::empty(), fixed(7, 0, 0)).unwrap();
        r.register("off", 0, HandlerFlags::empty(), Box::new(Fixed(Pending { precopy: 100, ..Default::default() }, false)))
            .unwrap();
        assert_eq!(r.query(QueryKind::Fast).unwrap().total(), 7);
    }

    #[test]
    fn idstr_and_instance_id_are_unique_together() {
        let r = Registry::new(1);
        r.register("vfio", 0, HandlerFlags::empty(), fixed(0, 0, 0)).unwrap();
        r.register("vfio", 1, HandlerFlags::empty(), fixed(0, 0, 0)).unwrap();
        let e = r.register("vfio", 0, HandlerFlags::empty(), fixed(0, 0, 0)).unwrap_err();
        assert_eq!(e.code, crate::Code::Exists);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn unregister_of_unknown_id_is_not_found() {
        let r = Registry::new(1);
        assert_eq!(r.unregister(42).unwrap_err().code, crate::Code::NotFound);
    }

    struct Slow {
        in_callback: Arc<AtomicBool>,
        calls_after_free: Arc<AtomicU64>,
        freed: Arc<AtomicBool>,
    }
    impl PendingSource for Slow {
        fn save_query_pending(&self, p: &mut Pending, _e: bool, _f: bool) {
            if self.freed.load(Ordering::SeqCst) {
                self.calls_after_free.fetch_add(1, Ordering::SeqCst);
            }
            self.in_callback.store(true, Ordering::SeqCst);
            std::thread::yield_now();
            p.precopy += 1;
        }
    }

    #[test]
    fn no_callback_runs_after_unregister_returns() {
        let r = Arc::new(Registry::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let querier = {
            let (r, stop) = (r.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    r.query(QueryKind::Fast).unwrap();
                }
            })
        };
        let after = Arc::new(AtomicU64::new(0));
        for i in 0..2000 {
            let freed = Arc::new(AtomicBool::new(false));
            let id = r
                .register(
                    "slow",
                    i,
                    HandlerFlags::empty(),
                    Box::new(Slow {
                        in_callback: Arc::new(AtomicBool::new(false)),
                        calls_after_free: after.clone(),
                        freed: freed.clone(),
                    }),
                )
                .unwrap();
            r.unregister(id).unwrap();
            freed.store(true, Ordering::SeqCst);
        }
        stop.store(true, Ordering::SeqCst);
        querier.join().unwrap();
        assert_eq!(after.load(Ordering::SeqCst), 0);
    }
}
