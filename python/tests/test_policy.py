"""Operator policy from Python (issue 15): the deadline and its actions, the per-GiB deadline,
postcopy refused as an action, the stall action, reasons, the fixed downtime, predicted vs
measured downtime and the measured switchover bandwidth.

Hand-worked figures (QEMU's ``migration_update_counters`` and
``migration_downtime_calc_expected``): at avail-switchover-bandwidth 1 GiB/s and
downtime-limit 300 ms the threshold is 1,073,741,824 / 1000 × 300 = 322,122,547 B
("307 MiB"); the vGPU's 2,050,000,000 B ("1.91 GiB") need trunc(2.05e9 / 2^30 × 1000) = 1909
ms. Passes run every 100 ms from t=100 (the first exact pass is pass 2); five passes without
progress (t=200..600) make the stall at t=600."""
import pytest

import switchover as so
from switchover import Session, Status, SwitchoverError
from loop_support import Loop, fixed

VGPU = 2_050_000_000
THRESHOLD_300 = 322_122_547
GIB = 1 << 30


def vgpu(session, stop=VGPU, flags=0, **params):
    session.set_capability("events")
    session.register_handler("vgpu", fixed(stop=stop), flags=flags)
    session.set_parameters({"avail-switchover-bandwidth": GIB, **params})
    loop = Loop(session)
    return loop


def deadline_events(session):
    return [e["data"] for e in session.events if e["event"] == "MIGRATION_DEADLINE"]


def test_new_parameters_are_off_by_default_and_listed_after_the_others(session):
    p = session.parameters
    assert list(p)[-9:] == ["deadline", "deadline-per-gib", "deadline-action", "stall-action",
                            "stall-action-passes", "downtime-fixed", "report-reason",
                            "reuse-switchover-bandwidth", "guest-dirty-rate"]
    assert p["guest-dirty-rate"] == 0
    assert (p["deadline"], p["deadline-per-gib"], p["deadline-action"], p["stall-action"],
            p["stall-action-passes"], p["downtime-fixed"], p["report-reason"],
            p["reuse-switchover-bandwidth"]) == (0, 0, "cancel", "none", 0, 0, False, False)


def test_enum_and_bool_parameters_validate_like_qapi(session):
    with pytest.raises(SwitchoverError) as e:
        session.set_parameters({"deadline-action": 1})
    assert e.value.code == Status.ERR_INVALID_ARG
    with pytest.raises(SwitchoverError) as e:
        session.set_parameter("stall-action", "abort")
    assert e.value.message == "Parameter 'stall-action' does not accept value 'abort'"
    with pytest.raises(SwitchoverError) as e:
        session.set_parameter("report-reason", "maybe")
    assert e.value.code == Status.ERR_PARSE
    with pytest.raises(SwitchoverError) as e:
        session.set_parameter("deadline", "31536000001")
    assert e.value.message == ("Parameter 'deadline' expects an integer in the range of 0 to "
                               "31536000000 ms")
    session.set_parameter("report-reason", "on")
    session.set_parameters({"stall-action": "force-switchover", "reuse-switchover-bandwidth": True})
    p = session.parameters
    assert (p["report-reason"], p["stall-action"], p["reuse-switchover-bandwidth"]) == (
        True, "force-switchover", True)


def test_deadline_cancel(session):
    loop = vgpu(session, deadline=1000)
    loop.start()
    step = loop.until(900)
    assert step.action == so.ACTION_ITERATE and step.reason == so.REASON_STALLED
    step = loop.pass_()
    assert step.action == so.ACTION_CANCELLED and step.action_name == "cancelled"
    assert step.reason_name == "deadline-reached"
    assert session.status == so.STATUS_CANCELLED
    assert deadline_events(session) == [{
        "action": "cancel", "remaining": VGPU, "expected-downtime": 1909,
        "downtime-limit": 300, "elapsed": 1000, "deadline": 1000}]
    x = session.query_migrate(2000)["x-switchover"]
    assert (x["reason"], x["reason-text"], x["policy-action"]) == (
        "deadline-reached", "deadline 1000 ms reached after 1000 ms: cancel", "cancel")


def test_deadline_event_follows_the_events_capability(session):
    loop = vgpu(session, deadline=1000)
    session.set_capability("events", False)
    loop.start()
    loop.until(1000)
    assert session.status == so.STATUS_CANCELLED
    assert deadline_events(session) == []


