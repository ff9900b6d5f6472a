//! The engine's lifecycle at its edges: pause before switchover with postcopy, cancel and fail
//! during a step or a failing resume, rejected calls and the clock, the ack with a stopped
//! guest, a late no-postcopy handler. Each test pins one behaviour the merged core got wrong
//! (findings 1-8 of the engine review against docs/qemu-model.md, docs/design.md and issues
//! 3-5), so it stays fixed.
mod engine_support;
use engine_support::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use switchover::counters::Channel;
use switchover::engine::Action;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags, Session, VmmHooks};

fn code<T: std::fmt::Debug>(r: switchover::Result<T>) -> Code {
    r.unwrap_err().code
}

/// docs/qemu-model.md §Status: `active → [pre-switchover →] device → postcopy-active`, and
/// "With `pause-before-switchover` the migration waits in `pre-switchover` until
/// `migrate-continue` names that state". `postcopy_start` ignores the capability and goes
/// straight through `device` to `postcopy-active`.
#[test]
fn postcopy_start_with_pause_before_switchover_waits_in_pre_switchover() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| {
        c.postcopy_ram = true;
        c.pause_before_switchover = true;
    });
    rig.start();
    rig.window(1_000_000); // threshold 3,000,000 B
    rig.dev.set(pending(100, 0, 1 << 30));
    rig.sess.postcopy_request().unwrap();
    assert_eq!(rig.step().action, Action::StartPostcopy);
    let _ = rig.sess.postcopy_start(rig.now);
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    assert!(
        !rig.vmm.statuses().iter().any(|s| s == "postcopy-active"),
        "postcopy started without waiting for migrate-continue: {:?}",
        rig.vmm.statuses()
    );
    // The guest stopped as for switchover_begin; the downtime clock runs from that stop.
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    assert_eq!(rig.sess.snapshot(rig.now + 20).downtime_ms, 20);
    // Still paused: calling again changes nothing; the precopy switchover may not take over.
    rig.sess.postcopy_start(rig.now + 5).unwrap();
    assert_eq!(code(rig.sess.switchover_begin(rig.now + 5)), Code::BadState);
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    assert_eq!(rig.vmm.stops(), 1);
    // The monitor continues: `device`; the migration thread's next postcopy_start goes on.
    rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    assert_eq!(code(rig.sess.switchover_begin(rig.now + 10)), Code::BadState);
    rig.sess.postcopy_start(rig.now + 30).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
    assert_eq!(
        rig.vmm.statuses(),
        ["setup", "active", "pre-switchover", "device", "postcopy-active"]
    );
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0), "the destination runs the guest");
    assert_eq!(rig.sess.snapshot(rig.now + 40).downtime_ms, 30, "frozen at the start of postcopy");
}

/// Finding 1, continued: a postcopy start paused in `pre-switchover` that is cancelled gives
/// the guest back, and a pause begun by `switchover_begin` cannot be turned into postcopy.
#[test]
fn a_paused_postcopy_start_is_cancelled_like_a_paused_switchover() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| {
        c.postcopy_ram = true;
        c.pause_before_switchover = true;
    });
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(100, 0, 1 << 30));
    rig.sess.postcopy_request().unwrap();
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    rig.sess.cancel(rig.now + 1).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));

    // A precopy switchover's pause: postcopy_start refuses it, before and after continue.
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(100, 0, 0));
    assert!(!rig.sess.switchover_begin(rig.now).unwrap().proceed);
    assert_eq!(code(rig.sess.postcopy_start(rig.now)), Code::BadState);
    rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap();
    assert_eq!(code(rig.sess.postcopy_start(rig.now)), Code::BadState);
    assert!(rig.sess.switchover_begin(rig.now).unwrap().proceed);
    rig.sess.complete(rig.now + 1).unwrap();
}

