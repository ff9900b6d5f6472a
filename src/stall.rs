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
//!
//! **Round-aware advice** (issue 12; docs/design.md §Beyond QEMU). QEMU syncs as soon as the
//! remaining falls below the threshold `T` (`ram_save_pending`, migration/ram.c: `remaining_size
//! < max_size`). A limit raised at a sync, when `D` bytes were found, ends the round early: it
//! sends `D − T` at the precopy rate `p` (the bandwidth window's measured rate) and syncs after
//! `(D − T) / p` seconds. What that sync finds is what was still unsent (just under `T`) plus
//! what the guest wrote meanwhile; for it to fit under `T` the guest's writes of the shortened
//! round, `r (D − T) / p` at its write rate `r`, must fit in the `T` still unsent: `T ≥
//! r (D − T) / p`, i.e. `T ≥ r D / (p + r)`. In ms of downtime, the expected downtime's byte
//! part times `r / (p + r)`. The library sees only the sync figures, from which `r` cannot be
//! told: on a plateau each full round of `D / p` seconds finds `~D`, so the rate it can infer is
//! `p` (a lower bound when the guest's working set caps what a round finds), and `r` may be
//! anything above. So the factor is used only with a measured `guest-dirty-rate`, with
//! `r = max(guest-dirty-rate, p)`; and only when the round-aware figure is above the current
//! `downtime-limit` (a limit at or above it is in force and the migration still stalls: the
//! measured rate was too low, and the plain advice stands), and only while the limit is still
//! the one in force when the migration's first stall was reported: once it was raised (the
//! round-aware advice applied, or any other) and the migration stalls on, the plain advice.
//! The factor holds for a guest that streams its writes (a sequential sweep: the writes of a
//! shortened round can fall in the part of the round still unsent); a guest that rewrites a
//! hot set re-dirties pages already sent in every round, however short, and needs the plain
//! advice (docs/watch.md gives the measured and simulated figures).

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
    /// `downtime-limit` when the first stall of the migration was reported (set by the
    /// engine). The round-aware advice is given only while the limit is still that one: once
    /// it has been raised and the migration stalls again, the advice is the plain one.
    pub limit_at_first_report: Option<u64>,
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

/// The round-aware factor `r / (p + r)` with `r = max(guest_dirty_rate, p)` (module text),
/// in [0.5, 1); `None` when no `guest-dirty-rate` is known (0) or no precopy rate has been
/// measured (not finite or not above 0).
pub fn round_factor(precopy_bw: f64, guest_dirty_rate: u64) -> Option<f64> {
    if guest_dirty_rate == 0 || !precopy_bw.is_finite() || precopy_bw <= 0.0 {
        return None;
    }
    let r = (guest_dirty_rate as f64).max(precopy_bw);
    Some(r / (precopy_bw + r))
}

/// The downtime the round-aware advice is based on: the byte part of `expected_ms` (without
/// `fixed_ms`) times `factor`, rounded up, plus `fixed_ms`.
pub fn round_aware_expected(expected_ms: i64, fixed_ms: u64, factor: f64) -> i64 {
    if expected_ms < 0 || expected_ms == i64::MAX {
        return expected_ms;
    }
    let fixed = i64::try_from(fixed_ms).unwrap_or(i64::MAX).min(expected_ms);
    let bytes_ms = (expected_ms - fixed) as f64 * factor;
    (bytes_ms.ceil() as i64).saturating_add(fixed)
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

    #[test]
    fn the_round_factor_needs_a_measured_rate_and_takes_the_precopy_rate_as_its_floor() {
        let mib = 1_048_576.0;
        // 40 MiB/s written, 32 MiB/s sent: 40 / 72.
        let f = round_factor(32.0 * mib, 40 * 1_048_576).unwrap();
        assert!((f - 40.0 / 72.0).abs() < 1e-12);
        // A measured rate below the precopy rate: r = p, 1/2.
        assert_eq!(round_factor(32.0 * mib, 16 * 1_048_576), Some(0.5));
        // No measured rate, or no bandwidth yet: none.
        assert_eq!(round_factor(32.0 * mib, 0), None);
        assert_eq!(round_factor(0.0, 40 * 1_048_576), None);
        assert_eq!(round_factor(f64::NAN, 40 * 1_048_576), None);
        assert_eq!(round_factor(f64::INFINITY, 40 * 1_048_576), None);
    }

    #[test]
    fn the_round_aware_expected_scales_the_byte_part_only() {
        // 8000 ms × 40/72 = 4444.4 → 4445; with 1000 ms fixed: 7000 × 40/72 = 3888.9 → 3889,
        // + 1000 = 4889.
        assert_eq!(round_aware_expected(8000, 0, 40.0 / 72.0), 4445);
        assert_eq!(round_aware_expected(8000, 1000, 40.0 / 72.0), 4889);
        // A fixed part above the expected (cannot happen: it is in it) takes all of it.
        assert_eq!(round_aware_expected(500, 1000, 0.5), 500);
        assert_eq!(round_aware_expected(i64::MAX, 0, 0.5), i64::MAX);
        assert_eq!(round_aware_expected(-1, 0, 0.5), -1);
    }
}
