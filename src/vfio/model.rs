//! QEMU's per-device VFIO cache (`stopcopy_size`, `precopy_init_size`, `precopy_dirty_size`),
//! how a reading and a recorded read change it, and the session-wide totals. Knows nothing of
//! sessions: the device handle (`super::VfioDevice`) feeds it and emits what it warns about.
use super::uapi::{DeviceState, PrecopyFailure, SizeReader};
use super::warnings::{Warning, WarningKind};
use crate::error::{Error, Result};
use crate::locks::lock;
use crate::pending::Pending;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// `stopcopy_size` when the stop-copy size cannot be read: QEMU's `VFIO_MIG_STOP_COPY_SIZE`,
/// big enough that the downtime limit is never violated by an unknown device.
pub const STOP_COPY_FALLBACK: u64 = 100 << 30;

/// The largest size the model keeps; larger device figures are clamped to it.
pub const SIZE_MAX: u64 = i64::MAX as u64;

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

    pub(crate) fn device_added(&self) {
        self.devices.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn device_removed(&self) {
        self.devices.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn add(&self, bytes: u64) {
        let _ = self.transferred.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
            Some(t.saturating_add(bytes))
        });
    }
}

// ---------------------------------------------------------------------------------------------
// One device's cache.

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

/// What one re-read brought, before it is applied to the cache.
pub(crate) struct Reading {
    stop_copy: std::result::Result<u64, i32>,
    /// `None` when the device is not in PRE_COPY*: precopy info is not re-read.
    precopy: Option<std::result::Result<(u64, u64), PrecopyFailure>>,
}

/// A precopy re-read's outcome for the cache: `None` keeps it (not in PRE_COPY*), `Some(None)`
/// zeroes it (the read failed), `Some(Some((init, dirty)))` stores the figures.
type PrecopyFigures = Option<Option<(u64, u64)>>;

/// One device's reader and cache (what the device handle and its registered handler share).
pub(crate) struct DeviceModel {
    name: String,
    reader: Box<dyn SizeReader>,
    state: Mutex<DevState>,
}

/// `raw`, or [`SIZE_MAX`] with a warning of `kind` when `raw` is above it; the flag says
/// whether it was clamped.
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