/// Issue 3: "A call in the wrong state returns SWO_ERR_BAD_STATE ... and changes nothing."
/// A rejected call still feeds its `now_ms` into the session clock (`observe_clock` runs before
/// the state check), and `fail`/`cancel` freeze `total-time` from that clock, not from their
/// own `now_ms`: a stray call with a far-future clock corrupts the frozen total time and the
/// timestamp of the `failed` event.
#[test]
fn a_rejected_call_does_not_move_the_clock_that_freezes_total_time() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start(); // start 0, setup done at 10
    assert_eq!(code(rig.sess.complete(1_000_000)), Code::BadState);
    assert_eq!(code(rig.sess.setup_done(2_000_000)), Code::BadState);
    assert_eq!(rig.sess.status(), MigrationStatus::Active);
    rig.sess.fail(500, Some("stop")).unwrap();
    assert_eq!(rig.sess.snapshot(600).total_time_ms, 500, "total-time frozen at the fail's 500 ms");
    let events = rig.vmm.events.lock().unwrap().clone();
    let failed = events
        .iter()
        .find(|e| e["event"] == "MIGRATION" && e["data"]["status"] == "failed")
        .expect("a MIGRATION failed event");
    assert_eq!(failed["timestamp"]["seconds"], 0, "{failed}");
    assert_eq!(failed["timestamp"]["microseconds"], 500_000, "{failed}");
}

/// docs/qemu-model.md §Expected downtime: `trunc(last_sync_bytes / switchover_bw * 1000)`,
/// with the switchover bandwidth `mbps / 8 * 1e6`. 1,000,000 B in a 300 ms window is
/// 26.666... Mbps = 3,333,333.33 B/s; 70,000 B / that * 1000 = 20.999999999999996 → 20 ms.
/// The engine computes `bytes * 1000 / bw` (see snapshot.rs) and reports 21.
#[test]
fn expected_downtime_follows_the_documented_formula_and_rounding() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.dev.set(pending(0, 70_000, 0));
    rig.sess.record_transferred(Channel::Main, 1_000_000);
    assert!(rig.sess.update_counters(300).unwrap());
    rig.now = 300;
    rig.step();
    rig.step();
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.dirty_sync_count, s.last_sync_bytes), (3, 70_000));
    let bw = (1_000_000f64 * 8.0 / (300f64 / 1000.0) / 1e6) / 8.0 * 1e6;
    assert_eq!(s.switchover_bw, bw);
    assert_eq!((70_000f64 / bw * 1000.0).trunc() as i64, 20);
    assert_eq!(s.expected_downtime_ms, 20);
}

/// Issue 5's `Stalled:` line says which `downtime-limit` "would converge". When no change can
/// be advised (no bandwidth measured, so the expected downtime is INT64_MAX and the
/// recommendation 0), the line claims that a 0 ms limit would converge.
#[test]
fn stalled_line_never_claims_a_zero_ms_limit_would_converge() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.dev.set(pending(0, 1_000_000, 0)); // precopy 0: an exact query every pass
    for _ in 0..6 {
        rig.window(0); // nothing sent: bandwidth 0, threshold 0
        assert_eq!(rig.step().action, Action::Iterate);
    }
    let s = rig.sess.snapshot(rig.now);
    assert!(s.stalled);
    assert_eq!(s.expected_downtime_ms, i64::MAX);
    let text = rig.sess.info_migrate_text(rig.now);
    assert!(text.contains("Stalled: \t\t"), "{text}");
    assert!(!text.contains("downtime-limit 0 ms would converge"), "{text}");
}

/// A VMM whose `vm_resume` fails once.
#[derive(Default)]
struct FlakyResumeVmm {
    stops: AtomicU64,
    resumes: AtomicU64,
    fail_next_resume: AtomicBool,
}

impl VmmHooks for FlakyResumeVmm {
    fn vm_stop(&self) -> i32 {
        self.stops.fetch_add(1, Ordering::SeqCst);
        0
    }
    fn vm_resume(&self) -> i32 {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        if self.fail_next_resume.swap(false, Ordering::SeqCst) {
            -5
        } else {
            0
        }
    }
    fn can_stop_vm(&self) -> bool {
        true
    }
    fn event(&self, _event_json: &str) {}
}

