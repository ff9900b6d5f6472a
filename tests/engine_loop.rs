//! One loop pass (QEMU-BEHAVIOUR.md §One loop pass) and the lifecycle (§Status and
//! transitions), through the Rust core.
mod engine_support;
use engine_support::*;
use std::sync::{Arc, Barrier, Mutex, Weak};
use switchover::counters::Channel;
use switchover::engine::Action;
use switchover::pending::QueryKind;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags, Pending, PendingSource, Session};

/// A started migration whose first window measured 1,000,000 B in 100 ms: threshold
/// 3,000,000 B at the default 300 ms limit.
fn rig_at_threshold_3mb() -> Rig {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.window(1_000_000);
    assert_eq!(rig.sess.snapshot(rig.now).threshold_bytes, 3_000_000);
    rig
}

#[test]
fn total_equal_to_threshold_switches_over() {
    let rig = rig_at_threshold_3mb();
    rig.dev.set(pending(1_000_000, 2_000_000, 0));
    let step = rig.step();
    assert_eq!(step.action, Action::Switchover);
    assert!(step.exact);
    // QEMU's `migrate_init` sets dirty-sync-count to 1: the first exact pass is pass 2.
    assert_eq!((step.threshold, step.pass, step.pending.total()), (3_000_000, 2, 3_000_000));
    assert_eq!(rig.dev.queries(), [QueryKind::Fast, QueryKind::Exact]);
}

#[test]
fn one_byte_over_the_threshold_keeps_iterating() {
    let rig = rig_at_threshold_3mb();
    rig.dev.set_fast(pending(1_000_000, 2_000_000, 0));
    rig.dev.set_exact(pending(1_000_001, 2_000_000, 0));
    let step = rig.step();
    assert_eq!(step.action, Action::Iterate);
    assert!(step.exact, "the fast figure fit, so the exact query ran");
    assert_eq!(step.pending.total(), 3_000_001, "the decision used the exact figures");
}

#[test]
fn precopy_zero_with_large_stopcopy_forces_an_exact_query_but_no_switchover() {
    let rig = rig_at_threshold_3mb();
    rig.dev.set(pending(0, 10_000_000_000, 0));
    let step = rig.step();
    assert_eq!(step.action, Action::Iterate);
    assert!(step.exact);
    assert_eq!(step.pass, 2);
    assert_eq!(rig.sess.snapshot(rig.now).last_sync_bytes, 10_000_000_000);
    assert_eq!(rig.vmm.events("MIGRATION_PASS"), [serde_json::json!({"pass": 2})]);
}

#[test]
fn fast_total_above_threshold_with_precopy_runs_no_exact_query() {
    let rig = rig_at_threshold_3mb();
    rig.dev.set(pending(5_000_000, 0, 0));
    let step = rig.step();
    assert_eq!((step.action, step.exact, step.pass), (Action::Iterate, false, 1));
    assert_eq!(rig.dev.queries(), [QueryKind::Fast]);
    assert!(rig.vmm.events("MIGRATION_PASS").is_empty());
}

#[test]
fn fast_zero_with_threshold_zero_never_completes_on_the_fast_figure() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    // No window closed: threshold 0. The fast query says 0; the device's stop-copy state
    // only shows in the exact query (the old downtime violation).
    rig.dev.set_fast(pending(0, 0, 0));
    rig.dev.set_exact(pending(0, 2_000_000_000, 0));
    let step = rig.step();
    assert_eq!(step.threshold, 0);
    assert_eq!(step.action, Action::Iterate);
    assert!(step.exact);
    assert_eq!(step.pending.stopcopy, 2_000_000_000);
    // When the exact query agrees that nothing is left, 0 <= 0 switches over.
    rig.dev.set_exact(pending(0, 0, 0));
    assert_eq!(rig.step().action, Action::Switchover);
}

