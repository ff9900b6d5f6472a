//! Figures that change from pass to pass (issue 14 item 6). Every other multi-pass test keeps
//! the same pending size on each pass, so a report built from the previous pass's last-sync
//! figure (or a `MIGRATION_STALL` event computed before this pass's last-sync update) passed
//! them all. Here the vGPU's stop-copy state grows by 50,000,000 B each pass, and every
//! figure is checked against the pass that produced it.
//!
//! docs/qemu-model.md §Expected downtime: `trunc(last_sync_bytes / switchover_bw * 1000)`
//! once the pass count is past its first pass (`migration_update_counters()` in QEMU), with
//! `last_sync_bytes` the total of the exact query of the latest pass. With
//! `avail-switchover-bandwidth` = 1,000,000,000 B/s, S bytes take S / 1,000,000 ms: pass k
//! reports S_k = 2,000,123,456 + 50,000,000·k B, so its expected downtime is 2000 + 50·k ms
//! (the 123,456 B are 0.12 ms, truncated away), and no pass beats the best remaining.
mod engine_support;
use engine_support::*;
use switchover::engine::Action;
use switchover::HandlerFlags;

const BW: u64 = 1_000_000_000;

fn stopcopy(k: u64) -> u64 {
    2_000_123_456 + 50_000_000 * k
}

fn rig(limit_ms: u64) -> Rig {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.params(|p| {
        p.avail_switchover_bandwidth = BW;
        p.downtime_limit_ms = limit_ms;
    });
    rig.dev.set(pending(0, stopcopy(1), 0));
    rig.start();
    rig
}

/// Pass k: the device now holds S_k; one 100 ms window with idle RAM, then the step.
fn pass(rig: &mut Rig, k: u64) -> Action {
    rig.dev.set(pending(0, stopcopy(k), 0));
    rig.window(0);
    rig.step().action
}

#[test]
fn every_report_uses_the_last_sync_of_the_latest_pass() {
    let mut rig = rig(1000);
    for k in 1..=4 {
        assert_eq!(pass(&mut rig, k), Action::Iterate, "pass {k}");
        let s = rig.sess.snapshot(rig.now);
        assert_eq!(s.last_sync_bytes, stopcopy(k), "pass {k}");
        assert_eq!(s.remaining, stopcopy(k), "pass {k}");
        let qm: serde_json::Value = serde_json::from_str(&rig.sess.query_migrate_json(rig.now)).unwrap();
        assert_eq!(qm["remaining"], stopcopy(k), "pass {k}");
        assert_eq!(qm["x-switchover"]["last-sync-bytes"], stopcopy(k), "pass {k}");
        if k >= 3 {
            // Past the first pass under either count of the setup sync.
            let expected = 2000 + 50 * k as i64;
            assert_eq!(s.expected_downtime_ms, expected, "pass {k}");
            assert_eq!(qm["expected-downtime"], expected, "pass {k}");
        }
    }
    // Pass 4 explicitly: 2,200,123,456 B / 1e9 B/s = 2200.12 ms -> 2200 (pass 3 would be 2150).
    assert_eq!(rig.sess.snapshot(rig.now).expected_downtime_ms, 2200);
}

#[test]
fn the_stall_event_carries_the_expected_downtime_of_the_pass_that_stalled() {
    let mut rig = rig(1000);
    // Pass 1 sets the best remaining (S_1); passes 2..=6 are larger: no progress; the 5th of
    // them (pass 6, stall-passes 5) is the stall.
    for k in 1..=6 {
        assert_eq!(pass(&mut rig, k), Action::Iterate, "pass {k}");
    }
    let stalls = rig.vmm.events("MIGRATION_STALL");
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    let e = &stalls[0];
    assert_eq!(e["passes-since-progress"], 5);
    assert_eq!(e["best-remaining"], stopcopy(1));
    assert_eq!(e["remaining"], stopcopy(6));
    // S_6 = 2,300,123,456 B -> 2300 ms (S_5 would give 2250).
    assert_eq!(e["expected-downtime"], 2300);
    // docs/design.md §Beyond QEMU: expected downtime + 10 % headroom, rounded up:
    // 2300 x 110 / 100 = 2530 exactly.
    assert_eq!(e["recommended-downtime"], 2530);
    assert_eq!(e["downtime-limit"], 1000);
    let s = rig.sess.snapshot(rig.now);
    assert!(s.stalled);
    assert_eq!(s.expected_downtime_ms, 2300);
    assert_eq!(s.recommended_downtime_ms, 2530);
    // One more pass: the advice follows the new figure, 2350 ms -> 2585 ms.
    assert_eq!(pass(&mut rig, 7), Action::Iterate);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.expected_downtime_ms, 2350);
    assert_eq!(s.recommended_downtime_ms, 2585);
}

