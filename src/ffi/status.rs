//! Version, the names of every enum the library returns (`swo_*_name`) and the per-thread
//! error message.
use super::*;
use std::ffi::{c_char, CStr};

/// The library version, e.g. `"0.2.0"`: a static NUL-terminated string, never freed.
/// Any thread.
#[no_mangle]
pub extern "C" fn swo_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status code, e.g. `"SWO_ERR_NULL_ARG"`, or `"SWO_ERR_UNKNOWN"` for a number
/// that is no code. A static string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_status_name(code: SwoStatus) -> *const c_char {
    Code::from_u32(code).map_or(c"SWO_ERR_UNKNOWN", Code::c_name).as_ptr()
}

/// Copies the calling thread's message for its last failed call into `buf` (`""` when no
/// call failed yet). Messages use QEMU's wording where QEMU has one (`Invalid size 10MB`).
/// This call never changes the stored message, so a short buffer can be retried.
/// `buf` may be NULL with `len` 0 to ask for the length; `out_len` is required.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_BUFFER_TOO_SMALL`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> SwoStatus {
    let message = last_error();
    // Not through `call`: failing here must not overwrite the message being read.
    match catch_unwind(AssertUnwindSafe(|| write_str(&message, buf, len, out_len))) {
        Ok(Ok(())) => SWO_OK,
        Ok(Err(e)) => e.code as SwoStatus,
        Err(_) => SWO_ERR_PANIC,
    }
}

use crate::params::PolicyAction;

/// `SwoInfo.policy_action` for the action taken: 0 (`SWO_POLICY_NONE`) for none, else the
/// core's table (`PolicyAction`, numbered from 0) plus one.
pub(crate) fn policy_action_number(taken: Option<PolicyAction>) -> u32 {
    taken.map_or(0, |a| a as u32 + 1)
}

/// The reverse of [`policy_action_number`]: `Some(None)` for 0, `None` for a number that is
/// no policy action.
fn policy_action_from_number(number: u32) -> Option<Option<PolicyAction>> {
    match number.checked_sub(1) {
        None => Some(None),
        Some(n) => PolicyAction::from_u32(n).map(Some),
    }
}

/// The `"unknown"` every `swo_*_name` gives for a number it does not know.
const UNKNOWN: &CStr = c"unknown";

/// The name of a migration status (`SWO_STATUS_*`), QEMU's `MigrationStatus` spelling as in
/// `query-migrate` and `MIGRATION` events: `"none"`, `"setup"`, `"active"`,
/// `"pre-switchover"`, `"device"`, `"postcopy-active"`, `"completed"`, `"cancelling"`,
/// `"cancelled"`, `"failed"`; `"unknown"` for any other number. A static string, never freed.
/// Any thread.
#[no_mangle]
pub extern "C" fn swo_migration_status_name(status: u32) -> *const c_char {
    use crate::state::MigrationStatus;
    MigrationStatus::from_u32(status).map_or(UNKNOWN, MigrationStatus::c_name).as_ptr()
}

/// The name of a step action (`SWO_ACTION_*`): `"iterate"`, `"switchover"`,
/// `"start-postcopy"`, `"complete"`, `"wait"`; `"unknown"` for any other number. A static
/// string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_action_name(action: u32) -> *const c_char {
    use crate::engine::Action;
    Action::from_u32(action).map_or(UNKNOWN, Action::c_name).as_ptr()
}

/// The name of a reason (`SWO_REASON_*`, in `SwoStep.reason` and `SwoInfo.reason`):
/// `"none"`, `"above-threshold"`, `"exact-above-threshold"`, `"waiting-for-ack"`,
/// `"paused-before-switchover"`, `"stalled"`, `"deadline-reached"`, `"stall-action"`,
/// `"postcopy-ready"`, `"switchover-ready"`, `"switching-over"`, `"postcopy-active"`,
/// `"postcopy-drained"`, `"switched-over"`, `"cancelled"`, `"failed"`; `"unknown"` for any
/// other number. A static string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_reason_name(reason: u32) -> *const c_char {
    use crate::engine::Reason;
    Reason::from_u32(reason).map_or(UNKNOWN, Reason::c_name).as_ptr()
}

/// The name of a policy action (`SWO_POLICY_*`, in `SwoInfo.policy_action`): `"none"`,
/// `"cancel"`, `"force-switchover"`, `"postcopy"` (as `deadline-action` spells them);
/// `"unknown"` for any other number. A static string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_policy_action_name(action: u32) -> *const c_char {
    policy_action_from_number(action)
        .map_or(UNKNOWN, |taken| taken.map_or(c"none", PolicyAction::c_name))
        .as_ptr()
}

/// The name of a VFIO uAPI device state (`SWO_VFIO_STATE_*`), as QEMU's `mig_state_to_str`
/// (hw/vfio/migration.c) spells it: `"ERROR"`, `"STOP"`, `"RUNNING"`, `"STOP_COPY"`,
/// `"RESUMING"`, `"RUNNING_P2P"`, `"PRE_COPY"`, `"PRE_COPY_P2P"`; `"unknown"` for any other
/// number. A static string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_vfio_state_name(state: u32) -> *const c_char {
    use crate::vfio::DeviceState;
    DeviceState::from_u32(state).map_or(UNKNOWN, DeviceState::c_name).as_ptr()
}

super::symbol_versions!("status");
