"""Writes the simulator scenario that mirrors a recorded real migration.

    python3 tests/e2e/mirror_scenario.py tests/fixtures/real-qemu/dirty40.json \
        tests/fixtures/real-qemu/dirty40.toml

Every input is read from the recording, none from the simulator:
- ``ram.size``: QEMU's ``ram.total`` (the guest's RAM plus its ROM blocks);
- ``ram.zero_share``: zero pages QEMU found in the first round (``ram.duplicate`` at the second
  dirty-bitmap sync) over all pages;
- ``ram.working_set``, ``ram.pattern``: the guest's dirtier settings (``swo_region_mib``,
  ``swo_pattern``); ``ram.dirty_rate_mib_s``: the rate the guest reported it achieved
  (SWO-STAT lines), which a loaded TCG host may keep below the set rate;
- ``link.sender_max``: the precopy throughput measured over the run (``ram.transferred`` over
  the active samples; the ``max-bandwidth`` limiter keeps it just under the parameter);
- ``link.switchover``: the stopped-guest throughput, ``ram.downtime-bytes / downtime`` of this
  run, or of ``--switchover-from`` for a run that never switched over;
- ``[params]``, ``[[actions]]``, ``sim.max_time_s``: as the run set them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MiB = 2**20


def mirror(summary: dict, switchover_mib_s: float | None) -> str:
    inp, meas, out = summary["inputs"], summary["measured"], summary["outcome"]
    guest = inp["guest"]
    total = out["total"]
    pages = total // 4096
    first = meas.get("first_round") or {}
    zero_share = (first.get("duplicate") or 0) / pages
    rate = meas.get("achieved_dirty_mib_s") or float(guest["dirty_mib_s"])
    sender = meas["precopy_mib_s"]
    sw = meas.get("switchover_mib_s") or switchover_mib_s
    lines = [
        f'name = "real-qemu-{summary["name"]}"',
        f'description = """Mirror of the real QEMU {inp["qemu_version"]} migration '
        f'tests/fixtures/real-qemu/{summary["name"]}.json ({inp["accel"]}, '
        f'{guest["mem_mib"]} MiB guest, {guest["fill_mib"]} MiB filled, dirtier '
        f'{guest["dirty_mib_s"]} MiB/s {guest["pattern"]} over {guest["region_mib"]} MiB); '
        f'inputs measured from the recording by tests/e2e/mirror_scenario.py."""',
        "",
        "[sim]",
        "tick_ms = 50",
        f'max_time_s = {float(inp["timeout_s"]):g}',
        "",
        "[ram]",
        f"size = {total}",
        f"zero_share = {zero_share:.4f}",
        f'working_set = "{guest["region_mib"]}MiB"',
        f'pattern = "{guest["pattern"]}"',
        f"dirty_rate_mib_s = {rate:.3f}",
    ]
    if guest["pattern"] == "hotspot":
        lines.append(f"hot_share = {guest['hot_share'] / 100:g}")
        hot = guest.get("hot_mib") or max(1, guest["region_mib"] // 10)
        lines.append(f'hot_set = "{hot}MiB"')
    lines += ["", "[link]", 'bandwidth = "10Gbps"', f'sender_max = "{sender:.3f}MiB/s"']
    if sw:
        lines.append(f'switchover = "{sw:.1f}MiB/s"')
    lines += ["", "[params]", f'downtime-limit = {inp["downtime-limit"]}',
              f'max-bandwidth = {inp["max-bandwidth"]}']
    for a in inp["actions"]:
        lines += ["", "[[actions]]", f'at_s = {float(a["at_s"]):g}']
        sets = ", ".join(f"{k} = {v}" for k, v in (a.get("parameters") or {}).items())
        lines.append(f"set = {{{sets}}}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary")
    ap.add_argument("out")
    ap.add_argument("--switchover-from", default=None,
                    help="a summary whose switchover throughput stands in for a run that "
                         "never switched over")
    args = ap.parse_args(argv)
    summary = json.loads(Path(args.summary).read_text())
    sw = None
    if args.switchover_from:
        sw = json.loads(Path(args.switchover_from).read_text())["measured"].get("switchover_mib_s")
    Path(args.out).write_text(mirror(summary, sw))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
