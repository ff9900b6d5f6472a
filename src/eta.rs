//! The ETA: how long until the migration can switch over, from the window bandwidth, the
//! remaining figure and its trend over the last passes.
//!
//! # Formula
//! A pre-copy round sends what was dirty at the last sync; what the guest writes meanwhile is
//! found at the next sync. With `q` the ratio of one pass's remaining to the previous one's
//! (`q < 1` while the migration converges), the rounds still to come send
//! `R + qR + q²R + …` bytes until what is left fits the threshold `T`, so at the switchover
//! bandwidth `B` (bytes/s, the figure the decision uses):
//!
//! ```text
//! eta = (R − T) / (B × (1 − q))      seconds, rounded up to whole ms
//! ```
//!
//! - `R` is the system-wide remaining now (the last query's total, fast or exact), `T` the
//!   threshold now.
//! - `q = (R_last / R_first)^(1 / (n − 1))` over the last `n` passes (at most `stall-passes`,
//!   at least 2): the geometric mean of the per-pass ratios. Before two passes there is no
//!   trend and `q = 0` (the time to send `R − T` once).
//! - **Never** ([`ETA_NEVER`], `UINT64_MAX`) when the remaining does not fall: the stall
//!   detector reports a stall, or over those passes the last remaining is not `stall-margin`
//!   percent below the first (the same test the stall detector applies to one pass); also
//!   when no bandwidth has been measured yet (`B = 0`) or the result does not fit.
//! - `0` when `R <= T` (and no stall): the next pass can switch over.
use std::collections::VecDeque;

/// The ETA value meaning "no end in sight" (`UINT64_MAX`).
pub const ETA_NEVER: u64 = u64::MAX;

/// How many passes the history keeps (the trend uses at most `stall-passes` of them).
const KEPT: usize = 64;

/// The remaining bytes of the last passes (exact queries of the loop), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassHistory {
    remaining: VecDeque<u64>,
}

impl PassHistory {
    /// Records one pass's remaining.
    pub fn record(&mut self, remaining: u64) {
        if self.remaining.len() == KEPT {
            self.remaining.pop_front();
        }
        self.remaining.push_back(remaining);
    }

    /// The per-pass ratio `q` over the last `passes` passes (2 ≤ n ≤ `passes`), or `None` when
    /// the remaining did not fall by `margin_pct` percent over them. `Some(0.0)` with fewer
    /// than two passes.
    pub fn ratio(&self, passes: u64, margin_pct: u64) -> Option<f64> {
        let n = usize::try_from(passes).unwrap_or(KEPT).clamp(2, KEPT).min(self.remaining.len());
        if n < 2 {
            return Some(0.0);
        }
        let first = self.remaining[self.remaining.len() - n];
        let last = *self.remaining.back()?;
        let falls = (last as u128) * 100 < (first as u128) * (100u128.saturating_sub(margin_pct as u128));
        if !falls {
            return None;
        }
        // first > last >= 0, so first > 0.
        Some((last as f64 / first as f64).powf(1.0 / (n - 1) as f64))
    }
}