/// The stop-copy size a reading gives the cache: the figure clamped, or the fallback when the
/// read failed. Notes the problem in `first` unless an earlier one is there.
fn stop_copy_figure(
    name: &str,
    read: std::result::Result<u64, i32>,
    warnings: &mut Vec<Warning>,
    first: &mut Option<Error>,
) -> u64 {
    match read {
        Ok(raw) => {
            let (v, clamped) =
                clamp(name, raw, WarningKind::StopCopyOverflow, "stop copy", warnings);
            if clamped {
                first.get_or_insert(Error::out_of_range(format!(
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
            first.get_or_insert(Error::io(message));
            STOP_COPY_FALLBACK
        }
    }
}

/// The precopy figures a precopy-info read gives the cache (`None`: the read failed, the
/// cache gets 0), clamped. Notes the problem in `first` unless an earlier one is there.
fn precopy_figures(
    name: &str,
    read: std::result::Result<(u64, u64), PrecopyFailure>,
    warnings: &mut Vec<Warning>,
    first: &mut Option<Error>,
) -> Option<(u64, u64)> {
    let (kind, errno, message) = match read {
        Ok((init_raw, dirty_raw)) => {
            let (init, c1) =
                clamp(name, init_raw, WarningKind::PrecopyInitOverflow, "precopy init", warnings);
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
                first.get_or_insert(Error::out_of_range(format!(
                    "{name}: Estimated {what} size overflow: 0x{raw:x}"
                )));
            }
            return Some((init, dirty));
        }
        Err(PrecopyFailure::Errno(errno)) => (
            WarningKind::PrecopyQueryFailed,
            Some(errno),
            format!(
                "{name}: Failed to query precopy info: {} (errno {errno}); assuming 0 bytes",
                strerror(errno)
            ),
        ),
        Err(PrecopyFailure::Unavailable) => (
            WarningKind::PrecopyInfoUnavailable,
            None,
            format!(
                "{name}: precopy info is unavailable (no migration data fd set); assuming 0 bytes"
            ),
        ),
    };
    warnings.push(Warning { kind, value: errno.map_or(0, |e| e as u64), message: message.clone() });
    first.get_or_insert(match errno {
        Some(_) => Error::io(message),
        None => Error::bad_state(message),
    });
    None
}

impl DeviceModel {
    /// A device named `name` in state RUNNING with an empty cache, counting its bytes in
    /// `epoch` of the session's totals.
    pub(crate) fn new(name: &str, reader: Box<dyn SizeReader>, epoch: u64) -> DeviceModel {
        DeviceModel {
            name: name.to_owned(),
            reader,
            state: Mutex::new(DevState {
                mig_state: DeviceState::Running,
                stopcopy_size: 0,
                precopy_init: 0,
                precopy_dirty: 0,
                precopy_seen: false,
                transferred: 0,
                epoch,
                warned: 0,
            }),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn reader(&self) -> &dyn SizeReader {
        &*self.reader
    }

    pub(crate) fn mig_state(&self) -> DeviceState {
        lock(&self.state).mig_state
    }

    /// Notes the device's uAPI migration state. Entering PRE_COPY* from another state starts
    /// a new precopy phase (for the `precopy-init-grew` check).
    pub(crate) fn set_mig_state(&self, new: DeviceState) {
        let mut st = lock(&self.state);
        if new.is_precopy() != st.mig_state.is_precopy() {
            st.precopy_seen = false;
        }
        st.mig_state = new;
    }

    /// Reads the device (no lock held): stop-copy size always, precopy info only in PRE_COPY*.
    pub(crate) fn read_device(&self) -> Reading {
        let stop_copy = self.reader.stop_copy_size();
        let precopy = self.mig_state().is_precopy().then(|| self.reader.precopy_info());
        Reading { stop_copy, precopy }
    }

    /// Applies a reading to the cache and returns the first problem, in read order.
    pub(crate) fn apply(&self, reading: Reading, warnings: &mut Vec<Warning>) -> Result<()> {
        let name = &self.name;
        let mut first: Option<Error> = None;
        let stopcopy_size = stop_copy_figure(name, reading.stop_copy, warnings, &mut first);
        let precopy = reading.precopy.map(|r| precopy_figures(name, r, warnings, &mut first));
        self.store(stopcopy_size, precopy, warnings);
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Puts a reading's figures into the cache.
    fn store(&self, stopcopy_size: u64, precopy: PrecopyFigures, warnings: &mut Vec<Warning>) {
        let name = &self.name;
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

    /// Records that the VMM read `bytes` of migration data from the device (see
    /// `VfioDevice::record_read`), in the device's and in `totals`' `transferred`.
    pub(crate) fn record_read(&self, bytes: u64, totals: &VfioTotals, warnings: &mut Vec<Warning>) {
        {
            let mut st = lock(&self.state);
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
                            self.name, st.stopcopy_size
                        ),
                    });
                }
                st.stopcopy_size -= bytes.min(st.stopcopy_size);
                let from_init = bytes.min(st.precopy_init);
                st.precopy_init -= from_init;
                let rest = bytes - from_init;
                st.precopy_dirty -= rest.min(st.precopy_dirty);
                Self::check_precopy_fits(&self.name, &st, warnings);
            }
            let epoch = totals.epoch();
            if st.epoch != epoch {
                st.epoch = epoch;
                st.transferred = 0;
            }
            st.transferred = st.transferred.saturating_add(bytes);
        }
        totals.add(bytes);
    }

    /// Whether this is the device's first warning of `kind` (then it is marked as warned).
    pub(crate) fn first_warning(&self, kind: WarningKind) -> bool {
        let mut st = lock(&self.state);
        let first = st.warned & kind.bit() == 0;
        st.warned |= kind.bit();
        first
    }

    pub(crate) fn sizes(&self, totals: &VfioTotals) -> VfioSizes {
        let st = lock(&self.state);
        let current = st.epoch == totals.epoch();
        VfioSizes {
            stopcopy_size: st.stopcopy_size,
            precopy_init_size: st.precopy_init,
            precopy_dirty_size: st.precopy_dirty,
            transferred: if current { st.transferred } else { 0 },
        }
    }

    pub(crate) fn pending(&self) -> Pending {
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
