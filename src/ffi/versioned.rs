//! Versioned out-structs (DESIGN.md §ABI evolution): the one place that writes a struct the
//! library fills for the caller (`SwoStep`, `SwoInfo`, `SwoAdvice`, `SwoRamFigures`,
//! `SwoVfioSizes`).
//!
//! The caller sets the leading `uint32_t struct_size` to `sizeof` of the struct as its header
//! declares it. The library
//! - refuses a size below the struct's first versioned layout (`SWO_ERR_INVALID_ARG`, nothing
//!   written, and [`OutStruct::check`] runs before the core is called, so nothing is done);
//! - writes only the leading 8-byte slots that lie wholly within `struct_size` (and within
//!   its own layout), never a byte past them;
//! - sets `struct_size` to the number of bytes it wrote.
//!
//! The layout rule that makes "whole slots" the same as "whole fields": every field is 4 or 8
//! bytes, naturally aligned, with no implicit padding (a lone `uint32_t` is paired with an
//! explicit `reserved` one), so no field straddles an 8-byte slot and every `sizeof` is a
//! multiple of 8. Unit tests below and `python/tests/test_layout.py` check it for each struct.
//!
//! Appending a field is: add it at the end of the `#[repr(C)]` struct (pairing a `u32` with a
//! `reserved: u32`), fill it where the struct is built, regenerate the header
//! (`SWO_UPDATE_HEADER=1 cargo build`) and the ABI baseline
//! (`scripts/check-abi-baseline.sh --update`).
//! Nothing here changes: [`OutStruct::FIRST_SIZE`] stays the size of the 0.2 layout forever.
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::mem::size_of;

/// A struct the library fills for the caller, versioned by its leading `struct_size`.
///
/// SAFETY (for implementors): `#[repr(C)]`, 8-byte aligned, first member `struct_size: u32`,
/// every field 4 or 8 bytes, naturally aligned, no implicit padding.
pub(crate) unsafe trait OutStruct: Copy {
    /// The C name, for messages.
    const NAME: &'static str;
    /// `sizeof` of the first versioned layout (switchover 0.2.0). Never changes.
    const FIRST_SIZE: usize;

    /// A value with `struct_size` = this library's `sizeof` and every other byte zero.
    fn sized() -> Self {
        // SAFETY: an `OutStruct` is plain integers and floats (the trait's contract), for
        // which all-zero bytes are a valid value.
        let mut v: Self = unsafe { std::mem::zeroed() };
        // SAFETY: `struct_size: u32` is the first member (the trait's contract).
        unsafe { (&mut v as *mut Self).cast::<u32>().write(size_of::<Self>() as u32) };
        v
    }
}

/// The slot the library works in: a whole field never straddles one (the layout rule).
pub(crate) const SLOT: usize = 8;

/// Declares `$t` a versioned out-struct whose first versioned layout is `$first` bytes, and
/// gives it a `Default` with `struct_size` = `sizeof` (for Rust callers and tests).
macro_rules! out_struct {
    ($t:ident, $first:expr) => {
        // SAFETY: `$t` keeps the layout rule of `OutStruct` (checked by
        // `every_out_struct_keeps_the_layout_rule` and the header-based layout tests).
        unsafe impl $crate::ffi::versioned::OutStruct for $t {
            const NAME: &'static str = stringify!($t);
            const FIRST_SIZE: usize = $first;
        }
        impl Default for $t {
            fn default() -> $t {
                <$t as $crate::ffi::versioned::OutStruct>::sized()
            }
        }
    };
}
pub(crate) use out_struct;

/// A caller's out-struct pointer whose `struct_size` was checked: holds how many bytes the
/// library may write there.
pub(crate) struct Out<T: OutStruct> {
    ptr: *mut u8,
    len: usize,
    _t: PhantomData<*mut T>,
}

impl<T: OutStruct> Out<T> {
    /// The one struct-size check of a versioned out-struct argument: `p` (NULL →
    /// `SWO_ERR_NULL_ARG` naming `name`) and its `struct_size` (below `T::FIRST_SIZE` →
    /// `SWO_ERR_INVALID_ARG`). Reads only the 4 bytes of `struct_size`. Only for an export's
    /// raw out-struct argument, whose C contract (`ffi::ptr`) makes it NULL or a struct of the
    /// caller's `struct_size` bytes, writable for the call.
    pub(crate) fn check(p: *mut T, name: &str) -> Result<Out<T>> {
        if p.is_null() {
            return Err(Error::null_arg(name));
        }
        // SAFETY: non-NULL, so the caller's struct, whose first 4 bytes (`struct_size`) are
        // readable. Read unaligned: no reference to a whole `T` is formed (the caller's struct
        // may be an older, shorter one).
        let struct_size = unsafe { p.cast::<u32>().read_unaligned() } as usize;
        if struct_size < T::FIRST_SIZE {
            return Err(Error::invalid_arg(format!(
                "{}.struct_size is {struct_size}, at least {} expected (set it to sizeof({}))",
                T::NAME,
                T::FIRST_SIZE,
                T::NAME
            )));
        }
        let len = struct_size.min(size_of::<T>()) / SLOT * SLOT;
        Ok(Out { ptr: p.cast(), len, _t: PhantomData })
    }

    /// Writes the leading `len` bytes of `value`, then `struct_size` = `len`.
    pub(crate) fn write(self, value: &T) {
        // SAFETY: `ptr` is the caller's struct, writable for its `struct_size` bytes (its C
        // contract), and `len` is that size rounded down to whole slots, at most
        // `size_of::<T>()`; `value` is a distinct value of that size with no padding bytes
        // (the trait's contract); `len` >= 8 > 4, so `struct_size` lies within it.
        unsafe {
            std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), self.ptr, self.len);
            self.ptr.cast::<u32>().write_unaligned(self.len as u32);
        }
    }
}
