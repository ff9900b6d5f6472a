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
