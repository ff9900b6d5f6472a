//! The built-in VFIO device model (docs/qemu-model.md §VFIO).
//!
//! One [`VfioDevice`] per assigned device. It keeps QEMU's per-device cache (`stopcopy_size`,
//! `precopy_init_size`, `precopy_dirty_size`), registers itself as a pending-data handler
//! (flag [`HandlerFlags::NO_POSTCOPY`]) and answers `save_query_pending` from that cache:
//! - fast query: the cache, no device access;
//! - exact, non-final query: re-read the stop-copy size, and the precopy info when the device
//!   is in PRE_COPY / PRE_COPY_P2P, then the cache;
//! - final query (switchover, guest stopped): the cache, no device access.
//!
//! Reporting: `precopy = init + dirty`, `stopcopy = max(stopcopy_size - precopy, 0)`.
//!
//! Sizes come either from the VMM's own readers ([`SizeReader`]) or from the kernel through
//! the two uAPI ioctls ([`FdReader`]: `VFIO_DEVICE_FEATURE` with `GET | MIG_DATA_SIZE` on the
//! device fd, `VFIO_MIG_GET_PRECOPY_INFO` on the migration data fd). The uAPI layouts and
//! request numbers are written out below, because the build machine's kernel headers predate
//! them, and checked at compile time.
//!
//! # Garbage and faults
//! Drivers report anything. Each problem below gives the documented figure, a
//! `DEVICE_SIZE_WARNING` event (once per device and [`WarningKind`]) and no wrap-around:
//!
//! | problem | result | kind | `refresh` |
//! |---|---|---|---|
//! | stop-copy size above `INT64_MAX` | clamped to `INT64_MAX` | `stop-copy-overflow` | `OUT_OF_RANGE` |
//! | precopy init / dirty above `INT64_MAX` | clamped to `INT64_MAX` | `precopy-init-overflow` / `precopy-dirty-overflow` | `OUT_OF_RANGE` |
//! | stop-copy read fails | `stopcopy_size` = 100 GiB (107374182400) | `stop-copy-query-failed` | `IO` |
//! | precopy read fails | init = dirty = 0 | `precopy-query-failed` | `IO` |
//! | precopy info unavailable (no data fd, no reader) in PRE_COPY* | init = dirty = 0 | `precopy-info-unavailable` | `BAD_STATE` |
//! | precopy (init + dirty) larger than stop-copy size | stop-copy bucket 0 | `precopy-exceeds-stop-copy` | `OK` |
//! | a read larger than the cached stop-copy size | every figure floors at 0 | `read-exceeds-cache` | — |
//! | `initial_bytes` grows between reads (the uAPI says it only shrinks) | the new figure is kept (never under-count) | `precopy-init-grew` | `OK` |
//!
//! When several problems occur in one re-read, `refresh` returns the first in read order
//! (stop-copy size, then precopy info); every one of them still gets its warning.
use crate::error::{Code, Error, Result};
use crate::pending::{HandlerFlags, Pending, PendingSource};
use crate::reentrancy::{self, CallbackScope};
use crate::session::Session;
use serde_json::json;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use crate::locks::lock;

/// `stopcopy_size` when the stop-copy size cannot be read: QEMU's `VFIO_MIG_STOP_COPY_SIZE`,
/// big enough that the downtime limit is never violated by an unknown device.
pub const STOP_COPY_FALLBACK: u64 = 100 << 30;

/// The largest size the model keeps; larger device figures are clamped to it.
pub const SIZE_MAX: u64 = i64::MAX as u64;

/// The name of the warning event.
pub const WARNING_EVENT: &str = "DEVICE_SIZE_WARNING";

crate::abi_enum::abi_enum! {
    /// uAPI migration device states (`enum vfio_device_mig_state`; `SWO_VFIO_STATE_*`), named
    /// as QEMU's `mig_state_to_str` (hw/vfio/migration.c) spells them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DeviceState {
        Error = 0 => "ERROR",
        Stop = 1 => "STOP",
        Running = 2 => "RUNNING",
        StopCopy = 3 => "STOP_COPY",
        Resuming = 4 => "RESUMING",
        RunningP2p = 5 => "RUNNING_P2P",
        PreCopy = 6 => "PRE_COPY",
        PreCopyP2p = 7 => "PRE_COPY_P2P",
    }
}

