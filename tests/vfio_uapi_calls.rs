//! The two VFIO uAPI ioctls as the kernel receives them (docs/qemu-model.md §VFIO: QEMU's
//! `vfio_query_stop_copy_size` and `vfio_query_precopy_size`, hw/vfio/migration.c).
//!
//! No VFIO device exists on a build machine, and an ioctl on any other file fails whatever its
//! argument says, so tests on `/dev/null` cannot tell a well-formed request from a broken one.
//! Here a seccomp filter on one thread traps exactly the two VFIO requests before they reach
//! the kernel (`SECCOMP_RET_TRAP`), and the `SIGSYS` handler plays the kernel: it checks the
//! request the way Linux does and answers, or fails with `EINVAL`:
//! - `VFIO_DEVICE_FEATURE` (drivers/vfio/vfio_main.c `vfio_ioctl_device_feature`): `argsz` at
//!   least the header (8) and, for `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`, `vfio_check_feature`
//!   wants `GET` set and `argsz - 8` at least `sizeof(struct
//!   vfio_device_feature_mig_data_size)` (8); the only flags a size query sends are
//!   `GET | MIG_DATA_SIZE` (0x10009);
//! - `VFIO_MIG_GET_PRECOPY_INFO` (the drivers' precopy ioctls, e.g. mlx5vf_precopy_ioctl):
//!   `argsz` at least `offsetofend(struct vfio_precopy_info, dirty_bytes)` (24).
//!
//! x86_64 only (the handler sets the syscall's return in `RAX`); other architectures build
//! this file empty, and CI runs on x86_64.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use switchover::vfio::{VfioDevice, VFIO_DEVICE_FEATURE, VFIO_MIG_GET_PRECOPY_INFO};
use switchover::{Code, Session};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// What the fake kernel reports: `stop_copy_length`, `initial_bytes`, `dirty_bytes`.
const STOP_COPY_LENGTH: u64 = 3 * GIB;
const INITIAL_BYTES: u64 = 256 * MIB;
const DIRTY_BYTES: u64 = 64 * MIB;

/// The fd and the raw `argsz`/`flags` of the last trapped request of each kind.
static FEATURE_FD: AtomicI64 = AtomicI64::new(-100);
static FEATURE_ARGSZ: AtomicU32 = AtomicU32::new(0);
static FEATURE_FLAGS: AtomicU32 = AtomicU32::new(0);
static PRECOPY_FD: AtomicI64 = AtomicI64::new(-100);
static PRECOPY_ARGSZ: AtomicU32 = AtomicU32::new(0);

/// The fake kernel. Runs on the trapped thread, in place of the syscall: reads the request's
/// registers (`RDI` fd, `RSI` request, `RDX` argument) and sets the return value in `RAX`
/// (0, or a negative errno, which the libc wrapper turns into -1 and `errno`).
extern "C" fn fake_vfio_kernel(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes the interrupted thread's ucontext; the argument pointer is the
    // library's live buffer of `argsz` bytes (checked before any write past the header).
    unsafe {
        let gregs = &mut (*(ctx as *mut libc::ucontext_t)).uc_mcontext.gregs;
        let fd = gregs[libc::REG_RDI as usize];
        let request = gregs[libc::REG_RSI as usize] as u64 as u32;
        let arg = gregs[libc::REG_RDX as usize] as usize as *mut u8;
        let argsz = std::ptr::read_unaligned(arg as *const u32);
        let flags = std::ptr::read_unaligned(arg.add(4) as *const u32);
        let ret: i64 = if request == VFIO_DEVICE_FEATURE {
            FEATURE_FD.store(fd, Ordering::SeqCst);
            FEATURE_ARGSZ.store(argsz, Ordering::SeqCst);
            FEATURE_FLAGS.store(flags, Ordering::SeqCst);
            if argsz < 16 || flags != (1 << 16) | 9 {
                -(libc::EINVAL as i64)
            } else {
                std::ptr::write_unaligned(arg.add(8) as *mut u64, STOP_COPY_LENGTH);
                0
            }
        } else if request == VFIO_MIG_GET_PRECOPY_INFO {
            PRECOPY_FD.store(fd, Ordering::SeqCst);
            PRECOPY_ARGSZ.store(argsz, Ordering::SeqCst);
            if argsz < 24 {
                -(libc::EINVAL as i64)
            } else {
                std::ptr::write_unaligned(arg.add(8) as *mut u64, INITIAL_BYTES);
                std::ptr::write_unaligned(arg.add(16) as *mut u64, DIRTY_BYTES);
                0
            }
        } else {
            -(libc::ENOSYS as i64)
        };
        gregs[libc::REG_RAX as usize] = ret;
    }
}

