//! Operator policy in the loop and in the pause (README §Deadlines and actions): the deadline,
//! the stall action, their events and reasons. These behaviours had only Python tests; a
//! mutation of `src/engine/policy.rs` that only pytest caught counted as missed in
//! `cargo mutants` (docs/mutants.md).
//!
//! Figures, worked by hand: `avail-switchover-bandwidth` 1,000,000,000 B/s and
//! `downtime-limit` 300 ms make the threshold 1e9 / 1000 × 300 = 300,000,000 B
//! (`migration_update_counters`, docs/qemu-model.md). The device holds 2,000,000,000 B of
//! stop-copy state and no precopy bytes, so every step runs the exact query (`precopy == 0`,
//! `migration_iteration_run`) and iterates; from the first exact pass on (pass 2) the expected
//! downtime is 2e9 / 1e9 × 1000 = 2000 ms (`migration_downtime_calc_expected`).
mod engine_support;
use engine_support::*;
use switchover::engine::{Action, Reason};
use switchover::params::PolicyAction;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags};

const BW: u64 = 1_000_000_000;
const BIG: u64 = 2_000_000_000;

fn rig(flags: HandlerFlags, f: impl FnOnce(&mut switchover::params::Params)) -> Rig {
    let mut rig = Rig::new(flags);
    rig.params(|p| {
        p.avail_switchover_bandwidth = BW;
        p.downtime_limit_ms = 300;
        f(p);
    });
    rig.dev.set(pending(0, BIG, 0));
    rig.start();
    rig
}

/// Steps at `now_ms` (the windows close every 100 ms before it).
fn step_at(rig: &mut Rig, now_ms: u64) -> switchover::engine::Step {
    while rig.now + 100 <= now_ms {
        rig.window(0);
    }
    rig.now = now_ms;
    rig.sess.iteration_step(now_ms).unwrap()
}

#[test]
fn the_deadline_cancels_at_the_millisecond_it_is_reached_not_before() {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| {
        p.deadline_ms = 1000;
        p.deadline_action = PolicyAction::Cancel;
    });
    // The deadline the reports show: `deadline` with no RAM model (no per-GiB part).
    assert_eq!(rig.sess.snapshot(0).deadline_ms, Some(1000));
    for now in [100, 500, 999] {
        let s = step_at(&mut rig, now);
        assert_eq!(s.action, Action::Iterate, "at {now} ms");
        assert_eq!(s.reason, Reason::ExactAboveThreshold, "at {now} ms");
        assert!(!s.forced);
    }
    assert!(rig.vmm.events("MIGRATION_DEADLINE").is_empty());
    let s = step_at(&mut rig, 1000);
    assert_eq!(s.action, Action::Cancelled);
    assert_eq!(s.reason, Reason::DeadlineReached);
    assert!(!s.forced, "a cancel is not a forced switchover");
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    let ev = rig.vmm.events("MIGRATION_DEADLINE");
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0],
        serde_json::json!({
            "action": "cancel", "remaining": BIG, "expected-downtime": 2000,
            "downtime-limit": 300, "elapsed": 1000, "deadline": 1000,
        })
    );
    let snap = rig.sess.snapshot(1000);
    assert_eq!(snap.reason, Reason::DeadlineReached);
    assert_eq!(snap.reason_text, "deadline 1000 ms reached after 1000 ms: cancel");
    assert_eq!(snap.policy_action, Some(PolicyAction::Cancel));
}

#[test]
fn the_deadline_forces_the_switchover_with_the_expected_downtime_in_its_text() {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| {
        p.deadline_ms = 1000;
        p.deadline_action = PolicyAction::ForceSwitchover;
    });
    assert_eq!(step_at(&mut rig, 900).action, Action::Iterate);
    let s = step_at(&mut rig, 1000);
    assert_eq!(s.action, Action::Switchover);
    assert!(s.forced);
    assert_eq!(s.reason, Reason::DeadlineReached);
    let text = "deadline 1000 ms reached after 1000 ms: force-switchover with expected downtime \
                2000 ms against downtime-limit 300 ms";
    assert_eq!(rig.sess.snapshot(1000).reason_text, text);
    assert_eq!(rig.vmm.events("MIGRATION_DEADLINE")[0]["action"], "force-switchover");
    // Forced: no rollback, whatever the final query finds (switchover-rollback on).
    rig.caps(|c| c.switchover_rollback = true);
    let out = rig.sess.switchover_begin(1000).unwrap();
    assert!(out.proceed);
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    // The action is taken once per migration: the reason stays while switching over.
    assert_eq!(rig.sess.snapshot(1000).reason, Reason::DeadlineReached);
}

