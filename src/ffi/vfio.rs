//! The built-in VFIO device model.
use super::*;
use super::versioned::Out;
use crate::vfio::{PrecopyFailure, SizeReader, VfioDevice, VfioSizes};
use std::ffi::{c_char, c_int, c_void};

/// uAPI device state `VFIO_DEVICE_STATE_ERROR`.
pub const SWO_VFIO_STATE_ERROR: u32 = 0;
/// uAPI device state `VFIO_DEVICE_STATE_STOP`.
pub const SWO_VFIO_STATE_STOP: u32 = 1;
/// uAPI device state `VFIO_DEVICE_STATE_RUNNING` (a new device starts here).
pub const SWO_VFIO_STATE_RUNNING: u32 = 2;
/// uAPI device state `VFIO_DEVICE_STATE_STOP_COPY`.
pub const SWO_VFIO_STATE_STOP_COPY: u32 = 3;
/// uAPI device state `VFIO_DEVICE_STATE_RESUMING`.
pub const SWO_VFIO_STATE_RESUMING: u32 = 4;
/// uAPI device state `VFIO_DEVICE_STATE_RUNNING_P2P`.
pub const SWO_VFIO_STATE_RUNNING_P2P: u32 = 5;
/// uAPI device state `VFIO_DEVICE_STATE_PRE_COPY`: precopy info is read only here and in
/// PRE_COPY_P2P.
pub const SWO_VFIO_STATE_PRE_COPY: u32 = 6;
/// uAPI device state `VFIO_DEVICE_STATE_PRE_COPY_P2P`.
pub const SWO_VFIO_STATE_PRE_COPY_P2P: u32 = 7;

/// The VMM's own size readers for a VFIO device. Copied by `swo_vfio_new`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwoVfioOps {
    /// `sizeof(SwoVfioOps)`: lets the struct grow.
    pub struct_size: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Required. Writes the device's stop-copy estimate (`stop_copy_length` of
    /// `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`) and returns 0, or returns -errno.
    pub query_stop_copy_size:
        Option<unsafe extern "C" fn(opaque: *mut c_void, stop_copy_length: *mut u64) -> c_int>,
    /// Optional (NULL: no precopy info). Writes `initial_bytes` and `dirty_bytes` of
    /// `VFIO_MIG_GET_PRECOPY_INFO` and returns 0, or returns -errno. Called only while the
    /// device is in PRE_COPY / PRE_COPY_P2P.
    pub query_precopy_info: Option<
        unsafe extern "C" fn(opaque: *mut c_void, initial_bytes: *mut u64, dirty_bytes: *mut u64) -> c_int,
    >,
}

/// A VFIO device's cached sizes, all in bytes.
///
/// Versioned: set `struct_size` to `sizeof(SwoVfioSizes)` before the call
/// (`SwoVfioSizes z = { .struct_size = sizeof z };`). The library refuses a size below 40
/// (the 0.2.0 layout) with `SWO_ERR_INVALID_ARG` and writes nothing; otherwise it writes the
/// fields that lie wholly within `struct_size` (whole 8-byte slots), never a byte past it, and
/// sets `struct_size` to the bytes it wrote. Fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwoVfioSizes {
    /// Set by the caller to `sizeof(SwoVfioSizes)`; set by the library to the bytes it wrote.
    pub struct_size: u32,
    /// Written as 0.
    pub reserved: u32,
    /// Cached device total for stop-copy; includes the precopy data.
    pub stopcopy_size: u64,
    /// Cached precopy `initial_bytes`.
    pub precopy_init_size: u64,
    /// Cached precopy `dirty_bytes`.
    pub precopy_dirty_size: u64,
    /// Device bytes read (`swo_vfio_record_read`) since `swo_migration_start`.
    pub transferred: u64,
}
super::versioned::out_struct!(SwoVfioSizes, 40);

impl From<VfioSizes> for SwoVfioSizes {
    fn from(s: VfioSizes) -> SwoVfioSizes {
        SwoVfioSizes {
            struct_size: std::mem::size_of::<SwoVfioSizes>() as u32,
            reserved: 0,
            stopcopy_size: s.stopcopy_size,
            precopy_init_size: s.precopy_init_size,
            precopy_dirty_size: s.precopy_dirty_size,
            transferred: s.transferred,
        }
    }
}

/// An opaque VFIO device model. Create with `swo_vfio_new` or `swo_vfio_new_fd`, free with
/// `swo_vfio_free`.
pub struct SwoVfio {
    pub(crate) inner: VfioDevice,
}

type StopCopyFn = unsafe extern "C" fn(*mut c_void, *mut u64) -> c_int;
type PrecopyFn = unsafe extern "C" fn(*mut c_void, *mut u64, *mut u64) -> c_int;

