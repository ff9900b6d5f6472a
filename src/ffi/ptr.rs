//! Pointer arguments: the one place that turns what a C caller passed into Rust references.
//!
//! # The C contract these helpers rest on
//! Every exported function documents, and its caller promises, that
//! - a handle argument (`SwoSession *`, `SwoRam *`, `SwoVfio *`) is NULL or a pointer its
//!   `_new` wrote and its `_free` has not freed, and no `_free` of it runs or starts during
//!   the call;
//! - any other pointer argument is NULL or points to a properly aligned value of its type,
//!   readable (and writable, for an out-parameter) for the whole call, that no other thread
//!   writes during it; a string is NUL-terminated; a buffer is writable for its `len` bytes.
//!
//! That promise is asserted here, once per kind of pointer, instead of in every export (the
//! shape of rustls-ffi's `Castable` and `try_ref_from_ptr!`): the helpers below are safe to
//! call *on the raw arguments of an export*, and only there; they check NULL (giving
//! `SWO_ERR_NULL_ARG` with the argument's name) and hand out references that live no longer
//! than the call. Nothing outside `ffi` can reach them.
use super::{call, reentrancy, SwoSession, SwoStatus};
use crate::error::{Code, Error, Result};
use crate::Session;
use std::ffi::{c_char, CStr};
use std::sync::Arc;

/// A handle type of the C ABI: C holds a pointer to a boxed `Self`, written by its `_new`
/// ([`into_handle`]) and taken back by its `_free` ([`take_handle`]).
pub(crate) trait Handle: Sized + 'static {
    /// What the shell works on.
    type Target;
    /// The argument name a NULL handle is reported under (`'<ARG>' must not be NULL`).
    const ARG: &'static str;
    /// The object behind the handle.
    fn target(&self) -> &Self::Target;
    /// The session whose queued events a call on this handle delivers when it ends (see
    /// [`handle_call`]); `None`: the call leaves them queued.
    fn events_of(_target: &Self::Target) -> Option<&Arc<Session>> {
        None
    }
}

impl Handle for SwoSession {
    type Target = Arc<Session>;
    const ARG: &'static str = "session";
    fn target(&self) -> &Arc<Session> {
        &self.inner
    }
    fn events_of(session: &Arc<Session>) -> Option<&Arc<Session>> {
        Some(session)
    }
}

/// The object behind a handle argument, `None` for NULL (the hot path: no error is built).
#[inline]
pub(crate) fn try_handle<'a, H: Handle>(p: *const H) -> Option<&'a H::Target> {
    // SAFETY: the handle contract (module doc): NULL, or a live `Box<H>` from `into_handle`
    // that nobody frees during the call, so a shared borrow for the call is valid.
    unsafe { p.as_ref() }.map(H::target)
}

/// The object behind a handle argument; NULL gives `SWO_ERR_NULL_ARG` naming [`Handle::ARG`].
#[inline]
pub(crate) fn handle<'a, H: Handle>(p: *const H) -> Result<&'a H::Target> {
    try_handle(p).ok_or_else(|| Error::null_arg(H::ARG))
}

/// Boxes `value` and gives C its handle.
pub(crate) fn into_handle<H: Handle>(value: H) -> *mut H {
    Box::into_raw(Box::new(value))
}

/// Takes back the box behind a handle given to `_free` (`None` for NULL). The caller either
/// drops it or, when it must stay valid (a free refused inside a callback), gives it back
/// with [`keep_handle`].
pub(crate) fn take_handle<H: Handle>(p: *mut H) -> Option<Box<H>> {
    // SAFETY: the handle contract (module doc) for `_free`: `p` is NULL or came from
    // `into_handle` (so from `Box::into_raw`), and no other call on it runs or starts, so this
    // is the only owner.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

/// Leaves a handle taken by [`take_handle`] allocated, under the same pointer.
pub(crate) fn keep_handle<H: Handle>(boxed: Box<H>) {
    let _ = Box::into_raw(boxed);
}

/// The call wrapper of every export on a handle: the panic boundary ([`call`]) around `f` on
/// the object behind `p` (NULL gives `SWO_ERR_NULL_ARG`), then delivery of the events it
/// raised (see [`Handle::events_of`]) unless the caller is itself inside a callback of that
/// session: the outer call delivers them once it is out.
#[inline]
pub(crate) fn handle_call<H: Handle>(
    p: *const H,
    f: impl FnOnce(&H::Target) -> Result<()>,
) -> SwoStatus {
    call(|| {
        let target = handle(p)?;
        let result = f(target);
        if let Some(session) = H::events_of(target) {
            if !reentrancy::inside(session.id()) {
                session.flush_events();
            }
        }
        result
    })
}

/// [`handle_call`] on a session handle.
#[inline]
pub(crate) fn session_call(
    s: *const SwoSession,
    f: impl FnOnce(&Arc<Session>) -> Result<()>,
) -> SwoStatus {
    handle_call(s, f)
}

/// Borrows a pointer argument; NULL gives `SWO_ERR_NULL_ARG` naming the argument.
#[inline]
pub(crate) fn arg<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the pointer contract (module doc): NULL or a readable, aligned `T` for the call.
    unsafe { p.as_ref() }.ok_or_else(|| Error::null_arg(name))
}

/// A pointer argument that may be NULL: `None` for NULL.
#[inline]
pub(crate) fn opt_arg<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: as in `arg`.
    unsafe { p.as_ref() }
}

