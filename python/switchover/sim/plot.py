"""Plots (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from typing import Sequence

from .output import fmt_size, fmt_time
from .run import INT64_MAX, Result

GiB = 2**30


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_run(res: Result, path: str, title: str | None = None) -> None:
    """Writes :func:`run_figure` to ``path`` (the suffix picks the format)."""
    plt = _pyplot()
    fig = run_figure(res, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _first(res: Result, pred) -> object | None:
    return next((e for e in res.events if pred(e)), None)


def run_figure(res: Result, title: str | None = None):
    """Remaining and threshold over time (top), expected downtime against the limit
    (bottom); dirty-sync passes as dots, operator actions, stalls and the switchover as
    vertical lines. The story is annotated with its figures: the stall and its advice, the
    operator's change, the simulated downtime (the star) against the limit. Legends sit to
    the right of the axes, over no data. The caller closes the figure."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 7.5),
                                      gridspec_kw={"height_ratios": [3, 2]})
    t = [x[0] / 1000 for x in res.timeline]
    top.plot(t, [x[1] / GiB for x in res.timeline], label="remaining", color="tab:blue")
    top.plot(t, [x[2] / GiB for x in res.timeline], label="threshold\n(what fits in the limit)",
             color="tab:orange")
    if res.downtime_series:
        rem_at = dict((x[0], x[1]) for x in res.timeline)
        pts = [(ts / 1000, rem_at.get(ts, 0) / GiB) for ts, _, _ in res.downtime_series
               if ts in rem_at]
        if len(pts) <= 400:
            top.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, color="tab:blue",
                        zorder=3, label="dirty-sync pass")
    top.set_ylabel("GiB")
    values = [x[1] for x in res.timeline if x[1] > 0] + [x[2] for x in res.timeline if x[2] > 0]
    if values and max(values) / max(1, min(values)) > 100:
        top.set_yscale("log")
    top.grid(True, alpha=0.3)

    bt = [x[0] / 1000 for x in res.downtime_series]
    exp = [None if x[1] >= INT64_MAX else x[1] for x in res.downtime_series]
    bottom.plot(bt, exp, label="expected downtime", color="tab:purple", marker=".",
                markersize=3, linestyle="-")
    bottom.step(bt, [x[2] for x in res.downtime_series], where="post",
                label="downtime-limit", color="tab:red")
    star = res.simulated_downtime_ms is not None and res.switchover_at_ms is not None
    if star:
        bottom.scatter([res.switchover_at_ms / 1000], [res.simulated_downtime_ms], marker="*",
                       s=260, color="gold", edgecolors="black", linewidths=1.0, zorder=6,
                       label="simulated downtime")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("simulated time (s)")
    bottom.grid(True, alpha=0.3)
    finite = [e for e in exp if e is not None]
    limits = [x[2] for x in res.downtime_series]
    if finite and limits and max(finite) > 20 * max(limits):
        bottom.set_yscale("log")
    else:
        # Room above the highest line for the annotations.
        top_ms = max(finite + limits + ([res.simulated_downtime_ms] if star else []) or [1])
        bottom.set_ylim(0, top_ms * 1.9)

    marks = {"operator": ("tab:green", "operator action"), "stall": ("tab:brown", "stall"),
             "switch": ("black", "switchover")}
    used = set()
    for ev in res.events:
        if ev.kind == "operator":
            key = "operator"
        elif ev.name == "MIGRATION_STALL":
            key = "stall"
        else:
            continue
        color, label = marks[key]
        for ax in (top, bottom):
            ax.axvline(ev.t_ms / 1000, color=color, linestyle="--", alpha=0.7,
                       label=label if (ax is top and key not in used) else None)
        used.add(key)
    if res.switchover_at_ms is not None:
        for ax in (top, bottom):
            ax.axvline(res.switchover_at_ms / 1000, color="black", linestyle=":",
                       label="switchover" if ax is top else None)

    _annotate(res, top, bottom)
    for ax in (top, bottom):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  borderaxespad=0.0)
    outcome = res.outcome
    if res.converged:
        outcome += f" at {res.end_ms / 1000:.1f} s, downtime {res.simulated_downtime_ms} ms"
        if res.downtime_limit_ms:
            sign = "≤" if res.limit_respected else ">"
            outcome += f" {sign} limit {res.downtime_limit_ms} ms"
    fig.suptitle(title or f"{res.scenario}: {outcome}")
    fig.tight_layout()
    return fig