/// The stall action waits for `stall-action-passes` passes without progress, and needs the
/// stall itself (`stall-passes`, 5 by default, margin 4 %): with the same 2e9 B on every
/// pass, pass 2 sets the mark and each later pass adds one pass without progress.
#[test]
fn the_stall_action_comes_after_stall_action_passes_passes_of_a_stall() {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| {
        p.stall_action = Some(PolicyAction::ForceSwitchover);
        p.stall_action_passes = 7;
    });
    // Steps 1..=7: passes_since_progress 0..=6; the stall begins at 5 (step 6).
    for k in 1..=7u64 {
        let s = step_at(&mut rig, 100 * k);
        assert_eq!(s.action, Action::Iterate, "step {k}");
        let want = if k >= 6 { Reason::Stalled } else { Reason::ExactAboveThreshold };
        assert_eq!(s.reason, want, "step {k}");
    }
    let s = step_at(&mut rig, 800);
    assert_eq!(s.action, Action::Switchover);
    assert!(s.forced);
    assert_eq!(s.reason, Reason::StallAction);
    let ev = rig.vmm.events("MIGRATION_STALL_ACTION");
    assert_eq!(
        ev,
        vec![serde_json::json!({
            "action": "force-switchover", "remaining": BIG, "expected-downtime": 2000,
            "downtime-limit": 300, "passes-since-progress": 7,
        })]
    );
    assert_eq!(
        rig.sess.snapshot(800).reason_text,
        "stalled 7 passes (stall-action-passes 7): force-switchover with expected downtime \
         2000 ms against downtime-limit 300 ms"
    );
}

/// `stall-action-passes` 0: the action comes with the stall (5 passes without progress),
/// not before it.
#[test]
fn a_stall_action_with_zero_passes_still_waits_for_the_stall() {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| {
        p.stall_action = Some(PolicyAction::Cancel);
        p.stall_action_passes = 0;
    });
    for k in 1..=5u64 {
        assert_eq!(step_at(&mut rig, 100 * k).action, Action::Iterate, "step {k}");
    }
    let s = step_at(&mut rig, 600);
    assert_eq!(s.action, Action::Cancelled);
    assert_eq!(s.reason, Reason::StallAction);
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    assert_eq!(rig.vmm.events("MIGRATION_STALL_ACTION")[0]["passes-since-progress"], 5);
}

/// A rig whose device fits the threshold: the first exact step decides the switchover, and
/// with `pause-before-switchover` `switchover_begin` stops in `pre-switchover`.
fn paused_rig(action: PolicyAction) -> Rig {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| {
        p.deadline_ms = 1000;
        p.deadline_action = action;
    });
    rig.caps(|c| c.pause_before_switchover = true);
    rig.dev.set(pending(0, 1000, 0));
    assert_eq!(step_at(&mut rig, 100).action, Action::Switchover);
    assert!(!rig.sess.switchover_begin(100).unwrap().proceed);
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    rig
}

#[test]
fn before_the_deadline_the_pause_stays() {
    for action in PolicyAction::ALL {
        let rig = paused_rig(action);
        let out = rig.sess.switchover_begin(999).unwrap();
        assert!(!out.proceed, "{action:?}");
        assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover, "{action:?}");
        assert!(rig.vmm.events("MIGRATION_DEADLINE").is_empty(), "{action:?}");
        assert_eq!(rig.sess.snapshot(999).reason, Reason::PausedBeforeSwitchover);
    }
}

#[test]
fn a_deadline_passed_in_the_pause_forces_the_precopy_switchover_on() {
    let rig = paused_rig(PolicyAction::ForceSwitchover);
    let out = rig.sess.switchover_begin(1000).unwrap();
    assert!(out.proceed);
    assert_eq!(out.final_pending, pending(0, 1000, 0));
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    let ev = rig.vmm.events("MIGRATION_DEADLINE");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["action"], "force-switchover");
    // Once taken, a later pause check takes nothing again.
    rig.sess.complete(1010).unwrap();
    assert_eq!(rig.vmm.events("MIGRATION_DEADLINE").len(), 1);
}

