//! The VFIO device model against docs/qemu-model.md §VFIO and the garbage list of its issue.
mod vfio_support;
use vfio_support::Events;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use switchover::pending::QueryKind;
use switchover::vfio::{
    PrecopyFailure, SizeReader, VfioDevice, VfioSizes, STOP_COPY_FALLBACK, WARNING_EVENT,
};
use switchover::{Code, HandlerFlags, Pending, Session};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const INT64_MAX: u64 = 9_223_372_036_854_775_807;

/// What the scripted device answers, and how often it was asked.
struct Answers {
    stop: Result<u64, i32>,
    precopy: Result<(u64, u64), PrecopyFailure>,
}

#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<Answers>>,
    stop_reads: Arc<AtomicU64>,
    precopy_reads: Arc<AtomicU64>,
}

impl Script {
    fn new(stop: u64) -> Script {
        Script {
            answers: Arc::new(Mutex::new(Answers { stop: Ok(stop), precopy: Ok((0, 0)) })),
            stop_reads: Arc::default(),
            precopy_reads: Arc::default(),
        }
    }
    fn stop(&self, v: Result<u64, i32>) {
        self.answers.lock().unwrap().stop = v;
    }
    fn precopy(&self, v: Result<(u64, u64), PrecopyFailure>) {
        self.answers.lock().unwrap().precopy = v;
    }
    fn reads(&self) -> (u64, u64) {
        (self.stop_reads.load(Ordering::SeqCst), self.precopy_reads.load(Ordering::SeqCst))
    }
}

impl SizeReader for Script {
    fn stop_copy_size(&self) -> Result<u64, i32> {
        self.stop_reads.fetch_add(1, Ordering::SeqCst);
        self.answers.lock().unwrap().stop
    }
    fn precopy_info(&self) -> Result<(u64, u64), PrecopyFailure> {
        self.precopy_reads.fetch_add(1, Ordering::SeqCst);
        self.answers.lock().unwrap().precopy
    }
}

struct Fixture {
    session: Arc<Session>,
    events: Arc<Events>,
}

impl Fixture {
    fn new() -> Fixture {
        let session = Arc::new(Session::new());
        let events = Arc::new(Events::default());
        session.set_vmm(Some(events.clone())).unwrap();
        Fixture { session, events }
    }

    fn device(&self, name: &str, stop: u64) -> (VfioDevice, Script) {
        let script = Script::new(stop);
        let dev = VfioDevice::new(&self.session, name, Box::new(script.clone())).unwrap();
        (dev, script)
    }

    /// The data of the warning events delivered so far.
    fn warnings(&self) -> Vec<Value> {
        self.session.flush_events();
        self.events
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == WARNING_EVENT)
            .map(|e| e["data"].clone())
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.warnings().iter().map(|w| w["kind"].as_str().unwrap().to_owned()).collect()
    }

    fn query(&self, kind: QueryKind) -> Pending {
        self.session.query_pending(kind).unwrap()
    }
}

fn sizes(stop: u64, init: u64, dirty: u64) -> (u64, u64, u64) {
    (stop, init, dirty)
}

fn cache(d: &VfioDevice) -> (u64, u64, u64) {
    let s = d.sizes();
    (s.stopcopy_size, s.precopy_init_size, s.precopy_dirty_size)
}

// ---- the three kinds of query --------------------------------------------------------------

#[test]
fn creation_reads_the_stop_copy_size_once() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    assert_eq!(script.reads(), (1, 0));
    assert_eq!(cache(&d), sizes(2 * GIB, 0, 0));
}

#[test]
fn fast_query_reports_the_cache_without_reading_the_device() {
    let f = Fixture::new();
    let (_d, script) = f.device("gpu0", 2 * GIB);
    script.stop(Ok(3 * GIB));
    let p = f.query(QueryKind::Fast);
    assert_eq!(p, Pending { precopy: 0, stopcopy: 2 * GIB, postcopy: 0 });
    assert_eq!(script.reads(), (1, 0));
}

