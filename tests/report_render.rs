//! The report renderers against QEMU's own layout, with the seed's figures
//! (docs/qemu-model.md §HMP and issue "Monitor interface").
use switchover::report::{MigrationInfo, RamInfo, XSwitchover};
use switchover::state::MigrationStatus;

fn seed_active() -> MigrationInfo {
    MigrationInfo {
        status: MigrationStatus::Active,
        ram: Some(RamInfo {
            transferred: 1_267_015_352, // 1.18 GiB
            remaining: 1_460_288_880,   // 1.36 GiB
            total: 4_316_200_960,       // 4.02 GiB
            duplicate: 388_148,
            normal: 307_923,
            normal_bytes: 307_923 * 4096,
            dirty_pages_rate: 0,
            mbps: 840.5,
            dirty_sync_count: 1,
            postcopy_requests: 0,
            page_size: 4096,
            multifd_bytes: 0,
            pages_per_second: 25_660,
            precopy_bytes: 1_267_015_352,
            downtime_bytes: 0,
            postcopy_bytes: 0,
            dirty_sync_missed_zero_copy: 0,
        }),
        remaining: Some(1_460_288_880),
        vfio_transferred: None,
        total_time: Some(12_080),
        expected_downtime: Some(300),
        downtime: None,
        setup_time: Some(14),
        error_desc: None,
        x_switchover: None,
    }
}

#[test]
fn hmp_seed_sample_is_reproduced() {
    let expected = concat!(
        "Status: \t\tactive\n",
        "Time (ms): \t\ttotal=12080, setup=14, exp_down=300\n",
        "Remaining: \t\t1.36 GiB\n",
        "RAM info:\n",
        "  Throughput (Mbps): \t840.50\n",
        "  Sizes: \t\tpagesize=4 KiB, total=4.02 GiB\n",
        "  Transfers: \t\ttransferred=1.18 GiB, remain=1.36 GiB\n",
        "    Channels: \t\tprecopy=1.18 GiB, multifd=0 B, postcopy=0 B\n",
        "    Page Types: \tnormal=307923, zero=388148\n",
        "  Page Rates (pps): \ttransfer=25660\n",
        "  Others: \t\tdirty_syncs=1\n",
    );
    assert_eq!(seed_active().to_hmp_text(), expected);
}

#[test]
fn hmp_optional_figures_appear_only_when_non_zero() {
    let mut info = seed_active();
    info.vfio_transferred = Some(8 * 1024 * 1024);
    let ram = info.ram.as_mut().unwrap();
    ram.dirty_pages_rate = 4;
    ram.postcopy_requests = 57_503;
    ram.downtime_bytes = 32_312_649;
    let text = info.to_hmp_text();
    assert!(text.contains("    Channels: \t\tprecopy=1.18 GiB, multifd=0 B, postcopy=0 B, vfio=8 MiB\n"));
    assert!(text.contains("  Page Rates (pps): \ttransfer=25660, dirty=4\n"));
    assert!(text.contains("  Others: \t\tdirty_syncs=1, postcopy_req=57503, downtime_bytes=32312649\n"));
}

#[test]
fn hmp_stalled_line_only_while_stalled() {
    let mut info = seed_active();
    info.x_switchover = Some(XSwitchover { stalled: false, ..Default::default() });
    assert!(!info.to_hmp_text().contains("Stalled"));
    info.x_switchover = Some(XSwitchover {
        stalled: true,
        passes_since_progress: 5,
        best_remaining: 2_050_000_000,
        recommended_downtime: 2101,
        ..Default::default()
    });
    assert!(info.to_hmp_text().contains(
        "Remaining: \t\t1.36 GiB\nStalled: \t\t5 passes, best remaining 1.91 GiB, downtime-limit 2101 ms would converge\nRAM info:\n"
    ));
    info.x_switchover.as_mut().unwrap().recommended_downtime = 0;
    assert!(info.to_hmp_text().contains(
        "Stalled: \t\t5 passes, best remaining 1.91 GiB, no downtime-limit would converge\n"
    ));
}

#[test]
fn hmp_failed_shows_error_and_no_time_line_without_time() {
    let mut info = MigrationInfo::empty();
    info.status = MigrationStatus::Failed;
    info.error_desc = Some("Unable to write to socket: Broken pipe".into());
    assert_eq!(info.to_hmp_text(), "Status: \t\tfailed (Unable to write to socket: Broken pipe)\n");
}

#[test]
fn qmp_none_is_an_empty_object() {
    assert_eq!(MigrationInfo::empty().to_qmp_json(), "{}");
}

/// The member names of a JSON object, in the order the text has them.
fn keys(v: &serde_json::Value) -> Vec<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}

