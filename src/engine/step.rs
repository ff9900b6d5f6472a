//! One pass of the migration loop (docs/qemu-model.md §One loop pass), with stopped-guest
//! exact sizing, stall tracking and automatic downtime adjustment.
use super::policy::{Due, Reason};
use super::{bad_state, EngineState};
use crate::error::{Error, Result};
use crate::params::{Capabilities, Params};
use crate::pending::{HandlerFlags, HandlerInfo, Pending, QueryKind};
use crate::params::PolicyAction;
use crate::state::MigrationStatus::{Active, Cancelling, PostcopyActive};
use super::{Calls, Host, Policy, Snapshots};
use serde_json::json;

crate::abi_enum::abi_enum! {
    /// What the VMM should do after a step (`SWO_ACTION_*`; names as `swo_action_name`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Action {
        /// Keep iterating: send more precopy data.
        Iterate = 0 => "iterate",
        /// Switch over now: call `switchover_begin`.
        Switchover = 1 => "switchover",
        /// Start postcopy now: call `postcopy_start`.
        StartPostcopy = 2 => "start-postcopy",
        /// Postcopy has drained: call `complete`.
        Complete = 3 => "complete",
        /// The switchover is due but `switchover-ack` holds it: keep iterating and step again.
        Wait = 4 => "wait",
        /// The library cancelled the migration (`deadline-action` or `stall-action` `cancel`):
        /// stop sending; the status is `cancelled`. Only with one of those parameters set.
        Cancelled = 5 => "cancelled",
    }
}

/// The result of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// An exact query ran.
    pub exact: bool,
    /// The library stopped the guest and left it stopped for the switchover.
    pub vm_stopped: bool,
    /// The figures the decision used (the exact query's when one ran).
    pub pending: Pending,
    /// The threshold the decision compared against.
    pub threshold: u64,
    /// `dirty-sync-count` after this step.
    pub pass: u64,
    /// Why the step decided `action`.
    pub reason: Reason,
    /// A policy action (deadline or stall) forced this switchover or postcopy, knowingly over
    /// `downtime-limit`.
    pub forced: bool,
}

/// The loop's decision on one pass's figures (steps 3–6 of §One loop pass).
fn decide(
    pending: &Pending,
    threshold: u64,
    exact: bool,
    can_switchover: bool,
    postcopy_requested: bool,
) -> Action {
    let postcopy_due =
        postcopy_requested && pending.precopy.saturating_add(pending.stopcopy) <= threshold;
    // Never on a fast figure alone: a fast total at or below the threshold always triggers
    // the exact query first, so `exact` is only a guard here.
    let switchover_due = exact && pending.total() <= threshold;
    match (postcopy_due, switchover_due, can_switchover) {
        (true, _, true) => Action::StartPostcopy,
        (false, true, true) => Action::Switchover,
        (true, _, false) | (_, true, false) => Action::Wait,
        _ => Action::Iterate,
    }
}

/// What a due policy action is decided on.
pub(crate) struct PolicyContext<'a> {
    params: &'a Params,
    deadline: Option<u64>,
    now_ms: u64,
    /// Why postcopy cannot start (a handler flagged `NO_POSTCOPY`), if it cannot.
    no_postcopy_device: Option<Error>,
}

/// What one step decides on, once its queries ran.
pub(crate) struct StepFigures<'a> {
    /// The exact query's figures when one ran, else the fast query's.
    pending: Pending,
    threshold: u64,
    exact: bool,
    /// Postcopy was requested and no handler refuses it.
    postcopy_possible: bool,
    caps: Capabilities,
    policy: PolicyContext<'a>,
}

/// How the exact query of this step ran.
#[derive(Default)]
pub(crate) struct StopState {
    /// The guest was stopped by the library (before or in this step) during the exact query.
    stopped: bool,
    /// This step called `vm_stop` (so it must resume the guest when it gives up).
    stopped_here: bool,
}

