//! Predicted vs measured switchover (README §Deadlines and actions, "Predicted vs measured";
//! `reuse-switchover-bandwidth`): the expected downtime when the switchover began, the pause
//! measured from the stop to completion, the bytes sent in between and their rate.
//!
//! Hand-worked figures: 1,000,000 B in the first window (0 → 100 ms) are 80 Mbps, a switchover
//! bandwidth of 80 / 8 × 1e6 = 10,000,000 B/s (`migration_get_switchover_bw`), a threshold of
//! 10,000 B/ms × 300 ms = 3,000,000 B (`migration_update_counters`). The device's 2,000,000 B
//! fit it: the step decides the switchover at 100 ms, expecting 2e6 / 1e7 × 1000 = 200 ms
//! (`migration_downtime_calc_expected`). The guest stops at 100 ms; 2,000,000 B more go out and
//! `complete` comes at 350 ms: downtime 250 ms, switchover bandwidth 2e6 B / 0.25 s =
//! 8,000,000 B/s.
mod engine_support;
use engine_support::*;
use switchover::counters::Channel;
use switchover::engine::{Action, Reason};
use switchover::HandlerFlags;

fn switched_over(reuse: bool) -> Rig {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.params(|p| p.reuse_switchover_bandwidth = reuse);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 2_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    let out = rig.sess.switchover_begin(100).unwrap();
    assert!(out.proceed);
    rig.sess.record_transferred(Channel::Main, 2_000_000);
    rig.sess.complete(350).unwrap();
    rig
}

#[test]
fn completion_reports_the_predicted_and_the_measured_switchover() {
    let rig = switched_over(false);
    let s = rig.sess.snapshot(400);
    assert_eq!(s.downtime_ms, 250);
    assert_eq!(s.predicted_downtime_ms, Some(200));
    assert_eq!(s.switchover_bytes, Some(2_000_000));
    assert_eq!(s.measured_switchover_bw, Some(8_000_000.0));
    assert_eq!(s.reason, Reason::SwitchedOver);
    // 8,000,000 B/s = 7.63 MiB/s (`size_to_str`, `%0.3g`).
    assert_eq!(
        s.reason_text,
        "switched over; downtime 250 ms, predicted 200 ms, switchover bandwidth 7.63 MiB/s"
    );
    // Not carried over unless asked for.
    assert_eq!(rig.sess.params().avail_switchover_bandwidth, 0);
}

#[test]
fn reuse_switchover_bandwidth_carries_the_measured_rate_to_the_next_migration() {
    let rig = switched_over(true);
    assert_eq!(rig.sess.params().avail_switchover_bandwidth, 8_000_000);
    // The next migration's threshold comes from it: 8,000 B/ms × 300 ms = 2,400,000 B, even
    // with a window that measured 80 Mbps.
    rig.sess.migration_start(1000).unwrap();
    rig.sess.setup_done(1010).unwrap();
    rig.sess.record_transferred(Channel::Main, 1_000_000);
    assert!(rig.sess.update_counters(1100).unwrap());
    assert_eq!(rig.sess.snapshot(1100).threshold_bytes, 2_400_000);
}

/// While the guest is stopped for the switchover the downtime is not over: nothing measured
/// yet, and the prediction is kept for the completion.
#[test]
fn nothing_is_measured_before_the_downtime_ends() {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 2_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    assert!(rig.sess.switchover_begin(100).unwrap().proceed);
    let s = rig.sess.snapshot(150);
    assert_eq!(s.downtime_ms, 50);
    assert_eq!(s.predicted_downtime_ms, Some(200));
    assert_eq!(s.switchover_bytes, None);
    assert_eq!(s.measured_switchover_bw, None);
    assert_eq!(s.reason_text, "switching over; guest stopped 50 ms");
}
