//! C ABI of the convergence engine: lifecycle, counters, the iteration step, info and advice.
use super::*;
use crate::counters::Channel;
use crate::engine::{Snapshot, Step};
use super::status::policy_action_number;
use crate::state::MigrationStatus;
use super::versioned::{self, Out};
use std::ffi::c_char;
use std::mem::size_of;

/// `SwoInfo.flags`: `remaining_bytes` is reported in this status (query-migrate's top-level
/// `remaining`: active, pre-switchover, device, cancelling, postcopy-active).
pub const SWO_INFO_HAS_REMAINING: u32 = 1 << 0;
/// `SwoInfo.flags`: the migration is stalled (no progress for `stall-passes` passes).
pub const SWO_INFO_STALLED: u32 = 1 << 1;

/// `SwoAdvice.flags`: the migration is stalled.
pub const SWO_ADVICE_STALLED: u32 = 1 << 0;
/// `SwoAdvice.flags`: the last exact figures fit within `downtime-limit` at the current
/// switchover bandwidth: the next pass switches over (switchover-ack aside).
pub const SWO_ADVICE_WILL_SWITCHOVER: u32 = 1 << 1;
/// `SwoAdvice.flags`: `auto-downtime-max` is set and the recommendation is above it, or the
/// limit needed is above the largest `downtime-limit` (2,000,000 ms; then the recommendation
/// is 0).
pub const SWO_ADVICE_BEYOND_MAX: u32 = 1 << 2;

/// A numeric snapshot of the migration for C callers.
///
/// Versioned: set `struct_size` to `sizeof(SwoInfo)` before the call
/// (`SwoInfo info = { .struct_size = sizeof info };`). The library refuses a size below 104
/// (the 0.2.0 layout) with `SWO_ERR_INVALID_ARG` and writes nothing; otherwise it writes the
/// fields that lie wholly within `struct_size` (whole 8-byte slots), never a byte past it, and
/// sets `struct_size` to the bytes it wrote. Fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwoInfo {
    /// Set by the caller to `sizeof(SwoInfo)`; set by the library to the bytes it wrote.
    pub struct_size: u32,
    /// `SWO_STATUS_*`.
    pub status: u32,
    /// `SWO_INFO_*` bits.
    pub flags: u32,
    /// Written as 0.
    pub reserved: u32,
    /// System-wide remaining bytes: the total of the last query, fast or exact.
    pub remaining_bytes: u64,
    /// Total of the last exact query (`dirty_bytes_last_sync`).
    pub last_sync_bytes: u64,
    /// The threshold of the last bandwidth window (0 before the first one closes).
    pub threshold_bytes: u64,
    /// `dirty-sync-count`.
    pub pass: u64,
    /// Bytes sent on every channel since `swo_migration_start`.
    pub transferred_bytes: u64,
    /// Throughput in Mbit/s (the last window's; at completion over the whole migration).
    pub mbps: f64,
    /// Bytes per second used for decisions.
    pub switchover_bw: f64,
    /// Expected downtime in ms; `INT64_MAX` when no bandwidth is known.
    pub expected_downtime_ms: i64,
    /// ms since `swo_migration_start`, frozen when the migration ends.
    pub total_time_ms: u64,
    /// ms spent in `setup`.
    pub setup_time_ms: u64,
    /// ms the guest was (or has been, so far) stopped for the switchover.
    pub downtime_ms: u64,
    // ---- appended in 0.2 (operator policy) ----
    /// `SWO_REASON_*`: why the migration is where it is (`swo_reason_name`).
    pub reason: u32,
    /// `SWO_POLICY_*`: the deadline or stall action taken (`swo_policy_action_name`).
    pub policy_action: u32,
    /// The deadline in ms since `swo_migration_start` (`deadline` + `deadline-per-gib` × GiB
    /// of guest RAM); 0 = none.
    pub deadline_ms: u64,
    /// Expected downtime (ms, with `downtime-fixed`) when the switchover began; -1 before.
    pub predicted_downtime_ms: i64,
    /// Bytes sent between the guest's stop and the end of the downtime; 0 before it ended.
    pub switchover_bytes: u64,
    /// `switchover_bytes` ÷ the downtime, bytes/s: the switchover bandwidth seen; 0 before the
    /// downtime ended (or when it lasted 0 ms).
    pub measured_switchover_bw: f64,
}

