//! The ETA: how long until the migration can switch over, from the window bandwidth, the
//! remaining figure and its trend over the last passes.
//!
//! # Formula
//! A pre-copy round sends what was dirty at the last sync; what the guest writes meanwhile is
//! found at the next sync. With `q` the ratio of one pass's remaining to the previous one's
//! (`q < 1` while the migration converges), the rounds still to come send
//! `R + qR + q²R + …` bytes until what is left fits the threshold `T`, so at the switchover
//! drain rate `D` (bytes of remaining per second):
//!
//! ```text
//! eta = (R − T) / (D × (1 − q))      seconds, rounded up to whole ms
//! ```
//!
//! - `R` is the system-wide remaining now (the last query's total, fast or exact), `T` the
//!   threshold now.
//! - `D` is how fast the remaining falls while a round runs: from the first query after the
//!   last exact one to the latest fast query, once that spans at least [`DRAIN_MIN_MS`];
//!   before that, the window bandwidth `B` (bytes/s, the figure the decision uses). Not the
//!   previous round's rate: QEMU sends the zero pages of the first round at its end, so the
//!   first round ends draining far faster than any later round of dirtied pages (taking it
//!   over made the ETA 62 % short after the first sync of a real QEMU 7.2 run). The remaining counts pages, the wire
//!   carries bytes: a zero page counts 4 KiB in the remaining and a few bytes on the wire
//!   (QEMU's `duplicate` pages), so the remaining of a mostly empty guest falls several times
//!   faster than `B`, and an ETA from `B` alone was 2–4× too long on an idle QEMU 7.2 guest.
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

/// How long a round must have run before its own drain rate is used (ms).
pub const DRAIN_MIN_MS: u64 = 1000;

/// How fast the remaining falls within a round (between exact queries): bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainTracker {
    /// The first query of the current round: (ms, remaining).
    round_start: Option<(u64, u64)>,
    /// The latest fast query of the current round.
    last: Option<(u64, u64)>,
}

impl DrainTracker {
    /// Records one query's total at `now_ms`; `exact` (or final) queries end the round: the
    /// next round starts from what they found.
    pub fn observe(&mut self, now_ms: u64, remaining: u64, exact: bool) {
        if exact {
            self.round_start = Some((now_ms, remaining));
            self.last = None;
            return;
        }
        match (self.round_start, self.last) {
            // A figure that grew without a sync (a device's state grew, a new handler): the
            // round starts again from it.
            (Some(_), Some((_, r))) if remaining > r => {
                self.round_start = Some((now_ms, remaining));
                self.last = None;
            }
            (Some((_, r0)), None) if remaining > r0 => {
                self.round_start = Some((now_ms, remaining));
            }
            (None, _) => self.round_start = Some((now_ms, remaining)),
            _ => self.last = Some((now_ms, remaining)),
        }
    }

