//! Which switchovers `postcopy_start` may go on with (src/engine/lifecycle.rs `postcopy_start`:
//! from `active` after `migrate-start-postcopy`, or in `device` after `migrate-continue` of a
//! pause that `postcopy_start` itself began). In the `device` of a precopy switchover it is
//! refused with `SWO_ERR_BAD_STATE` naming what it needs, before any device is asked whether
//! it can take part in postcopy.
mod engine_support;
use engine_support::*;
use switchover::engine::Action;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags};

const NEEDS: &str = "needs 'active', or 'device' after swo_migrate_continue of a pause begun by \
                     swo_postcopy_start";

/// Threshold 3,000,000 B (1,000,000 B in the first 100 ms window: 10,000,000 B/s × 300 ms);
/// the device's 1,000 B fit it.
fn switching_over(pause: bool) -> Rig {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.caps(|c| {
        c.postcopy_ram = true;
        c.pause_before_switchover = pause;
    });
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 1000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    rig
}

#[test]
fn postcopy_start_is_refused_in_a_precopy_switchovers_device_state() {
    let rig = switching_over(false);
    assert!(rig.sess.switchover_begin(100).unwrap().proceed);
    let e = rig.sess.postcopy_start(110).unwrap_err();
    assert_eq!(e.code, Code::BadState, "{}", e.message);
    assert!(e.message.contains(NEEDS), "{}", e.message);
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
}

#[test]
fn postcopy_start_is_refused_after_migrate_continue_of_a_precopy_pause() {
    let rig = switching_over(true);
    assert!(!rig.sess.switchover_begin(100).unwrap().proceed);
    rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    let e = rig.sess.postcopy_start(110).unwrap_err();
    assert_eq!(e.code, Code::BadState, "{}", e.message);
    assert!(e.message.contains(NEEDS), "{}", e.message);
    // The precopy switchover goes on.
    assert!(rig.sess.switchover_begin(120).unwrap().proceed);
}