/// `SwoInfo.policy_action`: no deadline or stall action was taken.
pub const SWO_POLICY_NONE: u32 = 0;
/// `SwoInfo.policy_action`: the library cancelled the migration.
pub const SWO_POLICY_CANCEL: u32 = 1;
/// `SwoInfo.policy_action`: the library forced the switchover.
pub const SWO_POLICY_FORCE_SWITCHOVER: u32 = 2;
/// `SwoInfo.policy_action`: the library started postcopy.
pub const SWO_POLICY_POSTCOPY: u32 = 3;
versioned::out_struct!(SwoInfo, 104);

/// The downtime advice.
///
/// Versioned: set `struct_size` to `sizeof(SwoAdvice)` before the call
/// (`SwoAdvice advice = { .struct_size = sizeof advice };`). The library refuses a size below
/// 40 (the 0.2.0 layout) with `SWO_ERR_INVALID_ARG` and writes nothing; otherwise it writes
/// the fields that lie wholly within `struct_size` (whole 8-byte slots), never a byte past it,
/// and sets `struct_size` to the bytes it wrote. Fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwoAdvice {
    /// Set by the caller to `sizeof(SwoAdvice)`; set by the library to the bytes it wrote.
    pub struct_size: u32,
    /// `SWO_ADVICE_*` bits.
    pub flags: u32,
    /// Passes since the best remaining was last beaten by `stall-margin` percent.
    pub passes_since_progress: u32,
    /// Written as 0.
    pub reserved: u32,
    /// The lowest remaining seen at a pass (0 before the first pass).
    pub best_remaining_bytes: u64,
    /// Expected downtime in ms, as in `SwoInfo`.
    pub expected_downtime_ms: i64,
    /// expected × (1 + `downtime-headroom`%), rounded up to whole ms — with a
    /// `guest-dirty-rate` set, the expected downtime's byte part × r / (p + r) instead when
    /// that is above `downtime-limit` (p the window's rate, r = max(guest-dirty-rate, p);
    /// docs/design.md §Beyond QEMU); 0 if no change is advised (not stalled, or the expected
    /// downtime fits `downtime-limit`, or unknown).
    pub recommended_downtime_ms: u64,
    /// Appended in 0.2 after the versioned layout (written when `struct_size` >= 48): ms until
    /// the migration can switch over, `(R − T) / (D × (1 − q))` with the remaining `R`, the
    /// threshold `T`, the rate `D` at which the remaining falls within a round (the window
    /// bandwidth until measured) and the per-pass ratio `q` of the remaining over the last
    /// `stall-passes` passes; `SWO_ETA_NEVER` when the remaining does not fall (a stall, or
    /// less than `stall-margin` percent over those passes) or no rate is known; 0 outside
    /// `active`. Same figure as `x-switchover.eta` in `query-migrate`.
    pub eta_ms: u64,
}
versioned::out_struct!(SwoAdvice, 40);

/// `SwoAdvice.eta_ms`: no end in sight (the remaining does not fall). `UINT64_MAX`.
pub const SWO_ETA_NEVER: u64 = u64::MAX;

