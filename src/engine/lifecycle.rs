//! The migration lifecycle: start, setup, switchover (with pause-before-switchover and
//! rollback), postcopy, completion, cancel and failure (docs/qemu-model.md §Status).
use super::downtime::measured_switchover_bw;
use super::{bad_state, EngineState, SwitchoverOutcome};
use std::sync::MutexGuard;
use crate::counters::{Channel, MainBucket};
use crate::error::{Error, Result};
use crate::pending::{Pending, QueryKind};
use crate::reentrancy;
use crate::state::MigrationStatus::{
    self, Active, Cancelling, Completed, Device, Failed, PostcopyActive, PreSwitchover, Setup,
};
use super::{Calls, Host, Policy, Snapshots};
use serde_json::json;

/// The migration lifecycle's calls (`migration_start` ... `fail`); the session's calls of the same names delegate to them.
pub(crate) trait Lifecycle: Host {
    /// `migration_start`: from `none`, `completed`, `cancelled` or `failed` to `setup`; resets
    /// every statistic (counters, window, stall tracking, times, error, the RAM and VFIO
    /// statistics), sets `dirty-sync-count` to 1 (QEMU's `migrate_init`) and opens the first
    /// bandwidth window at `now_ms`. The guest's running
    /// state stays as the VMM set it; the destination's ack is cleared.
    fn migration_start(&self, now_ms: u64) -> Result<()> {
        self.migration_call("swo_migration_start", || {
            let status = self.status_cell().get();
            if !status.can_start() {
                return Err(Error::bad_state(format!(
                    "There's a migration process in progress (state '{}')",
                    status.name()
                )));
            }
            self.observe_clock(now_ms);
            // Other areas' resets run with no engine lock held. The RAM model's dirty-rate
            // period starts here (QEMU's `ram_init_bitmaps` syncs at setup).
            self.ram_slot().reset(now_ms);
            self.vfio_totals().reset();
            self.forget_library_stop();
            let mut st = self.engine_state();
            let vm_running = st.vm_running;
            // QEMU's `migrate_init` zeroes the statistics and then sets `dirty_sync_count` to
            // 1, so the first exact pass of the loop is pass 2.
            *st = EngineState { start_ms: now_ms, vm_running, pass: 1, ..EngineState::default() };
            self.counters().reset(now_ms);
            self.remaining_cell().store(0, std::sync::atomic::Ordering::Release);
            self.move_to(&mut st, "swo_migration_start", Setup)
        })
    }

    /// `setup → active`; `setup-time` = `now_ms` − start.
    fn setup_done(&self, now_ms: u64) -> Result<()> {
        self.migration_call("swo_setup_done", || {
            let mut st = self.engine_state();
            let status = self.status_cell().get();
            if status != Setup {
                return Err(bad_state("swo_setup_done", status, "'setup'"));
            }
            self.observe_clock(now_ms);
            st.setup_time_ms = Some(now_ms.saturating_sub(st.start_ms));
            self.move_to(&mut st, "swo_setup_done", Active)
        })
    }

    /// Counts bytes sent (the hot path: one relaxed atomic add, no lock). Main-channel bytes
    /// are precopy, downtime or postcopy bytes by the guest's run state at this moment, as
    /// QEMU's `ram_transferred_add` (migration/ram.c) files them: running → precopy; stopped
    /// in postcopy → postcopy; stopped otherwise → downtime (see [`crate::state::StatusCell`]).
    #[inline]
    fn record_transferred(&self, channel: Channel, bytes: u64) {
        self.counters().record_with(channel, || self.main_bucket(), bytes);
    }

    /// [`Lifecycle::record_transferred`]'s fast path alone (see
    /// [`crate::counters::Counters::try_record_fast`]): `false`, nothing counted, when the bytes
    /// need `record_transferred`.
    #[inline]
    fn try_record_transferred_fast(&self, channel: Channel, bytes: u64) -> bool {
        self.counters().try_record_fast(channel, || self.main_bucket(), bytes)
    }

    /// One relaxed load: the status cell keeps the bucket current at every change of the
    /// status or of the guest's run state ([`crate::state::StatusCell`]).
    #[inline]
    fn main_bucket(&self) -> MainBucket {
        self.status_cell().main_bucket()
    }

