"""What the watcher shows: the live terminal view, one JSON object per sample, the summary."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..qmpfeed import ETA_NEVER, FeedResult
from ..sizes import size_to_str

INT64_MAX = (1 << 63) - 1


def size(v: Optional[int]) -> str:
    return "-" if v is None else size_to_str(max(0, min(int(v), (1 << 64) - 1)))


def duration(ms: Optional[int]) -> str:
    """``never`` for the library's ETA_NEVER (and INT64_MAX), ``850 ms``, ``12.3 s``."""
    if ms is None:
        return "-"
    if ms in (ETA_NEVER, INT64_MAX):
        return "never"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 600_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000} s"


def sample_object(r: FeedResult, qemu: Dict[str, Any], params: Dict[str, Any],
                  actions: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The ``--json`` object of one sample (tests/schema/watch-sample.schema.json)."""
    lib = r.library
    x = r.x
    ram = qemu.get("ram") or {}
    eta = x.get("eta")
    return {
        "type": "sample",
        "t-ms": r.now_ms,
        "total-time": qemu.get("total-time"),
        "status": r.status,
        "pass": r.qemu_pass,
        "new-passes": r.new_passes,
        "remaining": r.pending,
        "ram-remaining": ram.get("remaining"),
        "transferred": ram.get("transferred"),
        "mbps": ram.get("mbps"),
        "qemu-expected-downtime": qemu.get("expected-downtime"),
        "downtime-limit": params.get("downtime-limit"),
        "threshold": x.get("threshold"),
        "switchover-bandwidth": x.get("switchover-bandwidth"),
        "expected-downtime": lib.get("expected-downtime"),
        "eta": None if eta is None or eta == ETA_NEVER else eta,
        "stalled": bool(x.get("stalled", False)),
        "passes-since-progress": x.get("passes-since-progress", 0),
        "recommended-downtime": x.get("recommended-downtime", 0),
        "guest-dirty-rate": r.guest_dirty_rate,
        "guest-stopped": r.guest_stopped,
        "predicted-downtime": r.switchover.get("predicted-downtime"),
        "measured-downtime": r.switchover.get("measured-downtime"),
        "switchover-bytes": r.switchover.get("switchover-bytes"),
        "measured-switchover-bandwidth": r.switchover.get("measured-switchover-bandwidth"),
        "events": [e["event"] for e in r.events],
        "actions": actions,
    }


def live_lines(address: str, r: FeedResult, qemu: Dict[str, Any], params: Dict[str, Any],
               note: str = "") -> List[str]:
    """The live view: a few lines, each under 80 columns."""
    x = r.x
    lib = r.library
    limit = params.get("downtime-limit")
    bw = x.get("switchover-bandwidth")
    total = qemu.get("total-time")
    lines = [
        f"switchover-watch {address}   {r.status}   "
        f"t={duration(total) if total is not None else '-'}   pass {r.qemu_pass}",
        f"  remaining   {size(r.pending):>10}    threshold {size(x.get('threshold')):>10}"
        f"    throughput {size(bw)}/s",
        f"  downtime    expected {duration(lib.get('expected-downtime'))}"
        f" (limit {duration(limit)})   ETA {duration(x.get('eta'))}",
    ]
    if r.switchover:
        sw = r.switchover
        bw_s = sw.get("measured-switchover-bandwidth")
        lines.append(f"  switchover  downtime {duration(sw.get('measured-downtime'))} measured,"
                     f" {duration(sw.get('predicted-downtime'))} predicted;"
                     f" {size(bw_s) + '/s' if bw_s else '-'} measured")
    elif r.guest_stopped:
        lines.append(f"  switchover  guest stopped ({r.status}): the final copy is under way")
    elif x.get("stalled"):
        rec = x.get("recommended-downtime", 0)
        advice = (f"downtime-limit {rec} ms would converge" if rec
                  else "no downtime-limit would converge")
        lines.append(f"  STALLED     {x.get('passes-since-progress')} passes without progress"
                     f" (best {size(x.get('best-remaining'))}): {advice}")
    else:
        lines.append(f"  progress    {x.get('passes-since-progress', 0)} passes since the last "
                     f"progress")
    if note:
        lines.append(f"  {note}")
    return lines


def summary_lines(s: Dict[str, Any]) -> List[str]:
    out = [f"outcome: {s['outcome']} (exit {s['exit-code']})"]
    if s.get("total-time") is not None:
        out.append(f"total time: {duration(s['total-time'])}, {s['passes']} passes")
    if s.get("downtime") is not None:
        out.append(f"downtime: {s['downtime']} ms measured, {duration(s.get('predicted-downtime'))}"
                   f" predicted when the guest stopped")
    if s.get("switchover-bytes") is not None:
        bw_s = s.get("measured-switchover-bandwidth")
        out.append(f"switchover bandwidth: {size(bw_s) + '/s' if bw_s else '-'} measured "
                   f"({size(s['switchover-bytes'])} in {duration(s.get('measured-downtime'))})")
    if s.get("stall-reported-ms") is not None:
        out.append(f"stall: reported at {duration(s['stall-reported-ms'])}, "
                   f"stalled for {duration(s['stall-time-ms'])}")
    if s.get("advice"):
        out.append(f"advice: downtime-limit {s['advice']} ms")
    for a in s.get("actions", []):
        out.append(f"action at {duration(a['t-ms'])}: {a['command']} {a.get('arguments', {})}")
    if s.get("error"):
        out.append(f"error: {s['error']}")
    return out
