"""Python binding of libswitchover: decides when a live migration can switch over.

    >>> import switchover
    >>> with switchover.Session() as s:
    ...     ram = s.register_handler("ram", lambda exact, final: (512 << 20, 0, 0))
    ...     s.query_pending(exact=True).total
    536870912

A migration loop, the way a VMM's migration thread drives it (``now`` is your clock, in ms)::

    s.set_vmm_ops(vm_stop=..., vm_resume=..., event=print)   # events also kept in s.events
    ram = switchover.Ram(s, 4 << 30, sync_dirty=bitmap_sync)
    gpu = switchover.Vfio(s, "0000:3b:00.0", query_stop_copy_size=read_size)
    s.migration_start(now); s.setup_done(now)
    while True:
        s.record_transferred(sent); s.update_counters(now)
        step = s.iteration_step(now)
        if step.action == switchover.ACTION_SWITCHOVER:
            proceed, final = s.switchover_begin(now)
            ...                                    # send `final`, then
            s.complete(now); break
    s.query_migrate(now)     # QMP query-migrate as a dict; s.info_migrate(now) for HMP

Every failure of the library raises :class:`SwitchoverError` with its ``code`` and the
library's ``message``. Sizes are ints (bytes).
"""
import os as _os
import sys as _sys


def _is_command_line() -> bool:
    """True while a command of this package starts: ``python -m switchover.X`` or a
    ``switchover-*`` console script (pyproject.toml's [project.scripts])."""
    argv = getattr(_sys, "orig_argv", [])
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1].startswith("switchover."):
        return True
    return _os.path.basename(_sys.argv[0] if _sys.argv else "").startswith("switchover-")


try:
    from . import _native  # loads libswitchover (SWITCHOVER_LIB, pkg-config, build tree)
except ImportError as _e:
    if _e.name == "libswitchover" and _is_command_line():
        # A command run before the library is built: one clear line, no traceback.
        print(f"error: {_e}", file=_sys.stderr)
        raise SystemExit(4) from None
    raise

from ._native import (Action, HandlerFlag, MigrationStatus, PolicyAction, Reason, Status,
                      SwoAdvice,
                      SwoHandlerOps, SwoInfo, SwoPending, SwoRamFigures, SwoRamOps, SwoStep,
                      SwoVfioOps, SwoVfioSizes, SwoVmmOps, VfioState, has)
from ._native import lib as _lib
from .errors import SwitchoverError
from .figures import (Advice, Info, Pending, RamFigures, Step, VfioSizes, action_name,
                      migration_status_name, reason_name)
from .ram import Ram
from .session import KEEP_EVENTS, UNKNOWN_STOP_COPY, Handler, Session
from .sizes import parse_size, size_to_str
from .vfio import Vfio

# The C ABI's constants without their SWO_ prefix (all plain ints; the IntEnum members
# compare equal to the numbers).
ACTION_ITERATE = Action.ITERATE
ACTION_SWITCHOVER = Action.SWITCHOVER
ACTION_START_POSTCOPY = Action.START_POSTCOPY
ACTION_COMPLETE = Action.COMPLETE
ACTION_WAIT = Action.WAIT
ACTION_CANCELLED = Action.CANCELLED

STEP_EXACT = _native.SWO_STEP_EXACT
STEP_VM_STOPPED = _native.SWO_STEP_VM_STOPPED
STEP_FORCED = _native.SWO_STEP_FORCED

REASON_NONE = Reason.NONE
REASON_ABOVE_THRESHOLD = Reason.ABOVE_THRESHOLD
REASON_EXACT_ABOVE_THRESHOLD = Reason.EXACT_ABOVE_THRESHOLD
REASON_WAITING_FOR_ACK = Reason.WAITING_FOR_ACK
REASON_PAUSED_BEFORE_SWITCHOVER = Reason.PAUSED_BEFORE_SWITCHOVER
REASON_STALLED = Reason.STALLED
REASON_DEADLINE_REACHED = Reason.DEADLINE_REACHED
REASON_STALL_ACTION = Reason.STALL_ACTION
REASON_POSTCOPY_READY = Reason.POSTCOPY_READY
REASON_SWITCHOVER_READY = Reason.SWITCHOVER_READY
REASON_SWITCHING_OVER = Reason.SWITCHING_OVER
REASON_POSTCOPY_ACTIVE = Reason.POSTCOPY_ACTIVE
REASON_POSTCOPY_DRAINED = Reason.POSTCOPY_DRAINED
REASON_SWITCHED_OVER = Reason.SWITCHED_OVER
REASON_CANCELLED = Reason.CANCELLED
REASON_FAILED = Reason.FAILED

