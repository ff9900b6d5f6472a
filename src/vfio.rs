//! The built-in VFIO device model (issue: VFIO device model).

/// VFIO figures shared by all devices of a session.
#[derive(Default)]
pub struct VfioTotals {}

impl VfioTotals {
    /// All VFIO device bytes read since `migration_start` (`vfio.transferred`), or `None`
    /// while the session has no VFIO device (then `query-migrate` has no `vfio` member).
    pub fn transferred(&self) -> Option<u64> {
        None
    }

    /// Resets the statistics at `migration_start`.
    pub fn reset(&self) {}
}