def _annotate(res: Result, top, bottom) -> None:
    """Text with the figures at the points of the story, placed in the empty upper band of
    the bottom panel and to the left of the crowded end of the run, arrows to the points."""
    box = dict(boxstyle="round,pad=0.3", fc="white", ec="0.6", alpha=0.95)
    arrow = dict(arrowstyle="->", color="0.3", lw=1.0)
    end_s = max(res.end_ms / 1000, 1e-9)
    slots = iter([0.96, 0.83, 0.70])   # heights (axes fraction) of successive notes

    def note(ax, x_s, y, text, color):
        # Left of the point when it is in the right half, else right of it.
        fx = min(max(x_s / end_s - 0.03, 0.02), 0.98)
        right_half = fx > 0.5
        ax.annotate(text, xy=(x_s, y), xycoords="data",
                    xytext=(fx - 0.04 if right_half else fx + 0.04, next(slots, 0.3)),
                    textcoords="axes fraction", ha="right" if right_half else "left",
                    va="top", fontsize=9, color=color, bbox=box, arrowprops=arrow, zorder=7)

    stall = _first(res, lambda e: e.name == "MIGRATION_STALL")
    if stall is not None:
        rec = stall.data.get("recommended-downtime") or 0
        exp = stall.data.get("expected-downtime")
        text = f"stall at {stall.t_ms / 1000:.1f} s: " + (
            f"advice {rec} ms" if rec else "no limit advised")
        y = exp if isinstance(exp, int) and exp < INT64_MAX else res.downtime_limit_ms
        note(bottom, stall.t_ms / 1000, y, text, "tab:brown")
    for ev in res.events:
        if ev.kind == "operator" and "downtime-limit" in ev.data.get("set", {}):
            new = ev.data["set"]["downtime-limit"]
            # The new limit as a red bar: the step itself hides under the switchover line.
            bottom.scatter([ev.t_ms / 1000], [new], marker="_", s=400, color="tab:red",
                           linewidths=2.5, zorder=5)
            note(bottom, ev.t_ms / 1000, new,
                 f"operator at {ev.t_ms / 1000:.1f} s: limit → {new} ms", "tab:green")
    for adj in res.adjustments:
        note(bottom, adj["t_ms"] / 1000, adj["to_ms"],
             f"auto-downtime-max: limit {adj['from_ms']} → {adj['to_ms']} ms", "tab:red")
    if res.simulated_downtime_ms is not None and res.switchover_at_ms is not None:
        sign = "≤" if res.limit_respected else ">"
        note(bottom, res.switchover_at_ms / 1000, res.simulated_downtime_ms,
             f"downtime {res.simulated_downtime_ms} ms {sign} {res.downtime_limit_ms} ms",
             "black")
        at = min(res.timeline, key=lambda x: abs(x[0] - res.switchover_at_ms), default=None)
        if at is not None and at[1] > 0:
            top.annotate(f"switchover at {res.switchover_at_ms / 1000:.1f} s:\n"
                         f"remaining {fmt_size(at[1])} ≤ threshold {fmt_size(at[2])}",
                         xy=(at[0] / 1000, at[1] / GiB), xycoords="data",
                         xytext=(0.95, 0.75), textcoords="axes fraction", ha="right",
                         va="top", fontsize=9, bbox=box, arrowprops=arrow, zorder=7)


def plot_sweep(key1: str, values1: Sequence, key2: str, values2: Sequence,
               grid: list[list[Result]], path: str, scenario: str = "") -> None:
    """A convergence map: rows key1, columns key2 (one axis, ``key2`` empty: key1 along
    the x axis); colour = total time (converged cells), grey = no switchover; each cell
    says the time and the simulated downtime."""
    plt = _pyplot()
    fig = sweep_figure(key1, values1, key2, values2, grid, scenario)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# Units of the library's parameters (QEMU's: ms, bytes/s, %); scenario keys take theirs
