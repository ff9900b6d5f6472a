//! The C ABI's status codes and their names, the per-thread error message, NULL arguments and
//! the pending-data (registry) calls, called from Rust through `switchover::ffi`.
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};
use switchover::ffi::params::swo_size_to_str;
use switchover::ffi::pending::{swo_query_pending, swo_register_handler, swo_unregister_handler};
use switchover::ffi::session::{swo_session_free, swo_session_new, swo_session_set_vmm_ops};
use switchover::ffi::status::{swo_last_error_message, swo_status_name, swo_version};
use switchover::ffi::*;
use switchover::Code;

fn last_message() -> String {
    let mut len = 0usize;
    // SAFETY: NULL buffer with len 0 asks the length; `len` is a live usize.
    assert_eq!(unsafe { swo_last_error_message(null_mut(), 0, &mut len) }, SWO_OK);
    let mut buf = vec![0 as c_char; len + 1];
    // SAFETY: `buf` holds len + 1 bytes.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: the library wrote a NUL-terminated string into `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

struct OwnedSession(*mut SwoSession);

impl OwnedSession {
    fn new() -> OwnedSession {
        let mut s = null_mut();
        // SAFETY: `s` is a live out-pointer.
        assert_eq!(unsafe { swo_session_new(&mut s) }, SWO_OK);
        assert!(!s.is_null());
        OwnedSession(s)
    }
}

impl Drop for OwnedSession {
    fn drop(&mut self) {
        // SAFETY: from swo_session_new, freed once.
        unsafe { swo_session_free(self.0) }
    }
}

/// The opaque of a test handler: fixed figures.
#[repr(C)]
struct Figures {
    precopy: u64,
    stopcopy: u64,
    postcopy: u64,
}

unsafe extern "C" fn add_figures(opaque: *mut c_void, p: *mut SwoPending, _exact: bool, _final: bool) {
    // SAFETY: the tests register a `Figures` as opaque; `p` is the library's zeroed struct.
    let (f, p) = unsafe { (&*(opaque as *const Figures), &mut *p) };
    assert_eq!(*p, SwoPending::default(), "each handler gets its own zeroed SwoPending");
    p.precopy_bytes += f.precopy;
    p.stopcopy_bytes += f.stopcopy;
    p.postcopy_bytes += f.postcopy;
    p.total_bytes = 0xdead_beef; // garbage the library must ignore
}

const OPS: SwoHandlerOps = SwoHandlerOps {
    struct_size: std::mem::size_of::<SwoHandlerOps>() as u32,
    flags: 0,
    save_query_pending: Some(add_figures),
    is_active: None,
};

fn register(s: &OwnedSession, idstr: &CStr, instance: u32, ops: &SwoHandlerOps, f: &Figures) -> (SwoStatus, u64) {
    let mut id = 0;
    // SAFETY: live session, NUL-terminated idstr, live ops; `f` outlives the handler in
    // every test (they unregister or free the session before `f` goes).
    let st = unsafe { swo_register_handler(s.0, idstr.as_ptr(), instance, ops, f as *const _ as *mut c_void, &mut id) };
    (st, id)
}

fn query(s: &OwnedSession, exact: bool) -> SwoPending {
    let mut p = SwoPending::default();
    // SAFETY: live session and out-pointer.
    assert_eq!(unsafe { swo_query_pending(s.0, exact, &mut p) }, SWO_OK);
    p
}

fn status_name(code: SwoStatus) -> String {
    // SAFETY: swo_status_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(swo_status_name(code)) }.to_str().unwrap().to_owned()
}

#[test]
fn status_codes_have_the_design_numbers_and_names() {
    let expected = [
        (SWO_OK, "SWO_OK"),
        (SWO_ERR_NULL_ARG, "SWO_ERR_NULL_ARG"),
        (SWO_ERR_INVALID_ARG, "SWO_ERR_INVALID_ARG"),
        (SWO_ERR_OUT_OF_RANGE, "SWO_ERR_OUT_OF_RANGE"),
        (SWO_ERR_PARSE, "SWO_ERR_PARSE"),
        (SWO_ERR_BAD_STATE, "SWO_ERR_BAD_STATE"),
        (SWO_ERR_NOT_FOUND, "SWO_ERR_NOT_FOUND"),
        (SWO_ERR_EXISTS, "SWO_ERR_EXISTS"),
        (SWO_ERR_BUFFER_TOO_SMALL, "SWO_ERR_BUFFER_TOO_SMALL"),
        (SWO_ERR_REENTRANT, "SWO_ERR_REENTRANT"),
        (SWO_ERR_IO, "SWO_ERR_IO"),
        (SWO_ERR_UNSUPPORTED, "SWO_ERR_UNSUPPORTED"),
        (SWO_ERR_PANIC, "SWO_ERR_PANIC"),
    ];
    for (number, (code, name)) in expected.iter().enumerate() {
        assert_eq!(*code as usize, number);
        assert_eq!(status_name(*code), *name);
        assert_eq!(Code::from_u32(*code).unwrap().name(), *name);
        assert_eq!(Code::ALL[number] as u32, *code);
    }
    assert_eq!(status_name(13), "SWO_ERR_UNKNOWN");
    assert_eq!(status_name(u32::MAX), "SWO_ERR_UNKNOWN");
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(swo_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

#[test]
fn last_error_message_is_per_thread_and_follows_the_buffer_convention() {
    let s = OwnedSession::new();
    // SAFETY: live session.
    assert_eq!(unsafe { swo_unregister_handler(s.0, 4711) }, SWO_ERR_NOT_FOUND);
    let mine = last_message();
    assert!(mine.contains("4711"), "{mine}");

    let theirs = std::thread::spawn(|| {
        let fresh = last_message();
        // SAFETY: NULL out is the point.
        assert_eq!(unsafe { swo_session_new(null_mut()) }, SWO_ERR_NULL_ARG);
        (fresh, last_message())
    })
    .join()
    .unwrap();
    assert_eq!(theirs.0, "", "a thread that never failed has an empty message");
    assert!(theirs.1.contains("out"), "{}", theirs.1);
    assert_eq!(last_message(), mine, "another thread's failure changed this thread's message");

    // Too small (no room for the NUL): untouched, and out_len still says the length.
    let mut buf = [b'X' as c_char; 64];
    let mut len = 0;
    // SAFETY: `buf` is writable for the length passed.
    let st = unsafe { swo_last_error_message(buf.as_mut_ptr(), mine.len(), &mut len) };
    assert_eq!(st, SWO_ERR_BUFFER_TOO_SMALL);
    assert_eq!(len, mine.len());
    assert!(buf.iter().all(|&c| c == b'X' as c_char));
    // SAFETY: as above; exactly text + NUL.
    let st = unsafe { swo_last_error_message(buf.as_mut_ptr(), mine.len() + 1, &mut len) };
    assert_eq!(st, SWO_OK);
    assert_eq!(buf[mine.len()], 0);
    assert_eq!(buf[mine.len() + 1], b'X' as c_char);
    // SAFETY: out_len NULL / buf NULL with a length are the point.
    unsafe {
        assert_eq!(swo_last_error_message(buf.as_mut_ptr(), buf.len(), null_mut()), SWO_ERR_NULL_ARG);
        assert_eq!(swo_last_error_message(null_mut(), 8, &mut len), SWO_ERR_NULL_ARG);
    }
}

#[test]
fn buckets_sum_and_garbage_saturates_through_the_c_abi() {
    let s = OwnedSession::new();
    let a = Figures { precopy: u64::MAX, stopcopy: u64::MAX, postcopy: 0 };
    let b = Figures { precopy: u64::MAX, stopcopy: 1, postcopy: u64::MAX };
    let (st, ia) = register(&s, c"a", 0, &OPS, &a);
    assert_eq!(st, SWO_OK);
    let (st, ib) = register(&s, c"b", 0, &OPS, &b);
    assert_eq!(st, SWO_OK);
    let p = query(&s, true);
    assert_eq!(
        p,
        SwoPending { precopy_bytes: u64::MAX, stopcopy_bytes: u64::MAX, postcopy_bytes: u64::MAX, total_bytes: u64::MAX }
    );
    // SAFETY: live session.
    unsafe {
        assert_eq!(swo_unregister_handler(s.0, ia), SWO_OK);
        assert_eq!(swo_unregister_handler(s.0, ib), SWO_OK);
    }
    let ram = Figures { precopy: 1000, stopcopy: 0, postcopy: 0 };
    let vfio = Figures { precopy: 10, stopcopy: 2_000_000_000, postcopy: 0 };
    let block = Figures { precopy: 0, stopcopy: 0, postcopy: 5 };
    assert_eq!(register(&s, c"ram", 0, &OPS, &ram).0, SWO_OK);
    assert_eq!(register(&s, c"vfio", 0, &OPS, &vfio).0, SWO_OK);
    assert_eq!(register(&s, c"block", 0, &OPS, &block).0, SWO_OK);
    let p = query(&s, false);
    assert_eq!(
        p,
        SwoPending { precopy_bytes: 1010, stopcopy_bytes: 2_000_000_000, postcopy_bytes: 5, total_bytes: 2_000_001_015 }
    );
    drop(s); // frees the session with three handlers registered
}

#[test]
fn bad_registrations_are_refused_with_the_documented_codes() {
    let s = OwnedSession::new();
    let f = Figures { precopy: 1, stopcopy: 0, postcopy: 0 };
    assert_eq!(register(&s, c"vfio", 0, &OPS, &f).0, SWO_OK);
    assert_eq!(register(&s, c"vfio", 0, &OPS, &f).0, SWO_ERR_EXISTS);
    let short = SwoHandlerOps { struct_size: OPS.struct_size - 1, ..OPS };
    assert_eq!(register(&s, c"x", 0, &short, &f).0, SWO_ERR_INVALID_ARG);
    let no_callback = SwoHandlerOps { save_query_pending: None, ..OPS };
    assert_eq!(register(&s, c"x", 0, &no_callback, &f).0, SWO_ERR_INVALID_ARG);
    for bits in [1 << 2, 1 << 31, u32::MAX] {
        let bad_flags = SwoHandlerOps { flags: bits, ..OPS };
        assert_eq!(register(&s, c"x", 0, &bad_flags, &f).0, SWO_ERR_INVALID_ARG);
    }
    let known = SwoHandlerOps { flags: SWO_HANDLER_EXACT_NEEDS_STOPPED_VM | SWO_HANDLER_NO_POSTCOPY, ..OPS };
    assert_eq!(register(&s, c"x", 0, &known, &f).0, SWO_OK);
    assert_eq!(register(&s, c"", 0, &OPS, &f).0, SWO_ERR_INVALID_ARG);
    assert_eq!(query(&s, false).total_bytes, 2);
    // SAFETY: live session.
    assert_eq!(unsafe { swo_unregister_handler(s.0, 0) }, SWO_ERR_NOT_FOUND);
}

#[test]
fn null_pointer_arguments_give_null_arg() {
    let s = OwnedSession::new();
    let f = Figures { precopy: 1, stopcopy: 0, postcopy: 0 };
    let fp = &f as *const Figures as *mut c_void;
    let vmm = SwoVmmOps {
        struct_size: std::mem::size_of::<SwoVmmOps>() as u32,
        reserved: 0,
        vm_stop: None,
        vm_resume: None,
        event: None,
    };
    let mut id = 77u64;
    let mut p = SwoPending { precopy_bytes: 1, stopcopy_bytes: 2, postcopy_bytes: 3, total_bytes: 4 };
    // SAFETY: every pointer is either NULL (the point of the test) or live.
    unsafe {
        assert_eq!(swo_session_new(null_mut()), SWO_ERR_NULL_ARG);
        swo_session_free(null_mut());
        assert_eq!(swo_session_set_vmm_ops(null_mut(), &vmm, null_mut()), SWO_ERR_NULL_ARG);
        assert_eq!(swo_session_set_vmm_ops(s.0, null(), null_mut()), SWO_ERR_NULL_ARG);
        assert_eq!(swo_session_set_vmm_ops(s.0, &vmm, null_mut()), SWO_OK);
        assert_eq!(swo_register_handler(null_mut(), c"d".as_ptr(), 0, &OPS, fp, &mut id), SWO_ERR_NULL_ARG);
        assert_eq!(swo_register_handler(s.0, null(), 0, &OPS, fp, &mut id), SWO_ERR_NULL_ARG);
        assert!(last_message().contains("idstr"));
        assert_eq!(swo_register_handler(s.0, c"d".as_ptr(), 0, null(), fp, &mut id), SWO_ERR_NULL_ARG);
        assert_eq!(swo_register_handler(s.0, c"d".as_ptr(), 0, &OPS, fp, null_mut()), SWO_ERR_NULL_ARG);
        assert_eq!(id, 77, "out_id is written only on success");
        assert_eq!(swo_unregister_handler(null_mut(), 1), SWO_ERR_NULL_ARG);
        assert_eq!(swo_query_pending(null_mut(), false, &mut p), SWO_ERR_NULL_ARG);
        assert_eq!(p.total_bytes, 4, "out is written only on success");
        assert_eq!(swo_query_pending(s.0, false, null_mut()), SWO_ERR_NULL_ARG);
        // opaque may be NULL
        assert_eq!(swo_register_handler(s.0, c"d".as_ptr(), 0, &OPS, null_mut(), &mut id), SWO_OK);
        assert_eq!(swo_unregister_handler(s.0, id), SWO_OK);
        assert_eq!(swo_size_to_str(0, null_mut(), 0), "0 B".len());
    }
}
