"""The convergence engine's calls on a :class:`~switchover.Session`: the migration
lifecycle, the byte counters, one iteration step, the snapshot, the advice and the monitor's
reports (``query-migrate``, ``info migrate``).

Every ``now_ms`` is the caller's monotonic clock in whole ms (0..2**64-1).
"""
from __future__ import annotations

import ctypes
import json
import operator
from typing import Any, Dict, Optional, Tuple

from . import _native
from ._native import (SWO_CHANNEL_MAIN, UINT32_MAX, UINT64_MAX, MigrationStatus, SwoAdvice,
                      SwoInfo, SwoPending, SwoStep)
from .errors import check, read_text
from .figures import Advice, Info, Pending, Step, migration_status_name

__all__ = ["EngineCalls"]


def _u64(value: Any, what: str) -> int:
    value = operator.index(value)
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"{what} {value} is outside 0..2**64-1")
    return value


def _u32(value: Any, what: str) -> int:
    value = operator.index(value)
    if not 0 <= value <= UINT32_MAX:
        raise ValueError(f"{what} {value} is outside 0..2**32-1")
    return value


class EngineCalls:
    """Mixed into :class:`~switchover.Session`; needs its ``_use()``."""

    def _call(self, name: str, *args: Any) -> None:
        with self._use() as h:  # type: ignore[attr-defined]
            check(getattr(_native.lib, name)(h, *args))

    # -- lifecycle (migration thread unless said otherwise) ---------------------------------

    def migration_start(self, now_ms: int) -> None:
        """``none``/``completed``/``cancelled``/``failed`` -> ``setup``; resets every
        statistic and opens the first 100 ms bandwidth window at ``now_ms``."""
        self._call("swo_migration_start", _u64(now_ms, "now_ms"))

    def setup_done(self, now_ms: int) -> None:
        """``setup`` -> ``active``."""
        self._call("swo_setup_done", _u64(now_ms, "now_ms"))

    def record_transferred(self, nbytes: int, channel: int = SWO_CHANNEL_MAIN) -> None:
        """Counts ``nbytes`` sent on ``channel`` (``CHANNEL_MAIN`` or ``CHANNEL_MULTIFD``).
        Any thread."""
        self._call("swo_record_transferred", _u32(channel, "channel"), _u64(nbytes, "nbytes"))

    def update_counters(self, now_ms: int) -> None:
        """Closes the 100 ms bandwidth window once ``now_ms`` reaches its end: ``mbps``,
        switchover bandwidth, ``threshold``; does nothing earlier."""
        self._call("swo_update_counters", _u64(now_ms, "now_ms"))

    def iteration_step(self, now_ms: int) -> Step:
        """One pass of the migration loop; returns what to do next (``Step.action``)."""
        out = SwoStep()
        self._call("swo_iteration_step", _u64(now_ms, "now_ms"), ctypes.byref(out))
        return Step._from_c(out)

    def switchover_begin(self, now_ms: int) -> Tuple[bool, Pending]:
        """Begins the switchover: ``(proceed, final figures)``. ``proceed`` is False while
        paused in ``pre-switchover`` (call again after :meth:`migrate_continue`) and after a
        rollback to ``active``."""
        final = SwoPending()
        proceed = ctypes.c_bool(False)
        self._call("swo_switchover_begin", _u64(now_ms, "now_ms"), ctypes.byref(final),
                   ctypes.byref(proceed))
        return bool(proceed.value), Pending._from_c(final)

    def migrate_continue(self, expected_status: int) -> None:
        """``migrate-continue``: ``expected_status`` (``STATUS_*``) must be the current
        status; in ``pre-switchover`` it moves on to ``device``, elsewhere it does nothing
        (QEMU's ``qmp_migrate_continue``). Any thread."""
        self._call("swo_migrate_continue", _u32(expected_status, "expected_status"))

    def postcopy_request(self) -> None:
        """``migrate-start-postcopy``: postcopy starts once precopy + stopcopy fit the
        threshold. Any thread."""
        self._call("swo_postcopy_request")

    def postcopy_start(self, now_ms: int) -> None:
        """``active`` -> ``device`` -> ``postcopy-active`` after ``ACTION_START_POSTCOPY``."""
        self._call("swo_postcopy_start", _u64(now_ms, "now_ms"))

    def complete(self, now_ms: int) -> None:
        """``device`` or ``postcopy-active`` -> ``completed``."""
        self._call("swo_complete", _u64(now_ms, "now_ms"))

    def cancel(self, now_ms: int) -> None:
        """Cancels a live migration (-> ``cancelling`` -> ``cancelled``); refused in
        ``postcopy-active`` as QEMU's ``qmp_migrate_cancel`` does. Any thread."""
        self._call("swo_cancel", _u64(now_ms, "now_ms"))

    def fail(self, now_ms: int, desc: Optional[str] = None) -> None:
        """Fails a live migration (-> ``failed``), keeping ``desc`` as ``error-desc``.
        Any thread."""
        if desc is not None:
            if not isinstance(desc, str):
                raise TypeError(f"desc must be a str or None, not {type(desc).__name__}")
            if "\0" in desc:
                raise ValueError("desc must not contain NUL")
        self._call("swo_fail", _u64(now_ms, "now_ms"),
                   None if desc is None else desc.encode())

    def set_switchover_acked(self, acked: bool = True) -> None:
        """Records whether the destination acked the switchover (``switchover-ack``)."""
        self._call("swo_set_switchover_acked", bool(acked))

    def set_vm_running(self, running: bool) -> None:
        """Records whether the guest runs: for the ``switchover-ack`` rule, and to file
        main-channel bytes as QEMU's ``ram_transferred_add`` does (sent while the guest is
        stopped: downtime bytes)."""
        self._call("swo_set_vm_running", bool(running))

    # -- figures ---------------------------------------------------------------------------

    @property
    def status(self) -> int:
        """The migration status (``STATUS_*``, a :class:`MigrationStatus`)."""
        with self._use() as h:  # type: ignore[attr-defined]
            code = _native.lib.swo_get_status(h)
        try:
            return MigrationStatus(code)
        except ValueError:
            return code

    @property
    def status_name(self) -> str:
        """QEMU's name of the status: ``'active'``, ``'pre-switchover'``, ..."""
        return migration_status_name(self.status)

    def info(self, now_ms: int) -> Info:
        """A consistent numeric snapshot at ``now_ms``; never calls a handler."""
        out = SwoInfo()
        self._call("swo_get_info", _u64(now_ms, "now_ms"), ctypes.byref(out))
        return Info._from_c(out)

    def advice(self, now_ms: int) -> Advice:
        """The stall state and the recommended ``downtime-limit`` at ``now_ms``."""
        out = SwoAdvice()
        self._call("swo_get_advice", _u64(now_ms, "now_ms"), ctypes.byref(out))
        return Advice._from_c(out)

    # -- reports ---------------------------------------------------------------------------

    def query_migrate_json(self, now_ms: int) -> str:
        """QMP ``query-migrate``'s return value as JSON text (QEMU 11.1 layout plus
        ``x-switchover``). Any thread, also while the migration thread steps."""
        now_ms = _u64(now_ms, "now_ms")
        with self._use() as h:  # type: ignore[attr-defined]
            return read_text(_native.lib.swo_query_migrate_json, h, now_ms)

    def query_migrate(self, now_ms: int) -> Dict[str, Any]:
        """:meth:`query_migrate_json` parsed into a dict."""
        return json.loads(self.query_migrate_json(now_ms))

    def info_migrate(self, now_ms: int) -> str:
        """HMP ``info migrate`` text (QEMU 11.1 layout, tabs included)."""
        now_ms = _u64(now_ms, "now_ms")
        with self._use() as h:  # type: ignore[attr-defined]
            return read_text(_native.lib.swo_info_migrate_text, h, now_ms)
