//! The registry: `unregister` when `membarrier` stops working after the registry chose
//! the asymmetric fence.
//!
//! `sys::process_barrier_available()` is decided once, when the first session is created. A
//! VMM that installs its seccomp filter afterwards (cloud-hypervisor, Firecracker and crosvm
//! install theirs per thread, after setup) makes every later `membarrier` fail with the
//! filter's errno. `pending::process_barrier` then retries forever (sleeping up to 10 ms), so
//! `swo_unregister_handler` never returns: a hang at device hot-unplug or VM shutdown, with no
//! error code. docs/design.md §Threading promises `SWO_ERR_*` codes, never a deadlock.
//!
//! This file is its own test binary because it installs a seccomp filter (on one thread
//! only). Linux x86_64 only.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]
use std::sync::mpsc;
use std::time::Duration;
use switchover::{HandlerFlags, Pending, PendingSource, Session};

struct Nothing;
impl PendingSource for Nothing {
    fn save_query_pending(&self, _p: &mut Pending, _exact: bool, _final: bool) {}
}

/// Installs, on the calling thread, a seccomp filter that fails `membarrier` with EPERM and
/// allows everything else. Returns false when the kernel refuses filters here.
fn refuse_membarrier_on_this_thread() -> bool {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code: u16, k: u32| libc::sock_filter { code, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter { code: 0x15, jt, jf, k };
    let mut filter = [
        stmt(0x20, 4), // ld arch
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        stmt(0x06, SECCOMP_RET_ALLOW),
        stmt(0x20, 0), // ld nr
        jeq(libc::SYS_membarrier as u32, 0, 1),
        stmt(0x06, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(0x06, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_mut_ptr() };
    // SAFETY: prctl with documented arguments; `prog` outlives the call.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const _) == 0
    }
}

const NAME: &str = "registry_membarrier_refused";

#[test]
fn unregister_returns_when_membarrier_is_refused_after_the_session_was_created() {
    // The VMM starts: the first session decides the fence mode (asymmetric on this kernel).
    let session = std::sync::Arc::new(Session::new());
    if !switchover::sys::process_barrier_available() {
        // Without membarrier the registry uses full fences from the start: what this test
        // shows (the switch away from a barrier that starts failing) cannot happen. The
        // full-fence path is covered by pending::tests on every machine.
        switchover::sys::report_skipped(
            NAME,
            if std::env::var_os(switchover::sys::NO_MEMBARRIER_ENV).is_some() {
                "SWITCHOVER_NO_MEMBARRIER is set"
            } else {
                "membarrier(PRIVATE_EXPEDITED) is not available on this kernel"
            },
        );
        let id = session.registry().register("dev", 0, HandlerFlags::empty(), Box::new(Nothing)).unwrap();
        session.registry().unregister(id).unwrap();
        return;
    }
    let id = session.registry().register("dev", 0, HandlerFlags::empty(), Box::new(Nothing)).unwrap();

    // Then it sandboxes its threads, and one of them unplugs the device.
    let (done, finished) = mpsc::channel();
    let unplug = {
        let session = session.clone();
        std::thread::spawn(move || {
            if !refuse_membarrier_on_this_thread() {
                done.send(None).unwrap();
                return;
            }
            let result = session.registry().unregister(id).map_err(|e| e.code);
            done.send(Some(result)).unwrap();
        })
    };
    // Not a timing assertion: a correct unregister returns in microseconds; 20 s only keeps
    // a hang from blocking the test run forever.
    match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(None) => {
            unplug.join().unwrap();
            switchover::sys::report_skipped(NAME, "the kernel refuses seccomp filters here (prctl failed)");
            // The part that needs no filter still runs: unregistering with the barrier working.
            session.registry().unregister(id).unwrap();
        }
        Ok(Some(result)) => {
            unplug.join().unwrap();
            assert_eq!(result, Ok(()));
            // The refused barrier was noticed: new registries start with full fences.
            assert!(!switchover::sys::process_barrier_available());
            // The session goes on (queries now on full fences) and unregisters again.
            let id = session.registry().register("dev", 1, HandlerFlags::empty(), Box::new(Nothing)).unwrap();
            session.registry().query(switchover::pending::QueryKind::Fast).unwrap();
            session.registry().unregister(id).unwrap();
        }
        Err(_) => panic!(
            "swo_unregister_handler never returned: membarrier fails with EPERM and \
             pending::process_barrier retries it forever"
        ),
    }
}
