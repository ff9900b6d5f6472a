//! The convergence engine: the migration lifecycle, one iteration step (the decision QEMU's
//! migration thread makes every pass), and the consistent [`Snapshot`] every report is built
//! from.
//!
//! # Threads and locks
//! - Migration-thread calls (`migration_start`, `setup_done`, `iteration_step`,
//!   `switchover_begin`, `postcopy_start`, `complete`) are serialised by one mutex (`serial`).
//!   Handler callbacks, `vm_stop` / `vm_resume` and event delivery run under that mutex at
//!   most, never under the short `state` mutex that reports (`snapshot`, `swo_get_info`,
//!   `swo_query_migrate_json`) and the monitor-thread calls take. So a report or
//!   `swo_unregister_handler` never waits for a callback.
//! - Monitor-thread calls (`cancel`, `fail`, `migrate_continue`, `postcopy_request`,
//!   `set_switchover_acked`, `set_vm_running`) take only the `state` mutex.
//! - Every status change happens under `state`, so a snapshot sees one status with its figures.
//! - A lifecycle call from inside a handler callback (or `vm_stop` / `vm_resume`) of the same
//!   session gets `SWO_ERR_REENTRANT`.
//!
//! # Cancelling and failing
//! `cancel` moves a live migration to `cancelling`. When no migration-thread call is in flight
//! it moves on to `cancelled` at once; otherwise the call in flight finishes the cancel when it
//! returns, or, if it was already returning, the migration thread's next call does. Every
//! migration-thread call in flight at a `cancel` or `fail` fails with `SWO_ERR_BAD_STATE`
//! (the migration is no longer active), whatever it had done. `total-time` freezes at the
//! `now_ms` of the `cancel` (the first one) or `fail`.
//!
//! # The guest the library stopped
//! A guest the library stopped (`vm_stop`) is resumed when the step gives it back, on a
//! rollback, on `cancelled` and on `failed`, except in `postcopy-active`, where the
//! destination runs it. The library keeps its record of that stop until a `vm_resume`
//! succeeds: a failed resume (`SWO_ERR_IO`, "the guest is still stopped") is tried again by
//! the next step that gives the guest back, a `cancel` or a `fail`.
//!
//! # Events
//! Delivered through the VMM's `event` hook after every lock is released, in QMP form
//! (`{"timestamp": {...}, "event": NAME, "data": {...}}`). Data members:
//! - `MIGRATION` (only with capability `events`): `status` — the new status name.
//! - `MIGRATION_PASS` (only with capability `events`): `pass` — dirty-sync-count after an
//!   exact query of the loop (2 for the first: `migrate_init` starts the count at 1).
//! - `MIGRATION_STALL` (only with capability `events`, once per stall): `passes-since-progress`, `best-remaining`
//!   (bytes), `remaining` (bytes, this pass), `expected-downtime` (ms), `downtime-limit` (ms),
//!   `recommended-downtime` (ms, 0 when no change is advised).
//! - `MIGRATION_DOWNTIME_ADJUSTED` (only with capability `events`): `old-downtime-limit`, `downtime-limit` (the new
//!   value), `expected-downtime`, `auto-downtime-max` (all ms).
//! - `MIGRATION_SWITCHOVER_ROLLBACK` (only with capability `events`): `remaining` (bytes, the final query's total),
//!   `threshold` (bytes), `rollback-tolerance` (percent), `allowed` (bytes: threshold plus the
//!   tolerance), `reason` (text).
//! - `MIGRATION_DEADLINE` (only with capability `events`; only with `deadline` or
//!   `deadline-per-gib` set, once per migration): `action` (taken: `cancel`,
//!   `force-switchover`, `postcopy`), `elapsed`, `deadline` (ms since the start),
//!   `remaining` (bytes), `expected-downtime`, `downtime-limit` (ms); when a `postcopy`
//!   action became `cancel`: `requested-action` and `reason`.
//! - `MIGRATION_STALL_ACTION` (only with capability `events`; only with `stall-action` set,
//!   once per migration): `action`, `passes-since-progress`, `remaining`,
//!   `expected-downtime`, `downtime-limit`.
//!
//! # Operator policy (all off by default)
//! A deadline (`deadline` ms since the start, plus `deadline-per-gib` ms per GiB of the RAM
//! model's `total`) or a stall lasting `stall-action-passes` passes (with `stall-action`)
//! makes a step that would iterate or wait take the action instead: `cancel` (the step
//! returns `Cancelled`, the status is `cancelled`, the guest resumed), `force-switchover`
//! (`Switchover` with the forced flag; no rollback) or `postcopy` (`StartPostcopy`, forced;
//! when a `NO_POSTCOPY` handler registered since or `postcopy-ram` went off, `cancel`
//! instead). While paused in `pre-switchover`, `switchover_begin` (or `postcopy_start` for a
//! postcopy pause) takes the deadline's action: `cancel` cancels, the others end the pause.
//! At most one policy action per migration; none after a cancel or failure.
//! `downtime-fixed` counts in expected downtime and comes off the threshold's budget.
//! - `DEVICE_SIZE_WARNING` (always: the VMM's only warning channel): `kind` — `"no-vmm-ops"` (a handler wants its exact query
//!   with the guest stopped but the VMM gave no `vm_stop`/`vm_resume`: queried with the guest
//!   running; once per migration) or `"vm-stop-failed"` (`vm_stop` returned non-zero: queried
//!   with the guest running; adds `errno`, positive, of the first failure; once per migration);
//!   `devices` — the handlers' idstrs.
mod downtime;
mod lifecycle;
mod policy;
mod snapshot;
mod step;

