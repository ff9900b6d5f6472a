"""QEMU 10.2 with switchover, migrating a real guest: baseline / shadow / drive, side by side.

Driven by ``scripts/qemu-e2e.sh`` (which builds both QEMUs and the guest first)::

    python tests/e2e/qemu_e2e.py --patched BIN [--baseline BIN] -L DIR -L DIR \\
        --out out/qemu-e2e [--quick] [--runs 3]

Each run is a source and a destination QEMU over 127.0.0.1 (``qemu_pair``), the patched one
in the mode given by ``SWITCHOVER_MODE`` (read by QEMU at migration start). Workloads:

- ``idle``: no dirtying, ``max-bandwidth`` 32 MiB/s;
- ``dirty-8``: 8 MiB/s over 256 MiB at 32 MiB/s (converges after some passes);
- ``fast-dl50``: 8 MiB/s at ``max-bandwidth`` 1 GiB/s, ``downtime-limit`` 50;
- ``stall-advice``: 40 MiB/s over 256 MiB at 32 MiB/s, ``downtime-limit`` 300: cannot
  converge. Once ``x-switchover`` says stalled, the advised ``downtime-limit`` is applied with
  ``migrate-set-parameters`` (what an operator would do);
- ``stall-auto``: the same with ``x-switchover: {"auto-downtime-max": 20000}`` and no
  operator action.

The baseline (QEMU 10.2 unpatched) has no stall detection and, left alone, never converges
on the stall workloads. What it does there: the operator of a baseline QEMU applies the SAME
``downtime-limit`` the library arrived at in the same round (the median of that round's shadow
and drive runs: the advice applied, or the limit auto-downtime-max raised to), at the SAME
time after ``migrate`` (median of theirs). The baseline stall runs therefore follow the
patched runs of their round, and measure what QEMU alone does with the same operator action;
they do not measure the library's detection.

Each run takes the real-guest lock (``--lock``, default /tmp/swo-realguest.lock) for itself
only, boot to teardown, so other real-guest jobs on the machine get turns between runs (do not
wrap this script in the same ``flock``: it would wait for itself).

The checks (exit 1 when one fails; each is listed in report.json):

- every run completes and the guest runs on the destination;
- shadow mode: every disagreement is one of the documented 10.2/11.1 rule differences;
- patched modes at completion: ``x-switchover`` has ``predicted-downtime``,
  ``measured-downtime`` (= QEMU's ``downtime``) and ``measured-switchover-bandwidth``, and
  ``info migrate`` shows the ``Switchover:`` line;
- stall-auto, patched modes: ``MIGRATION_DOWNTIME_ADJUSTED`` reaches the QMP client with the
  limit x-switchover reports as ``auto-downtime-limit``;
- stall: ``MIGRATION_STALL`` comes within ``stall-passes`` + 1 passes of the remaining ceasing
  to fall by ``stall-margin`` percent (the passes counted here from QEMU's own
  ``ram.remaining`` samples at each ``dirty-sync-count``, not from the library), and the
  measured downtime is at or below the limit applied (advice or automatic).

Timing ratios (drive / baseline medians) are reported, not asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qemu_pair  # noqa: E402

MiB = qemu_pair.MiB
STALL_PASSES = 5          # the library's default stall-passes (left unchanged here)
STALL_MARGIN_PCT = 4      # its default stall-margin
TRACE = ["-trace", "switchover_glue_start", "-trace", "switchover_glue_disagree",
         "-trace", "switchover_glue_error", "-trace", "switchover_glue_event"]

WORKLOADS: dict[str, dict[str, Any]] = {
    "idle": {"guest": dict(dirty_mib_s=0),
             "parameters": {"max-bandwidth": 32 * MiB}},
    "dirty-8": {"guest": dict(dirty_mib_s=8, region_mib=256),
                "parameters": {"max-bandwidth": 32 * MiB}},
    "fast-dl50": {"guest": dict(dirty_mib_s=8, region_mib=256),
                  "parameters": {"max-bandwidth": 1024 * MiB, "downtime-limit": 50}},
    "stall-advice": {"guest": dict(dirty_mib_s=40, region_mib=256),
                     "parameters": {"max-bandwidth": 32 * MiB, "downtime-limit": 300},
                     "stall": "advice"},
    "stall-auto": {"guest": dict(dirty_mib_s=40, region_mib=256),
                   "parameters": {"max-bandwidth": 32 * MiB, "downtime-limit": 300,
                                  "x-switchover": {"auto-downtime-max": 20000}},
                   "stall": "auto"},
}
CONVERGING = ("idle", "dirty-8", "fast-dl50")


def x_of(q: dict) -> dict:
    return q.get("x-switchover") or {}


def last_progress_pass(samples: list[dict]) -> Optional[int]:
    """The last dirty-sync-count whose remaining (QEMU's ram.remaining in the first sample
    after that sync) beat the best earlier one by more than STALL_MARGIN_PCT."""
    best = None
    last = None
    for s in qemu_pair.syncs(samples):
        r, n = s.get("remaining"), s.get("dirty-sync-count")
        if r is None or n is None or s.get("status") != "active":
            continue
        if best is None or r * 100 < best * (100 - STALL_MARGIN_PCT):
            last = n
        best = r if best is None else min(best, r)
    return last


def stall_sampler(state: dict, apply_advice: bool):
    """on_sample: the first time x-switchover says stalled, records HMP `info migrate` (it
    must show the Remaining: and Stalled: lines) and, for the operator variant, applies the
    advised downtime-limit with migrate-set-parameters."""
    async def on_sample(pair: qemu_pair.QemuPair, sample: dict) -> None:
        q = sample["query-migrate"]
        x = x_of(q)
        if state.get("seen") or not x.get("stalled"):
            return
        state["seen"] = sample["t"]
        state["hmp"] = await pair.src_qmp.execute("human-monitor-command",
                                                  {"command-line": "info migrate"})
        if apply_advice and x.get("recommended-downtime"):
            limit = int(x["recommended-downtime"])
            state.update(applied=limit, applied_at=sample["t"])
            await pair.src_qmp.execute("migrate-set-parameters", {"downtime-limit": limit})
    return on_sample


@contextlib.asynccontextmanager
async def realguest_lock(path: str):
    """The machine's real-guest lock (COMMON.md: one real migration at a time), held for one
    run; "" = no lock."""
    if not path:
        yield None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    t = time.monotonic()
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield round(time.monotonic() - t, 1)
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def switchover_figures(last: dict) -> dict:
    """Predicted vs measured downtime and the switchover bandwidth of a completed run: the
    library's (x-switchover, patched modes) and QEMU's own (``ram.downtime-bytes``, the bytes
    QEMU counted while the guest was stopped, over ``downtime``) for every mode."""
    x = x_of(last)
    ram = last.get("ram") or {}
    down = last.get("downtime")
    dbytes = ram.get("downtime-bytes")
    return {
        "predicted-downtime": x.get("predicted-downtime"),
        "measured-downtime": x.get("measured-downtime"),
        "switchover-bytes": x.get("switchover-bytes"),
        "switchover-bandwidth": x.get("measured-switchover-bandwidth"),
        "qemu-downtime-bytes": dbytes,
        "qemu-switchover-bandwidth": (round(dbytes * 1000 / down) if dbytes is not None and down
                                      else None),
    }


async def one_run(args, workload: str, mode: str, index: int,
                  baseline_action: Optional[dict] = None) -> dict:
    w = WORKLOADS[workload]
    qemu = args.baseline if mode == "baseline" else args.patched
    os.environ["SWITCHOVER_MODE"] = "off" if mode == "baseline" else mode
    workdir = Path(args.out) / "runs" / f"{workload}-{mode}-{index}"
    guest = qemu_pair.GuestSpec(mem_mib=1024, fill_mib=512, **w["guest"])
    state: dict = {}
    pair = qemu_pair.QemuPair(qemu, firmware_dirs=args.firmware, guest=guest,
                              guest_dir=args.guest_dir, accel=args.accel, workdir=workdir,
                              src_extra_args=TRACE if mode != "baseline" else [])
    params = dict(w["parameters"])
    actions = []
    if mode == "baseline":
        params.pop("x-switchover", None)      # QEMU 10.2 has no such member
        if baseline_action:
            actions.append(qemu_pair.Action(
                at_s=baseline_action["at_s"],
                parameters={"downtime-limit": baseline_action["limit"]},
                label="the limit the library arrived at in this round, at the same time"))
            state.update(applied=baseline_action["limit"], applied_at=baseline_action["at_s"])
    sampler = (stall_sampler(state, w["stall"] == "advice")
               if w.get("stall") and mode != "baseline" else None)
    async with realguest_lock(args.lock) as waited:
        t0 = time.monotonic()
        try:
            await pair.start(args.boot_timeout)
            await asyncio.sleep(3.0)     # the dirtier is past its first sweep
            rec = await pair.migrate(
                capabilities={"events": True}, parameters=params, actions=actions,
                timeout_s=args.timeout, on_sample=sampler)
            if rec["outcome"]["status"] == "completed" and pair.src_qmp is not None:
                state["hmp_end"] = await pair.src_qmp.execute(
                    "human-monitor-command", {"command-line": "info migrate"})
        finally:
            await pair.close()
    (workdir / "RUN.json").write_text(json.dumps(rec, indent=1))
    samples = rec["samples"]
    last = samples[-1]["query-migrate"] if samples else {}
    active = [s for s in samples if s["query-migrate"].get("status") == "active"]
    x_last = x_of(last)
    stall_events = [e for e in rec["events"] if e["event"] == "MIGRATION_STALL"]
    adjusted = [e for e in rec["events"] if e["event"] == "MIGRATION_DOWNTIME_ADJUSTED"]
    out = rec["outcome"]
    run = {
        "workload": workload, "mode": mode, "run": index,
        "accel": rec["inputs"]["qemu"]["accel"],
        "status": out["status"], "timed_out": out["timed_out"],
        "guest_alive_on_destination": rec["destination"].get("guest_alive"),
        "total-time": out["total-time"], "downtime": out["downtime"],
        "expected-downtime-at-switchover": out["expected-downtime-at-switchover"],
        "passes": out["passes"], "library-passes": x_last.get("library-pass"),
        "bytes": out["transferred"],
        "disagreements": x_last.get("disagreements"),
        "disagreements-by-rule": x_last.get("disagreements-by-rule"),
        "last-disagreement": x_last.get("last-disagreement"),
        "stall-time": x_last.get("stall-time"), "stall-pass": x_last.get("stall-pass"),
        "stall-events": len(stall_events),
        "stall-event": stall_events[0]["data"] if stall_events else None,
        "advice": x_last.get("stall-recommended-downtime"),
        "applied-limit": state.get("applied") or x_last.get("auto-downtime-limit"),
        "applied-at-s": state.get("applied_at") or (round(adjusted[0]["t"], 2) if adjusted
                                                     else None),
        "downtime-adjusted-events": [e["data"] for e in adjusted],
        "auto-downtime-limit": x_last.get("auto-downtime-limit"),
        **switchover_figures(last),
        "hmp-info-migrate-at-end": state.get("hmp_end"),
        "lock-wait-s": waited,
        "hmp-info-migrate-when-stalled": state.get("hmp"),
        "remaining-present": any("remaining" in s["query-migrate"] for s in active),
        "last-progress-pass": last_progress_pass(samples) if w.get("stall") else None,
        "wall-s": round(time.monotonic() - t0, 1),
        "workdir": str(workdir),
    }
    run["checks"] = check_run(run, w)
    return run


def check_run(run: dict, w: dict) -> list[dict]:
    checks = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    check("completed", run["status"] == "completed" and not run["timed_out"],
          f"status {run['status']}")
    check("guest runs on the destination", run["guest_alive_on_destination"] is True)
    if run["mode"] != "baseline" and run["status"] == "completed":
        check("x-switchover at completion: predicted vs measured downtime, switchover bandwidth",
              run["predicted-downtime"] is not None and run["measured-downtime"] == run["downtime"]
              and run["switchover-bandwidth"] is not None,
              f"predicted {run['predicted-downtime']}, measured {run['measured-downtime']} "
              f"(QEMU downtime {run['downtime']}), bandwidth {run['switchover-bandwidth']}")
        hmp = run["hmp-info-migrate-at-end"] or ""
        check("info migrate at completion shows the Switchover: line", "Switchover:" in hmp,
              hmp[-300:])
    if run["mode"] == "shadow":
        other = (run["disagreements-by-rule"] or {}).get("other")
        check("shadow: only documented 10.2/11.1 rule differences", other == 0,
              f"by rule {run['disagreements-by-rule']}, last {run['last-disagreement']}")
    if run["mode"] != "baseline" and run["disagreements-by-rule"] is None:
        check("x-switchover present", False, "query-migrate has no x-switchover")
    if run["mode"] != "baseline":
        check("query-migrate has top-level remaining while active", run["remaining-present"])
    if w.get("stall") == "auto" and run["mode"] != "baseline":
        ev = run["downtime-adjusted-events"]
        check("MIGRATION_DOWNTIME_ADJUSTED reaches the QMP client",
              len(ev) >= 1 and ev[-1].get("downtime-limit") == run["auto-downtime-limit"],
              f"events {ev}, auto-downtime-limit {run['auto-downtime-limit']}")
    if w.get("stall") and run["mode"] == "baseline":
        lim = run["applied-limit"]
        check("baseline: the round's limit was applied", bool(lim), f"limit {lim}")
        if lim and run["downtime"] is not None:
            check("downtime at or below the applied limit", run["downtime"] <= lim,
                  f"downtime {run['downtime']} ms, limit {lim} ms")
    elif w.get("stall"):
        hmp = run["hmp-info-migrate-when-stalled"] or ""
        check("info migrate shows Remaining: and Stalled: while stalled",
              "Remaining:" in hmp and "Stalled:" in hmp, hmp[:300])
        sp, lp = run["stall-pass"], run["last-progress-pass"]
        check("stall flagged", sp is not None and run["stall-events"] == 1,
              f"stall-pass {sp}, events {run['stall-events']}")
        if sp is not None and lp is not None:
            check(f"stall within stall-passes + 1 = {STALL_PASSES + 1} passes of the last "
                  "progress", sp - lp <= STALL_PASSES + 1, f"last progress at pass {lp}, stall at {sp}")
        lim = run["applied-limit"]
        check("a limit was applied (advice or automatic)", bool(lim), f"limit {lim}")
        if lim and run["downtime"] is not None:
            check("downtime at or below the applied limit", run["downtime"] <= lim,
                  f"downtime {run['downtime']} ms, limit {lim} ms")
    return checks


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(runs: list[dict]) -> dict:
    table = {}
    for wl in WORKLOADS:
        for mode in ("baseline", "shadow", "drive"):
            rs = [r for r in runs if r["workload"] == wl and r["mode"] == mode]
            if not rs:
                continue
            table.setdefault(wl, {})[mode] = {
                "runs": len(rs),
                "completed": sum(r["status"] == "completed" for r in rs),
                "total-time-median": median(r["total-time"] for r in rs),
                "downtime-median": median(r["downtime"] for r in rs),
                "expected-downtime-median": median(r["expected-downtime-at-switchover"] for r in rs),
                "passes-median": median(r["passes"] for r in rs),
                "bytes-median": median(r["bytes"] for r in rs),
                "disagreements": sum(r["disagreements"] or 0 for r in rs),
                "predicted-downtime-median": median(r.get("predicted-downtime") for r in rs),
                "measured-downtime-median": median(r.get("measured-downtime") for r in rs),
                "switchover-bandwidth-median": median(r.get("switchover-bandwidth") for r in rs),
                "qemu-switchover-bandwidth-median": median(r.get("qemu-switchover-bandwidth")
                                                           for r in rs),
                "applied-limit-median": median(r.get("applied-limit") for r in rs),
                "total-times": [r["total-time"] for r in rs],
                "downtimes": [r["downtime"] for r in rs],
            }
    ratios = {}
    for wl, modes in table.items():
        b = modes.get("baseline")
        if not b:
            continue
        for mode in ("shadow", "drive"):
            m = modes.get(mode)
            if not m or not b["total-time-median"] or b["downtime-median"] is None:
                continue
            tt = m["total-time-median"] / b["total-time-median"]
            dd = m["downtime-median"] - b["downtime-median"]
            ratios.setdefault(wl, {})[mode] = {
                "converging": wl in CONVERGING,
                "total-time-ratio": round(tt, 3),
                # the same decisions send the same bytes; time also follows the machine's
                # load (TCG guests, two QEMUs and other jobs on 2 shared cores)
                "bytes-ratio": (round(m["bytes-median"] / b["bytes-median"], 3)
                                if m["bytes-median"] and b["bytes-median"] else None),
                "passes-median": m["passes-median"],
                "baseline-passes-median": b["passes-median"],
                "downtime-ratio": round(m["downtime-median"] / b["downtime-median"], 3)
                if b["downtime-median"] else None,
                "downtime-diff-ms": dd,
                "total-time-within-5pct": abs(tt - 1) <= 0.05,
                "downtime-within-5pct-or-20ms": abs(dd) <= max(20, 0.05 * b["downtime-median"]),
            }
    return {"table": table, "ratios-vs-baseline": ratios}


def plot(runs: list[dict], out: Path) -> Optional[str]:
    """Remaining / threshold / expected downtime over time for the stall workload, from the
    patched QEMU's own query-migrate samples (the first drive run, else shadow)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cand = [r for r in runs if r["workload"] == "stall-advice" and r["mode"] == "drive"] or \
           [r for r in runs if r["workload"] == "stall-advice" and r["mode"] == "shadow"]
    if not cand:
        return None
    r = cand[0]
    rec = json.loads((Path(r["workdir"]) / "RUN.json").read_text())
    t, rem, thr, exp = [], [], [], []
    for s in rec["samples"]:
        q = s["query-migrate"]
        if q.get("status") not in ("active", "device"):
            continue
        t.append(s["t"])
        rem.append((q.get("remaining") or 0) / MiB)
        thr.append((x_of(q).get("threshold") or 0) / MiB)
        exp.append(q.get("expected-downtime"))
    fig, ax = plt.subplots(figsize=(9, 6.2))
    ax.plot(t, rem, label="remaining (MiB, top-level)", color="tab:blue")
    ax.plot(t, thr, label="threshold (MiB, x-switchover)", color="tab:green")
    ax.set_xlabel("seconds since migrate")
    ax.set_ylabel("MiB")
    ax2 = ax.twinx()
    ax2.plot(t, exp, label="expected downtime (ms)", color="tab:red", linestyle="--",
             linewidth=0.8)
    # downtime-limit in force: the workload's, then the one applied (advice or automatic)
    lim0 = WORKLOADS[r["workload"]]["parameters"]["downtime-limit"]
    if t:
        at = r.get("applied-at-s")
        lt = [t[0]] + ([at, at] if at is not None else []) + [t[-1]]
        lv = [lim0] + ([lim0, r["applied-limit"]] if at is not None else []) + \
             [r["applied-limit"] if at is not None else lim0]
        ax2.plot(lt, lv, label="downtime-limit (ms)", color="black", linewidth=1.0)
        if r.get("downtime") is not None:
            ax2.plot([t[-1]], [r["downtime"]], marker="o", color="tab:red", linestyle="none",
                     label=f"measured downtime {r['downtime']} ms (predicted "
                           f"{r.get('predicted-downtime')} ms)")
    ax2.set_ylabel("ms")
    if r.get("stall-time") is not None:
        ax.axvline(r["stall-time"] / 1000.0, color="tab:orange", linestyle=":",
                   label=f"MIGRATION_STALL (pass {r['stall-pass']})")
    if r.get("applied-at-s") is not None:
        ax.axvline(r["applied-at-s"], color="tab:purple", linestyle="-.",
                   label=f"downtime-limit {r['applied-limit']} ms applied")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper center", fontsize=8,
              bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    bw = r.get("switchover-bandwidth")
    ax.set_title(f"QEMU 10.2.2 + switchover ({r['mode']}), stall workload: 40 MiB/s dirtied "
                 f"over 256 MiB at max-bandwidth 32 MiB/s\ndowntime {r['downtime']} ms, "
                 f"total {r['total-time']} ms, switchover at "
                 f"{bw / MiB if bw else 0:.0f} MiB/s, accel {r['accel']}", fontsize=10)
    fig.tight_layout()
    path = out / "stall.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def make_plan(quick: bool, rounds: int, with_baseline: bool,
              only: Optional[list[str]] = None) -> list[tuple[str, str, int]]:
    """(workload, mode, round) in run order. Rounds: every workload once in every mode, then
    the next round, so that an interrupted matrix still has whole rounds. Within a round the
    modes alternate and their order rotates from round to round (no mode is always the first
    after a boot); on the stall workloads the baseline comes last, since it applies the limit
    of the round's patched runs."""
    if quick:
        return [(wl, mode, 1) for wl in ("dirty-8", "stall-advice") for mode in ("shadow", "drive")]
    modes = ["baseline", "shadow", "drive"] if with_baseline else ["shadow", "drive"]
    plan = []
    for i in range(1, rounds + 1):
        for wl in WORKLOADS:
            k = (i - 1) % len(modes)
            ms = modes[k:] + modes[:k]
            if WORKLOADS[wl].get("stall") and "baseline" in ms:
                ms = [m for m in ms if m != "baseline"] + ["baseline"]
            plan += [(wl, m, i) for m in ms]
    if only:
        plan = [p for p in plan if p[0] in only]
    return plan


