//! Operator policy (issue 15): the deadline and its action, the stall action, and the reason
//! given for every decision. Every parameter here is off by default, and then nothing in this
//! module changes a decision, a report or an event: QEMU's behaviour stays as it is.
use super::EngineState;
use crate::params::{Params, PolicyAction};
use crate::size::size_to_str;
use super::{Calls, Host, Snapshots};
use crate::error::{Error, Result};
use crate::pending::HandlerFlags;
use serde_json::json;

crate::abi_enum::abi_enum! {
    /// Why the engine decided what it did (`SWO_REASON_*`), or, in a report, why the migration
    /// is where it is. Values are never renumbered; the names are the reports' and
    /// `swo_reason_name`'s.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub enum Reason {
        /// No decision yet (`none`, `setup`, or `active` before the first step).
        #[default]
        None = 0 => "none",
        /// The fast figures are above the threshold (no exact query ran).
        AboveThreshold = 1 => "above-threshold",
        /// The exact figures are above the threshold.
        ExactAboveThreshold = 2 => "exact-above-threshold",
        /// The figures fit, but the destination has not acked (`switchover-ack`).
        WaitingForAck = 3 => "waiting-for-ack",
        /// Paused in `pre-switchover` until `migrate-continue`.
        PausedBeforeSwitchover = 4 => "paused-before-switchover",
        /// Above the threshold and stalled (no progress for `stall-passes` passes).
        Stalled = 5 => "stalled",
        /// The deadline passed and its action was taken.
        DeadlineReached = 6 => "deadline-reached",
        /// The stall lasted `stall-action-passes` passes and the stall action was taken.
        StallAction = 7 => "stall-action",
        /// Postcopy was requested and precopy + stop-copy fit the threshold.
        PostcopyReady = 8 => "postcopy-ready",
        /// The exact figures fit the threshold: switch over.
        SwitchoverReady = 9 => "switchover-ready",
        /// In `device`: the guest is stopped and the rest is sent.
        SwitchingOver = 10 => "switching-over",
        /// In `postcopy-active`: the destination runs the guest; pages still move.
        PostcopyActive = 11 => "postcopy-active",
        /// Postcopy has drained: complete.
        PostcopyDrained = 12 => "postcopy-drained",
        /// Completed.
        SwitchedOver = 13 => "switched-over",
        /// Cancelled by the operator (`swo_cancel`).
        Cancelled = 14 => "cancelled",
        /// Failed (`swo_fail`).
        Failed = 15 => "failed",
    }
}

/// What triggered a policy action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    Deadline,
    Stall,
}

/// A policy action the library took (once per migration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyTaken {
    pub trigger: Trigger,
    /// The action actually taken (`postcopy` may have become `cancel`).
    pub action: PolicyAction,
    /// One line for the reports.
    pub text: String,
}

impl PolicyTaken {
    pub fn reason(&self) -> Reason {
        match self.trigger {
            Trigger::Deadline => Reason::DeadlineReached,
            Trigger::Stall => Reason::StallAction,
        }
    }
}

/// `"300 ms"`, or with a fixed downtime `"300 ms - 50 ms fixed"`.
fn budget_text(params: &Params) -> String {
    match params.downtime_fixed_ms {
        0 => format!("{} ms", params.downtime_limit_ms),
        fixed => format!("{} ms - {fixed} ms fixed", params.downtime_limit_ms),
    }
}

/// The one-line text for a reason: the figures that made the decision, in the units a person
/// reads (`remaining 1.91 GiB > threshold 307 MiB = 300 ms at 1 GiB/s; advice 2101 ms`).
pub(crate) struct ReasonFigures<'a> {
    pub reason: Reason,
    pub params: &'a Params,
    pub remaining: u64,
    pub threshold: u64,
    pub switchover_bw: f64,
    pub recommended_ms: u64,
    pub passes_since_progress: u64,
    pub downtime_ms: u64,
    pub predicted_downtime_ms: Option<i64>,
    pub measured_switchover_bw: Option<f64>,
    pub policy: Option<&'a PolicyTaken>,
    pub error_desc: Option<&'a str>,
}

fn bw_text(bw: f64) -> String {
    let b = if bw.is_finite() && bw > 0.0 { bw as u64 } else { 0 };
    format!("{}/s", size_to_str(b))
}