impl From<&Snapshot> for SwoInfo {
    fn from(s: &Snapshot) -> SwoInfo {
        let mut flags = 0;
        if s.has_remaining {
            flags |= SWO_INFO_HAS_REMAINING;
        }
        if s.stalled {
            flags |= SWO_INFO_STALLED;
        }
        SwoInfo {
            struct_size: size_of::<SwoInfo>() as u32,
            status: s.status as u32,
            reserved: 0,
            flags,
            remaining_bytes: s.remaining,
            last_sync_bytes: s.last_sync_bytes,
            threshold_bytes: s.threshold_bytes,
            pass: s.dirty_sync_count,
            transferred_bytes: s.transferred,
            mbps: s.mbps,
            switchover_bw: s.switchover_bw,
            expected_downtime_ms: s.expected_downtime_ms,
            total_time_ms: s.total_time_ms,
            setup_time_ms: s.setup_time_ms,
            downtime_ms: s.downtime_ms,
            reason: s.reason as u32,
            policy_action: policy_action_number(s.policy_action),
            deadline_ms: s.deadline_ms.unwrap_or(0),
            predicted_downtime_ms: s.predicted_downtime_ms.unwrap_or(-1),
            switchover_bytes: s.switchover_bytes.unwrap_or(0),
            measured_switchover_bw: s.measured_switchover_bw.unwrap_or(0.0),
        }
    }
}

impl From<&Snapshot> for SwoAdvice {
    fn from(s: &Snapshot) -> SwoAdvice {
        let mut flags = 0;
        if s.stalled {
            flags |= SWO_ADVICE_STALLED;
        }
        if s.will_switchover {
            flags |= SWO_ADVICE_WILL_SWITCHOVER;
        }
        if s.beyond_max {
            flags |= SWO_ADVICE_BEYOND_MAX;
        }
        SwoAdvice {
            struct_size: size_of::<SwoAdvice>() as u32,
            flags,
            reserved: 0,
            passes_since_progress: u32::try_from(s.passes_since_progress).unwrap_or(u32::MAX),
            best_remaining_bytes: s.best_remaining,
            expected_downtime_ms: s.expected_downtime_ms,
            recommended_downtime_ms: s.recommended_downtime_ms,
            eta_ms: s.eta_ms,
        }
    }
}

impl From<Step> for SwoStep {
    fn from(s: Step) -> SwoStep {
        let mut flags = 0;
        if s.exact {
            flags |= SWO_STEP_EXACT;
        }
        if s.vm_stopped {
            flags |= SWO_STEP_VM_STOPPED;
        }
        if s.forced {
            flags |= SWO_STEP_FORCED;
        }
        SwoStep {
            struct_size: size_of::<SwoStep>() as u32,
            action: s.action as u32,
            reserved: 0,
            flags,
            pending: s.pending.into(),
            threshold_bytes: s.threshold,
            pass: s.pass,
            reason: s.reason as u32,
            reserved_policy: 0,
        }
    }
}

/// Starts a migration: `none`, `completed`, `cancelled` or `failed` → `setup`. Resets every
/// statistic and opens the first 100 ms bandwidth window at `now_ms` (the caller's monotonic
/// clock, in ms, as for every call taking `now_ms`; a call refused for its state does not
/// look at it). Migration thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE` (a migration is in progress; or,
/// as for every migration-thread call, a `swo_cancel` or `swo_fail` came while it ran), or
/// `SWO_ERR_REENTRANT` from a callback of this session.
#[no_mangle]
pub unsafe extern "C" fn swo_migration_start(s: *mut SwoSession, now_ms: u64) -> SwoStatus {
    session_call(s, |sess| sess.migration_start(now_ms))
}

/// `setup` → `active`; `setup-time` = `now_ms` − start. Migration thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE` (not `setup`, or a `swo_cancel` /
/// `swo_fail` came while it ran), or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_setup_done(s: *mut SwoSession, now_ms: u64) -> SwoStatus {
    session_call(s, |sess| sess.setup_done(now_ms))
}