    /// Closes the 100 ms window when it is due (see [`crate::counters::Counters::update`]).
    /// Allowed while a migration is under way; returns whether a window closed. In
    /// `pre-switchover` and `device` no window closes (QEMU's migration thread is blocked in
    /// the pause or busy in the switchover then).
    fn update_counters(&self, now_ms: u64) -> Result<bool> {
        let status = self.status_cell().get();
        if !status.is_running() {
            return Err(bad_state("swo_update_counters", status, "a migration under way"));
        }
        self.observe_clock(now_ms);
        // QEMU's migration thread calls `migration_update_counters` between loop passes only:
        // paused before the switchover (`migration_switchover_prepare` waits) or in the
        // switchover (`migration_completion`), it closes no window. The window stays open and
        // spans the pause when the loop resumes.
        if matches!(status, PreSwitchover | Device) {
            return Ok(false);
        }
        let p = self.params();
        Ok(self.counters().update_window(
            now_ms,
            p.budget_ms(),
            p.avail_switchover_bandwidth,
            p.bandwidth_window_ms,
        ))
    }

    /// Begins the switchover.
    /// - From `active`: stops the guest through `vm_stop` (unless the step already stopped it,
    ///   or the VMM gave no `vm_stop`: it stops the guest itself before this call), starts the
    ///   downtime clock (at the step's stop when there was one), lifts the rate limit, and
    ///   moves to `device`, or with `pause-before-switchover` to `pre-switchover` and returns
    ///   `proceed == false` without a final query.
    /// - In `pre-switchover`: still paused, `proceed == false`, nothing changes.
    /// - In `device` after `migrate_continue`: goes on.
    ///
    /// A pause begun by `postcopy_start` belongs to postcopy: `SWO_ERR_BAD_STATE` here.
    ///
    /// Then runs the final query (exact and final). With `switchover-rollback`, a total above
    /// the threshold by more than `rollback-tolerance` percent steps back to `active`, resumes
    /// a guest the library stopped (else the VMM resumes it), emits
    /// `MIGRATION_SWITCHOVER_ROLLBACK`, and returns `proceed == false`.
    fn switchover_begin(&self, now_ms: u64) -> Result<SwitchoverOutcome> {
        self.migration_call("swo_switchover_begin", || {
            if !self.enter_switchover(now_ms)? {
                return Ok(SwitchoverOutcome::default());
            }
            let final_pending = self.query_pending(QueryKind::Final)?;
            self.finish_switchover(final_pending)
        })
    }

    /// The status part of `switchover_begin`; false while paused in `pre-switchover`.
    fn enter_switchover(&self, now_ms: u64) -> Result<bool> {
        const CALL: &str = "swo_switchover_begin";
        let params = self.params();
        let deadline = self.deadline_now(&params);
        let already_stopped = {
            let mut st = self.engine_state();
            let status = self.status_cell().get();
            match status {
                PreSwitchover | Device if st.postcopy_switchover => {
                    return Err(Error::bad_state(format!(
                        "{CALL}: the switchover in migration state '{}' was begun by swo_postcopy_start (call it again after swo_migrate_continue)",
                        status.name()
                    )))
                }
                PreSwitchover => {
                    return self.deadline_in_pause(&mut st, &params, deadline, CALL, now_ms)
                }
                Device if st.awaiting_final => {
                    self.observe_clock(now_ms);
                    st.awaiting_final = false;
                    return Ok(true);
                }
                Active => st.stopped_by_library,
                _ => {
                    return Err(bad_state(
                        CALL,
                        status,
                        "'active', 'pre-switchover', or 'device' after swo_migrate_continue",
                    ))
                }
            }
        };
        let mut st = self.leave_active_for_switchover(CALL, now_ms, already_stopped, "the switchover did not begin")?;
        if self.capabilities().pause_before_switchover {
            self.move_to(&mut st, CALL, PreSwitchover)?;
            return Ok(false);
        }
        self.move_to(&mut st, CALL, Device)?;
        Ok(true)
    }