struct CReader {
    stop_copy: StopCopyFn,
    precopy: Option<PrecopyFn>,
    opaque: *mut c_void,
}

// SAFETY: the contract of `swo_vfio_new` makes the readers callable from any thread with
// this `opaque`, concurrently.
unsafe impl Send for CReader {}
// SAFETY: the same contract allows concurrent calls; the library never touches `opaque`
// itself.
unsafe impl Sync for CReader {}

/// A reader's return: 0 is success; -errno an error; anything else garbage (EIO).
fn errno_of(rc: c_int) -> Option<i32> {
    match rc {
        0 => None,
        rc => Some(rc.checked_neg().filter(|e| *e > 0).unwrap_or(libc::EIO)),
    }
}

impl SizeReader for CReader {
    fn stop_copy_size(&self) -> std::result::Result<u64, i32> {
        let mut len = 0u64;
        // SAFETY: the VMM's reader with its opaque and a live u64 to write.
        let rc = unsafe { (self.stop_copy)(self.opaque, &mut len) };
        errno_of(rc).map_or(Ok(len), Err)
    }

    fn precopy_info(&self) -> std::result::Result<(u64, u64), PrecopyFailure> {
        let f = self.precopy.ok_or(PrecopyFailure::Unavailable)?;
        let (mut init, mut dirty) = (0u64, 0u64);
        // SAFETY: the VMM's reader with its opaque and two live u64s to write.
        let rc = unsafe { f(self.opaque, &mut init, &mut dirty) };
        errno_of(rc).map_or(Ok((init, dirty)), |e| Err(PrecopyFailure::Errno(e)))
    }
}

super::ptr::ops_struct!(SwoVfioOps, reserved);

/// A call on a device delivers its session's events when it ends (see `handle_call`).
impl Handle for SwoVfio {
    type Target = VfioDevice;
    const ARG: &'static str = "vfio";
    fn target(&self) -> &VfioDevice {
        &self.inner
    }
    fn events_of(device: &VfioDevice) -> Option<&Arc<Session>> {
        Some(device.session())
    }
}

/// Creates a VFIO device model named `name` whose sizes come from the VMM's readers in `ops`,
/// registers it as the session's pending-data handler `name` (instance 0, flag
/// `SWO_HANDLER_NO_POSTCOPY`), reads the stop-copy size once, and writes the handle into
/// `*out`. `name` and `ops` are copied. The readers are called with `opaque`, from whichever
/// thread queries or refreshes, possibly several at once, with no library lock held, until
/// `swo_vfio_free` returns. The device starts in `SWO_VFIO_STATE_RUNNING`; it keeps the
/// session alive until it is freed. A failing first read gives a `DEVICE_SIZE_WARNING`
/// event, not an error.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (empty or non-UTF-8 `name`,
/// `struct_size` too small, `reserved` not 0, NULL `query_stop_copy_size`), `SWO_ERR_EXISTS`
/// (a handler of that name, instance 0, is registered), or `SWO_ERR_REENTRANT` from a
/// callback of this session. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_new(
    s: *mut SwoSession,
    name: *const c_char,
    ops: *const SwoVfioOps,
    opaque: *mut c_void,
    out: *mut *mut SwoVfio,
) -> SwoStatus {
    session_call(s, |sess| {
        let name = cstr(name, "name")?;
        let ops = arg(ops, "ops")?;
        let out = super::out(out, "out")?;
        check_ops(ops)?;
        let stop_copy = ops
            .query_stop_copy_size
            .ok_or_else(|| Error::invalid_arg("SwoVfioOps.query_stop_copy_size is NULL"))?;
        let reader = CReader { stop_copy, precopy: ops.query_precopy_info, opaque };
        *out = into_handle(SwoVfio { inner: VfioDevice::new(sess, name, Box::new(reader))? });
        Ok(())
    })
}

/// Creates a VFIO device model named `name` whose sizes the library reads itself: the
/// `VFIO_DEVICE_FEATURE` ioctl (`GET | MIG_DATA_SIZE`) on `device_fd`, and
/// `VFIO_MIG_GET_PRECOPY_INFO` on the data fd once `swo_vfio_set_data_fd` gave one. The fds
/// stay the caller's (never closed by the library); keep them open until `swo_vfio_free`.
/// Otherwise as `swo_vfio_new` (registration, first read, `*out`).
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (empty or non-UTF-8 `name`,
/// negative `device_fd`), `SWO_ERR_EXISTS`, or `SWO_ERR_REENTRANT`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_new_fd(
    s: *mut SwoSession,
    name: *const c_char,
    device_fd: c_int,
    out: *mut *mut SwoVfio,
) -> SwoStatus {
    session_call(s, |sess| {
        let name = cstr(name, "name")?;
        let out = super::out(out, "out")?;
        *out = into_handle(SwoVfio { inner: VfioDevice::with_fd(sess, name, device_fd)? });
        Ok(())
    })
}