/// Counts `bytes` sent on `channel` (`SWO_CHANNEL_MAIN` or `SWO_CHANNEL_MULTIFD`). Main-channel
/// bytes are filed by the guest's run state at this moment, as QEMU's `ram_transferred_add`
/// does: precopy while the guest runs (per `swo_set_vm_running` and not stopped by the
/// library; never in `pre-switchover`, `device` or `postcopy-active`), postcopy in
/// `postcopy-active`, downtime otherwise. The hot path: lock-free, any number of threads at once; counters saturate
/// (exact below 2^64 − 2^56, `UINT64_MAX` from there on; never a wrapped value).
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_INVALID_ARG` (unknown channel).
#[no_mangle]
pub unsafe extern "C" fn swo_record_transferred(
    s: *mut SwoSession,
    channel: u32,
    bytes: u64,
) -> SwoStatus {
    // Not through `session_call`: no events can be raised here, and the hot path takes no lock.
    // The hot path makes no call and builds no error: a session, a known channel and an add
    // the core's fast path takes (inside the panic boundary, free where nothing can unwind).
    // Anything else (NULL, an unknown channel, a large addend, a counter at its bound) goes
    // to `record_transferred_slow`, a tail call, which checks again, words any error and adds.
    match (try_handle(s), Channel::known(channel)) {
        (Some(sess), Some(channel))
            if call_or(false, || sess.try_record_transferred_fast(channel, bytes)) =>
        {
            SWO_OK
        }
        _ => record_transferred_slow(s, channel, bytes),
    }
}

/// `swo_record_transferred` off its hot path: the usual checks and messages, and the core's
/// slow add. `extern "C"` so that it cannot unwind and the export can jump to it.
#[cold]
#[inline(never)]
extern "C" fn record_transferred_slow(s: *mut SwoSession, channel: u32, bytes: u64) -> SwoStatus {
    call(|| {
        handle(s)?.record_transferred(Channel::from_u32(channel)?, bytes);
        Ok(())
    })
}

/// Closes the 100 ms bandwidth window when `now_ms >= window start + 100`: measures `mbps`,
/// the switchover bandwidth (`avail-switchover-bandwidth` or the measured rate), the
/// threshold (`bandwidth / 1000 × downtime-limit`, QEMU's `migration_update_counters` order)
/// and pages per second; does nothing earlier. A
/// clock that went backwards restarts the window at `now_ms` and keeps the last figures.
/// In `pre-switchover` and `device` no window closes (QEMU's migration thread is waiting in
/// the pause or running the switchover then): `SWO_OK`, nothing changes. Allowed while a
/// migration is under way. Migration thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_BAD_STATE`.
#[no_mangle]
pub unsafe extern "C" fn swo_update_counters(s: *mut SwoSession, now_ms: u64) -> SwoStatus {
    session_call(s, |sess| sess.update_counters(now_ms).map(|_| ()))
}

/// One pass of the migration loop (QEMU's decision): a fast query; an exact one when the
/// total is at or below the threshold or precopy is 0 (the guest stopped through `vm_stop`
/// meanwhile when a handler has `SWO_HANDLER_EXACT_NEEDS_STOPPED_VM`); then the action into
/// `*out`: `SWO_ACTION_ITERATE`, `_SWITCHOVER`, `_START_POSTCOPY` (never while a
/// `SWO_HANDLER_NO_POSTCOPY` handler is registered: the step then decides as precopy),
/// `_COMPLETE` (postcopy drained) or `_WAIT` (switchover-ack holds a due switchover: the
/// capability is on, the guest runs — per `swo_set_vm_running`, and not stopped by the
/// library — and the destination has not acked). Handler callbacks, `vm_stop`, `vm_resume`
/// and events run with no lock held that reports need. Allowed in `active` and
/// `postcopy-active`. Migration thread. `*out` (a versioned `SwoStep`: set its `struct_size`)
/// is written only on success. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG`
/// (`out->struct_size` below the first versioned layout: checked before the step, which then
/// does not run), `SWO_ERR_BAD_STATE` (also when the migration was
/// cancelled or failed during the step), `SWO_ERR_IO` (`vm_resume` failed: the guest is
/// still stopped; the library keeps it marked as stopped by itself and resumes it at the next
/// step that gives it back, at `swo_cancel` or at `swo_fail`), or `SWO_ERR_REENTRANT` from a
/// callback of this session.
#[no_mangle]
pub unsafe extern "C" fn swo_iteration_step(
    s: *mut SwoSession,
    now_ms: u64,
    out: *mut SwoStep,
) -> SwoStatus {
    session_call(s, |sess| {
        let out = Out::check(out, "out")?;
        out.write(&sess.iteration_step(now_ms)?.into());
        Ok(())
    })
}