impl DeviceState {
    /// PRE_COPY or PRE_COPY_P2P: the only states where precopy info may be read.
    pub fn is_precopy(self) -> bool {
        matches!(self, DeviceState::PreCopy | DeviceState::PreCopyP2p)
    }
}

/// The kinds of device garbage, each warned about once per device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningKind {
    StopCopyOverflow,
    PrecopyInitOverflow,
    PrecopyDirtyOverflow,
    StopCopyQueryFailed,
    PrecopyQueryFailed,
    PrecopyInfoUnavailable,
    PrecopyExceedsStopCopy,
    ReadExceedsCache,
    PrecopyInitGrew,
}

impl WarningKind {
    /// The `kind` member of the warning event.
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::StopCopyOverflow => "stop-copy-overflow",
            WarningKind::PrecopyInitOverflow => "precopy-init-overflow",
            WarningKind::PrecopyDirtyOverflow => "precopy-dirty-overflow",
            WarningKind::StopCopyQueryFailed => "stop-copy-query-failed",
            WarningKind::PrecopyQueryFailed => "precopy-query-failed",
            WarningKind::PrecopyInfoUnavailable => "precopy-info-unavailable",
            WarningKind::PrecopyExceedsStopCopy => "precopy-exceeds-stop-copy",
            WarningKind::ReadExceedsCache => "read-exceeds-cache",
            WarningKind::PrecopyInitGrew => "precopy-init-grew",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Why a precopy-info read gave nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecopyFailure {
    /// The read failed with this errno (positive).
    Errno(i32),
    /// There is nothing to read from: no data fd set, or no precopy reader.
    Unavailable,
}

/// Where a device's sizes come from. Called with no library lock held, from whichever thread
/// queries or refreshes, possibly from several at once.
pub trait SizeReader: Send + Sync {
    /// The device's estimate of everything stop-copy would send (`stop_copy_length`), or a
    /// positive errno.
    fn stop_copy_size(&self) -> std::result::Result<u64, i32>;
    /// `(initial_bytes, dirty_bytes)`; only called in PRE_COPY / PRE_COPY_P2P.
    fn precopy_info(&self) -> std::result::Result<(u64, u64), PrecopyFailure>;
    /// Sets the migration data fd (-1 unsets it). Only fd-backed readers have one.
    fn set_data_fd(&self, _fd: RawFd) -> Result<()> {
        Err(Error::unsupported(
            "this VFIO device reads its sizes through the VMM's SwoVfioOps; it has no data fd",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel uAPI (include/uapi/linux/vfio.h), written out.

/// `_IOC_NONE` and the direction shift of `_IOC` differ on a few architectures.
#[cfg(any(target_arch = "powerpc", target_arch = "powerpc64", target_arch = "mips",
          target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64"))]
const IOC_NONE_BITS: u32 = 1 << 29;
#[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64", target_arch = "mips",
              target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64")))]
const IOC_NONE_BITS: u32 = 0;

/// `_IO(type, nr)`: no direction, no size.
const fn io(ty: u8, nr: u8) -> u32 {
    IOC_NONE_BITS | ((ty as u32) << 8) | nr as u32
}

/// `VFIO_TYPE`.
const VFIO_TYPE: u8 = b';';
/// `VFIO_BASE`.
const VFIO_BASE: u8 = 100;
/// `VFIO_DEVICE_FEATURE` = `_IO(VFIO_TYPE, VFIO_BASE + 17)`.
pub const VFIO_DEVICE_FEATURE: u32 = io(VFIO_TYPE, VFIO_BASE + 17);
/// `VFIO_MIG_GET_PRECOPY_INFO` = `_IO(VFIO_TYPE, VFIO_BASE + 21)`.
pub const VFIO_MIG_GET_PRECOPY_INFO: u32 = io(VFIO_TYPE, VFIO_BASE + 21);
/// `VFIO_DEVICE_FEATURE_GET`: bit 16 (SET is bit 17, PROBE bit 18; the low 16 bits hold
/// the feature index).
pub const VFIO_DEVICE_FEATURE_GET: u32 = 1 << 16;
/// `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`.
pub const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: u32 = 9;

#[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64", target_arch = "mips",
              target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64")))]
const _: () = {
    assert!(VFIO_DEVICE_FEATURE == 0x3b75);
    assert!(VFIO_MIG_GET_PRECOPY_INFO == 0x3b79);
};

/// `struct vfio_device_feature` (argsz, flags) followed by its data, here
/// `struct vfio_device_feature_mig_data_size { __aligned_u64 stop_copy_length; }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioDeviceFeatureMigDataSize {
    pub argsz: u32,
    pub flags: u32,
    pub stop_copy_length: u64,
}

/// `struct vfio_precopy_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioPrecopyInfo {
    pub argsz: u32,
    pub flags: u32,
    pub initial_bytes: u64,
    pub dirty_bytes: u64,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<VfioDeviceFeatureMigDataSize>() == 16);
    assert!(align_of::<VfioDeviceFeatureMigDataSize>() == 8);
    assert!(offset_of!(VfioDeviceFeatureMigDataSize, argsz) == 0);
    assert!(offset_of!(VfioDeviceFeatureMigDataSize, flags) == 4);
    assert!(offset_of!(VfioDeviceFeatureMigDataSize, stop_copy_length) == 8);
    assert!(size_of::<VfioPrecopyInfo>() == 24);
    assert!(align_of::<VfioPrecopyInfo>() == 8);
    assert!(offset_of!(VfioPrecopyInfo, argsz) == 0);
    assert!(offset_of!(VfioPrecopyInfo, flags) == 4);
    assert!(offset_of!(VfioPrecopyInfo, initial_bytes) == 8);
    assert!(offset_of!(VfioPrecopyInfo, dirty_bytes) == 16);
};

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().filter(|e| *e > 0).unwrap_or(libc::EIO)
}

/// Sizes read from the kernel. The fds stay the VMM's: the library never closes them.
pub struct FdReader {
    device_fd: RawFd,
    data_fd: AtomicI32,
}

impl FdReader {
    pub fn new(device_fd: RawFd) -> FdReader {
        FdReader { device_fd, data_fd: AtomicI32::new(-1) }
    }
}

impl SizeReader for FdReader {
    fn stop_copy_size(&self) -> std::result::Result<u64, i32> {
        let mut buf = VfioDeviceFeatureMigDataSize {
            argsz: std::mem::size_of::<VfioDeviceFeatureMigDataSize>() as u32,
            flags: VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
            stop_copy_length: 0,
        };
        // SAFETY: VFIO_DEVICE_FEATURE reads argsz/flags and writes at most argsz bytes into
        // the buffer, which is a live, exclusively borrowed struct of exactly argsz bytes
        // with the uAPI layout (checked above). A bad fd only makes the call fail.
        let rc = unsafe {
            libc::ioctl(self.device_fd, VFIO_DEVICE_FEATURE as _, &mut buf as *mut _)
        };
        if rc != 0 {
            return Err(last_errno());
        }
        Ok(buf.stop_copy_length)
    }

