//! C ABI: parameters, capabilities, size parsing and formatting.
use super::*;
use std::ffi::c_char;

/// Formats `value` like QEMU's `size_to_str` into `buf` (with a NUL) when `len` is large
/// enough, and returns the length needed without the NUL. `buf` may be NULL with `len` 0.
#[no_mangle]
pub unsafe extern "C" fn swo_size_to_str(value: u64, buf: *mut c_char, len: usize) -> usize {
    let text = crate::params::size_to_str(value);
    let mut needed = 0usize;
    // SAFETY: the caller's buffer contract; a short buffer is left untouched.
    call_or(text.len(), || unsafe { write_str(&text, buf, len, &mut needed) }.map(|_| needed).unwrap_or(text.len()))
}
