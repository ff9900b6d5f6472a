//! The committed C header must equal what build.rs generated from the sources in this build.
#[test]
fn header_is_fresh() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/switchover.h"));
    let committed = include_str!("../include/switchover.h");
    assert!(
        generated == committed,
        "include/switchover.h is stale: regenerate it with `SWO_UPDATE_HEADER=1 cargo build` and commit it"
    );
}

/// Issue 17 item 2: each ABI enum is declared once, in the core (`abi_enum!`: numbers and
/// names); the header's `#define`s come from the literal constants of `src/ffi` that cbindgen
/// reads. They must be the same table both ways: every value has its `#define` with its
/// number, and every `#define` of the prefix is a value (a constant added on one side only,
/// or renumbered, fails here).
mod tables {
    use std::collections::BTreeMap;
    use switchover::engine::{Action, Reason};
    use switchover::state::MigrationStatus;
    use switchover::vfio::DeviceState;
    use switchover::Code;

    /// `#define SWO_... <number>` lines of the committed header.
    fn defines(prefix: &str) -> BTreeMap<String, u32> {
        include_str!("../include/switchover.h")
            .lines()
            .filter_map(|l| l.strip_prefix("#define "))
            .filter_map(|l| l.split_once(' '))
            .filter(|(name, _)| name.starts_with(prefix))
            .filter_map(|(name, value)| Some((name.to_owned(), value.trim().parse().ok()?)))
            .collect()
    }

    /// The C name of a value from its table name (`pre-switchover` -> `PRE_SWITCHOVER`).
    fn c(prefix: &str, name: &str) -> String {
        format!("{prefix}{}", name.to_uppercase().replace('-', "_"))
    }

    fn same(prefix: &str, table: BTreeMap<String, u32>) {
        assert!(!table.is_empty());
        assert_eq!(defines(prefix), table, "the header's {prefix}* and the core's table differ");
    }

    #[test]
    fn status_codes() {
        let table = Code::ALL.iter().map(|c| (c.name().to_owned(), *c as u32)).collect();
        // SWO_OK and SWO_ERR_*: one prefix for both.
        let mut header = defines("SWO_ERR_");
        header.extend(defines("SWO_OK"));
        assert_eq!(header, table);
    }

    #[test]
    fn migration_status() {
        let table = MigrationStatus::ALL.iter().map(|s| (c("SWO_STATUS_", s.name()), *s as u32));
        same("SWO_STATUS_", table.collect());
    }

    #[test]
    fn step_actions() {
        let table = Action::ALL.iter().map(|a| (c("SWO_ACTION_", a.name()), *a as u32));
        same("SWO_ACTION_", table.collect());
    }

    #[test]
    fn reasons() {
        let table = Reason::ALL.iter().map(|r| (c("SWO_REASON_", r.name()), *r as u32));
        same("SWO_REASON_", table.collect());
    }

    #[test]
    fn vfio_states() {
        same(
            "SWO_VFIO_STATE_",
            DeviceState::ALL.iter().map(|d| (c("SWO_VFIO_STATE_", d.name()), *d as u32)).collect(),
        );
    }

    /// The tables are in numeric order from 0, so `ALL[n]` is the value numbered `n`.
    #[test]
    fn tables_count_from_zero() {
        assert!(Code::ALL.iter().enumerate().all(|(i, c)| *c as usize == i));
        assert!(MigrationStatus::ALL.iter().enumerate().all(|(i, s)| *s as usize == i));
        assert!(Action::ALL.iter().enumerate().all(|(i, a)| *a as usize == i));
        assert!(Reason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(DeviceState::ALL.iter().enumerate().all(|(i, d)| *d as usize == i));
    }
}
