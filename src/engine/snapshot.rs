//! A consistent copy of every figure the reports need (`query-migrate`, `info migrate`,
//! `swo_get_info`, `swo_get_advice`), computed when asked. Never calls a handler.
use crate::params::{Params, MAX_MIGRATE_DOWNTIME_MS};
use crate::ram::RamFigures;
use crate::eta::eta_ms;
use crate::stall::{recommended_downtime, StallTracker};
use crate::state::MigrationStatus::{
    self, Active, Cancelling, Device, PostcopyActive, PreSwitchover,
};
use super::{Calls, Host, Policy};
use super::policy::{ReasonFigures, Reason};
use super::EngineState;
use crate::params::PolicyAction;

/// The downtime advice derived from the stall state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AdviceFigures {
    /// Non-zero only when stalled and the expected downtime exceeds `downtime-limit`.
    pub recommended_ms: u64,
    /// `auto-downtime-max` is set and the recommendation is above it (or unknown).
    pub beyond_max: bool,
}

/// The advice on a stall: `expected × (1 + headroom)`, or with a `guest-dirty-rate` the
/// round-aware figure (`crate::stall` module text) when it is above the current limit.
/// `window_mbps` is the bandwidth window's measured rate in Mbit/s (the precopy rate).
pub(crate) fn advice_for(stall: &StallTracker, expected_ms: i64, params: &Params, window_mbps: f64) -> AdviceFigures {
    let precopy_bw = window_mbps * 1e6 / 8.0;
    let limit = i64::try_from(params.downtime_limit_ms).unwrap_or(i64::MAX);
    if !stall.stalled || expected_ms <= limit {
        return AdviceFigures::default();
    }
    let mut recommended_ms = recommended_downtime(expected_ms, params.downtime_headroom_pct);
    let untried = stall.limit_at_first_report.map_or(true, |l| l == params.downtime_limit_ms);
    if let Some(f) = crate::stall::round_factor(precopy_bw, params.guest_dirty_rate).filter(|_| untried) {
        let base = crate::stall::round_aware_expected(expected_ms, params.downtime_fixed_ms, f);
        let round_aware = recommended_downtime(base, params.downtime_headroom_pct);
        if round_aware > params.downtime_limit_ms {
            recommended_ms = recommended_ms.min(round_aware);
        }
    }
    // A limit no `downtime-limit` may take (above 2,000,000 ms, e.g. from garbage device
    // sizes) is no advice: report none, and that it is beyond every ceiling.
    if recommended_ms > MAX_MIGRATE_DOWNTIME_MS {
        return AdviceFigures { recommended_ms: 0, beyond_max: true };
    }
    let beyond_max = params.auto_downtime_max_ms != 0
        && (recommended_ms == 0 || recommended_ms > params.auto_downtime_max_ms);
    AdviceFigures { recommended_ms, beyond_max }
}

