"""The simulator against real QEMU migrations recorded on this machine (issue 18).

Every fixture pair in tests/fixtures/real-qemu/ (a recorded run's summary and the scenario
mirroring it) must pass the checks of real_qemu.py; docs/simulator-validation.md is the table
of the same comparisons and must be current (SWO_UPDATE_DOCS=1 rewrites it and its plot).
"""
import functools
import gzip
import json
import os
import sys

import pytest

import real_qemu as rq

sys.path.insert(0, str(rq.ROOT / "tests" / "e2e"))
import mirror_scenario  # noqa: E402

# A run that never switched over borrows the stopped-guest throughput of its sibling.
SWITCHOVER_FROM = {"dirty40": "dirty40-raise", "uniform40": "dirty40-raise"}
NAMES = rq.fixtures()


@functools.lru_cache(maxsize=None)
def sim(name):
    return rq.simulate(name)


def test_the_four_recorded_runs_are_there():
    assert {"idle", "dirty8", "dirty40", "dirty40-raise"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_mirror_scenario_inputs_come_from_the_recording(name):
    summary = rq.load_summary(name)
    sw = None
    if name in SWITCHOVER_FROM:
        sw = rq.load_summary(SWITCHOVER_FROM[name])["measured"]["switchover_mib_s"]
    expected = mirror_scenario.mirror(summary, sw)
    assert (rq.FIXTURES / f"{name}.toml").read_text() == expected, (
        f"{name}.toml differs from tests/e2e/mirror_scenario.py's output for {name}.json")


@pytest.mark.parametrize("name", NAMES)
def test_simulator_matches_the_real_migration(name):
    c = rq.compare(name, sim(name))
    failed = {k: text for k, (ok, text) in c.checks.items() if not ok}
    assert not failed, f"{name}: {failed}"


def test_a_run_that_never_converges_is_flagged_as_stalled_by_the_simulated_library():
    for name in NAMES:
        if rq.load_summary(name)["outcome"]["status"] != "completed":
            res = sim(name)
            assert res.first_stall_ms is not None, name
            assert res.advice and res.advice["recommended_downtime_ms"] > 300, name


def _loop_syncs_before(res, t_ms):
    return sum(1 for t, _ in rq.sim_loop_syncs(res) if t * 1000 <= t_ms)


@pytest.mark.parametrize("name", NAMES)
def test_stall_within_one_pass_of_the_library_replaying_the_real_samples(name):
    # The real samples go through the watcher's mapping (switchover.qmpfeed, issue 12): the
    # library, fed the real migration, reports a stall at some loop sync or none; the
    # simulated migration must agree, and report it within one sync of that.
    qmpfeed = pytest.importorskip(
        "switchover.qmpfeed", reason="the watcher's sample mapping (switchover.qmpfeed) is "
        "not on this branch")
    with gzip.open(rq.FIXTURES / f"{name}.run.json.gz", "rt") as f:
        record = json.load(f)
    real_stall = None
    for r in qmpfeed.replay(record, None):
        if any(e["event"] == "MIGRATION_STALL" for e in r.events):
            real_stall = (r.now_ms, r.qemu_pass - 1)   # loop syncs: count 1 is the setup's
            break
    res = sim(name)
    if real_stall is None:
        assert res.first_stall_ms is None, (
            f"{name}: simulated stall at {res.first_stall_ms} ms, none in the replay")
        return
    assert res.first_stall_ms is not None, (
        f"{name}: the replay reports a stall at {real_stall[0]} ms, the simulation none")
    sim_k = _loop_syncs_before(res, res.first_stall_ms)
    assert abs(sim_k - real_stall[1]) <= 1, (
        f"{name}: simulated stall after {sim_k} loop syncs ({res.first_stall_ms} ms), "
        f"replayed after {real_stall[1]} ({real_stall[0]} ms)")


def test_validation_document_is_current():
    comparisons = [rq.compare(n, sim(n)) for n in NAMES]
    text = rq.render(comparisons, {n: sim(n) for n in NAMES})
    if os.environ.get("SWO_UPDATE_DOCS") == "1":
        rq.DOC.write_text(text)
        stall = [c.name for c in comparisons if not c.real["converged"]]
        if stall:
            rq.plot(stall[0], sim(stall[0]))
    assert rq.DOC.exists(), "docs/simulator-validation.md is missing: run with SWO_UPDATE_DOCS=1"
    assert rq.DOC.read_text() == text, (
        "docs/simulator-validation.md is stale: run SWO_UPDATE_DOCS=1 python3 -m pytest "
        "python/tests/test_real_qemu.py and commit it")
    assert rq.PLOT.exists()