/// A precopy pause with `deadline-action postcopy`: the switchover under way stays precopy and
/// the action is reported as `force-switchover` (README).
#[test]
fn a_postcopy_deadline_in_a_precopy_pause_is_reported_as_force_switchover() {
    let rig = paused_rig(PolicyAction::Postcopy);
    assert!(rig.sess.switchover_begin(1000).unwrap().proceed);
    assert_eq!(rig.vmm.events("MIGRATION_DEADLINE")[0]["action"], "force-switchover");
}

#[test]
fn a_deadline_passed_in_the_pause_with_cancel_interrupts_the_switchover() {
    let rig = paused_rig(PolicyAction::Cancel);
    let e = rig.sess.switchover_begin(1000).unwrap_err();
    assert_eq!(e.code, Code::BadState);
    assert!(e.message.contains("deadline 1000 ms reached after 1000 ms while paused"), "{}", e.message);
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    let snap = rig.sess.snapshot(1000);
    assert_eq!(snap.error_desc.as_deref(), Some("Switchover is interrupted"));
    assert_eq!(snap.total_time_ms, 1000);
    assert_eq!(rig.vmm.events("MIGRATION_DEADLINE")[0]["action"], "cancel");
}

/// A postcopy pause (`postcopy_start` with `pause-before-switchover`) whose deadline passes
/// with `force-switchover` goes on into postcopy, reported as `postcopy`.
#[test]
fn a_deadline_passed_in_a_postcopy_pause_goes_on_into_postcopy() {
    let mut rig = rig(HandlerFlags::empty(), |p| {
        p.deadline_ms = 1000;
        p.deadline_action = PolicyAction::ForceSwitchover;
    });
    rig.caps(|c| {
        c.pause_before_switchover = true;
        c.postcopy_ram = true;
    });
    rig.sess.postcopy_request().unwrap();
    // precopy + stop-copy = 1000 B fit; the postcopy bucket does not count.
    rig.dev.set(pending(0, 1000, BIG));
    assert_eq!(step_at(&mut rig, 100).action, Action::StartPostcopy);
    rig.sess.postcopy_start(100).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    rig.sess.postcopy_start(999).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    rig.sess.postcopy_start(1000).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
    assert_eq!(rig.vmm.events("MIGRATION_DEADLINE")[0]["action"], "postcopy");
    assert_eq!(rig.sess.snapshot(1000).policy_action, Some(PolicyAction::Postcopy));
}

/// The names README §Deadlines and actions lists, in `SWO_REASON_*` order.
#[test]
fn reason_names_are_the_documented_ones() {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "none", "above-threshold", "exact-above-threshold", "waiting-for-ack",
            "paused-before-switchover", "stalled", "deadline-reached", "stall-action",
            "postcopy-ready", "switchover-ready", "switching-over", "postcopy-active",
            "postcopy-drained", "switched-over", "cancelled", "failed",
        ]
    );
}

/// The reason text with `downtime-fixed` 50 ms: the budget is 300 − 50 = 250 ms, so the
/// threshold is 1e9 / 1000 × 250 = 250,000,000 B = 238.4 MiB → "238 MiB"; 2e9 B = 1.863 GiB
/// → "1.86 GiB"; 1e9 B/s = 953.7 MiB/s → "954 MiB/s" (QEMU's `size_to_str`, `%0.3g`).
#[test]
fn the_reason_text_names_the_figures_and_the_fixed_downtime() {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| p.downtime_fixed_ms = 50);
    step_at(&mut rig, 100);
    let snap = rig.sess.snapshot(100);
    assert_eq!(snap.threshold_bytes, 250_000_000);
    // 2000 ms of bytes + 50 ms fixed.
    assert_eq!(snap.expected_downtime_ms, 2050);
    assert_eq!(
        snap.reason_text,
        "exact remaining 1.86 GiB > threshold 238 MiB = 300 ms - 50 ms fixed at 954 MiB/s"
    );
    // Without the fixed part the budget is the limit alone, and no advice before a stall.
    let mut rig = rig_plain();
    step_at(&mut rig, 100);
    assert_eq!(
        rig.sess.snapshot(100).reason_text,
        "exact remaining 1.86 GiB > threshold 286 MiB = 300 ms at 954 MiB/s"
    );
}

fn rig_plain() -> Rig {
    rig(HandlerFlags::NO_POSTCOPY, |_| {})
}

