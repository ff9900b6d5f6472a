//! Sessions and the VMM's hooks.
use super::*;
use crate::session::VmmHooks;
use std::ffi::{c_void, CString};

/// Creates a session (status `none`, default parameters, no handlers) into `*out`.
/// Free it with `swo_session_free`. Returns `SWO_OK` or `SWO_ERR_NULL_ARG`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_session_new(out: *mut *mut SwoSession) -> SwoStatus {
    call(|| {
        // SAFETY: `out` is NULL or writable, per the C contract.
        let out = unsafe { super::out(out, "out") }?;
        *out = Box::into_raw(Box::new(SwoSession { inner: Arc::new(Session::new()) }));
        Ok(())
    })
}

/// Frees a session and unregisters its handlers. NULL is a no-op. No other call on the
/// session may run or start on any thread; RAM and VFIO models created on it keep what they
/// need alive until they are freed themselves. Any thread, except from a callback of the same
/// session (the query running it still uses the session): there it frees nothing, the handle
/// stays valid, and the thread's last error message says why; free it after the callback.
#[no_mangle]
pub unsafe extern "C" fn swo_session_free(s: *mut SwoSession) {
    call_or((), || {
        if s.is_null() {
            return;
        }
        // SAFETY: `s` is a live handle from `swo_session_new` (the C contract).
        let id = unsafe { &*s }.inner.id();
        if let Err(e) = reentrancy::check(id, "swo_session_free") {
            set_last_error(&e.message);
            return;
        }
        // SAFETY: `s` came from `swo_session_new` and is not used after this call.
        drop(unsafe { Box::from_raw(s) });
    })
}

struct CVmm {
    ops: SwoVmmOps,
    opaque: *mut c_void,
}

// SAFETY: the C contract of `swo_session_set_vmm_ops` makes the VMM's callbacks callable from
// any thread with this `opaque`.
unsafe impl Send for CVmm {}
// SAFETY: as above; the library never touches `opaque` itself.
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
            // SAFETY: as above.
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

/// The smallest `struct_size` accepted for `SwoVmmOps` (its first version).
const VMM_OPS_V1_SIZE: usize = std::mem::size_of::<SwoVmmOps>();

/// Installs the VMM's operations (copied; `ops` may be freed afterwards). Each callback may
/// be NULL: without `vm_stop`/`vm_resume` the library never stops the guest itself, without
/// `event` events are dropped. The callbacks may be called from any thread that calls into
/// the session, with `opaque`, and never with a library lock held. Replaces earlier ops.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` (session or ops), or `SWO_ERR_INVALID_ARG`
/// (`struct_size` too small, `reserved` not 0). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_session_set_vmm_ops(
    s: *mut SwoSession,
    ops: *const SwoVmmOps,
    opaque: *mut c_void,
) -> SwoStatus {
    // SAFETY: pointers per the C contract.
    unsafe {
        session_call(s, |sess| {
            let ops = arg(ops, "ops")?;
            if (ops.struct_size as usize) < VMM_OPS_V1_SIZE {
                return Err(Error::invalid_arg(format!(
                    "SwoVmmOps.struct_size is {}, at least {VMM_OPS_V1_SIZE} expected",
                    ops.struct_size
                )));
            }
            if ops.reserved != 0 {
                return Err(Error::invalid_arg("SwoVmmOps.reserved must be 0"));
            }
            sess.set_vmm(Some(Arc::new(CVmm { ops: *ops, opaque })));
            Ok(())
        })
    }
}

super::symbol_versions!("session");