    fn precopy_info(&self) -> std::result::Result<(u64, u64), PrecopyFailure> {
        let fd = self.data_fd.load(Ordering::Acquire);
        if fd < 0 {
            return Err(PrecopyFailure::Unavailable);
        }
        // The v2 `flags` opt-in is not used: send 0 and ignore whatever comes back.
        let mut info = VfioPrecopyInfo {
            argsz: std::mem::size_of::<VfioPrecopyInfo>() as u32,
            ..Default::default()
        };
        // SAFETY: VFIO_MIG_GET_PRECOPY_INFO writes at most argsz bytes into `info`, a live,
        // exclusively borrowed struct of exactly argsz bytes with the uAPI layout.
        let rc = unsafe { libc::ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO as _, &mut info as *mut _) };
        if rc != 0 {
            return Err(PrecopyFailure::Errno(last_errno()));
        }
        Ok((info.initial_bytes, info.dirty_bytes))
    }

    fn set_data_fd(&self, fd: RawFd) -> Result<()> {
        if fd < -1 {
            return Err(Error::invalid_arg(format!("data fd {fd} is invalid (-1 unsets it)")));
        }
        self.data_fd.store(fd, Ordering::Release);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Session-wide figures.

/// VFIO figures shared by all devices of a session.
#[derive(Default)]
pub struct VfioTotals {
    devices: AtomicUsize,
    transferred: AtomicU64,
    /// Bumped at every `migration_start`; a device whose own count belongs to an older epoch
    /// starts again from 0.
    epoch: AtomicU64,
}

impl VfioTotals {
    /// All VFIO device bytes read since `migration_start` (`vfio.transferred`), or `None`
    /// while the session has no VFIO device (then `query-migrate` has no `vfio` member).
    pub fn transferred(&self) -> Option<u64> {
        if self.devices.load(Ordering::Acquire) == 0 {
            None
        } else {
            Some(self.transferred.load(Ordering::Relaxed))
        }
    }

    /// Resets the statistics at `migration_start`.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.transferred.store(0, Ordering::Relaxed);
    }

    /// The number of VFIO devices of the session.
    pub fn devices(&self) -> usize {
        self.devices.load(Ordering::Acquire)
    }

    fn add(&self, bytes: u64) {
        let _ = self.transferred.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
            Some(t.saturating_add(bytes))
        });
    }
}

