//! The registry of handlers that report pending data (QEMU 11.1's merged
//! `save_query_pending` callback): who is registered, and how a query reaches them.
//!
//! Concurrency contract (docs/design.md §Threading):
//! - queries may run on any thread, concurrently with each other and with (un)registration;
//! - callbacks run with no registry lock held;
//! - [`Registry::unregister`] returns only when no callback of that handler runs or can start,
//!   and it waits for that handler's callbacks only, not for whole queries (a VMM thread that
//!   holds a big lock may unregister device X while the migration thread sits in device Y's
//!   callback waiting for that lock), except once `membarrier` failed (degraded mode below);
//! - a callback that calls back into the registry of its own session gets
//!   `SWO_ERR_REENTRANT`.
//!
//! # How a query stays cheap (hazard slots with an asymmetric fence)
//!
//! A query makes no atomic read-modify-write per handler and takes no lock that a writer
//! waits for. It claims one *slot* of the registry for its whole run (a `try_lock` of the
//! slot's `view` mutex: one CAS, never waited on by anyone). The view keeps the entry list
//! (`Arc<[Arc<Entry>]>`) the slot's previous query used, with the registry generation it
//! belongs to; only after a change does a query take the registry mutex to refresh it. For
//! each entry of the list:
//!
//! ```text
//!   r1  slot.hazard := entry.id               (Release store)
//!   F   compiler fence (asymmetric mode)  |  full SeqCst fence (fallback mode)
//!   r2  if entry.removed (Relaxed load): skip the entry
//!   r3  is_active() and save_query_pending()
//! ```
//!
//! and at the end `hazard := FREE` (Release), then the view is unlocked. `unregister(X)`:
//!
//! ```text
//!   w1  take X out of the list (under the registry mutex; new generation)
//!   w2  X.removed := true                     (SeqCst store)
//!   B   membarrier(PRIVATE_EXPEDITED)      |  full SeqCst fence (fallback mode)
//!   w3  for every slot: wait while hazard == X.id  (Acquire loads)
//! ```
//!
//! This is the store-buffering (Dekker) pattern: r1→r2 on one side, w2→w3 on the other.
//! With a full fence on both sides the fences are totally ordered: if the writer's comes
//! first, r2 sees `removed` and the reader never calls X; if the reader's comes first, w3
//! reads r1's store or a later one, so the writer waits for X's callback. In asymmetric mode
//! `membarrier` makes every running thread of the process execute a full barrier at some
//! point P of its instruction stream (a thread not running passes one when it is switched
//! out), and the kernel orders the writer's accesses before the call before everything after
//! P, and everything before P before the writer's accesses after the call. The compiler fence
//! keeps r1 and r2 in program order, so P falls before r1, between them, or after r2, and the
//! same two cases follow. Readers thus pay a plain store, a plain load and a compiler fence
//! per handler; the writer pays one system call. (QEMU's RCU pairs `smp_mb_placeholder` with
//! `membarrier` the same way.)
//!
//! Why the hazard stores are Release and the claim Acquire: when w3 reads any value other
//! than X.id from a slot where X was published, that value was stored after X's callback
//! returned, either by the same query (its next id, or FREE at the end) or by a later query,
//! whose `try_lock` acquired the earlier query's unlock. Release stores and the mutex make X's
//! callback happen before the writer's Acquire load, so everything the callback did with
//! `opaque` is finished when `unregister` returns. A query does not clear its hazard between
//! handlers: the next id overwrites it, with the same effect.
//!
//! Slots live in chunks of four, cache-padded, linked through `OnceLock`s and kept as long
//! as the registry; a query that finds every slot taken adds a chunk. A chunk added after the
//! writer walked the chain is, like any slot claimed later, covered by the fence pair: its
//! `OnceLock` initialisation precedes r1/r2 in the reader, and the writer's walk follows B.
//!
//! A writer whose handler's callback is still running spins briefly, then sleeps in steps up
//! to 1 ms (a callback may block for long: a VFIO ioctl, or a lock the VMM holds).
//!
//! # When `membarrier` stops working (degraded mode)
//!
//! The mode is chosen when the registry is created, but `membarrier` can start failing
//! later: a VMM that installs a seccomp filter after setup (often per thread) that fails
//! the call with an errno makes B fail on the filtered threads. Retrying would spin
//! forever, and going on without B would break the fence pair, so the first `unregister`
//! whose barrier fails switches the registry for good to full fences on both sides, and
//! drains it before relying on that:
//!
//! ```text
//!   d1  mode := full fences                     (SeqCst store; queries load it after claiming)
//!   d2  lock and unlock the registry mutex      (chunks are only added under it)
//!   d3  for every slot: lock its view, unlock   (waits for the query holding it, if any)
//! ```
//!
//! then goes on with the full fence and w3 as in fallback mode. After d3 no query that may
//! have read the old mode still runs: a query on a slot d3 locked either held it then (d3
//! waited for its end) or claimed it after d3's unlock, which its `try_lock` acquired, so it
//! reads the new mode. A chunk missing from d3's walk was added after d2 (under the mutex),
//! so its adder, and every query that later reached the chunk through the `OnceLock`, comes
//! after d1 and reads the new mode. Readers pay nothing for this: the mode is one relaxed
//! load per query.
//!
//! The cost is on the writers of that registry, in that case only: the draining `unregister`
//! waits for every query that was in flight at the switch to end *as a whole*, not only for
//! its own handler's callbacks (the one exception to the contract above; a VMM that unplugs a
//! device while holding a lock that another device's callback waits for then deadlocks).
//! Concurrent `unregister`s wait for the drain to finish. The process is also marked as
//! without barrier ([`sys::process_barrier`]), so registries created afterwards start in
//! fallback mode. `unregister` still never returns while a callback of its handler runs or
//! can start.
use super::{HandlerFlags, HandlerInfo, Pending, PendingSource, QueryKind};
use crate::error::{Error, Result};
use crate::locks::lock;
use crate::reentrancy::{self, CallbackScope};
use crate::sys;
use crossbeam_utils::CachePadded;
use std::io;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::Duration;

