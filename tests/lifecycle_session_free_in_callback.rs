//! Lifecycle: `swo_session_free` from a callback of its own session used to free the
//! session under the query running the callback (a use-after-free inside the library). It is
//! refused now: nothing is freed, the handle stays valid, the last error message says why.
use std::ffi::{c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use switchover::ffi::pending::{swo_query_pending, swo_register_handler};
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::status::swo_last_error_message;
use switchover::ffi::*;

fn last_error() -> String {
    let mut buf = [0 as std::ffi::c_char; 512];
    let mut len = 0usize;
    // SAFETY: buf is writable for its length.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

#[derive(Default)]
struct Vmm {
    session: AtomicPtr<SwoSession>,
    calls: AtomicU64,
    message: std::sync::Mutex<String>,
}

unsafe extern "C" fn frees_its_session(opaque: *mut c_void, p: *mut SwoPending, _e: bool, _f: bool) {
    // SAFETY: opaque is the test's Vmm; p a live SwoPending.
    let vmm = unsafe { &*(opaque as *const Vmm) };
    if vmm.calls.fetch_add(1, Ordering::SeqCst) == 0 {
        // SAFETY: the live session whose query runs this callback.
        unsafe { swo_session_free(vmm.session.load(Ordering::SeqCst)) };
        *vmm.message.lock().unwrap() = last_error();
    }
    unsafe { (*p).precopy_bytes += 4096 };
}

#[test]
fn session_free_from_a_callback_of_that_session_frees_nothing_and_says_why() {
    let vmm = Box::new(Vmm::default());
    let mut s = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { swo_session_new(&mut s) }, SWO_OK);
    vmm.session.store(s, Ordering::SeqCst);
    let ops = SwoHandlerOps {
        struct_size: std::mem::size_of::<SwoHandlerOps>() as u32,
        flags: 0,
        save_query_pending: Some(frees_its_session),
        is_active: None,
    };
    let mut id = 0;
    let opaque = &*vmm as *const Vmm as *mut c_void;
    // SAFETY: live session, valid name, ops and out-pointer; `vmm` outlives the session.
    assert_eq!(unsafe { swo_register_handler(s, c"dev".as_ptr(), 0, &ops, opaque, &mut id) }, SWO_OK);
    let mut p = SwoPending::default();
    // SAFETY: live session, valid out-pointer.
    assert_eq!(unsafe { swo_query_pending(s, false, &mut p) }, SWO_OK);
    assert_eq!(p.total_bytes, 4096);
    let message = vmm.message.lock().unwrap().clone();
    assert!(message.contains("swo_session_free") && message.contains("callback"), "{message}");
    // The session is intact: it still answers, and frees normally from outside a callback.
    // SAFETY: as above.
    assert_eq!(unsafe { swo_query_pending(s, false, &mut p) }, SWO_OK);
    assert_eq!((p.total_bytes, vmm.calls.load(Ordering::SeqCst)), (4096, 2));
    // SAFETY: the live session, not used afterwards.
    unsafe { swo_session_free(s) };
}