#[test]
fn exact_query_rereads_the_stop_copy_size_but_not_precopy_info_outside_pre_copy() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    script.stop(Ok(3 * GIB));
    script.precopy(Ok((100 * MIB, 10 * MIB)));
    for state in [0, 1, 2, 3, 4, 5] {
        d.set_state(state).unwrap();
        let p = f.query(QueryKind::Exact);
        assert_eq!(p, Pending { precopy: 0, stopcopy: 3 * GIB, postcopy: 0 }, "state {state}");
    }
    assert_eq!(script.reads(), (1 + 6, 0));
}

#[test]
fn exact_query_rereads_precopy_info_in_pre_copy_and_pre_copy_p2p() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    script.precopy(Ok((512 * MIB, 64 * MIB)));
    for state in [6, 7] {
        d.set_state(state).unwrap();
        let p = f.query(QueryKind::Exact);
        // precopy = init + dirty; stopcopy = stopcopy_size - precopy.
        assert_eq!(p.precopy, 576 * MIB);
        assert_eq!(p.stopcopy, 2 * GIB - 576 * MIB);
        assert_eq!(p.total(), 2 * GIB);
    }
    assert_eq!(script.reads(), (3, 2));
}

#[test]
fn final_query_reports_the_cache_without_reading_the_device() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((GIB, 0)));
    f.query(QueryKind::Exact);
    script.stop(Ok(5 * GIB));
    script.precopy(Ok((0, 0)));
    d.set_state(3).unwrap();
    let before = script.reads();
    let p = f.query(QueryKind::Final);
    assert_eq!(script.reads(), before);
    assert_eq!(p, Pending { precopy: GIB, stopcopy: GIB, postcopy: 0 });
}

#[test]
fn outside_pre_copy_the_cached_precopy_figures_are_kept() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((300 * MIB, 20 * MIB)));
    d.refresh().unwrap();
    d.set_state(3).unwrap();
    script.precopy(Ok((0, 0)));
    d.refresh().unwrap();
    assert_eq!(cache(&d), sizes(2 * GIB, 300 * MIB, 20 * MIB));
}

#[test]
fn refresh_rereads_like_an_exact_query() {
    let f = Fixture::new();
    let (d, script) = f.device("nic0", 8 * MIB);
    d.set_state(6).unwrap();
    script.stop(Ok(9 * MIB));
    script.precopy(Ok((MIB, 2 * MIB)));
    d.refresh().unwrap();
    assert_eq!(cache(&d), sizes(9 * MIB, MIB, 2 * MIB));
    assert_eq!(d.pending(), Pending { precopy: 3 * MIB, stopcopy: 6 * MIB, postcopy: 0 });
    assert!(f.warnings().is_empty());
}

// ---- reads --------------------------------------------------------------------------------

#[test]
fn a_read_shrinks_stop_copy_then_init_then_dirty() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 1000);
    d.set_state(6).unwrap();
    script.stop(Ok(1000));
    script.precopy(Ok((300, 200)));
    d.refresh().unwrap();
    d.record_read(400);
    // stop 1000 - 400; init 300 - 300; dirty 200 - (400 - 300).
    assert_eq!(cache(&d), sizes(600, 0, 100));
    d.record_read(50);
    assert_eq!(cache(&d), sizes(550, 0, 50));
    assert_eq!(d.pending(), Pending { precopy: 50, stopcopy: 500, postcopy: 0 });
}

#[test]
fn a_read_smaller_than_init_leaves_dirty_alone() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 1000);
    d.set_state(6).unwrap();
    script.precopy(Ok((300, 200)));
    d.refresh().unwrap();
    d.record_read(100);
    assert_eq!(cache(&d), sizes(900, 200, 200));
}

#[test]
fn a_read_of_zero_bytes_zeroes_init_and_dirty_only() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 1000);
    d.set_state(6).unwrap();
    script.precopy(Ok((300, 200)));
    d.refresh().unwrap();
    d.record_read(0);
    assert_eq!(cache(&d), sizes(1000, 0, 0));
    assert_eq!(d.pending(), Pending { precopy: 0, stopcopy: 1000, postcopy: 0 });
}

