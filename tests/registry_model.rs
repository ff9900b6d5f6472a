//! The merged pending-data model (docs/qemu-model.md §Pending buckets) through the public Rust
//! API: `Session`, `Registry`, `PendingSource`, `QueryKind`.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use switchover::pending::{QueryKind, Registry};
use switchover::{Code, HandlerFlags, Pending, PendingSource, Session};

fn pending(precopy: u64, stopcopy: u64, postcopy: u64) -> Pending {
    Pending { precopy, stopcopy, postcopy }
}

/// A device with fixed figures that records how it was asked.
#[derive(Default)]
struct Device {
    figures: Mutex<Pending>,
    active: AtomicBool,
    calls: AtomicUsize,
    not_zeroed: AtomicUsize,
    asked: Mutex<Vec<(bool, bool)>>,
}

impl Device {
    fn new(p: Pending) -> Arc<Device> {
        let d = Device { figures: Mutex::new(p), ..Default::default() };
        d.active.store(true, Ordering::SeqCst);
        Arc::new(d)
    }
}

/// Registers an `Arc<Device>` so the test keeps a handle on it.
struct Shared(Arc<Device>);

impl PendingSource for Shared {
    fn save_query_pending(&self, p: &mut Pending, exact: bool, final_: bool) {
        let d = &self.0;
        d.calls.fetch_add(1, Ordering::SeqCst);
        if *p != Pending::default() {
            d.not_zeroed.fetch_add(1, Ordering::SeqCst);
        }
        d.asked.lock().unwrap().push((exact, final_));
        p.accumulate(&d.figures.lock().unwrap());
    }
    fn is_active(&self) -> bool {
        self.0.active.load(Ordering::SeqCst)
    }
}

fn register(s: &Session, idstr: &str, instance: u32, d: &Arc<Device>) -> u64 {
    s.registry().register(idstr, instance, HandlerFlags::empty(), Box::new(Shared(d.clone()))).unwrap()
}

#[test]
fn buckets_add_across_handlers_and_total_is_their_sum() {
    let s = Session::new();
    let ram = Device::new(pending(1000, 0, 0));
    let vfio = Device::new(pending(10, 2_000_000_000, 0));
    let block = Device::new(pending(0, 0, 5));
    register(&s, "ram", 0, &ram);
    let vfio_id = register(&s, "0000:3b:00.0/vfio", 0, &vfio);
    register(&s, "block", 0, &block);

    let p = s.query_pending(QueryKind::Fast).unwrap();
    assert_eq!(p, pending(1010, 2_000_000_000, 5));
    assert_eq!(p.total(), 2_000_001_015);

    s.registry().unregister(vfio_id).unwrap();
    let p = s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(p, pending(1000, 0, 5));
    assert_eq!(p.total(), 1005);
}

#[test]
fn every_query_stores_its_total_as_the_system_wide_remaining() {
    let s = Session::new();
    assert_eq!(s.remaining(), 0);
    let ram = Device::new(pending(4096, 0, 0));
    let gpu = Device::new(pending(0, 2_050_000_000, 0));
    register(&s, "ram", 0, &ram);
    register(&s, "gpu", 0, &gpu);
    s.query_pending(QueryKind::Fast).unwrap();
    assert_eq!(s.remaining(), 2_050_004_096);
    // It goes down as well as up, and an exact query stores it too.
    *ram.figures.lock().unwrap() = pending(0, 0, 0);
    *gpu.figures.lock().unwrap() = pending(0, 1_000, 0);
    s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(s.remaining(), 1_000);
    *ram.figures.lock().unwrap() = pending(0, 0, 7);
    s.query_pending(QueryKind::Final).unwrap();
    assert_eq!(s.remaining(), 1_007);
}

