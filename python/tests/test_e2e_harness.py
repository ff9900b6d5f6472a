"""The record-reading parts of the real-migration harness (tests/e2e/qemu_pair.py,
summarise_run.py) on a recorded run, and its argument handling. Running QEMU is the
end-to-end scripts' business; nothing here starts a process."""
import gzip
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import qemu_pair  # noqa: E402
import summarise_run  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "real-qemu"


def run(name):
    with gzip.open(FIXTURES / f"{name}.run.json.gz", "rt") as f:
        return json.load(f)


def test_a_cancelled_run_keeps_the_last_counters_qemu_reported():
    # QEMU's query-migrate in status cancelled has no ram member (QEMU-BEHAVIOUR.md,
    # query-migrate): the outcome takes the counters of the last sample that had them.
    rec = run("dirty40")
    assert rec["samples"][-1]["query-migrate"]["status"] == "cancelled"
    assert "ram" not in rec["samples"][-1]["query-migrate"]
    out = qemu_pair.summarise(rec, timed_out=True)
    last_ram = [s for s in rec["samples"] if s["query-migrate"].get("ram")][-1]
    assert out["status"] == "cancelled" and out["timed_out"]
    assert out["passes"] == last_ram["query-migrate"]["ram"]["dirty-sync-count"]
    assert out["transferred"] == last_ram["query-migrate"]["ram"]["transferred"]


def test_one_sync_entry_per_new_dirty_sync_count_with_the_sample_before():
    rec = run("dirty40")
    syncs = qemu_pair.syncs(rec["samples"])
    counts = [s["dirty-sync-count"] for s in syncs]
    assert counts == sorted(set(counts)) and counts[0] == 1
    for s in syncs[1:]:
        assert s["t_prev"] < s["t"] and s["transferred_prev"] <= s["transferred"]


def test_the_live_phase_ends_when_the_guest_stops():
    # QEMU 7.2 reports status active during the final copy; the STOP event marks its start.
    rec = run("dirty40-raise")
    t_stop = qemu_pair.stop_time(rec)
    assert t_stop is not None
    live = qemu_pair.live_samples(rec)
    assert live and all(s["t"] < t_stop for s in live)
    assert any(s["t"] >= t_stop for s in rec["samples"])


def test_a_reduced_run_is_still_a_run():
    rec = run("dirty8")
    assert rec["format"] == qemu_pair.RUN_FORMAT
    again = summarise_run.reduced_run(rec)
    assert again["samples"] == rec["samples"]


def test_scheduled_parameter_changes_parse():
    a = qemu_pair._parse_action("40:downtime-limit=10000,max-bandwidth=1073741824")
    assert a.at_s == 40.0
    assert a.parameters == {"downtime-limit": 10000, "max-bandwidth": 1073741824}
    with pytest.raises(Exception):
        qemu_pair._parse_action("soon:downtime-limit=1")


def test_the_kernel_command_line_carries_the_workload():
    spec = qemu_pair.GuestSpec(dirty_mib_s=40, region_mib=256, pattern="uniform")
    line = spec.append_line()
    assert "swo_dirty_mib_s=40" in line and "swo_region_mib=256" in line
    assert "swo_pattern=uniform" in line and "console=ttyS0" in line
    with pytest.raises(ValueError):
        qemu_pair.GuestSpec(pattern="zigzag").append_line()


def test_accelerators_are_colon_separated_so_each_keeps_its_options(tmp_path):
    assert qemu_pair.resolve_accel("kvm:tcg", "qemu", tmp_path) == ["kvm", "tcg"]
    assert qemu_pair.resolve_accel("tcg,thread=single", "qemu", tmp_path) == ["tcg,thread=single"]
    assert qemu_pair.resolve_accel(["tcg"], "qemu", tmp_path) == ["tcg"]