/// `repr(C)`: what a query reads per handler (`id`, `removed`, `source`) comes first, in one
/// cache line.
#[repr(C)]
struct Entry {
    /// Published in a query's hazard while the entry's callbacks run (never `FREE`).
    id: u64,
    /// Set by `unregister` (w2 above); a query that sees it skips the entry.
    removed: AtomicBool,
    source: Box<dyn PendingSource>,
    flags: HandlerFlags,
    instance_id: u32,
    idstr: String,
}

impl Entry {
    fn info(&self) -> HandlerInfo {
        HandlerInfo {
            id: self.id,
            idstr: self.idstr.clone(),
            instance_id: self.instance_id,
            flags: self.flags,
        }
    }
}

/// Hazard value: the slot's query runs no callback (or no query owns the slot).
const FREE: u64 = 0;
/// Slots per chunk; more concurrent queries than a chunk holds chain another one.
const CHUNK_SLOTS: usize = 4;

type Entries = Arc<[Arc<Entry>]>;

/// One in-flight query's place in the registry.
#[derive(Default)]
struct Slot {
    /// The entry whose callbacks the slot's query may be running (r1), or `FREE`.
    hazard: AtomicU64,
    /// Locked with `try_lock` for a whole query, which is what claims the slot; nobody ever
    /// waits for it.
    view: Mutex<View>,
}

impl Slot {
    /// The slot's view if no query holds it. A view poisoned by a callback that panicked is
    /// taken as it is: it is only ever replaced whole, never left half-written.
    fn try_claim(&self) -> Option<MutexGuard<'_, View>> {
        match self.view.try_lock() {
            Ok(view) => Some(view),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// The entry list a slot's last query used, and the registry generation it belongs to.
#[derive(Default)]
struct View {
    generation: u64,
    entries: Option<Entries>,
}

#[derive(Default)]
struct Chunk {
    slots: [CachePadded<Slot>; CHUNK_SLOTS],
    next: OnceLock<Box<Chunk>>,
}

impl Chunk {
    /// Every slot of this chunk and the ones chained after it.
    fn all_slots(&self) -> impl Iterator<Item = &Slot> {
        std::iter::successors(Some(self), |c| c.next.get().map(|b| &**b))
            .flat_map(|c| c.slots.iter().map(|s| &**s))
    }
}

/// One query's claim on a slot: the slot and its locked view. Dropping it (also when a
/// callback panics) frees the hazard, drops a view that went stale, and unlocks.
struct Claim<'a> {
    slot: &'a Slot,
    view: MutexGuard<'a, View>,
    registry_generation: &'a AtomicU64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Release: the last callback of the query happens before a writer that reads this.
        self.slot.hazard.store(FREE, Ordering::Release);
        // A list that changed meanwhile is not kept: it may hold removed entries alive.
        if self.view.generation != self.registry_generation.load(Ordering::Relaxed) {
            self.view.entries = None;
        }
    }
}

