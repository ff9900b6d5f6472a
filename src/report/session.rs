//! The reports of a session: its snapshot laid out as QEMU's `MigrationInfo`.
use super::{MigrationInfo, RamInfo, XPolicy, XSwitchover};
use crate::engine::Snapshot;
use crate::state::MigrationStatus::{self, *};

impl MigrationInfo {
    /// Which members a status has (docs/qemu-model.md §query-migrate):
    /// `none` → `{}`; `setup` → status; live states → times, ram, `remaining`, vfio;
    /// `completed` → times (with `downtime`), ram, vfio; `failed`/`cancelled` → status; and
    /// `error-desc` whenever the migration has an error (`fill_source_migration_info`).
    /// `x-switchover` comes with `ram`.
    pub fn from_snapshot(s: &Snapshot) -> MigrationInfo {
        let mut info = MigrationInfo::empty();
        info.status = s.status;
        match s.status {
            None => return info,
            Setup => {}
            Failed | Cancelled => {
                // Why it ended, when a policy parameter is set (a deadline's cancel).
                if s.policy_in_use {
                    info.x_switchover = Some(x_switchover(s));
                }
            }
            Active | PreSwitchover | Device | Cancelling | PostcopyActive | Completed => {
                let completed = s.status == Completed;
                info.ram = Some(ram_info(s, completed));
                info.remaining = s.has_remaining.then_some(s.remaining);
                info.vfio_transferred = s.vfio_transferred;
                info.total_time = Some(s.total_time_ms);
                info.setup_time = Some(s.setup_time_ms);
                if shows_downtime(s.status) {
                    info.downtime = Some(s.downtime_ms);
                } else {
                    info.expected_downtime = Some(s.expected_downtime_ms);
                }
                info.x_switchover = Some(x_switchover(s));
            }
        }
        // QEMU's `fill_source_migration_info` reports the migration's error in every state
        // but `none`: a failure's reason, or "Switchover is interrupted" after a cancel
        // during the pause before switchover.
        info.error_desc = s.error_desc.clone();
        info
    }
}

fn x_switchover(s: &Snapshot) -> XSwitchover {
    XSwitchover {
        threshold_bytes: s.threshold_bytes,
        switchover_bandwidth: whole_bytes_per_s(s.switchover_bw),
        last_sync_bytes: s.last_sync_bytes,
        stalled: s.stalled,
        passes_since_progress: s.passes_since_progress,
        best_remaining: s.best_remaining,
        recommended_downtime: s.recommended_downtime_ms,
        eta: s.eta_ms,
        extensions_in_use: s.extensions_in_use,
        policy: s.policy_in_use.then(|| {
            let ended = s.switchover_bytes.is_some();
            XPolicy {
                reason: s.reason.name(),
                reason_text: s.reason_text.clone(),
                deadline: s.deadline_ms,
                policy_action: s.policy_action.map(|a| a.name()),
                predicted_downtime: s.predicted_downtime_ms,
                measured_downtime: ended.then_some(s.downtime_ms),
                switchover_bytes: s.switchover_bytes,
                measured_switchover_bandwidth: s.measured_switchover_bw.map(whole_bytes_per_s),
            }
        }),
    }
}

/// In postcopy or completed, the real `downtime`; otherwise `expected-downtime`.
fn shows_downtime(status: MigrationStatus) -> bool {
    matches!(status, PostcopyActive | Completed)
}

fn whole_bytes_per_s(bw: f64) -> u64 {
    if bw.is_finite() && bw > 0.0 { bw as u64 } else { 0 }
}

fn ram_info(s: &Snapshot, completed: bool) -> RamInfo {
    let ram = s.ram.unwrap_or_default();
    RamInfo {
        transferred: s.transferred,
        // Nothing is left once completed, whatever the model last said.
        remaining: if completed { 0 } else { ram.dirty_pages.saturating_mul(ram.page_size) },
        total: ram.total_bytes,
        duplicate: ram.zero_pages,
        normal: ram.normal_pages,
        normal_bytes: ram.normal_pages.saturating_mul(ram.page_size),
        dirty_pages_rate: if completed { 0 } else { ram.dirty_pages_rate },
        mbps: s.mbps,
        dirty_sync_count: s.dirty_sync_count,
        postcopy_requests: s.postcopy_requests,
        page_size: ram.page_size,
        multifd_bytes: s.multifd_bytes,
        pages_per_second: s.pages_per_second,
        precopy_bytes: s.precopy_bytes,
        downtime_bytes: s.downtime_bytes,
        postcopy_bytes: s.postcopy_bytes,
        dirty_sync_missed_zero_copy: 0,
    }
}