#[test]
fn qmp_member_order_is_qemus() {
    // docs/qemu-model.md §query-migrate: `status, ram, remaining, vfio, total-time,
    // expected-downtime, downtime, setup-time, error-desc`; the library's `x-switchover`
    // comes after QEMU's members (docs/design.md §Reports). Every member present at once,
    // so a swap of any two shows (also `remaining` with `ram.remaining`).
    let mut info = seed_active();
    info.vfio_transferred = Some(1);
    info.downtime = Some(7);
    info.error_desc = Some("e".into());
    info.x_switchover = Some(XSwitchover {
        threshold_bytes: 1,
        switchover_bandwidth: 2,
        last_sync_bytes: 3,
        stalled: false,
        passes_since_progress: 4,
        best_remaining: 5,
        recommended_downtime: 6,
        eta: 8,
        extensions_in_use: false,
        policy: None,
    });
    let json = info.to_qmp_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        keys(&v),
        [
            "status",
            "ram",
            "remaining",
            "vfio",
            "total-time",
            "expected-downtime",
            "downtime",
            "setup-time",
            "error-desc",
            "x-switchover"
        ],
        "{json}"
    );
    // §query-migrate, `ram` (all members present), in this order.
    assert_eq!(
        keys(&v["ram"]),
        [
            "transferred",
            "remaining",
            "total",
            "duplicate",
            "normal",
            "normal-bytes",
            "dirty-pages-rate",
            "mbps",
            "dirty-sync-count",
            "postcopy-requests",
            "page-size",
            "multifd-bytes",
            "pages-per-second",
            "precopy-bytes",
            "downtime-bytes",
            "postcopy-bytes",
            "dirty-sync-missed-zero-copy"
        ],
        "{json}"
    );
    assert_eq!(keys(&v["vfio"]), ["transferred"]);
    // Each member carries its own figure (a swap of two same-typed fields shows here).
    assert_eq!(v["remaining"], 1_460_288_880u64);
    assert_eq!(v["ram"]["remaining"], 1_460_288_880u64);
    assert_eq!(v["ram"]["transferred"], 1_267_015_352u64);
    assert_eq!(v["ram"]["total"], 4_316_200_960u64);
    assert_eq!(v["ram"]["duplicate"], 388_148);
    assert_eq!(v["ram"]["normal"], 307_923);
    assert_eq!(v["ram"]["normal-bytes"], 307_923u64 * 4096);
    assert_eq!(v["ram"]["pages-per-second"], 25_660);
    assert_eq!(v["ram"]["precopy-bytes"], 1_267_015_352u64);
    assert_eq!(v["vfio"]["transferred"], 1);
    assert_eq!(v["total-time"], 12_080);
    assert_eq!(v["expected-downtime"], 300);
    assert_eq!(v["downtime"], 7);
    assert_eq!(v["setup-time"], 14);
    assert_eq!(v["error-desc"], "e");
    assert_eq!(
        v["x-switchover"],
        serde_json::json!({"threshold": 1, "switchover-bandwidth": 2, "last-sync-bytes": 3,
            "stalled": false, "passes-since-progress": 4, "best-remaining": 5,
            "recommended-downtime": 6, "eta": 8})
    );
    assert!(json.starts_with("{\"status\": \"active\", \"ram\": {\"transferred\": 1267015352, \"remaining\": 1460288880, \"total\": 4316200960, \"duplicate\": 388148, \"normal\": 307923, \"normal-bytes\": 1261252608, \"dirty-pages-rate\": 0, \"mbps\": 840.5, \"dirty-sync-count\": 1,"));
}

/// Issue 12 item 4: in `active`, one line after `Remaining:` says either the stall or, while a
/// library extension is in use, the ETA (the time until the switchover, `never` when the
/// remaining does not fall). With no extension in use the text is QEMU's (docs/qemu-model.md).
#[test]
fn hmp_eta_line_in_active_unless_stalled() {
    let mut info = seed_active();
    info.x_switchover = Some(XSwitchover { eta: 12_345, ..Default::default() });
    assert!(info.to_hmp_text().contains("Remaining: \t\t1.36 GiB\nRAM info:\n"));
    info.x_switchover.as_mut().unwrap().extensions_in_use = true;
    assert!(info.to_hmp_text().contains("Remaining: \t\t1.36 GiB\nETA: \t\t\t12.3 s\nRAM info:\n"));
    info.x_switchover.as_mut().unwrap().eta = 850;
    assert!(info.to_hmp_text().contains("ETA: \t\t\t850 ms\n"));
    info.x_switchover.as_mut().unwrap().eta = u64::MAX;
    assert!(info.to_hmp_text().contains("ETA: \t\t\tnever\n"));
    // Stalled: the Stalled line instead.
    let x = info.x_switchover.as_mut().unwrap();
    x.stalled = true;
    x.passes_since_progress = 5;
    let text = info.to_hmp_text();
    assert!(!text.contains("ETA:") && text.contains("Stalled: \t\t5 passes"), "{text}");
    // Not in other states.
    info.status = MigrationStatus::Device;
    info.x_switchover.as_mut().unwrap().stalled = false;
    assert!(!info.to_hmp_text().contains("ETA:"));
}

#[test]
fn query_migrate_x_switchover_ends_with_eta() {
    let mut info = seed_active();
    info.x_switchover = Some(XSwitchover { recommended_downtime: 7, eta: u64::MAX, ..Default::default() });
    let json = info.to_qmp_json();
    assert!(json.ends_with("\"recommended-downtime\": 7, \"eta\": 18446744073709551615}}"), "{json}");
}