/// Installs the `SIGSYS` handler and, on the calling thread only, a seccomp filter that traps
/// `ioctl` with one of the two VFIO requests and lets every other syscall through. `Err`: the
/// kernel or the sandbox refuses seccomp filters (the tests cannot run here).
fn trap_vfio_ioctls_on_this_thread() -> Result<(), std::io::Error> {
    const NR: u32 = 0; // offsetof(struct seccomp_data, nr)
    const ARG1: u32 = 16 + 8; // args[1], low 32 bits (little-endian)
    let stmt = |code: u16, k: u32| libc::sock_filter { code, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut program = [
        stmt(ld, NR),
        jeq(libc::SYS_ioctl as u32, 0, 3),
        stmt(ld, ARG1),
        jeq(VFIO_DEVICE_FEATURE, 2, 0),
        jeq(VFIO_MIG_GET_PRECOPY_INFO, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ret, libc::SECCOMP_RET_TRAP),
    ];
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_mut_ptr() };
    // SAFETY: a valid handler and a valid filter program that outlives the prctl call.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = fake_vfio_kernel as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        assert_eq!(libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()), 0);
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let rc = libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const _);
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs `f` on a fresh thread that has the fake kernel (the filter dies with the thread), one
/// test at a time (the recorded requests are shared).
fn with_fake_vfio_kernel(f: impl FnOnce() + Send + 'static) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::spawn(move || match trap_vfio_ioctls_on_this_thread() {
        Ok(()) => f(),
        // Said loudly (cargo test shows it with --nocapture, and in the log of a failure
        // elsewhere): a machine without seccomp filters cannot play the kernel this way.
        Err(e) => eprintln!("vfio_uapi_calls: SKIPPED: seccomp filters refused here: {e}"),
    })
    .join()
    .unwrap();
}

/// `vfio_query_stop_copy_size`: one `VFIO_DEVICE_FEATURE` on the device fd with
/// `argsz = sizeof(feature) + sizeof(mig_data_size)` = 16 and `flags = GET | MIG_DATA_SIZE`;
/// the kernel's `stop_copy_length` becomes the device's stop-copy size.
#[test]
fn the_stop_copy_size_query_is_a_feature_get_the_kernel_accepts() {
    with_fake_vfio_kernel(|| {
        let session = Arc::new(Session::new());
        let file = std::fs::File::open("/dev/null").unwrap();
        let d = VfioDevice::with_fd(&session, "gpu0", file.as_raw_fd()).unwrap();
        assert_eq!(FEATURE_FD.load(Ordering::SeqCst), file.as_raw_fd() as i64);
        assert_eq!(FEATURE_ARGSZ.load(Ordering::SeqCst), 16);
        assert_eq!(FEATURE_FLAGS.load(Ordering::SeqCst), 0x1_0009);
        assert_eq!(d.sizes().stopcopy_size, STOP_COPY_LENGTH);
        d.refresh().unwrap();
        assert_eq!(d.sizes().stopcopy_size, STOP_COPY_LENGTH);
    });
}

/// `vfio_query_precopy_size`: `VFIO_MIG_GET_PRECOPY_INFO` on the migration data fd with
/// `argsz = sizeof(struct vfio_precopy_info)` = 24; the answer becomes init and dirty, and the
/// stop-copy bucket is the rest: 3 GiB - (256 + 64) MiB.
#[test]
fn the_precopy_info_query_carries_its_argsz_to_the_data_fd() {
    with_fake_vfio_kernel(|| {
        let session = Arc::new(Session::new());
        let device = std::fs::File::open("/dev/null").unwrap();
        let data = std::fs::File::open("/dev/null").unwrap();
        let d = VfioDevice::with_fd(&session, "gpu0", device.as_raw_fd()).unwrap();
        d.set_state(6).unwrap(); // PRE_COPY
        d.set_data_fd(data.as_raw_fd()).unwrap();
        d.refresh().unwrap();
        assert_eq!(PRECOPY_FD.load(Ordering::SeqCst), data.as_raw_fd() as i64);
        assert_eq!(PRECOPY_ARGSZ.load(Ordering::SeqCst), 24);
        let s = d.sizes();
        assert_eq!((s.precopy_init_size, s.precopy_dirty_size), (INITIAL_BYTES, DIRTY_BYTES));
        assert_eq!(d.pending().stopcopy, 3 * GIB - 320 * MIB);
    });
}

/// fd 0 is a file descriptor like any other (only -1 means "unset", and below it is refused):
/// a data fd of 0 is asked, not taken for "no data fd".
#[test]
fn a_data_fd_of_zero_is_a_data_fd() {
    with_fake_vfio_kernel(|| {
        let session = Arc::new(Session::new());
        let device = std::fs::File::open("/dev/null").unwrap();
        let d = VfioDevice::with_fd(&session, "gpu0", device.as_raw_fd()).unwrap();
        d.set_state(7).unwrap(); // PRE_COPY_P2P
        d.set_data_fd(0).unwrap();
        d.refresh().unwrap();
        assert_eq!(PRECOPY_FD.load(Ordering::SeqCst), 0);
        let s = d.sizes();
        assert_eq!((s.precopy_init_size, s.precopy_dirty_size), (INITIAL_BYTES, DIRTY_BYTES));
        d.set_data_fd(-1).unwrap();
        assert_eq!(d.refresh().unwrap_err().code, Code::BadState, "-1 unsets it");
    });
}

/// The same for the device fd: 0 is a valid descriptor (a VMM whose stdin is closed may get
/// its VFIO device as fd 0), refused only below it.
#[test]
fn a_device_fd_of_zero_is_a_device_fd() {
    with_fake_vfio_kernel(|| {
        let session = Arc::new(Session::new());
        let d = VfioDevice::with_fd(&session, "gpu0", 0).unwrap();
        assert_eq!(FEATURE_FD.load(Ordering::SeqCst), 0);
        assert_eq!(d.sizes().stopcopy_size, STOP_COPY_LENGTH);
        let refused = VfioDevice::with_fd(&session, "gpu1", -1).map(|_| ()).unwrap_err();
        assert_eq!(refused.code, Code::InvalidArg);
    });
}
