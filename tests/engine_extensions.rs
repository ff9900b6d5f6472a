//! Which parameters count as a library extension in use (README §With every extension at its
//! default, the outputs are QEMU's; docs/watch.md): `auto-downtime-max` or any policy
//! parameter. Only then does HMP `info migrate` print the library's `ETA:` line in `active`.
mod engine_support;
use engine_support::*;
use switchover::HandlerFlags;

fn rig_with(f: impl FnOnce(&mut switchover::params::Params)) -> Rig {
    let mut rig = Rig::new(HandlerFlags::NO_POSTCOPY);
    rig.params(f);
    rig.start();
    rig.window(1_000_000);
    rig.dev.set(pending(0, 5_000_000, 0));
    rig.step();
    rig
}

#[test]
fn with_every_parameter_at_its_default_no_extension_is_in_use() {
    let rig = rig_with(|_| {});
    assert!(!rig.sess.snapshot(100).extensions_in_use);
    assert!(!rig.sess.info_migrate_text(100).contains("ETA:"));
}

#[test]
fn auto_downtime_max_of_one_ms_is_an_extension_in_use() {
    let rig = rig_with(|p| p.auto_downtime_max_ms = 1);
    assert!(rig.sess.snapshot(100).extensions_in_use);
    assert!(rig.sess.info_migrate_text(100).contains("ETA: \t\t\t"));
}

#[test]
fn a_policy_parameter_alone_is_an_extension_in_use() {
    let rig = rig_with(|p| p.downtime_fixed_ms = 1);
    let s = rig.sess.snapshot(100);
    assert!(s.extensions_in_use && s.policy_in_use);
    assert!(rig.sess.info_migrate_text(100).contains("ETA: \t\t\t"));
}
