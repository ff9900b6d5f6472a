//! Which parameters are sizes (docs/qemu-model.md §Parameters): QEMU's QAPI schema
//! (qapi/migration.json, `MigrationParameters`) types `max-bandwidth`,
//! `avail-switchover-bandwidth` and `max-postcopy-bandwidth` as `size`, which HMP reads in MiB
//! by default; the library's `guest-dirty-rate` is a bandwidth too. Every other parameter is
//! not a size.
use switchover::params::Parameter;

#[test]
fn the_bandwidths_and_only_they_are_sizes() {
    let sizes: Vec<&str> =
        Parameter::ALL.iter().filter(|p| p.is_size()).map(|p| p.name()).collect();
    assert_eq!(
        sizes,
        ["max-bandwidth", "avail-switchover-bandwidth", "max-postcopy-bandwidth", "guest-dirty-rate"]
    );
    assert!(!Parameter::DowntimeLimit.is_size());
}

/// The enum and boolean parameters (README §Deadlines and actions) are words, not numbers:
/// `query-migrate-parameters` shows names and JSON booleans, HMP takes the names and on/off.
#[test]
fn enums_and_booleans_are_names_and_switches() {
    let sess = switchover::Session::new();
    let shown = |sess: &switchover::Session| -> serde_json::Value {
        serde_json::from_str(&sess.parameters_json()).unwrap()
    };
    let p = shown(&sess);
    assert_eq!(p["deadline-action"], "cancel");
    assert_eq!(p["stall-action"], "none");
    assert_eq!(p["report-reason"], false);
    assert_eq!(p["reuse-switchover-bandwidth"], false);
    sess.set_parameter("deadline-action", "force-switchover").unwrap();
    sess.set_parameter("stall-action", "cancel").unwrap();
    sess.set_parameter("report-reason", "on").unwrap();
    sess.set_parameter("reuse-switchover-bandwidth", "on").unwrap();
    let p = shown(&sess);
    assert_eq!(p["deadline-action"], "force-switchover");
    assert_eq!(p["stall-action"], "cancel");
    assert_eq!(p["report-reason"], true);
    assert_eq!(p["reuse-switchover-bandwidth"], true);
    for (name, number) in [("deadline-action", "1"), ("stall-action", "1"), ("report-reason", "1")] {
        assert!(sess.set_parameter(name, number).is_err(), "{name} takes no number");
    }
}

/// HMP's boolean words are QEMU's `qapi_bool_parse` (qapi/qapi-util.c): on/yes/true/y set,
/// off/no/false/n clear, anything else is refused with "expects 'on' or 'off'".
#[test]
fn hmp_booleans_take_every_word_of_qapi_bool_parse() {
    let sess = switchover::Session::new();
    let shown = |sess: &switchover::Session| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&sess.parameters_json()).unwrap()["report-reason"]
            .clone()
    };
    for (on, off) in [("on", "off"), ("yes", "no"), ("true", "false"), ("y", "n")] {
        sess.set_parameter("report-reason", on).unwrap();
        assert_eq!(shown(&sess), true, "{on}");
        sess.set_parameter("report-reason", off).unwrap();
        assert_eq!(shown(&sess), false, "{off}");
    }
    sess.set_parameter("report-reason", "on").unwrap();
    for word in ["ON", "1", "", "of"] {
        let e = sess.set_parameter("report-reason", word).unwrap_err();
        assert_eq!(e.message, "Parameter 'report-reason' expects 'on' or 'off'", "{word:?}");
        assert_eq!(shown(&sess), true, "{word:?} changed nothing");
    }
}

/// `stall-action` takes none / cancel / force-switchover (README, "Deadlines and actions"):
/// a parameter set that carries `postcopy` there — possible only from Rust, where `Params` is
/// a plain struct — fails validation with QAPI's enum wording, and the other values pass.
#[test]
fn validation_refuses_a_stall_action_of_postcopy() {
    use switchover::params::{validate, Params, PolicyAction};
    let with = |a| Params { stall_action: a, ..Params::default() };
    let e = validate(&with(Some(PolicyAction::Postcopy))).unwrap_err();
    assert_eq!(e.code, switchover::Code::InvalidArg);
    assert_eq!(e.message, "Parameter 'stall-action' does not accept value 'postcopy'");
    for ok in [None, Some(PolicyAction::Cancel), Some(PolicyAction::ForceSwitchover)] {
        validate(&with(ok)).unwrap();
    }
}
