//! `swo_set_parameter(s, name, value)` (HMP `migrate_set_parameter`). The input is
//! `name NUL value`, or, without a NUL, a known name picked by the first byte and the rest as
//! the value. Invariants: a known status only; on error nothing changes; on success only the
//! named parameter may change; the set stays valid (`query-migrate-parameters` parses, and
//! setting the same set back through QMP is accepted).
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use switchover::ffi::params::{swo_set_parameter, swo_set_parameters_json};
use common::{params, with_session};
use switchover::ffi::*;
use switchover::params::Parameter;

fuzz_target!(|data: &[u8]| {
    let (name, value): (Vec<u8>, &[u8]) = match data.iter().position(|&b| b == 0) {
        Some(i) => (data[..i].to_vec(), &data[i + 1..]),
        None => {
            let Some((&pick, rest)) = data.split_first() else { return };
            let name = Parameter::ALL[pick as usize % Parameter::ALL.len()].name();
            (name.as_bytes().to_vec(), rest)
        }
    };
    let (Ok(c_name), Ok(c_value)) = (CString::new(name.clone()), CString::new(value)) else {
        return;
    };
    with_session(|s| {
        let before = params(s);
        // SAFETY: live session, NUL-terminated strings.
        let rc = unsafe { swo_set_parameter(s, c_name.as_ptr(), c_value.as_ptr()) };
        let after = params(s);
        match rc {
            SWO_OK => {
                let name = String::from_utf8(name).expect("a set parameter has a UTF-8 name");
                assert!(after.contains_key(&name), "set an unknown parameter {name}");
                for (k, v) in &before {
                    if *k != name {
                        assert_eq!(&after[k], v, "{k} changed by a set of {name}");
                    }
                }
                let json = CString::new(serde_json::to_string(&after).unwrap()).unwrap();
                // SAFETY: live session, NUL-terminated JSON.
                assert_eq!(unsafe { swo_set_parameters_json(s, json.as_ptr()) }, SWO_OK);
            }
            SWO_ERR_NULL_ARG | SWO_ERR_PANIC => panic!("unexpected status {rc}"),
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