pub use downtime::expected_downtime_ms;
pub use snapshot::Snapshot;
pub use policy::Reason;
pub use step::{Action, Step};
pub(crate) use lifecycle::Lifecycle;
pub(crate) use policy::Policy;
pub(crate) use snapshot::Snapshots;
pub(crate) use step::Steps;

use crate::error::{Error, Result};
use crate::pending::Pending;
use crate::reentrancy::{self, CallbackScope};
use crate::eta::{DrainTracker, PassHistory};
use crate::stall::StallTracker;
use crate::state::MigrationStatus;
use crate::counters::Counters;
use crate::hooks::InstalledHooks;
use crate::params::{Capabilities, Params};
use crate::pending::{QueryKind, Registry};
use crate::ram::RamSlot;
use crate::state::StatusCell;
use crate::vfio::model::VfioTotals;
use serde_json::Value;
use std::sync::Arc;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use crate::locks::lock;

/// What the engine needs of the session it drives: its parts and a few of its calls. The
/// session (`crate::session`) implements it; the engine knows nothing else of it. Every
/// engine call is a method of one of the traits `Calls`, [`Lifecycle`], [`Policy`],
/// [`Snapshots`] and [`Steps`], implemented for every `Host`.
pub(crate) trait Host {
    /// The session's process-unique id (reentrancy checks).
    fn id(&self) -> u64;
    fn status_cell(&self) -> &StatusCell;
    fn counters(&self) -> &Counters;
    fn engine(&self) -> &Engine;
    fn registry(&self) -> &Registry;
    fn ram_slot(&self) -> &RamSlot;
    fn vfio_totals(&self) -> &VfioTotals;
    /// The system-wide remaining of the last query.
    fn remaining_cell(&self) -> &AtomicU64;
    /// The latest `now_ms` any call brought.
    fn clock_cell(&self) -> &AtomicU64;
    fn remaining(&self) -> u64;
    fn params(&self) -> Params;
    fn capabilities(&self) -> Capabilities;
    fn set_params(&self, params: Params) -> Result<()>;
    fn raise_downtime_limit_if(&self, expected_ms: u64, auto_max_ms: u64, new_ms: u64) -> Result<bool>;
    fn vmm(&self) -> Option<Arc<InstalledHooks>>;
    fn observe_clock(&self, now_ms: u64);
    fn query_pending(&self, kind: QueryKind) -> Result<Pending>;
    fn emit(&self, name: &str, data: Value);
    fn emit_if_events_on(&self, name: &str, data: Value);
    fn flush_events(&self);
}