    /// The current round's rate, once it spans [`DRAIN_MIN_MS`] and fell; else `None`.
    pub fn rate(&self) -> Option<f64> {
        let (t0, r0) = self.round_start?;
        let (t, r) = self.last?;
        let ms = t.checked_sub(t0)?;
        (ms >= DRAIN_MIN_MS && r < r0).then(|| (r0 - r) as f64 / (ms as f64 / 1000.0))
    }
}

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
/// `drain_rate` is [`DrainTracker::rate`]; without it the window bandwidth is used.
#[allow(clippy::too_many_arguments)]
pub fn eta_ms(
    history: &PassHistory,
    remaining: u64,
    threshold: u64,
    switchover_bw: f64,
    drain_rate: Option<f64>,
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
    let rate = drain_rate.filter(|d| d.is_finite() && *d > 0.0).unwrap_or(switchover_bw);
    if !rate.is_finite() || rate <= 0.0 {
        return ETA_NEVER;
    }
    let Some(q) = history.ratio(trend_passes, margin_pct) else { return ETA_NEVER };
    let ms = (remaining - threshold) as f64 / (rate * (1.0 - q)) * 1000.0;
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
        assert_eq!(eta_ms(&history(&[]), 100 * mib, 10 * mib, 10.0 * mib as f64, None, false, 5, 4), 9000);
        assert_eq!(eta_ms(&history(&[500]), 100 * mib, 10 * mib, 10.0 * mib as f64, None, false, 5, 4), 9000);
    }

    #[test]
    fn a_falling_remaining_stretches_the_eta_by_one_over_one_minus_q() {
        // Passes 800, 200 (q = 0.25, a guest dirtying at a quarter of the bandwidth):
        // 64 MiB left over a 4 MiB threshold at 32 MiB/s = 60/32 s / 0.75 = 2.5 s.
        let mib = 1u64 << 20;
        let h = history(&[800 * mib, 200 * mib]);
        assert_eq!(eta_ms(&h, 64 * mib, 4 * mib, 32.0 * mib as f64, None, false, 5, 4), 2500);
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
        assert_eq!(eta_ms(&h, 980, 10, 1e6, None, false, 5, 4), ETA_NEVER);
        // Growing.
        assert_eq!(eta_ms(&history(&[1000, 2000]), 2000, 10, 1e6, None, false, 5, 4), ETA_NEVER);
        // Stalled, whatever the trend says.
        assert_eq!(eta_ms(&history(&[1000, 100]), 100, 10, 1e6, None, true, 5, 4), ETA_NEVER);
        // No bandwidth yet.
        assert_eq!(eta_ms(&history(&[]), 100, 10, 0.0, None, false, 5, 4), ETA_NEVER);
        assert_eq!(eta_ms(&history(&[]), 100, 10, f64::NAN, None, false, 5, 4), ETA_NEVER);
        // Far too slow to fit in 64 bits of ms.
        assert_eq!(eta_ms(&history(&[]), u64::MAX, 0, 1e-9, None, false, 5, 4), ETA_NEVER);
    }

    #[test]
    fn zero_once_the_remaining_fits_the_threshold_and_only_the_last_passes_count() {
        assert_eq!(eta_ms(&history(&[]), 10, 10, 0.0, None, false, 5, 4), 0);
        assert_eq!(eta_ms(&history(&[]), 10, 10, 1e6, None, true, 5, 4), ETA_NEVER);
        // An early flat stretch no longer counts once five falling passes follow it.
        let h = history(&[1000, 1000, 1000, 800, 640, 512, 410, 328]);
        assert!(h.ratio(5, 4).is_some());
        // (328 / 1000)^(1/6) = 0.830448…; compared within 1e-12, not bit for bit: powf's last
        // bit is the platform's (and Miri perturbs it on purpose).
        let q = h.ratio(7, 4).expect("a trend over seven passes");
        assert!((q - (328.0f64 / 1000.0).powf(1.0 / 6.0)).abs() < 1e-12, "{q}");
        assert!((q - 0.830_448).abs() < 1e-6, "{q}");
        // Older passes drop out of the kept history.
        let mut long = PassHistory::default();
        (0..100).for_each(|i| long.record(1000 - i));
        assert_eq!(long.remaining.len(), KEPT);
        assert_eq!(long.remaining.front(), Some(&(1000 - 36)));
    }
}

#[cfg(test)]
mod drain_tests {
    use super::*;

    #[test]
    fn the_round_that_falls_gives_the_rate_once_it_ran_a_second() {
        let mut d = DrainTracker::default();
        assert_eq!(d.rate(), None);
        d.observe(0, 1_000_000_000, true);
        d.observe(500, 900_000_000, false);
        // Half a second is too short to judge.
        assert_eq!(d.rate(), None);
        // 300 MB in 1.5 s: 200 MB/s (zero pages fall faster than the wire carries).
        d.observe(1500, 700_000_000, false);
        assert_eq!(d.rate(), Some(200_000_000.0));
        // A sync starts a new round; until it has run a second there is no rate (the caller
        // takes the window bandwidth).
        d.observe(1600, 400_000_000, true);
        d.observe(2000, 390_000_000, false);
        assert_eq!(d.rate(), None);
        // 100 MB in 1 s.
        d.observe(2600, 300_000_000, false);
        assert_eq!(d.rate(), Some(100_000_000.0));
        // A figure that grows without a sync restarts the round.
        d.observe(2700, 500_000_000, false);
        d.observe(3000, 490_000_000, false);
        assert_eq!(d.rate(), None);
        // A round that does not fall has no rate either.
        d.observe(4000, 400_000_000, true);
        d.observe(5500, 400_000_000, false);
        assert_eq!(d.rate(), None);
    }

    #[test]
    fn the_eta_uses_the_drain_rate_when_there_is_one() {
        // 384 MiB over a 1 MiB threshold: 3 s draining at 128 MiB/s, 12 s at a 32 MiB/s
        // window.
        let (mib, h) = (1u64 << 20, PassHistory::default());
        let (r, t) = (385 * mib, mib);
        assert_eq!(eta_ms(&h, r, t, 32.0 * mib as f64, Some(128.0 * mib as f64), false, 5, 4), 3000);
        assert_eq!(eta_ms(&h, r, t, 32.0 * mib as f64, None, false, 5, 4), 12000);
        assert_eq!(eta_ms(&h, r, t, 32.0 * mib as f64, Some(0.0), false, 5, 4), 12000);
    }
}