#[test]
fn reads_count_in_device_and_session_transferred() {
    let f = Fixture::new();
    assert_eq!(f.session.vfio_totals().transferred(), None);
    let (gpu, _) = f.device("gpu0", 2 * GIB);
    let (nic, _) = f.device("nic0", 8 * MIB);
    assert_eq!(f.session.vfio_totals().transferred(), Some(0));
    gpu.record_read(MIB);
    gpu.record_read(MIB);
    nic.record_read(4096);
    assert_eq!(gpu.sizes().transferred, 2 * MIB);
    assert_eq!(nic.sizes().transferred, 4096);
    assert_eq!(f.session.vfio_totals().transferred(), Some(2 * MIB + 4096));
    drop(nic);
    assert_eq!(f.session.vfio_totals().transferred(), Some(2 * MIB + 4096));
    drop(gpu);
    assert_eq!(f.session.vfio_totals().transferred(), None, "no vfio member without a device");
}

#[test]
fn migration_start_resets_transferred_of_session_and_devices() {
    let f = Fixture::new();
    let (gpu, _) = f.device("gpu0", 2 * GIB);
    gpu.record_read(MIB);
    f.session.vfio_totals().reset();
    assert_eq!(gpu.sizes().transferred, 0);
    assert_eq!(f.session.vfio_totals().transferred(), Some(0));
    gpu.record_read(10);
    assert_eq!(gpu.sizes().transferred, 10);
    assert_eq!(f.session.vfio_totals().transferred(), Some(10));
}

// ---- garbage and faults -------------------------------------------------------------------

#[test]
fn stop_copy_size_above_int64_max_is_clamped_with_qemus_warning() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 0);
    script.stop(Ok(u64::MAX));
    let e = d.refresh().unwrap_err();
    assert_eq!(e.code, Code::OutOfRange);
    assert_eq!(e.message, "gpu0: Estimated stop copy size overflow: 0xffffffffffffffff");
    assert_eq!(d.sizes().stopcopy_size, INT64_MAX);
    let w = f.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["device"], "gpu0");
    assert_eq!(w[0]["kind"], "stop-copy-overflow");
    assert_eq!(w[0]["value"], u64::MAX);
    assert_eq!(w[0]["message"], "gpu0: Estimated stop copy size overflow: 0xffffffffffffffff");
}

#[test]
fn int64_max_itself_is_not_garbage() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 0);
    script.stop(Ok(INT64_MAX));
    d.refresh().unwrap();
    assert_eq!(d.sizes().stopcopy_size, INT64_MAX);
    script.stop(Ok(INT64_MAX + 1));
    assert_eq!(d.refresh().unwrap_err().code, Code::OutOfRange);
    assert_eq!(f.kinds(), ["stop-copy-overflow"]);
}

#[test]
fn precopy_sizes_above_int64_max_are_clamped_and_sums_do_not_wrap() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 0);
    d.set_state(6).unwrap();
    script.stop(Ok(u64::MAX));
    script.precopy(Ok((0x8000_0000_0000_0000, u64::MAX)));
    assert_eq!(d.refresh().unwrap_err().code, Code::OutOfRange);
    assert_eq!(cache(&d), sizes(INT64_MAX, INT64_MAX, INT64_MAX));
    let p = f.query(QueryKind::Final);
    assert_eq!(p.precopy, 2 * INT64_MAX);
    assert_eq!(p.stopcopy, 0);
    let messages: Vec<String> =
        f.warnings().iter().map(|w| w["message"].as_str().unwrap().to_owned()).collect();
    assert!(messages.contains(&"gpu0: Estimated precopy init size overflow: 0x8000000000000000".into()));
    assert!(messages.contains(&"gpu0: Estimated precopy dirty size overflow: 0xffffffffffffffff".into()));
}

#[test]
fn an_exact_query_with_garbage_still_answers_clamped() {
    let f = Fixture::new();
    let (_d, script) = f.device("gpu0", 0);
    script.stop(Ok(u64::MAX));
    let p = f.query(QueryKind::Exact);
    assert_eq!(p.stopcopy, INT64_MAX);
    assert_eq!(f.kinds(), ["stop-copy-overflow"]);
}

