"""A grid over two scenario values: the convergence map."""
from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

from . import scenario as scn
from .output import fmt_ms, fmt_time
from .run import Result, Simulation


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """``"params.downtime-limit=300,1000,2000"`` -> (key, [300, 1000, 2000])."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise scn.ScenarioError(f"--sweep {text!r}: expected KEY=V1,V2,...")
    parts = [v.strip() for v in values.split(",")]
    if "" in parts:
        raise scn.ScenarioError(f"--sweep {text!r}: an empty value (value {parts.index('') + 1} "
                                f"of {len(parts)}); write KEY=V1,V2,... without empty items")
    parsed = [scn.parse_cli_value(v) for v in parts]
    if len(set(map(repr, parsed))) != len(parsed):
        raise scn.ScenarioError(f"--sweep {text!r}: a value appears twice")
    return key, parsed


def run_sweep(raw: dict, origin: str, axes: Sequence[tuple[str, list[Any]]], *,
              so: Any = None, seed: int | None = None, max_time_s: float | None = None,
              overrides: dict[str, Any] | None = None,
              progress: Callable[[float], None] | None = None) -> list[list[Result]]:
    """Runs every combination; one axis gives a single row. Scenario errors surface before
    any run starts (every cell is validated first)."""
    if not 1 <= len(axes) <= 2:
        raise scn.ScenarioError("--sweep takes one or two KEY=V1,V2,... axes")
    if len(axes) == 2 and axes[0][0] == axes[1][0]:
        raise scn.ScenarioError(f"--sweep: {axes[0][0]} is on both axes; the two axes need "
                                f"two different keys (or one axis with every value)")
    key1, values1 = axes[0]
    key2, values2 = axes[1] if len(axes) == 2 else ("", [None])
    cells = []
    for v1 in values1:
        row = []
        for v2 in values2:
            r = copy.deepcopy(raw)
            for k, v in (overrides or {}).items():
                scn.set_path(r, k, v)
            scn.set_path(r, key1, v1)
            if key2:
                scn.set_path(r, key2, v2)
            row.append(scn.from_dict(r, origin))
        cells.append(row)
    total = len(values1) * len(values2)
    grid: list[list[Result]] = []
    done = 0
    for row in cells:
        out = []
        for sc in row:
            out.append(Simulation(sc, so=so, seed=seed, max_time_s=max_time_s).run())
            done += 1
            if progress:
                progress(done / total)
        grid.append(out)
    return grid


def cell_text(r: Result) -> str:
    if not r.converged:
        return r.outcome
    mark = "" if r.limit_respected else " (over limit)"
    return f"yes {fmt_time(r.end_ms)} / {fmt_ms(r.simulated_downtime_ms)}{mark}"


def table_lines(axes: Sequence[tuple[str, list[Any]]], grid: list[list[Result]]) -> list[str]:
    key1, values1 = axes[0]
    key2, values2 = axes[1] if len(axes) == 2 else ("", [""])
    head = [f"{key1} \\ {key2}" if key2 else key1] + [str(v) for v in values2]
    rows = [[str(v1)] + [cell_text(r) for r in grid[i]] for i, v1 in enumerate(values1)]
    widths = [max(len(x[c]) for x in [head] + rows) for c in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(x.ljust(w) for x, w in zip(row, widths)))
    lines.append("cells: converged, time to complete / simulated downtime")
    return lines


def to_json_obj(axes: Sequence[tuple[str, list[Any]]], grid: list[list[Result]]) -> dict:
    key1, values1 = axes[0]
    key2, values2 = axes[1] if len(axes) == 2 else (None, [None])
    cells = []
    for i, v1 in enumerate(values1):
        for j, v2 in enumerate(values2):
            r = grid[i][j]
            cell = {key1: v1}
            if key2:
                cell[key2] = v2
            cell.update(outcome=r.outcome, converged=r.converged, end_ms=r.end_ms,
                        simulated_downtime_ms=r.simulated_downtime_ms,
                        predicted_downtime_ms=r.predicted_downtime_ms,
                        limit_respected=r.limit_respected, stalls=r.stalls)
            cells.append(cell)
    return {"axes": [{"key": k, "values": v} for k, v in axes], "cells": cells}