/// One pass of the migration loop (`iteration_step`).
pub(crate) trait Steps: Host {
    /// One pass of the loop, allowed in `active` and `postcopy-active`:
    /// 1. fast query;
    /// 2. when `total <= threshold` or `precopy == 0`: exact query (with the guest stopped
    ///    through `vm_stop` when an active handler has `EXACT_NEEDS_STOPPED_VM`), then
    ///    last-sync bytes, `pass += 1`, `MIGRATION_PASS`, stall tracking;
    /// 3. `switchover-ack`: the switchover waits while the guest runs (the VMM's
    ///    `set_vm_running`, and not stopped by the library for sizing) and the destination
    ///    has not acked;
    /// 4. postcopy first: requested, no handler flagged `NO_POSTCOPY` (which
    ///    `postcopy_start` would refuse; the step then decides as precopy), and
    ///    `precopy + stopcopy <= threshold`;
    /// 5. switchover when `total <= threshold` on exact figures;
    /// 6. else iterate.
    ///
    /// In `postcopy-active` only the fast query runs, and `Complete` comes when its total is 0.
    /// A guest stopped for sizing is resumed unless the action is `Switchover` or
    /// `StartPostcopy`; then `vm_stopped` is set and the downtime counts from that stop.
    fn iteration_step(&self, now_ms: u64) -> Result<Step> {
        self.migration_call("swo_iteration_step", || self.step_locked(now_ms))
    }

    fn step_locked(&self, now_ms: u64) -> Result<Step> {
        let caps = self.capabilities();
        let (status, pass, postcopy_requested, already_stopped) = {
            let st = self.engine_state();
            let status = self.status_cell().get();
            if !matches!(status, Active | PostcopyActive) {
                return Err(bad_state("swo_iteration_step", status, "'active' or 'postcopy-active'"));
            }
            (status, st.pass, st.postcopy_requested, st.stopped_by_library.is_some())
        };
        self.observe_clock(now_ms);
        let threshold = self.counters().window().threshold;
        let fast = self.query_pending(QueryKind::Fast)?;
        if status == PostcopyActive {
            return Ok(self.postcopy_step(fast, threshold, pass));
        }

        let exact = fast.total() <= threshold || fast.precopy == 0;
        let mut stop = StopState { stopped: already_stopped, stopped_here: false };
        let pending = if exact { self.exact_pending(now_ms, &mut stop)? } else { fast };
        // A handler that refuses postcopy (registered after the request) makes
        // `postcopy_start` fail: decide as precopy while one is registered.
        let no_postcopy_device = self.refuse_postcopy_devices().err();
        let postcopy_possible = postcopy_requested && no_postcopy_device.is_none();

        let params = self.params();
        let deadline = self.deadline_now(&params);
        let (action, pass, resume, reason, forced) = {
            let mut st = self.engine_state();
            let status = self.status_cell().get();
            if status != Active {
                // Cancelled or failed while the handlers ran: the end of the call resumes a
                // guest this step stopped.
                return Err(bad_state("swo_iteration_step", status, "'active'"));
            }
            let figures = StepFigures {
                pending,
                threshold,
                exact,
                postcopy_possible,
                caps,
                policy: PolicyContext { params: &params, deadline, now_ms, no_postcopy_device },
            };
            let (action, reason, forced) = self.decide_locked(&mut st, &figures)?;
            st.reason = reason;
            let keep_stopped = matches!(action, Action::Switchover | Action::StartPostcopy);
            // The record stays until the resume succeeds (see `release_guest`).
            let resume = st.stopped_by_library.is_some() && !keep_stopped;
            (action, st.pass, resume, reason, forced)
        };
        if resume {
            self.release_guest("an exact query with the guest stopped")?;
        }
        if exact && action != Action::Cancelled {
            self.auto_adjust_downtime();
        }
        Ok(Step {
            action,
            exact,
            vm_stopped: stop.stopped && !resume,
            pending,
            threshold,
            pass,
            reason,
            forced,
        })
    }

    /// The step's decision with the state held: steps 3–6 of `iteration_step`, the exact
    /// pass's bookkeeping, the reason, and a due policy action. Returns the action, the
    /// reason and `forced`.
    fn decide_locked(&self, st: &mut EngineState, f: &StepFigures<'_>) -> Result<(Action, Reason, bool)> {
        // The guest runs unless the VMM said otherwise or the library stopped it (exact
        // sizing with `vm_stop`, in this step or an earlier one).
        let guest_running = st.vm_running && st.stopped_by_library.is_none();
        let can_switchover = !(f.caps.switchover_ack && guest_running && !st.switchover_acked);
        let action = decide(&f.pending, f.threshold, f.exact, can_switchover, f.postcopy_possible);
        if f.exact {
            self.count_exact_pass(st, &f.pending, f.policy.params);
        }
        let reason = match action {
            Action::StartPostcopy => Reason::PostcopyReady,
            Action::Switchover => Reason::SwitchoverReady,
            Action::Wait => Reason::WaitingForAck,
            _ if st.stall.stalled => Reason::Stalled,
            _ if f.exact => Reason::ExactAboveThreshold,
            _ => Reason::AboveThreshold,
        };
        let (params, deadline, now_ms) = (f.policy.params, f.policy.deadline, f.policy.now_ms);
        let due = matches!(action, Action::Iterate | Action::Wait)
            .then(|| self.policy_due(st, params, deadline, now_ms))
            .flatten();
        match due {
            Some(due) => {
                self.take_policy_action(st, &due, &f.policy, f.caps.postcopy_ram, &f.pending, reason)
            }
            None => Ok((action, reason, false)),
        }
    }

