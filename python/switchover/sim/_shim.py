"""A stopgap: the engine, RAM and VFIO parts of PYTHON-API.md over ``switchover._native``,
used only while the ``switchover`` package lacks them (``Session.iteration_step``, ``Ram``,
``Vfio``). Once the real bindings are there, :func:`module` is never called. Not public."""
from __future__ import annotations

import ctypes
import errno as _errno
import json
import types
from ctypes import Structure, c_bool, c_double, c_int64, c_uint32, c_uint64
from dataclasses import dataclass

import switchover
from switchover import _native
from switchover.errors import SwitchoverError, check

INT64_MAX = 2**63 - 1


class _SwoInfo(Structure):
    _fields_ = [("status", c_uint32), ("flags", c_uint32), ("remaining_bytes", c_uint64),
                ("last_sync_bytes", c_uint64), ("threshold_bytes", c_uint64),
                ("pass_", c_uint64), ("transferred_bytes", c_uint64), ("mbps", c_double),
                ("switchover_bw", c_double), ("expected_downtime_ms", c_int64),
                ("total_time_ms", c_uint64), ("setup_time_ms", c_uint64),
                ("downtime_ms", c_uint64)]


class _SwoAdvice(Structure):
    _fields_ = [("flags", c_uint32), ("passes_since_progress", c_uint32),
                ("best_remaining_bytes", c_uint64), ("expected_downtime_ms", c_int64),
                ("recommended_downtime_ms", c_uint64)]


@dataclass(frozen=True)
class Step:
    action: int
    flags: int
    pending: switchover.Pending
    threshold: int
    pass_: int


@dataclass(frozen=True)
class Info:
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

    @property
    def stalled(self) -> bool:
        return bool(self.flags & 2)


@dataclass(frozen=True)
class Advice:
    flags: int
    passes_since_progress: int
    best_remaining_bytes: int
    expected_downtime_ms: int
    recommended_downtime_ms: int

    stalled = property(lambda self: bool(self.flags & 1))
    will_switchover = property(lambda self: bool(self.flags & 2))
    beyond_max = property(lambda self: bool(self.flags & 4))


class Session(switchover.Session):
    def _call(self, name, *args):
        with self._use() as h:
            check(getattr(_native.lib, name)(h, *args))

    def set_vmm_ops(self, vm_stop=None, vm_resume=None, event=None):
        def wrap_vm(fn):
            return _native.SwoVmOpFn(lambda _o: int(fn() or 0)) if fn else _native.SwoVmOpFn()

        def on_event(_o, text):
            ev = json.loads(text.decode())
            if event:
                event(ev)
        ops = _native.SwoVmmOps(ctypes.sizeof(_native.SwoVmmOps), 0, wrap_vm(vm_stop),
                                wrap_vm(vm_resume), _native.SwoEventFn(on_event))
        self._vmm_keep = ops
        with self._use() as h:
            check(_native.lib.swo_session_set_vmm_ops(h, ctypes.byref(ops), None))

    def migration_start(self, now): self._call("swo_migration_start", now)
    def setup_done(self, now): self._call("swo_setup_done", now)
    def update_counters(self, now): self._call("swo_update_counters", now)
    def postcopy_request(self): self._call("swo_postcopy_request")
    def postcopy_start(self, now): self._call("swo_postcopy_start", now)
    def complete(self, now): self._call("swo_complete", now)
    def cancel(self, now): self._call("swo_cancel", now)
    def migrate_continue(self, st): self._call("swo_migrate_continue", st)
    def set_switchover_acked(self, on): self._call("swo_set_switchover_acked", bool(on))

    def record_transferred(self, nbytes, channel=0):
        self._call("swo_record_transferred", channel, nbytes)

    def iteration_step(self, now):
        st = _native.SwoStep()
        self._call("swo_iteration_step", now, ctypes.byref(st))
        return Step(st.action, st.flags, switchover.Pending._from_c(st.pending),
                    st.threshold_bytes, st.pass_)

    def switchover_begin(self, now):
        p, ok = _native.SwoPending(), c_bool(False)
        self._call("swo_switchover_begin", now, ctypes.byref(p), ctypes.byref(ok))
        return bool(ok.value), switchover.Pending._from_c(p)

    @property
    def status(self):
        with self._use() as h:
            return _native.lib.swo_get_status(h)

    def info(self, now):
        i = _SwoInfo()
        self._call("swo_get_info", now, ctypes.byref(i))
        return Info(*(getattr(i, f) for f, _ in _SwoInfo._fields_))

    def advice(self, now):
        a = _SwoAdvice()
        self._call("swo_get_advice", now, ctypes.byref(a))
        return Advice(*(getattr(a, f) for f, _ in _SwoAdvice._fields_))

    def info_migrate(self, now):
        with self._use() as h:
            return _native.read_text(_native.lib.swo_info_migrate_text, h, now)


