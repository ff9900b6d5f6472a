//! Issue 9: the rules where an independent port of QEMU's migration code found the library
//! different, one test per rule (A–N), each named after the QEMU function it follows
//! (QEMU upstream, migration/migration.c and migration/ram.c; see docs/qemu-model.md for the
//! commit read). The numbers are the issue's worked examples or hand-worked from QEMU's
//! formulas.
mod engine_support;

use engine_support::{pending, Rig};
use switchover::counters::Channel;
use switchover::engine::Action;
use switchover::error::Code;
use switchover::pending::QueryKind;
use switchover::state::MigrationStatus;
use switchover::{HandlerFlags, Session};

fn query(rig: &Rig) -> serde_json::Value {
    serde_json::from_str(&rig.sess.query_migrate_json(rig.now)).unwrap()
}

/// 10 MB in one 100 ms window: 800 Mbps, 100,000,000 B/s, threshold 30,000,000 B at 300 ms.
fn rig_at_100_mb_per_s() -> Rig {
    rig_at_100_mb_per_s_with(|_| {})
}

/// [`rig_at_100_mb_per_s`] with capabilities set before the start.
fn rig_at_100_mb_per_s_with(caps: impl FnOnce(&mut switchover::params::Capabilities)) -> Rig {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(caps);
    rig.start();
    rig.window(10_000_000);
    assert_eq!(rig.sess.snapshot(rig.now).threshold_bytes, 30_000_000);
    rig
}

/// A: QEMU's `migrate_init` zeroes the statistics and sets `dirty_sync_count = 1`;
/// `migration_iteration_go_next` adds 1 per exact pass. Issue example: 10 MB in one 100 ms
/// window, one device with 1 MB of stop-copy data, one step: pass 2, `MIGRATION_PASS
/// {"pass": 2}`, `expected-downtime` 10 (1,000,000 B / 100,000,000 B/s), `dirty_syncs=2`.
#[test]
fn a_migrate_init_starts_dirty_sync_count_at_1_so_the_first_exact_pass_is_2() {
    let rig = rig_at_100_mb_per_s();
    assert_eq!(query(&rig)["ram"]["dirty-sync-count"], 1);
    rig.dev.set(pending(0, 1_000_000, 0));
    let step = rig.step();
    assert_eq!((step.action, step.exact, step.pass), (Action::Switchover, true, 2));
    assert_eq!(rig.vmm.events("MIGRATION_PASS"), [serde_json::json!({"pass": 2})]);
    let q = query(&rig);
    assert_eq!(q["ram"]["dirty-sync-count"], 2);
    assert_eq!(q["expected-downtime"], 10);
    assert!(rig.sess.info_migrate_text(rig.now).contains("dirty_syncs=2"));
}

/// B: QEMU's `migration_update_counters`: `mbps = ((bytes * 8.0) / (ms / 1000.0)) / 1000.0 /
/// 1000.0`, `threshold = (migration_get_switchover_bw() / 1000) * downtime_limit` with the
/// bandwidth `mbps / 8 * 1000 * 1000`. 225,645,141 B in 177 ms at a 1475 ms limit gives
/// 1,880,376,175 B in that order (bytes * 1000 / ms first gives one byte less), so a pending
/// figure of exactly 1,880,376,175 switches over, as in QEMU.
#[test]
fn b_migration_update_counters_keeps_qemus_order_of_operations() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.params(|p| p.downtime_limit_ms = 1475);
    rig.sess.record_transferred(Channel::Main, 225_645_141);
    rig.now = 177;
    assert!(rig.sess.update_counters(rig.now).unwrap());
    let s = rig.sess.snapshot(rig.now);
    let mbps = ((225_645_141f64 * 8.0) / (177f64 / 1000.0)) / 1000.0 / 1000.0;
    assert_eq!(s.mbps, mbps);
    assert_eq!(s.threshold_bytes, 1_880_376_175);
    rig.dev.set(pending(0, 1_880_376_175, 0));
    assert_eq!(rig.step().action, Action::Switchover);

    // 571,027,170 B in 280 ms at 712 ms: QEMU's threshold is 1,452,040,517 B, so 1,452,040,518
    // iterates (the other order gives 1,452,040,518 and would switch over).
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.params(|p| p.downtime_limit_ms = 712);
    rig.sess.record_transferred(Channel::Main, 571_027_170);
    rig.now = 280;
    assert!(rig.sess.update_counters(rig.now).unwrap());
    assert_eq!(rig.sess.snapshot(rig.now).threshold_bytes, 1_452_040_517);
    rig.dev.set(pending(0, 1_452_040_518, 0));
    assert_eq!(rig.step().action, Action::Iterate);
}

