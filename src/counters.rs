//! Transfer statistics and the 100 ms bandwidth window (issue: convergence engine).

/// Atomic transfer counters of one session.
#[derive(Default)]
pub struct Counters {}

impl Counters {
    /// Counts pages sent (normal + zero), for `pages-per-second`. Called by the RAM model's
    /// `swo_ram_record_sent`; lock-free.
    pub fn record_pages(&self, pages: u64) {
        let _ = pages;
    }
}