def test_deadline_force_switchover_reports_predicted_and_measured(session):
    loop = vgpu(session, flags=so.HANDLER_EXACT_NEEDS_STOPPED_VM, deadline=1000,
                **{"deadline-action": "force-switchover", "downtime-fixed": 50,
                   "reuse-switchover-bandwidth": True})
    session.set_vmm_ops(vm_stop=lambda: 0, vm_resume=lambda: 0)
    session.set_capability("switchover-rollback")
    loop.start()
    step = loop.until(1000)
    assert step.action == so.ACTION_SWITCHOVER and step.forced and step.vm_stopped
    # The threshold has 300 - 50 ms of budget: 1,073,741.824 × 250 = 268,435,456 B.
    assert step.threshold == 268_435_456
    ev = deadline_events(session)[0]
    assert (ev["action"], ev["expected-downtime"]) == ("force-switchover", 1909 + 50)
    proceed, final = session.switchover_begin(1000)
    assert proceed  # 2.05e9 B is far above the threshold: a rollback would step back
    session.record_transferred(VGPU)
    session.complete(3050)
    info = session.info(4000)
    assert info.reason == so.REASON_SWITCHED_OVER
    assert info.policy_action == so.POLICY_FORCE_SWITCHOVER
    assert (info.downtime_ms, info.predicted_downtime_ms) == (2050, 1959)
    assert info.switchover_bytes == VGPU
    assert info.measured_switchover_bw == 1e9  # 2.05e9 B in 2.05 s
    x = session.query_migrate(4000)["x-switchover"]
    assert (x["predicted-downtime"], x["measured-downtime"],
            x["measured-switchover-bandwidth"]) == (1959, 2050, 1_000_000_000)
    assert x["reason-text"] == ("switched over; downtime 2050 ms, predicted 1959 ms, "
                                "switchover bandwidth 954 MiB/s")
    assert session.parameters["avail-switchover-bandwidth"] == 1_000_000_000


def test_deadline_postcopy_and_its_refusal(session):
    loop = vgpu(session, deadline=1000)
    with pytest.raises(SwitchoverError) as e:
        session.set_parameter("deadline-action", "postcopy")
    assert e.value.code == Status.ERR_UNSUPPORTED
    session.set_capability("postcopy-ram")
    session.set_parameter("deadline-action", "postcopy")
    loop.start()
    step = loop.until(1000)
    assert step.action == so.ACTION_START_POSTCOPY and step.forced
    session.postcopy_start(1000)
    assert session.status == so.STATUS_POSTCOPY_ACTIVE
    assert deadline_events(session)[0]["action"] == "postcopy"


def test_a_no_postcopy_handler_registered_later_turns_postcopy_into_cancel(session):
    loop = vgpu(session, deadline=1000)
    session.set_capability("postcopy-ram")
    session.set_parameter("deadline-action", "postcopy")
    session.register_handler("vf", fixed(), flags=so.HANDLER_NO_POSTCOPY)
    # Setting it again is refused now.
    with pytest.raises(SwitchoverError) as e:
        session.set_parameters({"deadline-action": "postcopy"})
    assert "device 'vf' (instance 0) cannot take part in postcopy" in e.value.message
    loop.start()
    step = loop.until(1000)
    assert step.action == so.ACTION_CANCELLED
    ev = deadline_events(session)[0]
    assert (ev["action"], ev["requested-action"]) == ("cancel", "postcopy")
    assert "cannot take part in postcopy" in ev["reason"]


def test_deadline_while_paused_before_switchover(session):
    loop = vgpu(session, stop=100_000_000, deadline=1000)
    session.set_vmm_ops(vm_stop=lambda: 0, vm_resume=lambda: 0)
    session.set_capability("pause-before-switchover")
    loop.start()
    assert loop.pass_().action == so.ACTION_SWITCHOVER
    assert session.switchover_begin(100)[0] is False
    assert session.info(500).reason == so.REASON_PAUSED_BEFORE_SWITCHOVER
    with pytest.raises(SwitchoverError) as e:
        session.switchover_begin(1000)
    assert e.value.code == Status.ERR_BAD_STATE
    assert session.status == so.STATUS_CANCELLED
    assert session.query_migrate(1000)["error-desc"] == "Switchover is interrupted"


