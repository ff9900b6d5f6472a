"""switchover-watch against real, unmodified QEMU migrations (issue 12, item 5).

Each run boots the test guest in a source/destination QEMU pair (tests/e2e/qemu_pair.py, Debian's
QEMU, ``-accel kvm -accel tcg`` where the guest boots under KVM, else TCG alone), attaches
``python -m switchover.watch --json`` to a second monitor of the source before ``migrate``, and
records both sides: the harness's RUN.json (QEMU's own ``query-migrate`` every 100 ms) and the
watcher's JSON lines. Figures are computed from QEMU's record where QEMU has them (syncs,
remaining, downtime, total time) and from the watcher's lines for what only the library says
(stall report, advice, ETA, expected downtime).

    python3 tests/e2e/watch_e2e.py --mode quick|full --out out/watch-e2e [--qemu BIN -L DIR...]

Runs (1 GiB guest, 512 MiB filled, max-bandwidth 32 MiB/s, downtime-limit 300 ms):
  idle            no dirtying                                         (full)
  dirty8          8 MiB/s sequentially over 256 MiB: converges        (quick, full)
  dirty40         40 MiB/s over 256 MiB: never converges; watched     (full)
                  until 40 s after the stall report, then cancelled by the watcher
  dirty40-apply   the same with --apply-advice --max-downtime 20000 --round-aware
                                                                      (quick, full)
  dirty40-sync-N  the same with downtime-limit N set at the sync of the stall report (pass 7),
                  for N around the advice: the smallest that converges (full)
  dirty40-short   watched with --record until 5 s after the stall report (mode short)

Exit status 1 when a run misses what issue 12 requires (the stall within stall-passes + 1
passes of the remaining ceasing to fall; --apply-advice completing with a downtime at or
below the advice; the advice within 25 % above the smallest converging limit, full mode).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import qemu_pair  # noqa: E402

MiB = qemu_pair.MiB
STALL_PASSES = 5          # the library's default stall-passes
STALL_MARGIN = 0.04       # and stall-margin
LIMIT = 300


def watcher_argv(sock: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "switchover.watch", "--qmp", f"unix:{sock}",
            "--interval", "0.1", "--wait", "60", *extra]


async def one_run(name: str, args, *, rate: int, limit: int = LIMIT, watch_args=(),
                  timeout_s: float = 120.0, tmux_capture: Optional[Path] = None,
                  actions=(), sync_limit: Optional[tuple] = None) -> dict:
    """Boots, watches, migrates; returns the record, the watcher's lines and its exit code.

    ``sync_limit=(after_s, limit)``: sets ``downtime-limit`` to ``limit`` at the first sync
    (a new ``dirty-sync-count`` in QEMU's samples) at or after ``after_s``, within one 100 ms
    sample of it: the moment of a round where the watcher applies its advice (the stall is
    reported at a sync)."""
    workdir = Path(args.out) / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    if rate == 40 and args.rate:
        rate = args.rate
    guest = qemu_pair.GuestSpec(dirty_mib_s=rate, region_mib=256, pattern=args.pattern)
    pair = qemu_pair.QemuPair(args.qemu, firmware_dirs=args.firmware, guest=guest,
                              accel=args.accel, workdir=workdir, guest_dir=args.guest_dir,
                              extra_qmp_sockets=2 if tmux_capture else 1)
    env = dict(os.environ, PYTHONPATH=str(REPO / "python") + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    watch_out = open(workdir / "watch.jsonl", "w")
    watch_err = open(workdir / "watch.stderr", "w")
    proc = None
    tmux = None
    captured: dict[str, Any] = {}
    try:
        await pair.start()
        if rate:
            await asyncio.sleep(args.settle)
        argv = watcher_argv(pair.extra_qmp_paths[0],
                            ["--json", "--record", str(workdir / "watch.record.json"),
                             *watch_args])
        proc = subprocess.Popen(argv, stdout=watch_out, stderr=watch_err, env=env)
        if tmux_capture:
            tmux = f"swo-watch-{os.getpid()}"
            view = watcher_argv(pair.extra_qmp_paths[1], list(watch_args))
            shell = " ".join(shlex.quote(a) for a in
                             ["env", f"PYTHONPATH={env['PYTHONPATH']}", "TERM=xterm", *view])
            subprocess.run(["tmux", "new-session", "-d", "-s", tmux, "-x", "100", "-y", "12",
                            shell + "; sleep 600"], check=True)
        # The watchers start (Python, the library) and connect; on a loaded machine that
        # took over 4 s, and a watcher that attaches late sees the migration already running.
        await asyncio.sleep(6.0)

        def on_sample(_pair, sample):
            # The live view, captured once the stall has been reported for a few seconds.
            if tmux and "pane" not in captured:
                q = sample["query-migrate"]
                if captured.get("stall_seen") is None and _stalled_in(workdir / "watch.jsonl"):
                    captured["stall_seen"] = sample["t"]
                if captured.get("stall_seen") is not None and \
                        sample["t"] - captured["stall_seen"] > 3 and q.get("status") == "active":
                    pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", tmux],
                                          stdout=subprocess.PIPE, text=True).stdout
                    captured["pane"] = pane
                    tmux_capture.write_text(pane.rstrip() + "\n")

        seen: list = []

        last_count: dict = {}

        async def keep(p, sample):
            seen.append(sample)
            if sync_limit is not None and "sync_applied" not in captured:
                ram = sample["query-migrate"].get("ram") or {}
                count = ram.get("dirty-sync-count")
                prev = last_count.get("n")
                last_count["n"] = count
                if prev is not None and count is not None and count > prev \
                        and sample["t"] >= sync_limit[0] \
                        and sample["query-migrate"].get("status") == "active":
                    await p.src_qmp.execute("migrate-set-parameters",
                                            {"downtime-limit": sync_limit[1]})
                    captured["sync_applied"] = {
                        "at_s": sync_limit[0], "parameters": {"downtime-limit": sync_limit[1]},
                        "applied_at_s": sample["t"], "at_sync": count,
                        "sample_t": sample["t"], "label": "at the first sync after at_s"}
            return on_sample(p, sample)

        try:
            record = await pair.migrate(
                parameters={"max-bandwidth": 32 * MiB, "downtime-limit": limit},
                actions=actions, timeout_s=timeout_s, on_sample=keep)
        except Exception as e:  # noqa: BLE001 - e.g. the destination's monitor dropped after
            # the migration ended: QEMU's own samples are all there, keep them.
            if not seen or seen[-1]["query-migrate"].get("status") not in qemu_pair.FINAL_STATUSES:
                raise
            record = {"format": qemu_pair.RUN_FORMAT, "samples": seen, "events": [],
                      "actions_applied": [], "destination": {"error": f"{type(e).__name__}: {e}"},
                      "guest_stats": qemu_pair.parse_guest_stats(
                          pair.src_serial.read_text(errors="replace")),
                      "inputs": {"qemu": {"accel": "kvm" if pair.kvm else "tcg",
                                          "version": pair.version},
                                 "migrate_parameters": {"max-bandwidth": 32 * MiB,
                                                        "downtime-limit": limit}}}
            record["outcome"] = qemu_pair.summarise(record)
        if "sync_applied" in captured:
            record.setdefault("actions_applied", []).append(captured["sync_applied"])
    finally:
        await pair.close()
        if proc is not None:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if tmux:
            subprocess.run(["tmux", "kill-session", "-t", tmux], stderr=subprocess.DEVNULL)
        watch_out.close()
        watch_err.close()
    (workdir / "RUN.json").write_text(json.dumps(record))
    lines = [json.loads(x) for x in (workdir / "watch.jsonl").read_text().splitlines() if x]
    return {"name": name, "rate": rate, "limit": limit, "record": record, "watch": lines,
            "watch_rc": proc.returncode if proc else None,
            "watch_stderr": (workdir / "watch.stderr").read_text().strip()}


def _stalled_in(path: Path) -> bool:
    try:
        return '"MIGRATION_STALL"' in path.read_text()
    except OSError:
        return False


def analyse(run: dict) -> dict:
    """The figures issue 12 asks for, per run."""
    record, lines = run["record"], run["watch"]
    out = record["outcome"]
    samples = [x for x in lines if x.get("type") == "sample"]
    summary = next((x for x in lines if x.get("type") == "summary"), {})
    syncs = [s for s in out["syncs"] if s["status"] == "active"]
    res: dict[str, Any] = {
        "run": run["name"], "status": out["status"], "total_s": _s(out["total-time"]),
        "passes": out["passes"], "downtime_ms": out["downtime"],
        "watch_outcome": summary.get("outcome"), "watch_rc": run["watch_rc"],
        # The library's last prediction: its expected downtime at the last live sample that
        # still had something to send.
        "predicted_ms": next((x["expected-downtime"] for x in reversed(samples)
                              if x["status"] == "active" and x["remaining"]), None),
        "qemu_expected_ms": out.get("expected-downtime-at-switchover"),
        # What the library reports at completion (issue 15 item 4), from the watcher's summary.
        "library_predicted_ms": summary.get("predicted-downtime"),
        "library_measured_ms": summary.get("measured-downtime"),
        "switchover_bytes": summary.get("switchover-bytes"),
        "switchover_bw": summary.get("measured-switchover-bandwidth"),
        "guest_dirty_rate_mib_s": max((x.get("guest-dirty-rate") or 0 for x in samples),
                                      default=0) / MiB,
        "advice_ms": summary.get("advice") or None,
        "applied": [a["arguments"]["downtime-limit"] for a in summary.get("actions", [])
                    if a["command"] == "migrate-set-parameters"],
        "accel": record["inputs"]["qemu"]["accel"],
        "qemu": record["inputs"]["qemu"]["version"],
        "dirty_mib_s_achieved": (record.get("guest_stats") or {}).get("achieved_dirty_mib_s"),
    }
    # The remaining ceasing to fall: the first loop sync whose figure is not stall-margin below
    # the previous sync's (QEMU's own figures: ram.remaining in the first sample after it).
    plateau = None
    for prev, cur in zip(syncs, syncs[1:]):
        if prev["dirty-sync-count"] >= 2 and cur["remaining"] >= prev["remaining"] * (1 - STALL_MARGIN):
            plateau = cur
            break
    stall = next((x for x in samples if "MIGRATION_STALL" in x["events"]), None)
    # The same run replayed from QEMU's record (python -m switchover.sim --replay): the stall
    # and the advice the library gives on the harness's samples, against the live watcher's.
    try:
        from switchover.qmpfeed import replay
        for r in replay(record):
            hit = [e for e in r.events if e["event"] == "MIGRATION_STALL"]
            if hit:
                res["replay_stall_pass"] = r.qemu_pass
                res["replay_advice_ms"] = hit[0]["data"].get("recommended-downtime")
                break
    except Exception as e:  # noqa: BLE001 - the comparison is a figure, not the run
        res["replay_error"] = str(e)
    at_sync = next((a for a in record.get("actions_applied", []) or [] if "at_sync" in a), None)
    if at_sync is not None:
        # A limit set at a sync: the figure that sync found (QEMU's remaining in the sample
        # that showed it), when, and what followed.
        found = next((s for s in out["syncs"] if s["dirty-sync-count"] == at_sync["at_sync"]),
                     None)
        res["sync_limit"] = at_sync["parameters"]["downtime-limit"]
        res["sync_applied_s"] = at_sync["applied_at_s"]
        res["sync_applied_pass"] = at_sync["at_sync"]
        res["sync_found"] = found["remaining"] if found else None
        res["syncs_after"] = out["passes"] - at_sync["at_sync"] if out.get("passes") else None
    res["plateau_pass"] = plateau["dirty-sync-count"] if plateau else None
    res["plateau_t_s"] = plateau["t"] if plateau else None
    res["plateau_remaining"] = plateau["remaining"] if plateau else None
    if stall is not None:
        res["stall_pass"] = stall["pass"]
        res["stall_total_time_s"] = _s(stall["total-time"])
        when = next((s["t"] for s in out["syncs"] if s["dirty-sync-count"] == stall["pass"]), None)
        if plateau and when is not None:
            res["stall_after_s"] = round(when - plateau["t"], 1)
            res["stall_after_passes"] = stall["pass"] - plateau["dirty-sync-count"]
    # ETA error at 25 / 50 / 75 % of a completed run: the watcher's ETA at the sample nearest
    # that share of QEMU's total time, against the time QEMU still took to the switchover.
    if out["status"] == "completed" and out["total-time"]:
        total = out["total-time"]
        switch = total - (out["downtime"] or 0)
        live = [x for x in samples if x["status"] == "active" and x["total-time"] is not None]
        errs = {}
        for share in (25, 50, 75):
            at = total * share / 100
            if not live:
                break
            x = min(live, key=lambda x: abs(x["total-time"] - at))
            actual = switch - x["total-time"]
            if x["eta"] is None:
                errs[share] = {"eta_s": None, "actual_s": _s(actual), "error_pct": None}
            else:
                err = (x["eta"] - actual) / actual * 100 if actual > 0 else None
                errs[share] = {"eta_s": _s(x["eta"]), "actual_s": _s(actual),
                               "error_pct": None if err is None else round(err)}
        res["eta"] = errs
    return res


def reanalyse(out: Path) -> list:
    """The figures again from the files of an earlier run (RUN.json, watch.jsonl per run)."""
    results = []
    for d in sorted(p for p in out.iterdir() if (p / "RUN.json").exists()):
        lines = [json.loads(x) for x in (d / "watch.jsonl").read_text().splitlines() if x]
        summary = next((x for x in lines if x.get("type") == "summary"), {})
        run = {"name": d.name, "record": json.loads((d / "RUN.json").read_text()),
               "watch": lines, "watch_rc": summary.get("exit-code")}
        results.append(analyse(run))
    return results


def _s(ms: Optional[int]) -> Optional[float]:
    return None if ms is None else round(ms / 1000, 1)


async def main_async(args) -> int:
    if args.guest_dir is None:
        args.guest_dir = str(qemu_pair.guest_image_dir())
    results = []
    failures = []
    started = time.monotonic()

    async def run(name, **kw):
        if args.pattern != "sequential":
            name = name.replace("dirty40", f"{args.pattern}40")
        print(f"=== {name} ({time.monotonic() - started:.0f} s)", flush=True)
        r = await one_run(name, args, **kw)
        a = analyse(r)
        print(json.dumps(a), flush=True)
        results.append(a)
        return a

    wanted = MODES[args.mode]
    if "idle" in wanted:
        await run("idle", rate=0, timeout_s=90)
    if "dirty8" in wanted:
        d8 = await run("dirty8", rate=8, timeout_s=120)
        if d8["status"] != "completed" or d8["watch_rc"] != 0:
            failures.append(f"dirty8: QEMU {d8['status']}, watcher exit {d8['watch_rc']}")
    if "dirty40" in wanted:
        w = await run("dirty40", rate=40, timeout_s=150,
                      watch_args=["--cancel-on-stall", "40"],
                      tmux_capture=Path(args.out) / "live-view.txt")
        _check_stall(w, failures)
    if "dirty40-short" in wanted:
        # Watched until 5 s after the stall report, then cancelled: a compact recorded
        # non-converging run (the watcher's --record file replays it, issue 18).
        w = await run("dirty40-short", rate=40, timeout_s=100,
                      watch_args=["--cancel-on-stall", "5"])
        _check_stall(w, failures)
    ap = {"applied": [], "status": None}
    if "dirty40-apply" in wanted:
        ap = await run("dirty40-apply", rate=40, timeout_s=150,
                       watch_args=["--apply-advice", "--max-downtime", "20000",
                                   "--round-aware"])
        _check_stall(ap, failures)
        if ap["status"] != "completed" or not ap["applied"]:
            failures.append(f"dirty40-apply: QEMU {ap['status']}, applied {ap['applied']}")
        elif ap["downtime_ms"] is None or ap["downtime_ms"] > ap["applied"][-1]:
            failures.append(f"dirty40-apply: downtime {ap['downtime_ms']} ms above the advice "
                            f"{ap['applied'][-1]} ms")
    if args.limits:
        # Explicit limits, raised at 40 s on the stalled dirty-40 run.
        for lim in args.limits:
            await run(f"dirty40-limit-{lim}", rate=40, timeout_s=66,
                      actions=[qemu_pair.Action(40.0, parameters={"downtime-limit": lim})])
    if args.sync_limits:
        # Limits set where the watcher applies its advice: at a sync (the stall report comes
        # with one), the first after --sync-after seconds (the stall report's pass on these
        # runs). Which converge within 35 s?
        for lim in args.sync_limits:
            r = await run(f"dirty40-sync-{lim}", rate=40, timeout_s=args.sync_after + 35,
                          sync_limit=(args.sync_after, lim))
            r["sync_limit"] = lim
    if "limits" in wanted and ap["applied"] and ap["status"] == "completed":
        advice = ap["applied"][-1]
        # Limits around the advice, set where the advice is applied: at the sync of the stall
        # report (the first sync after --sync-after s, pass 7 on these runs). Which converge
        # within 35 s? (Where in a round a limit is raised matters: QEMU syncs as soon as the
        # remaining falls below the new threshold, so a raise in mid-round ends the round
        # early; docs/watch.md.)
        verdicts = {}
        for share in args.shares:
            lim = int(round(advice * share))
            r = await run(f"dirty40-sync-{lim}", rate=40, timeout_s=args.sync_after + 35,
                          sync_limit=(args.sync_after, lim))
            verdicts[lim] = r["status"] == "completed"
        verdicts[advice] = True
        converging = sorted(k for k, v in verdicts.items() if v)
        failing = sorted(k for k, v in verdicts.items() if not v)
        smallest = converging[0]
        search = {"advice_ms": advice, "verdicts": verdicts, "smallest_converging_ms": smallest,
                  "largest_failing_ms": failing[-1] if failing else None,
                  "advice_over_smallest_pct": round((advice / smallest - 1) * 100, 1)}
        print(json.dumps({"limit-search": search}), flush=True)
        results.append({"run": "limit-search", **search})
        if failing and failing[-1] > advice:
            failures.append(f"a limit above the advice failed: {failing[-1]} ms")
        if advice > smallest * 1.25:
            failures.append(f"advice {advice} ms more than 25 % above {smallest} ms")
    Path(args.out, "results.json").write_text(json.dumps(results, indent=1))
    for line in table(results):
        print(line)
    Path(args.out, "table.md").write_text("\n".join(table(results)) + "\n")
    for f in failures:
        print(f"watch-e2e: FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


MODES = {
    "quick": {"dirty8", "dirty40-apply"},
    "full": {"idle", "dirty8", "dirty40", "dirty40-apply", "limits"},
    "eta": {"idle", "dirty8"},
    "advice": {"dirty40-apply", "limits"},
    "none": set(),
    "apply": {"dirty40-apply"},
    "short": {"dirty40-short"},
}


def _check_stall(a: dict, failures: list) -> None:
    n = a.get("stall_after_passes")
    if n is None:
        failures.append(f"{a['run']}: no stall reported after the remaining stopped falling "
                        f"(plateau at pass {a.get('plateau_pass')})")
    elif n > STALL_PASSES + 1:
        failures.append(f"{a['run']}: stall {n} passes after the plateau (> {STALL_PASSES + 1})")


def table(results: list) -> list:
    rows = ["| run | QEMU outcome | total | passes | stall after plateau | advice | applied | "
            "downtime measured / predicted (library) / QEMU's expected | switchover bandwidth "
            "(library) | ETA error 25 / 50 / 75 % |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for a in results:
        if a["run"] == "limit-search":
            continue
        stall = (f"{a['stall_after_s']} s, {a['stall_after_passes']} passes"
                 if a.get("stall_after_s") is not None else "-")
        eta = a.get("eta")
        eta_txt = " / ".join("never" if e["eta_s"] is None else f"{e['error_pct']:+d} %"
                             for e in eta.values()) if eta else "-"
        rows.append(
            f"| {a['run']} | {a['status']} | {a['total_s']} s | {a['passes']} | {stall} | "
            f"{a['advice_ms'] or '-'} | {', '.join(map(str, a['applied'])) or '-'} | "
            f"{a['downtime_ms'] if a['downtime_ms'] is not None else '-'} / "
            f"{a['predicted_ms'] if a['predicted_ms'] is not None else '-'} / "
            f"{a['qemu_expected_ms'] if a['qemu_expected_ms'] is not None else '-'} ms | "
            f"{round(a['switchover_bw'] / MiB, 1) if a.get('switchover_bw') else '-'} MiB/s | "
            f"{eta_txt} |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=sorted(MODES), default="quick",
                    help="quick (CI: dirty8, dirty40-apply), full (everything), eta (idle, "
                         "dirty8), advice (dirty40-apply and the limit search)")
    ap.add_argument("--out", default="out/watch-e2e")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("-L", dest="firmware", action="append", default=[])
    ap.add_argument("--accel", default="auto")
    ap.add_argument("--guest-dir", default=None)
    ap.add_argument("--settle", type=float, default=8.0,
                    help="seconds of dirtying before the migration starts (default 8)")
    ap.add_argument("--limits", type=int, nargs="+", default=[],
                    help="also run dirty 40 with these downtime-limits raised at 40 s "
                         "(with --mode none: only these)")
    ap.add_argument("--pattern", default="sequential",
                    choices=("sequential", "uniform", "hotspot"),
                    help="how the guest writes (tests/e2e/dirtier.c; default sequential)")
    ap.add_argument("--rate", type=int, default=None,
                    help="the dirty-40 runs' write rate in MiB/s instead of 40 (the run names "
                         "keep '40')")
    ap.add_argument("--sync-limits", type=int, nargs="+", default=[],
                    help="also run dirty 40 with these downtime-limits set at the first sync "
                         "after --sync-after seconds (with --mode none: only these)")
    ap.add_argument("--sync-after", type=float, default=55.0,
                    help="seconds after migrate from which --sync-limits wait for a sync "
                         "(default 55: the stall report's sync, pass 7, comes at ~60 s)")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.7, 0.8, 0.9],
                    help="full mode: limits tried, as shares of the advice")
    ap.add_argument("--reanalyse", action="store_true",
                    help="no new runs: recompute the figures from the files in --out")
    args = ap.parse_args(argv)
    if args.reanalyse:
        results = reanalyse(Path(args.out))
        for a in results:
            print(json.dumps(a))
        for line in table(results):
            print(line)
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(main_async(args))
    except qemu_pair.HarnessError as e:
        print(f"watch-e2e: harness: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
