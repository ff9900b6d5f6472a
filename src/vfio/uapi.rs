//! The kernel's VFIO migration uAPI (include/uapi/linux/vfio.h), written out because the build
//! machine's kernel headers predate it, and checked at compile time: the device states, the two
//! ioctls' request numbers and layouts, and [`FdReader`], which reads a device's sizes with them.
//! [`SizeReader`] is where a device's sizes come from (the VMM's own readers or [`FdReader`]).
use crate::error::{Error, Result};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

crate::abi_enum::abi_enum! {
    /// uAPI migration device states (`enum vfio_device_mig_state`; `SWO_VFIO_STATE_*`), named
    /// as QEMU's `mig_state_to_str` (hw/vfio/migration.c) spells them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DeviceState {
        Error = 0 => "ERROR",
        Stop = 1 => "STOP",
        Running = 2 => "RUNNING",
        StopCopy = 3 => "STOP_COPY",
        Resuming = 4 => "RESUMING",
        RunningP2p = 5 => "RUNNING_P2P",
        PreCopy = 6 => "PRE_COPY",
        PreCopyP2p = 7 => "PRE_COPY_P2P",
    }
}

impl DeviceState {
    /// PRE_COPY or PRE_COPY_P2P: the only states where precopy info may be read.
    pub fn is_precopy(self) -> bool {
        matches!(self, DeviceState::PreCopy | DeviceState::PreCopyP2p)
    }
}


/// Why a precopy-info read gave nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecopyFailure {
    /// The read failed with this errno (positive).
    Errno(i32),
    /// There is nothing to read from: no data fd set, or no precopy reader.
    Unavailable,
}

/// Where a device's sizes come from. Called with no library lock held, from whichever thread
/// queries or refreshes, possibly from several at once.
pub trait SizeReader: Send + Sync {
    /// The device's estimate of everything stop-copy would send (`stop_copy_length`), or a
    /// positive errno.
    fn stop_copy_size(&self) -> std::result::Result<u64, i32>;
    /// `(initial_bytes, dirty_bytes)`; only called in PRE_COPY / PRE_COPY_P2P.
    fn precopy_info(&self) -> std::result::Result<(u64, u64), PrecopyFailure>;
    /// Sets the migration data fd (-1 unsets it). Only fd-backed readers have one.
    fn set_data_fd(&self, _fd: RawFd) -> Result<()> {
        Err(Error::unsupported(
            "this VFIO device reads its sizes through the VMM's SwoVfioOps; it has no data fd",
        ))
    }
}

/// `_IOC_NONE` and the direction shift of `_IOC` differ on a few architectures.
#[cfg(any(target_arch = "powerpc", target_arch = "powerpc64", target_arch = "mips",
          target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64"))]
const IOC_NONE_BITS: u32 = 1 << 29;
#[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64", target_arch = "mips",
              target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64")))]
const IOC_NONE_BITS: u32 = 0;

/// `_IO(type, nr)`: no direction, no size.
const fn io(ty: u8, nr: u8) -> u32 {
    IOC_NONE_BITS | ((ty as u32) << 8) | nr as u32
}

/// `VFIO_TYPE`.
const VFIO_TYPE: u8 = b';';
/// `VFIO_BASE`.
const VFIO_BASE: u8 = 100;
/// `VFIO_DEVICE_FEATURE` = `_IO(VFIO_TYPE, VFIO_BASE + 17)`.
pub const VFIO_DEVICE_FEATURE: u32 = io(VFIO_TYPE, VFIO_BASE + 17);
/// `VFIO_MIG_GET_PRECOPY_INFO` = `_IO(VFIO_TYPE, VFIO_BASE + 21)`.
pub const VFIO_MIG_GET_PRECOPY_INFO: u32 = io(VFIO_TYPE, VFIO_BASE + 21);
/// `VFIO_DEVICE_FEATURE_GET`: bit 16 (SET is bit 17, PROBE bit 18; the low 16 bits hold
/// the feature index).
pub const VFIO_DEVICE_FEATURE_GET: u32 = 1 << 16;
/// `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`.
pub const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: u32 = 9;

#[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64", target_arch = "mips",
              target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64")))]
const _: () = {
    assert!(VFIO_DEVICE_FEATURE == 0x3b75);
    assert!(VFIO_MIG_GET_PRECOPY_INFO == 0x3b79);
};

/// `struct vfio_device_feature` (argsz, flags) followed by its data, here
/// `struct vfio_device_feature_mig_data_size { __aligned_u64 stop_copy_length; }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioDeviceFeatureMigDataSize {
    pub argsz: u32,
    pub flags: u32,
    pub stop_copy_length: u64,
}

