//! Exact sizing with the guest stopped (issue 3 item 6) and the switchover that can step back
//! (item 7), with counted vm_stop / vm_resume calls.
mod engine_support;
use engine_support::*;
use std::sync::atomic::Ordering;
use switchover::engine::Action;
use switchover::pending::QueryKind;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags};

fn started(flags: HandlerFlags) -> Rig {
    let mut rig = Rig::new(flags);
    rig.start();
    rig.window(1_000_000); // threshold 3,000,000 B
    rig
}

#[test]
fn exact_query_runs_with_the_guest_stopped_and_resumes_it_when_iterating() {
    let rig = started(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.dev.set(pending(0, 5_000_000, 0));
    for n in 1..=3 {
        let step = rig.step();
        assert_eq!((step.action, step.exact, step.vm_stopped), (Action::Iterate, true, false));
        assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (n, n));
    }
    assert_eq!(rig.dev.exact_while_stopped.load(Ordering::SeqCst), 3);
    assert!(!rig.dev.guest_stopped.load(Ordering::SeqCst));
}

#[test]
fn no_stop_when_no_exact_query_is_due_or_no_handler_needs_it() {
    let rig = started(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.dev.set(pending(5_000_000, 0, 0)); // fast total above threshold: no exact query
    assert!(!rig.step().exact);
    let plain = started(HandlerFlags::empty());
    plain.dev.set(pending(0, 5_000_000, 0));
    assert!(plain.step().exact);
    assert_eq!(rig.vmm.stops() + plain.vmm.stops(), 0);
}

#[test]
fn switchover_after_a_stopped_exact_query_keeps_the_guest_stopped_and_counts_downtime_from_the_stop() {
    let mut rig = started(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.dev.set(pending(0, 1_000_000, 0));
    rig.now = 200;
    let step = rig.step();
    assert_eq!((step.action, step.vm_stopped), (Action::Switchover, true));
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    let o = rig.sess.switchover_begin(250).unwrap();
    assert!(o.proceed);
    assert_eq!(rig.vmm.stops(), 1, "already stopped: no second vm_stop");
    rig.sess.complete(300).unwrap();
    assert_eq!(rig.sess.snapshot(300).downtime_ms, 100, "from the step's stop at 200");
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
}

#[test]
fn without_vm_stop_the_handler_is_queried_as_usual_and_one_warning_says_so() {
    let rig = started(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.vmm.can_stop.store(false, Ordering::SeqCst);
    rig.dev.set(pending(0, 5_000_000, 0));
    for _ in 0..3 {
        assert!(rig.step().exact);
    }
    assert_eq!(rig.vmm.stops(), 0);
    let warnings = rig.vmm.events("DEVICE_SIZE_WARNING");
    assert_eq!(warnings, [serde_json::json!({"kind": "no-vmm-ops", "devices": ["dev"]})]);
}

#[test]
fn a_failing_vm_stop_is_warned_about_and_the_query_still_runs() {
    let rig = started(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.vmm.stop_rc.store(-16, Ordering::SeqCst);
    rig.dev.set(pending(0, 5_000_000, 0));
    let step = rig.step();
    assert!(step.exact && !step.vm_stopped);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    let w = rig.vmm.events("DEVICE_SIZE_WARNING");
    assert_eq!(w.len(), 1);
    assert_eq!((w[0]["kind"].as_str(), w[0]["errno"].as_i64()), (Some("vm-stop-failed"), Some(16)));
}

#[test]
fn switchover_stops_the_guest_through_vm_stop() {
    let rig = started(HandlerFlags::empty());
    rig.dev.set(pending(0, 1_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    assert_eq!(rig.vmm.stops(), 0);
    assert!(rig.sess.switchover_begin(rig.now).unwrap().proceed);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    assert!(rig.sess.snapshot(rig.now).rate_limit_lifted);
}

#[test]
fn rollback_returns_to_active_and_resumes_the_guest_when_the_final_query_overshoots() {
    let rig = started(HandlerFlags::empty());
    rig.caps(|c| c.switchover_rollback = true);
    rig.dev.set(pending(0, 2_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    // The final query finds 3,300,001 B: more than 3,000,000 + 10 %.
    rig.dev.set_exact(pending(0, 3_300_001, 0));
    let o = rig.sess.switchover_begin(rig.now).unwrap();
    assert!(!o.proceed);
    assert_eq!(o.final_pending.total(), 3_300_001);
    assert_eq!(rig.sess.status(), MigrationStatus::Active);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));
    assert!(!rig.sess.snapshot(rig.now).rate_limit_lifted);
    let rb = rig.vmm.events("MIGRATION_SWITCHOVER_ROLLBACK");
    assert_eq!(rb.len(), 1);
    assert_eq!((rb[0]["remaining"].as_u64(), rb[0]["threshold"].as_u64()), (Some(3_300_001), Some(3_000_000)));
    assert_eq!(rb[0]["rollback-tolerance"], 10);
    assert_eq!(rig.vmm.statuses(), ["setup", "active", "device", "active"]);
    // The loop goes on; complete is refused until a switchover proceeds.
    assert_eq!(rig.sess.complete(rig.now).unwrap_err().code, Code::BadState);
    assert_eq!(rig.step().action, Action::Iterate);
}

#[test]
fn final_query_within_the_tolerance_proceeds() {
    let rig = started(HandlerFlags::empty());
    rig.caps(|c| c.switchover_rollback = true);
    rig.dev.set(pending(0, 2_000_000, 0));
    rig.step();
    rig.dev.set_exact(pending(0, 3_300_000, 0)); // exactly threshold + 10 %
    assert!(rig.sess.switchover_begin(rig.now).unwrap().proceed);
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    assert_eq!(rig.dev.queries().last(), Some(&QueryKind::Final));
    assert_eq!(rig.vmm.resumes(), 0);
}

#[test]
fn rollback_tolerance_is_a_parameter_and_the_capability_is_off_by_default() {
    let rig = started(HandlerFlags::empty());
    rig.dev.set(pending(0, 2_000_000, 0));
    rig.step();
    rig.dev.set_exact(pending(0, 30_000_000, 0));
    assert!(rig.sess.switchover_begin(rig.now).unwrap().proceed, "off: never steps back");

    let rig = started(HandlerFlags::empty());
    rig.caps(|c| c.switchover_rollback = true);
    rig.params(|p| p.rollback_tolerance_pct = 50);
    rig.dev.set(pending(0, 2_000_000, 0));
    rig.step();
    rig.dev.set_exact(pending(0, 4_400_000, 0)); // below 3,000,000 + 50 %
    assert!(rig.sess.switchover_begin(rig.now).unwrap().proceed);
}

#[test]
fn rollback_after_a_stopped_exact_query_resumes_the_guest_the_step_stopped() {
    let rig = started(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.caps(|c| c.switchover_rollback = true);
    rig.dev.set(pending(0, 2_000_000, 0));
    assert!(rig.step().vm_stopped);
    rig.dev.set_exact(pending(0, 9_000_000, 0));
    assert!(!rig.sess.switchover_begin(rig.now).unwrap().proceed);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));
    assert!(!rig.dev.guest_stopped.load(Ordering::SeqCst));
}

#[test]
fn failing_a_migration_resumes_a_guest_the_library_stopped() {
    let rig = started(HandlerFlags::empty());
    rig.dev.set(pending(0, 1_000_000, 0));
    rig.step();
    rig.sess.switchover_begin(rig.now).unwrap();
    rig.sess.fail(rig.now, Some("destination went away")).unwrap();
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));
    assert_eq!(rig.sess.status(), MigrationStatus::Failed);
}
