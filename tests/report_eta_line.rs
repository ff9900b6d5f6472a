//! The HMP `ETA:` line's units (the library's own line, not QEMU's: `MigrationInfo::to_hmp_text`
//! documents it as `never`, `<n> ms` below a second, else `<s>.<d> s`; docs/watch.md §The ETA
//! says when the line is shown). The boundary: one second is no longer "below a second".
use switchover::report::{MigrationInfo, XSwitchover};
use switchover::state::MigrationStatus;

/// An `active` report with an extension in use, no stall, and the given ETA (ms).
fn active_with_eta(eta: u64) -> MigrationInfo {
    let mut info = MigrationInfo::empty();
    info.status = MigrationStatus::Active;
    info.x_switchover = Some(XSwitchover { eta, extensions_in_use: true, ..Default::default() });
    info
}

fn eta_line(eta: u64) -> String {
    let text = active_with_eta(eta).to_hmp_text();
    text.lines()
        .find(|l| l.starts_with("ETA:"))
        .unwrap_or_else(|| panic!("no ETA line in {text:?}"))
        .to_string()
}

#[test]
fn just_below_a_second_is_shown_in_milliseconds() {
    assert_eq!(eta_line(999), "ETA: \t\t\t999 ms");
}

#[test]
fn exactly_one_second_is_shown_in_seconds() {
    // 1000 ms = 1 s and 0 tenths.
    assert_eq!(eta_line(1000), "ETA: \t\t\t1.0 s");
}

#[test]
fn zero_is_shown_in_milliseconds() {
    assert_eq!(eta_line(0), "ETA: \t\t\t0 ms");
}