#[test]
fn precopy_larger_than_stop_copy_gives_a_stop_copy_bucket_of_zero() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 100 * MIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((80 * MIB, 40 * MIB)));
    d.refresh().unwrap();
    assert_eq!(d.pending(), Pending { precopy: 120 * MIB, stopcopy: 0, postcopy: 0 });
    assert_eq!(f.kinds(), ["precopy-exceeds-stop-copy"]);
}

#[test]
fn stop_copy_read_failure_assumes_100_gib_and_warns_once() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    script.stop(Err(libc::EIO));
    let e = d.refresh().unwrap_err();
    assert_eq!(e.code, Code::Io);
    assert_eq!(d.sizes().stopcopy_size, 107_374_182_400);
    assert_eq!(STOP_COPY_FALLBACK, 107_374_182_400);
    let p = f.query(QueryKind::Exact);
    assert_eq!(p.stopcopy, 107_374_182_400);
    let w = f.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["kind"], "stop-copy-query-failed");
    assert_eq!(w[0]["value"], libc::EIO);
    // Recovery: the next good read replaces the fallback.
    script.stop(Ok(GIB));
    d.refresh().unwrap();
    assert_eq!(d.sizes().stopcopy_size, GIB);
}

#[test]
fn a_failing_first_read_warns_but_creation_succeeds() {
    let f = Fixture::new();
    let script = Script::new(0);
    script.stop(Err(libc::ENOTTY));
    let d = VfioDevice::new(&f.session, "gpu0", Box::new(script.clone())).unwrap();
    assert_eq!(d.sizes().stopcopy_size, STOP_COPY_FALLBACK);
    assert_eq!(f.kinds(), ["stop-copy-query-failed"]);
}

#[test]
fn precopy_read_failure_assumes_zero_and_warns_once() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((GIB, MIB)));
    d.refresh().unwrap();
    script.precopy(Err(PrecopyFailure::Errno(libc::EINVAL)));
    assert_eq!(d.refresh().unwrap_err().code, Code::Io);
    assert_eq!(cache(&d), sizes(2 * GIB, 0, 0));
    assert_eq!(d.refresh().unwrap_err().code, Code::Io);
    assert_eq!(f.kinds(), ["precopy-query-failed"]);
}

#[test]
fn precopy_info_unavailable_assumes_zero_and_warns() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(7).unwrap();
    script.precopy(Err(PrecopyFailure::Unavailable));
    assert_eq!(d.refresh().unwrap_err().code, Code::BadState);
    assert_eq!(cache(&d), sizes(2 * GIB, 0, 0));
    assert_eq!(f.kinds(), ["precopy-info-unavailable"]);
}

#[test]
fn a_read_larger_than_the_cache_floors_at_zero() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 1000);
    d.set_state(6).unwrap();
    script.precopy(Ok((300, 200)));
    d.refresh().unwrap();
    d.record_read(5000);
    assert_eq!(cache(&d), sizes(0, 0, 0));
    assert_eq!(d.pending(), Pending::default());
    d.record_read(u64::MAX);
    assert_eq!(cache(&d), sizes(0, 0, 0));
    assert_eq!(d.sizes().transferred, u64::MAX, "saturates");
    assert_eq!(f.kinds(), ["read-exceeds-cache"]);
}

#[test]
fn initial_bytes_that_grow_between_reads_are_kept_and_warned_about() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((100 * MIB, 0)));
    d.refresh().unwrap();
    d.record_read(60 * MIB);
    // The device says 40 MiB, then 70 MiB: initial data only shrinks in the uAPI.
    script.precopy(Ok((70 * MIB, 5 * MIB)));
    d.refresh().unwrap();
    assert_eq!(cache(&d).1, 70 * MIB);
    script.precopy(Ok((90 * MIB, 5 * MIB)));
    d.refresh().unwrap();
    assert_eq!(f.kinds(), ["precopy-init-grew"]);
}

#[test]
fn dirty_bytes_that_grow_are_normal() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((0, MIB)));
    d.refresh().unwrap();
    script.precopy(Ok((0, 50 * MIB)));
    d.refresh().unwrap();
    script.stop(Ok(3 * GIB));
    d.refresh().unwrap();
    assert_eq!(cache(&d), sizes(3 * GIB, 0, 50 * MIB));
    assert!(f.warnings().is_empty());
}

