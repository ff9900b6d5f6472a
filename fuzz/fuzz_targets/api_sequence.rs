//! A sequence of C-ABI calls on one session, decoded from the input: handler registration
//! and removal (handlers whose figures come from the input, some calling back into the
//! library), queries, recorded bytes, the window, steps, switchover, postcopy, cancel and fail,
//! reports, parameters and capabilities, the RAM model, and VFIO devices with hostile readers
//! (errors, garbage sizes, growing sizes), with the event hook trying to free things.
//!
//! Invariants checked after every call:
//! - no call returns `SWO_ERR_PANIC`, and every status has a name;
//! - outputs are untouched when a call fails (out-structs are pre-filled with a pattern);
//! - a query's and a step's `total_bytes` is the saturating sum of the three buckets;
//! - `query-migrate` parses as JSON and `info migrate` is UTF-8, at every point;
//! - a callback's re-entrant call gets `SWO_ERR_REENTRANT`, and a free from a callback
//!   (handler or event hook) frees nothing (the handle keeps working afterwards).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use switchover::ffi::engine::*;
use switchover::ffi::params::*;
use switchover::ffi::pending::*;
use switchover::ffi::ram::*;
use switchover::ffi::report::*;
use switchover::ffi::session::*;
use switchover::ffi::status::*;
use switchover::ffi::vfio::*;
use switchover::ffi::*;

