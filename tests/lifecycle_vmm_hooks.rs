//! Issue 13, defects 1 and 5: the VMM's hooks are callbacks like every other, through the C
//! ABI (these tests also run under Miri, scripts/miri.sh).
//!
//! 1. The `event` hook ran without the thread being marked as inside a callback of the
//!    session: `swo_session_free` from it freed the session under the loop delivering the
//!    events (use-after-free), `swo_ram_free` / `swo_vfio_free` freed their handles. Now each
//!    is refused there: nothing is freed, the last error message says why.
//! 5. `swo_session_set_vmm_ops` returned while another thread was still inside the old hook,
//!    so the VMM could not know when the old `opaque` might go. It now waits for such callers,
//!    as `swo_unregister_handler` waits for a handler's callbacks, and is refused from a
//!    callback of the same session (it would wait for itself).
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use switchover::ffi::engine::{swo_cancel, swo_get_status, swo_migration_start, swo_setup_done};
use switchover::ffi::params::swo_set_capability;
use switchover::ffi::ram::{swo_ram_free, swo_ram_new, swo_ram_set_dirty_pages, SwoRam};
use switchover::ffi::session::{swo_session_free, swo_session_new, swo_session_set_vmm_ops};
use switchover::ffi::status::swo_last_error_message;
use switchover::ffi::vfio::{swo_vfio_free, swo_vfio_new, swo_vfio_record_read, SwoVfio, SwoVfioOps};
use switchover::ffi::*;

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0usize;
    // SAFETY: buf is writable for its length.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

fn vmm_ops(event: unsafe extern "C" fn(*mut c_void, *const c_char)) -> SwoVmmOps {
    SwoVmmOps {
        struct_size: std::mem::size_of::<SwoVmmOps>() as u32,
        reserved: 0,
        vm_stop: None,
        vm_resume: None,
        event: Some(event),
    }
}

/// What the VMM keeps behind the event hook's opaque.
#[derive(Default)]
struct Teardown {
    which: AtomicU32, // 0 session, 1 ram, 2 vfio
    trigger: Mutex<&'static str>,
    session: AtomicPtr<SwoSession>,
    ram: AtomicPtr<SwoRam>,
    vfio: AtomicPtr<SwoVfio>,
    frees: AtomicU64,
    message: Mutex<String>,
}

unsafe extern "C" fn tear_down_on_event(opaque: *mut c_void, json: *const c_char) {
    // SAFETY: opaque is the test's Teardown, alive for the session; json a live C string.
    let t = unsafe { &*(opaque as *const Teardown) };
    let json = unsafe { CStr::from_ptr(json) }.to_str().unwrap();
    if !json.contains(*t.trigger.lock().unwrap()) || t.frees.fetch_add(1, Ordering::SeqCst) != 0 {
        return;
    }
    // A known message first: a free that "succeeds" silently leaves it in place.
    // SAFETY: a NULL out-pointer is refused.
    assert_eq!(unsafe { swo_session_new(null_mut()) }, SWO_ERR_NULL_ARG);
    // SAFETY: live handles of the session whose call runs this hook.
    unsafe {
        match t.which.load(Ordering::SeqCst) {
            0 => swo_session_free(t.session.load(Ordering::SeqCst)),
            1 => swo_ram_free(t.ram.load(Ordering::SeqCst)),
            _ => swo_vfio_free(t.vfio.load(Ordering::SeqCst)),
        }
    }
    *t.message.lock().unwrap() = last_error();
}

fn session_tearing_down(t: &Teardown) -> *mut SwoSession {
    let mut s = null_mut();
    // SAFETY: valid out-pointer, ops and names; `t` outlives the session.
    unsafe {
        assert_eq!(swo_session_new(&mut s), SWO_OK);
        let ops = vmm_ops(tear_down_on_event);
        assert_eq!(swo_session_set_vmm_ops(s, &ops, t as *const Teardown as *mut c_void), SWO_OK);
        assert_eq!(swo_set_capability(s, c"events".as_ptr(), true), SWO_OK);
    }
    t.session.store(s, Ordering::SeqCst);
    s
}

fn assert_refused(t: &Teardown, call: &str) {
    assert_eq!(t.frees.load(Ordering::SeqCst), 1, "the hook ran its free once");
    let message = t.message.lock().unwrap().clone();
    assert_eq!(
        message,
        format!("{call} called from a callback of the same session; it would wait for itself")
    );
}