#[test]
fn a_new_precopy_phase_does_not_count_as_growth() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((10, 0)));
    d.refresh().unwrap();
    d.set_state(2).unwrap();
    d.set_state(6).unwrap();
    script.precopy(Ok((GIB, 0)));
    d.refresh().unwrap();
    assert!(f.warnings().is_empty());
}

#[test]
fn a_good_read_after_a_failed_one_is_no_growth() {
    let f = Fixture::new();
    let (d, script) = f.device("gpu0", 2 * GIB);
    d.set_state(6).unwrap();
    script.precopy(Ok((10 * MIB, 0)));
    d.refresh().unwrap();
    script.precopy(Err(PrecopyFailure::Errno(libc::EIO)));
    let _ = d.refresh();
    script.precopy(Ok((10 * MIB, 0)));
    d.refresh().unwrap();
    assert_eq!(f.kinds(), ["precopy-query-failed"]);
}

#[test]
fn each_kind_warns_once_per_device() {
    let f = Fixture::new();
    let (a, sa) = f.device("gpu0", 0);
    let (b, sb) = f.device("gpu1", 0);
    sa.stop(Ok(u64::MAX));
    sb.stop(Ok(u64::MAX));
    for _ in 0..3 {
        let _ = a.refresh();
        let _ = b.refresh();
    }
    let w = f.warnings();
    let devices: Vec<&str> = w.iter().map(|w| w["device"].as_str().unwrap()).collect();
    assert_eq!(devices, ["gpu0", "gpu1"]);
}

#[test]
fn invalid_device_states_are_refused() {
    let f = Fixture::new();
    let (d, _) = f.device("gpu0", 0);
    for state in 0..=7 {
        d.set_state(state).unwrap();
    }
    for state in [8, 9, 100, u32::MAX] {
        assert_eq!(d.set_state(state).unwrap_err().code, Code::InvalidArg);
    }
    assert_eq!(d.state() as u32, 7);
}

// ---- registration ---------------------------------------------------------------------------

#[test]
fn a_device_registers_as_a_no_postcopy_handler_named_after_it() {
    let f = Fixture::new();
    let (d, _) = f.device("0000:65:00.0", GIB);
    let h = f.session.registry().handlers();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].idstr, "0000:65:00.0");
    assert_eq!(h[0].instance_id, 0);
    assert_eq!(h[0].id, d.handler_id());
    assert!(h[0].flags.contains(HandlerFlags::NO_POSTCOPY));
    assert_eq!(f.session.registry().active_with(HandlerFlags::NO_POSTCOPY).unwrap().len(), 1);
    drop(d);
    assert!(f.session.registry().is_empty());
}

#[test]
fn names_must_be_non_empty_and_unique_per_session() {
    let f = Fixture::new();
    let (_d, _) = f.device("gpu0", 0);
    let e = VfioDevice::new(&f.session, "gpu0", Box::new(Script::new(0))).unwrap_err();
    assert_eq!(e.code, Code::Exists);
    let e = VfioDevice::new(&f.session, "", Box::new(Script::new(0))).unwrap_err();
    assert_eq!(e.code, Code::InvalidArg);
    assert_eq!(f.session.vfio_totals().transferred(), Some(0));
    assert_eq!(f.session.registry().len(), 1);
    // Another session may use the same name.
    let other = Arc::new(Session::new());
    VfioDevice::new(&other, "gpu0", Box::new(Script::new(0))).unwrap();
}

#[test]
fn a_refused_name_issues_no_read() {
    let f = Fixture::new();
    let (_d, _) = f.device("gpu0", 0);
    let script = Script::new(0);
    assert!(VfioDevice::new(&f.session, "gpu0", Box::new(script.clone())).is_err());
    assert_eq!(script.reads(), (0, 0));
}

// ---- two devices ------------------------------------------------------------------------------