/// docs/design.md §Bad input: "nothing half-applied". When the step stopped the guest for exact
/// sizing and `vm_resume` fails, the step returns `SWO_ERR_IO` ("the guest is still stopped")
/// but has already forgotten that the library stopped it (`stopped_by_library = None` before
/// the resume). A later `cancel` therefore never tries to resume the guest again: it stays
/// stopped for good.
#[test]
fn a_failed_resume_after_exact_sizing_is_retried_by_cancel() {
    let sess = Arc::new(Session::new());
    let vmm = Arc::new(FlakyResumeVmm::default());
    sess.set_vmm(Some(vmm.clone())).unwrap();
    let dev = Device::default();
    dev.set(pending(0, 1 << 30, 0)); // precopy 0: exact query; far above any threshold
    sess.registry()
        .register("gpu", 0, HandlerFlags::EXACT_NEEDS_STOPPED_VM, Box::new(dev.clone()))
        .unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(10).unwrap();
    sess.record_transferred(Channel::Main, 1_000_000);
    assert!(sess.update_counters(100).unwrap());
    vmm.fail_next_resume.store(true, Ordering::SeqCst);
    assert_eq!(code(sess.iteration_step(100)), Code::Io);
    assert_eq!((vmm.stops.load(Ordering::SeqCst), vmm.resumes.load(Ordering::SeqCst)), (1, 1));
    // The guest is still stopped (the error says so); cancelling must give it back.
    sess.cancel(200).unwrap();
    assert_eq!(sess.status(), MigrationStatus::Cancelled);
    assert_eq!(vmm.resumes.load(Ordering::SeqCst), 2, "cancel did not retry the resume");
}

