"""The one module that loads ``libswitchover`` and declares its C functions.

The library is looked up once, at import, in this order:

1. the ``SWITCHOVER_LIB`` environment variable (a path to the shared object): when it is
   set, nothing else is tried;
2. an installed library: ``libswitchover.so.0`` in the ``libdir`` that ``pkg-config
   --variable=libdir switchover`` names (``meson install`` writes ``switchover.pc``; set
   ``PKG_CONFIG_PATH`` for a prefix of your own);
3. ``../../build/libswitchover.so`` relative to this package (a meson build of the checkout,
   also what an editable install such as the checkout's ``.venv`` sees).

When none loads, importing raises ``ImportError`` (``name == "libswitchover"``) whose message
is one line saying how to build or point to the library.

Every function is declared from :data:`FUNCTIONS` (``restype`` and ``argtypes``) the first time
it is used. A function this binding knows but the loaded library lacks (an older build)
does not break the import: using it raises :class:`AttributeError` naming the library and
the function; :func:`has` tells beforehand.
"""
from __future__ import annotations

import ctypes
import enum
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char, c_char_p, c_double,
                    c_int, c_int64, c_size_t, c_uint32, c_uint64, c_void_p)

from ._version import __version__

#: The library versions (major, minor) this binding speaks to: its own.
COMPATIBLE_VERSION = tuple(int(part) for part in __version__.split(".")[:2])
#: The installed library's file name, its SONAME: libswitchover.so.<major> (README §ABI).
SONAME = f"libswitchover.so.{COMPATIBLE_VERSION[0]}"

UINT64_MAX = (1 << 64) - 1
UINT32_MAX = (1 << 32) - 1
INT64_MAX = (1 << 63) - 1
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1


class Status(enum.IntEnum):
    """The C ABI's status codes (``SWO_OK``, ``SWO_ERR_*``); never renumbered."""

    OK = 0
    ERR_NULL_ARG = 1
    ERR_INVALID_ARG = 2
    ERR_OUT_OF_RANGE = 3
    ERR_PARSE = 4
    ERR_BAD_STATE = 5
    ERR_NOT_FOUND = 6
    ERR_EXISTS = 7
    ERR_BUFFER_TOO_SMALL = 8
    ERR_REENTRANT = 9
    ERR_IO = 10
    ERR_UNSUPPORTED = 11
    ERR_PANIC = 12

    @property
    def c_name(self) -> str:
        """The C constant's name, e.g. ``SWO_ERR_NULL_ARG``."""
        return "SWO_" + self.name


class HandlerFlag(enum.IntFlag):
    """``SWO_HANDLER_*`` bits of :class:`SwoHandlerOps`."""

    NONE = 0
    EXACT_NEEDS_STOPPED_VM = 1 << 0
    NO_POSTCOPY = 1 << 1


class MigrationStatus(enum.IntEnum):
    """``SWO_STATUS_*``: QEMU's migration states."""

    NONE = 0
    SETUP = 1
    ACTIVE = 2
    PRE_SWITCHOVER = 3
    DEVICE = 4
    POSTCOPY_ACTIVE = 5
    COMPLETED = 6
    CANCELLING = 7
    CANCELLED = 8
    FAILED = 9


class Action(enum.IntEnum):
    """``SWO_ACTION_*``: what one iteration step asks the VMM to do."""

    ITERATE = 0
    SWITCHOVER = 1
    START_POSTCOPY = 2
    COMPLETE = 3
    WAIT = 4
    #: Only with ``deadline-action`` / ``stall-action`` ``cancel`` set.
    CANCELLED = 5


class Reason(enum.IntEnum):
    """``SWO_REASON_*``: why a step decided what it did, or why the migration is where it
    is (``Step.reason``, ``Info.reason``)."""

    NONE = 0
    ABOVE_THRESHOLD = 1
    EXACT_ABOVE_THRESHOLD = 2
    WAITING_FOR_ACK = 3
    PAUSED_BEFORE_SWITCHOVER = 4
    STALLED = 5
    DEADLINE_REACHED = 6
    STALL_ACTION = 7
    POSTCOPY_READY = 8
    SWITCHOVER_READY = 9
    SWITCHING_OVER = 10
    POSTCOPY_ACTIVE = 11
    POSTCOPY_DRAINED = 12
    SWITCHED_OVER = 13
    CANCELLED = 14
    FAILED = 15


