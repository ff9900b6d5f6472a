"""What the RAM and VFIO models share: a handle owned by a Session, calls counted in flight
so :meth:`close` waits for them, callbacks kept alive until the C handle is freed."""
from __future__ import annotations

import threading
import weakref
from typing import Any, Optional

from . import _native
from .session import Session, _InUse, _is_inside


class Model:
    """Base of :class:`~switchover.Ram` and :class:`~switchover.Vfio`."""

    #: The name of the C function freeing the handle (``swo_ram_free`` / ``swo_vfio_free``).
    _FREE: str

    def __init__(self, session: Session):
        if not isinstance(session, Session):
            raise TypeError(f"session must be a switchover.Session, not "
                            f"{type(session).__name__}")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._handle: Any = None
        self._keepalive: Optional[tuple] = None
        self._session = weakref.ref(session)
        self._session_key = id(session)

    def _created(self, session: Session, handle: Any, keepalive: tuple) -> None:
        """Called by the subclass right after the C constructor succeeded, still inside the
        session's ``_use()``: the session now keeps this model alive until closed."""
        self._handle = handle
        self._keepalive = keepalive
        session._attach(self)

    def _use(self) -> _InUse:
        return _InUse(self)

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def session(self) -> Optional[Session]:
        return self._session()

    def close(self) -> None:
        """Unregisters the model and frees it, waiting until none of its callbacks runs (the
        callables are released afterwards). Idempotent. From inside a callback of the same
        session it raises :class:`RuntimeError` (it would wait for itself)."""
        with self._lock:
            if self._handle is None:
                return
            if _is_inside(self._session_key):
                raise RuntimeError(f"{type(self).__name__}.close() called from a callback of "
                                   "its session; it would wait for itself")
            handle, self._handle = self._handle, None
            while self._inflight:
                self._idle.wait()
        getattr(_native.lib, self._FREE)(handle)
        self._keepalive = None
        session = self._session()
        if session is not None:
            session._detach(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) is not None:
                self.close()
        except Exception:  # interpreter shutdown or a half-built object: nothing to do
            pass
