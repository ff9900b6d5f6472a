"""Text and JSON output of a simulation, and the stderr progress bar."""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any, TextIO

from .run import PassRecord, Result
# Re-exported: the formatting leaves live in .units (run.py uses them too).
from .units import INT64_MAX, fmt_eta, fmt_ms, fmt_size, fmt_time  # noqa: F401

# Units in the headers; sizes carry their unit in each cell (QEMU's size_to_str).
HEADER = (f"{'time (s)':>9}  {'pass':>5}  {'remaining':>10}  {'threshold':>10}  "
          f"{'exp.down ms':>11}  {'limit ms':>8}  {'Mbps':>8}  {'ETA (s)':>8}  {'reason':<24}  action")


def pass_line(r: PassRecord) -> str:
    exp = "inf" if r.expected_downtime_ms >= INT64_MAX else str(r.expected_downtime_ms)
    line = (f"{r.t_ms / 1000:9.2f}  {r.pass_:>5}  {fmt_size(r.remaining):>10}  "
            f"{fmt_size(r.threshold):>10}  {exp:>11}  {r.limit_ms:>8}  {r.mbps:8.1f}  "
            f"{fmt_eta(r.eta_ms):>8}  {r.reason:<24}  {r.action}")
    if r.notes:
        line += "  [" + "; ".join(r.notes) + "]"
    return line


def summary_lines(res: Result) -> list[str]:
    out = [f"scenario {res.scenario} (seed {res.seed}): {res.outcome.upper()}"]
    if res.converged:
        kind = "postcopy" if res.postcopy else "switchover"
        out.append(f"  converged:          yes, {kind} at {fmt_time(res.switchover_at_ms)}, "
                   f"completed at {fmt_time(res.end_ms)}")
    else:
        out.append(f"  converged:          no (ran {fmt_time(res.end_ms)})")
    out.append(f"  total time:         {fmt_time(res.total_time_ms)} (library), "
               f"{res.passes} passes, {fmt_size(res.transferred_bytes)} transferred")
    if res.switchover_at_ms is not None:
        respected = "yes" if res.limit_respected else "NO"
        label = "downtime (to postcopy start)" if res.postcopy else "downtime"
        out.append(f"  {label + ':':<20}predicted {fmt_ms(res.predicted_downtime_ms)}, "
                   f"simulated {fmt_ms(res.simulated_downtime_ms)}, "
                   f"library measured {fmt_ms(res.library_downtime_ms)}")
        if not res.postcopy and res.predicted_downtime_ms is not None \
                and res.simulated_downtime_ms is not None \
                and res.predicted_downtime_ms < INT64_MAX:
            err = res.simulated_downtime_ms - res.predicted_downtime_ms
            out.append(f"  prediction error:   {err:+d} ms (simulated - predicted)")
        if res.measured_switchover_bw and not res.postcopy:
            out.append(f"  switchover bw:      {fmt_size(res.measured_switchover_bw)}/s measured "
                       "by the library (bytes sent stopped / downtime)")
        forced = f", forced by {res.policy_action}" if res.forced and res.policy_action else ""
        out.append(f"  downtime-limit:     {res.downtime_limit_ms} ms, respected: {respected}"
                   + forced)
    else:
        out.append(f"  downtime-limit:     {res.downtime_limit_ms} ms (no switchover)")
        if res.policy_action:
            out.append(f"  policy action:      {res.policy_action}")
    stall = f", first at {fmt_time(res.first_stall_ms)}" if res.first_stall_ms is not None else ""
    out.append(f"  stalls:             {res.stalls}{stall}")
    if res.adjustments:
        adj = ", ".join(f"{a['from_ms']}->{a['to_ms']} ms at {fmt_time(a['t_ms'])}"
                        for a in res.adjustments)
        out.append(f"  adjustments:        {adj}")
    else:
        out.append("  adjustments:        none")
    if res.rollbacks:
        out.append(f"  rollbacks:          {res.rollbacks}")
    if res.warnings:
        out.append(f"  warnings:           {len(res.warnings)}")
        for w in res.warnings:
            data = ", ".join(f"{k}={v}" for k, v in w["data"].items())
            out.append(f"    {fmt_time(w['t_ms'])} {w['event']}: {data}")
    stall = next((e for e in res.events if e.name == "MIGRATION_STALL"), None)
    if not res.advice and stall is not None:
        # A run that switched over after a stall: the advice the library gave at the stall.
        rec = stall.data.get("recommended-downtime") or 0
        exp = stall.data.get("expected-downtime")
        what = (f"a downtime-limit of {rec} ms would switch over" if rec else
                "no change of downtime-limit advised")
        out.append(f"  advice:             at the stall ({fmt_time(stall.t_ms)}): {what} "
                   f"(expected downtime {fmt_ms(exp)})")
    if res.advice:
        a = res.advice
        rec = a["recommended_downtime_ms"]
        beyond = bool(a.get("beyond_max"))
        if beyond and not rec:
            # The library reports BEYOND_MAX with no recommendation (0) when the limit needed
            # is above the largest downtime-limit it accepts (QEMU's bound): ask it which.
            from .scenario import library_max
            tail = (f", more than any downtime-limit can be: no downtime-limit up to "
                    f"{library_max('downtime-limit'):,} ms would converge")
        elif rec:
            above = " (beyond auto-downtime-max)" if beyond else ""
            tail = f", a downtime-limit of {rec} ms would switch over{above}"
        else:
            tail = ""
        out.append(f"  advice:             expected downtime {fmt_ms(a['expected_downtime_ms'])}"
                   + tail)
    return out


def print_text(res: Result, out: TextIO | None = None, passes: bool = True) -> None:
    out = out or sys.stdout
    if passes:
        print(HEADER, file=out)
        for r in res.records:
            print(pass_line(r), file=out)
            if r.hmp:
                for line in r.hmp.rstrip("\n").split("\n"):
                    print("    | " + line, file=out)
        print(file=out)
    for line in summary_lines(res):
        print(line, file=out)


def to_json_obj(res: Result, timeline: bool = False) -> dict:
    d = dataclasses.asdict(res)
    if not timeline:
        d.pop("timeline")
        d.pop("downtime_series")
    else:
        d["timeline"] = [list(x) for x in res.timeline]
        d["downtime_series"] = [list(x) for x in res.downtime_series]
    for r in d["records"]:
        r["pass"] = r.pop("pass_")
        if r["hmp"] is None:
            r.pop("hmp")
    return d


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


class Progress:
    """A progress bar on stderr, shown only on a TTY and only once a run takes over 1 s."""

    def __init__(self, label: str, stream: TextIO | None = None, delay_s: float = 1.0):
        self.label = label
        self.stream = stream = stream or sys.stderr
        self.enabled = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.monotonic()
        self.delay = delay_s
        self.last = 0.0
        self.shown = False

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self.last < 0.1:
            return
        self.last = now
        self.shown = True
        width = 30
        filled = int(width * max(0.0, min(1.0, fraction)))
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{fraction * 100:3.0f}%")
        self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * (len(self.label) + 40) + "\r")
            self.stream.flush()
