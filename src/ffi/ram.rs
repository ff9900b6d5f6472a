//! C ABI: the built-in RAM model.
use super::*;
use super::versioned::Out;
use crate::ram::{DirtySync, Ram, RamFigures, SyncResult};
use std::ffi::c_void;

/// The dirty-bitmap sync: returns the dirty pages left and writes into `*newly_dirtied` the
/// pages newly dirtied since the previous sync (it is 0 when the callback leaves it alone).
pub type SwoRamSyncDirtyFn =
    Option<unsafe extern "C" fn(opaque: *mut c_void, newly_dirtied: *mut u64) -> u64>;

/// The RAM model's operations. Copied by `swo_ram_new`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwoRamOps {
    /// `sizeof(SwoRamOps)`: lets the struct grow.
    pub struct_size: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Called by exact (and final) queries, the dirty-bitmap sync; may be NULL (then exact
    /// queries sync nothing). Figures above the RAM's page count are clamped to it, and a
    /// `DEVICE_SIZE_WARNING` event says so once per migration.
    pub sync_dirty: SwoRamSyncDirtyFn,
}

/// The RAM model's figures, as `query-migrate` reports them in `ram`.
///
/// Versioned: set `struct_size` to `sizeof(SwoRamFigures)` before the call
/// (`SwoRamFigures f = { .struct_size = sizeof f };`). The library refuses a size below 56
/// (the 0.2.0 layout) with `SWO_ERR_INVALID_ARG` and writes nothing; otherwise it writes the
/// fields that lie wholly within `struct_size` (whole 8-byte slots), never a byte past it, and
/// sets `struct_size` to the bytes it wrote. Fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwoRamFigures {
    /// Set by the caller to `sizeof(SwoRamFigures)`; set by the library to the bytes it wrote.
    pub struct_size: u32,
    /// Written as 0.
    pub reserved: u32,
    /// Guest RAM size in bytes (`ram.total`).
    pub total_bytes: u64,
    /// Page size in bytes (`ram.page-size`).
    pub page_size: u64,
    /// Pages sent with content since `swo_migration_start` (`ram.normal`).
    pub normal_pages: u64,
    /// Zero pages sent since `swo_migration_start` (`ram.duplicate`).
    pub zero_pages: u64,
    /// Dirty pages still to send (`ram.remaining` = dirty_pages * page_size).
    pub dirty_pages: u64,
    /// Pages dirtied per second over the last window of at least 1000 ms
    /// (`ram.dirty-pages-rate`); 0 before the first window closes.
    pub dirty_pages_rate: u64,
}
super::versioned::out_struct!(SwoRamFigures, 56);

/// The C layout of the core's [`RamFigures`]: the same fields behind the versioning header.
/// cbindgen needs the C struct written out here and the core never imports `ffi/`, so the
/// field list stands twice; the exhaustive pattern below stops the build when one side gains
/// or loses a field that the other does not.
impl From<RamFigures> for SwoRamFigures {
    fn from(f: RamFigures) -> SwoRamFigures {
        let RamFigures { total_bytes, page_size, normal_pages, zero_pages, dirty_pages, dirty_pages_rate } = f;
        SwoRamFigures {
            struct_size: std::mem::size_of::<SwoRamFigures>() as u32,
            reserved: 0,
            total_bytes,
            page_size,
            normal_pages,
            zero_pages,
            dirty_pages,
            dirty_pages_rate,
        }
    }
}

/// An opaque RAM model. Create with `swo_ram_new`, free with `swo_ram_free`.
pub struct SwoRam {
    inner: Ram,
}

struct CSync {
    sync_dirty: unsafe extern "C" fn(*mut c_void, *mut u64) -> u64,
    opaque: *mut c_void,
}

// SAFETY: the contract of `swo_ram_new` makes `sync_dirty` callable from any thread with this
// `opaque`, concurrently, until `swo_ram_free` returns.
unsafe impl Send for CSync {}
// SAFETY: the same contract allows concurrent calls; the library never touches `opaque`
// itself.
unsafe impl Sync for CSync {}

impl DirtySync for CSync {
    fn sync_dirty(&self) -> SyncResult {
        let mut newly_dirtied = 0u64;
        // SAFETY: the VMM's callback with its opaque and a pointer to a live local.
        let dirty_pages = unsafe { (self.sync_dirty)(self.opaque, &mut newly_dirtied) };
        SyncResult { dirty_pages, newly_dirtied }
    }
}

super::ptr::ops_struct!(SwoRamOps, reserved);

impl Handle for SwoRam {
    type Target = Ram;
    const ARG: &'static str = "ram";
    fn target(&self) -> &Ram {
        &self.inner
    }
}

