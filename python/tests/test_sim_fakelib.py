"""A small stand-in for the ``switchover`` bindings, following PYTHON-API.md and the rules of
QEMU-BEHAVIOUR.md (100 ms window threshold, fast/exact queries, `<=` completion, expected
downtime, VFIO reporting), so the simulator's loop can be tested without the library. The
real-library tests live in test_sim_scenarios.py."""
from __future__ import annotations

import types
from dataclasses import dataclass

INT64_MAX = 2**63 - 1


class SwitchoverError(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name, self.message, self.code = name, message, 5


@dataclass(frozen=True)
class Pending:
    precopy: int = 0
    stopcopy: int = 0
    postcopy: int = 0

    @property
    def total(self):
        return self.precopy + self.stopcopy + self.postcopy


@dataclass
class Step:
    action: int
    flags: int
    pending: Pending
    threshold: int
    pass_: int


@dataclass
class Info:
    status: int
    expected_downtime_ms: int
    mbps: float
    pass_: int
    transferred_bytes: int
    total_time_ms: int
    downtime_ms: int
    stalled: bool = False


class FakeSession:
    def __init__(self):
        self.status = 0
        self.parameters = {"downtime-limit": 300, "max-bandwidth": 134217728,
                           "avail-switchover-bandwidth": 0, "max-postcopy-bandwidth": 0}
        self.capabilities = {}
        self.handlers = []
        self.transferred = 0
        self.window_bytes = 0
        self.window_start = 0
        self.bw = 0.0
        self.threshold = 0
        self.pass_ = 0
        self.last_sync = 0
        self.start = 0
        self.stop_ms = None
        self.downtime = 0
        self.end = None
        self.event_cb = None
        self.best = None
        self.no_progress = 0
        self.stalled = False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass

    def _emit(self, name, data):
        if self.event_cb and self.capabilities.get("events"):
            self.event_cb({"event": name, "data": data})

    def _set_status(self, st):
        self.status = st
        self._emit("MIGRATION", {"status": STATUS_NAMES[st]})

    def set_vmm_ops(self, vm_stop=None, vm_resume=None, event=None):
        self.event_cb, self.vm_resume = event, vm_resume

    def set_capability(self, name, on):
        self.capabilities[name] = on

    def set_parameters(self, d):
        self.parameters.update(d)

    def migration_start(self, now):
        self._set_status(1)
        self.start = now
        self.pass_ = 1  # QEMU's migrate_init: dirty-sync-count starts at 1

    def setup_done(self, now):
        self._set_status(2)
        self.window_start = now

    def record_transferred(self, n, channel=0):
        self.transferred += n
        self.window_bytes += n

    def update_counters(self, now):
        if now < self.window_start + 100:
            return
        spent = now - self.window_start
        mbps = self.window_bytes * 8 / (spent / 1000) / 1e6
        avail = self.parameters["avail-switchover-bandwidth"]
        self.mbps = mbps
        self.bw = avail if avail else mbps / 8 * 1e6
        self.threshold = int(self.bw / 1000.0 * self.parameters["downtime-limit"])
        self.window_bytes, self.window_start = 0, now

    def _query(self, exact, final=False):
        pre = stop = post = 0
        for h in self.handlers:
            p = h.query(exact, final)
            pre, stop, post = pre + p.precopy, stop + p.stopcopy, post + p.postcopy
        return Pending(min(pre, INT64_MAX), min(stop, INT64_MAX), min(post, INT64_MAX))

    def iteration_step(self, now):
        p = self._query(False)
        flags = 0
        if self.status == 5:
            return Step(3 if p.total == 0 else 0, 0, p, self.threshold, self.pass_)
        if p.total <= self.threshold or p.precopy == 0:
            p = self._query(True)
            flags = 1
            self.last_sync = p.total
            self.pass_ += 1
            self._progress(p.total, now)
        if self.parameters.get("postcopy-requested") and p.precopy + p.stopcopy <= self.threshold:
            return Step(2, flags, p, self.threshold, self.pass_)
        action = 1 if p.total <= self.threshold else 0
        return Step(action, flags, p, self.threshold, self.pass_)

    def _progress(self, total, now):
        if self.best is None or total < self.best * 0.96:
            self.best, self.no_progress = total, 0
            return
        self.no_progress += 1
        if self.no_progress >= 5 and not self.stalled:
            self.stalled = True
            self._emit("MIGRATION_STALL", {"remaining": total})
            mx = self.parameters.get("auto-downtime-max", 0)
            rec = int(self._expected() * 1.1)
            if mx and rec <= mx:
                self.parameters["downtime-limit"] = rec
                self.update_counters_threshold()

    def update_counters_threshold(self):
        self.threshold = int(self.bw / 1000.0 * self.parameters["downtime-limit"])

    def _expected(self):
        if self.pass_ <= 1:
            return self.parameters["downtime-limit"]
        if self.bw <= 0:
            return INT64_MAX
        v = self.last_sync / self.bw * 1000
        return INT64_MAX if v >= 2**63 else int(v)

    def switchover_begin(self, now):
        self._set_status(4)
        self.stop_ms = now
        return True, self._query(True, True)

    def postcopy_request(self):
        self.parameters["postcopy-requested"] = True

    def postcopy_start(self, now):
        self._set_status(5)

    def complete(self, now):
        self.end = now
        if self.stop_ms is not None:
            self.downtime = now - self.stop_ms
        self._set_status(6)

    def cancel(self, now):
        self._set_status(8)

    def info(self, now):
        return Info(self.status, self._expected(), getattr(self, "mbps", 0.0), self.pass_,
                    self.transferred, (self.end if self.end is not None else now) - self.start,
                    self.downtime, self.stalled)

    def advice(self, now):
        exp = self._expected()
        rec = int(exp * 1.1) if exp < INT64_MAX and exp > self.parameters["downtime-limit"] else 0
        mx = self.parameters.get("auto-downtime-max", 0)
        return types.SimpleNamespace(
            stalled=self.stalled, beyond_max=bool(mx and rec > mx),
            passes_since_progress=self.no_progress, expected_downtime_ms=exp,
            recommended_downtime_ms=rec)

    def info_migrate(self, now):
        return f"Status: \t\t{STATUS_NAMES[self.status]}\n"


STATUS_NAMES = ["none", "setup", "active", "pre-switchover", "device", "postcopy-active",
                "completed", "cancelling", "cancelled", "failed"]


class FakeRam:
    def __init__(self, s, total, page_size=4096, sync_dirty=None):
        self.page, self.sync, self.dirty = page_size, sync_dirty, 0
        self.s = s
        s.handlers.append(self)

    def query(self, exact, final):
        if exact and self.sync:
            self.dirty = self.sync()[0]
        b = self.dirty * self.page
        return Pending(postcopy=b) if self.s.capabilities.get("postcopy-ram") else Pending(precopy=b)

    def set_dirty_pages(self, n):
        self.dirty = n

    def record_sent(self, normal, zero):
        self.dirty = max(0, self.dirty - normal - zero)

    def close(self):
        pass


class FakeVfio:
    def __init__(self, s, name, query_stop_copy_size, query_precopy_info):
        self.sc, self.pi = query_stop_copy_size, query_precopy_info
        self.stop = self.init = self.dirty = 0
        self.state = 2
        self.s, self.name = s, name
        s.handlers.append(self)

    def _read(self):
        try:
            self.stop = min(self.sc(), INT64_MAX)
        except OSError:
            self.stop = 100 << 30
        if self.state in (6, 7):
            try:
                i, d = self.pi()
                self.init, self.dirty = min(i, INT64_MAX), min(d, INT64_MAX)
            except OSError:
                self.init = self.dirty = 0

    def query(self, exact, final):
        if exact and not final:
            self._read()
        pre = min(self.init + self.dirty, INT64_MAX)
        return Pending(precopy=pre, stopcopy=max(self.stop - pre, 0))

    def refresh(self):
        self._read()

    def set_state(self, st):
        self.state = st

    def record_read(self, n):
        if n == 0:
            self.init = self.dirty = 0
            return
        take = min(n, self.stop)
        self.stop -= take
        t = min(n, self.init)
        self.init -= t
        self.dirty = max(0, self.dirty - (n - t))

    def close(self):
        pass


def fake_module():
    return types.SimpleNamespace(
        Session=FakeSession, Ram=FakeRam, Vfio=FakeVfio, SwitchoverError=SwitchoverError,
        ACTION_ITERATE=0, ACTION_SWITCHOVER=1, ACTION_START_POSTCOPY=2, ACTION_COMPLETE=3,
        ACTION_WAIT=4, STATUS_NONE=0, STATUS_SETUP=1, STATUS_ACTIVE=2, STATUS_PRE_SWITCHOVER=3,
        STATUS_DEVICE=4, STATUS_POSTCOPY_ACTIVE=5, STATUS_COMPLETED=6, STATUS_CANCELLING=7,
        STATUS_CANCELLED=8, STATUS_FAILED=9, VFIO_RUNNING=2, VFIO_STOP_COPY=3, VFIO_PRE_COPY=6)


def test_fake_threshold_follows_the_100ms_window_rule():
    s = FakeSession()
    s.setup_done(0)
    s.record_transferred(1_000_000)
    s.update_counters(99)
    assert s.threshold == 0
    s.update_counters(100)
    assert s.threshold == 3_000_000
