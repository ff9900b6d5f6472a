//! The built-in RAM model through its extern "C" functions (issue 3, item 5).
use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use switchover::ffi::pending::swo_query_pending;
use switchover::ffi::ram::*;
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::status::swo_last_error_message;
use switchover::ffi::*;

const GIB: u64 = 1 << 30;

fn new_session() -> *mut SwoSession {
    let mut s = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { swo_session_new(&mut s) }, SWO_OK);
    s
}

fn last_error() -> String {
    let mut buf = [0 as std::ffi::c_char; 512];
    let mut len = 0usize;
    // SAFETY: buf is writable for its length.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// State a C VMM would keep behind `opaque`.
#[derive(Default)]
struct Vmm {
    calls: AtomicU64,
    dirty: AtomicU64,
    newly: AtomicU64,
}

unsafe extern "C" fn sync_dirty(opaque: *mut c_void, newly: *mut u64) -> u64 {
    // SAFETY: opaque is the test's Vmm, newly a live out-pointer.
    let vmm = unsafe { &*(opaque as *const Vmm) };
    vmm.calls.fetch_add(1, Ordering::SeqCst);
    unsafe { *newly = vmm.newly.load(Ordering::SeqCst) };
    vmm.dirty.load(Ordering::SeqCst)
}

fn ops() -> SwoRamOps {
    SwoRamOps {
        struct_size: std::mem::size_of::<SwoRamOps>() as u32,
        reserved: 0,
        sync_dirty: Some(sync_dirty),
    }
}

fn query(s: *mut SwoSession, exact: bool) -> SwoPending {
    let mut p = SwoPending::default();
    // SAFETY: live session, valid out-pointer.
    assert_eq!(unsafe { swo_query_pending(s, exact, &mut p) }, SWO_OK);
    p
}

fn figures(ram: *const SwoRam) -> SwoRamFigures {
    let mut f = SwoRamFigures::default();
    // SAFETY: live handle, valid out-pointer.
    assert_eq!(unsafe { swo_ram_get_figures(ram, &mut f) }, SWO_OK);
    f
}

#[test]
fn fast_and_exact_queries_through_the_c_abi() {
    let s = new_session();
    let vmm = Vmm::default();
    let mut ram = null_mut();
    let o = ops();
    unsafe {
        assert_eq!(swo_ram_new(s, GIB, 4096, &o, &vmm as *const Vmm as *mut c_void, &mut ram), SWO_OK);
        assert_eq!(swo_ram_set_dirty_pages(ram, 1000), SWO_OK);
    }
    assert_eq!(query(s, false).precopy_bytes, 4_096_000);
    assert_eq!(vmm.calls.load(Ordering::SeqCst), 0);
    vmm.dirty.store(10, Ordering::SeqCst);
    let p = query(s, true);
    assert_eq!(vmm.calls.load(Ordering::SeqCst), 1);
    assert_eq!((p.precopy_bytes, p.total_bytes), (40_960, 40_960));
    unsafe {
        assert_eq!(swo_ram_record_sent(ram, 6, 2), SWO_OK);
    }
    let f = figures(ram);
    assert_eq!(
        f,
        SwoRamFigures {
            total_bytes: GIB,
            page_size: 4096,
            normal_pages: 6,
            zero_pages: 2,
            dirty_pages: 2,
            dirty_pages_rate: 0,
            // The library wrote its whole layout and said so.
            ..SwoRamFigures::default()
        }
    );
    unsafe {
        swo_ram_free(ram);
        swo_session_free(s);
    }
}

#[test]
fn null_ops_and_null_sync_dirty_are_allowed_and_never_sync() {
    let s = new_session();
    let mut ram = null_mut();
    let mut o = ops();
    o.sync_dirty = None;
    unsafe {
        assert_eq!(swo_ram_new(s, GIB, 4096, null(), null_mut(), &mut ram), SWO_OK);
        assert_eq!(swo_ram_set_dirty_pages(ram, 5), SWO_OK);
        assert_eq!(query(s, true).precopy_bytes, 5 * 4096);
        swo_ram_free(ram);
        let mut ram2 = null_mut();
        assert_eq!(swo_ram_new(s, GIB, 4096, &o, null_mut(), &mut ram2), SWO_OK);
        assert_eq!(query(s, true).precopy_bytes, 0);
        swo_ram_free(ram2);
        swo_session_free(s);
    }
}

#[test]
fn every_null_pointer_argument_is_refused() {
    let s = new_session();
    let mut ram = null_mut();
    let o = ops();
    let mut f = SwoRamFigures::default();
    unsafe {
        assert_eq!(swo_ram_new(null_mut(), GIB, 4096, &o, null_mut(), &mut ram), SWO_ERR_NULL_ARG);
        assert!(last_error().contains("session"), "{}", last_error());
        assert!(ram.is_null());
        assert_eq!(swo_ram_new(s, GIB, 4096, &o, null_mut(), null_mut()), SWO_ERR_NULL_ARG);
        assert!(last_error().contains("out"), "{}", last_error());
        assert_eq!(swo_ram_set_dirty_pages(null_mut(), 1), SWO_ERR_NULL_ARG);
        assert_eq!(swo_ram_record_sent(null_mut(), 1, 1), SWO_ERR_NULL_ARG);
        assert_eq!(swo_ram_get_figures(null(), &mut f), SWO_ERR_NULL_ARG);
        assert_eq!(swo_ram_new(s, GIB, 4096, &o, null_mut(), &mut ram), SWO_OK);
        assert_eq!(swo_ram_get_figures(ram, null_mut()), SWO_ERR_NULL_ARG);
        swo_ram_free(null_mut());
        swo_ram_free(ram);
        swo_session_free(s);
    }
}

#[test]
fn bad_sizes_and_bad_ops_are_refused_with_a_message_and_leave_out_untouched() {
    let s = new_session();
    let sentinel = 0x1 as *mut SwoRam;
    let cases: [(u64, u64, SwoStatus, &str); 6] = [
        (GIB, 0, SWO_ERR_INVALID_ARG, "power of two"),
        (GIB, 4097, SWO_ERR_INVALID_ARG, "4097"),
        (GIB, 256, SWO_ERR_OUT_OF_RANGE, "256"),
        (1 << 40, 1 << 31, SWO_ERR_OUT_OF_RANGE, "2147483648"),
        (0, 4096, SWO_ERR_INVALID_ARG, "must not be 0"),
        (GIB + 512, 4096, SWO_ERR_INVALID_ARG, "not a multiple"),
    ];
    let o = ops();
    for (total, page, code, words) in cases {
        let mut ram = sentinel;
        assert_eq!(unsafe { swo_ram_new(s, total, page, &o, null_mut(), &mut ram) }, code);
        assert!(last_error().contains(words), "{}", last_error());
        assert_eq!(ram, sentinel);
    }
    let mut small = ops();
    small.struct_size = 8;
    let mut reserved = ops();
    reserved.reserved = 1;
    for bad in [small, reserved] {
        let mut ram = sentinel;
        assert_eq!(unsafe { swo_ram_new(s, GIB, 4096, &bad, null_mut(), &mut ram) }, SWO_ERR_INVALID_ARG);
        assert!(last_error().contains("SwoRamOps"), "{}", last_error());
        assert_eq!(ram, sentinel);
    }
    // Nothing was registered by the refused calls.
    assert_eq!(query(s, true).total_bytes, 0);
    let mut ram = null_mut();
    unsafe {
        assert_eq!(swo_ram_new(s, GIB, 4096, &o, null_mut(), &mut ram), SWO_OK);
        swo_ram_free(ram);
        swo_session_free(s);
    }
}

#[test]
fn second_model_exists_and_too_many_dirty_pages_is_out_of_range() {
    let s = new_session();
    let (mut a, mut b) = (null_mut(), null_mut());
    unsafe {
        assert_eq!(swo_ram_new(s, GIB, 4096, null(), null_mut(), &mut a), SWO_OK);
        assert_eq!(swo_ram_new(s, GIB, 4096, null(), null_mut(), &mut b), SWO_ERR_EXISTS);
        assert!(b.is_null());
        assert_eq!(swo_ram_set_dirty_pages(a, 100), SWO_OK);
        assert_eq!(swo_ram_set_dirty_pages(a, 262_145), SWO_ERR_OUT_OF_RANGE);
        assert_eq!(figures(a).dirty_pages, 100);
        swo_ram_free(a);
        swo_session_free(s);
    }
}

#[test]
fn the_model_outlives_a_session_freed_first() {
    let s = new_session();
    let mut ram = null_mut();
    unsafe {
        assert_eq!(swo_ram_new(s, GIB, 4096, null(), null_mut(), &mut ram), SWO_OK);
        swo_session_free(s);
        assert_eq!(swo_ram_record_sent(ram, 1, 1), SWO_OK);
        assert_eq!(figures(ram).normal_pages, 1);
        swo_ram_free(ram);
    }
}

struct Reenter {
    session: *mut SwoSession,
    ram: AtomicUsize,
    query_code: AtomicU64,
    free_code_seen: AtomicBool,
}

unsafe extern "C" fn reentering_sync(opaque: *mut c_void, _newly: *mut u64) -> u64 {
    // SAFETY: the test's Reenter.
    let r = unsafe { &*(opaque as *const Reenter) };
    let mut p = SwoPending::default();
    let code = unsafe { swo_query_pending(r.session, false, &mut p) };
    r.query_code.store(code as u64, Ordering::SeqCst);
    // Freeing the model from its own callback cannot wait: it must stay alive.
    let ram = r.ram.load(Ordering::SeqCst) as *mut SwoRam;
    unsafe { swo_ram_free(ram) };
    r.free_code_seen.store(last_error().contains("REENTRANT") || last_error().contains("would wait"), Ordering::SeqCst);
    3
}

#[test]
fn callbacks_that_query_or_free_get_reentrant_and_nothing_breaks() {
    let s = new_session();
    let r = Reenter {
        session: s,
        ram: AtomicUsize::new(0),
        query_code: AtomicU64::new(u64::MAX),
        free_code_seen: AtomicBool::new(false),
    };
    let o = SwoRamOps { sync_dirty: Some(reentering_sync), ..ops() };
    let mut ram = null_mut();
    unsafe {
        assert_eq!(swo_ram_new(s, GIB, 4096, &o, &r as *const Reenter as *mut c_void, &mut ram), SWO_OK);
    }
    r.ram.store(ram as usize, Ordering::SeqCst);
    assert_eq!(query(s, true).precopy_bytes, 3 * 4096);
    assert_eq!(r.query_code.load(Ordering::SeqCst), SWO_ERR_REENTRANT as u64);
    assert!(r.free_code_seen.load(Ordering::SeqCst));
    // Still registered and usable.
    assert_eq!(query(s, false).precopy_bytes, 3 * 4096);
    unsafe {
        swo_ram_free(ram);
    }
    assert_eq!(query(s, true).total_bytes, 0);
    unsafe { swo_session_free(s) };
}
