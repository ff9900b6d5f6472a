//! Handlers and pending-data queries.
use super::*;
use crate::pending::{HandlerFlags, Pending, PendingSource, QueryKind};
use std::ffi::{c_char, c_void};

struct CHandler {
    query: unsafe extern "C" fn(*mut c_void, *mut SwoPending, bool, bool),
    is_active: SwoIsActiveFn,
    opaque: *mut c_void,
}

// SAFETY: the contract of `swo_register_handler` makes the callbacks callable from any
// thread with this `opaque`, concurrently.
unsafe impl Send for CHandler {}
// SAFETY: the same contract allows concurrent calls; the library never touches `opaque`
// itself.
unsafe impl Sync for CHandler {}

impl CHandler {
    /// Calls the device's callback into its own zeroed `SwoPending` and returns its figures.
    #[inline]
    fn ask(&self, exact: bool, final_: bool) -> Pending {
        let mut own = SwoPending::default();
        // SAFETY: the device's callback, with its opaque and a pointer to a live, zeroed
        // SwoPending that outlives the call.
        unsafe { (self.query)(self.opaque, &mut own, exact, final_) };
        // Read back field by field, as the callback wrote them: the compiler would otherwise
        // merge two fields into one 16-byte load, which cannot be forwarded from the
        // callback's 8-byte stores still in flight, and stalls.
        // SAFETY: plain reads of initialised fields of a live local.
        unsafe {
            Pending {
                precopy: std::ptr::read_volatile(&own.precopy_bytes),
                stopcopy: std::ptr::read_volatile(&own.stopcopy_bytes),
                postcopy: std::ptr::read_volatile(&own.postcopy_bytes),
            }
        }
    }

    /// [`CHandler::ask`] if the device's `is_active` says so. Out of line, so that a handler
    /// without `is_active` (the common case) costs no saved registers.
    #[inline(never)]
    fn ask_if_active(
        &self,
        is_active: unsafe extern "C" fn(*mut c_void) -> bool,
        exact: bool,
        final_: bool,
    ) -> Pending {
        // SAFETY: the device's callback with its opaque.
        if unsafe { is_active(self.opaque) } {
            self.ask(exact, final_)
        } else {
            Pending::default()
        }
    }
}

impl PendingSource for CHandler {
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, final_: bool) {
        pending.accumulate(&self.ask(exact, final_));
    }
    fn is_active(&self) -> bool {
        match self.is_active {
            // SAFETY: the device's callback with its opaque.
            Some(f) => unsafe { f(self.opaque) },
            None => true,
        }
    }
    /// Same work as the default, in one dynamic call per handler (a query's hot path).
    fn pending_if_active(&self, exact: bool, final_: bool) -> Pending {
        match self.is_active {
            Some(is_active) => self.ask_if_active(is_active, exact, final_),
            None => self.ask(exact, final_),
        }
    }
}

super::ptr::ops_struct!(SwoHandlerOps);

/// Registers a device's pending-data handler under `idstr` + `instance_id` (unique together,
/// like QEMU's savevm ids) and writes its id (never 0) into `*out_id`. `ops` is copied;
/// `idstr` is copied. The callbacks may then be called from any thread that queries, several
/// at once, until `swo_unregister_handler` returns.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (`struct_size` smaller than
/// the first version, NULL `save_query_pending`, unknown flag bits, empty or non-UTF-8
/// `idstr`), `SWO_ERR_EXISTS`, or `SWO_ERR_REENTRANT` from a callback of this session.
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_register_handler(
    s: *mut SwoSession,
    idstr: *const c_char,
    instance_id: u32,
    ops: *const SwoHandlerOps,
    opaque: *mut c_void,
    out_id: *mut u64,
) -> SwoStatus {
    session_call(s, |sess| {
        let idstr = cstr(idstr, "idstr")?;
        let ops = arg(ops, "ops")?;
        let out_id = out(out_id, "out_id")?;
        check_ops(ops)?;
        let flags = HandlerFlags::from_bits(ops.flags).ok_or_else(|| {
            Error::invalid_arg(format!("unknown handler flag bits 0x{:x}", ops.flags))
        })?;
        let query = ops
            .save_query_pending
            .ok_or_else(|| Error::invalid_arg("SwoHandlerOps.save_query_pending is NULL"))?;
        let handler = CHandler { query, is_active: ops.is_active, opaque };
        *out_id = sess.registry().register(idstr, instance_id, flags, Box::new(handler))?;
        Ok(())
    })
}

/// Unregisters a handler. Returns only once no callback of it runs or can start, so the
/// caller may free its `opaque` right after. It waits for that handler's callbacks only,
/// except when `membarrier` starts failing after the session was created (a seccomp filter
/// installed later, failing it with an errno): then the first such call switches the session
/// to full fences and waits for every query in flight to end as a whole. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`,
/// `SWO_ERR_NOT_FOUND`, or `SWO_ERR_REENTRANT` from a callback of this session. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_unregister_handler(s: *mut SwoSession, id: u64) -> SwoStatus {
    session_call(s, |sess| sess.registry().unregister(id))
}

/// Asks every active handler for its pending bytes (`exact` as for the callback; never
/// `final`) and writes the saturating sums into `*out`; the total becomes the session's
/// system-wide remaining. Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, or `SWO_ERR_REENTRANT` from
/// a callback of this session. Any thread, at any time.
#[no_mangle]
pub unsafe extern "C" fn swo_query_pending(
    s: *mut SwoSession,
    exact: bool,
    out: *mut SwoPending,
) -> SwoStatus {
    session_call(s, |sess| {
        let out = super::out(out, "out")?;
        let kind = if exact { QueryKind::Exact } else { QueryKind::Fast };
        *out = SwoPending::from(sess.query_pending(kind)?);
        Ok(())
    })
}

super::symbol_versions!("pending");
