"""The bookkeeping of the QEMU end-to-end driver (tests/e2e/qemu_e2e.py): the run plan, what
the baseline's operator does on a stall workload, the switchover figures taken from
query-migrate, the per-run checks and the drive/baseline ratios. Nothing here starts QEMU;
the figures are hand-made query-migrate replies in QEMU 10.2's layout (MigrationInfo with
ram.downtime-bytes, migration/migration.c fill_source_migration_info)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import qemu_e2e  # noqa: E402


def test_the_full_plan_is_whole_rounds_with_rotating_modes_and_the_stall_baseline_last():
    plan = qemu_e2e.make_plan(False, 3, True)
    n_wl = len(qemu_e2e.WORKLOADS)
    assert len(plan) == 3 * n_wl * 3
    # round by round: all of round 1 before any of round 2
    rounds = [r for _, _, r in plan]
    assert rounds == sorted(rounds)
    idle = [m for wl, m, _ in plan if wl == "idle"]
    assert idle[:3] == ["baseline", "shadow", "drive"]
    assert idle[3:6] == ["shadow", "drive", "baseline"]
    assert idle[6:9] == ["drive", "baseline", "shadow"]
    for wl in ("stall-advice", "stall-auto"):
        for r in (1, 2, 3):
            modes = [m for w, m, rr in plan if w == wl and rr == r]
            assert sorted(modes) == ["baseline", "drive", "shadow"]
            assert modes[-1] == "baseline"


def test_without_a_baseline_binary_the_plan_has_no_baseline_runs():
    plan = qemu_e2e.make_plan(False, 2, False)
    assert {m for _, m, _ in plan} == {"shadow", "drive"}
    assert qemu_e2e.make_plan(False, 1, False, ["idle"]) == [("idle", "shadow", 1),
                                                             ("idle", "drive", 1)]


def test_the_quick_plan_is_one_shadow_and_one_drive_run_of_dirty8_and_stall_advice():
    assert qemu_e2e.make_plan(True, 3, True) == [
        ("dirty-8", "shadow", 1), ("dirty-8", "drive", 1),
        ("stall-advice", "shadow", 1), ("stall-advice", "drive", 1)]


def test_the_baseline_operator_applies_the_rounds_median_limit_at_the_median_time():
    runs = [
        {"workload": "stall-advice", "mode": "shadow", "run": 2, "applied-limit": 8662,
         "applied-at-s": 31.0},
        {"workload": "stall-advice", "mode": "drive", "run": 2, "applied-limit": 8700,
         "applied-at-s": 33.0},
        # other rounds and workloads do not count
        {"workload": "stall-advice", "mode": "drive", "run": 1, "applied-limit": 1,
         "applied-at-s": 1.0},
        {"workload": "stall-auto", "mode": "drive", "run": 2, "applied-limit": 2,
         "applied-at-s": 2.0},
    ]
    assert qemu_e2e.baseline_action_for(runs, "stall-advice", 2) == {"limit": 8681,
                                                                      "at_s": 32.0}
    assert qemu_e2e.baseline_action_for(runs, "stall-advice", 3) is None


def test_switchover_figures_take_the_librarys_and_qemus_own():
    last = {"status": "completed", "downtime": 12,
            "ram": {"downtime-bytes": 9_000_000},
            "x-switchover": {"predicted-downtime": 252, "measured-downtime": 12,
                             "switchover-bytes": 8_744_404,
                             "measured-switchover-bandwidth": 728_700_333}}
    f = qemu_e2e.switchover_figures(last)
    assert f["predicted-downtime"] == 252 and f["measured-downtime"] == 12
    assert f["switchover-bandwidth"] == 728_700_333
    # QEMU's view: 9,000,000 bytes in 12 ms = 750,000,000 bytes/s
    assert f["qemu-switchover-bandwidth"] == 750_000_000
    # a baseline reply: no x-switchover, QEMU's figure only
    f = qemu_e2e.switchover_figures({"downtime": 0, "ram": {"downtime-bytes": 5}})
    assert f["predicted-downtime"] is None and f["qemu-switchover-bandwidth"] is None


def _run(**kw):
    run = {"workload": "dirty-8", "mode": "drive", "status": "completed", "timed_out": False,
           "guest_alive_on_destination": True, "downtime": 12, "predicted-downtime": 252,
           "measured-downtime": 12, "switchover-bandwidth": 728_700_333,
           "hmp-info-migrate-at-end": "Switchover: predicted downtime 252 ms, measured 12 ms",
           "disagreements-by-rule": {"lt-vs-le": 0, "precopy-zero": 0, "window-tick": 0,
                                     "other": 0},
           "remaining-present": True}
    run.update(kw)
    return run


def _failed(run, w):
    return [c["check"] for c in qemu_e2e.check_run(run, w) if not c["ok"]]


def test_a_patched_run_without_the_switchover_figures_fails():
    w = qemu_e2e.WORKLOADS["dirty-8"]
    assert _failed(_run(), w) == []
    assert _failed(_run(**{"measured-downtime": 11}), w) == [
        "x-switchover at completion: predicted vs measured downtime, switchover bandwidth"]
    assert _failed(_run(**{"hmp-info-migrate-at-end": "Remaining: 0"}), w) == [
        "info migrate at completion shows the Switchover: line"]
    # the baseline has neither, and is not asked for them
    assert _failed(_run(mode="baseline", **{"predicted-downtime": None,
                                            "hmp-info-migrate-at-end": None}), w) == []


def test_stall_auto_needs_the_downtime_adjusted_event_with_the_raised_limit():
    w = qemu_e2e.WORKLOADS["stall-auto"]
    base = dict(workload="stall-auto", **{"stall-pass": 9, "stall-events": 1,
                                          "last-progress-pass": 5, "applied-limit": 8662,
                                          "auto-downtime-limit": 8662, "downtime": 300,
                                          "measured-downtime": 300,
                                          "hmp-info-migrate-when-stalled":
                                              "Remaining: 1 MiB\nStalled: 5 passes"})
    ok = _run(**base, **{"downtime-adjusted-events": [{"downtime-limit": 8662}]})
    assert _failed(ok, w) == []
    missing = _run(**base, **{"downtime-adjusted-events": []})
    assert _failed(missing, w) == ["MIGRATION_DOWNTIME_ADJUSTED reaches the QMP client"]


def test_a_baseline_stall_run_is_checked_against_the_limit_its_operator_applied():
    w = qemu_e2e.WORKLOADS["stall-advice"]
    run = _run(workload="stall-advice", mode="baseline", downtime=9000,
               **{"applied-limit": 8662, "predicted-downtime": None})
    assert _failed(run, w) == ["downtime at or below the applied limit"]
    run["downtime"] = 400
    assert _failed(run, w) == []


def test_ratios_are_medians_of_drive_over_baseline_with_the_5pct_or_20ms_rule():
    def r(mode, tt, dt):
        return {"workload": "dirty-8", "mode": mode, "run": 1, "status": "completed",
                "total-time": tt, "downtime": dt, "expected-downtime-at-switchover": None,
                "passes": 6, "bytes": 1, "disagreements": 0}
    runs = [r("baseline", 24000, 10), r("baseline", 25000, 12), r("baseline", 26000, 14),
            r("drive", 25000, 30), r("drive", 26000, 33), r("drive", 27000, 40)]
    ratio = qemu_e2e.summarise(runs)["ratios-vs-baseline"]["dirty-8"]["drive"]
    # medians: baseline 25000 ms / 12 ms, drive 26000 ms / 33 ms
    assert ratio["total-time-ratio"] == 1.04 and ratio["total-time-within-5pct"]
    assert ratio["downtime-diff-ms"] == 21
    assert not ratio["downtime-within-5pct-or-20ms"]     # 21 ms > max(20, 5 % of 12)
    assert ratio["converging"]
    runs[4]["total-time"] = 26500                         # 1.06
    ratio = qemu_e2e.summarise(runs)["ratios-vs-baseline"]["dirty-8"]["drive"]
    assert ratio["total-time-ratio"] == 1.06 and not ratio["total-time-within-5pct"]


def test_a_shadow_run_fails_only_on_an_unexplained_disagreement():
    # docs/qemu.md "Shadow disagreements, explained": lt-vs-le, precopy-zero and window-tick
    # are explained by QEMU 10.2's rules or its window restart; "other" is a bug
    w = qemu_e2e.WORKLOADS["dirty-8"]
    explained = {"lt-vs-le": 1, "precopy-zero": 1, "window-tick": 1, "other": 0}
    assert _failed(_run(mode="shadow", **{"disagreements-by-rule": explained,
                                      "last-disagreement": None}), w) == []
    bug = dict(explained, other=1)
    assert _failed(_run(mode="shadow", **{"disagreements-by-rule": bug,
                                          "last-disagreement": {"rule": "other"}}), w) == [
        "shadow: only documented 10.2/11.1 rule differences"]
    # a drive run has no shadow comparison
    assert _failed(_run(**{"disagreements-by-rule": bug}), w) == []