/// Every figure of one moment, consistent with one status.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub status: MigrationStatus,
    /// `total-time`: frozen when the migration finished, else now − start; 0 in `none`.
    pub total_time_ms: u64,
    /// `setup-time` (0 until `setup_done`).
    pub setup_time_ms: u64,
    /// `downtime`: frozen at completion (precopy) or at the start of postcopy; while the
    /// guest is stopped for the switchover, the downtime so far; else 0.
    pub downtime_ms: u64,
    /// `expected-downtime` (see [`expected_downtime_ms`]).
    pub expected_downtime_ms: i64,
    /// System-wide remaining: the total of the last query, fast or exact.
    pub remaining: u64,
    /// `query-migrate` has the top-level `remaining` (active, pre-switchover, device,
    /// cancelling, postcopy-active).
    pub has_remaining: bool,
    /// `ram.transferred`: every byte on every channel.
    pub transferred: u64,
    pub precopy_bytes: u64,
    pub downtime_bytes: u64,
    pub postcopy_bytes: u64,
    pub multifd_bytes: u64,
    /// `ram.mbps`: the last window's, or at completion
    /// `transferred * 8 / (total - setup) / 1000`.
    pub mbps: f64,
    pub pages_per_second: u64,
    pub dirty_sync_count: u64,
    pub postcopy_requests: u64,
    /// The RAM model's figures, when the VMM created one.
    pub ram: Option<RamFigures>,
    /// `vfio.transferred`, when the session has a VFIO device.
    pub vfio_transferred: Option<u64>,
    /// `error-desc` of a failed migration.
    pub error_desc: Option<String>,
    pub threshold_bytes: u64,
    /// Bytes per second the switchover would get now (`migration_get_switchover_bw`: the
    /// current `avail-switchover-bandwidth`, else the last window's rate).
    pub switchover_bw: f64,
    /// Total of the last exact query.
    pub last_sync_bytes: u64,
    pub stalled: bool,
    pub passes_since_progress: u64,
    /// Best remaining at a pass (0 before the first pass).
    pub best_remaining: u64,
    /// `expected × (1 + downtime-headroom%)` rounded up, when stalled with an expected
    /// downtime above the limit; else 0.
    pub recommended_downtime_ms: u64,
    /// `auto-downtime-max` is set and the recommendation is above it, or the needed limit is
    /// above the largest `downtime-limit` (2,000,000 ms).
    pub beyond_max: bool,
    /// The last exact figures fit the threshold at the current limit and bandwidth: the next
    /// pass would switch over (switchover-ack aside).
    pub will_switchover: bool,
    /// The `downtime-limit` the figures were computed with.
    pub downtime_limit_ms: u64,
    /// Time until the migration can switch over, in ms ([`crate::eta`]); `ETA_NEVER`
    /// (`u64::MAX`) when the remaining does not fall or no bandwidth is known; 0 outside the
    /// pre-copy states (`active`).
    pub eta_ms: u64,
    /// A library extension is in use (`auto-downtime-max` or a policy parameter set): the library's own HMP lines
    /// (the ETA) are printed. With none in use, HMP is QEMU's text (docs/qemu-model.md).
    pub extensions_in_use: bool,
    /// The switchover lifted the transfer rate limit.
    pub rate_limit_lifted: bool,
    // -- operator policy (issue 15) --
    /// Why the migration is where it is.
    pub reason: Reason,
    /// One line a person reads, e.g. `remaining 1.91 GiB > threshold 307 MiB = 300 ms at
    /// 1 GiB/s; advice 2101 ms`.
    pub reason_text: String,
    /// A policy parameter is set (`Params::policy_in_use`): the reports carry the reason.
    pub policy_in_use: bool,
    /// The deadline in ms since the start (`deadline` + `deadline-per-gib` × GiB), if any.
    pub deadline_ms: Option<u64>,
    /// The deadline or stall action taken, if any.
    pub policy_action: Option<PolicyAction>,
    /// Expected downtime when the switchover began.
    pub predicted_downtime_ms: Option<i64>,
    /// Bytes sent between the stop and the end of the downtime (once it ended).
    pub switchover_bytes: Option<u64>,
    /// `switchover_bytes` ÷ the downtime, bytes/s (once the downtime ended, if not 0 ms).
    pub measured_switchover_bw: Option<f64>,
}

/// The reason for the reports: the status decides outside the loop; in `active` and
/// `postcopy-active` the last step's; a policy action, once taken, stays the reason.
fn reason_for(status: MigrationStatus, st: &EngineState) -> Reason {
    if let Some(p) = &st.policy_taken {
        if !matches!(status, MigrationStatus::Completed | MigrationStatus::Failed) {
            return p.reason();
        }
    }
    match status {
        MigrationStatus::None | MigrationStatus::Setup => Reason::None,
        PreSwitchover => Reason::PausedBeforeSwitchover,
        Device => Reason::SwitchingOver,
        MigrationStatus::Completed => Reason::SwitchedOver,
        Cancelling | MigrationStatus::Cancelled => Reason::Cancelled,
        MigrationStatus::Failed => Reason::Failed,
        Active | PostcopyActive => st.reason,
    }
}

/// The figures the reports and decisions read: switchover bandwidth, expected downtime, advice, and the whole snapshot.
pub(crate) trait Snapshots: Host {
    /// The switchover bandwidth as QEMU's `migration_get_switchover_bw` reads it when it is
    /// used: `avail-switchover-bandwidth` now, else from `s->mbps` (the last window's, or the
    /// completion figure once completed). The caller holds the engine state.
    fn switchover_bw_now(&self, st: &EngineState, params: &Params) -> f64 {
        let mbps = st.completion_mbps.unwrap_or_else(|| self.counters().window().mbps);
        crate::counters::switchover_bw(params.avail_switchover_bandwidth, mbps)
    }

    /// The expected downtime now ([`super::downtime::expected_with_fixed`] at the switchover
    /// bandwidth QEMU would read now, [`Snapshots::switchover_bw_now`]); the caller holds the
    /// state.
    fn expected_now(&self, st: &EngineState, params: &Params) -> i64 {
        let bw = self.switchover_bw_now(st, params);
        super::downtime::expected_with_fixed(st.pass, st.last_sync_bytes, bw, params)
    }

    /// The expected downtime now and the advice on it ([`advice_for`] against the last
    /// window's rate); the caller holds the state.
    fn advice_now(&self, st: &EngineState, params: &Params) -> (i64, AdviceFigures) {
        let expected = self.expected_now(st, params);
        (expected, advice_for(&st.stall, expected, params, self.counters().window().mbps))
    }