#[test]
fn query_kind_reaches_the_callback_as_exact_and_final() {
    let s = Session::new();
    let d = Device::new(pending(1, 0, 0));
    register(&s, "ram", 0, &d);
    s.query_pending(QueryKind::Fast).unwrap();
    s.query_pending(QueryKind::Exact).unwrap();
    s.query_pending(QueryKind::Final).unwrap();
    assert_eq!(*d.asked.lock().unwrap(), vec![(false, false), (true, false), (true, true)]);
}

#[test]
fn every_handler_gets_its_own_zeroed_pending() {
    let s = Session::new();
    let devices: Vec<_> = (0..5).map(|i| Device::new(pending(i + 1, 2 * i, 3 * i))).collect();
    for (i, d) in devices.iter().enumerate() {
        register(&s, "dev", i as u32, d);
    }
    for kind in [QueryKind::Fast, QueryKind::Exact, QueryKind::Final] {
        let p = s.query_pending(kind).unwrap();
        assert_eq!(p, pending(15, 20, 30));
    }
    for d in &devices {
        assert_eq!(d.calls.load(Ordering::SeqCst), 3);
        assert_eq!(d.not_zeroed.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn garbage_sizes_from_two_handlers_saturate_instead_of_wrapping() {
    let s = Session::new();
    register(&s, "a", 0, &Device::new(pending(u64::MAX, u64::MAX, 0)));
    register(&s, "b", 0, &Device::new(pending(u64::MAX, 1, u64::MAX)));
    let p = s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(p, pending(u64::MAX, u64::MAX, u64::MAX));
    assert_eq!(p.total(), u64::MAX);
    assert_eq!(s.remaining(), u64::MAX);
}

#[test]
fn a_total_that_overflows_saturates_while_the_buckets_stay_exact() {
    let s = Session::new();
    register(&s, "a", 0, &Device::new(pending(1 << 63, 0, 0)));
    register(&s, "b", 0, &Device::new(pending(0, 1 << 63, 1)));
    let p = s.query_pending(QueryKind::Fast).unwrap();
    assert_eq!(p, pending(1 << 63, 1 << 63, 1));
    assert_eq!(p.total(), u64::MAX);
}

#[test]
fn inactive_handlers_are_skipped() {
    let s = Session::new();
    let on = Device::new(pending(7, 0, 0));
    let off = Device::new(pending(100, 100, 0));
    off.active.store(false, Ordering::SeqCst);
    register(&s, "on", 0, &on);
    register(&s, "off", 0, &off);
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().total(), 7);
    assert_eq!(off.calls.load(Ordering::SeqCst), 0);
    off.active.store(true, Ordering::SeqCst);
    assert_eq!(s.query_pending(QueryKind::Exact).unwrap().total(), 207);
}

#[test]
fn idstr_and_instance_id_are_unique_together() {
    let s = Session::new();
    let d = Device::new(pending(1, 0, 0));
    let first = register(&s, "vfio", 0, &d);
    register(&s, "vfio", 1, &d);
    register(&s, "vfio-2", 0, &d);
    let e = s
        .registry()
        .register("vfio", 0, HandlerFlags::empty(), Box::new(Shared(d.clone())))
        .unwrap_err();
    assert_eq!(e.code, Code::Exists);
    assert!(e.message.contains("vfio"), "{}", e.message);
    assert_eq!(s.registry().len(), 3);
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().total(), 3);
    // Free again once unregistered, with a new id.
    s.registry().unregister(first).unwrap();
    assert_ne!(register(&s, "vfio", 0, &d), first);
}

#[test]
fn empty_idstr_is_an_invalid_argument() {
    let s = Session::new();
    let e = s
        .registry()
        .register("", 0, HandlerFlags::empty(), Box::new(Shared(Device::new(Pending::default()))))
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArg);
    assert!(s.registry().is_empty());
}