/// Waits while `slot` shows `id`: spins briefly, then sleeps, 20 µs at first, doubling up to
/// 1 ms. No `yield`: on a loaded machine it hands the CPU to busy threads for a whole time
/// slice, while a thread waking from a sleep is scheduled promptly.
fn wait_while_published(slot: &Slot, id: u64) {
    let mut spins = 0u32;
    let mut pause = Duration::from_micros(20);
    while slot.hazard.load(Ordering::Acquire) == id {
        if spins < 100 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

/// The handlers of one session.
pub struct Registry {
    session_id: u64,
    /// True: readers order r1/r2 with a compiler fence and `unregister` issues
    /// `membarrier`; false (no membarrier here): full fences on both sides. Chosen at
    /// creation; only ever goes from true to false, through the drain of the module comment.
    /// A query loads it once, after claiming its slot.
    asymmetric: AtomicBool,
    /// B in asymmetric mode: [`sys::process_barrier`] (tests put a failing one).
    barrier: fn() -> io::Result<()>,
    /// True once no query can be using the asymmetric mode any more (from the start in
    /// fallback mode). Held across the drain, so `unregister`s that find the mode switched
    /// wait for the drain to end.
    drained: Mutex<bool>,
    /// `Inner::generation`, readable without the lock (written under it).
    generation: AtomicU64,
    slots: Chunk,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Changes with every register and unregister.
    generation: u64,
    entries: Vec<Arc<Entry>>,
    /// `entries` as a shared list for the views, built by the first query after a change
    /// (so registering n handlers costs O(n), not O(n²)).
    shared: Option<Entries>,
}

impl Inner {
    fn changed(&mut self, generation: &AtomicU64) {
        self.generation += 1;
        self.shared = None;
        generation.store(self.generation, Ordering::Release);
    }
}

impl Registry {
    pub fn new(session_id: u64) -> Registry {
        Registry::with_fences(session_id, sys::process_barrier_available())
    }

    /// `asymmetric` false forces the full-fence fallback (tests use it on kernels with
    /// membarrier, to cover the path taken without).
    fn with_fences(session_id: u64, asymmetric: bool) -> Registry {
        Registry::with_barrier(session_id, asymmetric, sys::process_barrier)
    }

    /// As [`with_fences`](Self::with_fences), with `barrier` as B (tests make it fail).
    fn with_barrier(session_id: u64, asymmetric: bool, barrier: fn() -> io::Result<()>) -> Registry {
        Registry {
            session_id,
            asymmetric: AtomicBool::new(asymmetric),
            barrier,
            drained: Mutex::new(!asymmetric),
            generation: AtomicU64::new(0),
            slots: Chunk::default(),
            inner: Mutex::new(Inner { next_id: 1, ..Inner::default() }),
        }
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
            removed: AtomicBool::new(false),
            flags,
            idstr: idstr.to_owned(),
            instance_id,
            source,
        }));
        inner.changed(&self.generation);
        Ok(id)
    }

    /// Removes a handler and waits until none of its callbacks runs; none starts afterwards.
    /// Waits for that handler's callbacks only, never for the rest of a query in flight,
    /// except in the degraded case of the module comment (`membarrier` failing after the
    /// registry chose it), where it may wait for whole queries that were in flight.
    pub fn unregister(&self, id: u64) -> Result<()> {
        reentrancy::check(self.session_id, "swo_unregister_handler")?;
        let entry = {
            let mut inner = lock(&self.inner);
            let pos = inner
                .entries
                .iter()
                .position(|e| e.id == id)
                .ok_or_else(|| Error::not_found(format!("no handler with id {id}")))?;
            inner.changed(&self.generation);
            inner.entries.remove(pos)
        };
        // w2 + B of the module comment; if B fails, or failed for another writer, the drain
        // (d1-d3) puts every query on full fences first.
        entry.removed.store(true, Ordering::SeqCst);
        if !(self.asymmetric.load(Ordering::SeqCst) && (self.barrier)().is_ok()) {
            self.fall_back_to_fences();
        }
        fence(Ordering::SeqCst);
        // w3, over every slot, including chunks chained meanwhile.
        for slot in self.slots.all_slots() {
            wait_while_published(slot, id);
        }
        // Views of idle slots may still hold the entry (and so its source) alive: drop them.
        // A slot in use drops its stale view when its query ends.
        for slot in self.slots.all_slots() {
            if let Some(mut view) = slot.try_claim() {
                view.entries = None;
            }
        }
        Ok(())
    }

    /// d1-d3 of the module comment: switches the registry to full fences for good and
    /// returns once no query that may use the asymmetric mode runs. Returns at once when that
    /// is done already (or the registry never was asymmetric); waits while another writer is
    /// doing it.
    fn fall_back_to_fences(&self) {
        let mut drained = lock(&self.drained);
        if *drained {
            return;
        }
        // d1
        self.asymmetric.store(false, Ordering::SeqCst);
        // d2: every chunk added before d1 is in the chain once this lock is acquired.
        drop(lock(&self.inner));
        // d3. Never with the registry mutex held: a query holding its view may take it.
        for slot in self.slots.all_slots() {
            drop(slot.view.lock());
        }
        *drained = true;
    }

    /// Claims a free slot (adding a chunk when all are taken), with its view up to date.
    fn claim(&self) -> Claim<'_> {
        let mut chunk = &self.slots;
        let (slot, view) = loop {
            let free = chunk.slots.iter().find_map(|s| s.try_claim().map(|v| (&**s, v)));
            if let Some(found) = free {
                break found;
            }
            chunk = match chunk.next.get() {
                Some(next) => next,
                // Added under the registry mutex, for the drain (d2).
                None => {
                    let _inner = lock(&self.inner);
                    chunk.next.get_or_init(Box::default)
                }
            };
        };
        let mut claim = Claim { slot, view, registry_generation: &self.generation };
        let generation = self.generation.load(Ordering::Acquire);
        if claim.view.entries.is_none() || claim.view.generation != generation {
            let mut inner = lock(&self.inner);
            let Inner { generation, entries, shared, .. } = &mut *inner;
            let shared = shared.get_or_insert_with(|| entries.as_slice().into());
            claim.view.entries = Some(shared.clone());
            claim.view.generation = *generation;
        }
        claim
    }

    /// Calls `f` on every entry that is not removed, in registration order, each under the
    /// hazard protocol of the module comment, with the thread marked as inside a callback of
    /// this session for the whole walk (so `f`'s callbacks cannot re-enter).
    #[inline]
    fn for_each_live(&self, f: impl FnMut(&Entry)) {
        let claim = self.claim();
        let _scope = CallbackScope::enter(self.session_id);
        let entries = claim.view.entries.as_deref().unwrap_or_default();
        // After the claim: a drain that locked this slot before is seen (module comment).
        if self.asymmetric.load(Ordering::Relaxed) {
            walk::<true>(entries, &claim.slot.hazard, f);
        } else {
            walk::<false>(entries, &claim.slot.hazard, f);
        }
    }

    /// Asks every active handler, each into its own zeroed [`Pending`], and sums the buckets
    /// with saturation. Handlers run in registration order, with no registry lock held.
    pub fn query(&self, kind: QueryKind) -> Result<Pending> {
        reentrancy::check(self.session_id, "swo_query_pending")?;
        let (exact, final_) = (kind.exact(), kind.is_final());
        let mut sum = Pending::default();
        self.for_each_live(|entry| {
            sum.accumulate(&entry.source.pending_if_active(exact, final_));
        });
        Ok(sum)
    }

    /// Registered handlers, in registration order.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        lock(&self.inner).entries.iter().map(|e| e.info()).collect()
    }

    /// Active handlers carrying every bit of `flags` (calls `is_active`).
    pub fn active_with(&self, flags: HandlerFlags) -> Result<Vec<HandlerInfo>> {
        reentrancy::check(self.session_id, "a flag check of the handlers")?;
        let mut found = Vec::new();
        self.for_each_live(|entry| {
            if entry.flags.contains(flags) && entry.source.is_active() {
                found.push(entry.info());
            }
        });
        Ok(found)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-handler part of [`Registry::for_each_live`] (r1, F, r2 of the module comment),
/// with the fence kind fixed at compile time.
#[inline]
fn walk<const ASYMMETRIC: bool>(
    entries: &[Arc<Entry>],
    hazard: &AtomicU64,
    mut f: impl FnMut(&Entry),
) {
    for entry in entries {
        // r1: Release, so a writer that reads this id (or any later value) also sees
        // every callback this query finished before.
        hazard.store(entry.id, Ordering::Release);
        // F: r1 must be visible before r2 reads, or a writer could miss both.
        if ASYMMETRIC {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        // r2: Relaxed is enough: the fence pair above decides what it can miss.
        if entry.removed.load(Ordering::Relaxed) {
            continue;
        }
        f(entry);
    }
}

#[cfg(test)]
mod tests;