impl Session {
    /// The session's VFIO figures (`vfio.transferred`, device count).
    pub fn vfio_totals(&self) -> &VfioTotals {
        &self.vfio
    }
}

// ---------------------------------------------------------------------------------------------
// The device.

/// A device's cached figures and its bytes sent (`swo_vfio_get_sizes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioSizes {
    /// The device's whole stop-copy estimate, precopy data included.
    pub stopcopy_size: u64,
    pub precopy_init_size: u64,
    pub precopy_dirty_size: u64,
    /// Device bytes read since `migration_start`.
    pub transferred: u64,
}

impl VfioSizes {
    /// The device's buckets: `precopy = init + dirty`,
    /// `stopcopy = max(stopcopy_size - precopy, 0)`.
    pub fn pending(&self) -> Pending {
        let precopy = self.precopy_init_size.saturating_add(self.precopy_dirty_size);
        Pending { precopy, stopcopy: self.stopcopy_size.saturating_sub(precopy), postcopy: 0 }
    }
}

struct DevState {
    mig_state: DeviceState,
    stopcopy_size: u64,
    precopy_init: u64,
    precopy_dirty: u64,
    /// A precopy-info read succeeded since the device last entered PRE_COPY*.
    precopy_seen: bool,
    transferred: u64,
    epoch: u64,
    warned: u32,
}

struct Warning {
    kind: WarningKind,
    value: u64,
    message: String,
}

/// What one re-read brought, before it is applied to the cache.
struct Reading {
    stop_copy: std::result::Result<u64, i32>,
    /// `None` when the device is not in PRE_COPY*: precopy info is not re-read.
    precopy: Option<std::result::Result<(u64, u64), PrecopyFailure>>,
}

/// The state the device handle and its registered handler share.
struct Shared {
    name: String,
    reader: Box<dyn SizeReader>,
    state: Mutex<DevState>,
}

fn clamp(
    name: &str,
    raw: u64,
    kind: WarningKind,
    what: &str,
    warnings: &mut Vec<Warning>,
) -> (u64, bool) {
    if raw <= SIZE_MAX {
        return (raw, false);
    }
    warnings.push(Warning {
        kind,
        value: raw,
        message: format!("{name}: Estimated {what} size overflow: 0x{raw:x}"),
    });
    (SIZE_MAX, true)
}