#[test]
fn postcopy_start_needs_precopy_plus_stopcopy_within_threshold() {
    let rig = rig_at_threshold_3mb();
    rig.caps(|c| c.postcopy_ram = true);
    rig.sess.postcopy_request().unwrap();
    // 2,000,000 + 1,500,000 > 3,000,000: not yet, whatever the postcopy bucket holds.
    rig.dev.set(pending(2_000_000, 1_500_000, 8 << 30));
    assert_eq!(rig.step().action, Action::Iterate);
    // 2,000,000 + 1,000,000 <= 3,000,000: postcopy starts (before any completion check).
    rig.dev.set(pending(2_000_000, 1_000_000, 8 << 30));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now + 5).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
    rig.sess.record_transferred(Channel::Main, 4096);
    assert_eq!(rig.sess.snapshot(rig.now + 6).postcopy_bytes, 4096);
    // In postcopy: fast queries only, complete on a fast total of 0.
    rig.dev.set_fast(pending(0, 0, 4096));
    rig.dev.set_exact(pending(0, 0, 0));
    let step = rig.step();
    assert_eq!((step.action, step.exact), (Action::Iterate, false));
    rig.dev.set_fast(pending(0, 0, 0));
    assert_eq!(rig.step().action, Action::Complete);
    rig.sess.complete(rig.now + 10).unwrap();
    assert_eq!(
        rig.vmm.statuses(),
        ["setup", "active", "device", "postcopy-active", "completed"]
    );
}

#[test]
fn postcopy_request_needs_the_capability_and_a_started_migration() {
    let rig = Rig::new(HandlerFlags::empty());
    let e = rig.sess.postcopy_request().unwrap_err();
    assert_eq!(e.code, Code::BadState);
    assert_eq!(e.message, "Enable postcopy with migrate_set_capability before the start of migration");
    rig.caps(|c| c.postcopy_ram = true);
    let e = rig.sess.postcopy_request().unwrap_err();
    assert_eq!(e.message, "Postcopy must be started after migration has been started");
}

#[test]
fn postcopy_is_refused_while_a_no_postcopy_device_is_registered() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| c.postcopy_ram = true);
    let vgpu = rig
        .sess
        .registry()
        .register("0000:3b:00.0/vfio", 0, HandlerFlags::NO_POSTCOPY, Box::new(Device::default()))
        .unwrap();
    rig.start();
    let e = rig.sess.postcopy_request().unwrap_err();
    assert_eq!(e.code, Code::Unsupported);
    assert!(e.message.contains("0000:3b:00.0/vfio"), "{}", e.message);
    rig.sess.registry().unregister(vgpu).unwrap();
    rig.sess.postcopy_request().unwrap();
}

#[test]
fn switchover_ack_holds_a_due_switchover_until_acked() {
    let rig = rig_at_threshold_3mb();
    rig.caps(|c| c.switchover_ack = true);
    rig.dev.set(pending(0, 1_000_000, 0));
    assert_eq!(rig.step().action, Action::Wait);
    assert_eq!(rig.step().action, Action::Wait);
    rig.sess.set_switchover_acked(true);
    assert_eq!(rig.step().action, Action::Switchover);
}

#[test]
fn switchover_ack_is_not_needed_once_the_guest_is_stopped() {
    let rig = rig_at_threshold_3mb();
    rig.caps(|c| c.switchover_ack = true);
    rig.dev.set(pending(0, 1_000_000, 0));
    rig.sess.set_vm_running(false);
    assert_eq!(rig.step().action, Action::Switchover);
}

#[test]
fn switchover_ack_does_not_hold_a_migration_that_cannot_switch_over_anyway() {
    let rig = rig_at_threshold_3mb();
    rig.caps(|c| c.switchover_ack = true);
    rig.dev.set(pending(0, 5_000_000, 0));
    assert_eq!(rig.step().action, Action::Iterate);
}

