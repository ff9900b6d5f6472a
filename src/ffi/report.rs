//! C ABI: `query-migrate` JSON and `info migrate` text.
use super::*;
use std::ffi::c_char;

/// Writes `query-migrate`'s return value (a QMP `MigrationInfo` object, QEMU 11.1 members,
/// order and layout, plus `x-switchover`) at `now_ms` into `buf` under the string-out
/// convention (`*out_len` = length without the NUL; NULL `buf` with `len` 0 asks for it).
/// Any thread, at any time, also while the migration thread steps; never calls a handler.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_BUFFER_TOO_SMALL`.
#[no_mangle]
pub unsafe extern "C" fn swo_query_migrate_json(
    s: *mut SwoSession,
    now_ms: u64,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> SwoStatus {
    session_call(s, |sess| write_str(&sess.query_migrate_json(now_ms), buf, len, out_len))
}

/// Writes HMP `info migrate` (QEMU 11.1 layout, tabs included, plus a `Stalled:` line while
/// stalled) at `now_ms` into `buf`, under the same convention and threading as
/// `swo_query_migrate_json`. Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or
/// `SWO_ERR_BUFFER_TOO_SMALL`.
#[no_mangle]
pub unsafe extern "C" fn swo_info_migrate_text(
    s: *mut SwoSession,
    now_ms: u64,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> SwoStatus {
    session_call(s, |sess| write_str(&sess.info_migrate_text(now_ms), buf, len, out_len))
}

super::symbol_versions!("report");
