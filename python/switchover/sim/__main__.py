"""``python -m switchover.sim SCENARIO.toml``: will this VM converge, when, with what downtime?"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import scenario as scn
from .output import Progress, dumps, print_text, to_json_obj
from .run import Simulation, engine_available


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m switchover.sim",
        description="Simulate a live migration against the switchover library's own "
                    "decisions, in simulated time.")
    p.add_argument("scenario", nargs="?",
                   help="scenario file (TOML), e.g. scenarios/vgpu.toml")
    p.add_argument("--replay", metavar="RUN.json",
                   help="instead of a scenario: feed a recorded real migration (QEMU's "
                        "query-migrate samples) through the library and print what it would "
                        "have said, pass by pass")
    p.add_argument("--seed", type=int, help="RNG seed for link jitter (default: the scenario's)")
    p.add_argument("--max-time", type=float, metavar="S",
                   help="give up after S simulated seconds (default: the scenario's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. params.downtime-limit=2000")
    p.add_argument("--hmp", action="store_true", help="print 'info migrate' at each pass")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--timeline", action="store_true",
                   help="with --json: include the per-tick timeline")
    p.add_argument("--plot", metavar="FILE.png", help="write a plot (a heatmap with --sweep)")
    p.add_argument("--every", type=float, default=1.0, metavar="S",
                   help="print at most one pass line per S simulated seconds, plus every "
                        "line where something happens (0: every pass; default 1)")
    p.add_argument("--quiet", action="store_true", help="summary only")
    p.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2,...",
                   help="run a grid over one or two scenario values")
    return p


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise scn.ScenarioError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = scn.parse_cli_value(value.strip())
    return out


class PlotError(Exception):
    """``--plot`` cannot be written; the message names the path."""


def _prepare_plot(path: str) -> None:
    """Before any run: matplotlib is there and the plot's directory exists (created if
    missing), so a long run does not end in a traceback."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(f"--plot {path}: matplotlib is not installed") from None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PlotError(f"--plot {path}: cannot create {e.filename or Path(path).parent}: "
                        f"{e.strerror or e}") from None


def _write_plot(draw, path: str, *args) -> None:
    try:
        draw(*args, path)
    except (OSError, ValueError) as e:  # e.g. an unknown extension, a full disk
        raise PlotError(f"--plot {path}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.replay:
        from . import replay
        try:
            return replay.main(args.replay, as_json=args.json)
        except replay.ReplayError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not args.scenario:
        print("error: a scenario file or --replay RUN.json is needed", file=sys.stderr)
        return 2
    try:
        if args.plot:
            _prepare_plot(args.plot)
        return _main(args)
    except (scn.ScenarioError, PlotError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    overrides = _overrides(args.set)
    if args.sweep:
        return _sweep(args, overrides)
    sc = scn.load(args.scenario, overrides)
    if not engine_available():
        print("error: the switchover library bindings lack the engine (Session.iteration_step, "
              "Ram, Vfio)", file=sys.stderr)
        return 3
    progress = Progress(sc.name)
    res = Simulation(sc, hmp=args.hmp, every_s=args.every, seed=args.seed,
                     max_time_s=args.max_time, progress=progress).run()
    progress.done()
    if args.json:
        print(dumps(to_json_obj(res, timeline=args.timeline)))
    else:
        print_text(res, passes=not args.quiet)
    if args.plot:
        from .plot import plot_run
        _write_plot(plot_run, args.plot, res)
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


def _sweep(args: argparse.Namespace, overrides: dict) -> int:
    from . import sweep
    axes = [sweep.parse_axis(a) for a in args.sweep]
    raw = scn.load_raw(args.scenario)
    if not engine_available():
        print("error: the switchover library bindings lack the engine", file=sys.stderr)
        return 3
    progress = Progress("sweep")
    grid = sweep.run_sweep(raw, args.scenario, axes, seed=args.seed, max_time_s=args.max_time,
                           overrides=overrides, progress=progress)
    progress.done()
    if args.json:
        print(dumps(sweep.to_json_obj(axes, grid)))
    else:
        for line in sweep.table_lines(axes, grid):
            print(line)
    if args.plot:
        from .plot import plot_sweep
        key1, v1 = axes[0]
        key2, v2 = axes[1] if len(axes) == 2 else ("", [""])
        _write_plot(plot_sweep, args.plot, key1, v1, key2, v2, grid)
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


def _main_quiet_on_closed_pipe() -> int:
    """`python -m switchover.sim ... | head` must not end in a traceback."""
    try:
        return main()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(_main_quiet_on_closed_pipe())
