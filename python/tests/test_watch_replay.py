"""Issue 18: ``--replay`` says what the library said live. A real, non-converging QEMU 7.2
migration (dirty 40 MiB/s over 256 MiB at 32 MiB/s, limit 300 ms) watched by
``switchover-watch --record`` (scripts/watch-e2e.sh, mode ``short``): the record holds each
sample the live feed was given, with its time on the watcher's clock and the parameters set
before it, and what the library said live (every pass, the stall, the advice), written by the
watcher during the run. Replaying it must say the same, pass for pass; the expected figures
are the live ones stored in the fixture, not computed here."""
import gzip
import json
import os

import pytest

from switchover.qmpfeed import replay

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "real-qemu", "watch-dirty40.record.json.gz")


@pytest.fixture(scope="module")
def record():
    with gzip.open(FIXTURE, "rt") as f:
        return json.load(f)


def test_the_record_is_a_real_non_converging_run(record):
    assert record["format"] == "switchover-watch-record/1"
    statuses = {s["query-migrate"]["status"] for s in record["samples"]}
    assert "completed" not in statuses and "active" in statuses
    live = record["live"]
    assert live["stall"] is not None and live["stall"]["advice"] > 0
    assert live["summary"]["outcome"] == "gave-up"


def test_replaying_the_fed_samples_gives_the_live_passes_stall_and_advice(record):
    live = record["live"]
    passes, stall, advice = [], None, None
    for r in replay(record):
        if r.new_passes:
            passes.append({"t-ms": r.now_ms, "pass": r.qemu_pass, "passes": r.passes,
                           "last-sync-bytes": r.x.get("last-sync-bytes"),
                           "threshold": r.x.get("threshold"),
                           "expected-downtime": r.library.get("expected-downtime"),
                           "passes-since-progress": r.x.get("passes-since-progress"),
                           "stalled": bool(r.x.get("stalled"))})
        for e in r.events:
            if e["event"] == "MIGRATION_STALL" and stall is None:
                stall = {"t-ms": r.now_ms, "pass": r.qemu_pass,
                         "advice": e["data"].get("recommended-downtime", 0)}
        if r.x.get("recommended-downtime"):
            advice = r.x["recommended-downtime"]
    assert passes == live["passes"]
    assert stall == live["stall"]
    assert advice == live["advice"]


def test_sim_replay_reports_the_live_stall_and_advice(record, tmp_path, capsys):
    from switchover.sim.__main__ import main as sim_main
    path = tmp_path / "RUN.json"
    path.write_text(json.dumps(record))
    assert sim_main(["--replay", str(path), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["stall"]["pass"] == record["live"]["stall"]["pass"]
    assert said["stall"]["advice_ms"] == record["live"]["stall"]["advice"]
    assert said["passes"] == record["live"]["passes"][-1]["passes"]


def test_a_recorded_round_aware_run_replays_to_its_advice_and_switchover_figures():
    # The same workload watched with --apply-advice --round-aware (watch-e2e mode `apply`):
    # calc-dirty-rate measured the guest's writes (the record keeps the guest-dirty-rate set
    # before each sample), the library advised a round-aware limit at the stall, the watcher
    # set it and QEMU completed; at completion the feed handed the switchover to the library.
    # Replayed, the passes, the stall, the advice and the switchover figures are the live
    # ones stored in the record.
    path = os.path.join(ROOT, "tests", "fixtures", "real-qemu",
                        "watch-dirty40-apply.record.json.gz")
    with gzip.open(path, "rt") as f:
        rec = json.load(f)
    live = rec["live"]
    assert live["summary"]["outcome"] == "completed"
    assert any(s.get("guest-dirty-rate") for s in rec["samples"])
    passes, stall, switchover, adjusted = [], None, None, []
    for r in replay(rec):
        if r.new_passes:
            passes.append((r.now_ms, r.qemu_pass, r.x.get("last-sync-bytes"),
                           r.library.get("expected-downtime")))
        for e in r.events:
            if e["event"] == "MIGRATION_STALL" and stall is None:
                stall = {"t-ms": r.now_ms, "pass": r.qemu_pass,
                         "advice": e["data"].get("recommended-downtime", 0)}
            if e["event"] == "MIGRATION_DOWNTIME_ADJUSTED":
                adjusted.append({"t-ms": r.now_ms, "downtime-limit": e["data"]["downtime-limit"]})
        if r.switchover:
            switchover = r.switchover
    assert passes == [(p["t-ms"], p["pass"], p["last-sync-bytes"], p["expected-downtime"])
                      for p in live["passes"]]
    assert stall == live["stall"]
    assert adjusted == live["adjusted"]
    assert switchover == live["switchover"]
    # What the live watcher applied is that advice, and QEMU's pause stayed below it.
    assert live["summary"]["actions"][0]["arguments"]["downtime-limit"] == stall["advice"]
    assert live["summary"]["downtime"] <= stall["advice"]