class PolicyAction(enum.IntEnum):
    """``SWO_POLICY_*``: the deadline or stall action the library took (``Info.policy_action``)."""

    NONE = 0
    CANCEL = 1
    FORCE_SWITCHOVER = 2
    POSTCOPY = 3


class VfioState(enum.IntEnum):
    """``SWO_VFIO_STATE_*``: the uAPI ``enum vfio_device_mig_state`` numbers."""

    ERROR = 0
    STOP = 1
    RUNNING = 2
    STOP_COPY = 3
    RESUMING = 4
    RUNNING_P2P = 5
    PRE_COPY = 6
    PRE_COPY_P2P = 7


SWO_STEP_EXACT = 1 << 0
SWO_STEP_VM_STOPPED = 1 << 1
SWO_STEP_FORCED = 1 << 2
SWO_CHANNEL_MAIN = 0
SWO_CHANNEL_MULTIFD = 1
SWO_INFO_HAS_REMAINING = 1 << 0
SWO_INFO_STALLED = 1 << 1
SWO_ADVICE_STALLED = 1 << 0
SWO_ADVICE_WILL_SWITCHOVER = 1 << 1
SWO_ADVICE_BEYOND_MAX = 1 << 2
SWO_ETA_NEVER = UINT64_MAX


class SwoPending(Structure):
    """``SwoPending``: bytes still to send, by when they can move."""

    _fields_ = [
        ("precopy_bytes", c_uint64),
        ("stopcopy_bytes", c_uint64),
        ("postcopy_bytes", c_uint64),
        ("total_bytes", c_uint64),
    ]


#: ``void (*)(void *opaque, SwoPending *pending, bool exact, bool final)``
SwoQueryPendingFn = CFUNCTYPE(None, c_void_p, POINTER(SwoPending), c_bool, c_bool)
#: ``bool (*)(void *opaque)``
SwoIsActiveFn = CFUNCTYPE(c_bool, c_void_p)
#: ``int (*)(void *opaque)``
SwoVmOpFn = CFUNCTYPE(c_int, c_void_p)
#: ``void (*)(void *opaque, const char *event_json)``
SwoEventFn = CFUNCTYPE(None, c_void_p, c_char_p)


class SwoHandlerOps(Structure):
    """``SwoHandlerOps``: a handler's callbacks; copied by ``swo_register_handler``."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("save_query_pending", SwoQueryPendingFn),
        ("is_active", SwoIsActiveFn),
    ]


class SwoVmmOps(Structure):
    """``SwoVmmOps``: the VMM's callbacks; copied by ``swo_session_set_vmm_ops``."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("reserved", c_uint32),
        ("vm_stop", SwoVmOpFn),
        ("vm_resume", SwoVmOpFn),
        ("event", SwoEventFn),
    ]


class OutStruct(Structure):
    """A versioned out-struct (DESIGN.md §ABI evolution): the leading ``struct_size`` is set
    to this mirror's ``sizeof`` on construction, as a C caller sets it; the library writes
    what fits and sets ``struct_size`` to the bytes it wrote."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "struct_size" not in kwargs:
            self.struct_size = ctypes.sizeof(self)


class SwoStep(OutStruct):
    """``SwoStep``: the result of ``swo_iteration_step``. ``pass`` is a Python keyword, so
    the C member ``pass`` is spelled ``pass_`` here."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("action", c_uint32),
        ("flags", c_uint32),
        ("reserved", c_uint32),
        ("pending", SwoPending),
        ("threshold_bytes", c_uint64),
        ("pass_", c_uint64),
        # appended in 0.2 (operator policy)
        ("reason", c_uint32),
        ("reserved_policy", c_uint32),
    ]


