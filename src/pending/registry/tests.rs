//! Unit tests of the registry.
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

/// Counts its calls, and those that start, or are still running, after the test "freed"
/// the handler.
struct Slow {
    calls: Arc<AtomicU64>,
    calls_after_free: Arc<AtomicU64>,
    freed: Arc<AtomicBool>,
}
impl PendingSource for Slow {
    fn save_query_pending(&self, p: &mut Pending, _e: bool, _f: bool) {
        if self.freed.load(Ordering::SeqCst) {
            self.calls_after_free.fetch_add(1, Ordering::SeqCst);
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::yield_now();
        p.precopy += 1;
        if self.freed.load(Ordering::SeqCst) {
            self.calls_after_free.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A `membarrier` that a seccomp filter installed after setup refuses.
fn refused_barrier() -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::EPERM))
}

/// Every fence mode: the full-fence fallback taken without membarrier, the asymmetric one
/// (when the kernel has membarrier), and the asymmetric one whose barrier starts failing
/// after creation (degraded: the first unregister switches to full fences while queries
/// run, works on any kernel).
fn all_modes() -> Vec<Registry> {
    let mut modes = vec![Registry::with_fences(1, false)];
    if sys::process_barrier_available() {
        modes.push(Registry::with_fences(1, true));
    } else {
        sys::report_skipped(
            "pending::tests (asymmetric fence mode)",
            "membarrier is not available here: the full-fence and degraded modes ran, the \
             asymmetric one did not",
        );
    }
    modes.push(Registry::with_barrier(1, true, refused_barrier));
    modes
}

#[test]
fn no_callback_runs_after_unregister_returns() {
    for r in all_modes() {
        let r = Arc::new(r);
        // Steady handlers before the churned one keep the queriers mid-walk.
        r.register("before", 0, HandlerFlags::empty(), fixed(1, 0, 0)).unwrap();
        r.register("before", 1, HandlerFlags::empty(), fixed(2, 0, 0)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queriers: Vec<_> = (0..2)
            .map(|_| {
                let (r, stop) = (r.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        r.query(QueryKind::Fast).unwrap();
                    }
                })
            })
            .collect();
        let after = Arc::new(AtomicU64::new(0));
        // Miri interprets every step: a few rounds there, 500 natively.
        for i in 0..if cfg!(miri) { 5 } else { 500 } {
            let (calls, freed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
            let source =
                Slow { calls: calls.clone(), calls_after_free: after.clone(), freed: freed.clone() };
            let id = r.register("slow", i, HandlerFlags::empty(), Box::new(source)).unwrap();
            // One behind it, so the slot moves on by the next id as well as by the end.
            let tail = r.register("tail", i, HandlerFlags::empty(), fixed(0, 4, 0)).unwrap();
            // Unregister while the queriers are at it, not before they saw it.
            while calls.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            r.unregister(id).unwrap();
            freed.store(true, Ordering::SeqCst);
            r.unregister(tail).unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        for q in queriers {
            q.join().unwrap();
        }
        assert_eq!(after.load(Ordering::SeqCst), 0, "asymmetric: {:?}", r.asymmetric);
        assert_eq!(r.query(QueryKind::Fast).unwrap().precopy, 3);
    }
}

/// Blocks every caller until `open`; counts callers inside and those that were still
/// inside when `unregister` had returned.
struct Gate {
    inside: Arc<AtomicU64>,
    open: Arc<AtomicBool>,
    unregistered: Arc<AtomicBool>,
    late: Arc<AtomicU64>,
}
impl PendingSource for Gate {
    fn save_query_pending(&self, p: &mut Pending, _e: bool, _f: bool) {
        self.inside.fetch_add(1, Ordering::SeqCst);
        while !self.open.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        if self.unregistered.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        p.stopcopy += 1;
    }
}

#[test]
fn unregister_waits_for_callbacks_in_every_slot_including_chained_chunks() {
    // More queries at once than a chunk has slots, all inside the same handler's callback.
    const QUERIES: u64 = CHUNK_SLOTS as u64 + 2;
    for r in all_modes() {
        let r = Arc::new(r);
        let (inside, open) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (unregistered, late) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let gate = Gate {
            inside: inside.clone(),
            open: open.clone(),
            unregistered: unregistered.clone(),
            late: late.clone(),
        };
        let id = r.register("gate", 0, HandlerFlags::empty(), Box::new(gate)).unwrap();
        let queries: Vec<_> = (0..QUERIES)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || r.query(QueryKind::Exact).unwrap())
            })
            .collect();
        while inside.load(Ordering::SeqCst) < QUERIES {
            std::thread::yield_now();
        }
        assert_eq!(r.slots.all_slots().count(), 2 * CHUNK_SLOTS);
        let unregistering = {
            let (r, unregistered) = (r.clone(), unregistered.clone());
            std::thread::spawn(move || {
                r.unregister(id).unwrap();
                unregistered.store(true, Ordering::SeqCst);
            })
        };
        // Give a wrong unregister the chance to return early (a correct one cannot).
        std::thread::sleep(Duration::from_millis(2));
        open.store(true, Ordering::SeqCst);
        for q in queries {
            assert_eq!(q.join().unwrap().stopcopy, 1);
        }
        unregistering.join().unwrap();
        assert_eq!(late.load(Ordering::SeqCst), 0, "asymmetric: {:?}", r.asymmetric);
        assert_eq!(r.query(QueryKind::Fast).unwrap(), Pending::default());
    }
}