impl ReasonFigures<'_> {
    pub fn text(&self) -> String {
        let above = || {
            let mut t = format!(
                "remaining {} > threshold {} = {} at {}",
                size_to_str(self.remaining),
                size_to_str(self.threshold),
                budget_text(self.params),
                bw_text(self.switchover_bw)
            );
            if self.recommended_ms != 0 {
                t.push_str(&format!("; advice {} ms", self.recommended_ms));
            }
            t
        };
        let fits = || {
            format!(
                "remaining {} <= threshold {} = {} at {}",
                size_to_str(self.remaining),
                size_to_str(self.threshold),
                budget_text(self.params),
                bw_text(self.switchover_bw)
            )
        };
        match self.reason {
            Reason::None => "no decision yet".to_owned(),
            Reason::AboveThreshold => above(),
            Reason::ExactAboveThreshold => format!("exact {}", above()),
            Reason::Stalled => {
                format!("stalled {} passes: {}", self.passes_since_progress, above())
            }
            Reason::WaitingForAck => format!("{}; waiting for switchover-ack", fits()),
            Reason::PausedBeforeSwitchover => {
                "paused before switchover; waiting for migrate-continue".to_owned()
            }
            Reason::DeadlineReached | Reason::StallAction => {
                self.policy.map_or_else(String::new, |p| p.text.clone())
            }
            Reason::PostcopyReady => format!(
                "precopy + stop-copy fit the threshold {}: postcopy",
                size_to_str(self.threshold)
            ),
            Reason::SwitchoverReady => format!("{}: switchover", fits()),
            Reason::SwitchingOver => {
                format!("switching over; guest stopped {} ms", self.downtime_ms)
            }
            Reason::PostcopyActive => {
                format!("postcopy; {} left on the source", size_to_str(self.remaining))
            }
            Reason::PostcopyDrained => "postcopy drained".to_owned(),
            Reason::SwitchedOver => {
                let mut t = format!("switched over; downtime {} ms", self.downtime_ms);
                if let Some(p) = self.predicted_downtime_ms {
                    t.push_str(&format!(", predicted {p} ms"));
                }
                if let Some(bw) = self.measured_switchover_bw {
                    t.push_str(&format!(", switchover bandwidth {}", bw_text(bw)));
                }
                t
            }
            Reason::Cancelled => "cancelled by the operator".to_owned(),
            Reason::Failed => match self.error_desc {
                Some(d) => format!("failed: {d}"),
                None => "failed".to_owned(),
            },
        }
    }
}

/// What a policy check found due.
pub(crate) struct Due {
    pub trigger: Trigger,
    pub action: PolicyAction,
}

/// Deadlines and stall actions: when one is due, and what taking it records.
pub(crate) trait Policy: Host {
    /// The deadline in ms since `migration_start` for this session's guest (the RAM model's
    /// `total`, when there is one).
    fn deadline_now(&self, params: &Params) -> Option<u64> {
        let ram_total = self.ram_slot().figures().map(|r| r.total_bytes);
        params.effective_deadline_ms(ram_total)
    }

    /// [`Policy::deadline_now`] with the RAM figures already read.
    fn deadline_now_with(&self, params: &Params, ram_total: Option<u64>) -> Option<u64> {
        params.effective_deadline_ms(ram_total)
    }

    /// The policy action due at `now_ms` (the caller holds the state), if any and not taken
    /// yet: the deadline first, then a stall that lasted `stall-action-passes`.
    fn policy_due(
        &self,
        st: &EngineState,
        params: &Params,
        deadline: Option<u64>,
        now_ms: u64,
    ) -> Option<Due> {
        if st.policy_taken.is_some() {
            return None;
        }
        let elapsed = now_ms.saturating_sub(st.start_ms);
        if deadline.is_some_and(|d| elapsed >= d) {
            return Some(Due { trigger: Trigger::Deadline, action: params.deadline_action });
        }
        let action = params.stall_action?;
        (st.stall.stalled && st.stall.passes_since_progress >= params.stall_action_passes)
            .then_some(Due { trigger: Trigger::Stall, action })
    }