class Ram:
    def __init__(self, s, total_bytes, page_size=4096, sync_dirty=None):
        def c_sync(_o, newly):
            left, n = sync_dirty()
            newly[0] = n
            return left
        self._ops = _native.SwoRamOps(ctypes.sizeof(_native.SwoRamOps), 0,
                                      _native.SwoRamSyncDirtyFn(c_sync) if sync_dirty
                                      else _native.SwoRamSyncDirtyFn())
        self._h = _native.RamP()
        with s._use() as h:
            check(_native.lib.swo_ram_new(h, total_bytes, page_size, ctypes.byref(self._ops),
                                          None, ctypes.byref(self._h)))

    def set_dirty_pages(self, n): check(_native.lib.swo_ram_set_dirty_pages(self._h, n))
    def record_sent(self, normal, zero): check(_native.lib.swo_ram_record_sent(self._h, normal, zero))

    def close(self):
        if self._h:
            _native.lib.swo_ram_free(self._h)
            self._h = None


class Vfio:
    def __init__(self, s, name, query_stop_copy_size, query_precopy_info):
        def c_stop(_o, out):
            try:
                v = query_stop_copy_size()
            except OSError as e:
                return -(e.errno or _errno.EIO)
            if v < 0:
                return v
            out[0] = v
            return 0

        def c_pre(_o, init, dirty):
            try:
                i, d = query_precopy_info()
            except OSError as e:
                return -(e.errno or _errno.EIO)
            init[0], dirty[0] = i, d
            return 0
        self._ops = _native.SwoVfioOps(ctypes.sizeof(_native.SwoVfioOps), 0,
                                       _native.SwoVfioStopCopyFn(c_stop),
                                       _native.SwoVfioPrecopyFn(c_pre))
        self._h = _native.VfioP()
        with s._use() as h:
            check(_native.lib.swo_vfio_new(h, name.encode(), ctypes.byref(self._ops), None,
                                           ctypes.byref(self._h)))

    def set_state(self, st): check(_native.lib.swo_vfio_set_state(self._h, st))
    def refresh(self): check(_native.lib.swo_vfio_refresh(self._h))
    def record_read(self, n): check(_native.lib.swo_vfio_record_read(self._h, n))

    def close(self):
        if self._h:
            _native.lib.swo_vfio_free(self._h)
            self._h = None


def available() -> bool:
    return all(_native.has(n) for n in ("swo_iteration_step", "swo_ram_new", "swo_vfio_new",
                                        "swo_get_info", "swo_get_advice"))


def module() -> types.SimpleNamespace:
    ns = dict(Session=Session, Ram=Ram, Vfio=Vfio, SwitchoverError=SwitchoverError)
    for a in switchover.Action:
        ns[f"ACTION_{a.name}"] = int(a)
    for st in switchover.MigrationStatus:
        ns[f"STATUS_{st.name}"] = int(st)
    for i, n in enumerate(["ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING",
                           "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"]):
        ns[f"VFIO_{n}"] = i
    return types.SimpleNamespace(**ns)