/// docs/qemu-model.md §One loop pass, step 3: "`can_switchover` = true unless the
/// `switchover-ack` capability is on, the guest is running, and the destination has not
/// acked." When the step itself stopped the guest for exact sizing
/// (`SWO_HANDLER_EXACT_NEEDS_STOPPED_VM`), the guest is not running at the decision, yet the
/// engine only looks at the VMM's `set_vm_running` flag: it waits for an ack it does not need
/// and resumes the guest.
#[test]
fn a_guest_the_step_stopped_does_not_wait_for_the_switchover_ack() {
    let mut rig = Rig::new(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.caps(|c| c.switchover_ack = true);
    rig.start();
    rig.window(1_000_000); // threshold 3,000,000 B
    rig.dev.set(pending(0, 1_000_000, 0));
    let step = rig.step();
    assert!(step.exact);
    assert_eq!(rig.vmm.stops(), 1, "the exact query ran with the guest stopped");
    assert_eq!(step.action, Action::Switchover, "the guest was stopped: no ack needed");
    assert!(step.vm_stopped);
    assert_eq!(rig.vmm.resumes(), 0);
}

/// A VMM whose `vm_resume` lets another thread cancel the migration while the step is still
/// in flight (the migration thread holds the engine's serial lock).
struct CancelDuringResume {
    sess: std::sync::Mutex<Option<std::sync::Weak<Session>>>,
}

impl VmmHooks for CancelDuringResume {
    fn vm_stop(&self) -> i32 {
        0
    }
    fn vm_resume(&self) -> i32 {
        if let Some(s) = self.sess.lock().unwrap().take().and_then(|w| w.upgrade()) {
            std::thread::spawn(move || s.cancel(150).unwrap()).join().unwrap();
        }
        0
    }
    fn can_stop_vm(&self) -> bool {
        true
    }
    fn event(&self, _event_json: &str) {}
}

/// src/engine/mod.rs module docs and `swo_cancel`'s doc comment: a cancel during a
/// migration-thread call finishes "when it returns (it then fails with `SWO_ERR_BAD_STATE`:
/// the migration is no longer active)". A cancel that lands while the step resumes the guest
/// is finished by that step's `migration_call`, yet the step returns `Ok` with an action.
#[test]
fn a_step_during_which_the_migration_was_cancelled_fails_with_bad_state() {
    let sess = Arc::new(Session::new());
    let vmm = Arc::new(CancelDuringResume { sess: std::sync::Mutex::new(Some(Arc::downgrade(&sess))) });
    sess.set_vmm(Some(vmm)).unwrap();
    let dev = Device::default();
    dev.set(pending(0, 1 << 30, 0));
    sess.registry()
        .register("gpu", 0, HandlerFlags::EXACT_NEEDS_STOPPED_VM, Box::new(dev))
        .unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(10).unwrap();
    sess.record_transferred(Channel::Main, 1_000_000);
    assert!(sess.update_counters(100).unwrap());
    let r = sess.iteration_step(100);
    assert_eq!(sess.status(), MigrationStatus::Cancelled);
    assert_eq!(code(r), Code::BadState, "the step returned an action for a cancelled migration");
    assert_eq!(sess.snapshot(300).total_time_ms, 150, "frozen at the cancel's now_ms");
}

/// A VMM whose first `vm_resume` lets another thread `fail` the migration while the step is
/// in flight, and then reports that the resume failed.
struct FailDuringFailedResume {
    sess: std::sync::Mutex<Option<std::sync::Weak<Session>>>,
    resumes: AtomicU64,
}

impl VmmHooks for FailDuringFailedResume {
    fn vm_stop(&self) -> i32 {
        0
    }
    fn vm_resume(&self) -> i32 {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        match self.sess.lock().unwrap().take().and_then(|w| w.upgrade()) {
            Some(s) => {
                std::thread::spawn(move || s.fail(150, Some("link down")).unwrap()).join().unwrap();
                -5
            }
            None => 0,
        }
    }
    fn can_stop_vm(&self) -> bool {
        true
    }
    fn event(&self, _event_json: &str) {}
}

/// Finding 6 for `fail`, and finding 5 across the race: the step holds the stop record while
/// it resumes the guest, so the concurrent `fail` finds nothing to resume; the step's resume
/// fails. The step must still fail with BAD_STATE (the migration failed under it), and the
/// guest must not stay stopped: the end of the step tries the resume again.
#[test]
fn a_fail_during_a_failing_resume_still_gives_the_guest_back() {
    let sess = Arc::new(Session::new());
    let vmm = Arc::new(FailDuringFailedResume {
        sess: std::sync::Mutex::new(Some(Arc::downgrade(&sess))),
        resumes: AtomicU64::new(0),
    });
    sess.set_vmm(Some(vmm.clone())).unwrap();
    let dev = Device::default();
    dev.set(pending(0, 1 << 30, 0));
    sess.registry()
        .register("gpu", 0, HandlerFlags::EXACT_NEEDS_STOPPED_VM, Box::new(dev))
        .unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(10).unwrap();
    sess.record_transferred(Channel::Main, 1_000_000);
    assert!(sess.update_counters(100).unwrap());
    let e = sess.iteration_step(100).unwrap_err();
    assert_eq!(e.code, Code::BadState, "{}", e.message);
    assert!(e.message.contains("failed"), "{}", e.message);
    assert_eq!(sess.status(), MigrationStatus::Failed);
    assert_eq!(vmm.resumes.load(Ordering::SeqCst), 2, "the guest was not given back");
    assert_eq!(sess.snapshot(300).total_time_ms, 150);
}

/// Finding 2, for `cancel`: rejected calls with a far-future clock change nothing, and
/// `cancel` freezes `total-time` at its own `now_ms` (700 ms after a start at 0).
#[test]
fn cancel_freezes_total_time_at_its_own_clock_after_rejected_calls() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    assert_eq!(code(rig.sess.migration_start(9_000_000)), Code::BadState);
    assert_eq!(code(rig.sess.complete(9_000_000)), Code::BadState);
    rig.sess.cancel(700).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    assert_eq!(rig.sess.snapshot(800).total_time_ms, 700);
    let events = rig.vmm.events.lock().unwrap().clone();
    let cancelled = events
        .iter()
        .find(|e| e["event"] == "MIGRATION" && e["data"]["status"] == "cancelled")
        .expect("a MIGRATION cancelled event");
    assert_eq!(cancelled["timestamp"]["microseconds"], 700_000, "{cancelled}");
}

/// Finding 7: the `vm-stop-failed` warning, like `no-vmm-ops`, is emitted once per migration
/// (not at every pass whose `vm_stop` fails), and again in the next migration.
#[test]
fn vm_stop_failed_is_warned_once_per_migration() {
    let mut rig = Rig::new(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.vmm.stop_rc.store(-16, Ordering::SeqCst);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 5_000_000, 0)); // precopy 0: an exact query every pass
    for _ in 0..3 {
        assert!(rig.step().exact);
    }
    assert_eq!(rig.vmm.stops(), 3, "vm_stop is still tried at every exact query");
    assert_eq!(rig.vmm.events("DEVICE_SIZE_WARNING").len(), 1);
    rig.sess.cancel(rig.now).unwrap();
    rig.start();
    rig.window(1_000_000);
    assert!(rig.step().exact);
    let w = rig.vmm.events("DEVICE_SIZE_WARNING");
    assert_eq!(w.len(), 2, "a new migration warns again: {w:?}");
    assert_eq!((w[1]["kind"].as_str(), w[1]["errno"].as_i64()), (Some("vm-stop-failed"), Some(16)));
}