#[test]
fn session_free_from_the_event_hook_frees_nothing() {
    let t = Teardown::default();
    *t.trigger.lock().unwrap() = "\"setup\"";
    let s = session_tearing_down(&t);
    // SAFETY: live session throughout; freed once at the end.
    unsafe {
        assert_eq!(swo_migration_start(s, 1000), SWO_OK);
        assert_refused(&t, "swo_session_free");
        assert_eq!(swo_get_status(s), SWO_STATUS_SETUP);
        assert_eq!(swo_setup_done(s, 1010), SWO_OK);
        assert_eq!(swo_cancel(s, 1020), SWO_OK);
        assert_eq!(swo_get_status(s), SWO_STATUS_CANCELLED);
        swo_session_free(s);
    }
}

#[test]
fn ram_free_from_the_event_hook_frees_nothing() {
    let t = Teardown { which: AtomicU32::new(1), ..Teardown::default() };
    *t.trigger.lock().unwrap() = "\"setup\"";
    let s = session_tearing_down(&t);
    // SAFETY: live handles; each freed once at the end.
    unsafe {
        let mut ram = null_mut();
        assert_eq!(swo_ram_new(s, 1 << 20, 4096, std::ptr::null(), null_mut(), &mut ram), SWO_OK);
        t.ram.store(ram, Ordering::SeqCst);
        assert_eq!(swo_migration_start(s, 1000), SWO_OK);
        assert_refused(&t, "swo_ram_free");
        assert_eq!(swo_ram_set_dirty_pages(ram, 256), SWO_OK);
        assert_eq!(swo_ram_set_dirty_pages(ram, 257), SWO_ERR_OUT_OF_RANGE);
        swo_ram_free(ram);
        swo_session_free(s);
    }
}

unsafe extern "C" fn failing_stop_copy(_opaque: *mut c_void, _len: *mut u64) -> c_int {
    -libc::EIO
}

#[test]
fn vfio_free_from_the_event_hook_frees_nothing() {
    let t = Teardown { which: AtomicU32::new(2), ..Teardown::default() };
    *t.trigger.lock().unwrap() = "\"DEVICE_SIZE_WARNING\"";
    let s = session_tearing_down(&t);
    let ops = SwoVfioOps {
        struct_size: std::mem::size_of::<SwoVfioOps>() as u32,
        reserved: 0,
        query_stop_copy_size: Some(failing_stop_copy),
        query_precopy_info: None,
    };
    // SAFETY: live handles; each freed once at the end. `*out` is written before the
    // warning is delivered, so the hook sees the device through `t.vfio`.
    unsafe {
        let out = t.vfio.as_ptr();
        assert_eq!(swo_vfio_new(s, c"0000:3b:00.0".as_ptr(), &ops, null_mut(), out), SWO_OK);
        assert_refused(&t, "swo_vfio_free");
        let v = t.vfio.load(Ordering::SeqCst);
        assert_eq!(swo_vfio_record_read(v, 4096), SWO_OK);
        swo_vfio_free(v);
        swo_session_free(s);
    }
}

/// The old hook's opaque: once `armed`, a call blocks inside the hook until `open`; a call
/// made after the VMM "freed" it (`freed`) counts as late.
#[derive(Default)]
struct OldHook {
    armed: AtomicBool,
    inside: AtomicU64,
    open: AtomicBool,
    freed: AtomicBool,
    late: AtomicU64,
}

