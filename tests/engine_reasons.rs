//! Why each step decided what it did (`Step.reason`, `SwoStep.reason`; README §Deadlines and
//! actions, "Reasons"), and the reason the reports give for the migration as it stands.
//! Threshold 3,000,000 B throughout: 1,000,000 B in the first 100 ms window are 80 Mbps =
//! 10,000,000 B/s, × 300 ms (`migration_update_counters`).
mod engine_support;
use engine_support::*;
use switchover::engine::{Action, Reason};
use switchover::HandlerFlags;

fn rig(flags: HandlerFlags) -> Rig {
    let mut rig = Rig::new(flags);
    rig.start();
    rig.window(1_000_000);
    rig
}

#[test]
fn a_fast_figure_above_the_threshold_is_above_threshold() {
    let rig = rig(HandlerFlags::NO_POSTCOPY);
    // Precopy bytes above the threshold: the fast query decides, no exact query.
    rig.dev.set(pending(5_000_000, 0, 0));
    let s = rig.step();
    assert_eq!((s.action, s.exact, s.reason), (Action::Iterate, false, Reason::AboveThreshold));
    assert_eq!(rig.sess.snapshot(100).reason, Reason::AboveThreshold);
}

#[test]
fn an_exact_figure_above_the_threshold_is_exact_above_threshold() {
    let rig = rig(HandlerFlags::NO_POSTCOPY);
    rig.dev.set(pending(0, 5_000_000, 0));
    let s = rig.step();
    assert_eq!((s.action, s.exact, s.reason), (Action::Iterate, true, Reason::ExactAboveThreshold));
}

#[test]
fn a_fitting_exact_figure_is_switchover_ready_and_then_switching_over() {
    let rig = rig(HandlerFlags::NO_POSTCOPY);
    rig.dev.set(pending(0, 3_000_000, 0));
    let s = rig.step();
    assert_eq!((s.action, s.reason), (Action::Switchover, Reason::SwitchoverReady));
    assert!(rig.sess.switchover_begin(100).unwrap().proceed);
    assert_eq!(rig.sess.snapshot(100).reason, Reason::SwitchingOver);
    rig.sess.complete(150).unwrap();
    assert_eq!(rig.sess.snapshot(150).reason, Reason::SwitchedOver);
}

#[test]
fn a_due_switchover_held_by_switchover_ack_is_waiting_for_ack() {
    let rig = rig(HandlerFlags::NO_POSTCOPY);
    rig.caps(|c| c.switchover_ack = true);
    rig.dev.set(pending(0, 1_000_000, 0));
    let s = rig.step();
    assert_eq!((s.action, s.reason), (Action::Wait, Reason::WaitingForAck));
}

#[test]
fn postcopy_reasons_from_ready_to_drained() {
    let rig = rig(HandlerFlags::empty());
    rig.caps(|c| c.postcopy_ram = true);
    rig.sess.postcopy_request().unwrap();
    rig.dev.set(pending(0, 1_000_000, 50_000_000));
    let s = rig.step();
    assert_eq!((s.action, s.reason), (Action::StartPostcopy, Reason::PostcopyReady));
    rig.sess.postcopy_start(100).unwrap();
    let s = rig.step();
    assert_eq!((s.action, s.reason), (Action::Iterate, Reason::PostcopyActive));
    rig.dev.set(pending(0, 0, 0));
    let s = rig.step();
    assert_eq!((s.action, s.reason), (Action::Complete, Reason::PostcopyDrained));
}

#[test]
fn cancelled_and_failed_migrations_say_so() {
    let rig = rig(HandlerFlags::NO_POSTCOPY);
    rig.sess.cancel(100).unwrap();
    assert_eq!(rig.sess.snapshot(100).reason, Reason::Cancelled);
    assert_eq!(rig.sess.snapshot(100).reason_text, "cancelled by the operator");
    rig.sess.migration_start(200).unwrap();
    assert_eq!(rig.sess.snapshot(200).reason, Reason::None);
    rig.sess.setup_done(210).unwrap();
    rig.sess.fail(300, Some("socket closed")).unwrap();
    assert_eq!(rig.sess.snapshot(300).reason, Reason::Failed);
    assert_eq!(rig.sess.snapshot(300).reason_text, "failed: socket closed");
}