#[test]
fn pause_before_switchover_waits_until_migrate_continue() {
    let rig = rig_at_threshold_3mb();
    rig.caps(|c| c.pause_before_switchover = true);
    rig.dev.set(pending(0, 1_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    let o = rig.sess.switchover_begin(rig.now).unwrap();
    assert!(!o.proceed);
    assert_eq!(o.final_pending, Pending::default());
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    // Still paused: nothing changes, no final query.
    assert!(!rig.sess.switchover_begin(rig.now + 1).unwrap().proceed);
    assert!(!rig.dev.queries().contains(&QueryKind::Final));
    // The monitor names the wrong state: QEMU's message names the current one.
    let e = rig.sess.migrate_continue(MigrationStatus::Active).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (Code::BadState, "Migration not in expected state: pre-switchover"));
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    let o = rig.sess.switchover_begin(rig.now + 2).unwrap();
    assert!(o.proceed);
    assert_eq!(o.final_pending.stopcopy, 1_000_000);
    assert_eq!(rig.dev.queries().last(), Some(&QueryKind::Final));
    rig.sess.complete(rig.now + 3).unwrap();
    assert_eq!(
        rig.vmm.statuses(),
        ["setup", "active", "pre-switchover", "device", "completed"]
    );
}

#[test]
fn completion_freezes_times_downtime_and_mbps() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.dev.set(pending(0, 0, 0));
    rig.window(125_000_000);
    rig.step();
    rig.sess.switchover_begin(900).unwrap();
    assert_eq!(rig.sess.snapshot(950).downtime_ms, 50, "downtime so far while in device");
    rig.sess.complete(1010).unwrap();
    let s = rig.sess.snapshot(99_999);
    assert_eq!((s.total_time_ms, s.setup_time_ms, s.downtime_ms), (1010, 10, 110));
    // 125,000,000 B * 8 / (1010 - 10) ms / 1000 = 1000 Mbps.
    assert_eq!(s.mbps, 1000.0);
    assert!(!s.has_remaining);
}

#[test]
fn without_events_capability_no_migration_events_go_out() {
    let rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| c.events = false);
    rig.sess.migration_start(0).unwrap();
    rig.sess.setup_done(1).unwrap();
    rig.dev.set(pending(0, 5, 0));
    rig.sess.iteration_step(2).unwrap();
    assert!(rig.vmm.events("MIGRATION").is_empty());
    assert!(rig.vmm.events("MIGRATION_PASS").is_empty());
}

fn code<T: std::fmt::Debug>(r: switchover::Result<T>) -> Code {
    r.unwrap_err().code
}

#[test]
fn invalid_transitions_fail_with_bad_state_and_leave_the_status_unchanged() {
    let rig = Rig::new(HandlerFlags::empty());
    let s = &rig.sess;
    let check = |expected: MigrationStatus| {
        let calls: Vec<(&str, Code)> = match expected {
            MigrationStatus::None => vec![
                ("setup_done", code(s.setup_done(1))),
                ("step", code(s.iteration_step(1))),
                ("switchover_begin", code(s.switchover_begin(1))),
                ("complete", code(s.complete(1))),
                ("cancel", code(s.cancel(1))),
                ("fail", code(s.fail(1, None))),
                ("postcopy_start", code(s.postcopy_start(1))),
                ("continue", code(s.migrate_continue(MigrationStatus::PreSwitchover))),
            ],
            MigrationStatus::Setup => vec![
                ("migration_start", code(s.migration_start(1))),
                ("step", code(s.iteration_step(1))),
                ("switchover_begin", code(s.switchover_begin(1))),
                ("complete", code(s.complete(1))),
                ("continue", code(s.migrate_continue(MigrationStatus::PreSwitchover))),
            ],
            MigrationStatus::Active => vec![
                ("migration_start", code(s.migration_start(1))),
                ("setup_done", code(s.setup_done(1))),
                ("complete", code(s.complete(1))),
                ("postcopy_start", code(s.postcopy_start(1))),
                ("continue", code(s.migrate_continue(MigrationStatus::PreSwitchover))),
            ],
            MigrationStatus::Device => vec![
                ("step", code(s.iteration_step(1))),
                ("switchover_begin", code(s.switchover_begin(1))),
                ("setup_done", code(s.setup_done(1))),
                ("migration_start", code(s.migration_start(1))),
            ],
            _ => vec![
                ("step", code(s.iteration_step(1))),
                ("switchover_begin", code(s.switchover_begin(1))),
                ("complete", code(s.complete(1))),
                ("cancel", code(s.cancel(1))),
                ("fail", code(s.fail(1, None))),
                ("setup_done", code(s.setup_done(1))),
            ],
        };
        for (name, c) in calls {
            assert_eq!(c, Code::BadState, "{name} in {expected:?}");
            assert_eq!(s.status(), expected, "{name} changed the status");
        }
    };
    check(MigrationStatus::None);
    let e = s.setup_done(1).unwrap_err();
    assert!(e.message.contains("'none'"), "the message names the state: {}", e.message);
    s.migration_start(0).unwrap();
    check(MigrationStatus::Setup);
    s.setup_done(1).unwrap();
    check(MigrationStatus::Active);
    s.switchover_begin(2).unwrap();
    check(MigrationStatus::Device);
    s.complete(3).unwrap();
    check(MigrationStatus::Completed);
    s.migration_start(10).unwrap();
    s.cancel(11).unwrap();
    check(MigrationStatus::Cancelled);
    s.migration_start(20).unwrap();
    s.fail(21, Some("link down")).unwrap();
    check(MigrationStatus::Failed);
    assert_eq!(s.snapshot(22).error_desc.as_deref(), Some("link down"));
}