unsafe extern "C" fn old_event(opaque: *mut c_void, _json: *const c_char) {
    // SAFETY: opaque is the test's OldHook, alive for the whole test.
    let h = unsafe { &*(opaque as *const OldHook) };
    if h.armed.load(Ordering::SeqCst) {
        h.inside.fetch_add(1, Ordering::SeqCst);
        while !h.open.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }
    if h.freed.load(Ordering::SeqCst) {
        h.late.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe extern "C" fn new_event(opaque: *mut c_void, _json: *const c_char) {
    // SAFETY: opaque is the test's counter.
    unsafe { &*(opaque as *const AtomicU64) }.fetch_add(1, Ordering::SeqCst);
}

struct SendPtr<T>(*mut T);
// SAFETY: the handles are used from the threads the C contract allows.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

#[test]
fn set_vmm_ops_waits_for_a_thread_inside_the_old_hook() {
    let old = OldHook::default();
    let new_calls = AtomicU64::new(0);
    let mut s = null_mut();
    // SAFETY: valid out-pointer, ops; both opaques outlive the session.
    unsafe {
        assert_eq!(swo_session_new(&mut s), SWO_OK);
        let ops = vmm_ops(old_event);
        assert_eq!(swo_session_set_vmm_ops(s, &ops, &old as *const _ as *mut c_void), SWO_OK);
        assert_eq!(swo_set_capability(s, c"events".as_ptr(), true), SWO_OK);
    }
    old.armed.store(true, Ordering::SeqCst);
    let session = SendPtr(s);
    let replaced = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // The migration thread: its MIGRATION "setup" event blocks in the old hook.
        let migration = scope.spawn(|| {
            let s = &session;
            // SAFETY: the live session.
            assert_eq!(unsafe { swo_migration_start(s.0, 1000) }, SWO_OK);
        });
        while old.inside.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // The monitor replaces the hooks meanwhile; the call must wait for the old hook.
        let monitor = scope.spawn(|| {
            let s = &session;
            let ops = vmm_ops(new_event);
            // SAFETY: the live session; `new_calls` outlives it.
            let rc = unsafe {
                swo_session_set_vmm_ops(s.0, &ops, &new_calls as *const AtomicU64 as *mut c_void)
            };
            assert_eq!(rc, SWO_OK);
            replaced.store(true, Ordering::SeqCst);
            // What the contract allows now: free the old opaque.
            old.freed.store(true, Ordering::SeqCst);
        });
        for _ in 0..200 {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let returned_early = replaced.load(Ordering::SeqCst);
        old.open.store(true, Ordering::SeqCst);
        monitor.join().unwrap();
        migration.join().unwrap();
        assert!(!returned_early, "set_vmm_ops returned while the old hook ran");
    });
    assert_eq!(old.late.load(Ordering::SeqCst), 0, "the old hook ran after set_vmm_ops returned");
    // Later events go to the new hook.
    // SAFETY: the live session, freed once.
    unsafe {
        assert_eq!(swo_setup_done(s, 1010), SWO_OK);
        assert_eq!(new_calls.load(Ordering::SeqCst), 1);
        swo_session_free(s);
    }
}

static REPLACED_HOOK_CALLS: AtomicU64 = AtomicU64::new(0);

/// The event hook replacing the VMM ops of its own session would wait for itself.
#[derive(Default)]
struct Replacer {
    session: AtomicPtr<SwoSession>,
    rc: Mutex<Option<(SwoStatus, String)>>,
}

unsafe extern "C" fn replace_from_hook(opaque: *mut c_void, _json: *const c_char) {
    // SAFETY: opaque is the test's Replacer.
    let r = unsafe { &*(opaque as *const Replacer) };
    let mut rc = r.rc.lock().unwrap();
    if rc.is_none() {
        let ops = vmm_ops(new_event);
        let counter = &REPLACED_HOOK_CALLS as *const AtomicU64 as *mut c_void;
        // SAFETY: the live session; the counter is a static.
        let status = unsafe { swo_session_set_vmm_ops(r.session.load(Ordering::SeqCst), &ops, counter) };
        *rc = Some((status, last_error()));
    }
}

#[test]
fn set_vmm_ops_from_the_event_hook_is_refused_and_keeps_the_hook() {
    let r = Replacer::default();
    let mut s = null_mut();
    // SAFETY: valid pointers; `r` outlives the session.
    unsafe {
        assert_eq!(swo_session_new(&mut s), SWO_OK);
        r.session.store(s, Ordering::SeqCst);
        let ops = vmm_ops(replace_from_hook);
        assert_eq!(swo_session_set_vmm_ops(s, &ops, &r as *const _ as *mut c_void), SWO_OK);
        assert_eq!(swo_set_capability(s, c"events".as_ptr(), true), SWO_OK);
        assert_eq!(swo_migration_start(s, 0), SWO_OK);
        let (status, message) = r.rc.lock().unwrap().clone().unwrap();
        assert_eq!(status, SWO_ERR_REENTRANT);
        assert!(message.starts_with("swo_session_set_vmm_ops called from a callback"), "{message}");
        // The hook stayed: the next event reaches it, not the refused replacement.
        assert_eq!(swo_setup_done(s, 10), SWO_OK);
        assert_eq!(REPLACED_HOOK_CALLS.load(Ordering::SeqCst), 0);
        swo_session_free(s);
    }
}
