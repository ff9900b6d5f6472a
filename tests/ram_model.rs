//! The built-in RAM model through the public core API (issue 3, item 5).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use switchover::params::Capabilities;
use switchover::pending::QueryKind;
use switchover::ram::{DirtySync, Ram, SyncResult};
use switchover::{Code, Pending, Session, VmmHooks};

const GIB: u64 = 1 << 30;
const PAGE: u64 = 4096;
/// Pages of 1 GiB of RAM in 4 KiB pages.
const PAGES_1G: u64 = GIB / PAGE;

/// A scripted dirty-bitmap sync that counts its calls.
#[derive(Default)]
struct Script {
    calls: AtomicU64,
    dirty: AtomicU64,
    newly: AtomicU64,
}

struct ScriptSync(Arc<Script>);

impl DirtySync for ScriptSync {
    fn sync_dirty(&self) -> SyncResult {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        SyncResult {
            dirty_pages: self.0.dirty.load(Ordering::SeqCst),
            newly_dirtied: self.0.newly.load(Ordering::SeqCst),
        }
    }
}

fn ram_with_script(session: &Arc<Session>, total: u64) -> (Ram, Arc<Script>) {
    let script = Arc::new(Script::default());
    let ram = Ram::new(session, total, PAGE, Some(Box::new(ScriptSync(script.clone())))).unwrap();
    (ram, script)
}

#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl VmmHooks for Events {
    fn vm_stop(&self) -> i32 {
        -1
    }
    fn vm_resume(&self) -> i32 {
        -1
    }
    fn can_stop_vm(&self) -> bool {
        false
    }
    fn event(&self, event_json: &str) {
        self.0.lock().unwrap().push(event_json.to_owned());
    }
}

#[test]
fn fast_query_reports_dirty_pages_times_page_size_without_syncing() {
    let s = Arc::new(Session::new());
    let (ram, script) = ram_with_script(&s, GIB);
    ram.set_dirty_pages(1000).unwrap();
    let p = s.query_pending(QueryKind::Fast).unwrap();
    assert_eq!(p, Pending { precopy: 4_096_000, stopcopy: 0, postcopy: 0 });
    assert_eq!(s.remaining(), 4_096_000);
    assert_eq!(script.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn exact_query_syncs_once_and_uses_its_result() {
    let s = Arc::new(Session::new());
    let (ram, script) = ram_with_script(&s, GIB);
    ram.set_dirty_pages(1000).unwrap();
    script.dirty.store(250, Ordering::SeqCst);
    let p = s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    assert_eq!(p.precopy, 250 * 4096);
    assert_eq!(ram.figures().dirty_pages, 250);
    // The fast query afterwards reports the synced figure, without syncing again.
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, 1_024_000);
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn final_query_syncs_too() {
    let s = Arc::new(Session::new());
    let (_ram, script) = ram_with_script(&s, GIB);
    script.dirty.store(7, Ordering::SeqCst);
    let p = s.query_pending(QueryKind::Final).unwrap();
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    assert_eq!(p.precopy, 7 * 4096);
}

#[test]
fn dirty_bytes_go_to_postcopy_when_postcopy_ram_is_on() {
    let s = Arc::new(Session::new());
    let (ram, _script) = ram_with_script(&s, GIB);
    ram.set_dirty_pages(10).unwrap();
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap(), Pending { precopy: 40_960, ..Pending::default() });
    s.set_capabilities(Capabilities { postcopy_ram: true, ..Capabilities::default() }).unwrap();
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap(), Pending { postcopy: 40_960, ..Pending::default() });
    s.set_capabilities(Capabilities::default()).unwrap();
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, 40_960);
}

#[test]
fn without_a_sync_exact_queries_keep_the_set_dirty_count() {
    let s = Arc::new(Session::new());
    let ram = Ram::new(&s, GIB, PAGE, None).unwrap();
    ram.set_dirty_pages(3).unwrap();
    assert_eq!(s.query_pending(QueryKind::Exact).unwrap().precopy, 3 * 4096);
    assert_eq!(ram.figures().dirty_pages_rate, 0);
}

#[test]
fn record_sent_counts_normal_and_zero_pages_and_lowers_the_dirty_count() {
    let s = Arc::new(Session::new());
    let (ram, _script) = ram_with_script(&s, GIB);
    ram.set_dirty_pages(1000).unwrap();
    ram.record_sent(300, 100);
    ram.record_sent(200, 50);
    let f = ram.figures();
    assert_eq!(f.normal_pages, 500);
    assert_eq!(f.zero_pages, 150); // ram.duplicate
    assert_eq!(f.normal_pages * f.page_size, 2_048_000); // ram.normal-bytes
    assert_eq!(f.dirty_pages, 350);
    assert_eq!(f.total_bytes, GIB);
    assert_eq!(f.page_size, 4096);
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, 350 * 4096);
    // More pages sent than dirty: the dirty count stops at 0.
    ram.record_sent(1000, 0);
    assert_eq!(ram.figures().dirty_pages, 0);
}