fn strerror(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

impl Shared {
    fn mig_state(&self) -> DeviceState {
        lock(&self.state).mig_state
    }

    /// Reads the device (no lock held): stop-copy size always, precopy info only in PRE_COPY*.
    fn read_device(&self) -> Reading {
        let stop_copy = self.reader.stop_copy_size();
        let precopy = self.mig_state().is_precopy().then(|| self.reader.precopy_info());
        Reading { stop_copy, precopy }
    }

    /// Applies a reading to the cache and returns the first problem, in read order.
    fn apply(&self, reading: Reading, warnings: &mut Vec<Warning>) -> Result<()> {
        let name = &self.name;
        let mut first: Option<Error> = None;
        let mut note = |e: Error| {
            first.get_or_insert(e);
        };
        let stopcopy_size = match reading.stop_copy {
            Ok(raw) => {
                let (v, clamped) =
                    clamp(name, raw, WarningKind::StopCopyOverflow, "stop copy", warnings);
                if clamped {
                    note(Error::out_of_range(format!(
                        "{name}: Estimated stop copy size overflow: 0x{raw:x}"
                    )));
                }
                v
            }
            Err(errno) => {
                let message = format!(
                    "{name}: Failed to query stop copy size: {} (errno {errno}); assuming {STOP_COPY_FALLBACK} bytes",
                    strerror(errno)
                );
                warnings.push(Warning {
                    kind: WarningKind::StopCopyQueryFailed,
                    value: errno as u64,
                    message: message.clone(),
                });
                note(Error::io(message));
                STOP_COPY_FALLBACK
            }
        };
        let precopy = reading.precopy.map(|r| match r {
            Ok((init_raw, dirty_raw)) => {
                let (init, c1) = clamp(
                    name,
                    init_raw,
                    WarningKind::PrecopyInitOverflow,
                    "precopy init",
                    warnings,
                );
                let (dirty, c2) = clamp(
                    name,
                    dirty_raw,
                    WarningKind::PrecopyDirtyOverflow,
                    "precopy dirty",
                    warnings,
                );
                if c1 || c2 {
                    let (what, raw) =
                        if c1 { ("precopy init", init_raw) } else { ("precopy dirty", dirty_raw) };
                    note(Error::out_of_range(format!(
                        "{name}: Estimated {what} size overflow: 0x{raw:x}"
                    )));
                }
                Some((init, dirty))
            }
            Err(PrecopyFailure::Errno(errno)) => {
                let message = format!(
                    "{name}: Failed to query precopy info: {} (errno {errno}); assuming 0 bytes",
                    strerror(errno)
                );
                warnings.push(Warning {
                    kind: WarningKind::PrecopyQueryFailed,
                    value: errno as u64,
                    message: message.clone(),
                });
                note(Error::io(message));
                None
            }
            Err(PrecopyFailure::Unavailable) => {
                let message = format!(
                    "{name}: precopy info is unavailable (no migration data fd set); assuming 0 bytes"
                );
                warnings.push(Warning {
                    kind: WarningKind::PrecopyInfoUnavailable,
                    value: 0,
                    message: message.clone(),
                });
                note(Error::bad_state(message));
                None
            }
        });

        let mut st = lock(&self.state);
        st.stopcopy_size = stopcopy_size;
        match precopy {
            None => {}
            Some(None) => {
                st.precopy_init = 0;
                st.precopy_dirty = 0;
                // The 0 is ours, not the device's: the next good figure is no growth.
                st.precopy_seen = false;
            }
            Some(Some((init, dirty))) => {
                if st.precopy_seen && init > st.precopy_init {
                    warnings.push(Warning {
                        kind: WarningKind::PrecopyInitGrew,
                        value: init,
                        message: format!(
                            "{name}: precopy initial bytes grew from {} to {init} between reads; keeping the device's figure",
                            st.precopy_init
                        ),
                    });
                }
                st.precopy_init = init;
                st.precopy_dirty = dirty;
                st.precopy_seen = true;
            }
        }
        Self::check_precopy_fits(name, &st, warnings);
        drop(st);
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check_precopy_fits(name: &str, st: &DevState, warnings: &mut Vec<Warning>) {
        let precopy = st.precopy_init.saturating_add(st.precopy_dirty);
        if precopy > st.stopcopy_size {
            warnings.push(Warning {
                kind: WarningKind::PrecopyExceedsStopCopy,
                value: precopy,
                message: format!(
                    "{name}: precopy size {precopy} exceeds the stop copy size {}; reporting a stop copy size of 0",
                    st.stopcopy_size
                ),
            });
        }
    }

    /// Re-reads the sizes into the cache (an exact, non-final query or `refresh`).
    fn reread(&self, session: &Session) -> Result<()> {
        let reading = {
            let _scope = CallbackScope::enter(session.id());
            self.read_device()
        };
        let mut warnings = Vec::new();
        let result = self.apply(reading, &mut warnings);
        self.warn(session, warnings);
        result
    }

    /// Emits each warning whose kind this device has not warned about yet.
    fn warn(&self, session: &Session, warnings: Vec<Warning>) {
        for w in warnings {
            let first_time = {
                let mut st = lock(&self.state);
                let first = st.warned & w.kind.bit() == 0;
                st.warned |= w.kind.bit();
                first
            };
            if first_time {
                session.emit(
                    WARNING_EVENT,
                    json!({
                        "device": self.name,
                        "kind": w.kind.name(),
                        "value": w.value,
                        "message": w.message,
                    }),
                );
            }
        }
    }

    fn sizes(&self, totals: &VfioTotals) -> VfioSizes {
        let st = lock(&self.state);
        let current = st.epoch == totals.epoch.load(Ordering::Acquire);
        VfioSizes {
            stopcopy_size: st.stopcopy_size,
            precopy_init_size: st.precopy_init,
            precopy_dirty_size: st.precopy_dirty,
            transferred: if current { st.transferred } else { 0 },
        }
    }

    fn pending(&self) -> Pending {
        let st = lock(&self.state);
        VfioSizes {
            stopcopy_size: st.stopcopy_size,
            precopy_init_size: st.precopy_init,
            precopy_dirty_size: st.precopy_dirty,
            transferred: 0,
        }
        .pending()
    }
}

/// The handler registered for a device. Holds the session weakly: the session owns it.
struct Handler {
    shared: Arc<Shared>,
    session: Weak<Session>,
}

impl PendingSource for Handler {
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, final_: bool) {
        if exact && !final_ {
            if let Some(session) = self.session.upgrade() {
                // Problems became warnings; the query reports the documented fallbacks.
                let _ = self.shared.reread(&session);
            }
        }
        pending.accumulate(&self.shared.pending());
    }
}

/// One VFIO device of a session. [`close`](Self::close) (or dropping it) unregisters its
/// handler, waiting for running callbacks, after which no reader is called again.
pub struct VfioDevice {
    session: Arc<Session>,
    shared: Arc<Shared>,
    handler_id: u64,
    /// True while the handler is registered.
    registered: Mutex<bool>,
}

impl VfioDevice {
    /// Creates a device named `name` (non-empty, unique per session: it is the handler's idstr,
    /// instance 0) whose sizes come from `reader`, registers its handler with
    /// [`HandlerFlags::NO_POSTCOPY`], and reads its stop-copy size once (as QEMU's
    /// `save_setup` does). Problems of that first read become warnings, not errors.
    /// The device starts in state RUNNING.
    pub fn new(session: &Arc<Session>, name: &str, reader: Box<dyn SizeReader>) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid_arg("VFIO device name must not be empty"));
        }
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            reader,
            state: Mutex::new(DevState {
                mig_state: DeviceState::Running,
                stopcopy_size: 0,
                precopy_init: 0,
                precopy_dirty: 0,
                precopy_seen: false,
                transferred: 0,
                epoch: session.vfio.epoch.load(Ordering::Acquire),
                warned: 0,
            }),
        });
        let handler = Handler { shared: shared.clone(), session: Arc::downgrade(session) };
        let handler_id =
            session.registry().register(name, 0, HandlerFlags::NO_POSTCOPY, Box::new(handler))?;
        session.vfio.devices.fetch_add(1, Ordering::AcqRel);
        let device =
            VfioDevice { session: session.clone(), shared, handler_id, registered: Mutex::new(true) };
        let _ = device.shared.reread(&device.session);
        Ok(device)
    }

    /// Creates a device whose sizes the library reads from the kernel with the uAPI ioctls on
    /// `device_fd` (and, once set, the data fd). The fds stay the caller's.
    pub fn with_fd(session: &Arc<Session>, name: &str, device_fd: RawFd) -> Result<Self> {
        if device_fd < 0 {
            return Err(Error::invalid_arg(format!("device fd {device_fd} is invalid")));
        }
        VfioDevice::new(session, name, Box::new(FdReader::new(device_fd)))
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Unregisters the device's handler, waiting until no query runs its callback on any
    /// thread (after this returns the reader is never called again), and stops counting the
    /// device in the session. Idempotent. From a callback of the same session it cannot wait:
    /// `Reentrant`, and the device stays registered and working (a reader call another
    /// thread is making may still be running, so nothing the reader uses may go).
    pub fn close(&self) -> Result<()> {
        reentrancy::check(self.session.id(), "swo_vfio_free")?;
        let mut registered = lock(&self.registered);
        if *registered {
            match self.session.registry().unregister(self.handler_id) {
                Ok(()) | Err(Error { code: Code::NotFound, .. }) => {}
                Err(e) => return Err(e),
            }
            *registered = false;
            self.session.vfio.devices.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The id of the device's pending-data handler.
    pub fn handler_id(&self) -> u64 {
        self.handler_id
    }

    /// Sets the migration data fd for `VFIO_MIG_GET_PRECOPY_INFO` (-1 unsets it).
    pub fn set_data_fd(&self, fd: RawFd) -> Result<()> {
        self.shared.reader.set_data_fd(fd)
    }

    /// Notes the device's uAPI migration state (0..=7). Entering PRE_COPY* from another state
    /// starts a new precopy phase (for the `precopy-init-grew` check).
    pub fn set_state(&self, state: u32) -> Result<()> {
        let new = DeviceState::from_u32(state).ok_or_else(|| {
            Error::invalid_arg(format!(
                "invalid VFIO device state {state}: expected 0 (ERROR) to 7 (PRE_COPY_P2P)"
            ))
        })?;
        let mut st = lock(&self.shared.state);
        if new.is_precopy() != st.mig_state.is_precopy() {
            st.precopy_seen = false;
        }
        st.mig_state = new;
        Ok(())
    }

    pub fn state(&self) -> DeviceState {
        self.shared.mig_state()
    }

    /// Re-reads the sizes now, as an exact non-final query does. The cache then holds the
    /// documented figures even on error (see the module's table).
    pub fn refresh(&self) -> Result<()> {
        self.shared.reread(&self.session)
    }

    /// Records that the VMM read `bytes` of migration data from the device:
    /// `stopcopy_size -= min(bytes, stopcopy_size)`, then `precopy_init_size` and then
    /// `precopy_dirty_size` lose what they can of `bytes`; a read of 0 bytes (the device has
    /// no precopy data for now) zeroes both precopy figures. The bytes also count in the
    /// device's and the session's `transferred`.
    pub fn record_read(&self, bytes: u64) {
        let totals = &self.session.vfio;
        let mut warnings = Vec::new();
        {
            let mut st = lock(&self.shared.state);
            if bytes == 0 {
                st.precopy_init = 0;
                st.precopy_dirty = 0;
            } else {
                if bytes > st.stopcopy_size {
                    warnings.push(Warning {
                        kind: WarningKind::ReadExceedsCache,
                        value: bytes,
                        message: format!(
                            "{}: read of {bytes} bytes exceeds the estimated stop copy size {}; sizes floor at 0",
                            self.shared.name, st.stopcopy_size
                        ),
                    });
                }
                st.stopcopy_size -= bytes.min(st.stopcopy_size);
                let from_init = bytes.min(st.precopy_init);
                st.precopy_init -= from_init;
                let rest = bytes - from_init;
                st.precopy_dirty -= rest.min(st.precopy_dirty);
                Shared::check_precopy_fits(&self.shared.name, &st, &mut warnings);
            }
            let epoch = totals.epoch.load(Ordering::Acquire);
            if st.epoch != epoch {
                st.epoch = epoch;
                st.transferred = 0;
            }
            st.transferred = st.transferred.saturating_add(bytes);
        }
        totals.add(bytes);
        self.shared.warn(&self.session, warnings);
    }

    /// The cached figures and the device's bytes read since `migration_start`.
    pub fn sizes(&self) -> VfioSizes {
        self.shared.sizes(&self.session.vfio)
    }

    /// The buckets the device reports from its cache.
    pub fn pending(&self) -> Pending {
        self.shared.pending()
    }
}

impl std::fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioDevice")
            .field("name", &self.shared.name)
            .field("handler_id", &self.handler_id)
            .field("state", &self.state())
            .field("sizes", &self.sizes())
            .finish()
    }
}

impl Drop for VfioDevice {
    /// Unregisters like [`VfioDevice::close`]. Dropped inside a callback of its session, the
    /// handler stays registered and working (its name taken, its reader owned by it, the
    /// device counted) until the session goes.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_and_flags_match_the_uapi() {
        assert_eq!(VFIO_DEVICE_FEATURE & 0xff, 117);
        assert_eq!((VFIO_DEVICE_FEATURE >> 8) & 0xff, b';' as u32);
        assert_eq!(VFIO_MIG_GET_PRECOPY_INFO & 0xff, 121);
        assert_eq!(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 0x1_0009);
    }

    #[test]
    fn device_states_are_the_uapi_numbers() {
        assert_eq!(DeviceState::from_u32(6), Some(DeviceState::PreCopy));
        assert_eq!(DeviceState::from_u32(7), Some(DeviceState::PreCopyP2p));
        assert_eq!(DeviceState::from_u32(8), None);
        assert!(!DeviceState::Running.is_precopy());
    }
}
