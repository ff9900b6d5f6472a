"""The simulator against the real library: each shipped scenario's outcome, the vGPU story's
numbers, determinism, and the downtime promise (docs/qemu-model.md §Expected downtime,
issue 6)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from switchover.sim import scenario as scn
from switchover.sim import sweep
from switchover.sim.output import dumps, to_json_obj
from switchover.sim.run import Simulation, engine_available


ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def run(name, *, actions=None, **overrides):
    raw = scn.load_raw(SCENARIOS / f"{name}.toml")
    for k, v in overrides.items():
        scn.set_path(raw, k, v)
    if actions is not None:
        raw["actions"] = actions
    return Simulation(scn.from_dict(raw, name)).run()


def test_idle_4g_converges_at_300ms_with_a_tiny_downtime():
    res = run("idle-4g")
    assert res.converged and res.limit_respected
    assert res.simulated_downtime_ms < 100
    assert res.stalls == 0 and res.warnings == []


def test_web_server_converges_after_several_passes():
    res = run("web-server")
    assert res.converged and res.limit_respected
    assert res.passes >= 2
    assert res.stalls == 0


def test_hot_database_cannot_converge_at_300ms_and_says_so():
    res = run("hot-database")
    assert not res.converged and res.outcome == "not converged"
    assert res.switchover_at_ms is None
    assert res.stalls >= 1
    assert res.advice is not None and res.advice["stalled"]
    assert res.advice["expected_downtime_ms"] > 300


def test_vgpu_stalls_at_300_then_switches_over_once_the_operator_sets_2000():
    res = run("vgpu")
    assert res.first_stall_ms is not None and res.first_stall_ms < 90_000
    assert res.converged
    assert 90_000 <= res.switchover_at_ms <= 91_000, "switchover on the pass after the action"
    assert 1890 <= res.predicted_downtime_ms <= 1960
    assert res.downtime_limit_ms == 2000
    assert 1890 <= res.simulated_downtime_ms <= 2000 and res.limit_respected


@pytest.mark.parametrize("limit", [1000, 1500])
def test_vgpu_never_switches_over_at_1000_or_1500(limit):
    res = run("vgpu", actions=[], **{"params.downtime-limit": limit, "sim.max_time_s": 150})
    assert not res.converged and res.switchover_at_ms is None
    assert res.stalls >= 1


def test_vgpu_at_2000_switches_over_without_stalling():
    res = run("vgpu", actions=[], **{"params.downtime-limit": 2000})
    assert res.converged and res.limit_respected
    assert res.stalls == 0
    # the final figures hold the 1.91 GiB of vGPU state, and fit 2000 ms at 1 GiB/s
    assert 1.91 * 2**30 <= res.final_pending["total"] <= 2 * 2**30


def test_vgpu_advice_is_about_2100ms():
    res = run("vgpu", actions=[], **{"sim.max_time_s": 120})
    assert not res.converged
    assert 2050 <= res.advice["recommended_downtime_ms"] <= 2160


def test_vgpu_auto_raises_the_limit_itself_and_converges():
    res = run("vgpu-auto")
    assert res.converged and res.limit_respected
    (adj,) = res.adjustments
    assert adj["from_ms"] == 300 and 2050 <= adj["to_ms"] <= 2160
    assert res.switchover_at_ms >= adj["t_ms"]


def test_nic_vf_state_counts_in_the_final_figures_and_it_converges():
    res = run("nic-vf")
    assert res.converged and res.limit_respected
    assert res.final_pending["stopcopy"] >= 8 * 2**20


def test_garbage_driver_never_switches_over_warns_and_does_not_crash():
    res = run("garbage-driver")
    assert res.outcome == "not converged" and res.switchover_at_ms is None
    assert res.warnings, "the clamped garbage size must be reported"
    assert any("buggy0" in json.dumps(w["data"]) for w in res.warnings)


def test_a_lying_driver_makes_the_real_downtime_overrun_the_limit():
    res = run("nic-vf", **{"devices.0.stop_copy": "1GiB", "devices.0.fault": "lies-low",
                           "devices.0.lie_factor": 0.01,
                           "params.avail-switchover-bandwidth": "2GiB",
                           "link.switchover": "2GiB/s"})
    assert res.converged
    assert res.simulated_downtime_ms > res.downtime_limit_ms
    assert res.limit_respected is False


def test_same_seed_same_output():
    kw = {"link.jitter": 0.2, "sim.max_time_s": 100}
    a = dumps(to_json_obj(run("vgpu", **kw), timeline=True))
    b = dumps(to_json_obj(run("vgpu", **kw), timeline=True))
    assert a == b


def test_cli_output_is_identical_for_the_same_seed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    cmd = [sys.executable, "-m", "switchover.sim", str(SCENARIOS / "web-server.toml"),
           "--seed", "5", "--json", "--plot", str(tmp_path / "w.png")]
    one = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    two = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert one == two
    doc = json.loads(one)
    assert doc["seed"] == 5 and doc["converged"]
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_hmp_prints_info_migrate_at_each_pass():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    out = subprocess.run([sys.executable, "-m", "switchover.sim",
                          str(SCENARIOS / "idle-4g.toml"), "--hmp"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert "Status:" in out and "RAM info:" in out
    assert "COMPLETED" in out


def test_downtime_never_exceeds_the_limit_with_exact_figures_and_accurate_avail():
    raw = scn.load_raw(SCENARIOS / "nic-vf.toml")
    axes = [("params.downtime-limit", [100, 300, 1000]),
            ("ram.dirty_rate_mib_s", [10, 200, 800])]
    overrides = {"link.jitter": 0.0, "link.switchover": "2GiB/s",
                 "params.avail-switchover-bandwidth": "2GiB", "sim.max_time_s": 60}
    grid = sweep.run_sweep(raw, "nic-vf", axes, overrides=overrides)
    switched = [r for row in grid for r in row if r.switchover_at_ms is not None]
    assert switched, "some cells must switch over"
    for r in switched:
        assert r.simulated_downtime_ms <= r.downtime_limit_ms, r


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_says_which_write_pattern_it_uses(path):
    # Issue 18: a reader must see how the guest's writes fall (docs/scenarios.md, `pattern`),
    # not rely on the default; scenarios without RAM have no pattern to state.
    raw = scn.load_raw(path)
    if "ram" in raw:
        assert raw["ram"].get("pattern") in scn.PATTERNS, f"{path.name}: no ram.pattern"
