"""``switchover-watch`` (also ``python -m switchover.watch``): stall detection, downtime advice
and an ETA for a running, unmodified QEMU migration, read over QMP with ``qemu.qmp``.

It polls ``query-migrate`` and ``query-migrate-parameters`` every ``--interval`` and feeds one
library session from them (:mod:`switchover.qmpfeed`); every figure it shows beyond QEMU's own
(threshold, expected downtime, stall, advice, ETA) is the library's. See docs/watch.md.

Exit codes:

==  =====================================================================================
0   the migration completed
1   the migration failed, or was cancelled by someone else
2   usage: bad arguments or a malformed ``--qmp`` address
3   stalled and gave up: ``--cancel-on-stall`` cancelled the migration
4   connection: the monitor could not be reached, or the connection was lost
5   QMP error: QEMU refused a command (the error's text is printed)
130 interrupted (Ctrl-C)
==  =====================================================================================
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any, Dict, List, Optional, Tuple, Union

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GAVE_UP = 3
EXIT_CONNECTION = 4
EXIT_QMP_ERROR = 5
EXIT_INTERRUPTED = 130

OUTCOMES = {EXIT_COMPLETED: "completed", EXIT_FAILED: "failed", EXIT_GAVE_UP: "gave-up",
            EXIT_CONNECTION: "connection-lost", EXIT_QMP_ERROR: "qmp-error",
            EXIT_INTERRUPTED: "interrupted"}


class WatchError(Exception):
    """Ends the watch with one line and an exit code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def parse_address(text: str) -> Union[str, Tuple[str, int]]:
    """``unix:PATH`` -> PATH; ``tcp:HOST:PORT`` -> (HOST, PORT). Raises ValueError."""
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if not path:
            raise ValueError(f"no socket path in {text!r} (unix:PATH)")
        return path
    if text.startswith("tcp:"):
        host, sep, port = text[len("tcp:"):].rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad address {text!r}: tcp:HOST:PORT with a port in 1..65535")
        return host, int(port)
    raise ValueError(f"bad address {text!r}: unix:PATH or tcp:HOST:PORT")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="switchover-watch",
        description="Watch a running QEMU migration over QMP: stall detection, downtime "
                    "advice and an ETA from the switchover library.",
        epilog="exit codes: 0 completed, 1 failed or cancelled, 2 usage, 3 stalled and gave "
               "up (--cancel-on-stall), 4 connection failed or lost, 5 QMP error, "
               "130 interrupted")
    p.add_argument("--qmp", required=True, metavar="unix:PATH|tcp:HOST:PORT",
                   help="QEMU's QMP monitor socket")
    p.add_argument("--interval", type=float, default=0.1, metavar="S",
                   help="seconds between query-migrate polls (default 0.1)")
    p.add_argument("--window", type=int, default=2000, metavar="MS",
                   help="the library's bandwidth window: closed at the first sample MS after "
                        "the last (default 2000; QEMU's rate-limit bursts make shorter windows "
                        "noisy from outside, see docs/watch.md)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per sample on stdout, then a summary object")
    p.add_argument("--apply-advice", action="store_true",
                   help="on a stall, set the advised downtime-limit in QEMU "
                        "(migrate-set-parameters), never above --max-downtime")
    p.add_argument("--max-downtime", type=int, default=10000, metavar="MS",
                   help="ceiling for --apply-advice, in ms (default 10000)")
    p.add_argument("--cancel-on-stall", type=float, metavar="S",
                   help="cancel the migration (migrate_cancel) once it has been stalled "
                        "for S seconds")
    p.add_argument("--stall-passes", type=int, metavar="N",
                   help="library parameter stall-passes (default 5)")
    p.add_argument("--stall-margin", type=int, metavar="PCT",
                   help="library parameter stall-margin (default 4)")
    p.add_argument("--round-aware", action="store_true",
                   help="measure the guest's write rate with QEMU's calc-dirty-rate and give "
                        "it to the library (guest-dirty-rate): a round-aware, smaller advice, "
                        "right for guests that stream their writes, too low for guests that "
                        "rewrite a hot set (docs/watch.md)")
    p.add_argument("--record", metavar="FILE",
                   help="write exactly what was fed to the library (each sample with its "
                        "time and parameters) and what it said, for "
                        "`python -m switchover.sim --replay FILE`")
    p.add_argument("--connect-timeout", type=float, default=5.0, metavar="S",
                   help="give up connecting after S seconds (default 5)")
    p.add_argument("--wait", type=float, default=None, metavar="S",
                   help="give up after S seconds if no migration starts (default: wait)")
    return p


