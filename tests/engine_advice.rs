//! The downtime advice at its edges (src/engine/snapshot.rs `advice_for`, docs/design.md
//! §Beyond QEMU): the largest limit QEMU accepts, `auto-downtime-max` met exactly, and an
//! expected downtime that is not known.
//!
//! With `avail-switchover-bandwidth` 1,000,000 B/s every 1,000 B of the last exact pass are
//! 1 ms of expected downtime (`migration_downtime_calc_expected`); with `downtime-headroom` 0
//! the advice is the expected downtime itself. Stall: the same figure on every pass, so the
//! 6th exact pass has 5 passes without progress (`stall-passes` 5).
mod engine_support;
use engine_support::*;
use switchover::engine::Action;
use switchover::HandlerFlags;

/// Six steps, one 100 ms window each, the device holding `stopcopy` bytes.
fn stalled(stopcopy: u64, f: impl FnOnce(&mut switchover::params::Params)) -> Rig {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.params(|p| {
        p.avail_switchover_bandwidth = 1_000_000;
        p.downtime_limit_ms = 300;
        p.downtime_headroom_pct = 0;
        f(p);
    });
    rig.dev.set(pending(0, stopcopy, 0));
    rig.start();
    for _ in 0..6 {
        rig.window(0);
        assert_eq!(rig.step().action, Action::Iterate);
    }
    assert!(rig.sess.snapshot(rig.now).stalled);
    rig
}

/// QEMU's `migrate_params_check`: `downtime-limit` must be between 0 and 2,000,000 ms. An
/// advice of exactly 2,000,000 ms can be applied; 2,000,001 ms cannot, so none is given and
/// it is beyond every ceiling.
#[test]
fn the_largest_advice_is_the_largest_downtime_limit() {
    let rig = stalled(2_000_000_000, |_| {});
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.expected_downtime_ms, 2_000_000);
    assert_eq!((s.recommended_downtime_ms, s.beyond_max), (2_000_000, false));

    let rig = stalled(2_000_001_000, |_| {});
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.expected_downtime_ms, 2_000_001);
    assert_eq!((s.recommended_downtime_ms, s.beyond_max), (0, true));
}

/// An advice equal to `auto-downtime-max` is within it: the limit is raised to it. Above it
/// is beyond it: flagged, nothing changes.
#[test]
fn auto_downtime_max_is_an_inclusive_ceiling() {
    let rig = stalled(1_000_000, |p| p.auto_downtime_max_ms = 1000);
    assert_eq!(rig.sess.params().downtime_limit_ms, 1000);
    // Raised: the expected 1000 ms now fit the limit, so no further change is advised.
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.recommended_downtime_ms, s.beyond_max), (0, false));
    let adjusted = rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED");
    assert_eq!(adjusted.len(), 1);
    assert_eq!(adjusted[0]["expected-downtime"], 1000);

    // 1,002,000 B are 1002 ms (1,001,000 B would be 1.001 s × 1000 = 1000.9999... ms, which
    // QEMU's order of operations truncates to 1000).
    let rig = stalled(1_002_000, |p| p.auto_downtime_max_ms = 1000);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.recommended_downtime_ms, s.beyond_max), (1002, true));
    assert_eq!(rig.sess.params().downtime_limit_ms, 300);
    assert!(rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED").is_empty());
}

/// No bandwidth at all (no `avail-switchover-bandwidth`, no byte sent): the expected downtime
/// is unknown (`INT64_MAX`, QEMU's division by 0), so no limit can be advised, and with
/// `auto-downtime-max` set that is beyond it; without the ceiling nothing is flagged.
#[test]
fn an_unknown_expected_downtime_gives_no_advice_and_is_beyond_the_ceiling() {
    let rig = stalled(1_000_000, |p| {
        p.avail_switchover_bandwidth = 0;
        p.auto_downtime_max_ms = 5000;
    });
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.expected_downtime_ms, i64::MAX);
    assert_eq!((s.recommended_downtime_ms, s.beyond_max), (0, true));
    assert_eq!(rig.sess.params().downtime_limit_ms, 300);

    let rig = stalled(1_000_000, |p| p.avail_switchover_bandwidth = 0);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.recommended_downtime_ms, s.beyond_max), (0, false));
}
