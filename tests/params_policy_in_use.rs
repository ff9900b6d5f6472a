//! When the reports carry the reason line (README §Deadlines and actions, docs/qemu-model.md:
//! "a set policy parameter adds `reason`/`reason-text`"): any ONE of `deadline`,
//! `deadline-per-gib`, `stall-action`, `downtime-fixed`, `report-reason` set is enough; with
//! all at their defaults the reports are QEMU's.
use switchover::params::{Params, PolicyAction};

#[test]
fn any_one_policy_parameter_puts_the_policy_in_use() {
    let d = Params::default;
    assert!(!d().policy_in_use(), "defaults: QEMU's reports");
    let one_each = [
        ("deadline", Params { deadline_ms: 1, ..d() }),
        ("deadline-per-gib", Params { deadline_per_gib_ms: 1, ..d() }),
        ("stall-action", Params { stall_action: Some(PolicyAction::Cancel), ..d() }),
        ("downtime-fixed", Params { downtime_fixed_ms: 1, ..d() }),
        ("report-reason", Params { report_reason: true, ..d() }),
    ];
    for (name, p) in one_each {
        assert!(p.policy_in_use(), "{name} alone");
    }
}
