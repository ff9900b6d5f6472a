//! The guest the library stops (`vm_stop` for exact sizing or the switchover), how bytes sent
//! meanwhile are filed, and when the library gives the guest back (`vm_resume`):
//! docs/design.md §Errors, src/engine/mod.rs `resume_taken` (a failed resume keeps the record
//! for a later step, cancel or fail).
mod engine_support;
use engine_support::*;
use std::sync::atomic::Ordering;
use switchover::counters::Channel;
use switchover::engine::Action;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags};

/// A rig whose device needs the guest stopped for its exact query and fits the threshold
/// (1,000 B against 3,000,000 B: 1,000,000 B in the first 100 ms window is 80 Mbps =
/// 10,000,000 B/s, × 300 ms = 3,000,000 B), so the step stops the guest and keeps it stopped
/// for the switchover.
fn stopped_for_switchover() -> Rig {
    let mut rig = Rig::new(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 1000, 0));
    let s = rig.step();
    assert_eq!((s.action, s.vm_stopped), (Action::Switchover, true));
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    rig
}

/// `swo_fail` resumes the guest; when `vm_resume` fails the call says so (`SWO_ERR_IO`) and
/// the status is `failed` all the same. A later call that `failed` refuses has no side
/// effect: it does not call `vm_resume` again (nothing half-applied, docs/design.md).
#[test]
fn a_call_refused_after_a_failed_resume_does_not_resume_again() {
    let rig = stopped_for_switchover();
    rig.vmm.resume_rc.store(-5, Ordering::SeqCst);
    let e = rig.sess.fail(200, Some("link down")).unwrap_err();
    assert_eq!(e.code, Code::Io);
    assert!(e.message.contains("vm_resume returned -5 after the migration failed"), "{}", e.message);
    assert_eq!(rig.sess.status(), MigrationStatus::Failed);
    assert_eq!(rig.vmm.resumes(), 1);
    // Refused in `failed`: no handler, no vm_stop, no vm_resume.
    assert_eq!(rig.sess.iteration_step(300).unwrap_err().code, Code::BadState);
    assert_eq!(rig.sess.switchover_begin(300).unwrap_err().code, Code::BadState);
    assert_eq!(rig.sess.complete(300).unwrap_err().code, Code::BadState);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));
}

/// A cancel while the library holds the guest stopped resumes it once.
#[test]
fn a_cancel_resumes_the_guest_the_step_kept_stopped() {
    let rig = stopped_for_switchover();
    rig.sess.cancel(200).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Cancelled);
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 1));
    assert!(!rig.dev.guest_stopped.load(Ordering::SeqCst));
    // Nothing left to resume.
    assert_eq!(rig.sess.cancel(210).unwrap_err().code, Code::BadState);
    assert_eq!(rig.vmm.resumes(), 1);
}

/// Bytes the main channel sends while the library holds the guest stopped (still `active`,
/// after an exact query with `vm_stop`) are downtime bytes: QEMU's `ram_transferred_add`
/// files them by `runstate_is_running()` (docs/qemu-model.md). Once resumed, precopy again.
#[test]
fn bytes_sent_while_the_library_holds_the_guest_stopped_are_downtime_bytes() {
    let rig = stopped_for_switchover();
    assert_eq!(rig.sess.status(), MigrationStatus::Active);
    rig.sess.record_transferred(Channel::Main, 4096);
    let s = rig.sess.snapshot(110);
    assert_eq!((s.precopy_bytes, s.downtime_bytes), (1_000_000, 4096));
    rig.sess.cancel(120).unwrap();
    rig.sess.migration_start(200).unwrap();
    rig.sess.setup_done(210).unwrap();
    rig.sess.record_transferred(Channel::Main, 100);
    let s = rig.sess.snapshot(220);
    assert_eq!((s.precopy_bytes, s.downtime_bytes), (100, 0));
}

/// A `vm_stop` that fails leaves the guest running: the exact query runs anyway
/// (`DEVICE_SIZE_WARNING` `vm-stop-failed`) and bytes sent afterwards are precopy bytes.
#[test]
fn after_a_failed_vm_stop_bytes_are_still_precopy_bytes() {
    let mut rig = Rig::new(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.vmm.stop_rc.store(-16, Ordering::SeqCst);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 5_000_000, 0));
    let s = rig.step();
    assert_eq!((s.action, s.exact, s.vm_stopped), (Action::Iterate, true, false));
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    rig.sess.record_transferred(Channel::Main, 4096);
    let s = rig.sess.snapshot(110);
    assert_eq!((s.precopy_bytes, s.downtime_bytes), (1_004_096, 0));
}