#[test]
fn record_sent_saturates_instead_of_wrapping() {
    let s = Arc::new(Session::new());
    let ram = Ram::new(&s, GIB, PAGE, None).unwrap();
    ram.record_sent(u64::MAX - 1, u64::MAX);
    ram.record_sent(5, 5);
    let f = ram.figures();
    assert_eq!(f.normal_pages, u64::MAX);
    assert_eq!(f.zero_pages, u64::MAX);
    assert_eq!(f.dirty_pages, 0);
}

#[test]
fn dirty_count_above_the_page_count_is_refused_and_changes_nothing() {
    let s = Arc::new(Session::new());
    let ram = Ram::new(&s, GIB, PAGE, None).unwrap();
    ram.set_dirty_pages(5).unwrap();
    ram.set_dirty_pages(PAGES_1G).unwrap();
    let e = ram.set_dirty_pages(PAGES_1G + 1).unwrap_err();
    assert_eq!(e.code, Code::OutOfRange);
    assert!(e.message.contains("262145") && e.message.contains("262144"), "{}", e.message);
    assert_eq!(ram.figures().dirty_pages, PAGES_1G);
}

/// QEMU's `migration_bitmap_sync` (migration/ram.c): the rate changes only when more than
/// 1000 ms (strictly) have passed since the period started, as
/// `num_dirty_pages_period * 1000 / (end_time - time_last_bitmap_sync)`; a model with no
/// `migration_start` starts its period at its first sync (`if (!rs->time_last_bitmap_sync)`).
#[test]
fn migration_bitmap_sync_measures_the_rate_over_periods_of_more_than_1000_ms() {
    let s = Arc::new(Session::new());
    let (ram, script) = ram_with_script(&s, 4 * GIB);
    s.observe_clock(10_000);
    s.query_pending(QueryKind::Exact).unwrap(); // starts the period, nothing dirtied yet
    script.newly.store(131_072, Ordering::SeqCst);
    s.observe_clock(10_500);
    s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(ram.figures().dirty_pages_rate, 0, "no rate before the period ends");
    script.newly.store(131_072, Ordering::SeqCst);
    s.observe_clock(11_000);
    s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(ram.figures().dirty_pages_rate, 0, "1000 ms is not more than 1000 ms");
    script.newly.store(0, Ordering::SeqCst);
    s.observe_clock(11_001);
    s.query_pending(QueryKind::Exact).unwrap();
    // 262144 pages newly dirtied over 1001 ms: 261882.1 → 261882
    assert_eq!(ram.figures().dirty_pages_rate, 261_882);
    // The next period starts afresh: 100000 pages over 2000 ms = 50000 pages/s.
    script.newly.store(100_000, Ordering::SeqCst);
    s.observe_clock(13_001);
    s.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(ram.figures().dirty_pages_rate, 50_000);
    // Fast queries do not sync, so they neither add pages nor end periods.
    s.observe_clock(20_000);
    s.query_pending(QueryKind::Fast).unwrap();
    assert_eq!(ram.figures().dirty_pages_rate, 50_000);
}

/// The example (QEMU's `ram_init_bitmaps` syncs at setup and starts the period
/// there): migration started at 0, exact syncs at 1500 ms (+30 pages), 2500 ms (+50) and
/// 2600 ms (+0) report 20, 20, 45 pages/s.
#[test]
fn ram_init_bitmaps_starts_the_dirty_rate_period_at_migration_start() {
    let s = Arc::new(Session::new());
    let (ram, script) = ram_with_script(&s, GIB);
    s.migration_start(0).unwrap();
    let mut seen = Vec::new();
    for (at, pages) in [(1500, 30), (2500, 50), (2600, 0)] {
        script.newly.store(pages, Ordering::SeqCst);
        s.observe_clock(at);
        s.query_pending(QueryKind::Exact).unwrap();
        seen.push(ram.figures().dirty_pages_rate);
    }
    assert_eq!(seen, [20, 20, 45]);
}

#[test]
fn garbage_from_sync_dirty_is_clamped_with_one_warning_event() {
    let s = Arc::new(Session::new());
    let events = Arc::new(Events::default());
    s.set_vmm(Some(events.clone()));
    let (ram, script) = ram_with_script(&s, GIB);
    script.dirty.store(u64::MAX, Ordering::SeqCst);
    script.newly.store(u64::MAX, Ordering::SeqCst);
    s.observe_clock(0);
    for _ in 0..3 {
        let p = s.query_pending(QueryKind::Exact).unwrap();
        assert_eq!(p.precopy, GIB, "clamped to the whole RAM");
        s.flush_events();
    }
    assert_eq!(ram.figures().dirty_pages, PAGES_1G);
    let seen = events.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let event: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
    assert_eq!(event["event"], "DEVICE_SIZE_WARNING");
    assert_eq!(event["data"]["device"], "ram");
    assert_eq!(event["data"]["kind"], "dirty-pages-overflow");
    assert_eq!(event["data"]["dirty-pages"], u64::MAX);
    assert_eq!(event["data"]["total-pages"], PAGES_1G);
    // Newly dirtied pages are clamped too: one full RAM per second at most.
    s.observe_clock(1001);
    s.query_pending(QueryKind::Exact).unwrap();
    // 4 syncs of 262144 pages over 1001 ms
    assert_eq!(ram.figures().dirty_pages_rate, PAGES_1G * 4 * 1000 / 1001);
}

