//! What the parameter targets (`set_parameter`, `set_parameters_json`) share: a fresh session
//! for one input, and `query-migrate-parameters` read back as a JSON map.
use std::ffi::c_char;
use std::ptr::null_mut;
use switchover::ffi::params::swo_query_parameters_json;
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::*;

/// `query-migrate-parameters` of `s` (`swo_query_parameters_json`) as a JSON object.
pub fn params(s: *mut SwoSession) -> serde_json::Map<String, serde_json::Value> {
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

/// Runs `f` with a new session, then frees it.
pub fn with_session(f: impl FnOnce(*mut SwoSession)) {
    let mut s = null_mut();
    // SAFETY: valid out-pointer; the session is freed below.
    unsafe { assert_eq!(swo_session_new(&mut s), SWO_OK) };
    f(s);
    // SAFETY: the live session, freed once.
    unsafe { swo_session_free(s) };
}