/// Begins the switchover. From `active`: stops the guest through `vm_stop` (unless the step
/// already did; without VMM ops the VMM stops it before this call), starts the downtime
/// clock, lifts the rate limit, moves to `device` and runs the final query (exact + final)
/// into `*final_out`, then `*proceed` = true: send the rest, then `swo_complete`.
/// With `pause-before-switchover` it stops at `pre-switchover` instead (`*proceed` false,
/// `*final_out` zeroed); call again after the monitor's `swo_migrate_continue` (calls while
/// still paused change nothing and give `*proceed` false; a pause begun by
/// `swo_postcopy_start` is `SWO_ERR_BAD_STATE` here). With `switchover-rollback`, a final
/// total above the threshold by more than `rollback-tolerance` percent returns to `active`,
/// resumes a guest the library stopped (else the VMM must resume it), and gives `*proceed`
/// false. Migration thread. Outputs written only on success.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE` (also when a `swo_cancel` /
/// `swo_fail` came while it ran: a guest it stopped is resumed), `SWO_ERR_IO` (`vm_stop` failed:
/// still `active`; or the rollback's `vm_resume` failed: `active`, the guest still stopped and
/// resumed by the next step that gives it back, `swo_cancel` or `swo_fail`), or
/// `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_switchover_begin(
    s: *mut SwoSession,
    now_ms: u64,
    final_out: *mut SwoPending,
    proceed: *mut bool,
) -> SwoStatus {
    session_call(s, |sess| {
        let final_out = out(final_out, "final_out")?;
        let proceed = out(proceed, "proceed")?;
        let outcome = sess.switchover_begin(now_ms)?;
        *final_out = outcome.final_pending.into();
        *proceed = outcome.proceed;
        Ok(())
    })
}

/// `migrate-continue` (QEMU's `qmp_migrate_continue`): `expected_status` (`SWO_STATUS_*`) must
/// be the current status, else `SWO_ERR_BAD_STATE` with QEMU's `Migration not in expected
/// state: <current state>`. In `pre-switchover` it moves to `device` (the migration thread
/// then calls `swo_switchover_begin` or, for a pause begun by `swo_postcopy_start`,
/// `swo_postcopy_start` again); in any other status it does nothing. Any thread (the
/// monitor's).
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (not a status number),
/// `SWO_ERR_BAD_STATE`, or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_migrate_continue(s: *mut SwoSession, expected_status: u32) -> SwoStatus {
    session_call(s, |sess| {
        let expected = MigrationStatus::from_u32(expected_status).ok_or_else(|| {
            Error::invalid_arg(format!("unknown migration status {expected_status}"))
        })?;
        sess.migrate_continue(expected)
    })
}

/// `migrate-start-postcopy`: the loop starts postcopy once `precopy + stopcopy` fits the
/// threshold (`SWO_ACTION_START_POSTCOPY`). Needs capability `postcopy-ram` and a migration in
/// `setup`, `active` or `pre-switchover` (`SWO_ERR_BAD_STATE` with QEMU's wording otherwise);
/// `SWO_ERR_UNSUPPORTED` naming the device while a handler has `SWO_HANDLER_NO_POSTCOPY`.
/// Any thread. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE`,
/// `SWO_ERR_UNSUPPORTED`, or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_postcopy_request(s: *mut SwoSession) -> SwoStatus {
    session_call(s, |sess| sess.postcopy_request())
}

