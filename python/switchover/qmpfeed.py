"""Feeds one library session from QEMU's ``query-migrate`` samples: the mapping the watcher
(``switchover-watch``) uses live and the simulator's ``--replay`` uses on a recorded run.

No I/O here: the caller polls QEMU (or reads a recording) and hands each sample over with the
time it was taken, from one monotonic millisecond clock. The library decides everything (the
bandwidth window, the threshold, expected downtime, passes, the stall, the advice, the ETA);
this module only translates QEMU's figures into the library's calls:

- **bytes sent**: the deltas of ``ram.transferred`` between samples, per channel where QEMU
  splits them: ``ram.multifd-bytes`` (included in ``ram.transferred`` since QEMU 2.12's
  ``multifd_send_pages``; ``migration_transferred_bytes`` in 8.x and later) goes to
  ``SWO_CHANNEL_MULTIFD``, the rest to ``SWO_CHANNEL_MAIN``. A counter that goes backwards
  means a new migration: the session starts over.
- **the window**: ``update_counters(now)`` at every sample, with the library's parameter
  ``bandwidth-window`` at ``window_ms`` (default 2000): the window closes at the first sample
  ``window_ms`` after it opened, so it closes at sample times and spans about ``window_ms``.
  QEMU's own 100 ms window is aligned with its rate limiter (``migration_rate_limit`` lets
  one 100 ms quota out per window); seen from outside, a 100 ms
  window catches zero, one or two of those bursts. On a recorded QEMU 7.2 migration at
  ``max-bandwidth`` 32 MiB/s (33.5 MB/s), 100 ms windows measured 0 to 66 MB/s, 1 s windows
  25 to 36 MB/s, 2 s windows 29.8 to 34.0 MB/s: the threshold, the expected downtime and the
  advice follow that figure, so the watcher takes 2 s.
- **pending**: QEMU's top-level ``remaining`` where it reports one (11.1: the system-wide
  total of its last query, devices included), else ``ram.remaining`` (QEMU 7.2 to 11.0 report
  no device figure), reported by one handler as pre-copy data. A fast query at every sample
  makes it the session's system-wide remaining. At a pass the figure is the one QEMU found at
  its sync, rebuilt from the sample: when one sync happened since the last sample, QEMU synced
  as soon as the remaining fell below the threshold (``ram_save_pending``:
  ``remaining_size < max_size``), so the old round sent ``max(0, previous − threshold)`` and
  the rest of the bytes sent went into the new round: the sync found
  ``pending + sent − max(0, previous − threshold)``. Without this the figure
  would be low by up to one poll interval of sending (3.2 MiB at 32 MiB/s and 100 ms), and so
  would the expected downtime and the advice. With several syncs between two samples the
  pending figure is taken as it is.
- **passes**: each increase of ``ram.dirty-sync-count`` (QEMU's ``migration_bitmap_sync``)
  is one library pass: ``iteration_step`` runs once per increase, and the handler then answers
  the fast query with no pre-copy bytes so that the step runs its exact query (QEMU-BEHAVIOUR
  §One loop pass, step 2) — QEMU has synced, so the library counts the pass, tracks the stall
  and advises on the figure QEMU found. The step's action is QEMU's business, not ours, and is
  ignored. The sync QEMU makes in its setup phase (``ram_init_bitmaps``, count 1) and the
  count seen when the watcher attached are the baseline, not passes.
- **parameters**: ``downtime-limit``, ``avail-switchover-bandwidth`` and ``max-bandwidth`` of
  ``query-migrate-parameters``, set on the session whenever they change.
- **status**: ``setup`` starts the library's migration, the first live status ends its setup;
  ``failed`` and ``cancelled`` end the feed (the library's figures stay as they were at the
  last live sample).
- **the switchover** (issue 15 item 4): QEMU stops the guest in ``migration_completion``
  (``downtime_start`` is taken just before ``vm_stop_force_state``) and reports ``device`` (or
  ``pre-switchover`` with ``pause-before-switchover``) until the final copy is done — QEMU
  up to 8.0 stays ``active`` without ``pause-before-switchover`` (``migration_maybe_pause``
  returns at once) and holds the big lock through the copy, so the first reply after it
  shows ``active`` with new syncs and nothing remaining, which the feed takes as the
  switchover too; at
  ``completed`` it reports ``downtime`` (``migration_downtime_end``: end − ``downtime_start``)
  and the final ``total-time``. From outside the stop itself cannot be seen, only bracketed
  by two samples; so samples in ``device`` / ``pre-switchover`` feed no bytes and no window
  (the library's session stays ``active``: ``guest_stopped`` says so), and at ``completed``
  the feed replays the switchover into the library at the instants QEMU's own figures give:
  QEMU's clock is mapped onto the feed's by ``offset = min(now_ms − total-time)`` over the
  live samples (a reply is read after QEMU wrote it, so the smallest difference is the
  closest), the end at ``offset + total-time``, the stop at the end − ``downtime``. The bytes
  sent since the last ``active`` sample are split at the stop: at most ``max-bandwidth`` ×
  (stop − that sample) went out before it (QEMU's rate limit holds until the stop), the rest
  after. Then ``set_vm_running(False)``, ``switchover_begin(stop)``, the bytes after the stop
  (downtime bytes), ``complete(end)``: the library's predicted downtime (its expected
  downtime at the last sync the feed saw: QEMU's final sync, the one that decided the
  switchover, is made and used inside ``migration_completion``'s caller and never shown), the
  measured downtime (QEMU's, to the ms) and the measured switchover bandwidth (RAM bytes
  after the stop ÷ the downtime; QEMU 7.2's ``ram.transferred`` counts RAM pages only, so
  device state is not in it).
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ._native import SWO_CHANNEL_MAIN, SWO_CHANNEL_MULTIFD
from .session import Session

#: The QEMU parameters the library follows.
FOLLOWED_PARAMETERS = ("downtime-limit", "avail-switchover-bandwidth", "max-bandwidth")
#: QEMU statuses in which the migration is live (the library's session is ``active``).
LIVE = ("active", "pre-switchover", "device", "postcopy-active", "postcopy-paused",
        "postcopy-recover", "postcopy-recover-setup", "cancelling", "colo", "wait-unplug")
#: QEMU statuses in which the guest is stopped for the switchover (``migration_completion``
#: stops it, then ``migration_maybe_pause`` moves to ``pre-switchover`` or ``device``).
STOPPED = ("pre-switchover", "device")
#: QEMU statuses that end a migration.
FINISHED = ("completed", "failed", "cancelled")
#: ``ETA_NEVER``: the library's ETA when the remaining does not fall.
ETA_NEVER = (1 << 64) - 1


def pending_of(info: Mapping[str, Any]) -> Optional[int]:
    """The pending figure of one ``query-migrate`` reply: top-level ``remaining`` (QEMU 11.1)
    else ``ram.remaining``; ``None`` when the reply has neither."""
    if isinstance(info.get("remaining"), int):
        return int(info["remaining"])
    ram = info.get("ram")
    if isinstance(ram, Mapping) and isinstance(ram.get("remaining"), int):
        return int(ram["remaining"])
    return None


@dataclass
class FeedResult:
    """What one sample did: the library's view after it."""
    now_ms: int
    #: QEMU's status.
    status: str
    #: QEMU's ``dirty-sync-count`` (0 before QEMU reports RAM figures).
    qemu_pass: int = 0
    #: Library passes this sample added (increases of ``dirty-sync-count``).
    new_passes: int = 0
    #: Passes fed so far (since the feed's migration started).
    passes: int = 0
    #: The pending figure fed (``None`` when the reply had none).
    pending: Optional[int] = None
    #: The library's ``query-migrate`` at this sample (``{}`` before the migration starts).
    library: Dict[str, Any] = field(default_factory=dict)
    #: Events the library raised during this sample (``MIGRATION_STALL``,
    #: ``MIGRATION_DOWNTIME_ADJUSTED``, ...), as dicts ``{"event": ..., "data": ...}``.
    events: List[Dict[str, Any]] = field(default_factory=list)
    #: The library's ``guest-dirty-rate`` (bytes/s, 0 = not known) during this sample.
    guest_dirty_rate: int = 0
    #: QEMU has stopped the guest for the switchover (``pre-switchover``, ``device``, or
    #: ``completed`` after a switchover the feed saw).
    guest_stopped: bool = False
    #: At completion, the library's view of the switchover: ``predicted-downtime`` (ms, its
    #: expected downtime when the guest stopped), ``measured-downtime`` (ms), ``switchover-bytes``
    #: and ``measured-switchover-bandwidth`` (bytes/s, ``None`` for a 0 ms downtime); ``{}``
    #: before.
    switchover: Dict[str, Any] = field(default_factory=dict)

    @property
    def x(self) -> Dict[str, Any]:
        """The library's ``x-switchover`` member (empty before the migration runs)."""
        return self.library.get("x-switchover", {})

    @property
    def eta_ms(self) -> Optional[int]:
        """The library's ETA in ms; ``None`` for never (or before the migration runs)."""
        eta = self.x.get("eta")
        return None if eta is None or eta == ETA_NEVER else int(eta)


