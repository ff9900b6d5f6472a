//! Version, status-code names and the per-thread error message.
use super::*;
use std::ffi::c_char;

/// The library version, e.g. `"0.1.0"`: a static NUL-terminated string, never freed.
/// Any thread.
#[no_mangle]
pub extern "C" fn swo_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status code, e.g. `"SWO_ERR_NULL_ARG"`, or `"SWO_ERR_UNKNOWN"` for a number
/// that is no code. A static string, never freed. Any thread.
#[no_mangle]
pub extern "C" fn swo_status_name(code: SwoStatus) -> *const c_char {
    let name: &'static str = match Code::from_u32(code) {
        Some(c) => match c {
            Code::Ok => "SWO_OK\0",
            Code::NullArg => "SWO_ERR_NULL_ARG\0",
            Code::InvalidArg => "SWO_ERR_INVALID_ARG\0",
            Code::OutOfRange => "SWO_ERR_OUT_OF_RANGE\0",
            Code::Parse => "SWO_ERR_PARSE\0",
            Code::BadState => "SWO_ERR_BAD_STATE\0",
            Code::NotFound => "SWO_ERR_NOT_FOUND\0",
            Code::Exists => "SWO_ERR_EXISTS\0",
            Code::BufferTooSmall => "SWO_ERR_BUFFER_TOO_SMALL\0",
            Code::Reentrant => "SWO_ERR_REENTRANT\0",
            Code::Io => "SWO_ERR_IO\0",
            Code::Unsupported => "SWO_ERR_UNSUPPORTED\0",
            Code::Panic => "SWO_ERR_PANIC\0",
        },
        None => "SWO_ERR_UNKNOWN\0",
    };
    debug_assert!(Code::from_u32(code).is_none_or(|c| name.trim_end_matches('\0') == c.name()));
    name.as_ptr().cast()
}

/// Copies the calling thread's message for its last failed call into `buf` (`""` when no
/// call failed yet). Messages use QEMU's wording where QEMU has one (`Invalid size 10MB`).
/// This call never changes the stored message, so a short buffer can be retried.
/// `buf` may be NULL with `len` 0 to ask for the length; `out_len` is required.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_BUFFER_TOO_SMALL`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> SwoStatus {
    let message = last_error();
    // Not through `call`: failing here must not overwrite the message being read.
    // SAFETY: the caller's buffer contract, documented above.
    match catch_unwind(AssertUnwindSafe(|| unsafe { write_str(&message, buf, len, out_len) })) {
        Ok(Ok(())) => SWO_OK,
        Ok(Err(e)) => e.code as SwoStatus,
        Err(_) => SWO_ERR_PANIC,
    }
}