/// B, completion: QEMU's `migration_completion_end`: `mbps = (bytes * 8.0) / transfer_time /
/// 1000` with `transfer_time = total_time - setup_time`. 10 MB, total 110 ms, setup 10 ms:
/// 80,000,000 / 100 / 1000 = 800.
#[test]
fn b_migration_completion_end_reports_mbps_over_the_transfer_time() {
    let rig = rig_at_100_mb_per_s();
    rig.dev.set(pending(0, 1_000_000, 0));
    rig.step();
    assert!(rig.sess.switchover_begin(rig.now).unwrap().proceed);
    rig.sess.complete(110).unwrap();
    let q: serde_json::Value = serde_json::from_str(&rig.sess.query_migrate_json(110)).unwrap();
    assert_eq!(q["ram"]["mbps"], 800.0);
}

/// C: QEMU's `migration_downtime_calc_expected` calls `migration_get_switchover_bw()`, which
/// reads `avail-switchover-bandwidth` when asked. Issue example: 50 MB last-sync, 100 MB/s
/// window: 500 ms; `avail-switchover-bandwidth` set to 1 GiB/s between windows: 46 ms at once.
#[test]
fn c_migration_get_switchover_bw_is_read_when_expected_downtime_is_asked() {
    let rig = rig_at_100_mb_per_s();
    rig.dev.set(pending(0, 50_000_000, 0));
    assert_eq!(rig.step().action, Action::Iterate);
    assert_eq!(query(&rig)["expected-downtime"], 500);
    rig.params(|p| p.avail_switchover_bandwidth = 1 << 30);
    // No window closed since: 50,000,000 / 1,073,741,824 * 1000 = 46.57 → 46.
    assert_eq!(query(&rig)["expected-downtime"], 46);
    assert_eq!(rig.sess.snapshot(rig.now).switchover_bw, (1u64 << 30) as f64);
}

/// D: `dirty_bytes_last_sync` is set only by the loop's exact pass
/// (`migration_iteration_go_next`); the final query at switchover updates only the total. In
/// `device`, `expected-downtime` still comes from the last loop pass.
#[test]
fn d_only_migration_iteration_go_next_sets_dirty_bytes_last_sync() {
    let rig = rig_at_100_mb_per_s();
    rig.dev.set(pending(0, 1_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    rig.dev.set(pending(0, 2_000_000, 0));
    let outcome = rig.sess.switchover_begin(rig.now).unwrap();
    assert_eq!(outcome.final_pending.total(), 2_000_000);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.status, s.last_sync_bytes, s.remaining), (MigrationStatus::Device, 1_000_000, 2_000_000));
    let q = query(&rig);
    assert_eq!((q["remaining"].clone(), q["expected-downtime"].clone()), (2_000_000.into(), 10.into()));
}

fn postcopy_rig() -> Rig {
    let rig = rig_at_100_mb_per_s_with(|c| c.postcopy_ram = true);
    rig.sess.postcopy_request().unwrap();
    rig
}

/// E: QEMU's `postcopy_start` goes through `migration_switchover_start`, which runs one
/// `(exact, final)` query (`qemu_savevm_query_pending_final`); its total is `remaining`.
#[test]
fn e_postcopy_start_runs_the_final_query_of_migration_switchover_start() {
    let rig = postcopy_rig();
    rig.dev.set(pending(1_000_000, 0, 500_000_000));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.dev.set(pending(0, 0, 400_000_000));
    rig.sess.postcopy_start(rig.now).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
    assert_eq!(rig.dev.queries().last(), Some(&QueryKind::Final));
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.remaining, 400_000_000);
    // The step decided on fast figures (precopy left), so no exact pass ran; the final query
    // does not set the last-sync figure either.
    assert_eq!(s.last_sync_bytes, 0);
    assert_eq!(query(&rig)["remaining"], 400_000_000);
}

