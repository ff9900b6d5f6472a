"""Sessions, handlers, the VMM's hooks and the events the library delivers."""
from __future__ import annotations

import ctypes
import errno
import json
import logging
import operator
import threading
import weakref
from collections import deque
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import _native
from ._native import (INT_MAX, INT_MIN, UINT32_MAX, UINT64_MAX, HandlerFlag, SwoHandlerOps,
                      SwoPending, SwoVmmOps)
from .engine import EngineCalls
from .errors import check, read_text
from .figures import Pending, _saturating_sum

log = logging.getLogger("switchover")

__all__ = ["Pending", "Handler", "Session", "UNKNOWN_STOP_COPY", "KEEP_EVENTS"]

#: How many of the most recent events a :class:`Session` keeps in :attr:`Session.events` by
#: default: every event of a migration with a few hundred passes (``MIGRATION_PASS`` is one
#: per pass with the ``events`` capability), a bounded amount of memory for a longer one.
KEEP_EVENTS = 1000


#: What a handler may return: a Pending, a (precopy, stopcopy, postcopy) tuple, a dict with
#: those keys (missing ones are 0), or None for nothing pending.
PendingLike = Union[Pending, Tuple[int, int, int], Mapping[str, int], None]

_BUCKETS = ("precopy", "stopcopy", "postcopy")


def _bucket(value: Any, what: str) -> int:
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{what} is negative ({value})")
    return min(value, UINT64_MAX)  # the library saturates garbage sizes; so do we


def _figures(result: PendingLike) -> Tuple[int, int, int]:
    """The three buckets of a handler's result."""
    if result is None:
        return (0, 0, 0)
    if isinstance(result, Pending):
        values = (result.precopy, result.stopcopy, result.postcopy)
    elif isinstance(result, Mapping):
        values = [0, 0, 0]
        for key, value in result.items():
            name = key[:-6] if isinstance(key, str) and key.endswith("_bytes") else key
            if name not in _BUCKETS:
                raise ValueError(f"unknown pending bucket {key!r}; expected one of "
                                 f"{', '.join(_BUCKETS)}")
            values[_BUCKETS.index(name)] = value
    elif isinstance(result, (tuple, list)):
        if len(result) != 3:
            raise ValueError(f"a pending tuple has 3 items (precopy, stopcopy, postcopy), "
                             f"not {len(result)}")
        values = result
    else:
        raise TypeError(f"a handler returns Pending, a 3-tuple, a dict or None, not "
                        f"{type(result).__name__}")
    return tuple(_bucket(v, name) for v, name in zip(values, _BUCKETS))  # type: ignore


#: The stop-copy bytes a handler counts when it fails before it ever answered: what QEMU
#: assumes for a VFIO device whose stop-copy size cannot be read (100 GiB), large enough
#: that no realistic threshold lets the migration switch over on it.
UNKNOWN_STOP_COPY = 100 << 30


class _LastAnswer:
    """A handler's last successful figures: what it counts again when it fails."""

    __slots__ = ("figures", "failing")

    def __init__(self) -> None:
        self.figures: Tuple[int, int, int] = (0, UNKNOWN_STOP_COPY, 0)
        self.failing = False  # only the first failure of a run is logged with its traceback

    def succeeded(self, figures: Tuple[int, int, int]) -> Tuple[int, int, int]:
        # Several threads may query at once: each assignment is atomic, and any recent
        # successful answer is a sound fallback.
        self.figures, self.failing = figures, False
        return figures

    def failed(self, label: str) -> Tuple[int, int, int]:
        """Called inside the ``except`` block: logs and returns the figures to count."""
        figures = self.figures
        if self.failing:
            log.debug("save_query_pending of handler %s failed again; counted %s again",
                      label, figures, exc_info=True)
        else:
            self.failing = True
            log.exception("save_query_pending of handler %s failed; counted as its last "
                          "answer (precopy, stopcopy, postcopy) = %s until it answers",
                          label, figures)
        return figures


# Which sessions' callbacks the current thread is running (close() from inside one of
# them would wait for itself).
_inside = threading.local()


def _enter(session_key: int) -> None:
    stack = getattr(_inside, "stack", None)
    if stack is None:
        stack = _inside.stack = []
    stack.append(session_key)


def _leave(session_key: int) -> None:
    _inside.stack.remove(session_key)


def _is_inside(session_key: int) -> bool:
    return session_key in getattr(_inside, "stack", ())