/// The ETA in ms (see the module documentation), [`ETA_NEVER`] when there is none.
pub fn eta_ms(
    history: &PassHistory,
    remaining: u64,
    threshold: u64,
    switchover_bw: f64,
    stalled: bool,
    trend_passes: u64,
    margin_pct: u64,
) -> u64 {
    // A stall first: between syncs the figure of a stalled migration may dip below the
    // threshold, but the next sync finds as much as ever.
    if stalled {
        return ETA_NEVER;
    }
    if remaining <= threshold {
        return 0;
    }
    if !switchover_bw.is_finite() || switchover_bw <= 0.0 {
        return ETA_NEVER;
    }
    let Some(q) = history.ratio(trend_passes, margin_pct) else { return ETA_NEVER };
    let ms = (remaining - threshold) as f64 / (switchover_bw * (1.0 - q)) * 1000.0;
    if !ms.is_finite() || ms >= u64::MAX as f64 {
        return ETA_NEVER;
    }
    ms.ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(figures: &[u64]) -> PassHistory {
        let mut h = PassHistory::default();
        figures.iter().for_each(|&r| h.record(r));
        h
    }

    #[test]
    fn without_a_trend_it_is_the_time_to_send_what_exceeds_the_threshold() {
        // 100 MiB left, 10 MiB fit, 10 MiB/s: 9 s.
        let mib = 1u64 << 20;
        assert_eq!(eta_ms(&history(&[]), 100 * mib, 10 * mib, 10.0 * mib as f64, false, 5, 4), 9000);
        assert_eq!(eta_ms(&history(&[500]), 100 * mib, 10 * mib, 10.0 * mib as f64, false, 5, 4), 9000);
    }

    #[test]
    fn a_falling_remaining_stretches_the_eta_by_one_over_one_minus_q() {
        // Passes 800, 200 (q = 0.25, a guest dirtying at a quarter of the bandwidth):
        // 64 MiB left over a 4 MiB threshold at 32 MiB/s = 60/32 s / 0.75 = 2.5 s.
        let mib = 1u64 << 20;
        let h = history(&[800 * mib, 200 * mib]);
        assert_eq!(eta_ms(&h, 64 * mib, 4 * mib, 32.0 * mib as f64, false, 5, 4), 2500);
        // Over three passes 1000, 250, 62.5: q = 0.25 as well.
        let h = history(&[4000, 1000, 250, 62]);
        let q = h.ratio(3, 4).unwrap();
        assert!((q - (62.0f64 / 1000.0).sqrt()).abs() < 1e-12, "{q}");
    }

    #[test]
    fn never_when_the_remaining_does_not_fall_by_the_margin_or_a_stall_is_reported() {
        let h = history(&[1000, 990, 980]);
        // 2 % over the window: below the 4 % margin.
        assert_eq!(h.ratio(5, 4), None);
        assert_eq!(eta_ms(&h, 980, 10, 1e6, false, 5, 4), ETA_NEVER);
        // Growing.
        assert_eq!(eta_ms(&history(&[1000, 2000]), 2000, 10, 1e6, false, 5, 4), ETA_NEVER);
        // Stalled, whatever the trend says.
        assert_eq!(eta_ms(&history(&[1000, 100]), 100, 10, 1e6, true, 5, 4), ETA_NEVER);
        // No bandwidth yet.
        assert_eq!(eta_ms(&history(&[]), 100, 10, 0.0, false, 5, 4), ETA_NEVER);
        assert_eq!(eta_ms(&history(&[]), 100, 10, f64::NAN, false, 5, 4), ETA_NEVER);
        // Far too slow to fit in 64 bits of ms.
        assert_eq!(eta_ms(&history(&[]), u64::MAX, 0, 1e-9, false, 5, 4), ETA_NEVER);
    }

    #[test]
    fn zero_once_the_remaining_fits_the_threshold_and_only_the_last_passes_count() {
        assert_eq!(eta_ms(&history(&[]), 10, 10, 0.0, false, 5, 4), 0);
        assert_eq!(eta_ms(&history(&[]), 10, 10, 1e6, true, 5, 4), ETA_NEVER);
        // An early flat stretch no longer counts once five falling passes follow it.
        let h = history(&[1000, 1000, 1000, 800, 640, 512, 410, 328]);
        assert!(h.ratio(5, 4).is_some());
        assert_eq!(h.ratio(7, 4), Some((328.0f64 / 1000.0).powf(1.0 / 6.0)));
        // Older passes drop out of the kept history.
        let mut long = PassHistory::default();
        (0..100).for_each(|i| long.record(1000 - i));
        assert_eq!(long.remaining.len(), KEPT);
        assert_eq!(long.remaining.front(), Some(&(1000 - 36)));
    }
}