    /// A step in `postcopy-active`: the fast figures only; `Complete` once they are 0.
    fn postcopy_step(&self, fast: Pending, threshold: u64, pass: u64) -> Step {
        let (action, reason) = if fast.total() == 0 {
            (Action::Complete, Reason::PostcopyDrained)
        } else {
            (Action::Iterate, Reason::PostcopyActive)
        };
        self.engine_state().reason = reason;
        Step { action, exact: false, vm_stopped: false, pending: fast, threshold, pass, reason, forced: false }
    }

    /// The exact query, with the guest stopped when a handler needs it; a guest this step
    /// stopped is resumed when the query is interrupted.
    fn exact_pending(&self, now_ms: u64, stop: &mut StopState) -> Result<Pending> {
        self.stop_for_exact_sizing(now_ms, stop)?;
        match self.query_pending(QueryKind::Exact) {
            Ok(p) => Ok(p),
            Err(e) => {
                if stop.stopped_here {
                    self.release_guest("an interrupted exact query")?;
                }
                Err(e)
            }
        }
    }

    /// An exact pass: `dirty-sync-count` and the last-sync bytes, `MIGRATION_PASS`, the pass
    /// history and the stall tracker (`MIGRATION_STALL` when the stall begins).
    fn count_exact_pass(&self, st: &mut EngineState, pending: &Pending, params: &Params) {
        st.pass = st.pass.saturating_add(1);
        st.last_sync_bytes = pending.total();
        self.emit_if_events_on("MIGRATION_PASS", json!({"pass": st.pass}));
        st.passes.record(pending.total());
        let outcome = st.stall.observe(pending.total(), params.stall_margin_pct, params.stall_passes);
        if outcome.became_stalled {
            st.stall.limit_at_first_report.get_or_insert(params.downtime_limit_ms);
            let (expected, advice) = self.advice_now(st, params);
            self.emit_if_events_on(
                "MIGRATION_STALL",
                json!({
                    "passes-since-progress": st.stall.passes_since_progress,
                    "best-remaining": st.stall.best_remaining.unwrap_or(0),
                    "remaining": pending.total(),
                    "expected-downtime": expected,
                    "downtime-limit": params.downtime_limit_ms,
                    "recommended-downtime": advice.recommended_ms,
                }),
            );
        }
    }

    /// Takes a due policy action (deadline or stall): `postcopy` falls back to `cancel` when
    /// postcopy cannot start. Returns the step's action, reason and `forced`.
    fn take_policy_action(
        &self,
        st: &mut EngineState,
        due: &Due,
        policy: &PolicyContext<'_>,
        postcopy_ram: bool,
        pending: &Pending,
        reason: Reason,
    ) -> Result<(Action, Reason, bool)> {
        let mut taken = due.action;
        let mut why_not = None;
        if taken == PolicyAction::Postcopy {
            if !postcopy_ram {
                why_not = Some("capability postcopy-ram is off".to_owned());
            } else if let Some(e) = &policy.no_postcopy_device {
                why_not = Some(e.message.clone());
            }
            if why_not.is_some() {
                taken = PolicyAction::Cancel;
            }
        }
        let (params, deadline, now_ms) = (policy.params, policy.deadline, policy.now_ms);
        let remaining = pending.total();
        self.note_policy(st, params, due, taken, deadline, now_ms, remaining, why_not);
        let reason = st.policy_taken.as_ref().map_or(reason, |p| p.reason());
        let (action, forced) = match taken {
            PolicyAction::Cancel => {
                // The end of this call (`settle_after_call`) moves on to `cancelled` and
                // resumes a guest the library stopped; not an interrupt, so the step itself
                // succeeds.
                st.cancel_ms = Some(now_ms);
                self.move_to(st, "swo_iteration_step", Cancelling)?;
                (Action::Cancelled, false)
            }
            PolicyAction::ForceSwitchover => {
                st.forced = true;
                (Action::Switchover, true)
            }
            PolicyAction::Postcopy => {
                st.forced = true;
                st.postcopy_requested = true;
                (Action::StartPostcopy, true)
            }
        };
        Ok((action, reason, forced))
    }

