//! The built-in VFIO device model (issue: VFIO device model).

/// VFIO figures shared by all devices of a session.
#[derive(Default)]
pub struct VfioTotals {}
