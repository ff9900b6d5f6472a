//! VFIO: freeing a device from a callback of its own session.
//!
//! `swo_vfio_free` documents that the caller may release the readers' `opaque` (and the fds)
//! once it returns. From a callback of the same session it used to "detach" the handler and
//! return, although another thread's query could be inside the device's reader right then
//! (or about to enter it): the VMM then freed `opaque` under a running reader, a
//! use-after-free in the VMM (docs/design.md §Threading: after unregistering returns "the caller
//! may free `opaque`").
//!
//! Now, like `swo_ram_free`, it refuses there: it frees nothing, the device stays registered
//! and working, and the thread's last error message says why. A later `swo_vfio_free` from
//! outside a callback waits for the reader call still running, after which no reader runs.
use std::ffi::{c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use switchover::ffi::pending::{swo_query_pending, swo_register_handler};
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::status::swo_last_error_message;
use switchover::ffi::vfio::{swo_vfio_free, swo_vfio_get_sizes, swo_vfio_new, SwoVfio, SwoVfioOps, SwoVfioSizes};
use switchover::ffi::*;

const MIB: u64 = 1 << 20;

fn last_error() -> String {
    let mut buf = [0 as std::ffi::c_char; 512];
    let mut len = 0usize;
    // SAFETY: buf is writable for its length.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// What the VMM keeps behind the reader's `opaque`. Once `armed`, a call blocks until `open`;
/// a call running after the VMM "released" the opaque (`released`) counts as late.
#[derive(Default)]
struct ReaderState {
    armed: AtomicBool,
    inside: AtomicU64,
    open: AtomicBool,
    released: AtomicBool,
    late: AtomicU64,
}

unsafe extern "C" fn stop_copy_size(opaque: *mut c_void, len: *mut u64) -> c_int {
    // SAFETY: opaque is the test's ReaderState, alive for the whole test; len a live u64.
    let r = unsafe { &*(opaque as *const ReaderState) };
    if r.armed.load(Ordering::SeqCst) {
        r.inside.fetch_add(1, Ordering::SeqCst);
        while !r.open.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }
    if r.released.load(Ordering::SeqCst) {
        r.late.fetch_add(1, Ordering::SeqCst);
    }
    unsafe { *len = MIB };
    0
}

/// A device model's handler that frees the VFIO device from inside its own callback when
/// told to, as a VMM tearing a device down from a device callback would.
#[derive(Default)]
struct Freer {
    device: AtomicPtr<SwoVfio>,
    free_now: AtomicBool,
    message: std::sync::Mutex<String>,
}

unsafe extern "C" fn freer_query(opaque: *mut c_void, _p: *mut SwoPending, _exact: bool, _final: bool) {
    // SAFETY: opaque is the test's Freer, alive for the whole test.
    let f = unsafe { &*(opaque as *const Freer) };
    if f.free_now.swap(false, Ordering::SeqCst) {
        // SAFETY: a live device handle.
        unsafe { swo_vfio_free(f.device.load(Ordering::SeqCst)) };
        *f.message.lock().unwrap() = last_error();
    }
}

fn query(s: *mut SwoSession, exact: bool) -> u64 {
    let mut p = SwoPending::default();
    // SAFETY: live session, valid out-pointer.
    assert_eq!(unsafe { swo_query_pending(s, exact, &mut p) }, SWO_OK);
    p.total_bytes
}

struct Session(*mut SwoSession);
// SAFETY: the C contract lets any thread call into a session.
unsafe impl Send for Session {}
unsafe impl Sync for Session {}

#[test]
fn vfio_free_from_a_callback_frees_nothing_and_a_later_free_waits_for_the_running_reader() {
    let mut s = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { swo_session_new(&mut s) }, SWO_OK);
    let session = Arc::new(Session(s));
    let reader = Arc::new(ReaderState::default());
    let ops = SwoVfioOps {
        struct_size: std::mem::size_of::<SwoVfioOps>() as u32,
        reserved: 0,
        query_stop_copy_size: Some(stop_copy_size),
        query_precopy_info: None,
    };
    let mut v = null_mut();
    let opaque = Arc::as_ptr(&reader) as *mut c_void;
    // SAFETY: live session, valid name, ops and out-pointer; `reader` outlives the device.
    assert_eq!(unsafe { swo_vfio_new(s, c"vgpu".as_ptr(), &ops, opaque, &mut v) }, SWO_OK);
    let freer = Arc::new(Freer::default());
    freer.device.store(v, Ordering::SeqCst);
    let handler_ops = SwoHandlerOps {
        struct_size: std::mem::size_of::<SwoHandlerOps>() as u32,
        flags: 0,
        save_query_pending: Some(freer_query),
        is_active: None,
    };
    let mut id = 0u64;
    let freer_opaque = Arc::as_ptr(&freer) as *mut c_void;
    // SAFETY: live session, valid name, ops and out-pointer; `freer` outlives the session.
    let rc = unsafe { swo_register_handler(s, c"freer".as_ptr(), 0, &handler_ops, freer_opaque, &mut id) };
    assert_eq!(rc, SWO_OK);

    // The migration thread's exact query sits in the device's reader.
    reader.armed.store(true, Ordering::SeqCst);
    let migration = {
        let session = session.clone();
        std::thread::spawn(move || query(session.0, true))
    };
    while reader.inside.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }

    // Another thread frees the device from a callback of the same session: refused, since it
    // cannot wait there for the reader call the migration thread is making.
    freer.free_now.store(true, Ordering::SeqCst);
    assert_eq!(query(s, false), MIB, "the device still reports after the refused free");
    let message = freer.message.lock().unwrap().clone();
    assert!(message.contains("swo_vfio_free") && message.contains("callback"), "{message}");
    let mut sizes = SwoVfioSizes::default();
    // SAFETY: the handle is still valid after the refused free.
    assert_eq!(unsafe { swo_vfio_get_sizes(v, &mut sizes) }, SWO_OK);
    assert_eq!(sizes.stopcopy_size, MIB);

    // From outside a callback the free unregisters, waiting for the reader call in flight;
    // once it returns the VMM releases the opaque.
    let freeing = {
        let (reader, v) = (reader.clone(), v as usize);
        std::thread::spawn(move || {
            // SAFETY: the live handle, not used by anyone else from now on.
            unsafe { swo_vfio_free(v as *mut SwoVfio) };
            reader.released.store(true, Ordering::SeqCst);
        })
    };
    // Give a wrong free the chance to return early (a correct one cannot).
    std::thread::sleep(std::time::Duration::from_millis(2));
    reader.open.store(true, Ordering::SeqCst);
    assert_eq!(migration.join().unwrap(), MIB);
    freeing.join().unwrap();
    assert_eq!(
        reader.late.load(Ordering::SeqCst),
        0,
        "a reader call was still running after swo_vfio_free returned (its opaque released)"
    );
    let inside = reader.inside.load(Ordering::SeqCst);
    assert_eq!(query(s, true), 0, "the freed device is gone");
    assert_eq!(reader.inside.load(Ordering::SeqCst), inside, "and its reader is not called");
    // SAFETY: the live session; nothing else uses it now.
    unsafe { swo_session_free(s) };
}