class Handler:
    """A registered pending-data handler. Its callbacks stay alive until
    :meth:`unregister` (or the session's :meth:`Session.close`) returns; a ``with`` block
    unregisters it on exit."""

    def __init__(self, session: "Session", handler_id: int, idstr: str, instance_id: int,
                 flags: HandlerFlag, keepalive: tuple):
        self._session = weakref.ref(session)
        self.id = handler_id
        self.idstr = idstr
        self.instance_id = instance_id
        self.flags = flags
        self._keepalive: Optional[tuple] = keepalive
        # Makes "still registered? then unregister" one step: two threads unregistering at
        # once must not both reach the library (the second would get SWO_ERR_NOT_FOUND).
        self._unregistering = threading.Lock()

    @property
    def registered(self) -> bool:
        return self._keepalive is not None

    def unregister(self) -> None:
        """Unregisters the handler; once this returns no callback of it runs or starts.
        Calling it again, or after the session closed, does nothing. From inside a callback
        of the same session it raises ``SwitchoverError`` (``SWO_ERR_REENTRANT``). Several
        threads may call it at once: one unregisters, the others wait until it is done and
        return."""
        session = self._session()
        if session is None or session.closed or not self.registered:
            self._keepalive = None
            return
        if _is_inside(id(session)):
            # Never wait for the lock here: its holder may be waiting for this very callback
            # to return. The library refuses the call (SWO_ERR_REENTRANT).
            session._unregister(self)
            return
        with self._unregistering:
            if not self.registered:  # another thread unregistered it meanwhile
                return
            try:
                session._unregister(self)
            except ValueError:
                if not session.closed:
                    raise
                self._keepalive = None  # the session closed meanwhile, taking the handler

    def _release(self) -> None:
        self._keepalive = None

    def __enter__(self) -> "Handler":
        return self

    def __exit__(self, *exc) -> None:
        self.unregister()

    def __repr__(self) -> str:
        state = "registered" if self.registered else "unregistered"
        return (f"<switchover.Handler {self.idstr!r} instance {self.instance_id} "
                f"id {self.id} {state}>")


def _errno_result(value: Any, what: str) -> int:
    """A VMM hook's result as the C int it returns: 0 (None counts as 0) or -errno."""
    if value is None:
        return 0
    value = operator.index(value)
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"{what} returned {value}, which is no C int")
    return value


class _Vmm:
    """The VMM hooks of one session and the events delivered to it. The C trampolines are
    made once and live as long as the session; they call whatever Python callables are
    installed at the time. They hold no reference to the Session (no cycle)."""

    def __init__(self, session_key: int, keep_events: Optional[int]):
        self.key = session_key
        self.lock = threading.Lock()
        self.vm_stop: Optional[Callable[[], Optional[int]]] = None
        self.vm_resume: Optional[Callable[[], Optional[int]]] = None
        self.event: Optional[Callable[[dict], Any]] = None
        self.events: deque = deque(maxlen=keep_events)
        self.dropped = 0  # events pushed out of `events` by newer ones
        self.c_vm_stop = _native.SwoVmOpFn(self._c_vm_stop)
        self.c_vm_resume = _native.SwoVmOpFn(self._c_vm_resume)
        self.c_event = _native.SwoEventFn(self._c_event)

    def ops(self) -> SwoVmmOps:
        """The C ops for the callables installed now: NULL where none is (without vm_stop
        the library never stops the guest itself). The event hook is always installed, so
        every event is kept in :attr:`events` (the most recent ``keep_events``)."""
        ops = SwoVmmOps(ctypes.sizeof(SwoVmmOps), 0)
        if self.vm_stop is not None:
            ops.vm_stop = self.c_vm_stop
        if self.vm_resume is not None:
            ops.vm_resume = self.c_vm_resume
        ops.event = self.c_event
        return ops

    def _vm_op(self, fn: Optional[Callable[[], Optional[int]]], what: str) -> int:
        if fn is None:  # uninstalled while the library was calling it
            return 0
        _enter(self.key)
        try:
            return _errno_result(fn(), what)
        except Exception:
            log.exception("%s raised; reported to the library as -EIO", what)
            return -errno.EIO
        finally:
            _leave(self.key)

    def _c_vm_stop(self, _opaque) -> int:
        return self._vm_op(self.vm_stop, "vm_stop")

    def _c_vm_resume(self, _opaque) -> int:
        return self._vm_op(self.vm_resume, "vm_resume")

    def _c_event(self, _opaque, text) -> None:
        _enter(self.key)
        try:
            raw = text.decode("utf-8", errors="replace") if text is not None else ""
            try:
                event = json.loads(raw)
            except ValueError:
                log.error("the library delivered an event that is not JSON: %r", raw)
                event = {"event": None, "raw": raw}
            with self.lock:
                if len(self.events) == self.events.maxlen:
                    self.dropped += 1
                self.events.append(event)
            callback = self.event
            if callback is not None:
                callback(event)
        except Exception:
            log.exception("the event callback raised; event kept in Session.events")
        finally:
            _leave(self.key)


