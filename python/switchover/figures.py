"""The figures the library reports, as frozen dataclasses built from the C structs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ._native import (INT64_MAX, SWO_ADVICE_BEYOND_MAX, SWO_ADVICE_STALLED,
                      SWO_ADVICE_WILL_SWITCHOVER, SWO_INFO_HAS_REMAINING, SWO_INFO_STALLED,
                      SWO_STEP_EXACT, SWO_STEP_FORCED, SWO_STEP_VM_STOPPED, UINT64_MAX,
                      Action, MigrationStatus, PolicyAction, Reason, SwoAdvice, SwoInfo, SwoPending, SwoRamFigures, SwoStep,
                      SwoVfioSizes)

__all__ = ["Pending", "Step", "Info", "Advice", "RamFigures", "VfioSizes",
           "migration_status_name", "action_name", "reason_name"]


def _saturating_sum(*values: int) -> int:
    return min(sum(values), UINT64_MAX)


def migration_status_name(status: int) -> str:
    """QEMU's name of a migration status: ``2`` -> ``'active'``, ``3`` ->
    ``'pre-switchover'``; ``'unknown(<n>)'`` for a number that is no status."""
    try:
        return MigrationStatus(status).name.lower().replace("_", "-")
    except ValueError:
        return f"unknown({status})"


def action_name(action: int) -> str:
    """The name of a step action: ``'iterate'``, ``'switchover'``, ``'start-postcopy'``,
    ``'complete'``, ``'wait'``; ``'unknown(<n>)'`` otherwise."""
    try:
        return Action(action).name.lower().replace("_", "-")
    except ValueError:
        return f"unknown({action})"


def reason_name(reason: int) -> str:
    """The name of a reason (``swo_reason_name``): ``'above-threshold'``,
    ``'deadline-reached'``, ...; ``'unknown'`` for a number that is no reason."""
    from . import _native

    if not 0 <= reason <= 0xFFFF_FFFF:
        return "unknown"
    return _native.lib.swo_reason_name(reason).decode()


def _enum(cls, value: int):
    try:
        return cls(value)
    except ValueError:  # a newer library's value: keep the number
        return value


@dataclass(frozen=True)
class Pending:
    """Bytes still to send, by when they can move (QEMU 11.1's three buckets).

    ``total`` is the saturating sum of the three unless given. Byte counts are never
    negative: a negative figure raises ``ValueError``.
    """

    precopy: int = 0
    stopcopy: int = 0
    postcopy: int = 0
    total: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("precopy", "stopcopy", "postcopy", "total"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Pending {name} is negative ({value})")
        if self.total is None:
            object.__setattr__(self, "total",
                               _saturating_sum(self.precopy, self.stopcopy, self.postcopy))

    @classmethod
    def _from_c(cls, p: SwoPending) -> "Pending":
        return cls(p.precopy_bytes, p.stopcopy_bytes, p.postcopy_bytes, p.total_bytes)


@dataclass(frozen=True)
class Step:
    """The result of one :meth:`Session.iteration_step`: the action (``ACTION_*``), the
    ``STEP_*`` flags, the figures the decision used, the threshold it compared them with
    and ``dirty-sync-count`` after the step (``pass_``: ``pass`` is a keyword)."""

    action: int
    flags: int
    pending: Pending
    threshold: int
    pass_: int
    #: ``REASON_*``: why the step decided ``action``.
    reason: int = 0

    @classmethod
    def _from_c(cls, s: SwoStep) -> "Step":
        return cls(_enum(Action, s.action), s.flags, Pending._from_c(s.pending),
                   s.threshold_bytes, s.pass_, _enum(Reason, s.reason))

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)

    @property
    def forced(self) -> bool:
        """A deadline or stall action forced this switchover or postcopy."""
        return bool(self.flags & SWO_STEP_FORCED)

    @property
    def action_name(self) -> str:
        return action_name(self.action)

    @property
    def exact(self) -> bool:
        """An exact query ran in this step."""
        return bool(self.flags & SWO_STEP_EXACT)

    @property
    def vm_stopped(self) -> bool:
        """The library stopped the guest and left it stopped for the switchover."""
        return bool(self.flags & SWO_STEP_VM_STOPPED)


@dataclass(frozen=True)
class Info:
    """The numeric snapshot of :meth:`Session.info` (``SwoInfo``). Sizes in bytes, times in
    ms; ``expected_downtime_ms`` is ``INT64_MAX`` while no bandwidth is known."""

    status: int
    flags: int
    remaining_bytes: int
    last_sync_bytes: int
    threshold_bytes: int
    pass_: int
    transferred_bytes: int
    mbps: float
    switchover_bw: float
    expected_downtime_ms: int
    total_time_ms: int
    setup_time_ms: int
    downtime_ms: int
    # -- operator policy --
    #: ``REASON_*``: why the migration is where it is.
    reason: int = 0
    #: ``PolicyAction``: the deadline or stall action taken (``NONE`` = none).
    policy_action: int = 0
    #: The deadline in ms since the start (0 = none).
    deadline_ms: int = 0
    #: Expected downtime when the switchover began; -1 before.
    predicted_downtime_ms: int = -1
    #: Bytes sent between the guest's stop and the end of the downtime (0 before).
    switchover_bytes: int = 0
    #: ``switchover_bytes`` / the downtime, bytes/s (0 before the downtime ended).
    measured_switchover_bw: float = 0.0

    @classmethod
    def _from_c(cls, i: SwoInfo) -> "Info":
        return cls(_enum(MigrationStatus, i.status), i.flags, i.remaining_bytes,
                   i.last_sync_bytes, i.threshold_bytes, i.pass_, i.transferred_bytes, i.mbps,
                   i.switchover_bw, i.expected_downtime_ms, i.total_time_ms, i.setup_time_ms,
                   i.downtime_ms, _enum(Reason, i.reason),
                   _enum(PolicyAction, i.policy_action), i.deadline_ms,
                   i.predicted_downtime_ms, i.switchover_bytes, i.measured_switchover_bw)

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)

    @property
    def status_name(self) -> str:
        return migration_status_name(self.status)

    @property
    def has_remaining(self) -> bool:
        """``remaining_bytes`` is reported in this status (query-migrate's ``remaining``)."""
        return bool(self.flags & SWO_INFO_HAS_REMAINING)

    @property
    def stalled(self) -> bool:
        return bool(self.flags & SWO_INFO_STALLED)

    @property
    def expected_downtime_known(self) -> bool:
        return self.expected_downtime_ms != INT64_MAX


@dataclass(frozen=True)
class Advice:
    """The stall state and downtime advice of :meth:`Session.advice` (``SwoAdvice``).
    ``recommended_downtime_ms`` is 0 when no change is advised."""

    flags: int
    passes_since_progress: int
    best_remaining_bytes: int
    expected_downtime_ms: int
    recommended_downtime_ms: int
    #: ms until the switchover can happen; ``None`` for ``SWO_ETA_NEVER`` (the remaining does
    #: not fall, or no rate is known yet).
    eta_ms: Optional[int] = None

    @classmethod
    def _from_c(cls, a: SwoAdvice) -> "Advice":
        eta = None if a.eta_ms == UINT64_MAX else a.eta_ms
        return cls(a.flags, a.passes_since_progress, a.best_remaining_bytes,
                   a.expected_downtime_ms, a.recommended_downtime_ms, eta)

    @property
    def stalled(self) -> bool:
        return bool(self.flags & SWO_ADVICE_STALLED)

    @property
    def will_switchover(self) -> bool:
        """The last exact figures fit ``downtime-limit``: the next pass switches over."""
        return bool(self.flags & SWO_ADVICE_WILL_SWITCHOVER)

    @property
    def beyond_max(self) -> bool:
        """``auto-downtime-max`` is set and the recommendation is above it."""
        return bool(self.flags & SWO_ADVICE_BEYOND_MAX)


@dataclass(frozen=True)
class RamFigures:
    """The RAM model's figures (``SwoRamFigures``), as query-migrate's ``ram`` reports them."""

    total_bytes: int
    page_size: int
    normal_pages: int
    zero_pages: int
    dirty_pages: int
    dirty_pages_rate: int

    @classmethod
    def _from_c(cls, f: SwoRamFigures) -> "RamFigures":
        return cls(f.total_bytes, f.page_size, f.normal_pages, f.zero_pages, f.dirty_pages,
                   f.dirty_pages_rate)

    @property
    def remaining_bytes(self) -> int:
        return min(self.dirty_pages * self.page_size, UINT64_MAX)


@dataclass(frozen=True)
class VfioSizes:
    """A VFIO device's cached sizes and bytes read since migration start (``SwoVfioSizes``)."""

    stopcopy_size: int
    precopy_init_size: int
    precopy_dirty_size: int
    transferred: int

    @classmethod
    def _from_c(cls, s: SwoVfioSizes) -> "VfioSizes":
        return cls(s.stopcopy_size, s.precopy_init_size, s.precopy_dirty_size, s.transferred)
