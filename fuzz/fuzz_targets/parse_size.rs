//! `swo_parse_size(text, default_suffix, &out)`: the first byte is the default suffix, the
//! rest the text. Invariants: a known status only (never `SWO_ERR_PANIC`); `*out` untouched
//! on error; a parsed size fits `INT64_MAX` (HMP's bound) and reads back the same written in
//! bytes; the C entry point agrees with the core's `parse_size`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, CString};
use switchover::ffi::params::swo_parse_size;
use switchover::ffi::*;

const UNTOUCHED: u64 = 0xA5A5_A5A5_A5A5_A5A5;

fn parse(text: &CString, suffix: u8) -> (SwoStatus, u64) {
    let mut out = UNTOUCHED;
    // SAFETY: a NUL-terminated string and a live u64.
    let rc = unsafe { swo_parse_size(text.as_ptr(), suffix as c_char, &mut out) };
    (rc, out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&suffix, text)) = data.split_first() else { return };
    let Ok(c_text) = CString::new(text) else { return };
    let (rc, out) = parse(&c_text, suffix);
    match rc {
        SWO_OK => {
            assert!(out <= i64::MAX as u64, "{out} above INT64_MAX");
            let again = CString::new(format!("{out}B")).unwrap();
            assert_eq!(parse(&again, b'M'), (SWO_OK, out));
        }
        SWO_ERR_PARSE | SWO_ERR_OUT_OF_RANGE | SWO_ERR_INVALID_ARG => {
            assert_eq!(out, UNTOUCHED, "output written on error {rc}");
        }
        other => panic!("unexpected status {other}"),
    }
    // The shell converts and checks; the core decides: both must agree.
    if let (Ok(text), true) = (std::str::from_utf8(text), suffix.is_ascii()) {
        let core = switchover::params::parse_size(text, suffix as char);
        match core {
            Ok(v) => assert_eq!((rc, out), (SWO_OK, v)),
            Err(e) => assert_eq!(rc, e.code as SwoStatus),
        }
    }
});
