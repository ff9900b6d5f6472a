"""The simulation loop: the library's own decisions against the model, in simulated time.

One tick is one pass of QEMU's migration thread: ``iteration_step`` (the library queries the
RAM and VFIO models and decides), then the sender moves what the link allows for one tick
while the guest keeps dirtying memory, then ``update_counters``. When the step says
SWITCHOVER the guest stops, ``switchover_begin`` runs the final query, and the real downtime
is simulated from what is truly left and the real stopped-guest throughput: not from the
library's estimate, so the two can be compared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .model import Device, GuestRam, Link
from .scenario import Action, Scenario
from .units import INT64_MAX, fmt_size



@dataclass
class PassRecord:
    """One printed line: a dirty-sync pass, or a tick where something happened."""
    t_ms: int
    pass_: int
    remaining: int
    threshold: int
    expected_downtime_ms: int
    limit_ms: int
    mbps: float
    action: str
    notes: list[str] = field(default_factory=list)
    hmp: str | None = None
    #: The library's ETA (x-switchover ``eta``, ms until the switchover); None = never.
    eta_ms: int | None = None
    reason: str = ""          # the step's reason (swo_reason_name), "" from older bindings


@dataclass
class SimEvent:
    t_ms: int
    kind: str          # "library" (an event the library emitted), "operator", "sim"
    name: str
    text: str
    data: dict = field(default_factory=dict)


@dataclass
class Result:
    scenario: str
    seed: int
    outcome: str = "not converged"       # completed | not converged | cancelled | failed
    converged: bool = False
    end_ms: int = 0                        # simulated time when the run ended
    total_time_ms: int | None = None       # library's total-time at the end
    switchover_at_ms: int | None = None
    postcopy: bool = False
    predicted_downtime_ms: int | None = None   # library's expected downtime when it switched
    library_downtime_ms: int | None = None     # library's downtime figure after completion
    simulated_downtime_ms: int | None = None   # stop -> complete (or postcopy start), modelled
    downtime_limit_ms: int = 0                 # the limit in force at switchover (or the end)
    limit_respected: bool | None = None
    final_pending: dict | None = None
    passes: int = 0
    stalls: int = 0
    first_stall_ms: int | None = None
    adjustments: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    rollbacks: int = 0
    forced: bool = False                       # a deadline or stall action forced it
    policy_action: str | None = None           # the deadline or stall action taken
    measured_switchover_bw: float | None = None  # library: bytes sent stopped / downtime
    transferred_bytes: int = 0
    advice: dict | None = None
    records: list[PassRecord] = field(default_factory=list)
    events: list[SimEvent] = field(default_factory=list)
    # (t_ms, remaining, threshold) per tick, and (t_ms, expected downtime, limit) per pass
    timeline: list[tuple[int, int, int]] = field(default_factory=list)
    downtime_series: list[tuple[int, int, int]] = field(default_factory=list)


def engine_available(so: Any | None = None) -> bool:
    """True when ``so`` (default: the ``switchover`` package) has what this loop drives."""
    if so is None:
        return default_bindings() is not None
    session = getattr(so, "Session", None)
    return all(hasattr(so, n) for n in ("Ram", "Vfio")) and session is not None and all(
        hasattr(session, n) for n in ("iteration_step", "switchover_begin", "update_counters"))


def default_bindings() -> Any | None:
    """The ``switchover`` package, when it loads and has the engine, RAM and VFIO bindings."""
    try:
        import switchover
    except (ImportError, OSError):
        return None
    return switchover if engine_available(switchover) else None


class Simulation:
    """Runs one scenario against the library (``so`` is the ``switchover`` module)."""

    def __init__(self, scenario: Scenario, *, so: Any | None = None, hmp: bool = False,
                 every_s: float = 1.0, seed: int | None = None,
                 max_time_s: float | None = None,
                 progress: Callable[[float], None] | None = None):
        if so is None:
            so = default_bindings()
        if so is None or not engine_available(so):
            raise RuntimeError("the switchover bindings lack the engine, RAM or VFIO parts "
                               "(Session.iteration_step, Ram, Vfio); build the full library")
        self.so = so
        self.sc = scenario
        self.hmp = hmp
        self.every_ms = max(0, int(every_s * 1000))
        self.seed = scenario.seed if seed is None else seed
        self.max_ms = int((scenario.max_time_s if max_time_s is None else max_time_s) * 1000)
        self.progress = progress
        self.tick = scenario.tick_ms
        self.ram = GuestRam(scenario.ram)
        self.devices = [Device(d) for d in scenario.devices]
        self.link = Link(scenario.link, self.seed)
        self.res = Result(scenario=scenario.name, seed=self.seed)
        self.now = 0
        self._frac = 0.0
        self._notes: list[str] = []
        self._params_dirty = True
        self._params: dict = {}
        self._last_print = -10**9
        self._last_pass = 0
        self._event_count = 0

    # -- library callbacks -------------------------------------------------------------
    def _vm_stop(self) -> int:
        self._set_running(False)
        return 0

    def _vm_resume(self) -> int:
        self._set_running(True)
        return 0

    def _on_event(self, ev: dict) -> None:
        name = str(ev.get("event", "?"))
        data = ev.get("data") or {}
        if name == "MIGRATION_PASS":
            return
        self._params_dirty = True
        text = _event_text(name, data)
        self.res.events.append(SimEvent(self.now, "library", name, text, data))
        if name == "MIGRATION_STALL":
            self.res.stalls += 1
            if self.res.first_stall_ms is None:
                self.res.first_stall_ms = self.now
        if "WARN" in name.upper():
            self.res.warnings.append({"t_ms": self.now, "event": name, "data": data})
        if name != "MIGRATION":
            self._notes.append(text)

    def _set_running(self, running: bool) -> None:
        self.ram.running = running
        for d in self.devices:
            d.running = running

    # -- helpers -----------------------------------------------------------------------
    def _parameters(self) -> dict:
        if self._params_dirty:
            self._params = dict(self.s.parameters)
            self._params_dirty = False
        return self._params

    def _limit(self) -> int:
        # The session always reports it (query-migrate-parameters): no default of our own.
        return int(self._parameters()["downtime-limit"])

    def _sim_event(self, kind: str, name: str, text: str, **data: Any) -> None:
        self.res.events.append(SimEvent(self.now, kind, name, text, data))
        self._notes.append(text)

    def _record(self, step: Any, action: str, force: bool = False) -> None:
        new_pass = step.pass_ != self._last_pass
        self._last_pass = step.pass_
        due = self.now - self._last_print >= self.every_ms
        heartbeat = self.now - self._last_print >= max(self.every_ms, 10_000)
        printing = force or bool(self._notes) or (new_pass and due) or heartbeat
        if not (printing or new_pass):
            return
        info = self.s.info(self.now)
        limit = self._limit()
        self.res.downtime_series.append((self.now, info.expected_downtime_ms, limit))
        if not printing:
            return
        self._last_print = self.now
        rec = PassRecord(self.now, step.pass_, step.pending.total, step.threshold,
                         info.expected_downtime_ms, limit, info.mbps, action,
                         self._notes, eta_ms=self._eta(),
                         reason=getattr(step, "reason_name", ""))
        self._notes = []
        if self.hmp:
            rec.hmp = self.s.info_migrate(self.now)
        self.res.records.append(rec)

    def _eta(self) -> int | None:
        """The library's ETA now (``SwoAdvice.eta_ms``); None for never or unknown."""
        return getattr(self.s.advice(self.now), "eta_ms", None)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> Result:
        so = self.so
        with so.Session() as s:
            self.s = s
            self._setup()
            try:
                self._loop()
            finally:
                self._finish()
                for d in self._vfio:
                    d.close()
                self._ram.close()
        return self.res

    def _setup(self) -> None:
        so, s, sc = self.so, self.s, self.sc
        s.set_vmm_ops(vm_stop=self._vm_stop, vm_resume=self._vm_resume, event=self._on_event)
        caps = {"events": True, **sc.capabilities}
        for name, on in caps.items():
            s.set_capability(name, on)
        if sc.params:
            s.set_parameters(dict(sc.params))
        self._ram = so.Ram(s, sc.ram.size, sc.ram.page_size, sync_dirty=self.ram.sync)
        self._vfio = []
        for dev in self.devices:
            v = so.Vfio(s, dev.spec.name, query_stop_copy_size=dev.query_stop_copy_size,
                        query_precopy_info=dev.query_precopy_info)
            v.set_state(so.VFIO_PRE_COPY if dev.spec.supports_precopy else so.VFIO_RUNNING)
            self._vfio.append(v)
            try:
                v.refresh()          # QEMU reads the sizes in save_setup
            except so.SwitchoverError:
                pass                 # a faulty driver: the library warned and clamped
        s.migration_start(0)
        s.setup_done(0)
        self._ram.set_dirty_pages(self.ram.dirty_pages)

    def _loop(self) -> None:
        so, s = self.so, self.s
        actions = list(self.sc.actions)
        while True:
            while actions and actions[0].at_s * 1000 <= self.now:
                if not self._apply(actions.pop(0)):
                    return
            status = s.status
            if status in (so.STATUS_COMPLETED, so.STATUS_CANCELLED, so.STATUS_FAILED,
                          so.STATUS_CANCELLING):
                return
            if self.now >= self.max_ms:
                self._sim_event("sim", "GAVE_UP", f"no switchover within {self.max_ms / 1000:g} s")
                return
            step = s.iteration_step(self.now)
            self.res.timeline.append((self.now, step.pending.total, step.threshold))
            action = step.action
            name = _action_name(so, action)
            if getattr(step, "forced", False):
                self.res.forced = True
                self._notes.append(f"forced: {name} over the downtime-limit")
            if action == getattr(so, "ACTION_CANCELLED", None):
                self._record(step, name, force=True)
                self._sim_event("sim", "CANCELLED", "the library cancelled the migration")
                return
            if action == so.ACTION_SWITCHOVER:
                self._record(step, name, force=True)
                if self._switchover(step):
                    return
            elif action == so.ACTION_START_POSTCOPY:
                self._record(step, name, force=True)
                self._postcopy_start()
            elif action == so.ACTION_COMPLETE:
                self._record(step, name, force=True)
                s.complete(self.now)
                self._sim_event("sim", "COMPLETE", "postcopy drained, migration complete")
                return
            else:
                self._record(step, name)
            self._send_tick()
            if self.progress:
                self.progress(min(1.0, self.now / self.max_ms))

    def _apply(self, a: Action) -> bool:
        """Performs an operator action; false when it ends the migration."""
        so, s = self.so, self.s
        self._sim_event("operator", "ACTION", f"operator: {a.describe()}", set=dict(a.set),
                        capabilities=dict(a.capabilities))
        self._params_dirty = True
        try:
            if a.set:
                s.set_parameters(dict(a.set))
            for name, on in a.capabilities.items():
                s.set_capability(name, on)
            if a.ack:
                s.set_switchover_acked(True)
            if a.postcopy:
                s.postcopy_request()
        except so.SwitchoverError as e:
            self._sim_event("sim", "REFUSED", f"refused: {e.message}", code=e.name)
        if a.cancel:
            try:
                s.cancel(self.now)
            except so.SwitchoverError as e:
                # QEMU's qmp_migrate_cancel refuses once postcopy runs: the run goes on.
                self._sim_event("sim", "REFUSED", f"refused: {e.message}", code=e.name)
                return True
            self.res.outcome = "cancelled"
            return False
        return True

    def _send_tick(self) -> None:
        """One tick of sending while the guest runs (or runs on the destination)."""
        so, s = self.so, self.s
        postcopy = s.status == so.STATUS_POSTCOPY_ACTIVE
        params = self._parameters()
        cap = float(params.get("max-postcopy-bandwidth" if postcopy else "max-bandwidth", 0))
        budget = self.link.precopy_rate(cap) * self.tick / 1000.0
        sent = 0
        for dev, v in zip(self.devices, self._vfio):
            if dev.precopy_left >= 1 and budget - sent >= 1:
                n = dev.read_precopy(budget - sent)
                if n:
                    v.record_read(n)
                    sent += n
                if dev.precopy_left < 1:
                    v.record_read(0)   # the data fd says: no more precopy data for now
        nbytes, normal, zero = self.ram.send(budget - sent)
        if normal or zero:
            self._ram.record_sent(normal, zero)
        self._frac += sent + nbytes
        whole = int(self._frac)
        self._frac -= whole
        if whole:
            s.record_transferred(whole)
        t_s = self.now / 1000.0
        self.ram.advance(self.tick / 1000.0, t_s)
        for d in self.devices:
            d.advance(self.tick / 1000.0)
        self._ram.set_dirty_pages(self.ram.dirty_pages)
        self.now += self.tick
        s.update_counters(self.now)

    def _stop_guest(self) -> None:
        self._set_running(False)
        for v in self._vfio:
            try:
                v.set_state(self.so.VFIO_STOP_COPY)
            except self.so.SwitchoverError:
                pass

    def _resume_guest(self) -> None:
        self._set_running(True)
        for dev, v in zip(self.devices, self._vfio):
            try:
                v.set_state(self.so.VFIO_PRE_COPY if dev.spec.supports_precopy
                            else self.so.VFIO_RUNNING)
            except self.so.SwitchoverError:
                pass

    def _switchover(self, step: Any) -> bool:
        """The stop: final query, then either the simulated downtime and completion (true)
        or a rollback to active (false)."""
        so, s, res = self.so, self.s, self.res
        info = s.info(self.now)
        predicted = info.expected_downtime_ms
        limit = self._limit()
        stop_at = self.now
        self._stop_guest()
        proceed, final = s.switchover_begin(self.now)
        if not proceed and s.status == so.STATUS_PRE_SWITCHOVER:
            self._sim_event("sim", "CONTINUE", "paused before switchover: migrate-continue")
            s.migrate_continue(so.STATUS_PRE_SWITCHOVER)
            proceed, final = s.switchover_begin(self.now)
        if not proceed:
            res.rollbacks += 1
            self._sim_event("sim", "ROLLBACK",
                            f"switchover stepped back: final total {_size(final.total)}")
            if s.status == so.STATUS_ACTIVE:
                self._resume_guest()
            return False
        res.switchover_at_ms = stop_at
        res.predicted_downtime_ms = predicted
        res.downtime_limit_ms = limit
        res.final_pending = _pending_dict(final)
        self.ram.sync()    # anything written since the final query's sync (normally nothing)
        self._ram.set_dirty_pages(self.ram.dirty_pages)
        end = self._drain(include_ram=True) + self._fixed_ms()
        s.complete(end)
        self.now = end
        res.simulated_downtime_ms = end - stop_at
        res.limit_respected = res.simulated_downtime_ms <= limit
        self._sim_event("sim", "COMPLETE",
                        f"switchover: {res.simulated_downtime_ms} ms of real downtime "
                        f"(library expected {_ms(predicted)}, limit {limit} ms)")
        return True

    def _postcopy_start(self) -> None:
        so, s, res = self.so, self.s, self.res
        predicted = s.info(self.now).expected_downtime_ms
        limit = self._limit()
        stop_at = self.now
        self._stop_guest()
        s.postcopy_start(self.now)
        end = self._drain(include_ram=False) + self._fixed_ms()
        self.now = end
        res.postcopy = True
        res.switchover_at_ms = stop_at
        res.predicted_downtime_ms = predicted
        res.downtime_limit_ms = limit
        res.simulated_downtime_ms = end - stop_at
        res.limit_respected = res.simulated_downtime_ms <= limit
        # The guest now runs on the destination: it no longer dirties the source's RAM.
        self.ram.dirtying = False
        self._set_running(True)
        self._sim_event("sim", "POSTCOPY", f"postcopy started after {res.simulated_downtime_ms} ms "
                        "of downtime; RAM now moves on demand")
        self._params_dirty = True

    def _fixed_ms(self) -> int:
        """The modelled pause that bytes do not explain (``link.switchover_fixed_ms``)."""
        return int(math.ceil(self.sc.link.switchover_fixed_ms))

    def _drain(self, include_ram: bool) -> int:
        """Moves everything the stopped guest leaves behind at the real stopped-guest speed.
        Returns the simulated time the last byte arrives."""
        s = self.s
        t = float(self.now)
        while True:
            rate = self.link.switchover_rate()
            budget = rate * self.tick / 1000.0
            sent = 0
            for dev, v in zip(self.devices, self._vfio):
                if budget - sent >= 1 and dev.stop_copy_length > 0:
                    n = dev.read_stop_copy(budget - sent)
                    if n:
                        v.record_read(n)
                        sent += n
            if include_ram:
                nbytes, normal, zero = self.ram.send(budget - sent)
                if normal or zero:
                    self._ram.record_sent(normal, zero)
                sent += int(nbytes)
            if sent:
                s.record_transferred(sent)
            done = all(d.stop_copy_length < 1 for d in self.devices) and (
                not include_ram or self.ram.dirty_pages == 0)
            if done:
                used_ms = sent / rate * 1000.0 if rate > 0 else 0.0
                end = int(math.ceil(t + used_ms - 1e-9))
                s.update_counters(end)
                return end
            t += self.tick
            s.update_counters(int(t))
            if t - self.now > 7 * 24 * 3600 * 1000:     # a week of downtime: give up
                return int(t)

    def _finish(self) -> None:
        so, s, res = self.so, self.s, self.res
        res.end_ms = self.now
        try:
            info = s.info(self.now)
        except so.SwitchoverError:
            info = None
        status = s.status
        if status == so.STATUS_COMPLETED:
            res.outcome = "completed"
            res.converged = True
        elif status == so.STATUS_FAILED:
            res.outcome = "failed"
        elif status in (so.STATUS_CANCELLED, so.STATUS_CANCELLING):
            res.outcome = "cancelled"
        if info is not None:
            res.passes = info.pass_
            res.transferred_bytes = info.transferred_bytes
            res.total_time_ms = info.total_time_ms
            if res.converged:
                res.library_downtime_ms = info.downtime_ms
            bw = getattr(info, "measured_switchover_bw", 0.0)
            if bw:
                res.measured_switchover_bw = bw
            action = getattr(info, "policy_action", 0)
            if action:
                res.policy_action = so.PolicyAction(action).name.lower().replace("_", "-")
            elif info.stalled and res.stalls == 0:
                res.stalls = 1
        if not res.converged:
            res.downtime_limit_ms = self._limit()
            if status == so.STATUS_ACTIVE:
                try:
                    adv = s.advice(self.now)
                    res.advice = {
                        "stalled": adv.stalled, "beyond_max": adv.beyond_max,
                        "passes_since_progress": adv.passes_since_progress,
                        "expected_downtime_ms": adv.expected_downtime_ms,
                        "recommended_downtime_ms": adv.recommended_downtime_ms}
                except (so.SwitchoverError, AttributeError):
                    pass
        res.adjustments = self._adjustments()

    def _adjustments(self) -> list[dict]:
        """Downtime-limit changes the operator did not make (auto-downtime-max)."""
        out = []
        last = None
        operator_limits = set()
        for a in self.sc.actions:
            if "downtime-limit" in a.set:
                operator_limits.add(int(a.set["downtime-limit"]))
        for t, _exp, limit in self.res.downtime_series:
            if last is not None and limit != last and limit not in operator_limits:
                out.append({"t_ms": t, "from_ms": last, "to_ms": limit})
            last = limit
        return out


