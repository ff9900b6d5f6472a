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

impl MigrationStatus {
    /// A state from which `cancel` and `fail` may move on (a migration under way).
    pub fn is_live(self) -> bool {
        self.is_running()
    }

    /// A state from which `migration_start` may begin a new migration.
    pub fn can_start(self) -> bool {
        matches!(
            self,
            MigrationStatus::None
                | MigrationStatus::Completed
                | MigrationStatus::Cancelled
                | MigrationStatus::Failed
        )
    }

    /// The transitions of docs/qemu-model.md §Status and transitions:
    /// `none → setup → active → [pre-switchover →] device → completed`,
    /// `active → [pre-switchover →] device → postcopy-active → completed`,
    /// `device → active` (a switchover that steps back, capability `switchover-rollback`),
    /// any live state → `cancelling → cancelled` or `failed`, and a new `setup` from any
    /// finished state.
    pub fn can_move_to(self, to: MigrationStatus) -> bool {
        use MigrationStatus::*;
        match to {
            Setup => self.can_start(),
            Active => matches!(self, Setup | Device),
            PreSwitchover => self == Active,
            Device => matches!(self, Active | PreSwitchover),
            PostcopyActive => self == Device,
            Completed => matches!(self, Device | PostcopyActive),
            Cancelling => self.is_live() && self != Cancelling,
            Cancelled => self == Cancelling,
            Failed => self.is_live(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MigrationStatus::{self, *};

    #[test]
    fn precopy_and_postcopy_paths_are_allowed() {
        for path in [
            &[None, Setup, Active, PreSwitchover, Device, Completed][..],
            &[None, Setup, Active, Device, PostcopyActive, Completed][..],
            &[Active, Device, Active][..],
        ] {
            for w in path.windows(2) {
                assert!(w[0].can_move_to(w[1]), "{:?} -> {:?}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn finished_states_only_restart() {
        for from in [Completed, Cancelled, Failed] {
            for to in MigrationStatus::ALL {
                assert_eq!(from.can_move_to(to), to == Setup, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn every_live_state_can_be_cancelled_or_fail() {
        for from in [Setup, Active, PreSwitchover, Device, PostcopyActive] {
            assert!(from.can_move_to(Cancelling));
            assert!(from.can_move_to(Failed));
            assert!(!from.can_move_to(Cancelled));
        }
        assert!(Cancelling.can_move_to(Cancelled));
        assert!(Cancelling.can_move_to(Failed));
    }
}
