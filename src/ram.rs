//! The built-in RAM model (issue: convergence engine).

/// The session's RAM model, when the VMM created one (figures for reports).
#[derive(Default)]
pub struct RamSlot {}
