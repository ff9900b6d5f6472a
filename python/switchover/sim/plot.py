"""Plots (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from typing import Sequence

from .run import INT64_MAX, Result

GiB = 2**30


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_run(res: Result, path: str, title: str | None = None) -> None:
    """Remaining and threshold over time (top), expected downtime against the limit
    (bottom); dirty-sync passes as dots, operator actions, stalls and the switchover as
    vertical lines."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 7),
                                      gridspec_kw={"height_ratios": [3, 2]})
    t = [x[0] / 1000 for x in res.timeline]
    top.plot(t, [x[1] / GiB for x in res.timeline], label="remaining", color="tab:blue")
    top.plot(t, [x[2] / GiB for x in res.timeline], label="threshold", color="tab:orange")
    passes = [(ts / 1000, exp) for ts, exp, _ in res.downtime_series]
    if passes:
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
    if res.simulated_downtime_ms is not None and res.switchover_at_ms is not None:
        bottom.scatter([res.switchover_at_ms / 1000], [res.simulated_downtime_ms], marker="*",
                       s=120, color="black", zorder=4, label="simulated downtime")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("simulated time (s)")
    bottom.grid(True, alpha=0.3)
    finite = [e for e in exp if e is not None]
    limits = [x[2] for x in res.downtime_series]
    if finite and limits and max(finite) > 20 * max(limits):
        bottom.set_yscale("log")

    marks = {"operator": ("tab:green", "action"), "stall": ("tab:brown", "stall"),
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
    top.legend(loc="upper right", fontsize=8)
    bottom.legend(loc="upper right", fontsize=8)
    outcome = res.outcome
    if res.converged:
        outcome += f", downtime {res.simulated_downtime_ms} ms"
    fig.suptitle(title or f"{res.scenario}: {outcome}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sweep(key1: str, values1: Sequence, key2: str, values2: Sequence,
               grid: list[list[Result]], path: str) -> None:
    """A convergence map: rows key1, columns key2 (one axis, ``key2`` empty: key1 along
    the x axis); colour = total time (converged cells), grey = no switchover; each cell
    says the time and the simulated downtime."""
    plt = _pyplot()
    fig = sweep_figure(key1, values1, key2, values2, grid)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep_figure(key1: str, values1: Sequence, key2: str, values2: Sequence,
                 grid: list[list[Result]]):
    """The figure :func:`plot_sweep` saves (the caller closes it)."""
    plt = _pyplot()
    import matplotlib.colors as mcolors
    if key2:
        cells, xkey, xvalues, ykey, yvalues = grid, key2, values2, key1, values1
    else:  # one axis: a single row of cells, its values along x
        cells, xkey, xvalues, ykey, yvalues = [[row[0] for row in grid]], key1, values1, "", []
    # Wide enough for the two-line title whatever the number of columns.
    fig, ax = plt.subplots(figsize=(max(6.5, 1.6 * len(xvalues) + 3),
                                    0.9 * max(1, len(yvalues)) + 2.5))
    data = [[(r.end_ms / 1000 if r.converged else float("nan")) for r in row]
            for row in cells]
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    finite = [v for row in data for v in row if v == v]
    norm = mcolors.Normalize(vmin=min(finite), vmax=max(finite)) if finite else None
    im = ax.imshow(data, cmap=cmap, norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xvalues)), [str(v) for v in xvalues])
    ax.set_xlabel(xkey)
    if ykey:
        ax.set_yticks(range(len(yvalues)), [str(v) for v in yvalues])
        ax.set_ylabel(ykey)
    else:
        ax.set_yticks([])
    for i, row in enumerate(cells):
        for j, r in enumerate(row):
            if r.converged:
                txt = f"{r.end_ms / 1000:.0f} s\n{r.simulated_downtime_ms} ms"
                if not r.limit_respected:
                    txt += " !"
            else:
                txt = r.outcome
            light = r.converged and norm is not None and norm(r.end_ms / 1000) > 0.6
            ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                    color="white" if r.converged and not light else "black")
    if finite:
        fig.colorbar(im, ax=ax, label="time to complete (s)")
    ax.set_title("convergence map\n(grey: no switchover; cell: time, downtime)")
    fig.tight_layout()
    return fig