#[test]
fn unknown_handler_id_is_not_found() {
    let s = Session::new();
    assert_eq!(s.registry().unregister(0).unwrap_err().code, Code::NotFound);
    let id = register(&s, "dev", 0, &Device::new(Pending::default()));
    assert_eq!(s.registry().unregister(id + 1).unwrap_err().code, Code::NotFound);
    s.registry().unregister(id).unwrap();
    assert_eq!(s.registry().unregister(id).unwrap_err().code, Code::NotFound);
}

#[test]
fn handler_ids_are_never_zero_and_never_reused() {
    let r = Registry::new(u64::MAX - 1);
    let mut seen = std::collections::HashSet::new();
    for i in 0..100 {
        let id = r
            .register("dev", i % 3, HandlerFlags::empty(), Box::new(Shared(Device::new(Pending::default()))))
            .unwrap();
        assert_ne!(id, 0);
        assert!(seen.insert(id), "id {id} reused");
        r.unregister(id).unwrap();
    }
}

#[test]
fn handlers_are_listed_in_registration_order_with_their_flags() {
    let s = Session::new();
    let d = Device::new(Pending::default());
    let a = s.registry().register("ram", 0, HandlerFlags::empty(), Box::new(Shared(d.clone()))).unwrap();
    let b = s
        .registry()
        .register("vfio", 3, HandlerFlags::NO_POSTCOPY | HandlerFlags::EXACT_NEEDS_STOPPED_VM, Box::new(Shared(d)))
        .unwrap();
    let list = s.registry().handlers();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].id, list[0].idstr.as_str(), list[0].instance_id), (a, "ram", 0));
    assert_eq!((list[1].id, list[1].idstr.as_str(), list[1].instance_id), (b, "vfio", 3));
    assert_eq!(list[1].flags, HandlerFlags::NO_POSTCOPY | HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    let stopped = s.registry().active_with(HandlerFlags::EXACT_NEEDS_STOPPED_VM).unwrap();
    assert_eq!(stopped.iter().map(|h| h.id).collect::<Vec<_>>(), vec![b]);
}

/// A source that calls back into its own session (and another one) from its callback.
struct Reentrant {
    own: Weak<Session>,
    other: Arc<Session>,
    own_id: AtomicU64,
    results: Mutex<Vec<(&'static str, Code)>>,
}

fn code_of<T>(r: switchover::Result<T>) -> Code {
    r.map(|_| Code::Ok).unwrap_or_else(|e| e.code)
}

impl PendingSource for Reentrant {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        let own = self.own.upgrade().unwrap();
        let mut results = self.results.lock().unwrap();
        let noop = || Box::new(Shared(Device::new(pending(0, 11, 0))));
        results.push(("register", code_of(own.registry().register("late", 0, HandlerFlags::empty(), noop()))));
        results.push(("unregister", code_of(own.registry().unregister(self.own_id.load(Ordering::SeqCst)))));
        results.push(("query", code_of(own.query_pending(QueryKind::Fast))));
        results.push(("query exact", code_of(own.query_pending(QueryKind::Exact))));
        let other_id = self.other.registry().register("from-callback", 0, HandlerFlags::empty(), noop());
        results.push(("other register", code_of(other_id.clone())));
        let q = self.other.query_pending(QueryKind::Exact);
        results.push(("other query", code_of(q.clone())));
        assert_eq!(q.unwrap().total(), 11);
        results.push(("other unregister", code_of(self.other.registry().unregister(other_id.unwrap()))));
        p.precopy += 100;
    }
}

