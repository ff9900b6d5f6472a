//! `deadline-action postcopy` needs capability `postcopy-ram` (and no `NO_POSTCOPY` handler)
//! when it is set, and only then (README "Deadlines and actions"; the header's
//! `swo_set_parameter` / `swo_set_parameters_json`): refused with SWO_ERR_UNSUPPORTED and
//! nothing applied, through HMP as through QMP; a capability turned off later is met at the
//! deadline, so other parameters still set.

/// HMP `migrate_set_parameter`.
#[test]
fn hmp_checks_the_postcopy_deadline_action_only_when_setting_it() {
    let sess = switchover::Session::new();
    let e = sess.set_parameter("deadline-action", "postcopy").unwrap_err();
    assert_eq!(e.code, switchover::Code::Unsupported);
    assert_eq!(e.message, "Parameter 'deadline-action' value 'postcopy' needs capability postcopy-ram");
    let shown = |sess: &switchover::Session| -> (Option<String>, Option<u64>) {
        let p: serde_json::Value = serde_json::from_str(&sess.parameters_json()).unwrap();
        (p["deadline-action"].as_str().map(str::to_owned), p["downtime-limit"].as_u64())
    };
    assert_eq!(shown(&sess), (Some("cancel".into()), Some(300)));

    sess.set_capability("postcopy-ram", true).unwrap();
    sess.set_parameter("deadline-action", "postcopy").unwrap();
    sess.set_capability("postcopy-ram", false).unwrap();
    sess.set_parameter("downtime-limit", "500").unwrap();
    assert_eq!(shown(&sess), (Some("postcopy".into()), Some(500)));
}

/// QMP `migrate-set-parameters`: checked when the object names `deadline-action`.
#[test]
fn json_checks_the_postcopy_deadline_action_only_when_it_names_it() {
    let sess = switchover::Session::new();
    let e = sess
        .set_parameters_json(r#"{"deadline-action": "postcopy", "downtime-limit": 500}"#)
        .unwrap_err();
    assert_eq!(e.code, switchover::Code::Unsupported);
    assert_eq!(e.message, "Parameter 'deadline-action' value 'postcopy' needs capability postcopy-ram");
    let p: serde_json::Value = serde_json::from_str(&sess.parameters_json()).unwrap();
    assert_eq!((p["deadline-action"].as_str(), p["downtime-limit"].as_u64()), (Some("cancel"), Some(300)));

    sess.set_capability("postcopy-ram", true).unwrap();
    sess.set_parameters_json(r#"{"deadline-action": "postcopy"}"#).unwrap();
    sess.set_capability("postcopy-ram", false).unwrap();
    sess.set_parameters_json(r#"{"downtime-limit": 500}"#).unwrap();
    let p: serde_json::Value = serde_json::from_str(&sess.parameters_json()).unwrap();
    assert_eq!((p["deadline-action"].as_str(), p["downtime-limit"].as_u64()), (Some("postcopy"), Some(500)));
}