/// Starts postcopy after `SWO_ACTION_START_POSTCOPY`:
/// `active` → [`pre-switchover` →] `device` → `postcopy-active`. From `active` (postcopy
/// requested): stops the guest through `vm_stop` unless the step already did (without VMM ops
/// the VMM stops it before this call), starts the downtime clock, lifts the rate limit and
/// moves through `device` to `postcopy-active`. With `pause-before-switchover` it stops in
/// `pre-switchover` instead and returns `SWO_OK` (read the status: `swo_get_status`); the guest
/// stays stopped. Calls while still paused change nothing and return `SWO_OK`. After the
/// monitor's `swo_migrate_continue(SWO_STATUS_PRE_SWITCHOVER)` moved it to `device`, call it
/// again: → `postcopy-active`. Before `postcopy-active` it runs the final query (exact and
/// final, as QEMU's `migration_switchover_start`); its total is the new `remaining`. From
/// then on the destination runs the guest (never resumed by the library); `downtime` =
/// `now_ms` − the stop (measured again at `swo_complete` when it came out 0). Migration thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE` (not active, postcopy not
/// requested, a pause begun by `swo_switchover_begin`, or a `swo_cancel` / `swo_fail` came
/// while it ran), `SWO_ERR_UNSUPPORTED` (a `SWO_HANDLER_NO_POSTCOPY` handler), `SWO_ERR_IO`
/// (`vm_stop` failed: still `active`), or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_postcopy_start(s: *mut SwoSession, now_ms: u64) -> SwoStatus {
    session_call(s, |sess| sess.postcopy_start(now_ms))
}

/// `device` (after `swo_switchover_begin` gave `*proceed` true) or `postcopy-active` →
/// `completed`; freezes total time, downtime and the throughput. Migration thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE` (also when a `swo_cancel` /
/// `swo_fail` came while it ran), or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_complete(s: *mut SwoSession, now_ms: u64) -> SwoStatus {
    session_call(s, |sess| sess.complete(now_ms))
}

/// Cancels a live migration, except in `postcopy-active` (QEMU's `qmp_migrate_cancel`:
/// `SWO_ERR_BAD_STATE` "Postcopy migration in progress, cannot cancel."; `swo_fail` reports a
/// real failure there): → `cancelling`, then → `cancelled` at once when no
/// migration-thread call is in flight, else when that call returns (it fails with
/// `SWO_ERR_BAD_STATE`) or at the migration thread's next call. `total-time` freezes at
/// `now_ms` (of the first cancel). A guest the library stopped is resumed (not in postcopy).
/// Cancelling again while `cancelling` is fine. A cancel while paused in `pre-switchover`
/// leaves `error-desc` "Switchover is interrupted". A call in the wrong state changes nothing
/// (not even the session clock). Any thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_BAD_STATE` (no migration under way, or
/// `postcopy-active`), `SWO_ERR_IO` (`vm_resume` failed; the status did change, the guest is
/// still stopped), or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_cancel(s: *mut SwoSession, now_ms: u64) -> SwoStatus {
    session_call(s, |sess| sess.cancel(now_ms))
}

/// Fails a live migration (→ `failed`), keeping `error_desc` (copied; may be NULL) for
/// reports; `total-time` freezes at `now_ms`. A migration-thread call in flight fails with
/// `SWO_ERR_BAD_STATE`. A guest the library stopped is resumed (not in postcopy). A call in
/// the wrong state changes nothing. Any thread.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (`error_desc` not UTF-8),
/// `SWO_ERR_BAD_STATE` (no migration under way), `SWO_ERR_IO` (`vm_resume` failed; the status
/// did change, the guest is still stopped), or `SWO_ERR_REENTRANT`.
#[no_mangle]
pub unsafe extern "C" fn swo_fail(
    s: *mut SwoSession,
    now_ms: u64,
    error_desc: *const c_char,
) -> SwoStatus {
    session_call(s, |sess| {
        let desc = if error_desc.is_null() { None } else { Some(cstr(error_desc, "error_desc")?) };
        sess.fail(now_ms, desc)
    })
}

/// Records whether the destination acked the switchover (capability `switchover-ack`: while
/// the guest runs, a due switchover waits for the ack). Cleared by `swo_migration_start`.
/// Any thread, any status. Returns `SWO_OK` or `SWO_ERR_NULL_ARG`.
#[no_mangle]
pub unsafe extern "C" fn swo_set_switchover_acked(s: *mut SwoSession, acked: bool) -> SwoStatus {
    session_call(s, |sess| {
        sess.set_switchover_acked(acked);
        Ok(())
    })
}