#[test]
fn reentrant_calls_from_a_callback_are_refused_but_other_sessions_work() {
    let own = Arc::new(Session::new());
    let other = Arc::new(Session::new());
    let source = Arc::new(Reentrant {
        own: Arc::downgrade(&own),
        other: other.clone(),
        own_id: AtomicU64::new(0),
        results: Mutex::new(Vec::new()),
    });
    struct ByArc(Arc<Reentrant>);
    impl PendingSource for ByArc {
        fn save_query_pending(&self, p: &mut Pending, exact: bool, final_: bool) {
            self.0.save_query_pending(p, exact, final_)
        }
    }
    let id = own.registry().register("reentrant", 0, HandlerFlags::empty(), Box::new(ByArc(source.clone()))).unwrap();
    source.own_id.store(id, Ordering::SeqCst);

    let p = own.query_pending(QueryKind::Exact).unwrap(); // the outer query completes
    assert_eq!(p, pending(100, 0, 0));
    assert_eq!(
        *source.results.lock().unwrap(),
        vec![
            ("register", Code::Reentrant),
            ("unregister", Code::Reentrant),
            ("query", Code::Reentrant),
            ("query exact", Code::Reentrant),
            ("other register", Code::Ok),
            ("other query", Code::Ok),
            ("other unregister", Code::Ok),
        ]
    );
    // Nothing changed on the own session; outside the callback the calls work again.
    assert_eq!(own.registry().len(), 1);
    own.registry().unregister(id).unwrap();
    assert!(other.registry().is_empty());
}

/// Records a call after its "freed" flag was set: a callback after unregister returned.
struct Churn {
    freed: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    after_free: Arc<AtomicUsize>,
}

impl PendingSource for Churn {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        if self.freed.load(Ordering::SeqCst) {
            self.after_free.fetch_add(1, Ordering::SeqCst);
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::yield_now();
        p.precopy += 1;
        if self.freed.load(Ordering::SeqCst) {
            self.after_free.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn is_active(&self) -> bool {
        if self.freed.load(Ordering::SeqCst) {
            self.after_free.fetch_add(1, Ordering::SeqCst);
        }
        true
    }
}

#[test]
fn no_callback_runs_after_unregister_returns_while_another_thread_queries() {
    let s = Arc::new(Session::new());
    let stop = Arc::new(AtomicBool::new(false));
    let queriers: Vec<_> = (0..2)
        .map(|n| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut queries = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let kind = if (queries + n) % 2 == 0 { QueryKind::Fast } else { QueryKind::Exact };
                    let p = s.query_pending(kind).unwrap();
                    assert!(p.total() <= 4, "at most 4 handlers of 1 byte, got {}", p.total());
                    queries += 1;
                }
                queries
            })
        })
        .collect();
    let after_free = Arc::new(AtomicUsize::new(0));
    let mut live: Vec<(u64, Arc<AtomicBool>, Arc<AtomicUsize>)> = Vec::new();
    for round in 0..3000u32 {
        if live.len() == 4 {
            let (id, freed, calls) = live.remove(0);
            if round % 50 == 0 {
                // Make sure some unregisters really overlap with queries (no timing).
                while calls.load(Ordering::SeqCst) == 0 {
                    std::thread::yield_now();
                }
            }
            s.registry().unregister(id).unwrap();
            freed.store(true, Ordering::SeqCst);
        }
        let freed = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Churn { freed: freed.clone(), calls: calls.clone(), after_free: after_free.clone() };
        let id = s.registry().register("churn", round, HandlerFlags::empty(), Box::new(source)).unwrap();
        live.push((id, freed, calls));
    }
    for (id, freed, _) in live.drain(..) {
        s.registry().unregister(id).unwrap();
        freed.store(true, Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    let queries: u64 = queriers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(queries > 0);
    assert_eq!(after_free.load(Ordering::SeqCst), 0);
    assert!(s.registry().is_empty());
}

/// Blocks in its first callback until released.
struct Blocking {
    entered: AtomicBool,
    release: AtomicBool,
    unregistered: AtomicBool,
}

impl PendingSource for Blocking {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        if !self.entered.swap(true, Ordering::SeqCst) {
            while !self.release.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        }
        assert!(!self.unregistered.load(Ordering::SeqCst));
        p.stopcopy += 1;
    }
}