/// What `switchover_begin` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchoverOutcome {
    /// The final query's figures (exact and final, guest stopped); all 0 when no final query
    /// ran (paused in `pre-switchover`).
    pub final_pending: Pending,
    /// True: send the rest and call `complete`. False: paused in `pre-switchover` (wait for
    /// `migrate_continue`, then call `switchover_begin` again), or rolled back to `active`
    /// (keep iterating).
    pub proceed: bool,
}

/// The engine of one session.
#[derive(Default)]
pub struct Engine {
    /// Serialises migration-thread calls; held across handler callbacks and `vm_stop`.
    serial: Mutex<()>,
    /// The figures; held only for short copies and updates, never across a callback.
    state: Mutex<EngineState>,
    /// Counts accepted `cancel` and `fail` calls (changed under `state`): a migration-thread
    /// call that sees it change while it runs was interrupted.
    interrupts: AtomicU64,
}

/// Per-migration figures. Reset by `migration_start` except the guest's running state and
/// the destination's ack, which the VMM owns.
#[derive(Debug)]
pub(crate) struct EngineState {
    pub(crate) start_ms: u64,
    /// `setup-time`, set by `setup_done`.
    pub(crate) setup_time_ms: Option<u64>,
    /// `total-time`, frozen when the migration finishes.
    pub(crate) total_time_ms: Option<u64>,
    /// When the guest stopped for the switchover (the downtime clock).
    pub(crate) downtime_start_ms: Option<u64>,
    /// `downtime`, frozen at completion (precopy) or at the start of postcopy.
    pub(crate) downtime_ms: Option<u64>,
    /// `dirty-sync-count`.
    pub(crate) pass: u64,
    /// Total of the last exact query (`dirty_bytes_last_sync`).
    pub(crate) last_sync_bytes: u64,
    pub(crate) stall: StallTracker,
    /// The remaining of the last passes, for the ETA's trend.
    pub(crate) passes: PassHistory,
    /// How fast the remaining falls within a round, for the ETA.
    pub(crate) drain: DrainTracker,
    pub(crate) postcopy_requested: bool,
    pub(crate) switchover_acked: bool,
    pub(crate) vm_running: bool,
    /// When the library stopped the guest through `vm_stop` and has not resumed it yet.
    pub(crate) stopped_by_library: Option<u64>,
    /// In `device` after `migrate_continue`: the next `switchover_begin` runs the final query
    /// (or, for a postcopy switchover, the next `postcopy_start` starts postcopy).
    pub(crate) awaiting_final: bool,
    /// The switchover under way (`pre-switchover` / `device`) was begun by `postcopy_start`
    /// with `pause-before-switchover`: only `postcopy_start` may go on with it.
    pub(crate) postcopy_switchover: bool,
    /// `now_ms` of the `cancel` that moved the migration to `cancelling`: `total-time`
    /// freezes there.
    pub(crate) cancel_ms: Option<u64>,
    /// `switchover_begin` returned `proceed`: `complete` may follow.
    pub(crate) final_done: bool,
    pub(crate) rate_limit_lifted: bool,
    pub(crate) error_desc: Option<String>,
    /// `mbps` frozen at completion with QEMU's completion formula.
    pub(crate) completion_mbps: Option<f64>,
    pub(crate) warned_no_vmm: bool,
    pub(crate) warned_vm_stop_failed: bool,
    // -- operator policy (issue 15) --
    /// The reason of the last step's decision.
    pub(crate) reason: Reason,
    /// The deadline or stall action taken in this migration (at most one).
    pub(crate) policy_taken: Option<policy::PolicyTaken>,
    /// The switchover under way was forced by a policy action: no rollback.
    pub(crate) forced: bool,
    /// Expected downtime (with `downtime-fixed`) when the switchover began.
    pub(crate) predicted_downtime_ms: Option<i64>,
    /// Bytes sent (every channel) when the guest stopped for the switchover.
    pub(crate) downtime_start_bytes: u64,
    /// Bytes sent between the stop and the end of the downtime, once it ended.
    pub(crate) switchover_bytes: Option<u64>,
}