/// Records whether the guest runs (default: running); only the `switchover-ack` rule uses it
/// (a guest the library stopped through `vm_stop` counts as not running either way).
/// Any thread, any status. Returns `SWO_OK` or `SWO_ERR_NULL_ARG`.
#[no_mangle]
pub unsafe extern "C" fn swo_set_vm_running(s: *mut SwoSession, running: bool) -> SwoStatus {
    session_call(s, |sess| {
        sess.set_vm_running(running);
        Ok(())
    })
}

/// The current migration status (`SWO_STATUS_*`); `SWO_STATUS_NONE` for a NULL session.
/// Lock-free, any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_get_status(s: *const SwoSession) -> u32 {
    call_or(SWO_STATUS_NONE, || {
        try_handle(s).map_or(SWO_STATUS_NONE, |sess| sess.status() as u32)
    })
}

/// Writes a consistent numeric snapshot at `now_ms` into `*out` (a versioned `SwoInfo`: set
/// its `struct_size`). Never calls a handler and never waits for one. Any thread, any time.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_INVALID_ARG` (`out->struct_size` below
/// the first versioned layout; nothing written).
#[no_mangle]
pub unsafe extern "C" fn swo_get_info(s: *mut SwoSession, now_ms: u64, out: *mut SwoInfo) -> SwoStatus {
    session_call(s, |sess| {
        let out = Out::check(out, "out")?;
        out.write(&SwoInfo::from(&sess.snapshot(now_ms)));
        Ok(())
    })
}

/// Writes the stall state and downtime advice at `now_ms` into `*out`: passes since progress,
/// best remaining, expected downtime and the recommended `downtime-limit` (expected ×
/// (1 + `downtime-headroom`%), rounded up, round-aware with a `guest-dirty-rate`: see
/// `SwoAdvice`; 0 unless stalled with an expected downtime above the limit). `*out` is a versioned `SwoAdvice`: set its `struct_size`. Never calls a
/// handler. Any thread, any time. Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or
/// `SWO_ERR_INVALID_ARG` (`out->struct_size` below the first versioned layout; nothing
/// written).
#[no_mangle]
pub unsafe extern "C" fn swo_get_advice(
    s: *mut SwoSession,
    now_ms: u64,
    out: *mut SwoAdvice,
) -> SwoStatus {
    session_call(s, |sess| {
        let out = Out::check(out, "out")?;
        out.write(&SwoAdvice::from(&sess.snapshot(now_ms)));
        Ok(())
    })
}

super::symbol_versions!("engine");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::PolicyAction;
    use std::ffi::CStr;

    /// The `SWO_POLICY_*` constants (the header's, through cbindgen) against the core's one
    /// table, both ways, and `swo_policy_action_name` from it.
    #[test]
    fn policy_action_numbers_and_names_come_from_the_one_table() {
        let consts = [
            (SWO_POLICY_NONE, "none"),
            (SWO_POLICY_CANCEL, "cancel"),
            (SWO_POLICY_FORCE_SWITCHOVER, "force-switchover"),
            (SWO_POLICY_POSTCOPY, "postcopy"),
        ];
        assert_eq!(SWO_POLICY_NONE, policy_action_number(None));
        let table: Vec<(u32, &str)> = std::iter::once((policy_action_number(None), "none"))
            .chain(PolicyAction::ALL.iter().map(|&a| (policy_action_number(Some(a)), a.name())))
            .collect();
        assert_eq!(table, consts);
        // SAFETY: `swo_policy_action_name` returns a static NUL-terminated string.
        let name = |n| unsafe { CStr::from_ptr(crate::ffi::status::swo_policy_action_name(n)) };
        for (n, text) in consts {
            assert_eq!(name(n).to_str(), Ok(text));
        }
        assert_eq!(name(4).to_str(), Ok("unknown"));
        assert_eq!(name(u32::MAX).to_str(), Ok("unknown"));
    }
}