#[test]
fn unregister_waits_for_a_running_callback() {
    let s = Arc::new(Session::new());
    let b = Arc::new(Blocking {
        entered: AtomicBool::new(false),
        release: AtomicBool::new(false),
        unregistered: AtomicBool::new(false),
    });
    struct ByArc(Arc<Blocking>);
    impl PendingSource for ByArc {
        fn save_query_pending(&self, p: &mut Pending, exact: bool, final_: bool) {
            self.0.save_query_pending(p, exact, final_)
        }
    }
    let id = s.registry().register("blocking", 0, HandlerFlags::empty(), Box::new(ByArc(b.clone()))).unwrap();
    let querier = {
        let s = s.clone();
        std::thread::spawn(move || s.query_pending(QueryKind::Fast).unwrap())
    };
    while !b.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let unregisterer = {
        let (s, b) = (s.clone(), b.clone());
        std::thread::spawn(move || {
            s.registry().unregister(id).unwrap();
            b.unregistered.store(true, Ordering::SeqCst);
        })
    };
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(!b.unregistered.load(Ordering::SeqCst), "unregister returned while a callback ran");
    }
    b.release.store(true, Ordering::SeqCst);
    assert_eq!(querier.join().unwrap(), pending(0, 1, 0));
    unregisterer.join().unwrap();
    assert!(b.unregistered.load(Ordering::SeqCst));
}

/// Device Y of a VMM whose callback needs the VMM's big lock (as a QEMU device model needing
/// the BQL would). A real device would block in `lock()`; polling with a generous deadline
/// turns a deadlock into a failed test instead of a hung one.
struct NeedsBigLock {
    big_lock: Arc<Mutex<()>>,
    entered: Arc<AtomicBool>,
    gave_up: Arc<AtomicBool>,
}

impl PendingSource for NeedsBigLock {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        self.entered.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match self.big_lock.try_lock() {
                Ok(_held) => break,
                Err(_) if std::time::Instant::now() > deadline => {
                    self.gave_up.store(true, Ordering::SeqCst);
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        p.stopcopy += 20;
    }
}

/// docs/design.md §Threading: unregister waits for the callbacks of its own handler only. The
/// VMM thread holds its big lock and unregisters devices X while the migration thread's query
/// is inside device Y's callback, waiting for that lock. Waiting for the whole query would
/// deadlock; the query must stay blocked in Y until both unregisters have returned.
#[test]
fn unregister_returns_while_a_query_is_blocked_in_another_handlers_callback() {
    let s = Arc::new(Session::new());
    let big_lock = Arc::new(Mutex::new(()));
    let (entered, gave_up) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    // X before Y (already asked when the query blocks) and X after Y (not asked yet).
    let x_before = Device::new(pending(1000, 0, 0));
    let x_before_id = register(&s, "x-before", 0, &x_before);
    let y = NeedsBigLock { big_lock: big_lock.clone(), entered: entered.clone(), gave_up: gave_up.clone() };
    s.registry().register("y", 0, HandlerFlags::empty(), Box::new(y)).unwrap();
    let x_after = Device::new(pending(300, 0, 7));
    let x_after_id = register(&s, "x-after", 0, &x_after);

    // The VMM thread (this one) takes its big lock; the migration thread queries.
    let held = big_lock.lock().unwrap();
    let migration = {
        let s = s.clone();
        std::thread::spawn(move || s.query_pending(QueryKind::Fast).unwrap())
    };
    while !entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    s.registry().unregister(x_before_id).unwrap();
    s.registry().unregister(x_after_id).unwrap();
    // Both returned while the query still waits for the lock held here.
    assert!(!migration.is_finished());
    drop(held);

    let p = migration.join().unwrap();
    assert!(!gave_up.load(Ordering::SeqCst), "unregister waited for the whole query");
    // x-before was asked before the query blocked; x-after was removed before it got there.
    assert_eq!(p, pending(1000, 20, 0));
    assert_eq!(x_before.calls.load(Ordering::SeqCst), 1);
    assert_eq!(x_after.calls.load(Ordering::SeqCst), 0);
    assert_eq!(s.remaining(), 1020);
}