class SwoInfo(OutStruct):
    """``SwoInfo``: the numeric snapshot of ``swo_get_info`` (``pass`` spelled ``pass_``)."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("status", c_uint32),
        ("flags", c_uint32),
        ("reserved", c_uint32),
        ("remaining_bytes", c_uint64),
        ("last_sync_bytes", c_uint64),
        ("threshold_bytes", c_uint64),
        ("pass_", c_uint64),
        ("transferred_bytes", c_uint64),
        ("mbps", c_double),
        ("switchover_bw", c_double),
        ("expected_downtime_ms", c_int64),
        ("total_time_ms", c_uint64),
        ("setup_time_ms", c_uint64),
        ("downtime_ms", c_uint64),
        # appended in 0.2 (operator policy)
        ("reason", c_uint32),
        ("policy_action", c_uint32),
        ("deadline_ms", c_uint64),
        ("predicted_downtime_ms", c_int64),
        ("switchover_bytes", c_uint64),
        ("measured_switchover_bw", c_double),
    ]


class SwoAdvice(OutStruct):
    """``SwoAdvice``: the stall state and downtime advice of ``swo_get_advice``."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("passes_since_progress", c_uint32),
        ("reserved", c_uint32),
        ("best_remaining_bytes", c_uint64),
        ("expected_downtime_ms", c_int64),
        ("recommended_downtime_ms", c_uint64),
        ("eta_ms", c_uint64),          # appended after the 0.2.0 layout; SWO_ETA_NEVER = never
    ]


#: ``uint64_t (*)(void *opaque, uint64_t *newly_dirtied)``
SwoRamSyncDirtyFn = CFUNCTYPE(c_uint64, c_void_p, POINTER(c_uint64))


class SwoRamOps(Structure):
    """``SwoRamOps``: the RAM model's callbacks; copied by ``swo_ram_new``."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("reserved", c_uint32),
        ("sync_dirty", SwoRamSyncDirtyFn),
    ]


class SwoRamFigures(OutStruct):
    """``SwoRamFigures``: what ``swo_ram_get_figures`` reports."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("reserved", c_uint32),
        ("total_bytes", c_uint64),
        ("page_size", c_uint64),
        ("normal_pages", c_uint64),
        ("zero_pages", c_uint64),
        ("dirty_pages", c_uint64),
        ("dirty_pages_rate", c_uint64),
    ]


#: ``int (*)(void *opaque, uint64_t *stop_copy_length)``
SwoVfioStopCopyFn = CFUNCTYPE(c_int, c_void_p, POINTER(c_uint64))
#: ``int (*)(void *opaque, uint64_t *initial_bytes, uint64_t *dirty_bytes)``
SwoVfioPrecopyFn = CFUNCTYPE(c_int, c_void_p, POINTER(c_uint64), POINTER(c_uint64))


class SwoVfioOps(Structure):
    """``SwoVfioOps``: a VFIO device's size queries; copied by ``swo_vfio_new``."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("reserved", c_uint32),
        ("query_stop_copy_size", SwoVfioStopCopyFn),
        ("query_precopy_info", SwoVfioPrecopyFn),
    ]


class SwoVfioSizes(OutStruct):
    """``SwoVfioSizes``: a VFIO device's cached sizes (``swo_vfio_get_sizes``)."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("reserved", c_uint32),
        ("stopcopy_size", c_uint64),
        ("precopy_init_size", c_uint64),
        ("precopy_dirty_size", c_uint64),
        ("transferred", c_uint64),
    ]


class SwoRam(Structure):
    """The opaque ``SwoRam`` (the built-in RAM model)."""

    _fields_: list = []


class SwoVfio(Structure):
    """The opaque ``SwoVfio`` (the built-in VFIO device model)."""

    _fields_: list = []


class SwoSession(Structure):
    """The opaque ``SwoSession``; only pointers to it exist."""

    _fields_: list = []


SessionP = POINTER(SwoSession)
RamP = POINTER(SwoRam)
VfioP = POINTER(SwoVfio)
_buf = POINTER(c_char)  # a caller's output buffer (create_string_buffer) or None
_size_p = POINTER(c_size_t)