#[test]
fn cancel_with_nothing_in_flight_reaches_cancelled_at_once_and_resumes_a_stopped_guest() {
    let mut rig = Rig::new(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 1_000_000, 0));
    let step = rig.step();
    assert_eq!((step.action, step.vm_stopped), (Action::Switchover, true));
    rig.sess.cancel(rig.now).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));
    assert_eq!(rig.vmm.statuses(), ["setup", "active", "cancelling", "cancelled"]);
}

/// A device whose fast query blocks until the test lets it go.
struct Blocking {
    entered: Arc<Barrier>,
    release: Arc<Barrier>,
}

impl PendingSource for Blocking {
    fn save_query_pending(&self, p: &mut Pending, exact: bool, _final: bool) {
        if !exact {
            self.entered.wait();
            self.release.wait();
        }
        p.precopy += 1 << 30;
    }
}

#[test]
fn cancel_during_a_step_finishes_when_the_step_returns_and_reports_stay_available() {
    let sess = Arc::new(Session::new());
    let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    sess.registry()
        .register("slow", 0, HandlerFlags::empty(), Box::new(Blocking { entered: entered.clone(), release: release.clone() }))
        .unwrap();
    let other = sess.registry().register("other", 0, HandlerFlags::empty(), Box::new(Device::default())).unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(1).unwrap();
    let stepper = {
        let sess = sess.clone();
        std::thread::spawn(move || sess.iteration_step(2).map(|s| s.action))
    };
    entered.wait();
    // While the handler runs: reports, unregistering another handler and monitor calls do
    // not wait for it.
    assert_eq!(sess.snapshot(3).status, MigrationStatus::Active);
    sess.registry().unregister(other).unwrap();
    sess.cancel(3).unwrap();
    assert_eq!(sess.status(), MigrationStatus::Cancelling);
    assert_eq!(sess.snapshot(3).status, MigrationStatus::Cancelling);
    release.wait();
    let r = stepper.join().unwrap();
    assert_eq!(r.unwrap_err().code, Code::BadState);
    assert_eq!(sess.status(), MigrationStatus::Cancelled);
}

/// A device that calls back into the session from its callback.
struct Reentrant {
    sess: Mutex<Weak<Session>>,
    seen: Arc<Mutex<Vec<Code>>>,
}

impl PendingSource for Reentrant {
    fn save_query_pending(&self, _p: &mut Pending, _exact: bool, _final: bool) {
        let Some(sess) = self.sess.lock().unwrap().upgrade() else { return };
        let mut seen = self.seen.lock().unwrap();
        seen.push(code(sess.iteration_step(5)));
        seen.push(code(sess.switchover_begin(5)));
        seen.push(code(sess.cancel(5)));
        // Reports work from inside a callback: they never wait for one.
        assert_eq!(sess.snapshot(5).status, MigrationStatus::Active);
    }
}

#[test]
fn lifecycle_calls_from_a_handler_callback_are_reentrant_errors() {
    let sess = Arc::new(Session::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    sess.registry()
        .register("re", 0, HandlerFlags::empty(), Box::new(Reentrant { sess: Mutex::new(Arc::downgrade(&sess)), seen: seen.clone() }))
        .unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(1).unwrap();
    sess.iteration_step(2).unwrap();
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|&c| c == Code::Reentrant), "{seen:?}");
    assert_eq!(sess.status(), MigrationStatus::Active);
}