#[test]
fn two_device_session_counts_the_vgpu_and_the_nic() {
    let f = Fixture::new();
    let (_gpu, _) = f.device("vgpu", 2 * GIB);
    let (_nic, _) = f.device("nic-vf", 8 * MIB);
    for kind in [QueryKind::Fast, QueryKind::Exact, QueryKind::Final] {
        let p = f.query(kind);
        assert_eq!(p, Pending { precopy: 0, stopcopy: 2 * GIB + 8 * MIB, postcopy: 0 });
        assert_eq!(p.total(), 2_155_872_256);
        assert_eq!(f.session.remaining(), 2_155_872_256);
    }
}

#[test]
fn two_device_session_in_pre_copy_splits_the_buckets() {
    let f = Fixture::new();
    let (gpu, gs) = f.device("vgpu", 2 * GIB);
    let (nic, ns) = f.device("nic-vf", 8 * MIB);
    gpu.set_state(6).unwrap();
    nic.set_state(6).unwrap();
    gs.precopy(Ok((GIB, 0)));
    ns.precopy(Ok((2 * MIB, MIB)));
    let p = f.query(QueryKind::Exact);
    assert_eq!(p.precopy, GIB + 3 * MIB);
    assert_eq!(p.stopcopy, GIB + 5 * MIB);
    // Sending all the precopy data leaves only the stop-copy part.
    gpu.record_read(GIB);
    nic.record_read(3 * MIB);
    let p = f.query(QueryKind::Fast);
    assert_eq!(p, Pending { precopy: 0, stopcopy: GIB + 5 * MIB, postcopy: 0 });
}

// ---- the real ioctl path without a device -----------------------------------------------------

#[test]
fn ioctl_on_a_file_that_is_no_vfio_device_falls_back_to_100_gib() {
    let f = Fixture::new();
    let file = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let d = VfioDevice::with_fd(&f.session, "gpu0", file.as_raw_fd()).unwrap();
    assert_eq!(d.sizes().stopcopy_size, STOP_COPY_FALLBACK);
    let w = f.warnings();
    assert_eq!(w[0]["kind"], "stop-copy-query-failed");
    assert_eq!(w[0]["value"], libc::ENOTTY);
    // In PRE_COPY without a data fd: precopy info is unavailable.
    d.set_state(6).unwrap();
    assert_eq!(d.refresh().unwrap_err().code, Code::Io);
    assert!(f.kinds().contains(&"precopy-info-unavailable".to_owned()));
    // With a data fd that is no VFIO file: the precopy ioctl fails.
    d.set_data_fd(file.as_raw_fd()).unwrap();
    assert_eq!(d.refresh().unwrap_err().code, Code::Io);
    assert!(f.kinds().contains(&"precopy-query-failed".to_owned()));
    assert_eq!(d.set_data_fd(-2).unwrap_err().code, Code::InvalidArg);
    d.set_data_fd(-1).unwrap();
    assert_eq!(
        VfioDevice::with_fd(&f.session, "gpu1", -1).err().map(|e| e.code),
        Some(Code::InvalidArg)
    );
}

#[test]
fn only_fd_devices_have_a_data_fd() {
    let f = Fixture::new();
    let (d, _) = f.device("gpu0", 0);
    assert_eq!(d.set_data_fd(3).unwrap_err().code, Code::Unsupported);
}

// ---- threads ------------------------------------------------------------------------------------

/// A reader that notices calls after its device was freed.
struct Watched {
    freed: Arc<AtomicBool>,
    late_calls: Arc<AtomicU64>,
}