#: name -> (restype, argtypes): every function of the C ABI this binding knows.
FUNCTIONS = {
    # status.rs
    "swo_version": (c_char_p, []),
    "swo_status_name": (c_char_p, [c_uint32]),
    "swo_migration_status_name": (c_char_p, [c_uint32]),
    "swo_action_name": (c_char_p, [c_uint32]),
    "swo_reason_name": (c_char_p, [c_uint32]),
    "swo_policy_action_name": (c_char_p, [c_uint32]),
    "swo_vfio_state_name": (c_char_p, [c_uint32]),
    "swo_last_error_message": (c_uint32, [_buf, c_size_t, _size_p]),
    # session.rs
    "swo_session_new": (c_uint32, [POINTER(SessionP)]),
    "swo_session_free": (None, [SessionP]),
    "swo_session_set_vmm_ops": (c_uint32, [SessionP, POINTER(SwoVmmOps), c_void_p]),
    # pending.rs
    "swo_register_handler": (c_uint32, [SessionP, c_char_p, c_uint32, POINTER(SwoHandlerOps),
                                        c_void_p, POINTER(c_uint64)]),
    "swo_unregister_handler": (c_uint32, [SessionP, c_uint64]),
    "swo_query_pending": (c_uint32, [SessionP, c_bool, POINTER(SwoPending)]),
    # params.rs
    "swo_set_parameter": (c_uint32, [SessionP, c_char_p, c_char_p]),
    "swo_set_parameters_json": (c_uint32, [SessionP, c_char_p]),
    "swo_query_parameters_json": (c_uint32, [SessionP, _buf, c_size_t, _size_p]),
    "swo_set_capability": (c_uint32, [SessionP, c_char_p, c_bool]),
    "swo_query_capabilities_json": (c_uint32, [SessionP, _buf, c_size_t, _size_p]),
    "swo_size_to_str": (c_size_t, [c_uint64, _buf, c_size_t]),
    "swo_parse_size": (c_uint32, [c_char_p, c_char, POINTER(c_uint64)]),
    # ram.rs
    "swo_ram_new": (c_uint32, [SessionP, c_uint64, c_uint64, POINTER(SwoRamOps), c_void_p,
                               POINTER(RamP)]),
    "swo_ram_set_dirty_pages": (c_uint32, [RamP, c_uint64]),
    "swo_ram_record_sent": (c_uint32, [RamP, c_uint64, c_uint64]),
    "swo_ram_get_figures": (c_uint32, [RamP, POINTER(SwoRamFigures)]),
    "swo_ram_free": (None, [RamP]),
    # vfio.rs
    "swo_vfio_new": (c_uint32, [SessionP, c_char_p, POINTER(SwoVfioOps), c_void_p,
                                POINTER(VfioP)]),
    "swo_vfio_new_fd": (c_uint32, [SessionP, c_char_p, c_int, POINTER(VfioP)]),
    "swo_vfio_set_data_fd": (c_uint32, [VfioP, c_int]),
    "swo_vfio_set_state": (c_uint32, [VfioP, c_uint32]),
    "swo_vfio_refresh": (c_uint32, [VfioP]),
    "swo_vfio_record_read": (c_uint32, [VfioP, c_uint64]),
    "swo_vfio_get_sizes": (c_uint32, [VfioP, POINTER(SwoVfioSizes)]),
    "swo_vfio_free": (None, [VfioP]),
    # engine.rs
    "swo_migration_start": (c_uint32, [SessionP, c_uint64]),
    "swo_setup_done": (c_uint32, [SessionP, c_uint64]),
    "swo_record_transferred": (c_uint32, [SessionP, c_uint32, c_uint64]),
    "swo_update_counters": (c_uint32, [SessionP, c_uint64]),
    "swo_iteration_step": (c_uint32, [SessionP, c_uint64, POINTER(SwoStep)]),
    "swo_switchover_begin": (c_uint32, [SessionP, c_uint64, POINTER(SwoPending),
                                        POINTER(c_bool)]),
    "swo_migrate_continue": (c_uint32, [SessionP, c_uint32]),
    "swo_postcopy_request": (c_uint32, [SessionP]),
    "swo_postcopy_start": (c_uint32, [SessionP, c_uint64]),
    "swo_complete": (c_uint32, [SessionP, c_uint64]),
    "swo_cancel": (c_uint32, [SessionP, c_uint64]),
    "swo_fail": (c_uint32, [SessionP, c_uint64, c_char_p]),
    "swo_set_switchover_acked": (c_uint32, [SessionP, c_bool]),
    "swo_set_vm_running": (c_uint32, [SessionP, c_bool]),
    "swo_get_status": (c_uint32, [SessionP]),
    "swo_get_info": (c_uint32, [SessionP, c_uint64, POINTER(SwoInfo)]),
    "swo_get_advice": (c_uint32, [SessionP, c_uint64, POINTER(SwoAdvice)]),
    # report/
    "swo_query_migrate_json": (c_uint32, [SessionP, c_uint64, _buf, c_size_t, _size_p]),
    "swo_info_migrate_text": (c_uint32, [SessionP, c_uint64, _buf, c_size_t, _size_p]),
}

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _pkg_config_libdir() -> str | None:
    """``pkg-config --variable=libdir switchover``, or None (no pkg-config, no .pc file)."""
    import subprocess
    try:
        done = subprocess.run(["pkg-config", "--variable=libdir", "switchover"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = done.stdout.strip()
    return libdir if done.returncode == 0 and libdir else None


def candidates() -> list:
    """Where the library is looked for, in order."""
    env = os.environ.get("SWITCHOVER_LIB")
    if env:
        return [env]
    found = []
    libdir = _pkg_config_libdir()
    if libdir:
        found.append(os.path.join(libdir, SONAME))
    found.append(os.path.normpath(os.path.join(_PACKAGE_DIR, "..", "..", "build",
                                               "libswitchover.so")))
    return found


class Library:
    """The loaded library: attribute access gives the declared C function."""

    def __init__(self, cdll: ctypes.CDLL, path: str):
        self._cdll = cdll
        self.path = path
        self.version = self.swo_version().decode()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            restype, argtypes = FUNCTIONS[name]
        except KeyError:
            raise AttributeError(f"{name} is not a switchover C function this binding "
                                 f"declares") from None
        try:
            fn = getattr(self._cdll, name)
        except AttributeError:
            raise AttributeError(
                f"{name} is missing from {self.path} (switchover "
                f"{self.__dict__.get('version', '?')}): this build of the library predates "
                f"it") from None
        fn.restype = restype
        fn.argtypes = argtypes
        setattr(self, name, fn)  # later look-ups skip __getattr__
        return fn

    def has(self, name: str) -> bool:
        """True when the loaded library exports ``name`` and this binding declares it."""
        try:
            getattr(self, name)
        except AttributeError:
            return False
        return True


def _load() -> Library:
    tried = []
    for path in candidates():
        if not os.path.exists(path):
            tried.append(f"{path} (no such file)")
            continue
        try:
            cdll = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        lib = Library(cdll, path)
        major_minor = tuple(int(x) for x in lib.version.split(".")[:2])
        if major_minor != COMPATIBLE_VERSION:
            raise ImportError(
                f"{path} is switchover {lib.version}; this binding needs "
                f"{COMPATIBLE_VERSION[0]}.{COMPATIBLE_VERSION[1]}.x")
        return lib
    raise ImportError(
        "libswitchover not found: build it with scripts/demo.sh or scripts/test.sh in the "
        "checkout, install it with meson (then pkg-config finds it), or set SWITCHOVER_LIB "
        "to libswitchover.so (tried: " + "; ".join(tried) + ")", name="libswitchover")


lib: Library = _load()


def has(name: str) -> bool:
    """True when the loaded library has the C function ``name``."""
    return lib.has(name)


def status_name(code: int) -> str:
    """``swo_status_name``: e.g. ``SWO_ERR_NULL_ARG``; ``SWO_ERR_UNKNOWN`` for no code."""
    if not 0 <= code <= UINT32_MAX:
        return "SWO_ERR_UNKNOWN"
    return lib.swo_status_name(code).decode()

