//! Sessions and the VMM's hooks.
use super::*;
use crate::session::VmmHooks;
use std::ffi::{c_void, CString};

/// Creates a session (status `none`, default parameters, no handlers) into `*out`.
/// Free it with `swo_session_free`. Returns `SWO_OK` or `SWO_ERR_NULL_ARG`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_session_new(out: *mut *mut SwoSession) -> SwoStatus {
    call(|| {
        let out = super::out(out, "out")?;
        *out = into_handle(SwoSession { inner: Arc::new(Session::new()) });
        Ok(())
    })
}

/// Frees a session and unregisters its handlers. NULL is a no-op. No other call on the
/// session may run or start on any thread; RAM and VFIO models created on it keep what they
/// need alive until they are freed themselves. Any thread, except from a callback of the same
/// session (a handler's or a model's, or the VMM's `vm_stop`, `vm_resume` or `event` hook:
/// the call running it still uses the session): there it frees nothing, the handle stays
/// valid, and the thread's last error message says why; free it after that call returned.
#[no_mangle]
pub unsafe extern "C" fn swo_session_free(s: *mut SwoSession) {
    call_or((), || {
        let Some(session) = try_handle(s) else { return };
        if let Err(e) = reentrancy::check(session.id(), "swo_session_free") {
            set_last_error(&e.message);
            return;
        }
        drop(take_handle(s));
    })
}

struct CVmm {
    ops: SwoVmmOps,
    opaque: *mut c_void,
}

// SAFETY: the C contract of `swo_session_set_vmm_ops` makes the VMM's callbacks callable from
// any thread with this `opaque`.
unsafe impl Send for CVmm {}
// SAFETY: the same contract allows concurrent calls; the library never touches `opaque`
// itself.
unsafe impl Sync for CVmm {}

impl VmmHooks for CVmm {
    fn vm_stop(&self) -> i32 {
        match self.ops.vm_stop {
            // SAFETY: a VMM callback called with its own opaque, per its contract.
            Some(f) => unsafe { f(self.opaque) },
            None => -libc::ENOTSUP,
        }
    }
    fn vm_resume(&self) -> i32 {
        match self.ops.vm_resume {
            // SAFETY: a VMM callback called with its own opaque, per its contract.
            Some(f) => unsafe { f(self.opaque) },
            None => -libc::ENOTSUP,
        }
    }
    fn can_stop_vm(&self) -> bool {
        self.ops.vm_stop.is_some() && self.ops.vm_resume.is_some()
    }
    fn event(&self, event_json: &str) {
        if let (Some(f), Ok(text)) = (self.ops.event, CString::new(event_json)) {
            // SAFETY: `text` lives across the call, as the contract promises.
            unsafe { f(self.opaque, text.as_ptr()) }
        }
    }
}

super::ptr::ops_struct!(SwoVmmOps, reserved);

/// Installs the VMM's operations (copied; `ops` may be freed afterwards). Each callback may
/// be NULL: without `vm_stop`/`vm_resume` the library never stops the guest itself, without
/// `event` events are dropped. The callbacks may be called from any thread that calls into
/// the session, with `opaque`, and never with a library lock held. A callback must not
/// unwind through the library (see `SwoVmmOps`).
///
/// Replaces earlier ops, and returns only once no thread runs, or can still start, one of the
/// earlier callbacks (a call that took them before the replacement is waited for, as
/// `swo_unregister_handler` waits for a handler's callbacks): the earlier `opaque` may be
/// freed as soon as this returns. Events still queued then go to the new `event` hook.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` (session or ops), `SWO_ERR_INVALID_ARG`
/// (`struct_size` too small, `reserved` not 0), or `SWO_ERR_REENTRANT` from a callback of
/// the same session (it would wait for itself; the earlier ops stay). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_session_set_vmm_ops(
    s: *mut SwoSession,
    ops: *const SwoVmmOps,
    opaque: *mut c_void,
) -> SwoStatus {
    session_call(s, |sess| {
        let ops = arg(ops, "ops")?;
        check_ops(ops)?;
        sess.set_vmm(Some(Arc::new(CVmm { ops: *ops, opaque })))
    })
}

super::symbol_versions!("session");
