//! Parameters and capabilities on a session: HMP and QMP rules (docs/qemu-model.md §Parameters).
use serde_json::{json, Value};
use switchover::{Code, Session};

const DOWNTIME_MESSAGE: &str =
    "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms";

fn params(sess: &Session) -> Value {
    serde_json::from_str(&sess.parameters_json()).unwrap()
}

#[test]
fn defaults_are_qemus() {
    let p = params(&Session::new());
    assert_eq!(p["downtime-limit"], 300);
    assert_eq!(p["max-bandwidth"], 134_217_728);
    assert_eq!(p["avail-switchover-bandwidth"], 0);
    assert_eq!(p["max-postcopy-bandwidth"], 0);
}

#[test]
fn query_parameters_lists_every_parameter_in_a_fixed_order() {
    let sess = Session::new();
    let p = params(&sess);
    let names: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "max-bandwidth",
            "avail-switchover-bandwidth",
            "downtime-limit",
            "max-postcopy-bandwidth",
            "rollback-tolerance",
            "stall-margin",
            "stall-passes",
            "downtime-headroom",
            "auto-downtime-max",
            "bandwidth-window",
            "deadline",
            "deadline-per-gib",
            "deadline-action",
            "stall-action",
            "stall-action-passes",
            "downtime-fixed",
            "report-reason",
            "reuse-switchover-bandwidth",
            "guest-dirty-rate",
        ]
    );
    assert_eq!(sess.parameters_json(), sess.parameters_json());
}

#[test]
fn hmp_bandwidth_defaults_to_mib() {
    let sess = Session::new();
    sess.set_parameter("max-bandwidth", "100").unwrap();
    assert_eq!(sess.params().max_bandwidth, 104_857_600);
    sess.set_parameter("avail-switchover-bandwidth", "1.5G").unwrap();
    assert_eq!(sess.params().avail_switchover_bandwidth, 1_610_612_736);
    sess.set_parameter("max-postcopy-bandwidth", "1.5").unwrap();
    assert_eq!(sess.params().max_postcopy_bandwidth, 1_572_864);
    sess.set_parameter("max-bandwidth", "100B").unwrap();
    assert_eq!(sess.params().max_bandwidth, 100);
}

#[test]
fn hmp_bad_size_says_invalid_size_and_changes_nothing() {
    let sess = Session::new();
    let before = sess.parameters_json();
    let err = sess.set_parameter("max-bandwidth", "10MB").unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (Code::Parse, "Invalid size 10MB"));
    let err = sess.set_parameter("max-bandwidth", "-1").unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (Code::OutOfRange, "Invalid size -1"));
    let err = sess.set_parameter("avail-switchover-bandwidth", "8E").unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (Code::OutOfRange, "Invalid size 8E"));
    assert_eq!(sess.parameters_json(), before);
}

#[test]
fn hmp_downtime_limit_2000001_is_refused_with_qemus_message() {
    let sess = Session::new();
    sess.set_parameter("downtime-limit", "2000000").unwrap();
    assert_eq!(sess.params().downtime_limit_ms, 2_000_000);
    let err = sess.set_parameter("downtime-limit", "2000001").unwrap_err();
    assert_eq!(err.code, Code::OutOfRange);
    assert_eq!(err.message, DOWNTIME_MESSAGE);
    assert_eq!(sess.params().downtime_limit_ms, 2_000_000);
}