#[test]
fn the_automatic_downtime_adjustment_uses_the_pass_that_stalled() {
    let mut rig = rig(1000);
    rig.params(|p| p.auto_downtime_max_ms = 3000);
    for k in 1..=6 {
        assert_eq!(pass(&mut rig, k), Action::Iterate, "pass {k}");
    }
    // The stall at pass 6 raises the limit to 2530 ms (from S_6), not 2475 (from S_5).
    let adjusted = rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED");
    assert_eq!(adjusted.len(), 1, "{adjusted:?}");
    assert_eq!(adjusted[0]["old-downtime-limit"], 1000);
    assert_eq!(adjusted[0]["downtime-limit"], 2530);
    assert_eq!(rig.sess.params().downtime_limit_ms, 2530);
}

/// Pass k with 10,000,000 B sent in its 100 ms window: a precopy rate p of 100,000,000 B/s.
fn pass_sending(rig: &mut Rig, k: u64) -> Action {
    rig.dev.set(pending(0, stopcopy(k), 0));
    rig.window(10_000_000);
    rig.step().action
}

#[test]
fn with_a_guest_dirty_rate_the_advice_is_round_aware() {
    // docs/design.md §Beyond QEMU (issue 12): a limit raised at a sync converges when the
    // guest's writes of the shortened round, r (D − T) / p, fit in the T still unsent:
    // T ≥ r D / (p + r). In ms: the expected downtime's byte part × r / (p + r), + headroom.
    // Here p = 10,000,000 B per 100 ms = 1e8 B/s; the expected downtime at the stall (pass 6)
    // is 2300 ms as above (avail-switchover-bandwidth 1e9 B/s).
    let mut rig = rig(1000);
    rig.params(|p| p.guest_dirty_rate = 300_000_000);
    for k in 1..=6 {
        assert_eq!(pass_sending(&mut rig, k), Action::Iterate, "pass {k}");
    }
    // r = 3e8: 2300 × 3e8 / 4e8 = 1725 ms, × 1.1 = 1897.5 → 1898 ms (plain: 2530).
    let stalls = rig.vmm.events("MIGRATION_STALL");
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert_eq!(stalls[0]["expected-downtime"], 2300);
    assert_eq!(stalls[0]["recommended-downtime"], 1898);
    assert_eq!(rig.sess.snapshot(rig.now).recommended_downtime_ms, 1898);
    // A measured rate below the precopy rate counts as p (the rate the syncs show on a
    // plateau is at least p): 2300 × 1/2 = 1150, × 1.1 = 1265 ms.
    rig.params(|p| p.guest_dirty_rate = 50_000_000);
    assert_eq!(rig.sess.snapshot(rig.now).recommended_downtime_ms, 1265);
    // The round-aware figure at or below the current limit: that limit is in force and the
    // migration still stalls, so the measured rate was too low: the plain advice, 2530 ms.
    rig.params(|p| p.downtime_limit_ms = 1265);
    assert_eq!(rig.sess.snapshot(rig.now).recommended_downtime_ms, 2530);
    // With downtime-fixed 300 ms (expected 2300 + 300 = 2600): only the byte part scales,
    // 2300 × 1/2 = 1150 + 300 = 1450, × 1.1 = 1595 ms.
    rig.params(|p| {
        p.downtime_limit_ms = 1000;
        p.downtime_fixed_ms = 300;
    });
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.expected_downtime_ms, 2600);
    assert_eq!(s.recommended_downtime_ms, 1595);
    // No guest-dirty-rate: the plain advice, 2600 × 1.1 = 2860 ms.
    rig.params(|p| p.guest_dirty_rate = 0);
    assert_eq!(rig.sess.snapshot(rig.now).recommended_downtime_ms, 2860);
}

#[test]
fn once_the_limit_was_raised_after_the_first_stall_the_advice_is_the_plain_one() {
    // As above: stall at pass 6 with the limit at 1000 ms, round-aware advice 1898 ms. The
    // limit raised to it and the migration still stalled at pass 7 (2350 ms expected): the
    // plain advice, 2350 × 1.1 = 2585 ms, not the round-aware 2350 × 0.75 × 1.1 = 1938.8.
    let mut rig = rig(1000);
    rig.params(|p| p.guest_dirty_rate = 300_000_000);
    for k in 1..=6 {
        assert_eq!(pass_sending(&mut rig, k), Action::Iterate, "pass {k}");
    }
    assert_eq!(rig.sess.snapshot(rig.now).recommended_downtime_ms, 1898);
    rig.params(|p| p.downtime_limit_ms = 1898);
    assert_eq!(pass_sending(&mut rig, 7), Action::Iterate);
    let s = rig.sess.snapshot(rig.now);
    assert!(s.stalled);
    assert_eq!(s.expected_downtime_ms, 2350);
    assert_eq!(s.recommended_downtime_ms, 2585);
    // Still the one stall (reported once), now with the plain advice.
    assert_eq!(rig.vmm.events("MIGRATION_STALL").len(), 1);
}
