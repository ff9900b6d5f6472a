//! Which sessions the current thread is inside a callback of.
//!
//! A handler callback that calls back into a function that would wait for that very callback
//! (unregistering, querying, stepping) gets `SWO_ERR_REENTRANT` instead of a deadlock. The
//! library marks the thread while it runs a callback, and those functions check the mark.
//!
//! The marks live in a thread-local, which the thread's exit destroys before anything that
//! runs after it: the main thread's `atexit` handlers (glibc runs thread-local destructors
//! first), other thread-local destructors. A call from there finds no marks and counts as
//! "not inside a callback": it must never panic (a panic there would abort the VMM).
use crate::error::{Error, Result};
use std::cell::RefCell;

thread_local! {
    static INSIDE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Marks the current thread as running a callback of `session_id` until dropped.
pub struct CallbackScope {
    session_id: u64,
}

impl CallbackScope {
    pub fn enter(session_id: u64) -> CallbackScope {
        // A destroyed list (thread exiting) cannot hold the mark; the scope still works.
        let _ = INSIDE.try_with(|v| v.borrow_mut().push(session_id));
        CallbackScope { session_id }
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|v| {
            let mut v = v.borrow_mut();
            if let Some(pos) = v.iter().rposition(|&id| id == self.session_id) {
                v.remove(pos);
            }
        });
    }
}

/// True while the current thread runs a callback of `session_id`. False once the thread's
/// marks were destroyed (the thread is exiting).
pub fn inside(session_id: u64) -> bool {
    INSIDE.try_with(|v| v.borrow().contains(&session_id)).unwrap_or(false)
}

/// `Err(SWO_ERR_REENTRANT)` when `call` is made from a callback of the same session.
pub fn check(session_id: u64, call: &str) -> Result<()> {
    if inside(session_id) {
        Err(Error::reentrant(call))
    } else {
        Ok(())
    }
}