# from the loader's table.
_PARAM_UNITS = {"downtime-limit": "ms", "auto-downtime-max": "ms", "max-bandwidth": "bytes/s",
                "avail-switchover-bandwidth": "bytes/s", "max-postcopy-bandwidth": "bytes/s",
                "rollback-tolerance": "%", "stall-margin": "%", "downtime-headroom": "%",
                "stall-passes": "passes"}
_LABELS = {"ram.dirty_rate_mib_s": "guest dirty rate", "ram.size": "guest RAM",
           "ram.working_set": "working set", "link.bandwidth": "link bandwidth",
           "link.sender_max": "sender rate (guest running)",
           "link.switchover": "sender rate (guest stopped)", "link.jitter": "link jitter",
           "ram.zero_share": "zero-page share"}


def axis_label(key: str) -> str:
    """A swept key as an axis label: what it is and its unit, e.g. ``downtime-limit (ms)``
    for ``params.downtime-limit``, ``guest dirty rate (MiB/s)`` for
    ``ram.dirty_rate_mib_s``."""
    from .scenario import KEYS
    parts = key.split(".")
    if parts[0] in ("params", "actions") or len(parts) >= 2 and parts[-2] == "set":
        name = parts[-1]
        unit = _PARAM_UNITS.get(name, "")
        return f"{name} ({unit})" if unit else name
    # devices.0.stop_copy -> table "devices[]", name "stop_copy"
    table = ".".join(p if not p.isdigit() else "" for p in parts[:-1]).replace("..", ".")
    table = table.rstrip(".")
    if len(parts) >= 3 and parts[1].isdigit():
        table = parts[0] + "[]"
    row = next((k for k in KEYS if k.table == table and k.name == parts[-1]), None)
    base = _LABELS.get(key)
    if base is None:
        base = parts[-1].replace("_mib_s", "").replace("_s", "").replace("_", " ")
        if len(parts) >= 3 and parts[1].isdigit():
            base = f"device {parts[1]} {base}"
    unit = row.unit if row is not None else ""
    if unit == "share":
        unit = ""
    return f"{base} ({unit})" if unit else base


def sweep_figure(key1: str, values1: Sequence, key2: str, values2: Sequence,
                 grid: list[list[Result]], scenario: str = ""):
    """The figure :func:`plot_sweep` saves (the caller closes it)."""
    plt = _pyplot()
    import matplotlib.colors as mcolors
    if key2:
        cells, xkey, xvalues, ykey, yvalues = grid, key2, values2, key1, values1
    else:  # one axis: a single row of cells, its values along x
        cells, xkey, xvalues, ykey, yvalues = [[row[0] for row in grid]], key1, values1, "", []
    # Wide enough for the two-line title whatever the number of columns.
    fig, ax = plt.subplots(figsize=(max(7.5, 1.7 * len(xvalues) + 3.5),
                                    0.9 * max(1, len(yvalues)) + 2.7))
    data = [[(r.end_ms / 1000 if r.converged else float("nan")) for r in row]
            for row in cells]
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    finite = [v for row in data for v in row if v == v]
    norm = mcolors.Normalize(vmin=min(finite), vmax=max(finite)) if finite else None
    im = ax.imshow(data, cmap=cmap, norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xvalues)), [str(v) for v in xvalues])
    ax.set_xlabel(axis_label(xkey))
    if ykey:
        ax.set_yticks(range(len(yvalues)), [str(v) for v in yvalues])
        ax.set_ylabel(axis_label(ykey))
    else:
        ax.set_yticks([])
    for i, row in enumerate(cells):
        for j, r in enumerate(row):
            if r.converged:
                # The text table's precision: time to 0.1 s, downtime in whole ms.
                txt = f"{fmt_time(r.end_ms)}\n{r.simulated_downtime_ms} ms"
                if not r.limit_respected:
                    txt += " !"
            else:
                txt = r.outcome.replace(" ", "\n", 1)
            light = r.converged and norm is not None and norm(r.end_ms / 1000) > 0.6
            ax.text(j, i, txt, ha="center", va="center", fontsize=9,
                    color="white" if r.converged and not light else "black")
    if finite:
        fig.colorbar(im, ax=ax, label="time to complete (s)")
    what = f"{scenario}: convergence map" if scenario else "convergence map"
    ax.set_title(f"{what}\n(grey: no switchover; cell: time to complete, simulated downtime)",
                 fontsize=10)
    fig.tight_layout()
    return fig
