"""The simulator with the operator policy (issue 15): the deadline keys in scenarios, the
reason column, a hot database forced at its deadline, postcopy as the deadline's action, the
modelled fixed pause and the prediction error."""
from pathlib import Path

import pytest

from switchover.sim import scenario as scn
from switchover.sim.output import HEADER, pass_line, summary_lines
from switchover.sim.run import Simulation

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run(name, **overrides):
    raw = scn.load_raw(SCENARIOS / f"{name}.toml")
    for k, v in overrides.items():
        scn.set_path(raw, k, v)
    return Simulation(scn.from_dict(raw, name)).run()


def test_hot_database_is_forced_at_its_deadline_and_overruns_the_limit():
    res = run("hot-database-deadline")
    assert res.outcome == "completed" and res.forced
    assert res.policy_action == "force-switchover"
    assert res.switchover_at_ms == 60_000  # the deadline, to the tick (50 ms ticks)
    assert res.limit_respected is False and res.simulated_downtime_ms > 300
    # The modelled pause is the drain plus link.switchover_fixed_ms (60 ms); the library
    # measures the same pause from its own clock.
    assert res.library_downtime_ms == res.simulated_downtime_ms
    forced = [r for r in res.records if r.reason == "deadline-reached"]
    assert [r.action for r in forced] == ["switchover"]
    lines = "\n".join(summary_lines(res))
    assert "respected: NO, forced by force-switchover" in lines
    assert "prediction error:" in lines and "switchover bw:" in lines


def test_the_fixed_pause_adds_to_the_simulated_downtime():
    with_fixed = run("hot-database-deadline")
    without = run("hot-database-deadline", **{"link.switchover_fixed_ms": 0})
    assert with_fixed.simulated_downtime_ms - without.simulated_downtime_ms == 60


def test_postcopy_is_the_deadline_action():
    res = run("hot-database-postcopy")
    assert res.outcome == "completed" and res.postcopy and res.forced
    assert res.policy_action == "postcopy"
    assert res.switchover_at_ms == 60_000
    assert any(r.reason == "postcopy-drained" for r in res.records)


def test_deadline_cancel_ends_the_run():
    res = run("hot-database-deadline", **{"params.deadline-action": "cancel",
                                          "params.deadline": 20_000})
    assert res.outcome == "cancelled" and res.end_ms == 20_000
    assert res.policy_action == "cancel"
    assert res.records[-1].action == "cancelled"
    assert res.records[-1].reason == "deadline-reached"


def test_the_per_pass_table_has_a_reason_column():
    res = run("hot-database", **{"sim.max_time_s": 20})
    assert "reason" in HEADER
    line = pass_line(res.records[-1])
    assert "exact-above-threshold" in line or "stalled" in line
    assert line.rstrip().endswith("iterate")


def test_policy_keys_are_checked_when_the_scenario_loads():
    raw = scn.load_raw(SCENARIOS / "hot-database-deadline.toml")
    scn.set_path(raw, "params.deadline-action", "abort")
    with pytest.raises(scn.ScenarioError, match="deadline-action"):
        scn.from_dict(raw, "x")
    raw = scn.load_raw(SCENARIOS / "hot-database-postcopy.toml")
    raw["capabilities"] = {}
    with pytest.raises(scn.ScenarioError, match="postcopy-ram"):
        scn.from_dict(raw, "x")
    raw = scn.load_raw(SCENARIOS / "hot-database-deadline.toml")
    scn.set_path(raw, "link.switchover_fixed_ms", -1)
    with pytest.raises(scn.ScenarioError, match="link.switchover_fixed_ms"):
        scn.from_dict(raw, "x")
