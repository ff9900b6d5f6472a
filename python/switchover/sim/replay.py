"""``python -m switchover.sim --replay RUN.json``: what switchover would have said, pass by
pass, during a recorded real migration.

A RUN.json (tests/e2e/qemu_pair.py, format ``switchover-real-run/1``) holds QEMU's
``query-migrate`` every 100 ms; the samples go through the same mapping the live watcher uses
(:mod:`switchover.qmpfeed`), so the stall, the advice and the ETA are the ones
``switchover-watch`` would have shown at the time.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from ..qmpfeed import replay
from .output import fmt_eta, fmt_size

HEADER = (f"{'time (s)':>9}  {'pass':>5}  {'sync figure':>11}  {'threshold':>10}  "
          f"{'exp.down ms':>11}  {'limit ms':>8}  {'ETA (s)':>8}  what switchover says")

INT64_MAX = (1 << 63) - 1


class ReplayError(Exception):
    """The file is no recorded run."""


def load(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            record = json.load(f)
    except OSError as e:
        raise ReplayError(f"--replay {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ReplayError(f"--replay {path}: not JSON ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("samples"), list):
        raise ReplayError(f"--replay {path}: no 'samples' list (a RUN.json of "
                          f"tests/e2e/qemu_pair.py is expected)")
    for i, s in enumerate(record["samples"]):
        if not (isinstance(s, dict) and isinstance(s.get("t"), (int, float))
                and isinstance(s.get("query-migrate"), dict)):
            raise ReplayError(f"--replay {path}: sample {i} lacks 't' or 'query-migrate'")
    return record


def run(record: Dict[str, Any], params: Optional[Dict[str, Any]] = None
        ) -> Tuple[List[str], Dict[str, Any]]:
    """The pass lines and a summary of what the library said."""
    lines = [HEADER]
    summary: Dict[str, Any] = {"passes": 0, "stall": None, "advice": None, "adjusted": [],
                               "status": None, "downtime": None, "predicted-downtime": None}
    last_live = None
    for r in replay(record, params):
        summary["status"] = r.status
        if r.status == "active":
            last_live = r
        notes = []
        for e in r.events:
            d = e["data"]
            if e["event"] == "MIGRATION_STALL":
                rec = d.get("recommended-downtime", 0)
                notes.append(f"STALL: {d['passes-since-progress']} passes without progress; "
                             + (f"downtime-limit {rec} ms would converge" if rec
                                else "no downtime-limit would converge"))
                if summary["stall"] is None:
                    summary["stall"] = {"t_s": r.now_ms / 1000, "pass": r.qemu_pass,
                                        "advice_ms": rec or None}
            elif e["event"] == "MIGRATION_DOWNTIME_ADJUSTED":
                notes.append(f"downtime-limit raised to {d['downtime-limit']} ms")
                summary["adjusted"].append(d["downtime-limit"])
        if r.x.get("recommended-downtime"):
            summary["advice"] = r.x["recommended-downtime"]
        if r.switchover:
            summary["switchover"] = dict(r.switchover)
        if not (r.new_passes or notes):
            continue
        exp = r.library.get("expected-downtime")
        exp_txt = "inf" if exp is None or exp >= INT64_MAX else str(exp)
        lines.append(
            f"{r.now_ms / 1000:9.2f}  {r.qemu_pass:>5}  "
            f"{fmt_size(r.x.get('last-sync-bytes')):>11}  {fmt_size(r.x.get('threshold')):>10}  "
            f"{exp_txt:>11}  {_limit(record, r.now_ms):>8}  {fmt_eta(r.eta_ms):>8}  "
            + ("; ".join(notes) if notes else "iterate"))
        summary["passes"] = r.passes
    final = record["samples"][-1]["query-migrate"] if record["samples"] else {}
    summary["downtime"] = final.get("downtime")
    if last_live is not None:
        summary["predicted-downtime"] = last_live.library.get("expected-downtime")
    return lines, summary


def _limit(record: Dict[str, Any], now_ms: int) -> Any:
    """QEMU's downtime-limit at ``now_ms`` as recorded (start value, then applied actions; in a
    watcher's record, the parameters set before each sample)."""
    limit = (record.get("inputs", {}).get("migrate_parameters") or {}).get("downtime-limit")
    for s in record.get("samples", []):
        if not isinstance(s.get("parameters"), dict):
            break
        if int(s.get("t-ms", round(float(s["t"]) * 1000))) > now_ms:
            break
        limit = s["parameters"].get("downtime-limit", limit)
    for a in record.get("actions_applied", []) or []:
        p = a.get("parameters") or {}
        if "downtime-limit" in p and a.get("applied_at_s", 0) * 1000 <= now_ms:
            limit = p["downtime-limit"]
    return "-" if limit is None else limit


def summary_lines(s: Dict[str, Any]) -> List[str]:
    out = [f"QEMU's outcome: {s['status']}, {s['passes']} passes fed to the library"]
    if s["stall"]:
        st = s["stall"]
        adv = f", advice downtime-limit {st['advice_ms']} ms" if st["advice_ms"] else \
            ", no downtime-limit would converge"
        out.append(f"stall reported at {st['t_s']:.1f} s (QEMU pass {st['pass']}){adv}")
    else:
        out.append("no stall reported")
    if s["downtime"] is not None:
        out.append(f"downtime: {s['downtime']} ms measured by QEMU, "
                   f"{s['predicted-downtime']} ms expected by the library at the last pass")
    sw = s.get("switchover")
    if sw and sw.get("measured-downtime") is not None:
        bw = sw.get("measured-switchover-bandwidth")
        out.append(f"switchover (library): predicted {sw['predicted-downtime']} ms, measured "
                   f"{sw['measured-downtime']} ms, {fmt_size(sw['switchover-bytes'])} sent "
                   f"stopped" + (f", {fmt_size(bw)}/s" if bw else ""))
    return out


def main(path: str, as_json: bool = False, params: Optional[Dict[str, Any]] = None) -> int:
    record = load(path)
    lines, summary = run(record, params)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        for line in lines + [""] + summary_lines(summary):
            print(line)
    return 0
