//! Migration status (QEMU's MigrationStatus subset) and its allowed transitions.
use std::sync::atomic::{AtomicU32, Ordering};

/// Migration status; the numbers are the C ABI's `SWO_STATUS_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MigrationStatus {
    None = 0,
    Setup = 1,
    Active = 2,
    PreSwitchover = 3,
    Device = 4,
    PostcopyActive = 5,
    Completed = 6,
    Cancelling = 7,
    Cancelled = 8,
    Failed = 9,
}

impl MigrationStatus {
    pub const ALL: [MigrationStatus; 10] = [
        MigrationStatus::None,
        MigrationStatus::Setup,
        MigrationStatus::Active,
        MigrationStatus::PreSwitchover,
        MigrationStatus::Device,
        MigrationStatus::PostcopyActive,
        MigrationStatus::Completed,
        MigrationStatus::Cancelling,
        MigrationStatus::Cancelled,
        MigrationStatus::Failed,
    ];

    pub fn from_u32(value: u32) -> Option<MigrationStatus> {
        MigrationStatus::ALL.get(value as usize).copied()
    }

    /// QEMU's name, as in `query-migrate` and `MIGRATION` events.
    pub fn name(self) -> &'static str {
        match self {
            MigrationStatus::None => "none",
            MigrationStatus::Setup => "setup",
            MigrationStatus::Active => "active",
            MigrationStatus::PreSwitchover => "pre-switchover",
            MigrationStatus::Device => "device",
            MigrationStatus::PostcopyActive => "postcopy-active",
            MigrationStatus::Completed => "completed",
            MigrationStatus::Cancelling => "cancelling",
            MigrationStatus::Cancelled => "cancelled",
            MigrationStatus::Failed => "failed",
        }
    }

    /// A migration is under way (QEMU's `migration_is_running`).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            MigrationStatus::Setup
                | MigrationStatus::Active
                | MigrationStatus::PreSwitchover
                | MigrationStatus::Device
                | MigrationStatus::PostcopyActive
                | MigrationStatus::Cancelling
        )
    }
}

/// The current status, readable from any thread without a lock.
pub struct StatusCell(AtomicU32);

impl Default for StatusCell {
    fn default() -> StatusCell {
        StatusCell(AtomicU32::new(MigrationStatus::None as u32))
    }
}

impl StatusCell {
    pub fn get(&self) -> MigrationStatus {
        MigrationStatus::from_u32(self.0.load(Ordering::Acquire)).unwrap_or(MigrationStatus::None)
    }
    pub fn set(&self, status: MigrationStatus) {
        self.0.store(status as u32, Ordering::Release);
    }
}
