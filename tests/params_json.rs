//! Issue 13, defect 6: `swo_set_parameters_json` (QMP `migrate-set-parameters`).
//!
//! - A duplicate key is refused as QEMU's QMP parser refuses it: `parse_pair` in
//!   qobject/json-parser.c (`parse_error(ctxt, token, "duplicate key")`, which `parse_error`
//!   words as `JSON parse error, duplicate key`), at any depth, and nothing is applied.
//!   serde_json used to keep the last of the duplicates silently.
//! - An integer literal outside the parameter's range (below 0, or beyond `uint64`) is
//!   `SWO_ERR_OUT_OF_RANGE`, as a value beyond a parameter's bounds is; a non-integer
//!   (`1.5`, `1e3`, a string) stays `SWO_ERR_INVALID_ARG` (QAPI: "expects uint64").
use std::ffi::{c_char, CStr};
use std::ptr::null_mut;
use switchover::ffi::params::{swo_query_parameters_json, swo_set_parameters_json};
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::status::swo_last_error_message;
use switchover::ffi::*;

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0usize;
    // SAFETY: buf is writable for its length.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

struct S(*mut SwoSession);
impl S {
    fn new() -> S {
        let mut s = null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { swo_session_new(&mut s) }, SWO_OK);
        S(s)
    }
    fn set(&self, json: &str) -> (SwoStatus, String) {
        let c = std::ffi::CString::new(json).unwrap();
        // SAFETY: live session, NUL-terminated json.
        let rc = unsafe { swo_set_parameters_json(self.0, c.as_ptr()) };
        (rc, if rc == SWO_OK { String::new() } else { last_error() })
    }
    fn params(&self) -> serde_json::Value {
        let mut buf = [0 as c_char; 1024];
        let mut len = 0usize;
        // SAFETY: live session, buffer writable for its length.
        assert_eq!(unsafe { swo_query_parameters_json(self.0, buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
        // SAFETY: NUL-terminated by the call.
        serde_json::from_str(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap()).unwrap()
    }
}
impl Drop for S {
    fn drop(&mut self) {
        // SAFETY: the live session, freed once.
        unsafe { swo_session_free(self.0) };
    }
}

#[test]
fn a_duplicate_key_is_refused_and_nothing_is_applied() {
    let s = S::new();
    let before = s.params();
    for json in [
        r#"{"downtime-limit": 500, "downtime-limit": 700}"#,
        r#"{"stall-passes": 3, "downtime-limit": 500, "downtime-limit": 500}"#,
        r#"{"max-bandwidth": 1000, "max-bandwidth": 1000}"#,
    ] {
        assert_eq!(s.set(json), (SWO_ERR_PARSE, "JSON parse error, duplicate key".to_owned()), "{json}");
        assert_eq!(s.params(), before, "{json}: nothing applied");
    }
    // Also inside a nested value, as QEMU's parser checks every object.
    let (rc, message) = s.set(r#"{"downtime-limit": 500, "x": {"a": 1, "a": 2}}"#);
    assert_eq!((rc, message.as_str()), (SWO_ERR_PARSE, "JSON parse error, duplicate key"));
    assert_eq!(s.params(), before);
    // Distinct keys still work.
    assert_eq!(s.set(r#"{"downtime-limit": 500, "stall-passes": 3}"#).0, SWO_OK);
    assert_eq!(s.params()["downtime-limit"], 500);
    assert_eq!(s.params()["stall-passes"], 3);
}

#[test]
fn integers_outside_the_range_are_out_of_range() {
    let s = S::new();
    let before = s.params();
    for json in [
        r#"{"downtime-limit": 18446744073709551616}"#,
        r#"{"max-bandwidth": 100000000000000000000000000000}"#,
        r#"{"stall-passes": -1}"#,
        r#"{"stall-passes": -9223372036854775809}"#,
        r#"{"downtime-limit": 2000001}"#,
    ] {
        let (rc, message) = s.set(json);
        assert_eq!(rc, SWO_ERR_OUT_OF_RANGE, "{json}: {message}");
        assert_eq!(s.params(), before, "{json}: nothing applied");
    }
    assert_eq!(
        s.set(r#"{"downtime-limit": 18446744073709551616}"#).1,
        "Parameter 'downtime-limit' expects uint64"
    );
    // Not integers at all: the type is wrong.
    for json in [r#"{"downtime-limit": 1.5}"#, r#"{"downtime-limit": 1e3}"#, r#"{"downtime-limit": "300"}"#] {
        let (rc, message) = s.set(json);
        assert_eq!((rc, message.as_str()), (SWO_ERR_INVALID_ARG, "Parameter 'downtime-limit' expects uint64"), "{json}");
    }
    // The largest uint64 is an integer in range for the unbounded max-postcopy-bandwidth.
    assert_eq!(s.set(r#"{"max-postcopy-bandwidth": 18446744073709551615}"#).0, SWO_OK);
    assert_eq!(s.params()["max-postcopy-bandwidth"], u64::MAX);
}

/// QEMU's JSON lexer reads `-0` as an integer literal (json-lexer.c: `-` then `0` is
/// IN_ZERO, an integer) and `parse_literal` converts it with `qemu_strtoi64` to 0, so
/// `{"max-bandwidth": -0}` sets 0; serde_json reads it as the float -0.0, which the library
/// must still take as the integer 0, not as a negative or a non-integer.
#[test]
fn minus_zero_is_the_integer_zero() {
    let sess = switchover::Session::new();
    sess.set_parameters_json(r#"{"max-bandwidth": -0, "downtime-limit": -0}"#).unwrap();
    let p: serde_json::Value = serde_json::from_str(&sess.parameters_json()).unwrap();
    assert_eq!(p["max-bandwidth"], 0);
    assert_eq!(p["downtime-limit"], 0);
}

/// `migrate-set-parameters` takes enum parameters as JSON strings and booleans as JSON
/// booleans (QAPI's types in `query-migrate-parameters`, README "Deadlines and actions").
#[test]
fn json_sets_enums_by_name_and_booleans_as_booleans() {
    let sess = switchover::Session::new();
    sess.set_parameters_json(
        r#"{"deadline-action": "force-switchover", "stall-action": "cancel", "report-reason": true}"#,
    )
    .unwrap();
    let p: serde_json::Value = serde_json::from_str(&sess.parameters_json()).unwrap();
    assert_eq!(p["deadline-action"], "force-switchover");
    assert_eq!(p["stall-action"], "cancel");
    assert_eq!(p["report-reason"], true);
}