#[test]
fn hmp_integer_parameters_take_plain_decimal() {
    let sess = Session::new();
    sess.set_parameter("downtime-limit", "1500").unwrap();
    sess.set_parameter("stall-passes", "7").unwrap();
    sess.set_parameter("stall-margin", "0").unwrap();
    sess.set_parameter("rollback-tolerance", "25").unwrap();
    sess.set_parameter("downtime-headroom", "1000").unwrap();
    sess.set_parameter("auto-downtime-max", "5000").unwrap();
    let p = sess.params();
    assert_eq!(
        (p.downtime_limit_ms, p.stall_passes, p.stall_margin_pct),
        (1500, 7, 0)
    );
    assert_eq!(
        (p.rollback_tolerance_pct, p.downtime_headroom_pct, p.auto_downtime_max_ms),
        (25, 1000, 5000)
    );
    for bad in ["1k", "1.5", "", " 1", "0x10", "abc"] {
        let err = sess.set_parameter("downtime-limit", bad).unwrap_err();
        assert_eq!(err.code, Code::Parse, "{bad:?}");
        assert_eq!(err.message, "Parameter 'downtime-limit' expects uint64");
    }
    for bad in ["-1", "18446744073709551616"] {
        let err = sess.set_parameter("stall-passes", bad).unwrap_err();
        assert_eq!(err.code, Code::OutOfRange, "{bad:?}");
        assert_eq!(err.message, "Parameter 'stall-passes' expects uint64");
    }
    assert_eq!(sess.params(), p);
}

#[test]
fn library_parameters_have_bounds() {
    let sess = Session::new();
    let cases = [
        ("rollback-tolerance", "1001", "Parameter 'rollback_tolerance' expects an integer in the range of 0 to 1000 percent"),
        ("stall-margin", "101", "Parameter 'stall_margin' expects an integer in the range of 0 to 100 percent"),
        ("stall-passes", "0", "Parameter 'stall_passes' expects an integer in the range of 1 to 1000"),
        ("stall-passes", "1001", "Parameter 'stall_passes' expects an integer in the range of 1 to 1000"),
        ("downtime-headroom", "1001", "Parameter 'downtime_headroom' expects an integer in the range of 0 to 1000 percent"),
        ("auto-downtime-max", "2000001", "Parameter 'auto_downtime_max' expects an integer in the range of 0 to (2000 * 1000) ms"),
        ("bandwidth-window", "99", "Parameter 'bandwidth_window' expects an integer in the range of 100 to 60000 ms"),
        ("bandwidth-window", "60001", "Parameter 'bandwidth_window' expects an integer in the range of 100 to 60000 ms"),
    ];
    let before = sess.parameters_json();
    for (name, value, message) in cases {
        let err = sess.set_parameter(name, value).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (Code::OutOfRange, message), "{name}={value}");
    }
    assert_eq!(sess.parameters_json(), before);
    sess.set_parameter("stall-passes", "1000").unwrap();
    sess.set_parameter("stall-margin", "100").unwrap();
    sess.set_parameter("auto-downtime-max", "2000000").unwrap();
}

#[test]
fn unknown_parameter_is_not_found() {
    let sess = Session::new();
    let err = sess.set_parameter("downtime_limit", "100").unwrap_err();
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(err.message, "Parameter 'downtime_limit' is unexpected");
}