class QmpFeed:
    """One library session fed from ``query-migrate`` samples (see the module text).

    ``params`` are library parameters set once at the start (``stall-passes``,
    ``stall-margin``, ``downtime-headroom``, ``auto-downtime-max``, ...)."""

    def __init__(self, params: Optional[Mapping[str, Any]] = None,
                 window_ms: int = 2000) -> None:
        if window_ms < 100:
            raise ValueError(f"window_ms {window_ms} is below QEMU's 100 ms window")
        self.window_ms = window_ms
        self.session = Session(keep_events=None)
        self.session.set_parameters({"bandwidth-window": window_ms})
        # The feed reads the library's events (MIGRATION_STALL, MIGRATION_PASS...), which,
        # like QEMU's migration events, come only with the `events` capability.
        self.session.set_capability("events", True)
        self._pending: int = 0
        self._force_sync = False
        self.session.register_handler("qemu", self._query)
        self._extra = dict(params or {})
        if self._extra:
            self.session.set_parameters(self._extra)
        self._qemu_params: Dict[str, int] = {}
        self.guest_dirty_rate = int(self._extra.get("guest-dirty-rate", 0) or 0)
        self._reset()

    def _reset(self) -> None:
        self.started = False
        self.live = False
        self._transferred: Optional[int] = None
        self._multifd: Optional[int] = None
        self._sync_count: Optional[int] = None
        self._last_pending: Optional[int] = None
        self.passes = 0
        # QEMU's clock onto ours: min(now_ms - total-time) over the live samples.
        self._offset: Optional[int] = None
        self._last_active_ms: Optional[int] = None
        self._stopped_ms: Optional[int] = None
        self.switchover: Dict[str, Any] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "QmpFeed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # The one handler: QEMU's pending figure, all pre-copy, except for the fast query of a
    # step that follows a QEMU sync, which says "no pre-copy left" so the step syncs too.
    def _query(self, exact: bool, final: bool):
        if self._force_sync and not exact:
            return (0, self._pending, 0)
        return (self._pending, 0, 0)

    def set_guest_dirty_rate(self, rate: int) -> None:
        """The guest's write rate in bytes/s measured outside the syncs (QEMU's
        ``calc-dirty-rate``): the library's ``guest-dirty-rate``, which makes its stall advice
        round-aware (docs/design.md §Beyond QEMU). 0 = not known."""
        rate = max(0, int(rate))
        if rate != self.guest_dirty_rate:
            self.session.set_parameters({"guest-dirty-rate": rate})
            self.guest_dirty_rate = rate

    def parameters(self, qemu_params: Mapping[str, Any]) -> Dict[str, int]:
        """Follows ``query-migrate-parameters``: sets the followed parameters that changed;
        returns those it set."""
        changed = {k: int(qemu_params[k]) for k in FOLLOWED_PARAMETERS
                   if isinstance(qemu_params.get(k), int)
                   and self._qemu_params.get(k) != qemu_params[k]}
        if changed:
            self.session.set_parameters(changed)
            self._qemu_params.update(changed)
        return changed

    def sample(self, now_ms: int, info: Mapping[str, Any]) -> FeedResult:
        """Feeds one ``query-migrate`` reply taken at ``now_ms``."""
        status = str(info.get("status", "none"))
        result = FeedResult(now_ms=now_ms, status=status,
                            guest_dirty_rate=self.guest_dirty_rate)
        ram = info.get("ram") if isinstance(info.get("ram"), Mapping) else None
        if status in ("none",) or (status in FINISHED and not self.started):
            return result
        if status == "setup":
            if not self.started:
                self._start(now_ms)
            result.library = self.session.query_migrate(now_ms)
            return result
        if status in FINISHED:
            if status == "completed" and self.live and not self.switchover:
                self._observe_clock(now_ms, info)
                self._switchover(now_ms, info)
            result.library = self.session.query_migrate(now_ms)
            result.switchover = dict(self.switchover)
            result.guest_stopped = bool(self.switchover)
            if ram is not None:
                result.qemu_pass = int(ram.get("dirty-sync-count", 0))
            return result
        # A live status.
        if ram is not None:
            transferred = int(ram.get("transferred", 0))
            multifd = int(ram.get("multifd-bytes", 0))
            if self._transferred is not None and (transferred < self._transferred
                                                  or multifd < (self._multifd or 0)):
                self._start(now_ms)  # counters went back: a new migration
        if not self.started:
            self._start(now_ms)
        if not self.live:
            self.session.setup_done(now_ms)
            self.live = True
        self._observe_clock(now_ms, info)
        # QEMU up to 8.0 reports `device` only with pause-before-switchover
        # (`migration_maybe_pause` returns at once without it): the final copy runs under
        # `active`, with the big lock held, and the reply after it shows `active`, the final
        # syncs (the loop's and `ram_save_complete`'s) and nothing remaining. A loop sync
        # that leaves nothing to send would have switched over too: both are the switchover.
        final_copy = (status == "active" and ram is not None and self._sync_count is not None
                      and int(ram.get("dirty-sync-count", 0)) > self._sync_count
                      and pending_of(info) == 0)
        if status in STOPPED or final_copy:
            # The guest is stopped: the bytes now are the final copy's, at no rate limit; they
            # go to the library with the switchover at completion (see the module text).
            if self._stopped_ms is None:
                self._stopped_ms = now_ms
            result.guest_stopped = True
            result.pending = pending_of(info)
            if ram is not None:
                result.qemu_pass = int(ram.get("dirty-sync-count", 0))
            result.passes = self.passes
            result.library = self.session.query_migrate(now_ms)
            return result
        if status == "active":
            self._last_active_ms = now_ms
        pending = pending_of(info)
        previous = self._last_pending
        sent = 0
        if ram is not None:
            sent = self._record_bytes(int(ram.get("transferred", 0)),
                                      int(ram.get("multifd-bytes", 0)))
        self.session.update_counters(now_ms)
        count = int(ram.get("dirty-sync-count", 0)) if ram is not None else None
        synced = (count is not None and self._sync_count is not None
                  and count > self._sync_count)
        if pending is not None:
            self._last_pending = pending
            self._pending = pending
            if synced and count - self._sync_count == 1 and previous is not None:
                # One sync since the last sample. QEMU syncs as soon as the remaining falls
                # below the threshold (ram_save_pending: `remaining_size < max_size`), so the
                # old round sent `previous - threshold` (or nothing, when it was below already)
                # and the rest went into the round the sync started: the sync found
                # `pending + sent - max(0, previous - threshold)` (dirty_bytes_last_sync).
                threshold = self.session.info(now_ms).threshold_bytes
                old_round = max(0, previous - threshold)
                self._pending = pending + max(0, sent - old_round)
        result.pending = pending
        if not synced:
            self.session.query_pending(exact=False)
        if count is not None:
            result.qemu_pass = count
            if self._sync_count is None:
                self._sync_count = count
            elif synced:
                steps = count - self._sync_count
                self._sync_count = count
                if status == "active":
                    self._force_sync = True
                    try:
                        for _ in range(steps):
                            self.session.iteration_step(now_ms)
                    finally:
                        self._force_sync = False
                    self.passes += steps
                    result.new_passes = steps
                # After the pass the session's remaining is what QEMU reports now.
                if pending is not None:
                    self._pending = pending
                    self.session.query_pending(exact=False)
        result.passes = self.passes
        result.library = self.session.query_migrate(now_ms)
        result.events = [{"event": e.get("event"), "data": e.get("data", {})}
                         for e in self.session.events]
        self.session.clear_events()
        return result

    def _observe_clock(self, now_ms: int, info: Mapping[str, Any]) -> None:
        total = info.get("total-time")
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            d = now_ms - total
            self._offset = d if self._offset is None else min(self._offset, d)

    def _switchover(self, now_ms: int, info: Mapping[str, Any]) -> None:
        """The switchover QEMU made, replayed into the library at completion (module text)."""
        ram = info.get("ram") if isinstance(info.get("ram"), Mapping) else {}
        total, down = info.get("total-time"), info.get("downtime")
        end_ms = now_ms
        if isinstance(total, int) and self._offset is not None:
            end_ms = min(now_ms, self._offset + total)
        if isinstance(down, int) and 0 <= down <= end_ms:
            stop_ms = end_ms - down
        else:
            # No downtime figure: the first sample that showed the guest stopped (or this one).
            stop_ms = self._stopped_ms if self._stopped_ms is not None else end_ms
        # The library's clock never goes back: a stop before the migration's start is none.
        stop_ms = max(stop_ms, 0)
        sent = multifd = 0
        if self._transferred is not None:
            sent = max(0, int(ram.get("transferred", self._transferred)) - self._transferred)
            multifd = max(0, int(ram.get("multifd-bytes", self._multifd or 0))
                          - (self._multifd or 0))
        before = 0
        if self._last_active_ms is not None and stop_ms > self._last_active_ms:
            rate = self._qemu_params.get("max-bandwidth") or 0
            if not rate:
                rate = self.session.info(now_ms).mbps * 1e6 / 8
            before = min(sent, int(rate * (stop_ms - self._last_active_ms) / 1000))
        if before:
            self.session.record_transferred(before, SWO_CHANNEL_MAIN)
        self.session.set_vm_running(False)
        proceed, _final = self.session.switchover_begin(stop_ms)
        after = sent - before
        after_multifd = min(multifd, after)
        if after - after_multifd:
            self.session.record_transferred(after - after_multifd, SWO_CHANNEL_MAIN)
        if after_multifd:
            self.session.record_transferred(after_multifd, SWO_CHANNEL_MULTIFD)
        if proceed:
            self.session.complete(max(end_ms, stop_ms))
        i = self.session.info(max(end_ms, stop_ms))
        self.switchover = {
            "predicted-downtime": i.predicted_downtime_ms if i.predicted_downtime_ms >= 0
            else None,
            "measured-downtime": i.downtime_ms if proceed else None,
            "switchover-bytes": i.switchover_bytes if proceed else None,
            "measured-switchover-bandwidth": int(i.measured_switchover_bw)
            if proceed and i.measured_switchover_bw > 0 else None,
        }

    def _start(self, now_ms: int) -> None:
        if self.started and self.session.status_name not in ("completed", "failed", "cancelled"):
            self.session.cancel(now_ms)
        self._reset()
        self.session.set_vm_running(True)
        self.session.migration_start(now_ms)
        self.session.clear_events()
        self.started = True

    def _record_bytes(self, transferred: int, multifd: int) -> int:
        """Records the bytes sent since the last sample; returns them."""
        sent = 0
        if self._transferred is not None:
            sent = max(0, transferred - self._transferred)
            d_multifd = max(0, multifd - (self._multifd or 0))
            d_main = max(0, (transferred - self._transferred) - d_multifd)
            if d_main:
                self.session.record_transferred(d_main, SWO_CHANNEL_MAIN)
            if d_multifd:
                self.session.record_transferred(d_multifd, SWO_CHANNEL_MULTIFD)
        self._transferred, self._multifd = transferred, multifd
        return sent