#[test]
fn a_second_ram_model_on_one_session_is_refused() {
    let s = Arc::new(Session::new());
    let first = Ram::new(&s, GIB, PAGE, None).unwrap();
    let e = Ram::new(&s, 2 * GIB, PAGE, None).err().unwrap();
    assert_eq!(e.code, Code::Exists);
    assert_eq!(s.registry().len(), 1);
    first.close().unwrap();
    assert!(s.registry().is_empty());
    // Once the first is gone, a new one may be created.
    let _second = Ram::new(&s, 2 * GIB, PAGE, None).unwrap();
}

#[test]
fn bad_sizes_are_refused_and_register_nothing() {
    let s = Arc::new(Session::new());
    for (total, page, code) in [
        (GIB, 0, Code::InvalidArg),
        (GIB, 3000, Code::InvalidArg),
        (GIB, 256, Code::OutOfRange),
        (0, PAGE, Code::InvalidArg),
        (GIB + 1, PAGE, Code::InvalidArg),
    ] {
        let e = Ram::new(&s, total, page, None).err().unwrap();
        assert_eq!(e.code, code, "{total} {page}: {}", e.message);
    }
    assert!(s.registry().is_empty());
}

#[test]
fn dropping_the_model_unregisters_it() {
    let s = Arc::new(Session::new());
    {
        let ram = Ram::new(&s, GIB, PAGE, None).unwrap();
        ram.set_dirty_pages(1).unwrap();
        assert_eq!(s.registry().len(), 1);
    }
    assert!(s.registry().is_empty());
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().total(), 0);
}

/// A sync that queries its own session from inside the callback.
struct Reenter {
    session: Weak<Session>,
    code: Mutex<Option<Code>>,
}

struct ReenterSync(Arc<Reenter>);

impl DirtySync for ReenterSync {
    fn sync_dirty(&self) -> SyncResult {
        let s = self.0.session.upgrade().unwrap();
        let code = s.query_pending(QueryKind::Fast).err().map(|e| e.code);
        *self.0.code.lock().unwrap() = code;
        SyncResult { dirty_pages: 2, newly_dirtied: 0 }
    }
}

#[test]
fn querying_the_session_from_sync_dirty_is_reentrant() {
    let s = Arc::new(Session::new());
    let probe = Arc::new(Reenter { session: Arc::downgrade(&s), code: Mutex::new(None) });
    let ram = Ram::new(&s, GIB, PAGE, Some(Box::new(ReenterSync(probe.clone())))).unwrap();
    assert_eq!(s.query_pending(QueryKind::Exact).unwrap().precopy, 2 * 4096);
    assert_eq!(*probe.code.lock().unwrap(), Some(Code::Reentrant));
    drop(ram);
}

/// A sync that records whether it ran after its model was closed.
struct Watched {
    closed: Arc<AtomicBool>,
    late_calls: Arc<AtomicU64>,
}

impl DirtySync for Watched {
    fn sync_dirty(&self) -> SyncResult {
        if self.closed.load(Ordering::SeqCst) {
            self.late_calls.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::yield_now();
        SyncResult { dirty_pages: 1, newly_dirtied: 1 }
    }
}

#[test]
fn closing_while_another_thread_queries_never_lets_sync_run_afterwards() {
    let s = Arc::new(Session::new());
    let stop = Arc::new(AtomicBool::new(false));
    let querier = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                s.query_pending(if n % 2 == 0 { QueryKind::Exact } else { QueryKind::Fast }).unwrap();
                n += 1;
            }
        })
    };
    let late = Arc::new(AtomicU64::new(0));
    for _ in 0..500 {
        let closed = Arc::new(AtomicBool::new(false));
        let ram = Ram::new(
            &s,
            GIB,
            PAGE,
            Some(Box::new(Watched { closed: closed.clone(), late_calls: late.clone() })),
        )
        .unwrap();
        ram.record_sent(1, 0);
        ram.close().unwrap();
        closed.store(true, Ordering::SeqCst);
        drop(ram);
    }
    stop.store(true, Ordering::SeqCst);
    querier.join().unwrap();
    assert_eq!(late.load(Ordering::SeqCst), 0);
    assert!(s.registry().is_empty());
}