class Session(EngineCalls):
    """One outgoing migration: its handlers, parameters, capabilities, the VMM's hooks, the
    migration lifecycle and its reports (the lifecycle calls come from
    :class:`~switchover.engine.EngineCalls`).

    Use it as a context manager, or call :meth:`close`. Its methods may be called from any
    thread; :meth:`close` waits until calls running on other threads are done. RAM and VFIO
    models created on it (:class:`~switchover.Ram`, :class:`~switchover.Vfio`) are kept
    alive by it and closed by :meth:`close` before the session is freed.

    ``keep_events`` bounds :attr:`events`: the session keeps the most recent ``keep_events``
    events (default :data:`KEEP_EVENTS`, 1000), so a long migration with the ``events``
    capability (one ``MIGRATION_PASS`` per pass) does not grow without bound. ``0`` keeps
    none (an event callback sees them all anyway); ``None`` keeps every event.
    """

    def __init__(self, keep_events: Optional[int] = KEEP_EVENTS) -> None:
        if keep_events is not None:
            keep_events = operator.index(keep_events)
            if keep_events < 0:
                raise ValueError(f"keep_events is negative ({keep_events})")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._handlers: Dict[int, Handler] = {}
        self._models: List[Any] = []
        self._handle = None
        self._vmm = _Vmm(id(self), keep_events)
        handle = _native.SessionP()
        check(_native.lib.swo_session_new(ctypes.byref(handle)))
        self._handle = handle
        try:
            self._install_vmm_ops()
        except BaseException:
            self.close()
            raise

    # -- lifetime -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _use(self) -> "_InUse":
        return _InUse(self)

    def close(self) -> None:
        """Unregisters every handler and frees the session. Idempotent."""
        with self._lock:
            if self._handle is None:
                return
            if _is_inside(id(self)):
                raise RuntimeError("Session.close() called from one of its own callbacks; "
                                   "it would wait for itself")
            handle, self._handle = self._handle, None  # new calls now fail
            while self._inflight:
                self._idle.wait()
            handlers = list(self._handlers.values())
            self._handlers.clear()
            models, self._models = self._models, []
        for model in reversed(models):  # each waits for its own calls and callbacks
            model.close()
        _native.lib.swo_session_free(handle)  # unregisters, waiting for running callbacks
        for h in handlers:
            h._release()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) is not None and _native is not None:
                self.close()
        except Exception:  # interpreter shutdown or a half-built object: nothing to do
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._handlers)} handler(s)"
        return f"<switchover.Session {state}>"

    # -- RAM and VFIO models (they attach themselves) ----------------------------------------

    def _attach(self, model: Any) -> None:
        with self._lock:
            self._models.append(model)

    def _detach(self, model: Any) -> None:
        with self._lock:
            if model in self._models:
                self._models.remove(model)

    @property
    def models(self) -> list:
        """The open :class:`~switchover.Ram` and :class:`~switchover.Vfio` models of this
        session, in creation order."""
        with self._lock:
            return list(self._models)

    # -- VMM hooks and events ----------------------------------------------------------------

    def _install_vmm_ops(self) -> None:
        ops = self._vmm.ops()
        with self._use() as h:
            check(_native.lib.swo_session_set_vmm_ops(h, ctypes.byref(ops), None))

    def set_vmm_ops(self, vm_stop: Optional[Callable[[], Optional[int]]] = None,
                    vm_resume: Optional[Callable[[], Optional[int]]] = None,
                    event: Optional[Callable[[dict], Any]] = None) -> None:
        """Installs the VMM's hooks, replacing earlier ones (``None`` removes one).

        ``vm_stop()`` / ``vm_resume()`` return 0 (or None) once done, or ``-errno``; without
        them the library never stops the guest itself. ``event(dict)`` receives each event
        parsed from its QMP JSON. They may be called from any thread that calls into the
        session. An exception inside a hook is logged (logger ``switchover``): ``vm_stop`` and
        ``vm_resume`` then return ``-EIO``; the event stays in :attr:`events`.
        """
        for name, fn in (("vm_stop", vm_stop), ("vm_resume", vm_resume), ("event", event)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None")
        vmm = self._vmm
        # Install the Python callables first: a hook the library calls from now on finds
        # them. A hook being removed answers 0 if the library still calls it meanwhile.
        vmm.vm_stop, vmm.vm_resume, vmm.event = vm_stop, vm_resume, event
        self._install_vmm_ops()

    @property
    def events(self) -> List[dict]:
        """The most recent events the library delivered (at most ``keep_events``, see
        :class:`Session`), oldest first, parsed from JSON (``{"timestamp": ..., "event":
        "MIGRATION", "data": {...}}``); also kept when an event callback is set. A copy:
        later events do not change it."""
        with self._vmm.lock:
            return list(self._vmm.events)

    @property
    def events_dropped(self) -> int:
        """How many events :attr:`events` no longer holds because newer ones pushed them
        out (``keep_events``); :meth:`clear_events` does not count."""
        with self._vmm.lock:
            return self._vmm.dropped

    def clear_events(self) -> None:
        """Forgets the events kept so far."""
        with self._vmm.lock:
            self._vmm.events.clear()

    def events_named(self, name: str) -> List[dict]:
        """The ``data`` of every kept event called ``name``, in order."""
        return [e.get("data", {}) for e in self.events if e.get("event") == name]

    # -- handlers -------------------------------------------------------------------------

    @property
    def handlers(self) -> list:
        """The handlers registered through this object, in registration order."""
        with self._lock:
            return list(self._handlers.values())

    def register_handler(self, idstr: str, handler: Any, instance_id: int = 0,
                         flags: int = HandlerFlag.NONE,
                         is_active: Optional[Callable[[], bool]] = None) -> Handler:
        """Registers a pending-data handler under ``idstr`` + ``instance_id`` (unique).

        ``handler`` is a callable ``(exact, final) -> Pending | (pre, stop, post) | dict |
        None`` or an object with such a ``save_query_pending(exact, final)`` method and an
        optional ``is_active()``. It may be called from any thread that queries.

        A failing handler never under-counts (an under-count lets the migration switch over
        with state the downtime does not cover). When ``save_query_pending`` raises or
        returns something that is no pending figure, the handler counts its last successful
        answer (of any query kind) again, or, before it ever answered,
        :data:`UNKNOWN_STOP_COPY` bytes of stop-copy data: the 100 GiB QEMU assumes for a
        VFIO device whose size cannot be read. When ``is_active`` raises, the handler counts
        as active and is queried. Each failure is logged (logger ``switchover``): the first
        of a run of failures with its traceback at ERROR, the repeats at DEBUG.
        """
        if not isinstance(idstr, str):
            raise TypeError(f"idstr must be a str, not {type(idstr).__name__}")
        if "\0" in idstr:
            raise ValueError("idstr must not contain NUL")
        instance_id = operator.index(instance_id)
        if not 0 <= instance_id <= UINT32_MAX:
            raise ValueError(f"instance_id {instance_id} is outside 0..2**32-1")
        flags = operator.index(flags)
        if not 0 <= flags <= UINT32_MAX:
            raise ValueError(f"flags {flags:#x} do not fit in 32 bits")

        query = getattr(handler, "save_query_pending", None)
        if query is not None:
            if is_active is None:
                is_active = getattr(handler, "is_active", None)
        elif callable(handler):
            query = handler
        else:
            raise TypeError("handler must be callable or have a save_query_pending method")
        if not callable(query) or (is_active is not None and not callable(is_active)):
            raise TypeError("save_query_pending and is_active must be callable")

        key = id(self)
        label = f"{idstr!r} instance {instance_id}"
        answers = _LastAnswer()

        def c_query(_opaque, pending, exact, final):
            _enter(key)
            try:
                pre, stop, post = answers.succeeded(_figures(query(bool(exact), bool(final))))
            except Exception:
                pre, stop, post = answers.failed(label)
            finally:
                _leave(key)
            p = pending.contents
            p.precopy_bytes = _saturating_sum(p.precopy_bytes, pre)
            p.stopcopy_bytes = _saturating_sum(p.stopcopy_bytes, stop)
            p.postcopy_bytes = _saturating_sum(p.postcopy_bytes, post)

        c_query_fn = _native.SwoQueryPendingFn(c_query)
        ops = SwoHandlerOps(ctypes.sizeof(SwoHandlerOps), flags, c_query_fn)
        c_active_fn = None
        if is_active is not None:
            def c_active(_opaque):
                _enter(key)
                try:
                    return bool(is_active())
                except Exception:
                    # Skipping it would drop its state from the decision: query it instead.
                    log.exception("is_active of handler %s raised; counted as active", label)
                    return True
                finally:
                    _leave(key)

            c_active_fn = _native.SwoIsActiveFn(c_active)
            ops.is_active = c_active_fn

        out = ctypes.c_uint64(0)
        with self._use() as h:
            # The callbacks may run as soon as the C call registers them, before it returns:
            # this frame keeps them alive until the Handler holds them.
            check(_native.lib.swo_register_handler(h, idstr.encode(), instance_id,
                                                   ctypes.byref(ops), None,
                                                   ctypes.byref(out)))
            handle = Handler(self, out.value, idstr, instance_id, HandlerFlag(flags),
                             (ops, c_query_fn, c_active_fn, handler, query, is_active))
            with self._lock:
                self._handlers[handle.id] = handle
        return handle

    def _unregister(self, handler: Handler) -> None:
        with self._use() as h:
            check(_native.lib.swo_unregister_handler(h, handler.id))
            with self._lock:
                self._handlers.pop(handler.id, None)
        handler._release()  # no callback runs or starts any more

    def query_pending(self, exact: bool = False) -> Pending:
        """Asks every active handler; returns the saturating sums. The total becomes the
        session's system-wide remaining."""
        out = SwoPending()
        with self._use() as h:
            check(_native.lib.swo_query_pending(h, bool(exact), ctypes.byref(out)))
        return Pending._from_c(out)

    # -- parameters and capabilities --------------------------------------------------------

    def set_parameter(self, name: str, value: Union[str, int, bool]) -> None:
        """Sets one parameter. A ``str`` value follows HMP's rules (``migrate_set_parameter``:
        sizes parsed like QEMU, MiB by default, so ``"100"`` is 100 MiB); an ``int`` or
        ``bool`` is taken as is (QMP rules: an int size is bytes)."""
        if isinstance(value, str):
            with self._use() as h:
                check(_native.lib.swo_set_parameter(h, _c_text(name, "name"),
                                                    _c_text(value, "value")))
        elif isinstance(value, int):
            self.set_parameters({name: value})
        else:
            raise TypeError(f"a parameter value is a str (HMP) or an int, not "
                            f"{type(value).__name__}")

    def set_parameters(self, params: Mapping[str, Any]) -> None:
        """QMP ``migrate-set-parameters``: merges ``params`` over the current set, validates
        the result, and applies all or nothing."""
        text = json.dumps(dict(params))
        with self._use() as h:
            check(_native.lib.swo_set_parameters_json(h, text.encode()))

    @property
    def parameters(self) -> Dict[str, Any]:
        """QMP ``query-migrate-parameters`` as a dict (sizes in bytes, times in ms)."""
        with self._use() as h:
            return json.loads(read_text(_native.lib.swo_query_parameters_json, h))

    def set_capability(self, name: str, on: bool = True) -> None:
        """Turns one migration capability on or off (``events``, ``postcopy-ram``, ...)."""
        with self._use() as h:
            check(_native.lib.swo_set_capability(h, _c_text(name, "name"), bool(on)))

    @property
    def capabilities(self) -> Dict[str, bool]:
        """Every capability and whether it is on."""
        with self._use() as h:
            data = json.loads(read_text(_native.lib.swo_query_capabilities_json, h))
        if isinstance(data, list):  # QMP query-migrate-capabilities shape
            return {item["capability"]: bool(item["state"]) for item in data}
        return {name: bool(state) for name, state in data.items()}


def _c_text(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} must not contain NUL")
    return text.encode()


class _InUse:
    """Counts a call in flight so close() waits for it; refuses calls on a closed session (or
    a closed model: anything with ``_lock``, ``_idle``, ``_inflight`` and ``_handle``)."""

    __slots__ = ("session",)

    def __init__(self, session: Any):
        self.session = session

    def __enter__(self):
        s = self.session
        with s._lock:
            if s._handle is None:
                raise ValueError(f"I/O operation on a closed switchover."
                                 f"{type(s).__name__}")
            s._inflight += 1
            return s._handle

    def __exit__(self, *exc) -> None:
        s = self.session
        with s._lock:
            s._inflight -= 1
            if s._inflight == 0:
                s._idle.notify_all()
