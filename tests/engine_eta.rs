//! The ETA the reports give (src/eta.rs module docs: `eta = (R − T) / (D × (1 − q))`, never
//! when the remaining does not fall or no bandwidth is known, 0 outside `active`), as the
//! engine's snapshot computes it from the session's figures.
mod engine_support;
use engine_support::*;
use switchover::engine::Action;
use switchover::HandlerFlags;

/// Threshold 3,000,000 B and window bandwidth 10,000,000 B/s (1,000,000 B in the first 100 ms
/// window, × 300 ms). One exact pass with R = 5,000,000 B: no trend yet (q = 0) and no drain
/// measured (D = the window bandwidth): (5e6 − 3e6) / 1e7 s = 200 ms.
#[test]
fn after_one_pass_the_eta_is_the_time_to_send_the_excess_once() {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 5_000_000, 0));
    assert_eq!(rig.step().action, Action::Iterate);
    assert_eq!(rig.sess.snapshot(100).eta_ms, 200);
}

/// The same figure pass after pass does not fall: never (`UINT64_MAX`), stalled or not.
#[test]
fn a_remaining_that_does_not_fall_has_no_eta() {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 5_000_000, 0));
    rig.step();
    rig.window(1_000_000);
    rig.step();
    assert_eq!(rig.sess.snapshot(rig.now).eta_ms, u64::MAX);
}

/// Outside `active` there is nothing to wait for: 0, also in the `device` of the switchover
/// and once completed; and a session that never migrated reports no time at all.
#[test]
fn outside_active_the_eta_is_zero() {
    let s = switchover::Session::new();
    let snap = s.snapshot(1234);
    assert_eq!((snap.eta_ms, snap.total_time_ms, snap.downtime_ms), (0, 0, 0));

    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 1000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    assert!(rig.sess.switchover_begin(100).unwrap().proceed);
    assert_eq!(rig.sess.snapshot(100).eta_ms, 0);
    rig.sess.complete(120).unwrap();
    assert_eq!(rig.sess.snapshot(120).eta_ms, 0);
}