    /// Stops the guest for the exact query when an active handler needs it. Without VMM ops
    /// (or when `vm_stop` fails) the query runs with the guest running, and
    /// `DEVICE_SIZE_WARNING` says so, once per migration for each kind.
    fn stop_for_exact_sizing(&self, now_ms: u64, stop: &mut StopState) -> Result<()> {
        let needing = self.registry().active_with(HandlerFlags::EXACT_NEEDS_STOPPED_VM)?;
        if needing.is_empty() || stop.stopped {
            return Ok(());
        }
        let devices: Vec<String> = needing.iter().map(|h: &HandlerInfo| h.idstr.clone()).collect();
        match self.call_vm_stop() {
            None => {
                let mut st = self.engine_state();
                if !st.warned_no_vmm {
                    st.warned_no_vmm = true;
                    self.emit("DEVICE_SIZE_WARNING", json!({"kind": "no-vmm-ops", "devices": devices}));
                }
            }
            Some(0) => {
                stop.stopped_here = true;
                let mut st = self.engine_state();
                // Recorded even when a cancel or fail came meanwhile: the end of the call then
                // resumes the guest.
                st.stopped_by_library = Some(now_ms);
                let status = self.status_cell().get();
                if status != Active {
                    return Err(bad_state("swo_iteration_step", status, "'active'"));
                }
                stop.stopped = true;
            }
            Some(rc) => {
                let mut st = self.engine_state();
                if !std::mem::replace(&mut st.warned_vm_stop_failed, true) {
                    self.emit(
                        "DEVICE_SIZE_WARNING",
                        json!({"kind": "vm-stop-failed", "errno": rc.unsigned_abs(), "devices": devices}),
                    );
                }
            }
        }
        Ok(())
    }

    /// With `auto-downtime-max` set and a stall whose expected downtime exceeds the limit:
    /// raises `downtime-limit` to the recommendation when it is within the ceiling, and emits
    /// `MIGRATION_DOWNTIME_ADJUSTED`. (Beyond the ceiling the advice says `BEYOND_MAX`.)
    ///
    /// Only `downtime-limit` is written, and only while it still holds the value the decision
    /// was based on and `auto-downtime-max` is unchanged ([`Host::raise_downtime_limit_if`]):
    /// a parameter set by another thread meanwhile is never undone, and an operator's own
    /// `downtime-limit` set meanwhile wins.
    fn auto_adjust_downtime(&self) {
        let params = self.params();
        if params.auto_downtime_max_ms == 0 {
            return;
        }
        let (expected, advice) = self.advice_now(&self.engine_state(), &params);
        if advice.recommended_ms == 0 || advice.beyond_max {
            return;
        }
        let old = params.downtime_limit_ms;
        let raised = self.raise_downtime_limit_if(old, params.auto_downtime_max_ms, advice.recommended_ms);
        if raised == Ok(true) {
            self.emit_if_events_on(
                "MIGRATION_DOWNTIME_ADJUSTED",
                json!({
                    "old-downtime-limit": old,
                    "downtime-limit": advice.recommended_ms,
                    "expected-downtime": expected,
                    "auto-downtime-max": params.auto_downtime_max_ms,
                }),
            );
        }
    }
}

impl<H: Host + ?Sized> Steps for H {}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pre: u64, stop: u64, post: u64) -> Pending {
        Pending { precopy: pre, stopcopy: stop, postcopy: post }
    }

    #[test]
    fn switchover_needs_exact_figures_at_or_below_threshold() {
        assert_eq!(decide(&p(0, 100, 0), 100, true, true, false), Action::Switchover);
        assert_eq!(decide(&p(0, 101, 0), 100, true, true, false), Action::Iterate);
        assert_eq!(decide(&p(0, 0, 0), 0, false, true, false), Action::Iterate);
    }

    #[test]
    fn postcopy_comes_first_and_ignores_the_postcopy_bucket() {
        assert_eq!(decide(&p(50, 50, 1 << 40), 100, false, true, true), Action::StartPostcopy);
        assert_eq!(decide(&p(50, 51, 0), 100, true, true, true), Action::Iterate);
        assert_eq!(decide(&p(10, 10, 0), 100, true, true, true), Action::StartPostcopy);
    }

    #[test]
    fn ack_turns_a_due_switchover_into_wait() {
        assert_eq!(decide(&p(0, 10, 0), 100, true, false, false), Action::Wait);
        assert_eq!(decide(&p(0, 1000, 0), 100, true, false, false), Action::Iterate);
    }
}
