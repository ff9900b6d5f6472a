//! Migration status (QEMU's MigrationStatus subset) and its allowed transitions.
use std::sync::atomic::{AtomicU32, Ordering};

crate::abi_enum::abi_enum! {
    /// Migration status; the numbers are the C ABI's `SWO_STATUS_*`, the names QEMU's, as in
    /// `query-migrate` and `MIGRATION` events.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum MigrationStatus {
        None = 0 => "none",
        Setup = 1 => "setup",
        Active = 2 => "active",
        PreSwitchover = 3 => "pre-switchover",
        Device = 4 => "device",
        PostcopyActive = 5 => "postcopy-active",
        Completed = 6 => "completed",
        Cancelling = 7 => "cancelling",
        Cancelled = 8 => "cancelled",
        Failed = 9 => "failed",
    }
}

impl MigrationStatus {
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