def test_deadline_after_cancel_does_nothing(session):
    loop = vgpu(session, deadline=1000)
    loop.start()
    loop.until(500)
    session.cancel(500)
    assert session.info(5000).reason == so.REASON_CANCELLED
    assert deadline_events(session) == []


def test_per_gib_deadline_needs_the_ram_model(session):
    loop = vgpu(session, **{"deadline-per-gib": 150_000})  # KubeVirt's 150 s/GiB
    loop.start()
    assert session.info(0).deadline_ms == 0
    session.cancel(0)
    ram = so.Ram(session, 2 * GIB + GIB // 2, 4096)  # 2.5 GiB → 375,000 ms
    try:
        loop.start()
        assert session.info(0).deadline_ms == 375_000
        assert session.query_migrate(0)["x-switchover"]["deadline"] == 375_000
    finally:
        ram.close()


def test_stall_action_force_switchover(session):
    loop = vgpu(session, **{"stall-action": "force-switchover"})
    loop.start()
    step = loop.until(500)
    assert step.action == so.ACTION_ITERATE and step.reason == so.REASON_EXACT_ABOVE_THRESHOLD
    step = loop.pass_()
    assert step.action == so.ACTION_SWITCHOVER and step.forced
    assert step.reason == so.REASON_STALL_ACTION
    stall = [e["data"] for e in session.events if e["event"] == "MIGRATION_STALL_ACTION"]
    assert stall == [{"action": "force-switchover", "remaining": VGPU, "expected-downtime": 1909,
                      "downtime-limit": 300, "passes-since-progress": 5}]


def test_reason_names_and_the_reason_line(session):
    assert [so.reason_name(r) for r in so.Reason] == [
        "none", "above-threshold", "exact-above-threshold", "waiting-for-ack",
        "paused-before-switchover", "stalled", "deadline-reached", "stall-action",
        "postcopy-ready", "switchover-ready", "switching-over", "postcopy-active",
        "postcopy-drained", "switched-over", "cancelled", "failed"]
    assert so.reason_name(16) == "unknown"
    loop = vgpu(session)
    loop.start()
    loop.pass_()
    # Every parameter at its default: QEMU's text, no reason members.
    assert "Reason:" not in session.info_migrate(100)
    assert "reason" not in session.query_migrate(100)["x-switchover"]
    session.set_parameter("report-reason", "on")
    assert ("Reason: \t\texact remaining 1.91 GiB > threshold 307 MiB = 300 ms at 1 GiB/s\n"
            in session.info_migrate(100))
    loop.until(600)
    assert session.query_migrate(600)["x-switchover"]["reason-text"] == (
        "stalled 5 passes: remaining 1.91 GiB > threshold 307 MiB = 300 ms at 1 GiB/s; "
        "advice 2100 ms")


def test_fixed_downtime_threshold(session):
    # 268,435,456 B = 1,073,741.824 × (300 − 50): fits; one byte more does not.
    loop = vgpu(session, stop=268_435_456, **{"downtime-fixed": 50})
    loop.start()
    step = loop.pass_()
    assert (step.threshold, step.action) == (268_435_456, so.ACTION_SWITCHOVER)
    assert session.info(100).expected_downtime_ms == 250 + 50
    assert "= 300 ms - 50 ms fixed at 1 GiB/s" in session.query_migrate(100)["x-switchover"][
        "reason-text"]


def test_reports_with_the_policy_in_use_validate_against_the_schema(session):
    import json
    import os

    import jsonschema

    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "schema",
                        "migration-info.schema.json")
    with open(path) as f:
        schema = json.load(f)
    validator = jsonschema.validators.validator_for(schema)(schema)
    loop = vgpu(session, deadline=1000, **{"deadline-action": "force-switchover"})
    loop.start()
    reports = [session.query_migrate(0)]
    loop.until(500)
    reports.append(session.query_migrate(500))
    loop.until(1000)
    session.switchover_begin(1000)
    reports.append(session.query_migrate(1000))
    session.record_transferred(VGPU)
    session.complete(3050)
    reports.append(session.query_migrate(3050))
    session.set_parameter("deadline-action", "cancel")
    loop.now = 4000
    loop.start()
    loop.until(5000)
    reports.append(session.query_migrate(5000))
    assert [r["status"] for r in reports] == ["active", "active", "device", "completed",
                                              "cancelled"]
    for r in reports:
        validator.validate(r)
    assert reports[-1]["x-switchover"]["reason"] == "deadline-reached"
