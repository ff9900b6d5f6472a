//! Thin wrappers over the system calls the core needs, so the core itself stays free of
//! `unsafe`.
//!
//! Today that is `membarrier(2)`, the kernel half of the asymmetric fence the handler registry
//! uses (see `pending/registry.rs`): readers on the hot path order their accesses with a
//! compiler fence only, and the rare writer makes every running thread of the process execute
//! a full memory barrier with `MEMBARRIER_CMD_PRIVATE_EXPEDITED`.
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// `enum membarrier_cmd` of `<linux/membarrier.h>` (uapi, stable numbers).
#[cfg(target_os = "linux")]
mod cmd {
    pub const QUERY: libc::c_int = 0;
    pub const GLOBAL: libc::c_int = 1 << 0;
    pub const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    pub const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
}

#[cfg(target_os = "linux")]
fn membarrier(command: libc::c_int) -> io::Result<libc::c_long> {
    // SAFETY: membarrier takes three plain integers (cmd, flags, cpu_id) and touches no
    // memory of ours; any command number is safe to pass (unknown ones give EINVAL).
    let (flags, cpu_id): (libc::c_uint, libc::c_int) = (0, 0);
    let r = unsafe { libc::syscall(libc::SYS_membarrier, command, flags, cpu_id) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Set (to anything but `0` or empty) in the environment, keeps the library from calling
/// `membarrier` at all: for a VMM whose seccomp filter kills on system calls it does not
/// list, rather than failing them with ENOSYS or EPERM.
pub const NO_MEMBARRIER_ENV: &str = "SWITCHOVER_NO_MEMBARRIER";

/// Whether this process may use [`process_barrier`]: the kernel offers
/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` and the process registered for it. Decided once per
/// process (registration is per address space, kept across `fork`, dropped by `exec`, which
/// also drops this library). False when the call is missing (old kernel, not Linux), refused
/// (seccomp: ENOSYS or EPERM), or [`NO_MEMBARRIER_ENV`] is set; then callers must use real
/// fences on both sides. Turns false for good once [`process_barrier`] failed.
pub fn process_barrier_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| !opted_out() && register()) && !REFUSED.load(Ordering::Relaxed)
}

/// Set when [`process_barrier`] failed in this process.
static REFUSED: AtomicBool = AtomicBool::new(false);

fn opted_out() -> bool {
    opts_out(std::env::var_os(NO_MEMBARRIER_ENV).as_deref())
}

/// Whether a value of [`NO_MEMBARRIER_ENV`] opts out: set, not empty and not `0`.
fn opts_out(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(target_os = "linux")]
fn register() -> bool {
    // Miri cannot run `membarrier`: it checks the full-fence protocol instead.
    if cfg!(miri) {
        return false;
    }
    let needed = cmd::PRIVATE_EXPEDITED | cmd::REGISTER_PRIVATE_EXPEDITED;
    match membarrier(cmd::QUERY) {
        Ok(mask) if (mask as libc::c_int) & needed == needed => {}
        _ => return false,
    }
    // Registering once is enough for every thread of the process, now and later; the first
    // expedited barrier proves it works here (some sandboxes allow QUERY only).
    membarrier(cmd::REGISTER_PRIVATE_EXPEDITED).is_ok()
        && membarrier(cmd::PRIVATE_EXPEDITED).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn register() -> bool {
    false
}

/// Makes every running thread of this process execute a full memory barrier before this
/// returns (threads not running go through one when they are scheduled). The caller itself
/// is ordered too: the kernel issues a full barrier before and after. Only call it when
/// [`process_barrier_available`] said true.
///
/// Registration cannot be lost in a live process, but the call can start failing when the
/// process installs a seccomp filter after [`process_barrier_available`] decided (per thread:
/// the filtered threads fail, the others not). Re-registering and the slower
/// `MEMBARRIER_CMD_GLOBAL` (a barrier on every CPU of the system) are tried before giving up
/// with the error; then the process counts as without barrier from now on, and the caller
/// must fall back to real fences on both sides (see `pending/registry.rs`).
#[cfg(target_os = "linux")]
pub fn process_barrier() -> io::Result<()> {
    match membarrier(cmd::PRIVATE_EXPEDITED) {
        Ok(_) => Ok(()),
        Err(first) => {
            if membarrier(cmd::REGISTER_PRIVATE_EXPEDITED).is_ok()
                && membarrier(cmd::PRIVATE_EXPEDITED).is_ok()
            {
                return Ok(());
            }
            membarrier(cmd::GLOBAL).map(|_| ()).map_err(|_| {
                REFUSED.store(true, Ordering::Relaxed);
                first
            })
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn process_barrier() -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Test support: says on the terminal that a test (or a part of one) did not run here, and
/// why. Written to the process's stderr directly, past the test harness's output capture, so
/// `cargo test` shows it for passing tests too (Rust tests cannot report a skip themselves).
#[doc(hidden)]
pub fn report_skipped(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(io::stderr().lock(), "SKIPPED {test}: {reason}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn a_registered_process_barrier_succeeds() {
        if !process_barrier_available() {
            report_skipped(
                "sys::tests::a_registered_process_barrier_succeeds",
                "membarrier(PRIVATE_EXPEDITED) is not available here (old kernel, seccomp, or \
                 SWITCHOVER_NO_MEMBARRIER set)",
            );
            return;
        }
        process_barrier().unwrap();
        process_barrier().unwrap();
        assert!(process_barrier_available(), "a working barrier keeps the mode");
    }

    /// Runs everywhere: which values of SWITCHOVER_NO_MEMBARRIER opt out.
    #[test]
    fn only_a_set_non_zero_value_opts_out() {
        assert!(!opts_out(None));
        assert!(!opts_out(Some(OsStr::new(""))));
        assert!(!opts_out(Some(OsStr::new("0"))));
        assert!(opts_out(Some(OsStr::new("1"))));
        assert!(opts_out(Some(OsStr::new("yes"))));
        assert!(opts_out(Some(OsStr::new("00"))));
    }
}