/// Stalled (5 passes without progress), the text counts the passes and carries the advice:
/// 2000 ms × 1.10 = 2200 ms (`downtime-headroom` 10 %).
#[test]
fn the_stalled_reason_text_counts_passes_and_gives_the_advice() {
    let mut rig = rig_plain();
    for k in 1..=6u64 {
        step_at(&mut rig, 100 * k);
    }
    let snap = rig.sess.snapshot(600);
    assert!(snap.stalled);
    assert_eq!(snap.recommended_downtime_ms, 2200);
    assert_eq!(
        snap.reason_text,
        "stalled 5 passes: remaining 1.86 GiB > threshold 286 MiB = 300 ms at 954 MiB/s; \
         advice 2200 ms"
    );
}

/// A rig with capability `postcopy-ram`, `deadline-action postcopy` at 1000 ms, and a device
/// that can take part in postcopy.
fn postcopy_deadline_rig() -> Rig {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| c.postcopy_ram = true);
    rig.params(|p| {
        p.avail_switchover_bandwidth = BW;
        p.downtime_limit_ms = 300;
        p.deadline_ms = 1000;
        p.deadline_action = PolicyAction::Postcopy;
    });
    rig.dev.set(pending(0, BIG, 0));
    rig.start();
    rig
}

#[test]
fn a_postcopy_deadline_starts_postcopy_forced() {
    let mut rig = postcopy_deadline_rig();
    assert_eq!(step_at(&mut rig, 900).action, Action::Iterate);
    let s = step_at(&mut rig, 1000);
    assert_eq!((s.action, s.forced, s.reason), (Action::StartPostcopy, true, Reason::DeadlineReached));
    assert_eq!(rig.vmm.events("MIGRATION_DEADLINE")[0]["action"], "postcopy");
    assert_eq!(rig.sess.snapshot(1000).reason_text, "deadline 1000 ms reached after 1000 ms: postcopy");
    // The action asked for postcopy itself: `postcopy_start` needs no `migrate-start-postcopy`.
    rig.sess.postcopy_start(1000).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
}

/// README: `postcopy-ram` turned off after the action was set makes it `cancel`, and the
/// event says what was asked for and why not.
#[test]
fn a_postcopy_deadline_without_postcopy_ram_cancels_and_says_why() {
    let mut rig = postcopy_deadline_rig();
    rig.caps(|c| c.postcopy_ram = false);
    let s = step_at(&mut rig, 1000);
    assert_eq!((s.action, s.reason), (Action::Cancelled, Reason::DeadlineReached));
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    let ev = &rig.vmm.events("MIGRATION_DEADLINE")[0];
    assert_eq!(ev["action"], "cancel");
    assert_eq!(ev["requested-action"], "postcopy");
    assert_eq!(ev["reason"], "capability postcopy-ram is off");
    assert_eq!(
        rig.sess.snapshot(1000).reason_text,
        "deadline 1000 ms reached after 1000 ms: cancel (postcopy impossible: capability \
         postcopy-ram is off)"
    );
}

/// README: a `NO_POSTCOPY` handler registered after the action was set makes it `cancel`, and
/// the event names the device.
#[test]
fn a_postcopy_deadline_with_a_no_postcopy_device_cancels_and_names_it() {
    let mut rig = postcopy_deadline_rig();
    rig.sess
        .registry()
        .register("vfio0", 3, HandlerFlags::NO_POSTCOPY, Box::new(Device::default()))
        .unwrap();
    let s = step_at(&mut rig, 1000);
    assert_eq!(s.action, Action::Cancelled);
    let ev = &rig.vmm.events("MIGRATION_DEADLINE")[0];
    assert_eq!((ev["action"].as_str(), ev["requested-action"].as_str()), (Some("cancel"), Some("postcopy")));
    assert!(ev["reason"].as_str().unwrap().contains("device 'vfio0' (instance 3)"), "{ev}");
}

/// A stall the stall action answers with `cancel` raises no `downtime-limit`, even with
/// `auto-downtime-max` room for the advice (2000 ms × 1.10 = 2200 ms ≤ 5000 ms): the migration
/// is over, and the operator's parameters stay as they were.
#[test]
fn a_stall_cancelled_by_the_stall_action_adjusts_no_downtime() {
    let mut rig = rig(HandlerFlags::NO_POSTCOPY, |p| {
        p.stall_action = Some(PolicyAction::Cancel);
        p.stall_action_passes = 0;
        p.auto_downtime_max_ms = 5000;
    });
    for k in 1..=5u64 {
        assert_eq!(step_at(&mut rig, 100 * k).action, Action::Iterate, "step {k}");
    }
    assert_eq!(step_at(&mut rig, 600).action, Action::Cancelled);
    assert_eq!(rig.sess.params().downtime_limit_ms, 300);
    assert!(rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED").is_empty());
}