struct Panics;
impl PendingSource for Panics {
    fn save_query_pending(&self, _p: &mut Pending, _e: bool, _f: bool) {
        panic!("device model bug");
    }
}

#[test]
fn a_callback_that_panics_leaves_its_slot_free_and_reusable() {
    let r = Registry::new(1);
    let id = r.register("bad", 0, HandlerFlags::empty(), Box::new(Panics)).unwrap();
    r.register("good", 0, HandlerFlags::empty(), fixed(3, 0, 0)).unwrap();
    for _ in 0..3 {
        let query = std::panic::AssertUnwindSafe(|| r.query(QueryKind::Fast));
        assert!(std::panic::catch_unwind(query).is_err());
    }
    assert!(r.slots.all_slots().all(|s| s.hazard.load(Ordering::SeqCst) == FREE));
    // The unregister does not wait for the panicked callback, and the same slot serves on.
    r.unregister(id).unwrap();
    assert_eq!(r.query(QueryKind::Fast).unwrap().precopy, 3);
    assert_eq!(r.slots.all_slots().count(), CHUNK_SLOTS);
    assert!(!crate::reentrancy::inside(1));
}

#[test]
fn a_query_leaves_every_slot_free() {
    for r in all_modes() {
        r.register("a", 0, HandlerFlags::empty(), fixed(5, 6, 7)).unwrap();
        assert_eq!(r.query(QueryKind::Fast).unwrap().total(), 18);
        assert!(r.slots.all_slots().all(|s| s.hazard.load(Ordering::SeqCst) == FREE));
    }
}

/// Counts its calls that start after `unregistered`.
struct Watched {
    unregistered: Arc<AtomicBool>,
    late: Arc<AtomicU64>,
}
impl PendingSource for Watched {
    fn save_query_pending(&self, p: &mut Pending, _e: bool, _f: bool) {
        if self.unregistered.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        p.precopy += 1;
    }
}

#[test]
fn with_the_barrier_refused_unregister_waits_for_queries_in_flight_then_uses_full_fences() {
    let r = Arc::new(Registry::with_barrier(1, true, refused_barrier));
    let (inside, open) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let (unregistered, late) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    // The query sits in Y's callback (started in asymmetric mode); X comes after Y.
    let gate = Gate {
        inside: inside.clone(),
        open: open.clone(),
        unregistered: Arc::new(AtomicBool::new(false)),
        late: Arc::new(AtomicU64::new(0)),
    };
    r.register("y", 0, HandlerFlags::empty(), Box::new(gate)).unwrap();
    let watched = Watched { unregistered: unregistered.clone(), late: late.clone() };
    let x = r.register("x", 0, HandlerFlags::empty(), Box::new(watched)).unwrap();
    let query = {
        let r = r.clone();
        std::thread::spawn(move || r.query(QueryKind::Exact).unwrap())
    };
    while inside.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let unregistering = {
        let (r, unregistered) = (r.clone(), unregistered.clone());
        std::thread::spawn(move || {
            r.unregister(x).unwrap();
            unregistered.store(true, Ordering::SeqCst);
        })
    };
    // The barrier failed: the registry switches, then waits for the whole query, which
    // may still call X once Y returns (its mode has no fence pair with the switch).
    std::thread::sleep(Duration::from_millis(2));
    assert!(!unregistered.load(Ordering::SeqCst), "returned while a query of the old mode ran");
    open.store(true, Ordering::SeqCst);
    let p = query.join().unwrap();
    unregistering.join().unwrap();
    assert_eq!(late.load(Ordering::SeqCst), 0);
    assert!(p.precopy <= 1 && p.stopcopy == 1, "{p:?}");
    assert!(!r.asymmetric.load(Ordering::SeqCst), "switched to full fences for good");
    assert!(*lock(&r.drained));
    // Later unregisters take the fallback path directly; queries go on.
    let watched = Watched { unregistered: Arc::default(), late: Arc::default() };
    let z = r.register("z", 0, HandlerFlags::empty(), Box::new(watched)).unwrap();
    assert_eq!(r.query(QueryKind::Fast).unwrap(), Pending { precopy: 1, stopcopy: 1, postcopy: 0 });
    r.unregister(z).unwrap();
    assert_eq!(r.query(QueryKind::Fast).unwrap(), Pending { precopy: 0, stopcopy: 1, postcopy: 0 });
}