class Watcher:
    """One watch: a QMP client, a feed, the output."""

    def __init__(self, args: argparse.Namespace, out=None):
        from ..qmpfeed import QmpFeed  # loads the library: after the arguments are checked
        self.args = args
        self.out = out or sys.stdout
        self.tty = (not args.json) and self.out.isatty()
        params: Dict[str, Any] = {}
        if args.stall_passes is not None:
            params["stall-passes"] = args.stall_passes
        if args.stall_margin is not None:
            params["stall-margin"] = args.stall_margin
        if args.apply_advice:
            # The library raises its downtime-limit on a stall up to this ceiling
            # (MIGRATION_DOWNTIME_ADJUSTED); the watcher passes that on to QEMU.
            params["auto-downtime-max"] = args.max_downtime
        self.feed = QmpFeed(params, window_ms=args.window)
        self.recorder = None
        if args.record:
            from ..qmpfeed import Recorder
            self.recorder = Recorder(params, args.window, qmp=args.qmp,
                                     interval_s=args.interval)
        self.actions: List[Dict[str, Any]] = []
        self.drawn = 0
        self.last = None
        self.last_live = None
        self.qemu_last: Dict[str, Any] = {}
        self.qemu_expected: Optional[int] = None
        self.stall_reported_ms: Optional[int] = None
        self.stalled_since_ms: Optional[int] = None
        self.stall_ms = 0
        self.last_t = 0
        self.advice = 0
        self.note = ""
        self.dr_measuring = False
        self.dr_unavailable = False
        self.dr_rates: List[int] = []

    # -- output ---------------------------------------------------------------------------

    def write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def show(self, r, qemu, params, actions) -> None:
        from . import view
        if self.args.json:
            self.write(json.dumps(view.sample_object(r, qemu, params, actions)))
            return
        if self.tty:
            lines = view.live_lines(self.args.qmp, r, qemu, params, self.note)
            buf = (f"\x1b[{self.drawn}F\x1b[J" if self.drawn else "") + "\n".join(lines) + "\n"
            self.out.write(buf)
            self.out.flush()
            self.drawn = len(lines)
            return
        # A pipe or a file: one line per pass, event and action.
        if r.new_passes or r.events or actions:
            x = r.x
            text = (f"{(qemu.get('total-time') or 0) / 1000:8.1f} s  {r.status:<8} "
                    f"pass {r.qemu_pass:<4} remaining {view.size(r.pending):>10}  "
                    f"threshold {view.size(x.get('threshold')):>10}  expected "
                    f"{view.duration(r.library.get('expected-downtime'))}  ETA "
                    f"{view.duration(x.get('eta'))}")
            if x.get("stalled"):
                text += f"  STALLED (advice {x.get('recommended-downtime')} ms)"
            for e in r.events:
                text += f"  [{e['event']}]"
            for a in actions:
                text += f"  -> {a['command']} {json.dumps(a.get('arguments', {}))}"
            self.write(text)

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> int:
        from qemu.qmp import QMPClient
        from qemu.qmp import ConnectError
        address = parse_address(self.args.qmp)
        client = QMPClient("switchover-watch")
        try:
            await asyncio.wait_for(client.connect(address), self.args.connect_timeout)
        except asyncio.TimeoutError:
            raise WatchError(EXIT_CONNECTION, f"cannot connect to {self.args.qmp}: timed out "
                                              f"after {self.args.connect_timeout:g} s")
        except ConnectError as e:
            raise WatchError(EXIT_CONNECTION, f"cannot connect to {self.args.qmp}: "
                                              f"{_why(e)}")
        except OSError as e:
            raise WatchError(EXIT_CONNECTION, f"cannot connect to {self.args.qmp}: "
                                              f"{e.strerror or e}")
        try:
            return await self._poll(client)
        finally:
            try:
                await client.disconnect()
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass

    async def _execute(self, client, cmd: str, arguments: Optional[dict] = None) -> Any:
        from qemu.qmp import ExecuteError
        try:
            return await client.execute(cmd, arguments)
        except ExecuteError as e:
            raise WatchError(EXIT_QMP_ERROR, f"QEMU refused {cmd}: {e}")
        except (ConnectionError, EOFError, OSError) as e:
            raise WatchError(EXIT_CONNECTION, f"connection to {self.args.qmp} lost: {e}")
        except Exception as e:  # noqa: BLE001 - qemu.qmp's StateError, ExecInterruptedError
            raise WatchError(EXIT_CONNECTION, f"connection to {self.args.qmp} lost: "
                                              f"{type(e).__name__}: {e}")

    async def _poll(self, client) -> int:
        t0 = time.monotonic()
        waited_for_start = True
        while True:
            tick = time.monotonic()
            info = await self._execute(client, "query-migrate")
            params = await self._execute(client, "query-migrate-parameters")
            now_ms = int((time.monotonic() - t0) * 1000)
            status = info.get("status", "none") if isinstance(info, dict) else "none"
            if status == "none" or (status in ("completed", "failed", "cancelled")
                                    and not self.feed.started):
                if self.args.wait is not None and now_ms > self.args.wait * 1000:
                    raise WatchError(EXIT_FAILED, f"no migration started within "
                                                  f"{self.args.wait:g} s")
                if waited_for_start and not self.args.json:
                    self.write(f"waiting for a migration on {self.args.qmp} "
                               f"(status {status})")
                    waited_for_start = False
                await asyncio.sleep(self.args.interval)
                continue
            self.feed.parameters(params)
            r = self.feed.sample(now_ms, info)
            if self.recorder is not None:
                self.recorder.record(now_ms, params, info, r, self.feed.guest_dirty_rate)
            await self._dirty_rate(client, r)
            self.qemu_last = info
            actions = await self._act(client, r, params, now_ms)
            self._track(r, now_ms)
            self.last = r
            # The last prediction: at the last live sample that still had something to send
            # (QEMU may already be in its final copy, with nothing left, at the very last).
            if r.status not in ("completed", "failed", "cancelled", "setup") and r.pending:
                self.last_live = r
                self.qemu_expected = info.get("expected-downtime", self.qemu_expected)
            self.show(r, info, params, actions)
            if status in ("completed", "failed", "cancelled"):
                gave_up = any(a["command"] == "migrate_cancel" for a in self.actions)
                if status == "completed":
                    return EXIT_COMPLETED
                return EXIT_GAVE_UP if gave_up else EXIT_FAILED
            delay = self.args.interval - (time.monotonic() - tick)
            await asyncio.sleep(max(0.0, delay))

    async def _dirty_rate(self, client, r) -> None:
        """The guest's write rate, measured by QEMU's ``calc-dirty-rate`` (page sampling: the
        sampled pages whose content changed within ``calc-time``; a read-only measurement
        that changes nothing in the migration) and given to the library as
        ``guest-dirty-rate``, which makes its advice round-aware. One measurement of 1 s at
        each pass that made no progress (a stall may follow); the figure set is the median of
        the last three (page sampling is noisy: 38 to 43 MiB/s on a guest writing 40)."""
        if not self.args.round_aware or self.dr_unavailable or r.status != "active":
            return
        from qemu.qmp import ExecuteError
        try:
            if self.dr_measuring:
                res = await client.execute("query-dirty-rate")
                if isinstance(res, dict) and res.get("status") == "measured":
                    self.dr_measuring = False
                    rate = int(res.get("dirty-rate", 0)) << 20   # MiB/s (dirtyrate.c)
                    self.dr_rates = (self.dr_rates + [rate])[-3:]
                    self.feed.set_guest_dirty_rate(sorted(self.dr_rates)[len(self.dr_rates) // 2])
                return
            if r.new_passes and r.x.get("passes-since-progress", 0) >= 1:
                try:
                    await client.execute("calc-dirty-rate",
                                         {"calc-time": 1, "sample-pages": 16384})
                except ExecuteError:
                    await client.execute("calc-dirty-rate", {"calc-time": 1})
                self.dr_measuring = True
        except ExecuteError as e:
            # An older QEMU without the command, or one measuring for someone else: the
            # advice stays the plain one.
            self.dr_unavailable = True
            self.note = f"calc-dirty-rate unavailable ({e}): plain advice"
        except (ConnectionError, EOFError, OSError) as e:
            raise WatchError(EXIT_CONNECTION, f"connection to {self.args.qmp} lost: {e}")

    async def _act(self, client, r, params, now_ms) -> List[Dict[str, Any]]:
        done = []
        for e in r.events:
            if e["event"] == "MIGRATION_STALL":
                self.advice = e["data"].get("recommended-downtime", 0) or self.advice
            if e["event"] == "MIGRATION_DOWNTIME_ADJUSTED" and self.args.apply_advice:
                limit = int(e["data"]["downtime-limit"])
                if limit <= self.args.max_downtime:
                    args = {"downtime-limit": limit}
                    await self._execute(client, "migrate-set-parameters", args)
                    done.append({"t-ms": now_ms, "command": "migrate-set-parameters",
                                 "arguments": args})
        for e in r.events:
            # The advice is the one given at the stall report, or the limit applied for it
            # (later samples may advise again from figures the applied limit changed).
            if e["event"] == "MIGRATION_DOWNTIME_ADJUSTED":
                self.advice = int(e["data"]["downtime-limit"])
        if (self.args.cancel_on_stall is not None and self.stalled_since_ms is not None
                and r.status == "active"
                and now_ms - self.stalled_since_ms >= self.args.cancel_on_stall * 1000
                and not any(a["command"] == "migrate_cancel" for a in self.actions)):
            await self._execute(client, "migrate_cancel")
            done.append({"t-ms": now_ms, "command": "migrate_cancel"})
        self.actions.extend(done)
        return done

    def _track(self, r, now_ms: int) -> None:
        stalled = bool(r.x.get("stalled")) and r.status not in ("completed", "failed",
                                                                "cancelled")
        if any(e["event"] == "MIGRATION_STALL" for e in r.events) and \
                self.stall_reported_ms is None:
            self.stall_reported_ms = now_ms
        if stalled and self.stalled_since_ms is None:
            self.stalled_since_ms = now_ms
        if self.stalled_since_ms is not None:
            self.stall_ms += now_ms - self.last_t
        if not stalled:
            self.stalled_since_ms = None
        self.last_t = now_ms

    def summary(self, code: int, error: str = "") -> Dict[str, Any]:
        q = self.qemu_last
        live = self.last_live
        sw = self.last.switchover if self.last is not None else {}
        predicted = sw.get("predicted-downtime")
        if predicted is None and live is not None:
            predicted = live.library.get("expected-downtime")
        return {
            "type": "summary",
            "outcome": OUTCOMES.get(code, "unknown"),
            "exit-code": code,
            "status": q.get("status"),
            "total-time": q.get("total-time"),
            "downtime": q.get("downtime"),
            "predicted-downtime": predicted,
            "measured-downtime": sw.get("measured-downtime"),
            "switchover-bytes": sw.get("switchover-bytes"),
            "measured-switchover-bandwidth": sw.get("measured-switchover-bandwidth"),
            "qemu-expected-downtime": self.qemu_expected,
            "passes": self.feed.passes,
            "stall-reported-ms": self.stall_reported_ms,
            "stall-time-ms": self.stall_ms,
            "advice": self.advice,
            "actions": self.actions,
            "error": error or None,
        }


def _why(e: BaseException) -> str:
    cause = e.__cause__ or getattr(e, "exc", None)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause or e)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        parse_address(args.qmp)
    except ValueError as e:
        print(f"switchover-watch: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.interval <= 0 or args.max_downtime < 0 or args.max_downtime > 2_000_000 or \
            (args.cancel_on_stall is not None and args.cancel_on_stall < 0) or args.window < 100:
        print("switchover-watch: --interval must be > 0, --max-downtime within 0..2000000 ms, "
              "--cancel-on-stall >= 0, --window >= 100 ms", file=sys.stderr)
        return EXIT_USAGE
    # qemu.qmp logs connection trouble itself; the watcher prints one line instead.
    logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
    try:
        watcher = Watcher(args)
    except Exception as e:  # noqa: BLE001 - the library could not be loaded, bad parameters
        print(f"switchover-watch: {e}", file=sys.stderr)
        return EXIT_USAGE
    error = ""
    try:
        code = asyncio.run(watcher.run())
    except WatchError as e:
        code, error = e.code, str(e)
        print(f"switchover-watch: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        code, error = EXIT_INTERRUPTED, "interrupted"
    summary = watcher.summary(code, error)
    if watcher.recorder is not None:
        rec = watcher.recorder.as_dict()
        rec["live"]["summary"] = summary
        try:
            with open(args.record, "w") as f:
                json.dump(rec, f)
        except OSError as e:
            print(f"switchover-watch: cannot write --record {args.record}: "
                  f"{e.strerror or e}", file=sys.stderr)
    if watcher.feed.started or args.json:
        if args.json:
            watcher.write(json.dumps(summary))
        else:
            from .view import summary_lines
            for line in summary_lines(summary):
                watcher.write(line)
    watcher.feed.close()
    return code
