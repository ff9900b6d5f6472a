//! Transfer statistics and the 100 ms bandwidth window (issue: convergence engine).

/// Atomic transfer counters of one session.
#[derive(Default)]
pub struct Counters {}
