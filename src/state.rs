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

/// The bucket a main-channel byte is filed in (QEMU's `ram_transferred_add`,
/// migration/ram.c): by the guest's run state, not by the migration status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MainBucket {
    /// The guest runs (`runstate_is_running()`): `precopy-bytes`.
    Precopy = 0,
    /// The guest is stopped otherwise: `downtime-bytes`.
    Downtime = 1,
    /// The guest is stopped and the migration is in postcopy: `postcopy-bytes`.
    Postcopy = 2,
}

impl MainBucket {
    /// QEMU's order: a running guest's bytes are precopy bytes whatever the status; a stopped
    /// guest's are postcopy bytes in postcopy and downtime bytes otherwise.
    #[inline]
    pub fn classify(guest_running: bool, status: MigrationStatus) -> MainBucket {
        if guest_running {
            MainBucket::Precopy
        } else if status == MigrationStatus::PostcopyActive {
            MainBucket::Postcopy
        } else {
            MainBucket::Downtime
        }
    }

    /// The bucket numbered `index` (`MainBucket as u32`; [`crate::state::StatusCell`] keeps
    /// the current one so). Anything above 2 is `Postcopy`: no check on the hot path.
    #[inline]
    pub fn from_index(index: u32) -> MainBucket {
        match index {
            0 => MainBucket::Precopy,
            1 => MainBucket::Downtime,
            _ => MainBucket::Postcopy,
        }
    }
}

/// The current status and the guest's run state, one word readable from any thread without
/// a lock: the status, the two ways the guest can be stopped outside the switchover (the VMM
/// said so, `set_vm_running(false)`; the library's `vm_stop` succeeded and no `vm_resume`
/// since), and the [`MainBucket`] they make, worked out whenever one of them changes.
///
/// `swo_record_transferred` files a main-channel add by reading the bucket alone: one relaxed
/// load, the same cost as a multifd add's none (issue 13, defect 3). Because the bucket lives
/// in the same word as its inputs, it can never lag them, and:
/// - a record that happens after a change (same thread, the VMM's own synchronisation, or
///   having read the new status through [`StatusCell::get`] — the status and the bucket are
///   one word) files by the state after it, as when the record read the three inputs itself;
/// - a record racing a change files by the state just before or just after it, and always by
///   one state the word held (the three separate loads of before could combine inputs read at
///   different moments).
pub struct StatusCell(AtomicU32);

/// Bits 0–7: the status. Bits 24–31: the bucket (`MainBucket as u32`), alone up there so that
/// the hot path reads it with one shift.
const STATUS_BITS: u32 = 0xff;
const VMM_STOPPED: u32 = 1 << 8;
const LIBRARY_STOPPED: u32 = 1 << 9;
const BUCKET_SHIFT: u32 = 24;

/// The word for these inputs, with the bucket they make.
fn pack(status: MigrationStatus, flags: u32) -> u32 {
    let stopped = flags & (VMM_STOPPED | LIBRARY_STOPPED);
    let bucket = MainBucket::classify(guest_running(status, stopped != 0), status);
    status as u32 | stopped | (bucket as u32) << BUCKET_SHIFT
}

/// Whether the guest runs, for filing main-channel bytes (QEMU's `ram_transferred_add` asks
/// `runstate_is_running()`). QEMU's guest is always stopped in `pre-switchover`, `device` and
/// `postcopy-active` (`migration_stop_vm` runs before the switchover starts); elsewhere it
/// runs unless the VMM said otherwise (`set_vm_running`) or the library stopped it.
fn guest_running(status: MigrationStatus, stopped: bool) -> bool {
    !matches!(
        status,
        MigrationStatus::PreSwitchover | MigrationStatus::Device | MigrationStatus::PostcopyActive
    ) && !stopped
}

impl Default for StatusCell {
    fn default() -> StatusCell {
        StatusCell(AtomicU32::new(pack(MigrationStatus::None, 0)))
    }
}

impl StatusCell {
    pub fn get(&self) -> MigrationStatus {
        MigrationStatus::from_u32(self.0.load(Ordering::Acquire) & STATUS_BITS)
            .unwrap_or(MigrationStatus::None)
    }

    /// Sets the status (and the bucket with it); the guest's stop flags stay.
    pub fn set(&self, status: MigrationStatus) {
        self.update(|word| pack(status, word));
    }

    /// The VMM's word on the guest (`set_vm_running`).
    pub fn set_vmm_stopped(&self, stopped: bool) {
        self.set_flag(VMM_STOPPED, stopped);
    }

    /// The library stopped the guest (`vm_stop` succeeded) or gave it back.
    pub fn set_library_stopped(&self, stopped: bool) {
        self.set_flag(LIBRARY_STOPPED, stopped);
    }

    /// Where a main-channel byte goes now: one relaxed load (see the type's docs for what a
    /// record racing a change sees).
    #[inline]
    pub fn main_bucket(&self) -> MainBucket {
        MainBucket::from_index(self.0.load(Ordering::Relaxed) >> BUCKET_SHIFT)
    }

    fn set_flag(&self, flag: u32, on: bool) {
        self.update(|word| {
            let status = MigrationStatus::from_u32(word & STATUS_BITS).unwrap_or(MigrationStatus::None);
            pack(status, if on { word | flag } else { word & !flag })
        });
    }