/// Creates the session's built-in RAM model and registers it as the pending-data handler
/// `ram` (instance 0); writes the handle into `*out`. Free it with `swo_ram_free`, before or
/// after the session. The model starts with no dirty pages.
///
/// `total_bytes` must be a non-zero multiple of `page_size`; `page_size` a power of two from
/// 512 bytes to 1 GiB. `ops` may be NULL, as may its `sync_dirty`: exact queries then sync
/// nothing and the dirty count changes only through `swo_ram_set_dirty_pages` and
/// `swo_ram_record_sent`. `ops` is copied. `sync_dirty` is called with `opaque` by exact and
/// final queries, from whichever thread queries (several at once), with no library lock held,
/// until `swo_ram_free` returns. Dirty bytes are reported as precopy, or as postcopy while
/// the `postcopy-ram` capability is on.
///
/// Returns `SWO_OK`; `SWO_ERR_NULL_ARG` (session, out); `SWO_ERR_INVALID_ARG` (page size not a
/// power of two, total 0 or not a multiple of the page size, `struct_size` too small,
/// `reserved` not 0); `SWO_ERR_OUT_OF_RANGE` (page size outside 512 B..1 GiB);
/// `SWO_ERR_EXISTS` (the session has a RAM model, or a handler `ram` instance 0);
/// `SWO_ERR_REENTRANT` from a callback of this session. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_ram_new(
    s: *mut SwoSession,
    total_bytes: u64,
    page_size: u64,
    ops: *const SwoRamOps,
    opaque: *mut c_void,
    out: *mut *mut SwoRam,
) -> SwoStatus {
    session_call(s, |sess| {
        let out = super::out(out, "out")?;
        let sync = match opt_arg(ops) {
            None => None,
            Some(ops) => ram_sync(ops, opaque)?,
        };
        let ram = Ram::new(sess, total_bytes, page_size, sync)?;
        *out = into_handle(SwoRam { inner: ram });
        Ok(())
    })
}

/// Checks a `SwoRamOps` and makes the sync it describes.
fn ram_sync(ops: &SwoRamOps, opaque: *mut c_void) -> Result<Option<Box<dyn DirtySync>>> {
    check_ops(ops)?;
    Ok(ops.sync_dirty.map(|sync_dirty| Box::new(CSync { sync_dirty, opaque }) as Box<dyn DirtySync>))
}

/// Sets the RAM model's dirty page count (e.g. after the VMM's own bitmap sync). Returns
/// `SWO_OK`, `SWO_ERR_NULL_ARG`, or `SWO_ERR_OUT_OF_RANGE` when `pages` exceeds the RAM's page
/// count (`total_bytes / page_size`); then nothing changes. Any thread, also while queries run
/// and from `sync_dirty` itself.
#[no_mangle]
pub unsafe extern "C" fn swo_ram_set_dirty_pages(ram: *mut SwoRam, pages: u64) -> SwoStatus {
    handle_call(ram, |ram| ram.set_dirty_pages(pages))
}

/// Records pages sent: adds `normal_pages` to `ram.normal` and `zero_pages` to
/// `ram.duplicate` (both saturating at `UINT64_MAX`), lowers the dirty count by their sum
/// (not below 0), and counts them for `pages-per-second`. Returns `SWO_OK` or
/// `SWO_ERR_NULL_ARG`. Any thread, also while queries run.
#[no_mangle]
pub unsafe extern "C" fn swo_ram_record_sent(
    ram: *mut SwoRam,
    normal_pages: u64,
    zero_pages: u64,
) -> SwoStatus {
    handle_call(ram, |ram| {
        ram.record_sent(normal_pages, zero_pages);
        Ok(())
    })
}

/// Writes the RAM model's figures into `*out` (what `query-migrate` reports in `ram`), a
/// versioned `SwoRamFigures`: set its `struct_size`. Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or
/// `SWO_ERR_INVALID_ARG` (`out->struct_size` below the first versioned layout; nothing
/// written). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_ram_get_figures(ram: *const SwoRam, out: *mut SwoRamFigures) -> SwoStatus {
    handle_call(ram, |ram| {
        Out::check(out, "out")?.write(&SwoRamFigures::from(ram.figures()));
        Ok(())
    })
}

/// Unregisters the RAM model, waiting until no query runs its `sync_dirty` (none starts
/// afterwards, so `opaque` may be freed once this returns), then frees the handle. NULL is a
/// no-op. No other call on this handle may run or start. Any thread, except from a callback
/// of the same session, where it cannot wait: the model then stays registered and allocated,
/// and the thread's last error message says why.
#[no_mangle]
pub unsafe extern "C" fn swo_ram_free(ram: *mut SwoRam) {
    call_or((), || {
        let Some(boxed) = take_handle(ram) else { return };
        match boxed.inner.close() {
            Ok(()) => drop(boxed),
            Err(e) => {
                set_last_error(&e.message);
                // Still registered: the handle must stay valid for a later free.
                keep_handle(boxed);
            }
        }
    })
}

super::symbol_versions!("ram");
