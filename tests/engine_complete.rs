//! When `complete` may come (src/engine/lifecycle.rs `complete`): in `device` only once
//! `switchover_begin` ran the final query and said proceed (QEMU's `migration_completion`
//! runs `migration_switchover_start` first), or in `postcopy-active`.
mod engine_support;
use engine_support::*;
use switchover::engine::Action;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags};

/// After `migrate-continue` of a pause the status is `device` but the final query has not run
/// yet: `complete` is refused until `switchover_begin` runs it.
#[test]
fn complete_waits_for_the_final_query_after_migrate_continue() {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.caps(|c| c.pause_before_switchover = true);
    rig.start();
    rig.window(1_000_000); // threshold 3,000,000 B
    rig.dev.set(pending(0, 1000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    assert!(!rig.sess.switchover_begin(100).unwrap().proceed);
    rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    let e = rig.sess.complete(110).unwrap_err();
    assert_eq!(e.code, Code::BadState);
    assert!(
        e.message.contains("needs 'device' after swo_switchover_begin said proceed, or 'postcopy-active'"),
        "{}",
        e.message
    );
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    assert!(rig.sess.switchover_begin(120).unwrap().proceed);
    rig.sess.complete(130).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Completed);
}