impl Default for EngineState {
    fn default() -> EngineState {
        EngineState {
            start_ms: 0,
            setup_time_ms: None,
            total_time_ms: None,
            downtime_start_ms: None,
            downtime_ms: None,
            pass: 0,
            last_sync_bytes: 0,
            stall: StallTracker::default(),
            passes: PassHistory::default(),
            drain: DrainTracker::default(),
            postcopy_requested: false,
            switchover_acked: false,
            vm_running: true,
            stopped_by_library: None,
            awaiting_final: false,
            postcopy_switchover: false,
            cancel_ms: None,
            final_done: false,
            rate_limit_lifted: false,
            error_desc: None,
            completion_mbps: None,
            warned_no_vmm: false,
            warned_vm_stop_failed: false,
            reason: Reason::None,
            policy_taken: None,
            forced: false,
            predicted_downtime_ms: None,
            downtime_start_bytes: 0,
            switchover_bytes: None,
        }
    }
}

/// `SWO_ERR_BAD_STATE` for `call` in `status`.
/// Freezes `total-time` at `now_ms` when the migration ends (saturating against the start).
pub(crate) fn finish_times(st: &mut EngineState, now_ms: u64) {
    st.total_time_ms.get_or_insert(now_ms.saturating_sub(st.start_ms));
}

pub(crate) fn bad_state(call: &str, status: MigrationStatus, expected: &str) -> Error {
    Error::bad_state(format!(
        "{call}: not allowed in migration state '{}' (needs {expected})",
        status.name()
    ))
}

