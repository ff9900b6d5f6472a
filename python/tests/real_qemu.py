"""The simulator against recorded real QEMU migrations (issue 18): loading the fixtures,
running each mirror scenario, the checks, and the table and plot of
docs/simulator-validation.md.

A fixture is a pair in tests/fixtures/real-qemu/: ``<run>.json``, the compact summary of a
real migration (tests/e2e/summarise_run.py), and ``<run>.toml``, the scenario mirroring it
(tests/e2e/mirror_scenario.py). The checks, from the issue:
- the same verdict (converges or not);
- total time and bytes within 10 %;
- the remaining figure after each dirty-bitmap sync within 10 % on the plateau (every sync
  after the first round's; the real figure is the first sample after the sync, at most one
  100 ms sample later);
- downtime within 50 % or 50 ms, whichever is larger.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from switchover.sim import scenario as scn
from switchover.sim.run import Simulation

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "real-qemu"
DOC = ROOT / "docs" / "simulator-validation.md"
PLOT = ROOT / "docs" / "simulator-validation.png"
MiB = 2**20
ORDER = ("idle", "dirty8", "dirty40", "dirty40-raise", "uniform40")


def fixtures() -> list[str]:
    names = [p.stem for p in FIXTURES.glob("*.toml") if (FIXTURES / f"{p.stem}.json").exists()]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def load_summary(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def simulate(name: str):
    sc = scn.load(FIXTURES / f"{name}.toml")
    # every_s=0: one record per pass, so every sync's remaining figure is kept
    return Simulation(sc, every_s=0).run()


@dataclass
class Comparison:
    name: str
    real: dict
    sim: dict
    checks: dict = field(default_factory=dict)     # check -> (ok, text)

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.checks.values())


def real_loop_syncs(summary: dict) -> list[tuple[float, int]]:
    """(t s, remaining bytes) after each loop sync seen while active, in order
    (dirty-sync-count 1 is the setup sync)."""
    return [(s["t"], s["remaining"]) for s in _active_loop_syncs(summary)]


def _active_loop_syncs(summary: dict) -> list[dict]:
    t_stop = summary["outcome"].get("t-stop")
    return [s for s in summary["syncs"] if s["dirty-sync-count"] >= 2 and s["status"] == "active"
            and (t_stop is None or s["t"] < t_stop)]


def real_sync_bracket(sync: dict) -> tuple[int, int]:
    """What the remaining figure was at the sync itself: the sample came up to one interval
    later, with the bytes sent since the previous sample already gone, so it lay between the
    sampled figure and that plus those bytes."""
    lo = sync["remaining"]
    sent = (sync["transferred"] - sync["transferred_prev"]
            if sync.get("transferred_prev") is not None else 0)
    return lo, lo + max(0, sent)


def sim_loop_syncs(res) -> list[tuple[float, int]]:
    """(t s, remaining bytes) at each pass the library counted, in order."""
    out = []
    last = None
    for rec in res.records:
        if last is not None and rec.pass_ != last:
            out.append((rec.t_ms / 1000, rec.remaining))
        last = rec.pass_
    return out


def _within(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * abs(b)


def compare(name: str, res=None) -> Comparison:
    summary = load_summary(name)
    res = simulate(name) if res is None else res
    out = summary["outcome"]
    real_done = out["status"] == "completed"
    real_syncs = real_loop_syncs(summary)
    sim_syncs = sim_loop_syncs(res)
    real = {"dirty_sync_count": out["passes"], "converged": real_done,
            "total_s": out["total-time"] / 1000 if real_done else None,
            "end_s": out["t-last-active"] if not real_done else out["total-time"] / 1000,
            "bytes": out["transferred"], "downtime_ms": out["downtime"] if real_done else None,
            "syncs": len(real_syncs), "passes": out["passes"],
            "expected_downtime_ms": out["expected-downtime-at-switchover"]}
    sim = {"converged": res.converged,
           "total_s": res.total_time_ms / 1000 if res.converged and res.total_time_ms else None,
           "end_s": res.end_ms / 1000, "bytes": res.transferred_bytes,
           "downtime_ms": res.simulated_downtime_ms, "syncs": len(sim_syncs),
           "passes": res.passes, "predicted_downtime_ms": res.predicted_downtime_ms,
           "first_stall_s": res.first_stall_ms / 1000 if res.first_stall_ms is not None else None,
           "advice_ms": (res.advice or {}).get("recommended_downtime_ms")}
    c = Comparison(name, real, sim)
    c.checks["verdict"] = (real_done == res.converged,
                           f"real {'converges' if real_done else 'never converges'}, simulator "
                           f"{'converges' if res.converged else 'never converges'}")
    if real_done and res.converged:
        c.checks["total time"] = (_within(sim["total_s"], real["total_s"], 0.10),
                                  f"{sim['total_s']:.1f} s vs {real['total_s']:.1f} s")
        tol = max(0.5 * real["downtime_ms"], 50)
        c.checks["downtime"] = (abs(sim["downtime_ms"] - real["downtime_ms"]) <= tol,
                                f"{sim['downtime_ms']} ms vs {real['downtime_ms']} ms")
    c.checks["bytes"] = (_within(sim["bytes"], real["bytes"], 0.10),
                         f"{sim['bytes'] / MiB:.0f} MiB vs {real['bytes'] / MiB:.0f} MiB")
    # The plateau: the syncs after the first round's (index >= 1) while the real figure is
    # above twice the threshold, as far as both runs got; the sim's figure within 10 % of the
    # range the real one lay in at the sync (real_sync_bracket). Below twice the threshold a
    # converging run is in its last short rounds, where the sync moment itself (QEMU checks
    # every loop iteration, the simulator every 50 ms tick) moves the figure by a good part
    # of itself: those are shown, not checked.
    real_full = _active_loop_syncs(summary)
    floor = 2 * plateau_threshold(summary)
    n = min(len(real_full), len(sim_syncs))
    bad, tail = [], 0
    for k in range(1, n):
        lo, hi = real_sync_bracket(real_full[k])
        if lo < floor:
            tail += 1
            continue
        v = sim_syncs[k][1]
        if not (lo * 0.9 <= v <= hi * 1.1):
            bad.append((k, v, lo, hi))
    compared = max(0, n - 1) - tail
    text = f"{compared} syncs compared" + (f", {tail} in the last rounds not checked" if tail else "")
    if bad:
        text += "; off: " + ", ".join(f"#{k + 1} {v / MiB:.1f} vs {lo / MiB:.1f}..{hi / MiB:.1f} MiB"
                                      for k, v, lo, hi in bad[:4])
    if compared == 0 and not tail:
        text = "no sync after the first round"
    c.checks["plateau"] = (not bad, text)
    return c


def plateau_threshold(summary: dict) -> float:
    """QEMU's threshold with the run's initial parameters: max-bandwidth x downtime-limit."""
    inp = summary["inputs"]
    return inp["max-bandwidth"] * inp["downtime-limit"] / 1000


def plateau_median(syncs: list[tuple[float, int]]) -> float | None:
    vals = [r for _, r in syncs[1:]]
    return statistics.median(vals) if vals else None


# -- the document ------------------------------------------------------------------------------
def _mib(b) -> str:
    return "-" if b is None else f"{b / MiB:,.0f} MiB"


def _cell(d: dict, syncs) -> str:
    count = (f"dirty-sync-count {d['dirty_sync_count']}" if "dirty_sync_count" in d
             else f"{d['syncs']} exact passes")
    if d["converged"]:
        parts = [f"{d['total_s']:.1f} s", _mib(d["bytes"]), count, f"{d['downtime_ms']} ms down"]
    else:
        parts = [f"never converges in {d['end_s']:.0f} s", _mib(d["bytes"]), count]
        med = plateau_median(syncs)
        if med is not None:
            parts.append(f"~{med / MiB:.0f} MiB left after each sync")
    return ", ".join(parts)


def render(comparisons: list[Comparison], sims: dict) -> str:
    lines = [
        "# The simulator, validated against real QEMU migrations",
        "",
        "<!-- Generated by python/tests/test_real_qemu.py from tests/fixtures/real-qemu/; "
        "regenerate with SWO_UPDATE_DOCS=1 scripts/test.sh (or pytest python/tests/"
        "test_real_qemu.py); the test fails when this file is stale. -->",
        "",
        "Each row is a real QEMU migration recorded on this machine by "
        "`scripts/record-real-runs.sh` ([real-guest.md](real-guest.md)): a 1 GiB TCG guest "
        "with 512 MiB filled, a program writing one byte per 4 KiB page, `max-bandwidth` "
        "32 MiB/s over loopback, Debian's QEMU. Next to it, the simulator on the scenario that "
        "mirrors the run (`tests/fixtures/real-qemu/<run>.toml`, its inputs measured from the "
        "recording: RAM size, zero pages of the first round, the dirty rate the guest achieved, "
        "the precopy and stopped-guest throughput).",
        "",
        "Checks (issue 18): same verdict; total time and bytes within 10 %; remaining after "
        "each sync within 10 % on the plateau; downtime within 50 % or 50 ms. The plateau: "
        "every sync after the first round's while the real figure is above twice the "
        "threshold (`max-bandwidth` x `downtime-limit`, 9.6 MiB here); a real figure is the "
        "first sample after the sync, so it is compared as the range between that sample and "
        "that plus the bytes sent since the sample before. The last short rounds of a "
        "converging run are shown, not checked: there the moment of the sync (QEMU: every loop "
        "iteration; the simulator: every 50 ms tick) moves the figure by a good part of itself. "
        "QEMU's `dirty-sync-count` counts the setup's sync and the completion's; the "
        "simulator's column counts the exact passes the library made.",
        "",
        "| run | real QEMU | simulator | checks |",
        "|---|---|---|---|",
    ]
    for c in comparisons:
        summ = load_summary(c.name)
        g = summ["inputs"]["guest"]
        what = (f"{c.name}: {g['dirty_mib_s']} MiB/s {g['pattern']} over {g['region_mib']} MiB"
                if g["dirty_mib_s"] else f"{c.name}")
        if summ["inputs"]["actions"]:
            what += "; " + "; ".join(
                f"{', '.join(f'{k} {v}' for k, v in (a.get('parameters') or {}).items())} "
                f"at {a['at_s']:g} s" for a in summ["inputs"]["actions"])
        checks = "; ".join(f"{'✅' if ok else '❌'} {k} ({text})" for k, (ok, text) in c.checks.items())
        lines.append(f"| {what} | {_cell(c.real, real_loop_syncs(summ))} | "
                     f"{_cell(c.sim, sim_loop_syncs(sims[c.name]))} | {checks} |")
    lines += ["", "Real QEMU version and accelerator: " + ", ".join(sorted({
        f"{load_summary(c.name)['inputs']['qemu_version']} ({load_summary(c.name)['inputs']['accel']})"
        for c in comparisons})) + ".", ""]
    stall = [c for c in comparisons if not c.real["converged"]]
    if stall:
        c = stall[0]
        lines += [
            f"## Remaining over time: `{c.name}`",
            "",
            f"![simulated vs real remaining]({PLOT.name})",
            "",
            "The real figure is `ram.remaining` of `query-migrate`, sampled every 100 ms; the "
            "simulated one is the pending total the library computes each 50 ms tick. Both show "
            "teeth: a round sends what the last sync found, the next sync finds the whole "
            "region dirty again (the guest sweeps its 256 MiB faster than a round lasts).",
            "",
            "One difference shows in the first round: QEMU walks RAM by address and the guest's "
            "never-written pages sit together at the top, so its figure falls at the wire rate "
            "(~30 MiB/s of normal pages) and then drops ~450 MiB in a second when it reaches "
            "the zero pages (9 bytes each on the wire, 4 KiB each in `remaining`). The "
            "simulator sends zero and normal pages of the first round in proportion, so its "
            "figure falls in a straight line; both reach the first sync at the same time "
            "(the wire bytes are the same), and from then on only dirtied, non-zero pages move.",
            "",
        ]
        if c.sim["first_stall_s"] is not None:
            lines += [f"The library, simulated, reports the stall at {c.sim['first_stall_s']:.1f} s "
                      f"and advises a `downtime-limit` of {c.sim['advice_ms']} ms.", ""]
    lines += [
        "## The RAM model",
        "",
        "`python/switchover/sim/model.py` `GuestRam` follows QEMU's rounds "
        "(`migration_bitmap_sync`, `ram_find_and_save_block` in migration/ram.c): the bitmap "
        "only shrinks between syncs, so a round sends exactly the pages dirty at its sync; the "
        "fast query reports what is left of the round; the exact query (the library decides "
        "when, as QEMU does: when the fast figure reaches the threshold) syncs and adds the "
        "distinct pages written since the last sync that are not still in the bitmap. How "
        "writes fall (`ram.pattern`):",
        "",
        "- `sequential`: `min(writes, W)` distinct pages for `writes` page writes over a working "
        "set of `W` pages;",
        "- `uniform`: `W (1 - e^(-writes/W))`;",
        "- `hotspot` (share `h` of the writes on `H` hot pages, the rest on all `W`): "
        "`H (1 - e^(-(h/H + (1-h)/W) writes)) + (W - H)(1 - e^(-(1-h)/W writes))`.",
        "",
        "Every normal page costs `page_size + page_header_bytes` (8, QEMU's `save_page_header`) "
        "on the wire, a zero page `zero_page_wire_bytes` (9); the `max-bandwidth` limit applies "
        "until the switchover, when the stopped guest's copy runs at `link.switchover`.",
        "",
    ]
    return "\n".join(lines)


def plot(name: str, res, path: Path = PLOT) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summ = load_summary(name)
    rt = [p[0] for p in summ["remaining_1s"]]
    rr = [p[1] / MiB for p in summ["remaining_1s"]]
    st = [t / 1000 for t, _, _ in res.timeline]
    sr = [r / MiB for _, r, _ in res.timeline]
    sth = [th / MiB for _, _, th in res.timeline]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    ax.plot(st, sr, color="tab:blue", lw=1.2, label="simulator: pending (library)")
    ax.plot(rt, rr, "o-", color="tab:red", ms=2.5, lw=0.8,
            label="real QEMU: ram.remaining (1 sample/s)")
    ax.plot(st, sth, color="tab:green", lw=0.8, ls="--", label="simulator: threshold")
    for s in summ["syncs"]:
        if s["dirty-sync-count"] >= 2 and s["status"] == "active":
            ax.axvline(s["t"], color="tab:red", lw=0.4, alpha=0.4)
    if res.first_stall_ms is not None:
        ax.axvline(res.first_stall_ms / 1000, color="black", lw=1, ls=":",
                   label=f"simulated stall report ({res.first_stall_ms / 1000:.1f} s)")
    g = summ["inputs"]["guest"]
    ax.set_title(f"{name}: {g['dirty_mib_s']} MiB/s {g['pattern']} over {g['region_mib']} MiB, "
                 f"max-bandwidth 32 MiB/s, downtime-limit {summ['inputs']['downtime-limit']} ms")
    ax.set_xlabel("seconds since migrate")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(rt[-1] if rt else 0, st[-1] if st else 0) + 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
