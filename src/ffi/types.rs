//! The C ABI's types and constants (DESIGN.md §The C ABI: names and layouts are fixed).
use crate::pending::Pending;
use crate::Session;
use std::ffi::c_void;
use std::sync::Arc;

/// A status code returned by every function that can fail (`SWO_OK` or an `SWO_ERR_*`).
pub type SwoStatus = u32;

/// Success.
pub const SWO_OK: SwoStatus = 0;
/// A required pointer argument was NULL.
pub const SWO_ERR_NULL_ARG: SwoStatus = 1;
/// An argument was invalid: unknown enum value or flag bits, bad string, bad struct size.
pub const SWO_ERR_INVALID_ARG: SwoStatus = 2;
/// A value was outside its allowed range.
pub const SWO_ERR_OUT_OF_RANGE: SwoStatus = 3;
/// A string could not be parsed.
pub const SWO_ERR_PARSE: SwoStatus = 4;
/// The call is not allowed in the current migration status.
pub const SWO_ERR_BAD_STATE: SwoStatus = 5;
/// No such object (handler id, parameter, capability).
pub const SWO_ERR_NOT_FOUND: SwoStatus = 6;
/// The object exists already (handler idstr + instance_id).
pub const SWO_ERR_EXISTS: SwoStatus = 7;
/// The caller's buffer is too small; `*out_len` says how long the text is.
pub const SWO_ERR_BUFFER_TOO_SMALL: SwoStatus = 8;
/// Called from a callback of the same session, where it would wait for itself.
pub const SWO_ERR_REENTRANT: SwoStatus = 9;
/// An operating-system call failed (ioctl, read).
pub const SWO_ERR_IO: SwoStatus = 10;
/// Not supported (e.g. postcopy with a VFIO device).
pub const SWO_ERR_UNSUPPORTED: SwoStatus = 11;
/// An internal error (a Rust panic) was caught; the session may be inconsistent.
pub const SWO_ERR_PANIC: SwoStatus = 12;

/// Handler flag: the exact query must run with the guest stopped.
pub const SWO_HANDLER_EXACT_NEEDS_STOPPED_VM: u32 = 1 << 0;
/// Handler flag: the device cannot take part in postcopy.
pub const SWO_HANDLER_NO_POSTCOPY: u32 = 1 << 1;

/// Migration status `none`.
pub const SWO_STATUS_NONE: u32 = 0;
/// Migration status `setup`.
pub const SWO_STATUS_SETUP: u32 = 1;
/// Migration status `active`.
pub const SWO_STATUS_ACTIVE: u32 = 2;
/// Migration status `pre-switchover`.
pub const SWO_STATUS_PRE_SWITCHOVER: u32 = 3;
/// Migration status `device`.
pub const SWO_STATUS_DEVICE: u32 = 4;
/// Migration status `postcopy-active`.
pub const SWO_STATUS_POSTCOPY_ACTIVE: u32 = 5;
/// Migration status `completed`.
pub const SWO_STATUS_COMPLETED: u32 = 6;
/// Migration status `cancelling`.
pub const SWO_STATUS_CANCELLING: u32 = 7;
/// Migration status `cancelled`.
pub const SWO_STATUS_CANCELLED: u32 = 8;
/// Migration status `failed`.
pub const SWO_STATUS_FAILED: u32 = 9;

/// Step action: keep iterating (send more precopy data).
pub const SWO_ACTION_ITERATE: u32 = 0;
/// Step action: switch over now (call `swo_switchover_begin`).
pub const SWO_ACTION_SWITCHOVER: u32 = 1;
/// Step action: start postcopy now (call `swo_postcopy_start`).
pub const SWO_ACTION_START_POSTCOPY: u32 = 2;
/// Step action: postcopy has drained; complete the migration.
pub const SWO_ACTION_COMPLETE: u32 = 3;
/// Step action: wait (switchover-ack or pause-before-switchover holds the switchover).
pub const SWO_ACTION_WAIT: u32 = 4;

/// Step flag: an exact query ran in this step.
pub const SWO_STEP_EXACT: u32 = 1 << 0;
/// Step flag: the library stopped the guest and left it stopped for the switchover.
pub const SWO_STEP_VM_STOPPED: u32 = 1 << 1;

/// Channel: the main migration stream.
pub const SWO_CHANNEL_MAIN: u32 = 0;
/// Channel: a multifd channel.
pub const SWO_CHANNEL_MULTIFD: u32 = 1;

