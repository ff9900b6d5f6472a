//! One iteration step and the migration lifecycle (issue: convergence engine).

/// The engine state of one session.
#[derive(Default)]
pub struct Engine {}
