//! The seed's vGPU story (QEMU-BEHAVIOUR.md §Expected downtime), stall detection and downtime
//! advice, through the Rust core. The vGPU reports 2,050,000,000 B of stop-copy state
//! (≈1.91 GiB); RAM is idle; avail-switchover-bandwidth is 1 GiB/s (1,073,741,824 B/s), so the
//! expected downtime is trunc(2,050,000,000 × 1000 / 1,073,741,824) = 1909 ms.
mod engine_support;
use engine_support::*;
use switchover::engine::Action;
use switchover::HandlerFlags;

const VGPU_STOPCOPY: u64 = 2_050_000_000;
const GIB_PER_S: u64 = 1_073_741_824;

fn vgpu_rig(limit_ms: u64) -> Rig {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.params(|p| {
        p.avail_switchover_bandwidth = GIB_PER_S;
        p.downtime_limit_ms = limit_ms;
    });
    rig.dev.set(pending(0, VGPU_STOPCOPY, 0));
    rig.start();
    rig
}

/// One 100 ms pass with idle RAM: close the window, step.
fn pass(rig: &mut Rig) -> Action {
    rig.window(0);
    rig.step().action
}

#[test]
fn vgpu_expected_downtime_is_about_1910_ms() {
    let mut rig = vgpu_rig(1000);
    pass(&mut rig);
    pass(&mut rig);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.expected_downtime_ms, 1909);
    assert_eq!(s.switchover_bw, GIB_PER_S as f64);
    assert_eq!(s.last_sync_bytes, VGPU_STOPCOPY);
}

#[test]
fn vgpu_never_switches_over_at_1000_or_1500_ms() {
    for limit in [1000, 1500] {
        let mut rig = vgpu_rig(limit);
        for _ in 0..50 {
            assert_eq!(pass(&mut rig), Action::Iterate, "limit {limit}");
        }
        // `migrate_init` starts the count at 1; 50 exact passes later it is 51.
        assert_eq!(rig.sess.snapshot(rig.now).dirty_sync_count, 51);
    }
}

#[test]
fn vgpu_stall_is_detected_once_and_advises_about_2100_ms() {
    let mut rig = vgpu_rig(1000);
    // Pass 1 sets the best; passes 2..=6 make no progress: the 5th of them is a stall.
    for n in 1..=5 {
        pass(&mut rig);
        assert!(!rig.sess.snapshot(rig.now).stalled, "pass {n}");
    }
    pass(&mut rig);
    let s = rig.sess.snapshot(rig.now);
    assert!(s.stalled);
    assert_eq!(s.passes_since_progress, 5);
    assert_eq!(s.best_remaining, VGPU_STOPCOPY);
    // 1909 ms + 10 % headroom = 2099.9, rounded up.
    assert_eq!(s.recommended_downtime_ms, 2100);
    assert!(!s.will_switchover && !s.beyond_max);
    let stalls = rig.vmm.events("MIGRATION_STALL");
    assert_eq!(stalls.len(), 1);
    assert_eq!(stalls[0]["passes-since-progress"], 5);
    assert_eq!(stalls[0]["expected-downtime"], 1909);
    assert_eq!(stalls[0]["recommended-downtime"], 2100);
    assert_eq!(stalls[0]["downtime-limit"], 1000);
    for _ in 0..5 {
        pass(&mut rig);
    }
    assert_eq!(rig.vmm.events("MIGRATION_STALL").len(), 1, "reported once per stall");
}

#[test]
fn vgpu_switches_over_on_the_next_pass_once_the_limit_is_2000_ms() {
    let mut rig = vgpu_rig(1500);
    for _ in 0..8 {
        assert_eq!(pass(&mut rig), Action::Iterate);
    }
    rig.params(|p| p.downtime_limit_ms = 2000);
    assert!(rig.sess.snapshot(rig.now).will_switchover, "1909 ms fits 2000 ms");
    assert_eq!(rig.sess.snapshot(rig.now).recommended_downtime_ms, 0, "no change advised");
    assert_eq!(pass(&mut rig), Action::Switchover);
}