/// Sets the migration data fd (from `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE`) that
/// `VFIO_MIG_GET_PRECOPY_INFO` is issued on; -1 unsets it. Without one, a device in
/// PRE_COPY* reports precopy 0 with a `precopy-info-unavailable` warning. The fd stays the
/// caller's. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (fd below -1), or
/// `SWO_ERR_UNSUPPORTED` (a device created with `swo_vfio_new`). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_set_data_fd(v: *mut SwoVfio, data_fd: c_int) -> SwoStatus {
    handle_call(v, |d| d.set_data_fd(data_fd))
}

/// Tells the library the device's uAPI migration state (`SWO_VFIO_STATE_*`, the numbers of
/// `enum vfio_device_mig_state`, 0..=7). Precopy info is re-read only in PRE_COPY and
/// PRE_COPY_P2P. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, or `SWO_ERR_INVALID_ARG` (above 7).
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_set_state(v: *mut SwoVfio, vfio_device_mig_state: u32) -> SwoStatus {
    handle_call(v, |d| d.set_state(vfio_device_mig_state))
}

/// Re-reads the sizes now, as an exact non-final query does: the stop-copy size always, the
/// precopy info only in PRE_COPY*. The cache holds the documented figures even on failure:
/// sizes above INT64_MAX are clamped to INT64_MAX (`SWO_ERR_OUT_OF_RANGE`); a failed
/// stop-copy read gives 100 GiB (107374182400) and a failed precopy read 0 (`SWO_ERR_IO`);
/// no data fd or precopy reader in PRE_COPY* gives precopy 0 (`SWO_ERR_BAD_STATE`). Each
/// problem also raises a `DEVICE_SIZE_WARNING` event, once per device and kind. With several
/// problems, the first in read order is returned. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, or
/// one of the codes above. Any thread; the readers run on the calling thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_refresh(v: *mut SwoVfio) -> SwoStatus {
    handle_call(v, |d| d.refresh())
}

/// Records that the VMM read `bytes` of migration data from the device's data fd. The cache
/// shrinks: stop-copy size by `bytes` (floor 0), then precopy initial and dirty bytes in that
/// order by what they can take; a read of 0 bytes (end of precopy data for now) zeroes
/// initial and dirty. A read larger than the cached stop-copy size floors at 0 with a
/// `read-exceeds-cache` warning. The bytes count in the device's `transferred` and the
/// session's `vfio.transferred`. They are NOT counted as sent on the wire: the VMM reports
/// the bytes it sends with `swo_record_transferred` as usual, so VFIO data also counts in
/// `ram.transferred`, as in QEMU. Returns `SWO_OK` or `SWO_ERR_NULL_ARG`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_record_read(v: *mut SwoVfio, bytes: u64) -> SwoStatus {
    handle_call(v, |d| {
        d.record_read(bytes);
        Ok(())
    })
}

/// Writes the device's cached sizes and its bytes read since `swo_migration_start` into
/// `*out`, a versioned `SwoVfioSizes` (set its `struct_size`); no device access. Returns
/// `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_INVALID_ARG` (`out->struct_size` below the first
/// versioned layout; nothing written). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_get_sizes(v: *mut SwoVfio, out: *mut SwoVfioSizes) -> SwoStatus {
    handle_call(v, |d| {
        Out::check(out, "out")?.write(&SwoVfioSizes::from(d.sizes()));
        Ok(())
    })
}

/// Unregisters the device's handler, waiting until none of its callbacks runs on any thread
/// (so the readers' `opaque` and the fds may be released right after), then frees the
/// device. NULL is a no-op. No other call on `v` may run or start. Any thread, except from a
/// callback of the same session, where it cannot wait (another thread may be in a reader
/// right then): there it frees nothing, the device stays registered, allocated and working
/// (keep `opaque` and the fds), and the thread's last error message says why; a later call
/// from outside a callback frees it.
#[no_mangle]
pub unsafe extern "C" fn swo_vfio_free(v: *mut SwoVfio) {
    call_or((), || {
        let Some(device) = try_handle(v) else { return };
        let session = device.session().clone();
        if let Err(e) = device.close() {
            // Still registered: the handle must stay valid for a later free.
            set_last_error(&e.message);
            return;
        }
        // Unregistered: no callback can reach the device any more.
        drop(take_handle(v));
        if !reentrancy::inside(session.id()) {
            session.flush_events();
        }
    })
}

super::symbol_versions!("vfio");