    /// One atomic read-modify-write, so changes from different threads (a status change under
    /// the state lock, a `vm_stop` on the migration thread) never undo each other. Release, as
    /// the plain stores of the status and flags were: a thread that reads the status with
    /// `get` (acquire) sees everything written before the change.
    fn update(&self, f: impl Fn(u32) -> u32) {
        let _ = self.0.fetch_update(Ordering::Release, Ordering::Relaxed, |word| Some(f(word)));
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
    use super::MainBucket;

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

    /// QEMU's `ram_transferred_add` (migration/ram.c): `runstate_is_running()` → precopy,
    /// else `migration_in_postcopy()` → postcopy, else downtime; the guest is stopped in
    /// `pre-switchover`, `device` and `postcopy-active` (`migration_stop_vm` runs before the
    /// switchover), and otherwise when the VMM or the library stopped it. Worked by hand for
    /// every status and stop flag, reached in either order (flags then status, status then
    /// flags), with the status unchanged by the flags.
    #[test]
    fn the_bucket_follows_every_change_of_status_and_run_state() {
        use super::StatusCell;
        use MainBucket::{Downtime, Postcopy, Precopy};
        for status in MigrationStatus::ALL {
            for (vmm, library) in [(false, false), (true, false), (false, true), (true, true)] {
                let expected = match status {
                    PostcopyActive => Postcopy,
                    PreSwitchover | Device => Downtime,
                    _ if vmm || library => Downtime,
                    _ => Precopy,
                };
                let flags_first = StatusCell::default();
                flags_first.set_vmm_stopped(vmm);
                flags_first.set_library_stopped(library);
                flags_first.set(status);
                let status_first = StatusCell::default();
                status_first.set(status);
                status_first.set_vmm_stopped(vmm);
                status_first.set_library_stopped(library);
                for cell in [&flags_first, &status_first] {
                    assert_eq!(cell.main_bucket(), expected, "{status:?} vmm {vmm} library {library}");
                    assert_eq!(cell.get(), status);
                }
                // And back: the flags cleared, the bucket is the status's alone.
                status_first.set_vmm_stopped(false);
                status_first.set_library_stopped(false);
                let alone = match status {
                    PostcopyActive => Postcopy,
                    PreSwitchover | Device => Downtime,
                    _ => Precopy,
                };
                assert_eq!(status_first.main_bucket(), alone, "{status:?} after the flags cleared");
            }
        }
    }

    /// The ordering a record racing a transition had when it read the status itself, kept: a
    /// thread that has seen the new status (`get`, as `swo_status` and the reports do) and
    /// then records files by the state after the change, never by the one before (a bucket
    /// kept apart from the status and written after it would break this).
    #[test]
    fn a_record_after_seeing_the_new_status_files_by_it() {
        use super::StatusCell;
                use std::sync::atomic::{AtomicU32, Ordering};
        let rounds: u32 = if cfg!(miri) { 20 } else { 20_000 };
        let cell = StatusCell::default();
        cell.set(Device);
        let acked = AtomicU32::new(0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for round in 1..=rounds {
                    cell.set(if round % 2 == 1 { PostcopyActive } else { Device });
                    while acked.load(Ordering::Acquire) != round {
                        std::thread::yield_now();
                    }
                }
            });
            for round in 1..=rounds {
                let (status, bucket) = if round % 2 == 1 {
                    (PostcopyActive, MainBucket::Postcopy)
                } else {
                    (Device, MainBucket::Downtime)
                };
                // Spin (a yield would let the change go stale before the check), yielding
                // only when the writer seems descheduled.
                let mut spins = 0u32;
                while cell.get() != status {
                    spins += 1;
                    if spins % 1024 == 0 {
                        std::thread::yield_now();
                    }
                    std::hint::spin_loop();
                }
                assert_eq!(cell.main_bucket(), bucket, "round {round}: saw {status:?}");
                acked.store(round, Ordering::Release);
            }
        });
    }

    /// Changes from different threads never undo each other (the library's `vm_stop` on the
    /// migration thread, `set_vm_running` and status changes on others): each is one atomic
    /// read-modify-write of the word.
    #[test]
    fn concurrent_changes_of_status_and_stop_flags_are_all_kept() {
        use super::StatusCell;
                let changes = if cfg!(miri) { 20 } else { 100_000 };
        let cell = StatusCell::default();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..changes {
                    cell.set_vmm_stopped(i % 2 == 0);
                }
                cell.set_vmm_stopped(true);
            });
            scope.spawn(|| {
                for i in 0..changes {
                    cell.set_library_stopped(i % 2 == 0);
                }
                cell.set_library_stopped(false);
            });
            for i in 0..changes {
                cell.set(if i % 2 == 0 { Active } else { Setup });
            }
            cell.set(Active);
        });
        assert_eq!(cell.get(), Active);
        // Only the VMM's stop is left: the guest is stopped outside the switchover.
        assert_eq!(cell.main_bucket(), MainBucket::Downtime);
        cell.set_vmm_stopped(false);
        assert_eq!(cell.main_bucket(), MainBucket::Precopy);
    }
}
