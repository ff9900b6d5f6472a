//! Progress tracking, stall detection and downtime advice (docs/design.md §Beyond QEMU).
//!
//! At each pass (each exact query of the loop) the system-wide remaining is compared with the
//! figure of the last pass that made progress (the first pass counts as progress). A pass that
//! gets below it by more than `stall-margin` percent is progress; `stall-passes` passes in a
//! row without progress make a stall. A stall ends with the next pass that makes progress.
//! Measuring against the last progress rather than the lowest figure ever seen lets a slow,
//! steady decline (1 % a pass) count as progress once it adds up to the margin, while a
//! migration that only wobbles does not. The lowest remaining seen is reported as
//! `best-remaining`.
//!
//! The advice is the downtime limit that would let the migration switch over with the figures
//! of now: the expected downtime plus `downtime-headroom` percent, rounded up to whole ms.

/// Progress of one migration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallTracker {
    /// Best (lowest) remaining seen at a pass; `None` before the first pass.
    pub best_remaining: Option<u64>,
    /// The remaining of the last pass that made progress: what the next must beat.
    pub progress_mark: Option<u64>,
    /// Passes since the mark was last beaten by the margin.
    pub passes_since_progress: u64,
    /// `passes_since_progress >= stall-passes`.
    pub stalled: bool,
}

/// What one pass changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// This pass beat the last progress mark by the margin (or was the first).
    pub progress: bool,
    /// This pass started a stall (report it once).
    pub became_stalled: bool,
}

impl StallTracker {
    /// Records the remaining bytes of one pass.
    pub fn observe(&mut self, remaining: u64, margin_pct: u64, stall_passes: u64) -> PassOutcome {
        self.best_remaining = Some(self.best_remaining.map_or(remaining, |b| b.min(remaining)));
        let progress = match self.progress_mark {
            None => true,
            // remaining < best * (1 - margin): in integers, without overflow.
            Some(best) => {
                (remaining as u128) * 100 < (best as u128) * (100u128.saturating_sub(margin_pct as u128))
            }
        };
        if progress {
            self.progress_mark = Some(remaining);
            self.passes_since_progress = 0;
            self.stalled = false;
            return PassOutcome { progress, became_stalled: false };
        }
        self.passes_since_progress = self.passes_since_progress.saturating_add(1);
        let was = self.stalled;
        self.stalled = self.passes_since_progress >= stall_passes.max(1);
        PassOutcome { progress, became_stalled: self.stalled && !was }
    }
}

/// `expected × (1 + headroom%)`, rounded up to whole ms; 0 when the expected downtime is not
/// known (negative or `INT64_MAX`: no bandwidth estimate), since no limit can be advised then.
pub fn recommended_downtime(expected_ms: i64, headroom_pct: u64) -> u64 {
    if expected_ms < 0 || expected_ms == i64::MAX {
        return 0;
    }
    let scaled = (expected_ms as u128) * (100 + headroom_pct as u128);
    u64::try_from(scaled.div_ceil(100)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_remaining_is_the_lowest_seen_while_progress_is_measured_from_the_last_mark() {
        let mut t = StallTracker::default();
        t.observe(1000, 4, 5);
        // 990 and 980: lower, but not 4 % below the mark of 1000.
        assert!(!t.observe(990, 4, 5).progress);
        assert!(!t.observe(980, 4, 5).progress);
        assert_eq!(t.best_remaining, Some(980));
        assert_eq!(t.progress_mark, Some(1000));
        // 959 adds up to 4.1 % below the mark: progress, and the new mark.
        assert!(t.observe(959, 4, 5).progress);
        assert_eq!(t.progress_mark, Some(959));
        // A bounce up does not raise the best.
        t.observe(2000, 4, 5);
        assert_eq!(t.best_remaining, Some(959));
    }

    #[test]
    fn five_passes_without_four_percent_progress_stall_once() {
        let mut t = StallTracker::default();
        assert!(t.observe(1000, 4, 5).progress);
        // 961 is only 3.9 % below 1000: no progress.
        for _ in 0..4 {
            let o = t.observe(961, 4, 5);
            assert!(!o.progress && !o.became_stalled);
        }
        assert!(t.observe(1000, 4, 5).became_stalled);
        assert!(t.stalled);
        assert!(!t.observe(1000, 4, 5).became_stalled, "reported once");
        assert_eq!(t.passes_since_progress, 6);
        // 959 is 4.1 % below: progress ends the stall.
        assert!(t.observe(959, 4, 5).progress);
        assert!(!t.stalled);
        assert_eq!(t.best_remaining, Some(959));
    }

    #[test]
    fn advice_is_expected_plus_headroom_rounded_up() {
        assert_eq!(recommended_downtime(1909, 10), 2100);
        assert_eq!(recommended_downtime(1000, 10), 1100);
        assert_eq!(recommended_downtime(i64::MAX, 10), 0);
        assert_eq!(recommended_downtime(i64::MAX - 1, 1000), u64::MAX);
    }
}