#[test]
fn vgpu_converges_by_itself_with_auto_downtime_max_3000() {
    let mut rig = vgpu_rig(300);
    rig.params(|p| p.auto_downtime_max_ms = 3000);
    let mut actions = Vec::new();
    for _ in 0..10 {
        let a = pass(&mut rig);
        actions.push(a);
        if a == Action::Switchover {
            break;
        }
    }
    // Stall at pass 6 raises the limit to 2100 ms; pass 7 closes a window with it.
    assert_eq!(actions.len(), 7, "{actions:?}");
    assert_eq!(actions.last(), Some(&Action::Switchover));
    assert_eq!(rig.sess.params().downtime_limit_ms, 2100);
    let adjusted = rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED");
    assert_eq!(adjusted.len(), 1);
    assert_eq!(adjusted[0]["old-downtime-limit"], 300);
    assert_eq!(adjusted[0]["downtime-limit"], 2100);
    assert_eq!(adjusted[0]["auto-downtime-max"], 3000);
}

#[test]
fn vgpu_advice_beyond_auto_downtime_max_is_flagged_and_changes_nothing() {
    let mut rig = vgpu_rig(1000);
    rig.params(|p| p.auto_downtime_max_ms = 2000);
    for _ in 0..12 {
        assert_eq!(pass(&mut rig), Action::Iterate);
    }
    let s = rig.sess.snapshot(rig.now);
    assert!(s.stalled && s.beyond_max);
    assert_eq!(s.recommended_downtime_ms, 2100);
    assert_eq!(rig.sess.params().downtime_limit_ms, 1000);
    assert!(rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED").is_empty());
}

#[test]
fn progress_of_more_than_the_margin_is_no_stall() {
    let mut rig = vgpu_rig(1000);
    // Remaining shrinks by 5 % each pass: progress every time (margin 4 %).
    let mut remaining = VGPU_STOPCOPY as f64;
    for _ in 0..20 {
        rig.dev.set(pending(0, remaining as u64, 0));
        pass(&mut rig);
        remaining *= 0.95;
    }
    let s = rig.sess.snapshot(rig.now);
    assert!(!s.stalled);
    assert_eq!(s.passes_since_progress, 0);
    assert!(rig.vmm.events("MIGRATION_STALL").is_empty());
}

/// Garbage-sized state (1 EiB of stop-copy data) gives no advice above the largest allowed
/// `downtime-limit` (2,000,000 ms, QEMU-BEHAVIOUR.md §Parameters): none, flagged beyond max.
#[test]
fn advice_never_exceeds_the_largest_downtime_limit() {
    use switchover::{HandlerFlags, Pending, PendingSource};
    struct Huge;
    impl PendingSource for Huge {
        fn save_query_pending(&self, p: &mut Pending, _e: bool, _f: bool) {
            p.stopcopy += 1u64 << 60;
        }
    }
    let s = switchover::Session::new();
    s.registry().register("huge", 0, HandlerFlags::empty(), Box::new(Huge)).unwrap();
    let mut p = s.params();
    p.avail_switchover_bandwidth = 1 << 30;
    s.set_params(p).unwrap();
    s.migration_start(0).unwrap();
    s.setup_done(0).unwrap();
    let mut now = 0;
    for _ in 0..20 {
        now += 100;
        s.record_transferred(switchover::counters::Channel::Main, 1 << 20);
        s.update_counters(now).unwrap();
        s.iteration_step(now).unwrap();
    }
    let snap = s.snapshot(now);
    assert!(snap.stalled);
    assert!(snap.expected_downtime_ms > 2_000_000);
    assert_eq!(snap.recommended_downtime_ms, 0);
    assert!(snap.beyond_max);
}
