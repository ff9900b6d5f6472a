//! `swo_set_parameters_json(s, json)` (QMP `migrate-set-parameters`). Invariants: a known
//! status only; on error nothing changes; on success the input was a JSON object with unique
//! keys, each member is a known parameter now holding exactly the given integer, and every
//! other parameter is unchanged.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use switchover::ffi::params::swo_set_parameters_json;
use common::{params, with_session};
use switchover::ffi::*;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = CString::new(data) else { return };
    with_session(|s| {
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
            // `deadline-action postcopy` without `postcopy-ram` (or with a NO_POSTCOPY
            // handler) is refused at set time with SWO_ERR_UNSUPPORTED
            // (src/params.rs, `check_postcopy_action`).
            SWO_ERR_INVALID_ARG | SWO_ERR_NOT_FOUND | SWO_ERR_PARSE | SWO_ERR_OUT_OF_RANGE
            | SWO_ERR_UNSUPPORTED => {
                assert_eq!(after, before, "a failed set changed the parameters");
            }
            other => panic!("unexpected status {other}"),
        }
    });
});