impl SizeReader for Watched {
    fn stop_copy_size(&self) -> Result<u64, i32> {
        if self.freed.load(Ordering::SeqCst) {
            self.late_calls.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::yield_now();
        Ok(GIB)
    }
    fn precopy_info(&self) -> Result<(u64, u64), PrecopyFailure> {
        if self.freed.load(Ordering::SeqCst) {
            self.late_calls.fetch_add(1, Ordering::SeqCst);
        }
        Ok((MIB, 0))
    }
}

#[test]
fn freeing_a_device_while_another_thread_queries_is_safe() {
    let session = Arc::new(Session::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (_nic, _) = {
        let s = Script::new(8 * MIB);
        (VfioDevice::new(&session, "nic", Box::new(s.clone())).unwrap(), s)
    };
    let done = Arc::new(AtomicU64::new(0));
    let querier = {
        let (session, stop, done) = (session.clone(), stop.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let kind = if n % 2 == 0 { QueryKind::Exact } else { QueryKind::Fast };
                let p = session.query_pending(kind).unwrap();
                // The NIC is always there; the GPU is there or not, never half.
                // (the GPU's one-byte read may or may not have happened yet).
                let t = p.total();
                assert!(t == 8 * MIB || t == 8 * MIB + GIB || t == 8 * MIB + GIB - 1, "{p:?}");
                n += 1;
                done.store(n, Ordering::SeqCst);
            }
            n
        })
    };
    // The frees below must overlap queries: start once the querier runs, and go on past the
    // 500 devices until it has made 100 queries meanwhile (a loaded machine may schedule the
    // querier late).
    while done.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let first = done.load(Ordering::SeqCst);
    let late = Arc::new(AtomicU64::new(0));
    let mut i = 0;
    while i < 500 || done.load(Ordering::SeqCst) < first + 100 {
        let freed = Arc::new(AtomicBool::new(false));
        let reader = Watched { freed: freed.clone(), late_calls: late.clone() };
        let d = VfioDevice::new(&session, "gpu", Box::new(reader)).unwrap();
        if i % 3 == 0 {
            d.set_state(6).unwrap();
        }
        d.record_read(1);
        drop(d);
        freed.store(true, Ordering::SeqCst);
        i += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let queries = querier.join().unwrap();
    assert!(queries >= first + 100);
    assert_eq!(late.load(Ordering::SeqCst), 0, "a reader ran after its device was freed");
}

/// A handler that frees a VFIO device from inside its own query callback.
struct Freer(Mutex<Option<VfioDevice>>);

impl switchover::PendingSource for Freer {
    fn save_query_pending(&self, _p: &mut Pending, _exact: bool, _final: bool) {
        drop(self.0.lock().unwrap().take());
    }
}

#[test]
fn a_device_dropped_from_a_callback_stays_registered_and_working_not_deadlocked() {
    let session = Arc::new(Session::new());
    let script = Script::new(GIB);
    let d = VfioDevice::new(&session, "gpu", Box::new(script.clone())).unwrap();
    assert_eq!(d.close().map_err(|e| e.code), Ok(()), "closing outside a callback works");
    assert_eq!(session.query_pending(QueryKind::Fast).unwrap().total(), 0);
    let d = VfioDevice::new(&session, "gpu", Box::new(script.clone())).unwrap();
    session
        .registry()
        .register("freer", 0, HandlerFlags::empty(), Box::new(Freer(Mutex::new(Some(d)))))
        .unwrap();
    // The freer runs after the device (registration order); its drop cannot unregister (a
    // reader call on another thread could be running), so the device keeps reporting.
    assert_eq!(session.query_pending(QueryKind::Fast).unwrap().total(), GIB);
    let reads = script.reads();
    let p = session.query_pending(QueryKind::Exact).unwrap();
    assert_eq!(p.total(), GIB, "the device still reports");
    assert_eq!(script.reads().0, reads.0 + 1, "and its exact query still reads the device");
    assert_eq!(session.vfio_totals().devices(), 1);
    let names: Vec<_> = session.registry().handlers().into_iter().map(|h| h.idstr).collect();
    assert_eq!(names, ["gpu", "freer"]);
}

#[test]
fn a_device_keeps_its_session_alive() {
    let session = Arc::new(Session::new());
    let d = VfioDevice::new(&session, "gpu", Box::new(Script::new(GIB))).unwrap();
    drop(session);
    d.refresh().unwrap();
    assert_eq!(d.session().query_pending(QueryKind::Fast).unwrap().total(), GIB);
}

#[test]
fn sizes_and_pending_agree() {
    let s = VfioSizes {
        stopcopy_size: 10,
        precopy_init_size: 3,
        precopy_dirty_size: 4,
        transferred: 0,
    };
    assert_eq!(s.pending(), Pending { precopy: 7, stopcopy: 3, postcopy: 0 });
}