POLICY_NONE = PolicyAction.NONE
POLICY_CANCEL = PolicyAction.CANCEL
POLICY_FORCE_SWITCHOVER = PolicyAction.FORCE_SWITCHOVER
POLICY_POSTCOPY = PolicyAction.POSTCOPY

STATUS_NONE = MigrationStatus.NONE
STATUS_SETUP = MigrationStatus.SETUP
STATUS_ACTIVE = MigrationStatus.ACTIVE
STATUS_PRE_SWITCHOVER = MigrationStatus.PRE_SWITCHOVER
STATUS_DEVICE = MigrationStatus.DEVICE
STATUS_POSTCOPY_ACTIVE = MigrationStatus.POSTCOPY_ACTIVE
STATUS_COMPLETED = MigrationStatus.COMPLETED
STATUS_CANCELLING = MigrationStatus.CANCELLING
STATUS_CANCELLED = MigrationStatus.CANCELLED
STATUS_FAILED = MigrationStatus.FAILED

HANDLER_EXACT_NEEDS_STOPPED_VM = HandlerFlag.EXACT_NEEDS_STOPPED_VM
HANDLER_NO_POSTCOPY = HandlerFlag.NO_POSTCOPY

VFIO_ERROR = VfioState.ERROR
VFIO_STOP = VfioState.STOP
VFIO_RUNNING = VfioState.RUNNING
VFIO_STOP_COPY = VfioState.STOP_COPY
VFIO_RESUMING = VfioState.RESUMING
VFIO_RUNNING_P2P = VfioState.RUNNING_P2P
VFIO_PRE_COPY = VfioState.PRE_COPY
VFIO_PRE_COPY_P2P = VfioState.PRE_COPY_P2P

CHANNEL_MAIN = _native.SWO_CHANNEL_MAIN
CHANNEL_MULTIFD = _native.SWO_CHANNEL_MULTIFD

INFO_HAS_REMAINING = _native.SWO_INFO_HAS_REMAINING
INFO_STALLED = _native.SWO_INFO_STALLED
ADVICE_STALLED = _native.SWO_ADVICE_STALLED
ADVICE_WILL_SWITCHOVER = _native.SWO_ADVICE_WILL_SWITCHOVER
ADVICE_BEYOND_MAX = _native.SWO_ADVICE_BEYOND_MAX
ETA_NEVER = _native.SWO_ETA_NEVER

#: ``expected_downtime_ms`` while no bandwidth is known.
INT64_MAX = _native.INT64_MAX
#: The stop-copy size a VFIO device gets when its size cannot be read (100 GiB): the same
#: figure as :data:`UNKNOWN_STOP_COPY` (session.py), written once.
VFIO_STOP_COPY_FALLBACK = UNKNOWN_STOP_COPY

#: This binding's version (written in _version.py); tests check it against Cargo.toml, where
#: the version is declared.
from ._version import __version__  # noqa: E402

#: The loaded library's version string (``swo_version``).
library_version: str = _lib.version
#: Path of the loaded shared library.
library_path: str = _lib.path

_CONSTANTS = [name for name in list(globals()) if name.isupper() and not name.startswith("_")]

__all__ = [
    "Action", "Advice", "Handler", "HandlerFlag", "Info", "MigrationStatus", "Pending",
    "PolicyAction", "Ram", "RamFigures", "Reason", "reason_name", "Session", "Status", "Step", "SwitchoverError", "SwoAdvice", "SwoHandlerOps",
    "SwoInfo", "SwoPending", "SwoRamFigures", "SwoRamOps", "SwoStep", "SwoVfioOps",
    "SwoVfioSizes", "SwoVmmOps", "Vfio", "VfioSizes", "VfioState", "action_name", "has",
    "library_path", "library_version", "migration_status_name", "parse_size", "size_to_str",
] + _CONSTANTS