/// The calls' plumbing: the engine's state, status moves, the serialised migration-thread
/// call, events, and the guest's stop and resume through the VMM's hooks.
pub(crate) trait Calls: Host {
    fn engine_state(&self) -> MutexGuard<'_, EngineState> {
        lock(&self.engine().state)
    }

    /// Moves to `to` (the caller holds the state lock, passed in as proof) and queues the
    /// `MIGRATION` event when the `events` capability is on.
    fn move_to(
        &self,
        _state: &mut EngineState,
        call: &str,
        to: MigrationStatus,
    ) -> Result<()> {
        let from = self.status_cell().get();
        if !from.can_move_to(to) {
            return Err(Error::bad_state(format!(
                "{call}: cannot go from migration state '{}' to '{}'",
                from.name(),
                to.name()
            )));
        }
        self.status_cell().set(to);
        self.emit_if_events_on("MIGRATION", json!({"status": to.name()}));
        Ok(())
    }

    /// Runs a migration-thread call: re-entrancy check, `serial` held across `f`, then (still
    /// under `serial`) a cancel that waited for this call is finished and a guest the library
    /// stopped is given back after a cancel or fail that interrupted it; the queued events are
    /// delivered last. A call that a `cancel` or `fail` interrupted fails with
    /// `SWO_ERR_BAD_STATE`, whatever `f` returned.
    fn migration_call<T>(&self, call: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        reentrancy::check(self.id(), call)?;
        let (result, interrupted, settled) = {
            let _serial = lock(&self.engine().serial);
            let before = self.engine().interrupts.load(Ordering::Acquire);
            let result = f();
            let interrupted = self.engine().interrupts.load(Ordering::Acquire) != before;
            (result, interrupted, self.settle_after_call(interrupted))
        };
        self.deliver_events();
        if interrupted {
            let status = self.status_cell().get();
            let mut message = format!(
                "{call}: the migration was {} while this call ran (state '{}')",
                if status == MigrationStatus::Failed { "failed" } else { "cancelled" },
                status.name()
            );
            if let Err(e) = settled {
                message = format!("{message}; {}", e.message);
            }
            return Err(Error::bad_state(message));
        }
        match (result, settled) {
            (Ok(_), Err(e)) => Err(e),
            (r, _) => r,
        }
    }

    /// Delivers queued events unless the caller runs inside a callback of this session (the
    /// outer call delivers them then).
    fn deliver_events(&self) {
        if !reentrancy::inside(self.id()) {
            self.flush_events();
        }
    }

    /// The end of a migration-thread call (the caller holds `serial`): `cancelling →
    /// cancelled`, and after an interrupting `cancel`/`fail` the guest the library stopped is
    /// resumed (the call may have held the record while the monitor looked for it).
    fn settle_after_call(&self, interrupted: bool) -> Result<()> {
        let taken = {
            let mut st = self.engine_state();
            match self.status_cell().get() {
                MigrationStatus::Cancelling => self.finish_cancel(&mut st)?,
                MigrationStatus::Cancelled | MigrationStatus::Failed if interrupted => {
                    st.stopped_by_library.take()
                }
                _ => None,
            }
        };
        self.resume_taken(taken, "the migration ended")
    }

    /// `cancelling → cancelled` when no migration-thread call is in flight; resumes a guest
    /// the library stopped.
    fn finish_cancel_if_idle(&self) -> Result<()> {
        let mut st = self.engine_state();
        if self.status_cell().get() != MigrationStatus::Cancelling {
            return Ok(());
        }
        // Held across the resume, so no migration-thread call starts meanwhile.
        let Ok(_idle) = self.engine().serial.try_lock() else { return Ok(()) };
        let taken = self.finish_cancel(&mut st)?;
        drop(st);
        self.resume_taken(taken, "the migration was cancelled")
    }

    /// `cancelling → cancelled` (the caller holds `state` and `serial`); freezes `total-time`
    /// at the cancel's clock and hands over the library's stop record for resuming.
    fn finish_cancel(&self, st: &mut EngineState) -> Result<Option<u64>> {
        self.move_to(st, "swo_cancel", MigrationStatus::Cancelled)?;
        let at = st.cancel_ms.unwrap_or_else(|| self.clock_cell().load(Ordering::Acquire));
        finish_times(st, at);
        Ok(st.stopped_by_library.take())
    }

    /// Counts an accepted `cancel` / `fail` (the caller holds `state`).
    fn note_interrupt(&self, _state: &mut EngineState) {
        self.engine().interrupts.fetch_add(1, Ordering::AcqRel);
    }

    /// Resumes the guest the library stopped, if it did: takes the record, and puts it back
    /// when `vm_resume` fails (so a later step, cancel or fail tries again).
    fn release_guest(&self, why: &str) -> Result<()> {
        let taken = self.engine_state().stopped_by_library.take();
        self.resume_taken(taken, why)
    }

    /// Resumes a guest whose stop record (`taken`, the stop time) the caller took out of the
    /// state; on failure the record goes back.
    fn resume_taken(&self, taken: Option<u64>, why: &str) -> Result<()> {
        let Some(stopped_at) = taken else { return Ok(()) };
        let result = self.resume_guest(why);
        if result.is_err() {
            self.engine_state().stopped_by_library.get_or_insert(stopped_at);
        }
        result
    }

    /// Calls the VMM's `vm_stop` (marked as a callback, so it cannot re-enter the engine).
    /// `None` when the VMM gave no `vm_stop`/`vm_resume`, else its return code.
    fn call_vm_stop(&self) -> Option<i32> {
        let vmm = self.vmm().filter(|v| v.can_stop_vm())?;
        let _scope = CallbackScope::enter(self.id());
        let rc = vmm.vm_stop();
        if rc == 0 {
            self.status_cell().set_library_stopped(true);
        }
        Some(rc)
    }

    /// Records the VMM's word on the guest's run state for the lock-free byte counters
    /// (QEMU's `ram_transferred_add` files bytes by the guest's run state; see
    /// [`crate::state::StatusCell`]).
    fn note_vm_running(&self, running: bool) {
        self.status_cell().set_vmm_stopped(!running);
    }

    /// Forgets a library stop (a new migration starts with the VMM's word only).
    fn forget_library_stop(&self) {
        self.status_cell().set_library_stopped(false);
    }

    /// Resumes a guest the library stopped; a failure is `SWO_ERR_IO` saying why it was
    /// resumed and that the guest is still stopped.
    fn resume_guest(&self, why: &str) -> Result<()> {
        let Some(vmm) = self.vmm().filter(|v| v.can_stop_vm()) else { return Ok(()) };
        let rc = {
            let _scope = CallbackScope::enter(self.id());
            vmm.vm_resume()
        };
        if rc != 0 {
            return Err(Error::io(format!(
                "vm_resume returned {rc} after {why}: the guest is still stopped"
            )));
        }
        self.status_cell().set_library_stopped(false);
        Ok(())
    }
}

impl<H: Host + ?Sized> Calls for H {}
