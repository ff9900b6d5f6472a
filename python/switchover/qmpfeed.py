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
  ``completed``, ``failed`` and ``cancelled`` end the feed (the library's figures stay as
  they were at the last live sample, which is what the summary compares with).
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
        self._reset()

    def _reset(self) -> None:
        self.started = False
        self.live = False
        self._transferred: Optional[int] = None
        self._multifd: Optional[int] = None
        self._sync_count: Optional[int] = None
        self._last_pending: Optional[int] = None
        self.passes = 0

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
        result = FeedResult(now_ms=now_ms, status=status)
        ram = info.get("ram") if isinstance(info.get("ram"), Mapping) else None
        if status in ("none",) or (status in FINISHED and not self.started):
            return result
        if status == "setup":
            if not self.started:
                self._start(now_ms)
            result.library = self.session.query_migrate(now_ms)
            return result
        if status in FINISHED:
            result.library = self.session.query_migrate(now_ms)
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

    def _start(self, now_ms: int) -> None:
        if self.started and self.session.status_name not in ("completed", "failed", "cancelled"):
            self.session.cancel(now_ms)
        self._reset()
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


def replay(record: Mapping[str, Any], params: Optional[Mapping[str, Any]] = None,
           window_ms: int = 2000):
    """Feeds a recorded run (RUN.json of tests/e2e/qemu_pair.py, format
    ``switchover-real-run/1``: ``samples`` of ``{"t": seconds, "query-migrate": {...}}``, the
    source's ``inputs.migrate_parameters`` at the start and ``actions_applied`` with the
    parameters set during the run) through a new feed, as it happened; yields each sample's
    :class:`FeedResult`. ``params`` are library parameters (``stall-passes``, ...)."""
    inputs = record.get("inputs", {}) or {}
    qemu_params = dict(inputs.get("migrate_parameters") or {})
    changes = sorted((a for a in record.get("actions_applied", []) or []
                      if a.get("parameters")), key=lambda a: a.get("applied_at_s", 0.0))
    with QmpFeed(params, window_ms) as feed:
        for sample in record.get("samples", []):
            t = float(sample["t"])
            while changes and float(changes[0].get("applied_at_s", 0.0)) <= t:
                qemu_params.update(changes.pop(0)["parameters"])
            feed.parameters(qemu_params)
            yield feed.sample(int(round(t * 1000)), sample["query-migrate"])
