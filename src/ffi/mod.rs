//! The C ABI shell: `extern "C"` functions that check and convert their arguments, call the
//! core, and turn its result into a status code. No decisions live here.
//!
//! Every exported function runs inside [`call`] (panic boundary, last-error message), most of
//! them through [`ptr::handle_call`] on their handle, and takes its pointer arguments through
//! [`ptr`]'s helpers (the C contract is asserted there once), never by hand. `unsafe` in the
//! exports is left for what they assert themselves (a C callback called, a handle freed).
#![deny(missing_docs)]
#![allow(clippy::missing_safety_doc)] // the C contract is in each doc comment

pub mod engine;
#[cfg(test)]
mod layout_tests;
pub mod params;
pub mod pending;
pub(crate) mod ptr;
pub mod ram;
pub mod report;
pub mod session;
pub mod status;
pub mod types;
pub(crate) mod versioned;
pub mod vfio;

pub use types::*;
pub(crate) use ptr::{
    arg, check_ops, cstr, handle, handle_call, into_handle, keep_handle, opt_arg, out, session_call,
    take_handle, try_handle, write_str, Handle,
};

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
}