/// F: QEMU's `migration_downtime_end` sets `downtime = now - downtime_start` whenever the
/// downtime is still 0: a postcopy started in the same millisecond as the stop reports the
/// real pause at completion (250 ms here); a non-zero postcopy downtime stays.
#[test]
fn f_migration_downtime_end_measures_a_0_ms_postcopy_downtime_again() {
    let rig = postcopy_rig();
    rig.dev.set(pending(1_000_000, 0, 5_000_000));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now).unwrap();
    assert_eq!(query(&rig)["downtime"], 0);
    rig.dev.set(pending(0, 0, 0));
    rig.sess.complete(rig.now + 250).unwrap();
    assert_eq!(rig.sess.snapshot(rig.now + 250).downtime_ms, 250);

    // Paused before the switchover for 7 ms: postcopy's downtime is 7 and stays 7.
    let rig = rig_at_100_mb_per_s_with(|c| {
        c.postcopy_ram = true;
        c.pause_before_switchover = true;
    });
    rig.sess.postcopy_request().unwrap();
    rig.dev.set(pending(1_000_000, 0, 5_000_000));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now).unwrap();
    rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap();
    rig.sess.postcopy_start(rig.now + 7).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
    rig.sess.complete(rig.now + 250).unwrap();
    assert_eq!(rig.sess.snapshot(rig.now + 250).downtime_ms, 7);
}

/// G: HMP `info migrate` with no migration prints nothing (`hmp_info_migrate` prints from
/// `query-migrate`, which `fill_source_migration_info` leaves empty in `none`).
#[test]
fn g_hmp_info_migrate_prints_nothing_in_status_none() {
    let s = Session::new();
    assert_eq!(s.info_migrate_text(0), "");
    assert_eq!(s.query_migrate_json(0), "{}");
}

/// A migration that makes no progress: 10 MB of stop-copy data against a 3 MB threshold,
/// exact every pass.
fn stalling_rig(events: bool) -> Rig {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.caps(|c| c.events = events);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 10_000_000, 0));
    rig
}

/// H: with every extension at its default the outputs are QEMU's: without the `events`
/// capability no `MIGRATION_STALL`, `MIGRATION_DOWNTIME_ADJUSTED` or
/// `MIGRATION_SWITCHOVER_ROLLBACK` (QEMU's migration events follow `migrate_events()`, as in
/// `migrate_generate_event`), and the HMP `Stalled:` line only while a stall is reported.
#[test]
fn h_library_events_follow_the_events_capability_like_migrate_generate_event() {
    for events in [false, true] {
        let rig = stalling_rig(events);
        rig.params(|p| p.auto_downtime_max_ms = 10_000);
        let hmp_before = rig.sess.info_migrate_text(rig.now);
        assert!(!hmp_before.contains("Stalled:"), "{hmp_before}");
        for _ in 0..8 {
            rig.step();
        }
        let expect = usize::from(events);
        assert_eq!(rig.vmm.events("MIGRATION_STALL").len(), expect, "events {events}");
        assert_eq!(rig.vmm.events("MIGRATION_DOWNTIME_ADJUSTED").len(), expect, "events {events}");
    }
    // Rollback: the final query finds more than the threshold allows.
    for events in [false, true] {
        let rig = rig_at_100_mb_per_s_with(|c| {
            c.events = events;
            c.switchover_rollback = true;
        });
        rig.dev.set(pending(0, 1_000_000, 0));
        assert_eq!(rig.step().action, Action::Switchover);
        rig.dev.set(pending(0, 90_000_000, 0));
        assert!(!rig.sess.switchover_begin(rig.now).unwrap().proceed);
        assert_eq!(rig.vmm.events("MIGRATION_SWITCHOVER_ROLLBACK").len(), usize::from(events));
    }
}

/// H: the `Stalled:` line is the library's only addition to HMP, printed only while stalled.
#[test]
fn h_hmp_stalled_line_only_while_a_stall_is_reported() {
    let rig = stalling_rig(false);
    for _ in 0..8 {
        rig.step();
    }
    assert!(rig.sess.snapshot(rig.now).stalled);
    assert!(rig.sess.info_migrate_text(rig.now).contains("Stalled:"));
    // Progress ends the stall, and the line goes.
    rig.dev.set(pending(0, 5_000_000, 0));
    rig.step();
    assert!(!rig.sess.snapshot(rig.now).stalled);
    assert!(!rig.sess.info_migrate_text(rig.now).contains("Stalled:"));
}

/// H: `DEVICE_SIZE_WARNING` is the VMM's only warning channel: it goes out without `events`.
#[test]
fn h_device_size_warning_goes_out_without_the_events_capability() {
    let mut rig = Rig::new(HandlerFlags::EXACT_NEEDS_STOPPED_VM);
    rig.caps(|c| c.events = false);
    rig.vmm.can_stop.store(false, std::sync::atomic::Ordering::SeqCst);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 10_000_000, 0));
    rig.step();
    assert_eq!(rig.vmm.events("DEVICE_SIZE_WARNING").len(), 1);
}

