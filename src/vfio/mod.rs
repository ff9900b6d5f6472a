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
//! request numbers are written out in [`uapi`], because the build machine's kernel headers predate
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
//!
//! The parts: [`uapi`] (kernel structs, ioctls, [`FdReader`]), [`model`] (the cache and the
//! session-wide totals, knowing nothing of sessions), [`warnings`]; this file attaches a device
//! to its session (handler registration, events, reentrancy).
pub mod model;
pub mod uapi;
pub mod warnings;

pub use model::{VfioSizes, VfioTotals, SIZE_MAX, STOP_COPY_FALLBACK};
pub use uapi::{
    DeviceState, FdReader, PrecopyFailure, SizeReader, VfioDeviceFeatureMigDataSize, VfioPrecopyInfo,
    VFIO_DEVICE_FEATURE, VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
    VFIO_MIG_GET_PRECOPY_INFO,
};
pub use warnings::{WarningKind, WARNING_EVENT};

use crate::error::{Code, Error, Result};
use crate::locks::lock;
use crate::pending::{HandlerFlags, Pending, PendingSource};
use crate::reentrancy::{self, CallbackScope};
use crate::session::Session;
use model::DeviceModel;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, Weak};
use warnings::Warning;

/// Re-reads the sizes into the cache (an exact, non-final query or `refresh`), the reader
/// running as a callback of `session`, and emits what the re-read warns about.
fn reread(model: &DeviceModel, session: &Session) -> Result<()> {
    let reading = {
        let _scope = CallbackScope::enter(session.id());
        model.read_device()
    };
    let mut warnings = Vec::new();
    let result = model.apply(reading, &mut warnings);
    warn(model, session, warnings);
    result
}

/// Emits each warning whose kind this device has not warned about yet.
fn warn(model: &DeviceModel, session: &Session, warnings: Vec<Warning>) {
    for w in warnings {
        if model.first_warning(w.kind) {
            session.emit(WARNING_EVENT, w.event_data(model.name()));
        }
    }
}

/// The handler registered for a device. Holds the session weakly: the session owns it.
struct Handler {
    shared: Arc<DeviceModel>,
    session: Weak<Session>,
}

impl PendingSource for Handler {
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, final_: bool) {
        if exact && !final_ {
            if let Some(session) = self.session.upgrade() {
                // Problems became warnings; the query reports the documented fallbacks.
                let _ = reread(&self.shared, &session);
            }
        }
        pending.accumulate(&self.shared.pending());
    }
}

/// One VFIO device of a session. [`close`](Self::close) (or dropping it) unregisters its
/// handler, waiting for running callbacks, after which no reader is called again.
pub struct VfioDevice {
    session: Arc<Session>,
    shared: Arc<DeviceModel>,
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
        let shared =
            Arc::new(DeviceModel::new(name, reader, session.vfio_totals().epoch()));
        let handler = Handler { shared: shared.clone(), session: Arc::downgrade(session) };
        let handler_id =
            session.registry().register(name, 0, HandlerFlags::NO_POSTCOPY, Box::new(handler))?;
        session.vfio_totals().device_added();
        let device =
            VfioDevice { session: session.clone(), shared, handler_id, registered: Mutex::new(true) };
        let _ = reread(&device.shared, &device.session);
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
        self.shared.name()
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
            self.session.vfio_totals().device_removed();
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
        self.shared.reader().set_data_fd(fd)
    }

    /// Notes the device's uAPI migration state (0..=7). Entering PRE_COPY* from another state
    /// starts a new precopy phase (for the `precopy-init-grew` check).
    pub fn set_state(&self, state: u32) -> Result<()> {
        let new = DeviceState::from_u32(state).ok_or_else(|| {
            Error::invalid_arg(format!(
                "invalid VFIO device state {state}: expected 0 (ERROR) to 7 (PRE_COPY_P2P)"
            ))
        })?;
        self.shared.set_mig_state(new);
        Ok(())
    }

    pub fn state(&self) -> DeviceState {
        self.shared.mig_state()
    }

    /// Re-reads the sizes now, as an exact non-final query does. The cache then holds the
    /// documented figures even on error (see the module's table).
    pub fn refresh(&self) -> Result<()> {
        reread(&self.shared, &self.session)
    }

    /// Records that the VMM read `bytes` of migration data from the device:
    /// `stopcopy_size -= min(bytes, stopcopy_size)`, then `precopy_init_size` and then
    /// `precopy_dirty_size` lose what they can of `bytes`; a read of 0 bytes (the device has
    /// no precopy data for now) zeroes both precopy figures. The bytes also count in the
    /// device's and the session's `transferred`.
    pub fn record_read(&self, bytes: u64) {
        let mut warnings = Vec::new();
        self.shared.record_read(bytes, self.session.vfio_totals(), &mut warnings);
        warn(&self.shared, &self.session, warnings);
    }

    /// The cached figures and the device's bytes read since `migration_start`.
    pub fn sizes(&self) -> VfioSizes {
        self.shared.sizes(self.session.vfio_totals())
    }

    /// The buckets the device reports from its cache.
    pub fn pending(&self) -> Pending {
        self.shared.pending()
    }
}

impl std::fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioDevice")
            .field("name", &self.shared.name())
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