/// Finding 8: a `NO_POSTCOPY` handler registered after `postcopy_request` makes
/// `postcopy_start` refuse, so the step must not answer `START_POSTCOPY` while it is there: it
/// keeps iterating, and switches over as precopy would when the total fits.
#[test]
fn a_no_postcopy_handler_registered_after_the_request_keeps_the_step_in_precopy() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| c.postcopy_ram = true);
    rig.start();
    rig.window(1_000_000); // threshold 3,000,000 B
    rig.sess.postcopy_request().unwrap();
    let vfio = rig
        .sess
        .registry()
        .register("vfio", 0, HandlerFlags::NO_POSTCOPY, Box::new(Device::default()))
        .unwrap();
    // precopy + stopcopy = 100 fits the threshold; the 1 GiB postcopy bucket does not.
    rig.dev.set(pending(100, 0, 1 << 30));
    assert_eq!(rig.step().action, Action::Iterate);
    assert_eq!(code(rig.sess.postcopy_start(rig.now)), Code::Unsupported);
    // Without the postcopy bucket the total fits: a precopy switchover.
    rig.dev.set(pending(100, 0, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    // Once the handler is gone, postcopy is possible again.
    rig.sess.registry().unregister(vfio).unwrap();
    rig.dev.set(pending(100, 0, 1 << 30));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
}

/// Finding 5, in the step and in rollback: after a failed `vm_resume` the library still knows
/// it stopped the guest, so the next step that gives the guest back tries again, and a
/// rollback whose resume failed is retried by `fail`.
#[test]
fn a_failed_resume_is_retried_by_the_next_step_and_after_a_rollback_by_fail() {
    let sess = Arc::new(Session::new());
    let vmm = Arc::new(FlakyResumeVmm::default());
    sess.set_vmm(Some(vmm.clone())).unwrap();
    let mut caps = sess.capabilities();
    caps.switchover_rollback = true;
    sess.set_capabilities(caps).unwrap();
    let dev = Device::default();
    dev.set(pending(0, 1 << 30, 0)); // precopy 0: exact query; far above any threshold
    sess.registry()
        .register("gpu", 0, HandlerFlags::EXACT_NEEDS_STOPPED_VM, Box::new(dev.clone()))
        .unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(10).unwrap();
    sess.record_transferred(Channel::Main, 1_000_000);
    assert!(sess.update_counters(100).unwrap()); // threshold 3,000,000 B
    let counts = || (vmm.stops.load(Ordering::SeqCst), vmm.resumes.load(Ordering::SeqCst));

    vmm.fail_next_resume.store(true, Ordering::SeqCst);
    assert_eq!(code(sess.iteration_step(100)), Code::Io);
    assert_eq!(counts(), (1, 1));
    // The guest is still stopped: the next step sizes it without a second vm_stop and gives
    // it back again.
    let step = sess.iteration_step(110).unwrap();
    assert_eq!((step.action, step.vm_stopped), (Action::Iterate, false));
    assert_eq!(counts(), (1, 2));

    // Rollback: the step stops the guest and keeps it stopped for the switchover; the final
    // query overshoots, the rollback's resume fails.
    dev.set_exact(pending(0, 1_000_000, 0));
    let step = sess.iteration_step(120).unwrap();
    assert_eq!((step.action, step.vm_stopped), (Action::Switchover, true));
    assert_eq!(counts(), (2, 2));
    dev.set_exact(pending(0, 1 << 30, 0));
    vmm.fail_next_resume.store(true, Ordering::SeqCst);
    assert_eq!(code(sess.switchover_begin(130)), Code::Io);
    assert_eq!(sess.status(), MigrationStatus::Active);
    assert_eq!(counts(), (2, 3));
    sess.fail(140, Some("gave up")).unwrap();
    assert_eq!(counts(), (2, 4), "fail did not retry the rollback's resume");
}