    /// Stops the guest through `vm_stop` for a switchover unless the step already did
    /// (`already_stopped`) or the VMM gave no `vm_stop`. `Some(now_ms)` when it stopped it
    /// now; a failed `vm_stop` is `SWO_ERR_IO` (`what` says what did not happen).
    /// Leaves `active` for a switchover (precopy or postcopy): the guest stopped (unless it
    /// already was, since `already_stopped`), the downtime clock started at that stop, the rate
    /// limit lifted. Returns the state, locked, for the caller's next status.
    fn leave_active_for_switchover(
        &self,
        call: &str,
        now_ms: u64,
        already_stopped: Option<u64>,
        what: &str,
    ) -> Result<MutexGuard<'_, EngineState>> {
        self.observe_clock(now_ms);
        let stopped_now = self.stop_for_switchover(now_ms, already_stopped, what)?;
        let mut st = self.engine_state();
        if let Some(status) = self.left_active(&mut st, stopped_now) {
            return Err(bad_state(call, status, "'active'"));
        }
        st.stopped_by_library = already_stopped.or(stopped_now);
        st.downtime_start_ms = Some(already_stopped.unwrap_or(now_ms));
        // The prediction at the switchover decision, against which the measured pause is
        // reported at completion; and the byte count the switchover bandwidth is measured from.
        let params = self.params();
        st.predicted_downtime_ms = Some(self.expected_now(&st, &params));
        st.downtime_start_bytes = self.counters().bytes().transferred();
        st.switchover_bytes = None;
        st.rate_limit_lifted = true;
        st.final_done = false;
        Ok(st)
    }

    fn stop_for_switchover(&self, now_ms: u64, already_stopped: Option<u64>, what: &str) -> Result<Option<u64>> {
        if already_stopped.is_some() {
            return Ok(None);
        }
        match self.call_vm_stop() {
            None => Ok(None),
            Some(0) => Ok(Some(now_ms)),
            Some(rc) => Err(Error::io(format!(
                "vm_stop returned {rc}: {what}, the migration stays active"
            ))),
        }
    }

    /// After stopping the guest for a switchover: the status a `cancel` / `fail` moved to
    /// meanwhile, if any. The stop is then recorded, so the end of the call resumes the guest.
    fn left_active(&self, st: &mut EngineState, stopped_now: Option<u64>) -> Option<MigrationStatus> {
        let status = self.status_cell().get();
        if status == Active {
            return None;
        }
        if let Some(at) = stopped_now {
            st.stopped_by_library.get_or_insert(at);
        }
        Some(status)
    }

    /// Decides on the final query: proceed, or step back with `switchover-rollback`.
    fn finish_switchover(&self, final_pending: Pending) -> Result<SwitchoverOutcome> {
        let caps = self.capabilities();
        let params = self.params();
        let threshold = self.counters().window().threshold;
        let total = final_pending.total();
        let mut st = self.engine_state();
        let status = self.status_cell().get();
        if status != Device {
            return Err(bad_state("swo_switchover_begin", status, "'device'"));
        }
        // The final query updates only the total (`remaining`); `dirty_bytes_last_sync` is
        // set by the loop's exact pass alone (QEMU's `migration_iteration_go_next`).
        let allowed = (threshold as u128) * (100 + params.rollback_tolerance_pct as u128) / 100;
        // A switchover forced by a policy action goes on whatever the final query shows.
        if st.forced || !(caps.switchover_rollback && total as u128 > allowed) {
            st.final_done = true;
            return Ok(SwitchoverOutcome { final_pending, proceed: true });
        }
        self.move_to(&mut st, "swo_switchover_begin", Active)?;
        st.downtime_start_ms = None;
        st.rate_limit_lifted = false;
        let taken = st.stopped_by_library.take();
        self.emit_if_events_on(
            "MIGRATION_SWITCHOVER_ROLLBACK",
            json!({
                "remaining": total,
                "threshold": threshold,
                "rollback-tolerance": params.rollback_tolerance_pct,
                "allowed": u64::try_from(allowed).unwrap_or(u64::MAX),
                "reason": format!(
                    "the final query found {total} bytes, more than the downtime limit of {} ms allows",
                    params.downtime_limit_ms
                ),
            }),
        );
        drop(st);
        self.resume_taken(taken, "a switchover rollback")?;
        Ok(SwitchoverOutcome { final_pending, proceed: false })
    }

    /// `migrate-continue` (QEMU's `qmp_migrate_continue`): `expected` must be the current
    /// status (else `Migration not in expected state: <current state>`); in `pre-switchover`
    /// it moves on to `device`, in any other status it does nothing.
    fn migrate_continue(&self, expected: MigrationStatus) -> Result<()> {
        reentrancy::check(self.id(), "swo_migrate_continue")?;
        let result = {
            let mut st = self.engine_state();
            let status = self.status_cell().get();
            // QEMU's `qmp_migrate_continue` checks only that the named state is the current
            // one; naming the current state when not paused sets an event nobody waits for.
            if status != expected {
                Err(Error::bad_state(format!(
                    "Migration not in expected state: {}",
                    status.name()
                )))
            } else if status != PreSwitchover {
                Ok(())
            } else {
                st.awaiting_final = true;
                self.move_to(&mut st, "swo_migrate_continue", Device)
            }
        };
        self.deliver_events();
        result
    }

    /// `migrate-start-postcopy`: asks the loop to start postcopy when `precopy + stopcopy`
    /// fits the threshold. Needs capability `postcopy-ram`, a migration in `setup`, `active`
    /// or `pre-switchover`, and no handler flagged `NO_POSTCOPY` (`SWO_ERR_UNSUPPORTED`).
    fn postcopy_request(&self) -> Result<()> {
        reentrancy::check(self.id(), "swo_postcopy_request")?;
        if !self.capabilities().postcopy_ram {
            return Err(Error::bad_state(
                "Enable postcopy with migrate_set_capability before the start of migration",
            ));
        }
        let status = self.status_cell().get();
        match status {
            MigrationStatus::None => {
                return Err(Error::bad_state(
                    "Postcopy must be started after migration has been started",
                ))
            }
            Setup | Active | PreSwitchover => {}
            _ => {
                return Err(bad_state(
                    "swo_postcopy_request",
                    status,
                    "'setup', 'active' or 'pre-switchover'",
                ))
            }
        }
        self.refuse_postcopy_devices()?;
        self.engine_state().postcopy_requested = true;
        Ok(())
    }

    /// Starts postcopy once the step said `START_POSTCOPY`:
    /// `active → [pre-switchover →] device → postcopy-active`.
    /// - From `active` (postcopy requested, no `NO_POSTCOPY` handler): stops the guest through
    ///   `vm_stop` unless the step already did (the VMM stops it itself when it gave no
    ///   `vm_stop`), starts the downtime clock and lifts the rate limit, then moves through
    ///   `device` to `postcopy-active`. With `pause-before-switchover` it stops in
    ///   `pre-switchover` instead (the guest stays stopped; `Ok`: the caller sees the status)
    ///   until the monitor's `migrate_continue` moves it to `device`.
    /// - In `pre-switchover` after such a pause: still paused, nothing changes.
    /// - In `device` after `migrate_continue`: moves to `postcopy-active`.
    ///
    /// From `postcopy-active` the destination runs the guest, so the library never resumes
    /// it; `downtime` = `now_ms` − the stop.
    fn postcopy_start(&self, now_ms: u64) -> Result<()> {
        const CALL: &str = "swo_postcopy_start";
        self.migration_call(CALL, || {
            let params = self.params();
            let deadline = self.deadline_now(&params);
            let (status, already_stopped) = {
                let mut st = self.engine_state();
                let status = self.status_cell().get();
                match status {
                    PreSwitchover if st.postcopy_switchover => {
                        if !self.deadline_in_pause(&mut st, &params, deadline, CALL, now_ms)? {
                            return Ok(());
                        }
                        drop(st);
                        return self.postcopy_final_query_and_enter(now_ms);
                    }
                    Device if st.postcopy_switchover && st.awaiting_final => {}
                    Active => {
                        if !st.postcopy_requested {
                            return Err(Error::bad_state(
                                "swo_postcopy_start: postcopy was not requested (swo_postcopy_request)",
                            ));
                        }
                    }
                    _ => {
                        return Err(bad_state(
                            CALL,
                            status,
                            "'active', or 'device' after swo_migrate_continue of a pause begun by swo_postcopy_start",
                        ))
                    }
                }
                (status, st.stopped_by_library)
            };
            self.refuse_postcopy_devices()?;
            if status == Device {
                return self.continue_postcopy(now_ms);
            }
            let mut st = self.leave_active_for_switchover(CALL, now_ms, already_stopped, "postcopy did not start")?;
            if self.capabilities().pause_before_switchover {
                st.postcopy_switchover = true;
                return self.move_to(&mut st, CALL, PreSwitchover);
            }
            self.move_to(&mut st, CALL, Device)?;
            drop(st);
            self.postcopy_final_query_and_enter(now_ms)
        })
    }

    /// `postcopy_start` in `device` after `migrate_continue` (the status is re-checked: the
    /// monitor may have cancelled meanwhile).
    fn continue_postcopy(&self, now_ms: u64) -> Result<()> {
        let mut st = self.engine_state();
        let status = self.status_cell().get();
        if !(status == Device && st.postcopy_switchover && st.awaiting_final) {
            return Err(bad_state("swo_postcopy_start", status, "'device'"));
        }
        self.observe_clock(now_ms);
        st.awaiting_final = false;
        drop(st);
        self.postcopy_final_query_and_enter(now_ms)
    }

    /// In `device` on the way to postcopy: the final query, then `postcopy-active`. QEMU's
    /// `postcopy_start` goes through `migration_switchover_start` like a precopy completion,
    /// which runs one `(exact, final)` query (`qemu_savevm_query_pending_final`: RAM syncs
    /// its bitmap there); its total becomes `remaining`, and `dirty_bytes_last_sync` stays the
    /// loop's. The status is re-checked after the handlers ran (a cancel or fail may have come).
    fn postcopy_final_query_and_enter(&self, now_ms: u64) -> Result<()> {
        self.query_pending(QueryKind::Final)?;
        let mut st = self.engine_state();
        let status = self.status_cell().get();
        if status != Device {
            return Err(bad_state("swo_postcopy_start", status, "'device'"));
        }
        self.enter_postcopy(&mut st, now_ms)
    }

    /// `device → postcopy-active`: the destination runs the guest now. `downtime` is set as
    /// QEMU's `migration_downtime_end` does (`now - downtime_start` while it is still 0).
    fn enter_postcopy(&self, st: &mut EngineState, now_ms: u64) -> Result<()> {
        self.downtime_end(st, now_ms);
        st.stopped_by_library = None;
        st.postcopy_switchover = false;
        self.move_to(st, "swo_postcopy_start", PostcopyActive)
    }

    /// QEMU's `migration_downtime_end`: `downtime = now - downtime_start` whenever the
    /// downtime is still 0 (postcopy set it when the destination started; a 0 from a
    /// same-millisecond postcopy start is measured again at completion).
    /// The bytes sent since the stop are counted with it, for the measured switchover
    /// bandwidth.
    fn downtime_end(&self, st: &mut EngineState, now_ms: u64) {
        if st.downtime_ms.unwrap_or(0) == 0 {
            let stop = st.downtime_start_ms.unwrap_or(now_ms);
            st.downtime_ms = Some(now_ms.saturating_sub(stop));
            let sent = self.counters().bytes().transferred();
            st.switchover_bytes = Some(sent.saturating_sub(st.downtime_start_bytes));
        }
    }

    /// `device` (after `switchover_begin` said proceed) or `postcopy-active` → `completed`.
    /// Freezes `total-time`, `downtime` (precopy, or postcopy whose downtime was 0: `now_ms` −
    /// the stop) and `mbps`
    /// (`transferred * 8 / (total - setup) / 1000` when that is non-zero).
    fn complete(&self, now_ms: u64) -> Result<()> {
        const CALL: &str = "swo_complete";
        self.migration_call(CALL, || {
            let mut st = self.engine_state();
            let status = self.status_cell().get();
            match status {
                // QEMU's `migration_completion_end` → `migration_downtime_end`: precopy
                // measures the downtime here; postcopy measured it when the destination
                // started, unless that came out 0 (same millisecond), which is measured again.
                Device if st.final_done => self.downtime_end(&mut st, now_ms),
                PostcopyActive => self.downtime_end(&mut st, now_ms),
                _ => {
                    return Err(bad_state(
                        CALL,
                        status,
                        "'device' after swo_switchover_begin said proceed, or 'postcopy-active'",
                    ))
                }
            }
            self.observe_clock(now_ms);
            let total = now_ms.saturating_sub(st.start_ms);
            st.total_time_ms = Some(total);
            let transfer_time = total.saturating_sub(st.setup_time_ms.unwrap_or(0));
            if transfer_time != 0 {
                let bytes = self.counters().bytes().transferred() as f64;
                st.completion_mbps = Some(bytes * 8.0 / transfer_time as f64 / 1000.0);
            }
            // The destination runs the guest now; the VMM does not get it back.
            st.stopped_by_library = None;
            self.move_to(&mut st, CALL, Completed)?;
            let measured = measured_switchover_bw(&st);
            drop(st);
            self.reuse_switchover_bandwidth(measured);
            Ok(())
        })
    }

    /// With `reuse-switchover-bandwidth` on, the measured switchover bandwidth (whole bytes
    /// per second, when one was measured) becomes `avail-switchover-bandwidth` for the next
    /// migration of this session.
    fn reuse_switchover_bandwidth(&self, measured: Option<f64>) {
        let mut params = self.params();
        let Some(bw) = measured.filter(|_| params.reuse_switchover_bandwidth) else { return };
        // Within the parameter's range (at most SIZE_MAX); a bandwidth below 1 B/s is none.
        let bw = bw.min(usize::MAX as f64) as u64;
        if bw == 0 {
            return;
        }
        params.avail_switchover_bandwidth = bw;
        let _ = self.set_params(params);
    }

    /// Any live status but `postcopy-active` (QEMU's `qmp_migrate_cancel`: "Postcopy
    /// migration in progress, cannot cancel.", `SWO_ERR_BAD_STATE`) → `cancelling`, then
    /// `cancelled` (at once when no migration-thread
    /// call is in flight, else when it returns; that call fails with `SWO_ERR_BAD_STATE`; see
    /// the module docs). `total-time` freezes at this call's `now_ms` (the first cancel's).
    /// Cancelling twice is fine. A cancel while paused in `pre-switchover` leaves `error-desc`
    /// "Switchover is interrupted" (QEMU's `migration_switchover_start`). Resumes a guest the
    /// library stopped; a failed `vm_resume`
    /// is `SWO_ERR_IO` (the status did change).
    fn cancel(&self, now_ms: u64) -> Result<()> {
        reentrancy::check(self.id(), "swo_cancel")?;
        let result = (|| {
            {
                let mut st = self.engine_state();
                let status = self.status_cell().get();
                if !status.is_live() {
                    return Err(bad_state("swo_cancel", status, "a migration under way"));
                }
                // QEMU's `qmp_migrate_cancel`: the destination already runs the guest, and a
                // cancel would lose it (`swo_fail` stays possible for real failures).
                if status == PostcopyActive {
                    return Err(Error::bad_state("Postcopy migration in progress, cannot cancel."));
                }
                self.observe_clock(now_ms);
                if status == PreSwitchover {
                    // The pause's `pre-switchover → device` fails, and
                    // `migration_switchover_start` sets this error, which
                    // `fill_source_migration_info` reports.
                    st.error_desc = Some("Switchover is interrupted".to_owned());
                }
                if status != Cancelling {
                    st.cancel_ms = Some(now_ms);
                    self.note_interrupt(&mut st);
                    self.move_to(&mut st, "swo_cancel", Cancelling)?;
                }
            }
            self.finish_cancel_if_idle()
        })();
        self.deliver_events();
        result
    }

    /// Any live status → `failed`, keeping `error_desc` for reports; `total-time` freezes at
    /// this call's `now_ms`. A migration-thread call in flight fails with
    /// `SWO_ERR_BAD_STATE`. Resumes a guest the library stopped (not in `postcopy-active`:
    /// the destination runs it); a failed `vm_resume` is `SWO_ERR_IO` (the status did change).
    fn fail(&self, now_ms: u64, error_desc: Option<&str>) -> Result<()> {
        reentrancy::check(self.id(), "swo_fail")?;
        let result = (|| {
            let taken = {
                let mut st = self.engine_state();
                let status = self.status_cell().get();
                if !status.is_live() {
                    return Err(bad_state("swo_fail", status, "a migration under way"));
                }
                self.observe_clock(now_ms);
                self.note_interrupt(&mut st);
                self.move_to(&mut st, "swo_fail", Failed)?;
                st.error_desc = error_desc.map(str::to_owned);
                super::finish_times(&mut st, now_ms);
                st.stopped_by_library.take().filter(|_| status != PostcopyActive)
            };
            self.resume_taken(taken, "the migration failed")
        })();
        self.deliver_events();
        result
    }

    /// The destination acked (or withdrew its ack of) the switchover (`switchover-ack`).
    fn set_switchover_acked(&self, acked: bool) {
        self.engine_state().switchover_acked = acked;
    }

    /// Tells the library whether the guest runs: for the `switchover-ack` rule (an ack is only
    /// needed while the guest runs) and for filing main-channel bytes (QEMU's
    /// `ram_transferred_add`: bytes sent while the user has stopped the guest are downtime
    /// bytes). Default: running.
    fn set_vm_running(&self, running: bool) {
        let mut st = self.engine_state();
        st.vm_running = running;
        self.note_vm_running(running);
    }
}

impl<H: Host + ?Sized> Lifecycle for H {}