def _action_name(so: Any, action: int) -> str:
    names = {so.ACTION_ITERATE: "iterate", so.ACTION_SWITCHOVER: "switchover",
             so.ACTION_START_POSTCOPY: "start-postcopy", so.ACTION_COMPLETE: "complete",
             so.ACTION_WAIT: "wait"}
    if hasattr(so, "ACTION_CANCELLED"):
        names[so.ACTION_CANCELLED] = "cancelled"
    return names.get(action, f"action {action}")


def _pending_dict(p: Any) -> dict:
    return {"precopy": p.precopy, "stopcopy": p.stopcopy, "postcopy": p.postcopy,
            "total": p.total}


def _size(n: int) -> str:
    return fmt_size(n)


def _ms(v: int | None) -> str:
    if v is None:
        return "-"
    return "never" if v >= INT64_MAX else f"{v} ms"


def _event_text(name: str, data: dict) -> str:
    if name == "MIGRATION":
        return f"status {data.get('status', '?')}"
    if name == "MIGRATION_STALL":
        return "stall detected" + (f": {_kv(data)}" if data else "")
    return f"{name}" + (f": {_kv(data)}" if data else "")


# Event members in bytes and in ms (QEMU's names): shown with units, sizes as the pass
# table shows them.
_BYTE_MEMBERS = {"remaining", "best-remaining", "threshold", "allowed"}
_MS_MEMBERS = {"expected-downtime", "downtime-limit", "recommended-downtime",
               "old-downtime-limit", "auto-downtime-max"}


def _kv(data: dict) -> str:
    def show(k: str, v: Any) -> str:
        if k in _BYTE_MEMBERS and isinstance(v, int):
            return _size(v)
        if k in _MS_MEMBERS and isinstance(v, int):
            return _ms(v)
        return str(v)
    return ", ".join(f"{k}={show(k, v)}" for k, v in data.items())