/// Reads the input a piece at a time; runs dry as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    /// A byte count: mostly small and plausible, sometimes garbage near `u64::MAX`.
    fn size(&mut self) -> u64 {
        match self.u8() % 8 {
            0 => 0,
            1 => u64::MAX - u64::from(self.u8()),
            2 => self.u64(),
            3 => 1 << (self.u8() % 64),
            _ => u64::from(self.u32()) << (self.u8() % 16),
        }
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// Pre-fills an out-struct with a byte pattern, to see that a failing call leaves it alone.
fn pattern<T: Copy>() -> T {
    let mut v = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: every out-struct of the ABI is plain integers and floats: any bytes are valid.
    unsafe {
        v.as_mut_ptr().cast::<u8>().write_bytes(0xA5, std::mem::size_of::<T>());
        v.assume_init()
    }
}

/// A versioned out-struct (`struct_size` first): the pattern, with `struct_size` set to the
/// struct's size as a C caller sets it.
fn versioned<T: Copy>() -> T {
    let mut v = pattern::<T>();
    // SAFETY: every versioned out-struct starts with `uint32_t struct_size`.
    unsafe { (&mut v as *mut T).cast::<u32>().write(std::mem::size_of::<T>() as u32) };
    v
}

fn bytes_of<T>(v: &T) -> Vec<u8> {
    // SAFETY: reading the bytes of a plain struct.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
        .to_vec()
}

fn status_ok(rc: SwoStatus, what: &str) {
    assert_ne!(rc, SWO_ERR_PANIC, "{what}: SWO_ERR_PANIC ({})", last_error());
    // SAFETY: swo_status_name returns a static string or NULL-free "unknown" text.
    let name = unsafe { CStr::from_ptr(swo_status_name(rc)) }.to_str().unwrap();
    assert!(name.starts_with("SWO_"), "{what}: status {rc} has no name ({name})");
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 1024];
    let mut len = 0usize;
    // SAFETY: buffer writable for its length.
    unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    // SAFETY: NUL-terminated by the call (or still zeros).
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// Checks an out-struct against the rule "written only on success".
fn check_out<T: Copy>(rc: SwoStatus, out: &T, what: &str) {
    status_ok(rc, what);
    if rc != SWO_OK {
        assert_eq!(bytes_of(out), bytes_of(&pattern::<T>()), "{what}: output written on error {rc}");
    }
}

/// As [`check_out`] for a versioned out-struct filled by [`versioned`].
fn check_versioned<T: Copy>(rc: SwoStatus, out: &T, what: &str) {
    status_ok(rc, what);
    if rc != SWO_OK {
        assert_eq!(bytes_of(out), bytes_of(&versioned::<T>()), "{what}: output written on error {rc}");
    } else {
        // SAFETY: `struct_size` is the first field.
        let size = unsafe { (out as *const T).cast::<u32>().read() };
        assert_eq!(size as usize, std::mem::size_of::<T>(), "{what}: struct_size written back");
    }
}

fn check_total(p: &SwoPending, what: &str) {
    let sum = p.precopy_bytes.saturating_add(p.stopcopy_bytes).saturating_add(p.postcopy_bytes);
    assert_eq!(p.total_bytes, sum, "{what}: total is not the saturating sum");
}

/// A device handler's state, behind its opaque.
struct Handler {
    session: *mut SwoSession,
    figures: [u64; 3],
    /// 0 plain, 1 re-enters the library (query, unregister), 2 frees its session.
    mode: u8,
    calls: AtomicU64,
}

unsafe extern "C" fn handler_query(opaque: *mut c_void, p: *mut SwoPending, _exact: bool, _final: bool) {
    // SAFETY: the opaque is a live Handler until its unregister returned.
    let h = unsafe { &*(opaque as *const Handler) };
    h.calls.fetch_add(1, Ordering::Relaxed);
    match h.mode {
        1 => {
            let mut inner: SwoPending = pattern();
            // SAFETY: the live session whose query runs this callback.
            let rc = unsafe { swo_query_pending(h.session, false, &mut inner) };
            assert_eq!(rc, SWO_ERR_REENTRANT);
            check_out(rc, &inner, "query from a callback");
            // SAFETY: as above.
            assert_eq!(unsafe { swo_unregister_handler(h.session, 1) }, SWO_ERR_REENTRANT);
        }
        2 => {
            // SAFETY: as above; refused from a callback, so nothing is freed.
            unsafe { swo_session_free(h.session) };
            assert!(last_error().contains("swo_session_free"), "{}", last_error());
        }
        _ => {}
    }
    // SAFETY: `p` is the library's zeroed SwoPending for this call.
    let p = unsafe { &mut *p };
    p.precopy_bytes = p.precopy_bytes.wrapping_add(h.figures[0]);
    p.stopcopy_bytes = p.stopcopy_bytes.wrapping_add(h.figures[1]);
    p.postcopy_bytes = p.postcopy_bytes.wrapping_add(h.figures[2]);
}

unsafe extern "C" fn handler_active(opaque: *mut c_void) -> bool {
    // SAFETY: as for handler_query.
    let h = unsafe { &*(opaque as *const Handler) };
    h.calls.load(Ordering::Relaxed) % 7 != 3
}

/// A hostile VFIO reader: errors, garbage and sizes that change at every read.
struct Reader {
    rc: AtomicU32,
    sizes: [AtomicU64; 3],
}

unsafe extern "C" fn reader_stop_copy(opaque: *mut c_void, len: *mut u64) -> c_int {
    // SAFETY: a live Reader until swo_vfio_free returned; `len` a live u64.
    let r = unsafe { &*(opaque as *const Reader) };
    let v = r.sizes[0].fetch_add(1 << 20, Ordering::Relaxed);
    unsafe { *len = v };
    match r.rc.load(Ordering::Relaxed) % 5 {
        0 => -libc::EIO,
        1 => 7, // not a valid return
        _ => 0,
    }
}

unsafe extern "C" fn reader_precopy(opaque: *mut c_void, init: *mut u64, dirty: *mut u64) -> c_int {
    // SAFETY: as above.
    let r = unsafe { &*(opaque as *const Reader) };
    unsafe {
        *init = r.sizes[1].fetch_add(4096, Ordering::Relaxed);
        *dirty = r.sizes[2].load(Ordering::Relaxed);
    }
    if r.rc.load(Ordering::Relaxed) % 7 == 0 { -libc::EINVAL } else { 0 }
}

unsafe extern "C" fn ram_sync(opaque: *mut c_void, newly: *mut u64) -> u64 {
    // SAFETY: the opaque is the sequence's AtomicU64, alive until swo_ram_free returned.
    let v = unsafe { &*(opaque as *const AtomicU64) }.fetch_add(3, Ordering::Relaxed);
    unsafe { *newly = v % 5 };
    v % 300
}

/// The VMM: stops and resumes (sometimes failing), events, and frees from the event hook.
struct Vmm {
    session: AtomicPtr<SwoSession>,
    ram: AtomicPtr<SwoRam>,
    stop_rc: AtomicU32,
    free_on_event: AtomicU32,
    events: AtomicU64,
}

unsafe extern "C" fn vm_stop(opaque: *mut c_void) -> c_int {
    // SAFETY: the Vmm outlives the session.
    let v = unsafe { &*(opaque as *const Vmm) };
    if v.stop_rc.load(Ordering::Relaxed) % 4 == 1 { -libc::EBUSY } else { 0 }
}

unsafe extern "C" fn vm_resume(_opaque: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn on_event(opaque: *mut c_void, json: *const c_char) {
    // SAFETY: the Vmm outlives the session; `json` a live C string.
    let v = unsafe { &*(opaque as *const Vmm) };
    let text = unsafe { CStr::from_ptr(json) }.to_str().expect("events are UTF-8");
    let event: serde_json::Value = serde_json::from_str(text).expect("events are JSON");
    assert!(event["event"].is_string(), "{text}");
    v.events.fetch_add(1, Ordering::Relaxed);
    match v.free_on_event.load(Ordering::Relaxed) % 4 {
        // Refused from the hook (a callback of the session): nothing is freed.
        1 => unsafe { swo_session_free(v.session.load(Ordering::Relaxed)) },
        2 => {
            let ram = v.ram.load(Ordering::Relaxed);
            if !ram.is_null() {
                unsafe { swo_ram_free(ram) };
            }
        }
        3 => {
            let mut step: SwoStep = versioned();
            let rc = unsafe { swo_iteration_step(v.session.load(Ordering::Relaxed), 0, &mut step) };
            assert_eq!(rc, SWO_ERR_REENTRANT);
            check_versioned(rc, &step, "step from the event hook");
        }
        _ => {}
    }
}

const NAMES: [&CStr; 4] = [c"ram", c"0000:3b:00.0/vfio", c"nic", c"dev"];
const PARAMS: [&CStr; 10] = [
    c"max-bandwidth",
    c"avail-switchover-bandwidth",
    c"downtime-limit",
    c"max-postcopy-bandwidth",
    c"rollback-tolerance",
    c"stall-margin",
    c"stall-passes",
    c"downtime-headroom",
    c"auto-downtime-max",
    c"x-unknown",
];
const VALUES: [&CStr; 10] =
    [c"0", c"1", c"300", c"2000", c"2000001", c"1k", c"-1", c"18446744073709551616", c"1.5G", c""];
const CAPS: [&CStr; 6] = [
    c"events",
    c"postcopy-ram",
    c"pause-before-switchover",
    c"switchover-ack",
    c"switchover-rollback",
    c"x-unknown",
];

fn report(s: *mut SwoSession, now: u64) {
    let mut len = 0usize;
    // SAFETY: live session; a NULL buffer with length 0 asks for the length.
    let rc = unsafe { swo_query_migrate_json(s, now, null_mut(), 0, &mut len) };
    status_ok(rc, "query-migrate length");
    let mut buf = vec![0 as c_char; len + 1];
    let rc = unsafe { swo_query_migrate_json(s, now, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(rc, SWO_OK, "{}", last_error());
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().expect("query-migrate is UTF-8");
    let _: serde_json::Value = serde_json::from_str(text).expect("query-migrate is JSON");
    let rc = unsafe { swo_info_migrate_text(s, now, null_mut(), 0, &mut len) };
    status_ok(rc, "info migrate length");
    let mut buf = vec![0 as c_char; len + 1];
    let rc = unsafe { swo_info_migrate_text(s, now, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(rc, SWO_OK);
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().expect("info migrate is UTF-8");
    // A buffer one byte short is refused and left alone.
    if len > 0 {
        let mut short = vec![0x5A as c_char; len];
        let rc = unsafe { swo_info_migrate_text(s, now, short.as_mut_ptr(), short.len(), &mut len) };
        assert_eq!(rc, SWO_ERR_BUFFER_TOO_SMALL);
        assert!(short.iter().all(|&c| c == 0x5A));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let vmm = Box::new(Vmm {
        session: AtomicPtr::new(null_mut()),
        ram: AtomicPtr::new(null_mut()),
        stop_rc: AtomicU32::new(0),
        free_on_event: AtomicU32::new(0),
        events: AtomicU64::new(0),
    });
    let mut s = null_mut();
    // SAFETY (whole function): every handle is live from its creation to its free, and the
    // opaques (Box-ed below) outlive what may call them.
    unsafe {
        assert_eq!(swo_session_new(&mut s), SWO_OK);
        vmm.session.store(s, Ordering::Relaxed);
        let ops = SwoVmmOps {
            struct_size: std::mem::size_of::<SwoVmmOps>() as u32,
            reserved: 0,
            vm_stop: Some(vm_stop),
            vm_resume: Some(vm_resume),
            event: Some(on_event),
        };
        assert_eq!(swo_session_set_vmm_ops(s, &ops, &*vmm as *const Vmm as *mut c_void), SWO_OK);
    }
    let mut handlers: Vec<(u64, Box<Handler>)> = Vec::new();
    let mut devices: Vec<(*mut SwoVfio, Box<Reader>)> = Vec::new();
    let ram_counter = Box::new(AtomicU64::new(0));
    let mut ram: *mut SwoRam = null_mut();
    let mut now = 0u64;
    let mut ops_run = 0;
    while !input.done() && ops_run < 400 {
        ops_run += 1;
        now = now.saturating_add(u64::from(input.u8()) * 10);
        let op = input.u8();
        // SAFETY: as above.
        unsafe {
            match op % 32 {
                0 | 1 => {
                    let h = Box::new(Handler {
                        session: s,
                        figures: [input.size(), input.size(), input.size()],
                        mode: input.u8() % 8,
                        calls: AtomicU64::new(0),
                    });
                    let flags = u32::from(input.u8() % 5); // 4 is an unknown bit
                    let ops = SwoHandlerOps {
                        struct_size: std::mem::size_of::<SwoHandlerOps>() as u32,
                        flags,
                        save_query_pending: Some(handler_query),
                        is_active: if input.u8() & 1 == 0 { None } else { Some(handler_active) },
                    };
                    let name = NAMES[usize::from(input.u8()) % NAMES.len()];
                    let mut id: u64 = pattern();
                    let opaque = &*h as *const Handler as *mut c_void;
                    let rc = swo_register_handler(s, name.as_ptr(), u32::from(input.u8() % 2), &ops, opaque, &mut id);
                    check_out(rc, &id, "register");
                    if rc == SWO_OK {
                        assert_ne!(id, 0);
                        handlers.push((id, h));
                    }
                }
                2 => {
                    if handlers.is_empty() {
                        let rc = swo_unregister_handler(s, input.u64());
                        status_ok(rc, "unregister unknown");
                        assert_ne!(rc, SWO_OK);
                    } else {
                        let (id, h) = handlers.remove(usize::from(input.u8()) % handlers.len());
                        assert_eq!(swo_unregister_handler(s, id), SWO_OK);
                        drop(h); // freed right after, as the contract allows
                    }
                }
                3 | 4 => {
                    let mut p: SwoPending = pattern();
                    let rc = swo_query_pending(s, op & 1 == 0, &mut p);
                    check_out(rc, &p, "query");
                    if rc == SWO_OK {
                        check_total(&p, "query");
                    }
                }
                5 | 6 => {
                    let rc = swo_record_transferred(s, u32::from(input.u8() % 3), input.size());
                    status_ok(rc, "record_transferred");
                }
                7 => status_ok(swo_update_counters(s, now), "update_counters"),
                8 | 9 => {
                    let mut step: SwoStep = versioned();
                    let rc = swo_iteration_step(s, now, &mut step);
                    check_versioned(rc, &step, "step");
                    if rc == SWO_OK {
                        check_total(&step.pending, "step");
                        assert!(step.action <= SWO_ACTION_WAIT);
                    }
                }
                10 => {
                    let mut fin: SwoPending = pattern();
                    let mut proceed = true;
                    let rc = swo_switchover_begin(s, now, &mut fin, &mut proceed);
                    check_out(rc, &fin, "switchover_begin");
                    if rc == SWO_OK {
                        check_total(&fin, "switchover_begin");
                    } else {
                        assert!(proceed, "proceed written on error");
                    }
                }
                11 => status_ok(swo_migration_start(s, now), "migration_start"),
                12 => status_ok(swo_setup_done(s, now), "setup_done"),
                13 => status_ok(swo_complete(s, now), "complete"),
                14 => status_ok(swo_cancel(s, now), "cancel"),
                15 => {
                    let desc = if input.u8() & 1 == 0 { c"device went away".as_ptr() } else { std::ptr::null() };
                    status_ok(swo_fail(s, now, desc), "fail");
                }
                16 => status_ok(swo_migrate_continue(s, u32::from(input.u8() % 16)), "migrate_continue"),
                17 => status_ok(swo_postcopy_request(s), "postcopy_request"),
                18 => status_ok(swo_postcopy_start(s, now), "postcopy_start"),
                19 => {
                    status_ok(swo_set_switchover_acked(s, input.u8() & 1 == 1), "acked");
                    status_ok(swo_set_vm_running(s, input.u8() & 1 == 1), "vm_running");
                }
                20 => report(s, now),
                21 => {
                    let mut info: SwoInfo = versioned();
                    check_versioned(swo_get_info(s, now, &mut info), &info, "get_info");
                    let mut advice: SwoAdvice = versioned();
                    check_versioned(swo_get_advice(s, now, &mut advice), &advice, "get_advice");
                }
                22 => {
                    let name = PARAMS[usize::from(input.u8()) % PARAMS.len()];
                    let value = VALUES[usize::from(input.u8()) % VALUES.len()];
                    status_ok(swo_set_parameter(s, name.as_ptr(), value.as_ptr()), "set_parameter");
                }
                23 => {
                    let name = CAPS[usize::from(input.u8()) % CAPS.len()];
                    status_ok(swo_set_capability(s, name.as_ptr(), input.u8() & 1 == 1), "set_capability");
                }
                24 => {
                    let r = Box::new(Reader {
                        rc: AtomicU32::new(input.u32()),
                        sizes: [AtomicU64::new(input.size()), AtomicU64::new(input.size()), AtomicU64::new(input.size())],
                    });
                    let ops = SwoVfioOps {
                        struct_size: std::mem::size_of::<SwoVfioOps>() as u32,
                        reserved: 0,
                        query_stop_copy_size: Some(reader_stop_copy),
                        query_precopy_info: if input.u8() & 1 == 0 { None } else { Some(reader_precopy) },
                    };
                    let name = NAMES[usize::from(input.u8()) % NAMES.len()];
                    let mut v: *mut SwoVfio = null_mut();
                    let rc = swo_vfio_new(s, name.as_ptr(), &ops, &*r as *const Reader as *mut c_void, &mut v);
                    status_ok(rc, "vfio_new");
                    if rc == SWO_OK {
                        devices.push((v, r));
                    } else {
                        assert!(v.is_null(), "vfio handle written on error");
                    }
                }
                25 | 26 if !devices.is_empty() => {
                    let (v, r) = &devices[usize::from(input.u8()) % devices.len()];
                    r.rc.store(input.u32(), Ordering::Relaxed);
                    status_ok(swo_vfio_set_state(*v, u32::from(input.u8() % 9)), "vfio_set_state");
                    status_ok(swo_vfio_refresh(*v), "vfio_refresh");
                    status_ok(swo_vfio_record_read(*v, input.size()), "vfio_record_read");
                    let mut z: SwoVfioSizes = versioned();
                    check_versioned(swo_vfio_get_sizes(*v, &mut z), &z, "vfio_get_sizes");
                }
                27 if !devices.is_empty() => {
                    let (v, r) = devices.remove(usize::from(input.u8()) % devices.len());
                    swo_vfio_free(v);
                    drop(r);
                }
                28 => {
                    if ram.is_null() {
                        let ops = SwoRamOps {
                            struct_size: std::mem::size_of::<SwoRamOps>() as u32,
                            reserved: 0,
                            sync_dirty: Some(ram_sync),
                        };
                        let page = 1u64 << (input.u8() % 32);
                        let total = page.saturating_mul(u64::from(input.u8()));
                        let opaque = &*ram_counter as *const AtomicU64 as *mut c_void;
                        let rc = swo_ram_new(s, total, page, &ops, opaque, &mut ram);
                        status_ok(rc, "ram_new");
                        if rc != SWO_OK {
                            assert!(ram.is_null(), "ram handle written on error");
                        }
                        vmm.ram.store(ram, Ordering::Relaxed);
                    } else {
                        status_ok(swo_ram_set_dirty_pages(ram, input.size()), "ram_set_dirty");
                        status_ok(swo_ram_record_sent(ram, input.size(), input.size()), "ram_record_sent");
                        let mut f: SwoRamFigures = versioned();
                        check_versioned(swo_ram_get_figures(ram, &mut f), &f, "ram_get_figures");
                    }
                }
                29 if !ram.is_null() => {
                    vmm.ram.store(null_mut(), Ordering::Relaxed);
                    swo_ram_free(ram);
                    ram = null_mut();
                }
                30 => {
                    vmm.stop_rc.store(input.u32(), Ordering::Relaxed);
                    vmm.free_on_event.store(input.u32(), Ordering::Relaxed);
                }
                _ => {
                    let json = format!("{{\"downtime-limit\": {}, \"stall-passes\": {}}}", input.u32() % 3_000_000, input.u8());
                    let json = std::ffi::CString::new(json).unwrap();
                    status_ok(swo_set_parameters_json(s, json.as_ptr()), "set_parameters_json");
                }
            }
        }
    }
    report(s, now);
    // SAFETY: every handle freed once, outside any callback; opaques dropped after.
    unsafe {
        vmm.free_on_event.store(0, Ordering::Relaxed);
        if !ram.is_null() {
            vmm.ram.store(null_mut(), Ordering::Relaxed);
            swo_ram_free(ram);
        }
        for (v, _r) in &devices {
            swo_vfio_free(*v);
        }
        for (id, _h) in &handlers {
            assert_eq!(swo_unregister_handler(s, *id), SWO_OK);
        }
        swo_session_free(s);
    }
    drop(devices);
    drop(handlers);
});