/// J: QEMU's `qmp_migrate_cancel` refuses in postcopy ("Postcopy migration in progress,
/// cannot cancel."): the destination runs the guest. A real failure can still be reported.
#[test]
fn j_qmp_migrate_cancel_refuses_once_postcopy_runs() {
    let rig = postcopy_rig();
    rig.dev.set(pending(1_000_000, 0, 5_000_000));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now).unwrap();
    let e = rig.sess.cancel(rig.now).unwrap_err();
    assert_eq!(e.code, Code::BadState);
    assert_eq!(e.message, "Postcopy migration in progress, cannot cancel.");
    assert_eq!(rig.sess.status(), MigrationStatus::PostcopyActive);
    rig.sess.fail(rig.now, Some("stream error")).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Failed);
}

/// K: a cancel during the pause before switchover: the pause's `pre-switchover → device`
/// fails, `migration_switchover_start` sets "Switchover is interrupted", and
/// `fill_source_migration_info` reports it as `error-desc` of the cancelled migration.
#[test]
fn k_cancel_in_the_pause_reports_migration_switchover_start_error() {
    let rig = rig_at_100_mb_per_s_with(|c| c.pause_before_switchover = true);
    rig.dev.set(pending(0, 1_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    assert!(!rig.sess.switchover_begin(rig.now).unwrap().proceed);
    assert_eq!(rig.sess.status(), MigrationStatus::PreSwitchover);
    rig.sess.cancel(rig.now).unwrap();
    assert_eq!(
        rig.sess.query_migrate_json(rig.now),
        r#"{"status": "cancelled", "error-desc": "Switchover is interrupted"}"#
    );
    // A cancel elsewhere has no error.
    let rig = rig_at_100_mb_per_s();
    rig.sess.cancel(rig.now).unwrap();
    assert_eq!(rig.sess.query_migrate_json(rig.now), r#"{"status": "cancelled"}"#);
}

/// L: QEMU's `qmp_migrate_continue` checks only `s->state != state`; naming the current state
/// when not paused succeeds and does nothing.
#[test]
fn l_qmp_migrate_continue_checks_only_the_named_state() {
    let rig = rig_at_100_mb_per_s();
    rig.sess.migrate_continue(MigrationStatus::Active).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Active);
    let e = rig.sess.migrate_continue(MigrationStatus::PreSwitchover).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (Code::BadState, "Migration not in expected state: active"));
}

/// M: QEMU's `ram_transferred_add` files bytes by the guest's run state: running → precopy,
/// stopped in postcopy → postcopy, stopped otherwise → downtime. Bytes sent while the user
/// has stopped the guest (`set_vm_running(false)`) are downtime bytes.
#[test]
fn m_ram_transferred_add_files_bytes_by_the_guests_run_state() {
    let rig = postcopy_rig(); // 10,000,000 precopy bytes so far
    rig.sess.set_vm_running(false);
    rig.sess.record_transferred(Channel::Main, 300);
    rig.sess.set_vm_running(true);
    rig.sess.record_transferred(Channel::Main, 20);
    rig.dev.set(pending(1_000_000, 0, 5_000_000));
    assert_eq!(rig.step().action, Action::StartPostcopy);
    rig.sess.postcopy_start(rig.now).unwrap();
    rig.sess.record_transferred(Channel::Main, 4000);
    rig.sess.record_transferred(Channel::Multifd, 5);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(
        (s.precopy_bytes, s.downtime_bytes, s.postcopy_bytes, s.multifd_bytes),
        (10_000_020, 300, 4000, 5)
    );
}

/// N: while paused before switchover QEMU's migration thread waits in
/// `migration_switchover_prepare`, so `migration_update_counters` closes no window: the last
/// window's 800 Mbps stays however long the pause lasts.
#[test]
fn n_no_window_closes_while_migration_switchover_prepare_waits() {
    let mut rig = rig_at_100_mb_per_s_with(|c| c.pause_before_switchover = true);
    rig.dev.set(pending(0, 1_000_000, 0));
    assert_eq!(rig.step().action, Action::Switchover);
    assert!(!rig.sess.switchover_begin(rig.now).unwrap().proceed);
    for _ in 0..20 {
        rig.now += 100;
        assert!(!rig.sess.update_counters(rig.now).unwrap());
    }
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.mbps, s.threshold_bytes), (800.0, 30_000_000));
}
