//! Stall tracking and the downtime advice at their edges (src/stall.rs, docs/design.md
//! §Beyond QEMU): progress needs *more* than `stall-margin` percent below the last mark, and
//! no advice can be given for an expected downtime that is not known (QEMU's
//! `migration_downtime_calc_expected` never makes it negative, but the function is public).
use switchover::stall::{recommended_downtime, StallTracker};

/// Mark 1000 B, margin 4 %: 960 B is exactly 4 % below, not more: no progress; 959 B is.
#[test]
fn progress_needs_more_than_the_margin_below_the_mark() {
    let mut t = StallTracker::default();
    assert!(t.observe(1000, 4, 5).progress, "the first pass sets the mark");
    let o = t.observe(960, 4, 5);
    assert!(!o.progress);
    assert_eq!((t.progress_mark, t.passes_since_progress), (Some(1000), 1));
    assert!(t.observe(959, 4, 5).progress);
    assert_eq!((t.progress_mark, t.passes_since_progress), (Some(959), 0));
    // Margin 0: any drop is progress, the same figure is not.
    let mut t = StallTracker::default();
    t.observe(1000, 0, 5);
    assert!(!t.observe(1000, 0, 5).progress);
    assert!(t.observe(999, 0, 5).progress);
}

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