def baseline_action_for(runs: list[dict], workload: str, rnd: int) -> Optional[dict]:
    """What the baseline's operator does on a stall workload: the median limit the round's
    patched runs applied (advice, or auto-downtime-max's raise), at the median time after
    migrate they applied it; None when no patched run of the round applied one."""
    mine = [r for r in runs if r["workload"] == workload and r["run"] == rnd
            and r["mode"] != "baseline" and r.get("applied-limit")
            and r.get("applied-at-s") is not None]
    if not mine:
        return None
    return {"limit": int(median(r["applied-limit"] for r in mine)),
            "at_s": round(float(median(r["applied-at-s"] for r in mine)), 2)}


def markdown_table(summary: dict) -> str:
    """The summary as the results table of docs/qemu.md: medians per workload and mode, and
    the drive (and shadow) / baseline ratios."""
    def f(v, fmt="{:,.0f}"):
        return "–" if v is None else fmt.format(v)
    rows = ["| workload | mode | runs (completed) | total time ms (median) | downtime ms "
            "(median) | total / baseline | downtime − baseline ms | passes | predicted "
            "downtime ms | switchover MiB/s | limit applied ms | disagreements |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for wl, modes in summary["table"].items():
        for mode, m in modes.items():
            ra = summary["ratios-vs-baseline"].get(wl, {}).get(mode)
            tt = dd = "–"
            if ra:
                tt = f"{ra['total-time-ratio']:.3f}" + ("" if ra["total-time-within-5pct"]
                                                        else " (> 5 %)")
                dd = f"{ra['downtime-diff-ms']:+,.0f}" + (
                    "" if ra["downtime-within-5pct-or-20ms"] else " (> 5 % and > 20 ms)")
            bw = m.get("switchover-bandwidth-median") or m.get("qemu-switchover-bandwidth-median")
            rows.append(
                f"| {wl} | {mode} | {m['runs']} ({m['completed']}) | "
                f"{f(m['total-time-median'])} ({', '.join(f(x) for x in m['total-times'])}) | "
                f"{f(m['downtime-median'])} ({', '.join(f(x) for x in m['downtimes'])}) | "
                f"{tt} | {dd} | {f(m['passes-median'])} | "
                f"{f(m.get('predicted-downtime-median'))} | "
                f"{f(bw / MiB if bw else None)} | {f(m.get('applied-limit-median'))} | "
                f"{m['disagreements'] if mode != 'baseline' else '–'} |")
    return "\n".join(rows) + "\n"


async def main_async(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        report = json.loads((out / "report.json").read_text())
        runs = report["runs"]
        report["summary"] = summarise(runs)
        report["plot"] = plot(runs, out)
        (out / "report.json").write_text(json.dumps(report, indent=1))
        (out / "table.md").write_text(markdown_table(report["summary"]))
        print(json.dumps(report["summary"]["ratios-vs-baseline"], indent=1))
        return 0
    plan = make_plan(args.quick, args.runs, bool(args.baseline), args.only)
    runs = []
    for wl, mode, i in plan:
        print(f"qemu-e2e: {wl} {mode} run {i} ...", flush=True)
        baseline_action = (baseline_action_for(runs, wl, i)
                           if mode == "baseline" and WORKLOADS[wl].get("stall") else None)
        try:
            run = await one_run(args, wl, mode, i, baseline_action)
        except qemu_pair.HarnessError as exc:
            run = {"workload": wl, "mode": mode, "run": i, "status": "harness-error",
                   "error": str(exc)[-2000:],
                   "checks": [{"check": "harness", "ok": False, "detail": str(exc)[-500:]}]}
        bad = [c for c in run["checks"] if not c["ok"]]
        print(f"qemu-e2e:   {run['status']} total {run.get('total-time')} ms downtime "
              f"{run.get('downtime')} ms passes {run.get('passes')} disagreements "
              f"{run.get('disagreements')} stall-pass {run.get('stall-pass')} limit "
              f"{run.get('applied-limit')} predicted {run.get('predicted-downtime')} ms "
              f"switchover-bw {run.get('switchover-bandwidth')} B/s (QEMU's "
              f"{run.get('qemu-switchover-bandwidth')}) accel {run.get('accel')}"
              + (f"  FAILED: {[c['check'] + ': ' + c['detail'] for c in bad]}" if bad else ""),
              flush=True)
        runs.append(run)
        report = {"format": "switchover-qemu-e2e/1", "quick": args.quick,
                  "patched": args.patched, "baseline": args.baseline, "runs": runs,
                  "summary": summarise(runs)}
        (out / "report.json").write_text(json.dumps(report, indent=1))
    png = plot(runs, out)
    report["plot"] = png
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "table.md").write_text(markdown_table(report["summary"]))
    failed = [(r["workload"], r["mode"], r["run"], c["check"]) for r in runs
              for c in r["checks"] if not c["ok"]]
    print(json.dumps(report["summary"], indent=1))
    print(f"qemu-e2e: {len(runs)} runs, {len(failed)} failed checks; report {out / 'report.json'}"
          + (f", plot {png}" if png else ""))
    for f in failed:
        print(f"qemu-e2e: FAILED {f}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patched", default=None)
    ap.add_argument("--baseline", default=None)
    ap.add_argument("-L", dest="firmware", action="append", default=[])
    ap.add_argument("--guest-dir", default=None)
    ap.add_argument("--accel", default="auto", help="auto (kvm+tcg fallback) or e.g. tcg")
    ap.add_argument("--out", default="out/qemu-e2e")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], help="workload names")
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument("--boot-timeout", type=float, default=180.0)
    ap.add_argument("--lock", default="/tmp/swo-realguest.lock",
                    help="the real-guest lock taken for each run ('' = none)")
    ap.add_argument("--replot", action="store_true",
                    help="recompute the summary and the plot of an existing report.json")
    args = ap.parse_args()
    if not args.patched and not args.replot:
        ap.error("--patched is required")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
