//! The 100 ms bandwidth window of the byte counters (QEMU's `migration_update_counters`,
//! docs/qemu-model.md): pages per second from the pages the RAM model records, and a window
//! updated at its own opening millisecond.

/// counters.rs `Counters::record_pages` / `Counters::pages`: the pages the RAM model records
/// make `pages-per-second` (docs/qemu-model.md: `migration_update_counters`, pages / (ms /
/// 1000.0)). 3000 normal + 1000 zero pages in the window 0 -> 100 ms: 4000 / 0.1 = 40000,
/// then 500 pages in the next window: 5000. (Only the C golden files saw this figure.)
#[test]
fn pages_recorded_by_the_ram_model_make_pages_per_second() {
    use std::sync::Arc;
    use switchover::counters::Channel;
    use switchover::ram::Ram;
    use switchover::Session;
    let s = Arc::new(Session::new());
    let ram = Ram::new(&s, 1 << 30, 4096, None).unwrap();
    ram.set_dirty_pages(100_000).unwrap();
    s.migration_start(0).unwrap();
    s.setup_done(0).unwrap();
    ram.record_sent(3000, 1000);
    s.record_transferred(Channel::Main, 3000 * 4096);
    assert!(s.update_counters(100).unwrap());
    assert_eq!(s.snapshot(100).pages_per_second, 40_000);
    ram.record_sent(400, 100);
    assert!(s.update_counters(200).unwrap());
    assert_eq!(s.snapshot(200).pages_per_second, 5_000);
    // No destination page requests are ever recorded by the library (QEMU counts them on the
    // destination's requests): `postcopy-requests` stays 0 (docs/mutants.md).
    assert_eq!(s.snapshot(200).postcopy_requests, 0);
    let qm: serde_json::Value = serde_json::from_str(&s.query_migrate_json(200)).unwrap();
    assert_eq!(qm["ram"]["postcopy-requests"], 0);
    assert_eq!(qm["ram"]["pages-per-second"], 5_000);
}

/// counters.rs `Counters::update`: a call at the very millisecond the window opened closes
/// nothing and keeps the window as it is (`now_ms < start` is the only restart). Bytes sent
/// after the window at 100 opened, with a second update at 100, still count in the window
/// closed at 200: 1,000,000 B in 100 ms = 80 Mbps (QEMU's `migration_update_counters`).
/// (Restarting the window on `now == start` dropped them and survived.)
#[test]
fn an_update_at_the_windows_own_start_keeps_its_bytes() {
    use std::sync::Arc;
    use switchover::counters::Channel;
    use switchover::Session;
    let s = Arc::new(Session::new());
    s.migration_start(0).unwrap();
    s.setup_done(0).unwrap();
    assert!(s.update_counters(100).unwrap());
    s.record_transferred(Channel::Main, 1_000_000);
    assert!(!s.update_counters(100).unwrap());
    assert!(s.update_counters(200).unwrap());
    assert_eq!(s.snapshot(200).mbps, 80.0);
}
