//! The downtime advice's edge (src/stall.rs `recommended_downtime`, docs/design.md §Beyond
//! QEMU): no advice can be given for an expected downtime that is not known, which QEMU's
//! `migration_downtime_calc_expected` never makes negative, but the function is public.
use switchover::stall::recommended_downtime;

#[test]
fn no_advice_for_a_negative_or_unknown_expected_downtime() {
    for headroom in [0, 10, 1000] {
        assert_eq!(recommended_downtime(-1, headroom), 0);
        assert_eq!(recommended_downtime(i64::MIN, headroom), 0);
        assert_eq!(recommended_downtime(i64::MAX, headroom), 0);
    }
    // 1 ms with 10 % headroom: 1.1 ms, rounded up to 2.
    assert_eq!(recommended_downtime(1, 10), 2);
}
