"""The library's built-in VFIO device model (``swo_vfio_*``): one per assigned device."""
from __future__ import annotations

import ctypes
import errno
import logging
import operator
from typing import Any, Callable, Optional, Tuple

from . import _native
from ._model import Model
from ._native import INT_MIN, UINT64_MAX, SwoVfioOps, SwoVfioSizes, VfioState
from .engine import _u32
from .errors import check
from .figures import VfioSizes
from .session import Session, _enter, _leave

log = logging.getLogger("switchover")

__all__ = ["Vfio"]


def _size(value: Any, what: str) -> int:
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{what} is negative ({value})")
    return min(value, UINT64_MAX)  # garbage the library clamps (to INT64_MAX, with a warning)


def _reader_error(value: int) -> int:
    """A negative result of a reader as the -errno the C reader returns."""
    return value if value >= INT_MIN else -errno.EIO


def _fd(value: Any, what: str, lowest: int) -> int:
    value = operator.index(value)
    if not lowest <= value <= _native.INT_MAX:
        raise ValueError(f"{what} {value} is not a file descriptor")
    return value


class Vfio(Model):
    """A VFIO device model registered as the handler ``name`` (flag ``HANDLER_NO_POSTCOPY``).
    The device starts in ``VFIO_RUNNING``; its stop-copy size is read once at creation.

    ``query_stop_copy_size()`` returns the device's stop-copy estimate in bytes; it signals a
    failure by raising :class:`OSError` (its ``errno``) or returning ``-errno``.
    ``query_precopy_info()`` (optional) returns ``(initial_bytes, dirty_bytes)`` and is called
    only in ``VFIO_PRE_COPY*``. Both run on whichever thread queries or refreshes. Any other
    exception is logged and reported to the library as ``-EIO``, so the documented fallback
    applies (100 GiB stop-copy, precopy 0) with a ``DEVICE_SIZE_WARNING`` event.

    :meth:`from_fd` makes a device whose sizes the library reads itself with the uAPI ioctls.
    """

    _FREE = "swo_vfio_free"

    def __init__(self, session: Session, name: str,
                 query_stop_copy_size: Optional[Callable[[], int]] = None,
                 query_precopy_info: Optional[Callable[[], Tuple[int, int]]] = None, *,
                 _device_fd: Optional[int] = None):
        super().__init__(session)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if "\0" in name:
            raise ValueError("name must not contain NUL")
        self.name = name
        self._state = VfioState.RUNNING
        handle = _native.VfioP()
        if _device_fd is not None:
            if query_stop_copy_size is not None or query_precopy_info is not None:
                raise TypeError("a device read through its fd takes no reader callables")
            device_fd = _fd(_device_fd, "device_fd", 0)
            with session._use() as s:
                check(_native.lib.swo_vfio_new_fd(s, name.encode(), device_fd,
                                                  ctypes.byref(handle)))
                self._created(session, handle, ())
            return
        if not callable(query_stop_copy_size):
            raise TypeError("query_stop_copy_size must be callable")
        if query_precopy_info is not None and not callable(query_precopy_info):
            raise TypeError("query_precopy_info must be callable or None")
        key = self._session_key

        def c_stop_copy(_opaque, stop_copy_length):
            _enter(key)
            try:
                value = operator.index(query_stop_copy_size())
                if value < 0:
                    return _reader_error(value)
                stop_copy_length[0] = min(value, UINT64_MAX)
                return 0
            except OSError as e:
                return -(e.errno or errno.EIO)
            except Exception:
                log.exception("query_stop_copy_size of VFIO device %r raised; reported as -EIO",
                              name)
                return -errno.EIO
            finally:
                _leave(key)

        def c_precopy(_opaque, initial_bytes, dirty_bytes):
            _enter(key)
            try:
                result = query_precopy_info()
                if not isinstance(result, (tuple, list)):
                    value = operator.index(result)
                    if value < 0:
                        return _reader_error(value)
                    raise TypeError("query_precopy_info returns (initial_bytes, dirty_bytes)")
                initial, dirty = result
                initial_bytes[0] = _size(initial, "initial_bytes")
                dirty_bytes[0] = _size(dirty, "dirty_bytes")
                return 0
            except OSError as e:
                return -(e.errno or errno.EIO)
            except Exception:
                log.exception("query_precopy_info of VFIO device %r raised; reported as -EIO",
                              name)
                return -errno.EIO
            finally:
                _leave(key)

        c_stop_fn = _native.SwoVfioStopCopyFn(c_stop_copy)
        c_pre_fn = None
        ops = SwoVfioOps(ctypes.sizeof(SwoVfioOps), 0, c_stop_fn)
        if query_precopy_info is not None:
            c_pre_fn = _native.SwoVfioPrecopyFn(c_precopy)
            ops.query_precopy_info = c_pre_fn
        with session._use() as s:
            # swo_vfio_new reads the stop-copy size before it returns: this frame keeps the
            # callbacks alive until the model holds them.
            check(_native.lib.swo_vfio_new(s, name.encode(), ctypes.byref(ops), None,
                                           ctypes.byref(handle)))
            self._created(session, handle, (ops, c_stop_fn, c_pre_fn, query_stop_copy_size,
                                            query_precopy_info))

    @classmethod
    def from_fd(cls, session: Session, name: str, device_fd: int) -> "Vfio":
        """A device whose sizes the library reads itself: ``VFIO_DEVICE_FEATURE`` (GET |
        MIG_DATA_SIZE) on ``device_fd``, ``VFIO_MIG_GET_PRECOPY_INFO`` on the data fd given
        by :meth:`set_data_fd`. The fds stay the caller's; keep them open until
        :meth:`close`."""
        return cls(session, name, _device_fd=device_fd)

    def set_data_fd(self, data_fd: int) -> None:
        """Sets the migration data fd for ``VFIO_MIG_GET_PRECOPY_INFO`` (-1 unsets it); only
        for a device made by :meth:`from_fd` (else ``SWO_ERR_UNSUPPORTED``)."""
        data_fd = _fd(data_fd, "data_fd", -1)
        with self._use() as h:
            check(_native.lib.swo_vfio_set_data_fd(h, data_fd))

    @property
    def state(self) -> int:
        """The uAPI migration state last set (``VFIO_*``)."""
        return self._state

    def set_state(self, state: int) -> None:
        """Tells the library the device's uAPI migration state (``VFIO_STOP`` ...
        ``VFIO_PRE_COPY_P2P``, 0..7); precopy info is read only in ``VFIO_PRE_COPY*``."""
        state = _u32(state, "state")
        with self._use() as h:
            check(_native.lib.swo_vfio_set_state(h, state))
        self._state = VfioState(state)

    def refresh(self) -> None:
        """Re-reads the sizes now (as an exact, non-final query does). The cache keeps the
        documented figure on every problem, and the problem raises :class:`SwitchoverError`:
        ``SWO_ERR_OUT_OF_RANGE`` (a size above INT64_MAX, clamped), ``SWO_ERR_IO`` (a reader
        failed: stop-copy 100 GiB, precopy 0), ``SWO_ERR_BAD_STATE`` (no precopy reader in
        PRE_COPY*)."""
        with self._use() as h:
            check(_native.lib.swo_vfio_refresh(h))

    def record_read(self, nbytes: int) -> None:
        """Records ``nbytes`` of migration data read from the device; 0 marks the end of
        the precopy data for now (initial and dirty become 0)."""
        nbytes = operator.index(nbytes)
        if not 0 <= nbytes <= UINT64_MAX:
            raise ValueError(f"nbytes {nbytes} is outside 0..2**64-1")
        with self._use() as h:
            check(_native.lib.swo_vfio_record_read(h, nbytes))

    @property
    def sizes(self) -> VfioSizes:
        """The cached sizes and the bytes read since migration start (no device access)."""
        out = SwoVfioSizes()
        with self._use() as h:
            check(_native.lib.swo_vfio_get_sizes(h, ctypes.byref(out)))
        return VfioSizes._from_c(out)

    def __repr__(self) -> str:
        state = "closed" if self.closed else VfioState(self._state).name
        return f"<switchover.Vfio {self.name!r} {state}>"
