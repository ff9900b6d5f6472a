"""``python -m switchover.sim SCENARIO.toml``: will this VM converge, when, with what downtime?"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from pathlib import Path

from . import scenario as scn
from .output import Progress, dumps, print_text, to_json_obj
from .run import Simulation, engine_available


EXIT_OK, EXIT_USAGE, EXIT_NO_SWITCHOVER, EXIT_NO_LIBRARY = 0, 2, 3, 4
#: The exit statuses, as --help and docs/scenarios.md list them.
EXIT_CODES = (
    (EXIT_OK, "the run switched over and completed (a sweep: every cell ran, whatever its "
              "outcome)"),
    (1, "an unexpected error (a bug: please report the traceback)"),
    (EXIT_USAGE, "a bad command line or scenario (the message names the option or key and "
                 "its value); nothing ran"),
    (EXIT_NO_SWITCHOVER, "the run did not switch over: it did not converge within the "
                         "time limit, or was cancelled"),
    (EXIT_NO_LIBRARY, "libswitchover could not be loaded (the message says how to build it)"),
)

DOCS = "docs/scenarios.md"


def _parser() -> argparse.ArgumentParser:
    prog = os.path.basename(sys.argv[0]) if sys.argv and os.path.basename(
        sys.argv[0]).startswith("switchover-") else "python -m switchover.sim"
    p = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulate a live migration against the switchover library's own "
                    "decisions, in simulated time: will it converge, when, with what "
                    "downtime?",
        epilog=f"Scenario files: every key, unit, default and range is in {DOCS} (in the "
               f"source tree;\nscenarios/ has examples).\n\nexit status:\n" + "\n".join(
                   f"  {code}  {meaning}" for code, meaning in EXIT_CODES))
    p.add_argument("scenario", nargs="?",
                   help=f"scenario file (TOML), e.g. scenarios/vgpu.toml; keys: {DOCS}")
    p.add_argument("--replay", metavar="RUN.json",
                   help="instead of a scenario: feed a recorded real migration (QEMU's "
                        "query-migrate samples) through the library and print what it would "
                        "have said, pass by pass")
    p.add_argument("--seed", type=int, help="RNG seed for link jitter (default: the scenario's)")
    p.add_argument("--max-time", type=float, metavar="S",
                   help="give up after S simulated seconds, S > 0 (default: the scenario's "
                        "sim.max_time_s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. params.downtime-limit=2000")
    p.add_argument("--hmp", action="store_true",
                   help="print 'info migrate' at each printed pass (with --json: an \"hmp\" "
                        "member in each record)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--timeline", action="store_true",
                   help="with --json only: include the per-tick timeline")
    p.add_argument("--plot", metavar="FILE.png",
                   help="write a plot (a map with --sweep); the suffix picks the format: .png, "
                        ".svg, .pdf; a missing directory is created only under the current "
                        "one")
    p.add_argument("--every", type=float, default=1.0, metavar="S",
                   help="print at most one pass line per S simulated seconds, plus every "
                        "line where something happens (0: every pass; default 1)")
    p.add_argument("--quiet", action="store_true", help="summary only")
    p.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2,...",
                   help="run a grid over one or two scenario values (two different keys)")
    return p


class UsageError(Exception):
    """A command-line value is wrong; the message names the option and its value."""


def _check_args(args: argparse.Namespace) -> None:
    """Option values and combinations, before anything runs."""
    if args.max_time is not None and not (args.max_time > 0 and math.isfinite(args.max_time)):
        raise UsageError(f"--max-time {args.max_time:g}: must be a positive number of "
                         f"simulated seconds")
    if not (args.every >= 0 and math.isfinite(args.every)):
        raise UsageError(f"--every {args.every:g}: must be 0 (every pass) or a positive number "
                         f"of simulated seconds")
    if args.timeline and not args.json:
        raise UsageError("--timeline adds the per-tick timeline to the JSON document: use it "
                         "with --json")
    if args.sweep:
        for opt in ("hmp", "timeline"):
            if getattr(args, opt):
                raise UsageError(f"--{opt} describes a single run: not with --sweep")


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
    """Before any run: matplotlib is there, the format is one it writes, and the plot's
    directory exists. A missing directory is made only below the current directory (e.g.
    ``out/``), never elsewhere: a typo in an absolute path is an error, not a new tree."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"--plot {path}: matplotlib is not installed "
                        f"(pip install 'switchover[plot]')") from None
    suffix = Path(path).suffix.lower().lstrip(".")
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if suffix not in formats:
        known = ", ".join(f".{f}" for f in ("png", "svg", "pdf"))
        raise PlotError(f"--plot {path}: " + (f"unknown format .{suffix}" if suffix else
                                              "no suffix") + f" (use {known})")
    parent = Path(path).parent
    if parent.is_dir():
        return
    here = Path.cwd().resolve()
    target = (here / parent).resolve()
    if parent.exists() or not target.is_relative_to(here):
        what = "is not a directory" if parent.exists() else "does not exist"
        raise PlotError(f"--plot {path}: {parent} {what} (only a directory under the current "
                        f"one is created)")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PlotError(f"--plot {path}: cannot create {e.filename or parent}: "
                        f"{e.strerror or e}") from None


def _write_plot(draw, path: str, *args, **kwargs) -> None:
    try:
        draw(*args, path, **kwargs)
    except (OSError, ValueError) as e:  # e.g. a full disk
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
        _check_args(args)
        if args.plot:
            _prepare_plot(args.plot)
        return _main(args)
    except (scn.ScenarioError, PlotError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _no_engine() -> int:
    print("error: the switchover library bindings lack the engine (Session.iteration_step, "
          "Ram, Vfio): rebuild the library (scripts/demo.sh)", file=sys.stderr)
    return EXIT_NO_LIBRARY


def _main(args: argparse.Namespace) -> int:
    overrides = _overrides(args.set)
    if args.sweep:
        return _sweep(args, overrides)
    sc = scn.load(args.scenario, overrides)
    if not engine_available():
        return _no_engine()
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
    if res.converged:
        return EXIT_OK
    if not args.json:
        print(f"exit status {EXIT_NO_SWITCHOVER}: no switchover", file=sys.stderr)
    return EXIT_NO_SWITCHOVER


def _sweep(args: argparse.Namespace, overrides: dict) -> int:
    from . import sweep
    axes = [sweep.parse_axis(a) for a in args.sweep]
    raw = scn.load_raw(args.scenario)
    for key, value in overrides.items():
        scn.set_path(raw, key, value)
    probe = copy.deepcopy(raw)
    for key, values in axes:
        scn.set_path(probe, key, values[0])
    scn.check_minimum(probe, args.scenario)
    if not engine_available():
        return _no_engine()
    progress = Progress("sweep")
    grid = sweep.run_sweep(raw, args.scenario, axes, seed=args.seed, max_time_s=args.max_time,
                           progress=progress)
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
        _write_plot(plot_sweep, args.plot, key1, v1, key2, v2, grid,
                    scenario=scenario_name(raw, args.scenario))
        if not args.json:
            print(f"plot written to {args.plot}")
    return EXIT_OK


def scenario_name(raw: dict, path: str) -> str:
    name = raw.get("name")
    return name if isinstance(name, str) and name else Path(path).stem


def _main_quiet_on_closed_pipe() -> int:
    """`python -m switchover.sim ... | head` must not end in a traceback."""
    try:
        return main()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def console_main() -> None:
    """The ``switchover-sim`` command (python/pyproject.toml's [project.scripts])."""
    sys.exit(_main_quiet_on_closed_pipe())


if __name__ == "__main__":
    console_main()
