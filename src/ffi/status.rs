//! Version, the names of every enum the library returns (`swo_*_name`) and the per-thread
//! error message.
use super::*;
use std::ffi::c_char;

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
    let name: &'static str = match Code::from_u32(code) {
        Some(c) => match c {
            Code::Ok => "SWO_OK\0",
            Code::NullArg => "SWO_ERR_NULL_ARG\0",
            Code::InvalidArg => "SWO_ERR_INVALID_ARG\0",
            Code::OutOfRange => "SWO_ERR_OUT_OF_RANGE\0",
            Code::Parse => "SWO_ERR_PARSE\0",
            Code::BadState => "SWO_ERR_BAD_STATE\0",
            Code::NotFound => "SWO_ERR_NOT_FOUND\0",
            Code::Exists => "SWO_ERR_EXISTS\0",
            Code::BufferTooSmall => "SWO_ERR_BUFFER_TOO_SMALL\0",
            Code::Reentrant => "SWO_ERR_REENTRANT\0",
            Code::Io => "SWO_ERR_IO\0",
            Code::Unsupported => "SWO_ERR_UNSUPPORTED\0",
            Code::Panic => "SWO_ERR_PANIC\0",
        },
        None => "SWO_ERR_UNKNOWN\0",
    };
    debug_assert!(Code::from_u32(code).is_none_or(|c| name.trim_end_matches('\0') == c.name()));
    name.as_ptr().cast()
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
    // SAFETY: the caller's buffer contract, documented above.
    match catch_unwind(AssertUnwindSafe(|| unsafe { write_str(&message, buf, len, out_len) })) {
        Ok(Ok(())) => SWO_OK,
        Ok(Err(e)) => e.code as SwoStatus,
        Err(_) => SWO_ERR_PANIC,
    }
}

/// The `"unknown"` every `swo_*_name` gives for a number it does not know.
const UNKNOWN: &str = "unknown\0";

/// The name of a migration status (`SWO_STATUS_*`), QEMU's `MigrationStatus` spelling as in
/// `query-migrate` and `MIGRATION` events: `"none"`, `"setup"`, `"active"`,
/// `"pre-switchover"`, `"device"`, `"postcopy-active"`, `"completed"`, `"cancelling"`,
/// `"cancelled"`, `"failed"`; `"unknown"` for any other number. A static string, never freed.
/// Any thread.
#[no_mangle]
pub extern "C" fn swo_migration_status_name(status: u32) -> *const c_char {
    let name = match status {
        SWO_STATUS_NONE => "none\0",
        SWO_STATUS_SETUP => "setup\0",
        SWO_STATUS_ACTIVE => "active\0",
        SWO_STATUS_PRE_SWITCHOVER => "pre-switchover\0",
        SWO_STATUS_DEVICE => "device\0",
        SWO_STATUS_POSTCOPY_ACTIVE => "postcopy-active\0",
        SWO_STATUS_COMPLETED => "completed\0",
        SWO_STATUS_CANCELLING => "cancelling\0",
        SWO_STATUS_CANCELLED => "cancelled\0",
        SWO_STATUS_FAILED => "failed\0",
        _ => UNKNOWN,
    };
    debug_assert!(crate::state::MigrationStatus::from_u32(status)
        .is_none_or(|s| name.trim_end_matches('\0') == s.name()));
    name.as_ptr().cast()
}

/// The name of a step action (`SWO_ACTION_*`): `"iterate"`, `"switchover"`,
/// `"start-postcopy"`, `"complete"`, `"wait"`; `"unknown"` for any other number. A static
/// string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_action_name(action: u32) -> *const c_char {
    let name = match action {
        SWO_ACTION_ITERATE => "iterate\0",
        SWO_ACTION_SWITCHOVER => "switchover\0",
        SWO_ACTION_START_POSTCOPY => "start-postcopy\0",
        SWO_ACTION_COMPLETE => "complete\0",
        SWO_ACTION_WAIT => "wait\0",
        _ => UNKNOWN,
    };
    name.as_ptr().cast()
}

/// The name of a VFIO uAPI device state (`SWO_VFIO_STATE_*`), as QEMU's `mig_state_to_str`
/// (hw/vfio/migration.c) spells it: `"ERROR"`, `"STOP"`, `"RUNNING"`, `"STOP_COPY"`,
/// `"RESUMING"`, `"RUNNING_P2P"`, `"PRE_COPY"`, `"PRE_COPY_P2P"`; `"unknown"` for any other
/// number. A static string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_vfio_state_name(state: u32) -> *const c_char {
    use super::vfio::*;
    let name = match state {
        SWO_VFIO_STATE_ERROR => "ERROR\0",
        SWO_VFIO_STATE_STOP => "STOP\0",
        SWO_VFIO_STATE_RUNNING => "RUNNING\0",
        SWO_VFIO_STATE_STOP_COPY => "STOP_COPY\0",
        SWO_VFIO_STATE_RESUMING => "RESUMING\0",
        SWO_VFIO_STATE_RUNNING_P2P => "RUNNING_P2P\0",
        SWO_VFIO_STATE_PRE_COPY => "PRE_COPY\0",
        SWO_VFIO_STATE_PRE_COPY_P2P => "PRE_COPY_P2P\0",
        _ => UNKNOWN,
    };
    name.as_ptr().cast()
}

super::symbol_versions!("status");