#: The format of a run recorded by ``switchover-watch --record`` (also readable by
#: :func:`replay` and ``python -m switchover.sim --replay``).
WATCH_RECORD_FORMAT = "switchover-watch-record/1"
#: The members of a ``query-migrate`` reply the feed reads; a watcher's record keeps only
#: these (and ``ram``'s below), which keeps it small.
FED_MEMBERS = ("status", "total-time", "setup-time", "downtime", "expected-downtime",
               "remaining")
FED_RAM_MEMBERS = ("transferred", "remaining", "multifd-bytes", "dirty-sync-count", "mbps")


def fed_reply(info: Mapping[str, Any]) -> Dict[str, Any]:
    """The part of a ``query-migrate`` reply the feed reads (see :data:`FED_MEMBERS`)."""
    out = {k: info[k] for k in FED_MEMBERS if k in info}
    ram = info.get("ram")
    if isinstance(ram, Mapping):
        out["ram"] = {k: ram[k] for k in FED_RAM_MEMBERS if k in ram}
    return out


class Recorder:
    """Keeps exactly what a feed was given — each sample's time on the feed's clock, the
    followed parameters set just before it, the reply — and what the library said live, in
    the form :func:`replay` takes (``switchover-watch --record FILE``).

    ``record(now_ms, qemu_params, info, result)`` after each :meth:`QmpFeed.sample`;
    :meth:`as_dict` the record: ``samples`` of ``{"t": now_ms / 1000, "t-ms": now_ms,
    "parameters": {...}, "query-migrate": {...}}``, ``inputs.migrate_parameters`` (the first
    sample's), ``watch`` (the library parameters and window the feed was made with) and
    ``live`` (every pass the library counted with its figures, the stall, the advice and the
    adjustments, as the live feed reported them)."""

    def __init__(self, params: Optional[Mapping[str, Any]] = None, window_ms: int = 2000,
                 **about: Any) -> None:
        self.samples: List[Dict[str, Any]] = []
        self.watch = {"library-parameters": dict(params or {}), "window-ms": window_ms,
                      **about}
        self.live: Dict[str, Any] = {"passes": [], "stall": None, "advice": None,
                                     "adjusted": [], "switchover": None}

    def record(self, now_ms: int, qemu_params: Mapping[str, Any], info: Mapping[str, Any],
               result: "FeedResult", guest_dirty_rate: int = 0) -> None:
        followed = {k: qemu_params[k] for k in FOLLOWED_PARAMETERS
                    if isinstance(qemu_params.get(k), int)}
        sample = {"t": now_ms / 1000, "t-ms": now_ms, "parameters": followed,
                  "query-migrate": fed_reply(info)}
        if guest_dirty_rate:
            sample["guest-dirty-rate"] = guest_dirty_rate
        self.samples.append(sample)
        live = self.live
        if result.new_passes:
            live["passes"].append({"t-ms": now_ms, "pass": result.qemu_pass,
                                   "passes": result.passes,
                                   "last-sync-bytes": result.x.get("last-sync-bytes"),
                                   "threshold": result.x.get("threshold"),
                                   "expected-downtime": result.library.get("expected-downtime"),
                                   "passes-since-progress": result.x.get("passes-since-progress"),
                                   "stalled": bool(result.x.get("stalled"))})
        for e in result.events:
            if e["event"] == "MIGRATION_STALL" and live["stall"] is None:
                live["stall"] = {"t-ms": now_ms, "pass": result.qemu_pass,
                                 "advice": e["data"].get("recommended-downtime", 0)}
            elif e["event"] == "MIGRATION_DOWNTIME_ADJUSTED":
                live["adjusted"].append({"t-ms": now_ms,
                                         "downtime-limit": e["data"].get("downtime-limit")})
        if result.x.get("recommended-downtime"):
            live["advice"] = result.x["recommended-downtime"]
        if result.switchover:
            live["switchover"] = dict(result.switchover)

    def as_dict(self) -> Dict[str, Any]:
        first = self.samples[0]["parameters"] if self.samples else {}
        return {"format": WATCH_RECORD_FORMAT, "samples": self.samples,
                "inputs": {"migrate_parameters": dict(first)}, "watch": self.watch,
                "live": self.live}