/// Borrows an out-parameter; NULL gives `SWO_ERR_NULL_ARG`. Write it only on success.
#[inline]
pub(crate) fn out<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: the pointer contract (module doc): NULL or writable, aligned memory for `T`
    // that nothing else touches during the call.
    unsafe { p.as_mut() }.ok_or_else(|| Error::null_arg(name))
}

/// Borrows a C string argument: NULL gives `SWO_ERR_NULL_ARG`, bytes that are not UTF-8
/// `SWO_ERR_INVALID_ARG`.
pub(crate) fn cstr<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::null_arg(name));
    }
    // SAFETY: non-NULL, and NUL-terminated and unchanged for the call (the string contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::invalid_arg(format!("'{name}' is not valid UTF-8")))
}

/// Writes `text` and a NUL into the caller's buffer under the library's string convention:
/// `*out_len` always gets the length without the NUL; a NULL `buf` with `len` 0 only asks
/// for that length (`SWO_OK`); a buffer too short for text + NUL gives
/// `SWO_ERR_BUFFER_TOO_SMALL` and is left untouched.
pub(crate) fn write_str(text: &str, buf: *mut c_char, len: usize, out_len: *mut usize) -> Result<()> {
    let out_len = out(out_len, "out_len")?;
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
    // SAFETY: `buf` is writable for `len` > text.len() bytes (the buffer contract); the source
    // is a Rust string, distinct from the caller's buffer, so the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// An ops table the caller hands in (`SwoVmmOps`, `SwoRamOps`, `SwoVfioOps`,
/// `SwoHandlerOps`): versioned by a leading `struct_size` that must reach the first layout.
pub(crate) trait OpsStruct {
    /// The C name, for messages.
    const NAME: &'static str;
    /// The smallest `struct_size` accepted (the table's first version).
    const FIRST_SIZE: usize;
    /// The caller's `struct_size`.
    fn struct_size(&self) -> u32;
    /// The caller's `reserved` field, for the tables that have one (it must be 0).
    fn reserved(&self) -> Option<u32>;
}

/// The one check of an ops table's header: `struct_size` below the first version, or a
/// `reserved` that is not 0, gives `SWO_ERR_INVALID_ARG` (in that order).
pub(crate) fn check_ops<T: OpsStruct>(ops: &T) -> Result<()> {
    if (ops.struct_size() as usize) < T::FIRST_SIZE {
        return Err(Error::invalid_arg(format!(
            "{}.struct_size is {}, at least {} expected",
            T::NAME,
            ops.struct_size(),
            T::FIRST_SIZE
        )));
    }
    if ops.reserved().is_some_and(|r| r != 0) {
        return Err(Error::invalid_arg(format!("{}.reserved must be 0", T::NAME)));
    }
    Ok(())
}

/// Declares an ops table: `ops_struct!(SwoVmmOps, reserved)` for one with a `reserved` field,
/// `ops_struct!(SwoHandlerOps)` for one without. Its first version is its current `sizeof`.
macro_rules! ops_struct {
    ($t:ident $(, $reserved:ident)?) => {
        impl $crate::ffi::ptr::OpsStruct for $t {
            const NAME: &'static str = stringify!($t);
            const FIRST_SIZE: usize = std::mem::size_of::<$t>();
            fn struct_size(&self) -> u32 {
                self.struct_size
            }
            fn reserved(&self) -> Option<u32> {
                None $(.or(Some(self.$reserved)))?
            }
        }
    };
}
pub(crate) use ops_struct;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffer_is_left_untouched() {
        let mut buf = [b'x' as c_char; 4];
        let mut needed = 0usize;
        let r = write_str("abcd", buf.as_mut_ptr(), buf.len(), &mut needed);
        assert_eq!(r.unwrap_err().code, Code::BufferTooSmall);
        assert_eq!(needed, 4);
        assert!(buf.iter().all(|&c| c == b'x' as c_char));
        let mut big = [0 as c_char; 5];
        write_str("abcd", big.as_mut_ptr(), big.len(), &mut needed).unwrap();
        assert_eq!(big.map(|c| c as u8), *b"abcd\0");
    }

    #[test]
    fn a_null_handle_is_named_in_the_message() {
        let e = handle::<SwoSession>(std::ptr::null()).err().unwrap();
        assert_eq!((e.code, e.message.as_str()), (Code::NullArg, "'session' must not be NULL"));
    }

    #[repr(C)]
    struct DemoOps {
        struct_size: u32,
        reserved: u32,
        f: u64,
    }
    ops_struct!(DemoOps, reserved);

    #[test]
    fn the_ops_check_refuses_a_short_size_then_a_reserved_field() {
        let msg = |o: &DemoOps| check_ops(o).err().map(|e| (e.code, e.message));
        let bad = Some(Code::InvalidArg);
        let short = DemoOps { struct_size: 15, reserved: 1, f: 0 };
        assert_eq!(msg(&short).map(|m| m.1), Some("DemoOps.struct_size is 15, at least 16 expected".into()));
        let reserved = DemoOps { struct_size: 16, reserved: 1, f: 0 };
        assert_eq!(msg(&reserved).map(|m| m.0), bad);
        assert_eq!(msg(&reserved).map(|m| m.1), Some("DemoOps.reserved must be 0".into()));
        assert_eq!(msg(&DemoOps { struct_size: 24, reserved: 0, f: 1 }), None);
    }
}
