//! Every bounded parameter at its bound and one past it (QEMU's `migrate_params_check`,
//! migration/options.c, and the library's own ranges, README §Deadlines and actions and
//! docs/qemu-model.md §Parameters): the bound itself is accepted and stored, one more is
//! `SWO_ERR_OUT_OF_RANGE` with the range in the message and nothing changed. The bounds,
//! worked by hand: `MAX_MIGRATE_DOWNTIME` = 2000 × 1000 ms; a year = 365 × 24 × 3600 × 1000 =
//! 31 536 000 000 ms; a day per GiB = 24 × 3600 × 1000 = 86 400 000 ms; bandwidths up to
//! `SIZE_MAX` (2^64 − 1 on 64-bit hosts).
use serde_json::{json, Value};
use switchover::{Code, Session};

fn stored(sess: &Session, name: &str) -> Value {
    let all: Value = serde_json::from_str(&sess.parameters_json()).unwrap();
    all[name].clone()
}

/// (parameter, the last accepted value, the first refused value, the range as worded).
const INTEGER_BOUNDS: [(&str, u64, u64, &str); 13] = [
    ("downtime-limit", 2_000_000, 2_000_001, "downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"),
    ("rollback-tolerance", 1000, 1001, "rollback_tolerance' expects an integer in the range of 0 to 1000 percent"),
    ("stall-margin", 100, 101, "stall_margin' expects an integer in the range of 0 to 100 percent"),
    ("stall-passes", 1000, 1001, "stall_passes' expects an integer in the range of 1 to 1000"),
    ("stall-passes", 1, 0, "stall_passes' expects an integer in the range of 1 to 1000"),
    ("bandwidth-window", 60_000, 60_001, "bandwidth_window' expects an integer in the range of 100 to 60000 ms"),
    ("bandwidth-window", 100, 99, "bandwidth_window' expects an integer in the range of 100 to 60000 ms"),
    ("downtime-headroom", 1000, 1001, "downtime_headroom' expects an integer in the range of 0 to 1000 percent"),
    ("auto-downtime-max", 2_000_000, 2_000_001, "auto_downtime_max' expects an integer in the range of 0 to (2000 * 1000) ms"),
    ("deadline", 31_536_000_000, 31_536_000_001, "deadline' expects an integer in the range of 0 to 31536000000 ms"),
    ("deadline-per-gib", 86_400_000, 86_400_001, "deadline_per_gib' expects an integer in the range of 0 to 86400000 ms"),
    ("stall-action-passes", 1000, 1001, "stall_action_passes' expects an integer in the range of 0 to 1000"),
    ("downtime-fixed", 2_000_000, 2_000_001, "downtime_fixed' expects an integer in the range of 0 to (2000 * 1000) ms"),
];

#[test]
fn hmp_takes_each_bound_and_refuses_one_past_it() {
    for (name, last_ok, first_bad, range) in INTEGER_BOUNDS {
        let sess = Session::new();
        sess.set_parameter(name, &last_ok.to_string()).unwrap_or_else(|e| panic!("{name}={last_ok}: {e:?}"));
        assert_eq!(stored(&sess, name), json!(last_ok), "{name}");
        let before = sess.parameters_json();
        let err = sess.set_parameter(name, &first_bad.to_string()).unwrap_err();
        assert_eq!(err.code, Code::OutOfRange, "{name}={first_bad}");
        assert_eq!(err.message, format!("Parameter '{range}"), "{name}={first_bad}");
        assert_eq!(sess.parameters_json(), before, "{name}: nothing changed");
    }
}

#[test]
fn qmp_takes_each_bound_and_refuses_one_past_it() {
    for (name, last_ok, first_bad, range) in INTEGER_BOUNDS {
        let sess = Session::new();
        sess.set_parameters_json(&json!({ name: last_ok }).to_string()).unwrap();
        assert_eq!(stored(&sess, name), json!(last_ok), "{name}");
        let err = sess.set_parameters_json(&json!({ name: first_bad }).to_string()).unwrap_err();
        assert_eq!((err.code, err.message), (Code::OutOfRange, format!("Parameter '{range}")));
        assert_eq!(stored(&sess, name), json!(last_ok), "{name}: nothing changed");
    }
}

/// The bandwidths go up to `SIZE_MAX`, which on a 64-bit host is the whole `uint64` range:
/// nothing a QMP `size` member can carry is refused.
#[test]
fn every_bandwidth_takes_size_max() {
    if usize::BITS != 64 {
        eprintln!("SKIPPED: SIZE_MAX is not 2^64 - 1 on this host");
        return;
    }
    for name in ["max-bandwidth", "avail-switchover-bandwidth", "max-postcopy-bandwidth", "guest-dirty-rate"] {
        let sess = Session::new();
        sess.set_parameters_json(&json!({ name: u64::MAX }).to_string()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(stored(&sess, name), json!(u64::MAX), "{name}");
    }
}
