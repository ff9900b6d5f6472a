//! Progress tracking, stall detection and downtime advice (DESIGN.md §Beyond QEMU).
//!
//! At each pass (each exact query of the loop) the system-wide remaining is compared with the
//! best seen so far in this migration. A pass that gets below the best by more than
//! `stall-margin` percent is progress; `stall-passes` passes in a row without progress make a
//! stall. A stall ends with the next pass that makes progress.
//!
//! The advice is the downtime limit that would let the migration switch over with the figures
//! of now: the expected downtime plus `downtime-headroom` percent, rounded up to whole ms.

/// Progress of one migration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallTracker {
    /// Best (lowest) remaining seen at a pass; `None` before the first pass.
    pub best_remaining: Option<u64>,
    /// Passes since the best was last beaten by the margin.
    pub passes_since_progress: u64,
    /// `passes_since_progress >= stall-passes`.
    pub stalled: bool,
}

/// What one pass changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// This pass beat the best by the margin (or was the first).
    pub progress: bool,
    /// This pass started a stall (report it once).
    pub became_stalled: bool,
}

impl StallTracker {
    /// Records the remaining bytes of one pass.
    pub fn observe(&mut self, remaining: u64, margin_pct: u64, stall_passes: u64) -> PassOutcome {
        let progress = match self.best_remaining {
            None => true,
            // remaining < best * (1 - margin): in integers, without overflow.
            Some(best) => {
                (remaining as u128) * 100 < (best as u128) * (100u128.saturating_sub(margin_pct as u128))
            }
        };
        if progress {
            self.best_remaining = Some(remaining);
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
