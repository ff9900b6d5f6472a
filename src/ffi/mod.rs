//! The C ABI shell: `extern "C"` functions that check and convert their arguments, call the
//! core, and turn its result into a status code. No decisions live here.
//!
//! Every exported function runs inside [`call`] (panic boundary, last-error message) and takes
//! its pointers through the helpers below, never by hand.
#![deny(missing_docs)]
#![allow(clippy::missing_safety_doc)] // the C contract is in each doc comment

pub mod engine;
pub mod params;
pub mod pending;
pub mod ram;
pub mod report;
pub mod session;
pub mod status;
pub mod types;
pub(crate) mod versioned;
pub mod vfio;

pub use types::*;

/// Puts the exported functions of the calling module under their symbol versions
/// (abi/switchover.map; build.rs writes one `global_asm!` per module, which must sit in the
/// object defining the functions). Every module with `#[no_mangle]` functions calls it once.
macro_rules! symbol_versions {
    ($module:literal) => {
        include!(concat!(env!("OUT_DIR"), "/symver/", $module, ".rs"));
    };
}
pub(crate) use symbol_versions;

use crate::error::{Code, Error, Result};
use crate::reentrancy;
use crate::Session;
use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Stores `message` as the calling thread's last error message. Dropped when the thread's
/// store is already destroyed (a call from an `atexit` handler or a thread-local destructor:
/// glibc destroys the main thread's thread-locals before running `atexit` handlers); this
/// must not panic, as it also runs outside the panic boundary.
pub(crate) fn set_last_error(message: &str) {
    let _ = LAST_ERROR.try_with(|m| {
        let mut m = m.borrow_mut();
        m.clear();
        m.push_str(message);
    });
}

/// The calling thread's last error message ("" when there was none, or when the thread's
/// store is already destroyed).
pub(crate) fn last_error() -> String {
    LAST_ERROR.try_with(|m| m.borrow().clone()).unwrap_or_default()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("internal error (panic): {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("internal error (panic): {s}")
    } else {
        "internal error (panic)".to_owned()
    }
}

/// The panic boundary every exported function runs in: a panic becomes `SWO_ERR_PANIC`, an
/// error its code, and either one the thread's last error message.
#[inline]
pub(crate) fn call(f: impl FnOnce() -> Result<()>) -> SwoStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SWO_OK,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.code as SwoStatus
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            Code::Panic as SwoStatus
        }
    }
}

/// Like [`call`] for functions that cannot report a status: a panic gives `fallback`.
#[inline]
pub(crate) fn call_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            fallback
        }
    }
}

/// Borrows a pointer argument; NULL gives `SWO_ERR_NULL_ARG` naming the argument.
/// SAFETY (for callers): `p` is NULL or points to a live, properly aligned `T`.
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the caller's contract above.
    unsafe { p.as_ref() }.ok_or_else(|| Error::null_arg(name))
}

/// Borrows an out-parameter; NULL gives `SWO_ERR_NULL_ARG`. Write it only on success.
/// SAFETY (for callers): `p` is NULL or points to writable, properly aligned memory for `T`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: the caller's contract above.
    unsafe { p.as_mut() }.ok_or_else(|| Error::null_arg(name))
}

/// Borrows a C string argument: NULL gives `SWO_ERR_NULL_ARG`, bytes that are not UTF-8
/// `SWO_ERR_INVALID_ARG`.
/// SAFETY (for callers): `p` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::null_arg(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::invalid_arg(format!("'{name}' is not valid UTF-8")))
}

