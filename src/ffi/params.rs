//! C ABI: parameters, capabilities, size parsing and formatting.
use super::*;
use std::ffi::c_char;

/// Sets one parameter by its name, with HMP's rules (`migrate_set_parameter`): the
/// bandwidths (`max-bandwidth`, `avail-switchover-bandwidth`, `max-postcopy-bandwidth`,
/// `guest-dirty-rate`) are sizes parsed like `swo_parse_size` with MiB by default (`"100"` is 100 MiB/s); the others
/// (`downtime-limit`, `rollback-tolerance`, `stall-margin`, `stall-passes`,
/// `downtime-headroom`, `auto-downtime-max`, `bandwidth-window`) are plain decimal integers. The whole parameter
/// set is then validated; on any error nothing changes. Allowed during a migration.
/// `name` and `value` are borrowed for the call.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (not UTF-8),
/// `SWO_ERR_NOT_FOUND` (unknown name), `SWO_ERR_PARSE` (bad syntax) or `SWO_ERR_OUT_OF_RANGE`
/// (e.g. `downtime-limit` above 2000000), with QEMU's message in `swo_last_error_message`.
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_set_parameter(
    s: *mut SwoSession,
    name: *const c_char,
    value: *const c_char,
) -> SwoStatus {
    session_call(s, |sess| sess.set_parameter(cstr(name, "name")?, cstr(value, "value")?))
}

/// Sets parameters with QMP's rules (`migrate-set-parameters`): `json` is an object whose
/// members (QMP names, non-negative integers) are merged over the current set; the result is
/// validated as a whole and applied all or nothing. `json` is borrowed for the call.
/// A key given twice (in any object of the text) is refused as QEMU's QMP parser refuses it:
/// `SWO_ERR_PARSE` with `JSON parse error, duplicate key`, nothing applied.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (not UTF-8, or a member that
/// is not an integer: `1.5`, `1e3`, a string), `SWO_ERR_PARSE` (bad JSON, a duplicate key,
/// not an object), `SWO_ERR_NOT_FOUND` (unknown member) or `SWO_ERR_OUT_OF_RANGE` (an integer
/// that is negative, beyond `uint64`, or outside a parameter's bounds).
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_set_parameters_json(
    s: *mut SwoSession,
    json: *const c_char,
) -> SwoStatus {
    session_call(s, |sess| sess.set_parameters_json(cstr(json, "json")?))
}

/// Writes every parameter as a JSON object (`query-migrate-parameters`, fixed member order)
/// into `buf` under the string convention: `*out_len` gets the length without the NUL; NULL
/// `buf` with `len` 0 asks only the length; a short buffer gives `SWO_ERR_BUFFER_TOO_SMALL`
/// and stays untouched. Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_BUFFER_TOO_SMALL`.
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_query_parameters_json(
    s: *mut SwoSession,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> SwoStatus {
    session_call(s, |sess| write_str(&sess.parameters_json(), buf, len, out_len))
}

/// Turns one capability on or off (`events`, `postcopy-ram`, `pause-before-switchover`,
/// `switchover-ack`, `switchover-rollback`). Refused while a migration is running
/// (`setup` to `cancelling`). `name` is borrowed for the call.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (not UTF-8),
/// `SWO_ERR_NOT_FOUND` (unknown name) or `SWO_ERR_BAD_STATE` (`There's a migration process in
/// progress`). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_set_capability(
    s: *mut SwoSession,
    name: *const c_char,
    on: bool,
) -> SwoStatus {
    session_call(s, |sess| sess.set_capability(cstr(name, "name")?, on))
}

/// Writes the capabilities as JSON (`query-migrate-capabilities`:
/// `[{"capability":"events","state":false},...]`) into `buf` under the same string
/// convention as `swo_query_parameters_json`.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG` or `SWO_ERR_BUFFER_TOO_SMALL`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_query_capabilities_json(
    s: *mut SwoSession,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> SwoStatus {
    session_call(s, |sess| write_str(&sess.capabilities_json(), buf, len, out_len))
}

/// Formats `value` like QEMU's `size_to_str` (`1.36 GiB`, `0.977 KiB`, `16 EiB`: three
/// significant digits, binary units) and returns the length of the text without the NUL.
/// Writes the text and a NUL into `buf` only when `len` is larger than that length; otherwise
/// (also with a NULL `buf`) writes nothing. The text is at most 9 characters, so a buffer of
/// 10 always fits. Cannot fail. Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_size_to_str(value: u64, buf: *mut c_char, len: usize) -> usize {
    call_or(0, || {
        let text = crate::params::size_to_str(value);
        let mut needed = 0usize;
        if !buf.is_null() && len > text.len() {
            let _ = write_str(&text, buf, len, &mut needed);
        }
        text.len()
    })
}

/// Parses a size with QEMU's HMP rules into `*out` (written only on success): digits with an
/// optional `.fraction`, or a `0x` hex integer, then an optional suffix B K M G T P E (either
/// case, powers of 1024); without a suffix `default_suffix` applies (`'M'` for HMP's
/// bandwidths, `'B'` for plain bytes). Fractions round half-up to whole bytes. `text` is
/// borrowed for the call.
/// Returns `SWO_OK`, `SWO_ERR_NULL_ARG`, `SWO_ERR_INVALID_ARG` (not UTF-8, or
/// `default_suffix` not one of B K M G T P E), `SWO_ERR_PARSE` (`Invalid size <text>`: bad
/// syntax, trailing characters, a fraction of a byte) or `SWO_ERR_OUT_OF_RANGE`
/// (`Invalid size <text>`: negative, or above INT64_MAX). Any thread.
#[no_mangle]
pub unsafe extern "C" fn swo_parse_size(
    text: *const c_char,
    default_suffix: c_char,
    out: *mut u64,
) -> SwoStatus {
    call(|| {
        let (text, out) = (cstr(text, "text")?, super::out(out, "out")?);
        *out = crate::params::parse_size(text, default_suffix as u8 as char)?;
        Ok(())
    })
}

super::symbol_versions!("params");