    /// Records a policy action taken at `now_ms` (the caller holds the state) and queues its
    /// event (`MIGRATION_DEADLINE` or `MIGRATION_STALL_ACTION`, with capability `events`).
    /// `why_not_postcopy` is the reason a `postcopy` action became `cancel`.
    fn note_policy(
        &self,
        st: &mut EngineState,
        params: &Params,
        due: &Due,
        taken: PolicyAction,
        deadline: Option<u64>,
        now_ms: u64,
        remaining: u64,
        why_not_postcopy: Option<String>,
    ) {
        let elapsed = now_ms.saturating_sub(st.start_ms);
        let expected = self.expected_now(st, params);
        let what = match taken {
            PolicyAction::Cancel => "cancel".to_owned(),
            PolicyAction::ForceSwitchover => format!(
                "force-switchover with expected downtime {} ms against downtime-limit {} ms",
                if expected == i64::MAX { "unknown".to_owned() } else { expected.to_string() },
                params.downtime_limit_ms
            ),
            PolicyAction::Postcopy => "postcopy".to_owned(),
        };
        let mut text = match due.trigger {
            Trigger::Deadline => format!(
                "deadline {} ms reached after {elapsed} ms: {what}",
                deadline.unwrap_or(0)
            ),
            Trigger::Stall => format!(
                "stalled {} passes (stall-action-passes {}): {what}",
                st.stall.passes_since_progress, params.stall_action_passes
            ),
        };
        if let Some(why) = &why_not_postcopy {
            text.push_str(&format!(" (postcopy impossible: {why})"));
        }
        let mut data = json!({
            "action": taken.name(),
            "remaining": remaining,
            "expected-downtime": expected,
            "downtime-limit": params.downtime_limit_ms,
        });
        match due.trigger {
            Trigger::Deadline => {
                data["elapsed"] = elapsed.into();
                data["deadline"] = deadline.unwrap_or(0).into();
                if let Some(why) = why_not_postcopy {
                    data["requested-action"] = due.action.name().into();
                    data["reason"] = why.into();
                }
                self.emit_if_events_on("MIGRATION_DEADLINE", data);
            }
            Trigger::Stall => {
                data["passes-since-progress"] = st.stall.passes_since_progress.into();
                self.emit_if_events_on("MIGRATION_STALL_ACTION", data);
            }
        }
        st.policy_taken = Some(PolicyTaken { trigger: due.trigger, action: taken, text });
    }

    /// While paused in `pre-switchover`, a deadline that passed takes its action (the caller
    /// holds the state and computed `deadline` with `params` before taking it):
    /// - `cancel`: `cancelling` (then `cancelled` at the end of the call, the guest resumed),
    ///   `error-desc` "Switchover is interrupted" as for the operator's cancel in the pause,
    ///   and `SWO_ERR_BAD_STATE` saying so;
    /// - `force-switchover` or `postcopy`: the pause ends as after `migrate-continue`
    ///   (`device`, `Ok(true)`): the switchover under way goes on, forced (no rollback). A
    ///   precopy switchover stays precopy (the action is reported as `force-switchover`).
    ///
    /// `Ok(false)`: nothing due.
    fn deadline_in_pause(
        &self,
        st: &mut EngineState,
        params: &Params,
        deadline: Option<u64>,
        call: &str,
        now_ms: u64,
    ) -> crate::error::Result<bool> {
        let elapsed = now_ms.saturating_sub(st.start_ms);
        if st.policy_taken.is_some() || !deadline.is_some_and(|d| elapsed >= d) {
            return Ok(false);
        }
        let due = Due { trigger: Trigger::Deadline, action: params.deadline_action };
        let taken = match params.deadline_action {
            PolicyAction::Cancel => PolicyAction::Cancel,
            _ if st.postcopy_switchover => PolicyAction::Postcopy,
            _ => PolicyAction::ForceSwitchover,
        };
        self.observe_clock(now_ms);
        self.note_policy(st, params, &due, taken, deadline, now_ms, self.remaining(), None);
        if taken == PolicyAction::Cancel {
            st.error_desc = Some("Switchover is interrupted".to_owned());
            st.cancel_ms = Some(now_ms);
            self.move_to(st, call, crate::state::MigrationStatus::Cancelling)?;
            return Err(crate::error::Error::bad_state(format!(
                "{call}: deadline {} ms reached after {elapsed} ms while paused before switchover: the migration is cancelled (deadline-action cancel)",
                deadline.unwrap_or(0)
            )));
        }
        st.forced = true;
        st.awaiting_final = false;
        self.move_to(st, call, crate::state::MigrationStatus::Device)?;
        Ok(true)
    }

    /// The first handler that refuses postcopy, as an `SWO_ERR_UNSUPPORTED` error.
    fn refuse_postcopy_devices(&self) -> Result<()> {
        match self.registry().handlers().into_iter().find(|h| h.flags.contains(HandlerFlags::NO_POSTCOPY)) {
            Some(h) => Err(Error::unsupported(format!(
                "Postcopy is not supported: device '{}' (instance {}) cannot take part in postcopy",
                h.idstr, h.instance_id
            ))),
            None => Ok(()),
        }
    }
}

impl<H: Host + ?Sized> Policy for H {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_values_are_their_index() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Reason::from_u32(i as u32), Some(*r));
        }
        assert_eq!(Reason::from_u32(16), None);
    }
}