    /// A consistent copy of the figures at `now_ms` (the caller's clock). Any thread, any
    /// time; never calls a handler and never waits for one.
    fn snapshot(&self, now_ms: u64) -> Snapshot {
        let params = self.params();
        let window = self.counters().window();
        let ram = self.ram_slot().figures();
        let vfio_transferred = self.vfio_totals().transferred();
        let st = self.engine_state();
        let status = self.status_cell().get();
        let bytes = self.counters().bytes();
        let total_time_ms = match (status, st.total_time_ms) {
            (MigrationStatus::None, _) => 0,
            (_, Some(frozen)) => frozen,
            _ => now_ms.saturating_sub(st.start_ms),
        };
        let downtime_ms = match (st.downtime_ms, st.downtime_start_ms, status) {
            (Some(frozen), _, _) => frozen,
            (None, Some(start), PreSwitchover | Device) => now_ms.saturating_sub(start),
            _ => 0,
        };
        // QEMU's `migration_downtime_calc_expected` reads the switchover bandwidth when asked
        // (`migration_get_switchover_bw`): a changed `avail-switchover-bandwidth` counts at once.
        let switchover_bw = self.switchover_bw_now(&st, &params);
        let expected =
            super::downtime::expected_with_fixed(st.pass, st.last_sync_bytes, switchover_bw, &params);
        let advice = advice_for(&st.stall, expected, &params, window.mbps);
        let remaining = self.remaining();
        let eta = match status {
            Active => eta_ms(
                &st.passes,
                remaining,
                window.threshold,
                window.switchover_bw,
                st.drain.rate(),
                st.stall.stalled,
                params.stall_passes,
                params.stall_margin_pct,
            ),
            _ => 0,
        };
        let reason = reason_for(status, &st);
        let downtime_ended = st.downtime_ms.is_some();
        let measured_switchover_bw = super::downtime::measured_switchover_bw(&st);
        let reason_text = ReasonFigures {
            reason,
            params: &params,
            remaining,
            threshold: window.threshold,
            switchover_bw,
            recommended_ms: advice.recommended_ms,
            passes_since_progress: st.stall.passes_since_progress,
            downtime_ms,
            predicted_downtime_ms: st.predicted_downtime_ms.filter(|_| downtime_ended),
            measured_switchover_bw,
            policy: st.policy_taken.as_ref(),
            error_desc: st.error_desc.as_deref(),
        }
        .text();
        let fits = crate::counters::threshold_bytes(switchover_bw, params.budget_ms());
        Snapshot {
            status,
            total_time_ms,
            setup_time_ms: st.setup_time_ms.unwrap_or(0),
            downtime_ms,
            expected_downtime_ms: expected,
            remaining,
            has_remaining: matches!(
                status,
                Active | PreSwitchover | Device | Cancelling | PostcopyActive
            ),
            transferred: bytes.transferred(),
            precopy_bytes: bytes.precopy,
            downtime_bytes: bytes.downtime,
            postcopy_bytes: bytes.postcopy,
            multifd_bytes: bytes.multifd,
            mbps: st.completion_mbps.unwrap_or(window.mbps),
            pages_per_second: window.pages_per_second,
            dirty_sync_count: st.pass,
            postcopy_requests: self.counters().postcopy_requests(),
            ram,
            vfio_transferred,
            error_desc: st.error_desc.clone(),
            threshold_bytes: window.threshold,
            switchover_bw,
            last_sync_bytes: st.last_sync_bytes,
            stalled: st.stall.stalled,
            passes_since_progress: st.stall.passes_since_progress,
            best_remaining: st.stall.best_remaining.unwrap_or(0),
            recommended_downtime_ms: advice.recommended_ms,
            beyond_max: advice.beyond_max,
            // After the first exact pass (`migrate_init` sets the count to 1).
            will_switchover: st.pass >= 2 && st.last_sync_bytes <= fits,
            downtime_limit_ms: params.downtime_limit_ms,
            rate_limit_lifted: st.rate_limit_lifted,
            eta_ms: eta,
            extensions_in_use: params.auto_downtime_max_ms > 0 || params.policy_in_use(),
            reason,
            reason_text,
            policy_in_use: params.policy_in_use(),
            deadline_ms: self.deadline_now_with(&params, ram.as_ref().map(|r| r.total_bytes)),
            policy_action: st.policy_taken.as_ref().map(|p| p.action),
            predicted_downtime_ms: st.predicted_downtime_ms,
            switchover_bytes: st.switchover_bytes,
            measured_switchover_bw,
        }
    }
}

impl<H: Host + ?Sized> Snapshots for H {}