/// Pending bytes, by when they can move. All figures are bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwoPending {
    /// Can move while the guest runs; must move before the destination starts.
    pub precopy_bytes: u64,
    /// Can only move with the source stopped (switchover downtime).
    pub stopcopy_bytes: u64,
    /// May move after the destination starts.
    pub postcopy_bytes: u64,
    /// Set by the library: saturating sum of the three.
    pub total_bytes: u64,
}

impl From<Pending> for SwoPending {
    fn from(p: Pending) -> SwoPending {
        SwoPending {
            precopy_bytes: p.precopy,
            stopcopy_bytes: p.stopcopy,
            postcopy_bytes: p.postcopy,
            total_bytes: p.total(),
        }
    }
}

impl From<SwoPending> for Pending {
    /// `total_bytes` is ignored: the library computes it.
    fn from(p: SwoPending) -> Pending {
        Pending { precopy: p.precopy_bytes, stopcopy: p.stopcopy_bytes, postcopy: p.postcopy_bytes }
    }
}

/// A device's pending-data callback. It ADDS its bytes into `*pending` (which the library
/// zeroed). `exact` asks for a synchronised figure (dirty-bitmap sync, size ioctls); `final`
/// marks the last query at switchover, with the guest stopped. Called from whichever thread
/// queries, possibly several at once, never after `swo_unregister_handler` returned.
pub type SwoQueryPendingFn =
    Option<unsafe extern "C" fn(opaque: *mut c_void, pending: *mut SwoPending, exact: bool, r#final: bool)>;

/// Optional activity check; an inactive handler is skipped by every query.
pub type SwoIsActiveFn = Option<unsafe extern "C" fn(opaque: *mut c_void) -> bool>;

/// A handler's operations. Copied at registration.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwoHandlerOps {
    /// `sizeof(SwoHandlerOps)`: lets the struct grow.
    pub struct_size: u32,
    /// `SWO_HANDLER_*` bits; unknown bits are refused.
    pub flags: u32,
    /// Required; ADDS into `*pending`.
    pub save_query_pending: SwoQueryPendingFn,
    /// Optional; NULL = always active.
    pub is_active: SwoIsActiveFn,
}

/// The VMM's operations for the library. Copied by `swo_session_set_vmm_ops`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwoVmmOps {
    /// `sizeof(SwoVmmOps)`.
    pub struct_size: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Stops the guest; returns 0 once it is stopped. Used for exact sizing and switchover.
    pub vm_stop: Option<unsafe extern "C" fn(opaque: *mut c_void) -> std::ffi::c_int>,
    /// Resumes the guest; returns 0 on success.
    pub vm_resume: Option<unsafe extern "C" fn(opaque: *mut c_void) -> std::ffi::c_int>,
    /// Receives a QMP-style event; `event_json` is valid only during the call.
    pub event: Option<unsafe extern "C" fn(opaque: *mut c_void, event_json: *const std::ffi::c_char)>,
}

/// The result of one `swo_iteration_step`.
///
/// Versioned: set `struct_size` to `sizeof(SwoStep)` before the call
/// (`SwoStep step = { .struct_size = sizeof step };`). The library refuses a size below 64
/// (the 0.2.0 layout) with `SWO_ERR_INVALID_ARG` and writes nothing; otherwise it writes the
/// fields that lie wholly within `struct_size` (whole 8-byte slots), never a byte past it, and
/// sets `struct_size` to the bytes it wrote. Fields are only ever appended, so a program built
/// against an older header gets its own layout and a newer one keeps its tail as it set it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwoStep {
    /// Set by the caller to `sizeof(SwoStep)`; set by the library to the bytes it wrote.
    pub struct_size: u32,
    /// `SWO_ACTION_*`.
    pub action: u32,
    /// `SWO_STEP_*` bits.
    pub flags: u32,
    /// Written as 0.
    pub reserved: u32,
    /// The figures the decision used.
    pub pending: SwoPending,
    /// The threshold the decision compared against, in bytes.
    pub threshold_bytes: u64,
    /// `dirty-sync-count` after this step.
    pub pass: u64,
}
super::versioned::out_struct!(SwoStep, 64);

/// An opaque migration session. Create with `swo_session_new`, free with `swo_session_free`.
pub struct SwoSession {
    pub(crate) inner: Arc<Session>,
}
