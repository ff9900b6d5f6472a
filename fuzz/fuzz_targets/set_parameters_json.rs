//! `swo_set_parameters_json(s, json)` (QMP `migrate-set-parameters`). Invariants: a known
//! status only; on error nothing changes; on success the input was a JSON object with unique
//! keys, each member is a known parameter now holding exactly the given integer, and every
//! other parameter is unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, CString};
use std::ptr::null_mut;
use switchover::ffi::params::{swo_query_parameters_json, swo_set_parameters_json};
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::*;

fn params(s: *mut SwoSession) -> serde_json::Map<String, serde_json::Value> {
    let mut buf = vec![0 as c_char; 2048];
    let mut len = 0usize;
    // SAFETY: live session; buffer writable for its length.
    let rc = unsafe { swo_query_parameters_json(s, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(rc, SWO_OK);
    let bytes: Vec<u8> = buf[..len].iter().map(|&c| c as u8).collect();
    match serde_json::from_slice(&bytes).expect("query-migrate-parameters is JSON") {
        serde_json::Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = CString::new(data) else { return };
    let mut s = null_mut();
    // SAFETY: valid out-pointer; the session is freed below.
    unsafe { assert_eq!(swo_session_new(&mut s), SWO_OK) };
    let before = params(s);
    // SAFETY: live session, NUL-terminated text.
    let rc = unsafe { swo_set_parameters_json(s, json.as_ptr()) };
    let after = params(s);
    match rc {
        SWO_OK => {
            // serde_json keeps the last of duplicate keys; the library refuses duplicates, so
            // on success each key appears once and this map is the input.
            let input: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(data).expect("accepted input is a JSON object");
            for (k, v) in &after {
                match input.get(k) {
                    // `-0` is the integer 0 (QEMU's parser reads it so; serde_json as -0.0).
                    Some(given) => {
                        let given = given.as_u64().or_else(|| given.as_f64().filter(|f| *f == 0.0).map(|_| 0));
                        assert_eq!(given, v.as_u64(), "{k}");
                    }
                    None => assert_eq!(Some(v), before.get(k), "{k} changed without being set"),
                }
            }
            for k in input.keys() {
                assert!(after.contains_key(k), "unknown member {k} accepted");
            }
        }
        SWO_ERR_INVALID_ARG | SWO_ERR_NOT_FOUND | SWO_ERR_PARSE | SWO_ERR_OUT_OF_RANGE => {
            assert_eq!(after, before, "a failed set changed the parameters");
        }
        other => panic!("unexpected status {other}"),
    }
    // SAFETY: the live session, freed once.
    unsafe { swo_session_free(s) };
});
