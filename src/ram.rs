//! The built-in RAM model (issue: convergence engine).

/// RAM figures for reports (`query-migrate`'s `ram` members that belong to the RAM model).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RamFigures {
    /// Guest RAM size in bytes (`ram.total`).
    pub total_bytes: u64,
    /// Target page size in bytes (`ram.page-size`).
    pub page_size: u64,
    /// Pages sent with content (`ram.normal`); `normal-bytes` = normal * page_size.
    pub normal_pages: u64,
    /// Zero pages sent (`ram.duplicate`).
    pub zero_pages: u64,
    /// Dirty pages still to send (`ram.remaining` = dirty_pages * page_size).
    pub dirty_pages: u64,
    /// Pages dirtied per second, measured over windows of at least 1000 ms
    /// (`ram.dirty-pages-rate`).
    pub dirty_pages_rate: u64,
}

/// The session's RAM model, when the VMM created one (figures for reports).
#[derive(Default)]
pub struct RamSlot {}

impl RamSlot {
    /// The figures of the session's RAM model, `None` when there is none.
    pub fn figures(&self) -> Option<RamFigures> {
        None
    }
}

impl RamSlot {
    /// Resets the RAM statistics (pages sent, dirty rate) at `migration_start`.
    pub fn reset(&self) {}
}