def replay(record: Mapping[str, Any], params: Optional[Mapping[str, Any]] = None,
           window_ms: Optional[int] = None):
    """Feeds a recorded run (RUN.json of tests/e2e/qemu_pair.py, format
    ``switchover-real-run/1``: ``samples`` of ``{"t": seconds, "query-migrate": {...}}``, the
    source's ``inputs.migrate_parameters`` at the start and ``actions_applied`` with the
    parameters set during the run) through a new feed, as it happened; yields each sample's
    :class:`FeedResult`. ``params`` are library parameters (``stall-passes``, ...).

    A watcher's record (``switchover-watch --record``, :class:`Recorder`) holds the samples
    the live feed was given, each with its time in ms (``t-ms``) and the parameters followed
    just before it, and the library parameters and window of the live feed (``watch``): they
    are used as they are (``params`` and ``window_ms`` default to the live ones), so the
    library sees what it saw live, call for call."""
    inputs = record.get("inputs", {}) or {}
    qemu_params = dict(inputs.get("migrate_parameters") or {})
    changes = sorted((a for a in record.get("actions_applied", []) or []
                      if a.get("parameters")), key=lambda a: a.get("applied_at_s", 0.0))
    watch = record.get("watch") if isinstance(record.get("watch"), Mapping) else {}
    if params is None:
        params = watch.get("library-parameters")
    if window_ms is None:
        window_ms = int(watch.get("window-ms", 2000))
    with QmpFeed(params, window_ms) as feed:
        for sample in record.get("samples", []):
            t = float(sample["t"])
            if isinstance(sample.get("parameters"), Mapping):
                qemu_params.update(sample["parameters"])
                feed.set_guest_dirty_rate(int(sample.get("guest-dirty-rate", 0) or 0))
            else:
                while changes and float(changes[0].get("applied_at_s", 0.0)) <= t:
                    qemu_params.update(changes.pop(0)["parameters"])
            now_ms = sample["t-ms"] if isinstance(sample.get("t-ms"), int) \
                else int(round(t * 1000))
            feed.parameters(qemu_params)
            yield feed.sample(now_ms, sample["query-migrate"])
