//! The 100 ms window and the threshold (QEMU-BEHAVIOUR.md §The 100 ms window), expected
//! downtime (§Expected downtime) and the byte counters.
mod engine_support;
use engine_support::*;
use switchover::counters::Channel;
use switchover::state::MigrationStatus;
use switchover::{Code, HandlerFlags, Session};

#[test]
fn one_megabyte_in_100_ms_at_300_ms_limit_gives_threshold_3_000_000() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.window(1_000_000);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.threshold_bytes, 3_000_000);
    assert_eq!(s.mbps, 80.0);
    assert_eq!(s.switchover_bw, 10_000_000.0);
}

#[test]
fn avail_switchover_bandwidth_divides_as_a_double() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.params(|p| p.avail_switchover_bandwidth = 4_000_500);
    rig.start();
    rig.window(1_000_000);
    let s = rig.sess.snapshot(rig.now);
    assert_eq!(s.threshold_bytes, 1_200_150);
    // mbps still reports what was measured.
    assert_eq!(s.mbps, 80.0);
}

#[test]
fn no_update_before_100_ms_and_threshold_is_0_until_the_first_window() {
    let rig = Rig::new(HandlerFlags::empty());
    rig.sess.migration_start(1000).unwrap();
    rig.sess.record_transferred(Channel::Main, 1_000_000);
    assert!(!rig.sess.update_counters(1099).unwrap());
    assert_eq!(rig.sess.snapshot(1099).threshold_bytes, 0);
    assert!(rig.sess.update_counters(1100).unwrap());
    assert_eq!(rig.sess.snapshot(1100).threshold_bytes, 3_000_000);
    // The next window starts at 1100.
    rig.sess.record_transferred(Channel::Main, 2_000_000);
    assert!(!rig.sess.update_counters(1199).unwrap());
    assert!(rig.sess.update_counters(1200).unwrap());
    assert_eq!(rig.sess.snapshot(1200).threshold_bytes, 6_000_000);
}

#[test]
fn replay_of_real_qemu_7_2_windows_matches_every_threshold_within_one_byte() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/qemu72-idle-windows.csv"
    ))
    .unwrap();
    let sess = Session::new();
    sess.migration_start(0).unwrap();
    sess.setup_done(0).unwrap();
    let mut now = 0u64;
    let mut rows = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.starts_with("transferred")) {
        let f: Vec<u64> = line.split(',').map(|x| x.trim().parse().unwrap()).collect();
        let (transferred, time_spent, max_size) = (f[0], f[1], f[3]);
        sess.record_transferred(Channel::Main, transferred);
        now += time_spent;
        assert!(sess.update_counters(now).unwrap());
        let threshold = sess.snapshot(now).threshold_bytes;
        assert!(
            threshold.abs_diff(max_size) <= 1,
            "row {rows}: {transferred} B in {time_spent} ms: threshold {threshold}, QEMU {max_size}"
        );
        rows += 1;
    }
    assert_eq!(rows, 184);
}

#[test]
fn a_clock_going_backwards_never_gives_negative_or_nan_figures() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.window(1_000_000);
    rig.sess.record_transferred(Channel::Main, 5_000_000);
    // 50 ms back in time: no window closes, the figures stay.
    assert!(!rig.sess.update_counters(50).unwrap());
    let s = rig.sess.snapshot(50);
    assert_eq!(s.threshold_bytes, 3_000_000);
    assert!(s.mbps.is_finite() && s.mbps >= 0.0);
    // total-time never goes negative either.
    assert_eq!(s.total_time_ms, 50);
    assert_eq!(rig.sess.snapshot(0).total_time_ms, 0);
    // The window restarted at 50: the next one closes at 150.
    assert!(!rig.sess.update_counters(149).unwrap());
    rig.sess.record_transferred(Channel::Main, 2_000_000);
    assert!(rig.sess.update_counters(150).unwrap());
    assert_eq!(rig.sess.snapshot(150).threshold_bytes, 6_000_000);
}