/// The VMM's word on the run state (`set_vm_running`) outlives `migration_start`, which resets
/// only the migration's figures: a guest the user stopped before the migration needs no
/// `switchover-ack` (QEMU's `migration_can_switchover`: the ack is only awaited while the
/// guest runs), and its bytes are downtime bytes (`ram_transferred_add`).
#[test]
fn a_guest_stopped_before_the_migration_stays_stopped_for_the_engine() {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.caps(|c| c.switchover_ack = true);
    rig.sess.set_vm_running(false);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 1000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    let s = rig.sess.snapshot(100);
    assert_eq!((s.precopy_bytes, s.downtime_bytes), (0, 1_000_000));
}

/// A completed migration leaves the guest with the destination: the library's stop is not
/// resumed, and is forgotten by the next `migration_start` of the session, whose bytes are
/// filed by the VMM's word alone (running: precopy).
#[test]
fn the_next_migration_forgets_the_stop_of_a_completed_one() {
    let rig = stopped_for_switchover();
    assert!(rig.sess.switchover_begin(100).unwrap().proceed);
    rig.sess.complete(150).unwrap();
    assert_eq!((rig.vmm.stops(), rig.vmm.resumes()), (1, 0));
    rig.sess.migration_start(200).unwrap();
    rig.sess.setup_done(210).unwrap();
    rig.sess.record_transferred(Channel::Main, 100);
    let s = rig.sess.snapshot(220);
    assert_eq!((s.precopy_bytes, s.downtime_bytes), (100, 0));
}

/// A VMM whose `vm_stop` lets another thread cancel the migration while `switchover_begin`
/// is stopping the guest (the migration thread holds the engine's serial lock).
struct CancelDuringStop {
    sess: std::sync::Mutex<Option<std::sync::Weak<switchover::Session>>>,
    resumes: std::sync::atomic::AtomicU64,
}

impl switchover::VmmHooks for CancelDuringStop {
    fn vm_stop(&self) -> i32 {
        if let Some(s) = self.sess.lock().unwrap().take().and_then(|w| w.upgrade()) {
            std::thread::spawn(move || s.cancel(120).unwrap()).join().unwrap();
        }
        0
    }
    fn vm_resume(&self) -> i32 {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        0
    }
    fn can_stop_vm(&self) -> bool {
        true
    }
    fn event(&self, _event_json: &str) {}
}

/// A cancel that lands while `switchover_begin` stops the guest: the switchover does not
/// begin (nothing of it is applied: no rate limit lifted, no prediction, no downtime), the call
/// fails with `SWO_ERR_BAD_STATE`, and the guest it stopped is resumed once.
#[test]
fn a_cancel_during_the_switchovers_vm_stop_applies_nothing_of_the_switchover() {
    use std::sync::Arc;
    let sess = Arc::new(switchover::Session::new());
    let vmm = Arc::new(CancelDuringStop {
        sess: std::sync::Mutex::new(Some(Arc::downgrade(&sess))),
        resumes: Default::default(),
    });
    sess.set_vmm(Some(vmm.clone())).unwrap();
    let dev = Device::default();
    dev.set(pending(0, 1000, 0));
    sess.registry().register("dev", 0, HandlerFlags::NO_POSTCOPY, Box::new(dev)).unwrap();
    sess.migration_start(0).unwrap();
    sess.setup_done(10).unwrap();
    sess.record_transferred(Channel::Main, 1_000_000);
    assert!(sess.update_counters(100).unwrap());
    assert_eq!(sess.iteration_step(100).unwrap().action, Action::Switchover);
    let e = sess.switchover_begin(110).unwrap_err();
    assert_eq!(e.code, Code::BadState);
    assert_eq!(sess.status(), MigrationStatus::Cancelled);
    assert_eq!(vmm.resumes.load(Ordering::SeqCst), 1);
    let s = sess.snapshot(200);
    assert!(!s.rate_limit_lifted);
    assert_eq!((s.predicted_downtime_ms, s.downtime_ms, s.total_time_ms), (None, 0, 120));
}
