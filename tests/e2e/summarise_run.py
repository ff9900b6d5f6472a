"""A compact, committed summary of a recorded real migration (a RUN.json of qemu_pair.py).

    python3 tests/e2e/summarise_run.py out/real-qemu/dirty40.json \
        tests/fixtures/real-qemu/dirty40.json --name dirty40

Keeps: the inputs (guest, QEMU version and accelerator, the parameters and actions), what was
measured from the guest and the wire (the dirty rate the guest achieved, the non-zero and zero
pages of the first round, the precopy bandwidth, the switchover bandwidth), one entry per
dirty-bitmap sync seen in the samples, the remaining figure once a second, and the outcome.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qemu_pair import MiB, summarise  # noqa: E402

SUMMARY_FORMAT = "switchover-real-run-summary/1"


def _ram(s: dict) -> dict:
    return s["query-migrate"].get("ram", {}) or {}


def summary(record: dict, name: str) -> dict:
    samples = record["samples"]
    outcome = summarise(record, timed_out=record["outcome"].get("timed_out", False))
    syncs = outcome.pop("syncs")
    inputs = record["inputs"]
    guest = inputs["guest"]
    # The first round: until the second sync, every page is sent once; the normal pages
    # then are the guest's non-zero pages (plus what it dirtied ahead of the sweep).
    first_round = None
    for s in samples:
        if (_ram(s).get("dirty-sync-count") or 0) >= 2:
            first_round = s
            break
    measured: dict = {"achieved_dirty_mib_s": record["guest_stats"].get("achieved_dirty_mib_s")}
    if first_round is not None:
        r = _ram(first_round)
        measured["first_round"] = {"t": first_round["t"], "normal": r.get("normal"),
                                   "duplicate": r.get("duplicate"),
                                   "transferred": r.get("transferred")}
    active = [s for s in samples if s["query-migrate"].get("status") == "active"]
    if len(active) >= 2:
        a, b = active[0], active[-1]
        dt = b["t"] - a["t"]
        if dt > 0:
            measured["precopy_mib_s"] = round(
                (_ram(b)["transferred"] - _ram(a)["transferred"]) / MiB / dt, 3)
    last = _ram(samples[-1]) if samples else {}
    if outcome["status"] == "completed" and outcome.get("downtime"):
        measured["downtime_bytes"] = last.get("downtime-bytes")
        if last.get("downtime-bytes"):
            measured["switchover_mib_s"] = round(
                last["downtime-bytes"] / MiB / (outcome["downtime"] / 1000), 1)
    series = []
    next_t = 0.0
    for s in samples:
        if s["t"] + 1e-9 >= next_t and "remaining" in _ram(s):
            series.append([round(s["t"], 2), _ram(s)["remaining"], _ram(s).get("transferred")])
            next_t = int(s["t"]) + 1.0
    return {
        "format": SUMMARY_FORMAT,
        "name": name,
        "inputs": {
            "guest": guest,
            "qemu_version": inputs["qemu"]["version"],
            "accel": inputs["qemu"]["accel"],
            "max-bandwidth": inputs["migrate_parameters"].get("max-bandwidth"),
            "downtime-limit": inputs["migrate_parameters"].get("downtime-limit"),
            "parameters_set": inputs["parameters_set"],
            "capabilities_set": inputs["capabilities_set"],
            "actions": inputs["actions"],
            "actions_applied": record.get("actions_applied", []),
            "timeout_s": inputs["timeout_s"],
            "sample_interval_s": inputs["sample_interval_s"],
            "host_nproc": inputs["host"]["nproc"],
        },
        "measured": measured,
        "syncs": syncs,
        "remaining_1s": series,
        "outcome": outcome,
        "destination": record.get("destination", {}),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_json")
    ap.add_argument("out")
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    record = json.loads(Path(args.run_json).read_text())
    name = args.name or Path(args.run_json).stem
    out = summary(record, name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # One sync / one series point per line: reviewable diffs.
    text = json.dumps(out, indent=1)
    Path(args.out).write_text(text + "\n")
    o = out["outcome"]
    print(f"{args.out}: {o['status']}, total {o['total-time']} ms, downtime {o['downtime']} ms, "
          f"{len(out['syncs'])} syncs seen, passes {o['passes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