/// Writes `text` and a NUL into the caller's buffer under the library's string convention:
/// `*out_len` always gets the length without the NUL; a NULL `buf` with `len` 0 only asks
/// for that length (`SWO_OK`); a buffer too short for text + NUL gives
/// `SWO_ERR_BUFFER_TOO_SMALL` and is left untouched.
/// SAFETY (for callers): `buf` is NULL or writable for `len` bytes; `out_len` is NULL or
/// writable.
pub(crate) unsafe fn write_str(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> Result<()> {
    // SAFETY: the caller's contract above.
    let out_len = unsafe { out(out_len, "out_len") }?;
    *out_len = text.len();
    if buf.is_null() {
        return if len == 0 { Ok(()) } else { Err(Error::null_arg("buf")) };
    }
    if len <= text.len() {
        return Err(Error::new(
            Code::BufferTooSmall,
            format!("buffer of {len} bytes is too small: {} needed with the NUL", text.len() + 1),
        ));
    }
    // SAFETY: `buf` is writable for `len` > text.len() bytes; the source is a distinct Rust
    // string, so the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// Borrows the session behind a handle.
/// SAFETY (for callers): `s` is NULL or a live handle from `swo_session_new`.
pub(crate) unsafe fn session<'a>(s: *const SwoSession) -> Result<&'a Arc<Session>> {
    // SAFETY: the caller's contract above.
    Ok(&unsafe { arg(s, "session") }?.inner)
}

/// Runs `f` on the session behind `s` inside the panic boundary, then delivers the events it
/// raised (unless the caller is itself inside a callback of that session: the outer call
/// delivers them once it is out).
/// SAFETY (for callers): as [`session`].
pub(crate) unsafe fn session_call(
    s: *const SwoSession,
    f: impl FnOnce(&Arc<Session>) -> Result<()>,
) -> SwoStatus {
    call(|| {
        // SAFETY: forwarded contract.
        let sess = unsafe { session(s) }?;
        let result = f(sess);
        if !reentrancy::inside(sess.id()) {
            sess.flush_events();
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_swo_err_panic_with_a_message() {
        let status = call(|| panic!("boom"));
        assert_eq!(status, SWO_ERR_PANIC);
        assert_eq!(last_error(), "internal error (panic): boom");
    }

    #[test]
    fn an_error_sets_code_and_message() {
        let status = call(|| Err(Error::invalid_arg("Invalid size 10MB")));
        assert_eq!(status, SWO_ERR_INVALID_ARG);
        assert_eq!(last_error(), "Invalid size 10MB");
    }

    /// Runs, at the thread's exit, after the library's thread-locals were destroyed: it is
    /// first used (so registered) before them, and destructors run in reverse order.
    struct AtThreadExit(std::sync::mpsc::Sender<(bool, String)>);
    impl Drop for AtThreadExit {
        fn drop(&mut self) {
            let scope = crate::reentrancy::CallbackScope::enter(7);
            set_last_error("dropped");
            let status = call(|| Err(Error::invalid_arg("also dropped")));
            let seen = (reentrancy::inside(7), last_error());
            drop(scope);
            let _ = self.0.send((status == SWO_ERR_INVALID_ARG && !seen.0, seen.1));
        }
    }
    thread_local! {
        static EXIT_PROBE: RefCell<Option<AtThreadExit>> = const { RefCell::new(None) };
    }

    #[test]
    fn calls_after_the_threads_locals_are_destroyed_do_not_panic() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            EXIT_PROBE.with(|p| *p.borrow_mut() = Some(AtThreadExit(tx)));
            // Now the library's thread-locals exist (destroyed before the probe).
            let _scope = crate::reentrancy::CallbackScope::enter(7);
            set_last_error("alive");
            assert_eq!(last_error(), "alive");
        })
        .join()
        .unwrap();
        // The probe's calls returned normally; the destroyed stores hold nothing.
        assert_eq!(rx.recv().unwrap(), (true, String::new()));
    }

    #[test]
    fn short_buffer_is_left_untouched() {
        let mut buf = [b'x' as c_char; 4];
        let mut needed = 0usize;
        // SAFETY: buf is writable for its length; needed is a live usize.
        let r = unsafe { write_str("abcd", buf.as_mut_ptr(), buf.len(), &mut needed) };
        assert_eq!(r.unwrap_err().code, Code::BufferTooSmall);
        assert_eq!(needed, 4);
        assert!(buf.iter().all(|&c| c == b'x' as c_char));
        let mut big = [0 as c_char; 5];
        // SAFETY: as above.
        unsafe { write_str("abcd", big.as_mut_ptr(), big.len(), &mut needed) }.unwrap();
        assert_eq!(big.map(|c| c as u8), *b"abcd\0");
    }
}
