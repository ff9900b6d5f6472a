//! How a session's snapshot becomes `query-migrate`'s members (`MigrationInfo::from_snapshot`),
//! for the figures QEMU sets differently once the migration completed, and the library's
//! `x-switchover.switchover-bandwidth`.
use switchover::engine::Snapshot;
use switchover::ram::RamFigures;
use switchover::report::MigrationInfo;
use switchover::state::MigrationStatus;
use switchover::Session;

/// A real snapshot (of a session that never migrated) with a RAM model's figures: 4 KiB
/// pages, 1000 of them dirty, 250 dirtied per second.
fn snapshot_in(status: MigrationStatus) -> Snapshot {
    let mut s = Session::new().snapshot(0);
    s.status = status;
    s.ram = Some(RamFigures {
        total_bytes: 1 << 30,
        page_size: 4096,
        dirty_pages: 1000,
        dirty_pages_rate: 250,
        ..Default::default()
    });
    s
}

fn ram_of(s: &Snapshot) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&MigrationInfo::from_snapshot(s).to_qmp_json()).unwrap();
    v["ram"].clone()
}

#[test]
fn while_active_ram_remaining_is_the_dirty_pages_and_the_dirty_rate_is_reported() {
    // populate_ram_info (migration/migration.c), state not COMPLETED:
    // remaining = ram_bytes_remaining() = dirty pages x page size = 1000 x 4096.
    let ram = ram_of(&snapshot_in(MigrationStatus::Active));
    assert_eq!(ram["remaining"], 4_096_000);
    assert_eq!(ram["dirty-pages-rate"], 250);
}

#[test]
fn once_completed_ram_remaining_and_the_dirty_rate_are_zero() {
    // populate_ram_info sets `remaining` and `dirty_pages_rate` only when the state is not
    // COMPLETED; the MigrationInfo is g_malloc0'd, so both read 0 once completed, whatever
    // the dirty bitmap last said.
    let ram = ram_of(&snapshot_in(MigrationStatus::Completed));
    assert_eq!(ram["remaining"], 0);
    assert_eq!(ram["dirty-pages-rate"], 0);
    assert_eq!(ram["total"], 1u64 << 30);
}

#[test]
fn switchover_bandwidth_is_reported_in_whole_bytes_per_second() {
    // 1 Gbit/s = 125,000,000 bytes/s (e.g. avail-switchover-bandwidth=125000000).
    let mut s = snapshot_in(MigrationStatus::Active);
    s.switchover_bw = 125_000_000.0;
    let info = MigrationInfo::from_snapshot(&s);
    assert_eq!(info.x_switchover.unwrap().switchover_bandwidth, 125_000_000);
    // A fraction of a byte is dropped, as C drops it converting a double to an integer
    // (QEMU's `migration_update_counters` stores `bandwidth * downtime` in a uint64_t):
    // 2.5 bytes/s is 2.
    s.switchover_bw = 2.5;
    assert_eq!(MigrationInfo::from_snapshot(&s).x_switchover.unwrap().switchover_bandwidth, 2);
}

#[test]
fn an_unknown_switchover_bandwidth_is_reported_as_zero() {
    // Before any window closed and with avail-switchover-bandwidth 0 the bandwidth is 0.
    let mut s = snapshot_in(MigrationStatus::Active);
    s.switchover_bw = 0.0;
    assert_eq!(MigrationInfo::from_snapshot(&s).x_switchover.unwrap().switchover_bandwidth, 0);
    // A NaN (no figure) is not a bandwidth either.
    s.switchover_bw = f64::NAN;
    assert_eq!(MigrationInfo::from_snapshot(&s).x_switchover.unwrap().switchover_bandwidth, 0);
}