#[test]
fn qmp_merges_members_over_the_current_set() {
    let sess = Session::new();
    sess.set_parameters_json(r#"{"downtime-limit": 1000, "max-bandwidth": 1073741824}"#).unwrap();
    sess.set_parameters_json(r#"{"avail-switchover-bandwidth": 4000000}"#).unwrap();
    let p = params(&sess);
    assert_eq!(p["downtime-limit"], 1000);
    assert_eq!(p["max-bandwidth"], 1_073_741_824u64);
    assert_eq!(p["avail-switchover-bandwidth"], 4_000_000);
    assert_eq!(p["stall-passes"], 5);
    sess.set_parameters_json("{}").unwrap();
    assert_eq!(params(&sess), p);
}

#[test]
fn qmp_downtime_limit_2000001_is_refused_with_qemus_message() {
    let sess = Session::new();
    let err = sess.set_parameters_json(r#"{"downtime-limit": 2000001}"#).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (Code::OutOfRange, DOWNTIME_MESSAGE));
    assert_eq!(params(&sess)["downtime-limit"], 300);
}

#[test]
fn qmp_call_with_one_bad_member_changes_nothing() {
    let sess = Session::new();
    let before = sess.parameters_json();
    let calls = [
        (r#"{"max-bandwidth": 1000, "downtime-limit": 2000001}"#, Code::OutOfRange),
        (r#"{"max-bandwidth": 1000, "downtime-limit": "100"}"#, Code::InvalidArg),
        (r#"{"max-bandwidth": 1000, "downtime-limit": -1}"#, Code::OutOfRange),
        (r#"{"max-bandwidth": 1000, "downtime-limit": 1.5}"#, Code::InvalidArg),
        (r#"{"max-bandwidth": 1000, "no-such-thing": 1}"#, Code::NotFound),
        (r#"{"stall-passes": 0, "max-bandwidth": 1000}"#, Code::OutOfRange),
    ];
    for (json, code) in calls {
        let err = sess.set_parameters_json(json).unwrap_err();
        assert_eq!(err.code, code, "{json}: {}", err.message);
        assert_eq!(sess.parameters_json(), before, "{json}");
    }
}

#[test]
fn qmp_unknown_and_mistyped_members_use_qapi_wording() {
    let sess = Session::new();
    let err = sess.set_parameters_json(r#"{"x-bogus": 1}"#).unwrap_err();
    assert_eq!(err.message, "Parameter 'x-bogus' is unexpected");
    for value in [r#""300""#, "true", "null", "[1]", "{}", "1e3", "2.5"] {
        let err = sess.set_parameters_json(&format!(r#"{{"downtime-limit": {value}}}"#)).unwrap_err();
        assert_eq!(err.code, Code::InvalidArg, "{value}");
        assert_eq!(err.message, "Parameter 'downtime-limit' expects uint64", "{value}");
    }
    let err = sess.set_parameters_json(r#"{"max-bandwidth": -5}"#).unwrap_err();
    assert_eq!(err.code, Code::OutOfRange);
    assert_eq!(err.message, "Parameter 'max-bandwidth' expects uint64");
}

#[test]
fn qmp_refuses_what_is_not_a_json_object() {
    let sess = Session::new();
    for text in ["", "{", "[]", "300", r#""downtime-limit""#, "null", r#"{"a": 1} x"#] {
        let err = sess.set_parameters_json(text).unwrap_err();
        assert_eq!(err.code, Code::Parse, "{text:?}");
    }
}

#[test]
fn qmp_accepts_the_full_u64_range_for_bandwidths() {
    let sess = Session::new();
    sess.set_parameters_json(&json!({"max-postcopy-bandwidth": u64::MAX}).to_string()).unwrap();
    assert_eq!(sess.params().max_postcopy_bandwidth, u64::MAX);
}

#[test]
fn capabilities_start_off_and_list_in_qmp_shape() {
    let sess = Session::new();
    let caps: Value = serde_json::from_str(&sess.capabilities_json()).unwrap();
    assert_eq!(
        caps,
        json!([
            {"capability": "events", "state": false},
            {"capability": "postcopy-ram", "state": false},
            {"capability": "pause-before-switchover", "state": false},
            {"capability": "switchover-ack", "state": false},
            {"capability": "switchover-rollback", "state": false},
        ])
    );
}

#[test]
fn set_capability_turns_one_on_and_off() {
    let sess = Session::new();
    sess.set_capability("events", true).unwrap();
    sess.set_capability("switchover-ack", true).unwrap();
    sess.set_capability("postcopy-ram", true).unwrap();
    sess.set_capability("pause-before-switchover", true).unwrap();
    sess.set_capability("switchover-rollback", true).unwrap();
    let c = sess.capabilities();
    assert!(c.events && c.switchover_ack && c.postcopy_ram && c.pause_before_switchover);
    assert!(c.switchover_rollback);
    sess.set_capability("switchover-ack", false).unwrap();
    assert!(!sess.capabilities().switchover_ack);
    let caps: Value = serde_json::from_str(&sess.capabilities_json()).unwrap();
    assert_eq!(caps[0], json!({"capability": "events", "state": true}));
    assert_eq!(caps[3], json!({"capability": "switchover-ack", "state": false}));
}

#[test]
fn unknown_capability_is_not_found() {
    let sess = Session::new();
    let err = sess.set_capability("xbzrle", true).unwrap_err();
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(err.message, "Parameter 'capability' does not accept value 'xbzrle'");
    assert_eq!(sess.capabilities(), Default::default());
}