/// QEMU's `migration_downtime_calc_expected` reports `downtime-limit` while
/// `dirty_sync_count <= 1`, and `migrate_init` sets it to 1: only until the first exact pass
/// (pass 2). After it, 1,000,000 B at 10,000,000 B/s is 100 ms.
#[test]
fn migration_downtime_calc_expected_is_the_limit_only_before_the_first_exact_pass() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.dev.set(pending(0, 1_000_000, 0));
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.dirty_sync_count, s.expected_downtime_ms), (1, 300));
    rig.window(1_000_000);
    assert_eq!(rig.step().pass, 2);
    assert_eq!(rig.sess.snapshot(rig.now).expected_downtime_ms, 100);
}

#[test]
fn expected_downtime_100_ms_at_80_mbps_and_250_ms_with_avail_4_000_000() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    // precopy 0 forces an exact query every pass; at 10,000,000 B/s a 99 ms limit gives a
    // 990,000 B threshold, below the 1,000,000 B pending, so the loop keeps iterating.
    rig.params(|p| p.downtime_limit_ms = 99);
    rig.dev.set(pending(0, 1_000_000, 0));
    rig.window(1_000_000); // 80 Mbps
    rig.step();
    rig.step();
    let s = rig.sess.snapshot(rig.now);
    assert_eq!((s.dirty_sync_count, s.last_sync_bytes), (3, 1_000_000));
    assert_eq!(s.expected_downtime_ms, 100);
    rig.params(|p| p.avail_switchover_bandwidth = 4_000_000);
    rig.window(1_000_000);
    assert_eq!(rig.sess.snapshot(rig.now).expected_downtime_ms, 250);
}

#[test]
fn expected_downtime_is_int64_max_without_bandwidth() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.dev.set(pending(0, 1_000_000, 0));
    rig.window(0); // nothing sent: 0 bytes/s
    rig.step();
    rig.step();
    assert_eq!(rig.sess.snapshot(rig.now).expected_downtime_ms, i64::MAX);
}

#[test]
fn main_channel_bytes_count_by_status_and_multifd_separately() {
    let rig = Rig::new(HandlerFlags::empty());
    rig.sess.migration_start(0).unwrap();
    rig.sess.setup_done(0).unwrap();
    rig.sess.record_transferred(Channel::Main, 100);
    rig.sess.record_transferred(Channel::Multifd, 7);
    rig.sess.switchover_begin(1).unwrap();
    assert_eq!(rig.sess.status(), MigrationStatus::Device);
    rig.sess.record_transferred(Channel::Main, 20);
    let s = rig.sess.snapshot(2);
    assert_eq!(
        (s.precopy_bytes, s.downtime_bytes, s.postcopy_bytes, s.multifd_bytes, s.transferred),
        (100, 20, 0, 7, 127)
    );
}

#[test]
fn migration_start_resets_every_statistic() {
    let mut rig = Rig::new(HandlerFlags::empty());
    rig.start();
    rig.dev.set(pending(0, 10, 0));
    rig.window(1_000_000);
    rig.step();
    rig.sess.fail(rig.now, Some("boom")).unwrap();
    rig.sess.migration_start(5000).unwrap();
    let s = rig.sess.snapshot(5000);
    assert_eq!(s.status, MigrationStatus::Setup);
    assert_eq!(
        (s.transferred, s.threshold_bytes, s.dirty_sync_count, s.last_sync_bytes, s.remaining),
        (0, 0, 1, 0, 0),
        "migrate_init: statistics zeroed, then dirty-sync-count 1"
    );
    assert_eq!((s.total_time_ms, s.mbps, s.error_desc.clone()), (0, 0.0, None));
    assert_eq!(s.best_remaining, 0);
}

#[test]
fn update_counters_needs_a_migration_under_way() {
    let sess = Session::new();
    assert_eq!(sess.update_counters(100).unwrap_err().code, Code::BadState);
}

#[test]
fn record_transferred_from_many_threads_loses_nothing() {
    let sess = std::sync::Arc::new(Session::new());
    sess.migration_start(0).unwrap();
    sess.setup_done(0).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sess = sess.clone();
            std::thread::spawn(move || {
                let channel = if t % 2 == 0 { Channel::Main } else { Channel::Multifd };
                for _ in 0..10_000 {
                    sess.record_transferred(channel, 3);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = sess.snapshot(1);
    assert_eq!((s.precopy_bytes, s.multifd_bytes, s.transferred), (60_000, 60_000, 120_000));
}