/// `struct vfio_precopy_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioPrecopyInfo {
    pub argsz: u32,
    pub flags: u32,
    pub initial_bytes: u64,
    pub dirty_bytes: u64,
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<VfioDeviceFeatureMigDataSize>() == 16);
    assert!(align_of::<VfioDeviceFeatureMigDataSize>() == 8);
    assert!(offset_of!(VfioDeviceFeatureMigDataSize, argsz) == 0);
    assert!(offset_of!(VfioDeviceFeatureMigDataSize, flags) == 4);
    assert!(offset_of!(VfioDeviceFeatureMigDataSize, stop_copy_length) == 8);
    assert!(size_of::<VfioPrecopyInfo>() == 24);
    assert!(align_of::<VfioPrecopyInfo>() == 8);
    assert!(offset_of!(VfioPrecopyInfo, argsz) == 0);
    assert!(offset_of!(VfioPrecopyInfo, flags) == 4);
    assert!(offset_of!(VfioPrecopyInfo, initial_bytes) == 8);
    assert!(offset_of!(VfioPrecopyInfo, dirty_bytes) == 16);
};

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().filter(|e| *e > 0).unwrap_or(libc::EIO)
}

/// Sizes read from the kernel. The fds stay the VMM's: the library never closes them.
pub struct FdReader {
    device_fd: RawFd,
    data_fd: AtomicI32,
}

impl FdReader {
    pub fn new(device_fd: RawFd) -> FdReader {
        FdReader { device_fd, data_fd: AtomicI32::new(-1) }
    }
}

impl SizeReader for FdReader {
    fn stop_copy_size(&self) -> std::result::Result<u64, i32> {
        let mut buf = VfioDeviceFeatureMigDataSize {
            argsz: std::mem::size_of::<VfioDeviceFeatureMigDataSize>() as u32,
            flags: VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
            stop_copy_length: 0,
        };
        // SAFETY: VFIO_DEVICE_FEATURE reads argsz/flags and writes at most argsz bytes into
        // the buffer, which is a live, exclusively borrowed struct of exactly argsz bytes
        // with the uAPI layout (checked above). A bad fd only makes the call fail.
        let rc = unsafe {
            libc::ioctl(self.device_fd, VFIO_DEVICE_FEATURE as _, &mut buf as *mut _)
        };
        if rc != 0 {
            return Err(last_errno());
        }
        Ok(buf.stop_copy_length)
    }

    fn precopy_info(&self) -> std::result::Result<(u64, u64), PrecopyFailure> {
        let fd = self.data_fd.load(Ordering::Acquire);
        if fd < 0 {
            return Err(PrecopyFailure::Unavailable);
        }
        // The v2 `flags` opt-in is not used: send 0 and ignore whatever comes back.
        let mut info = VfioPrecopyInfo {
            argsz: std::mem::size_of::<VfioPrecopyInfo>() as u32,
            ..Default::default()
        };
        // SAFETY: VFIO_MIG_GET_PRECOPY_INFO writes at most argsz bytes into `info`, a live,
        // exclusively borrowed struct of exactly argsz bytes with the uAPI layout.
        let rc = unsafe { libc::ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO as _, &mut info as *mut _) };
        if rc != 0 {
            return Err(PrecopyFailure::Errno(last_errno()));
        }
        Ok((info.initial_bytes, info.dirty_bytes))
    }

    fn set_data_fd(&self, fd: RawFd) -> Result<()> {
        if fd < -1 {
            return Err(Error::invalid_arg(format!("data fd {fd} is invalid (-1 unsets it)")));
        }
        self.data_fd.store(fd, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_and_flags_match_the_uapi() {
        assert_eq!(VFIO_DEVICE_FEATURE & 0xff, 117);
        assert_eq!((VFIO_DEVICE_FEATURE >> 8) & 0xff, b';' as u32);
        assert_eq!(VFIO_MIG_GET_PRECOPY_INFO & 0xff, 121);
        assert_eq!(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 0x1_0009);
    }

    #[test]
    fn device_states_are_the_uapi_numbers() {
        assert_eq!(DeviceState::from_u32(6), Some(DeviceState::PreCopy));
        assert_eq!(DeviceState::from_u32(7), Some(DeviceState::PreCopyP2p));
        assert_eq!(DeviceState::from_u32(8), None);
        assert!(!DeviceState::Running.is_precopy());
    }
}
