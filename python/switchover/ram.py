"""The library's built-in RAM model (``swo_ram_*``): guest RAM as a pending-data handler."""
from __future__ import annotations

import ctypes
import logging
import operator
from typing import Any, Callable, Optional, Tuple, Union

from . import _native
from ._model import Model
from ._native import UINT64_MAX, SwoRamFigures, SwoRamOps
from .engine import _u64
from .errors import check
from .figures import RamFigures
from .session import Session, _enter, _leave

log = logging.getLogger("switchover")

__all__ = ["Ram"]

#: What ``sync_dirty`` may return: ``(dirty_pages_left, newly_dirtied)`` or just the pages left.
SyncResult = Union[Tuple[int, int], int]


def _pages(value: Any, what: str) -> int:
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"{what} is negative ({value})")
    return min(value, UINT64_MAX)  # the library clamps to the RAM's page count


class Ram(Model):
    """The session's RAM: ``total_bytes`` of guest memory in pages of ``page_size``,
    registered as the handler ``ram``. Its dirty pages count as precopy, or as postcopy
    while the ``postcopy-ram`` capability is on.

    ``sync_dirty()`` is the dirty-bitmap sync, called by exact (and final) queries from
    whichever thread queries; it returns ``(dirty_pages_left, newly_dirtied)`` (or just the
    pages left). If it raises, the error is logged and the dirty count stays as it was.
    Without it, exact queries sync nothing: use :meth:`set_dirty_pages`.
    """

    _FREE = "swo_ram_free"

    def __init__(self, session: Session, total_bytes: int, page_size: int = 4096,
                 sync_dirty: Optional[Callable[[], SyncResult]] = None):
        super().__init__(session)
        total_bytes = _u64(total_bytes, "total_bytes")
        page_size = _u64(page_size, "page_size")
        if sync_dirty is not None and not callable(sync_dirty):
            raise TypeError("sync_dirty must be callable or None")
        self.total_bytes = total_bytes
        self.page_size = page_size
        ops = SwoRamOps(ctypes.sizeof(SwoRamOps), 0)
        c_sync = None
        holder: list = []  # the C handle, for the fallback inside the callback
        if sync_dirty is not None:
            key = self._session_key
            all_pages = total_bytes // page_size if page_size else UINT64_MAX

            def unchanged() -> int:
                # "Sync nothing": report the dirty count the model has now (all pages if it
                # cannot be read, which over-counts rather than switching over too early).
                figures = SwoRamFigures()
                if holder and _native.lib.swo_ram_get_figures(
                        holder[0], ctypes.byref(figures)) == _native.Status.OK:
                    return figures.dirty_pages
                return all_pages

            def c_sync_dirty(_opaque, newly_dirtied):
                _enter(key)
                try:
                    result = sync_dirty()
                    if isinstance(result, (tuple, list)):
                        if len(result) != 2:
                            raise ValueError("sync_dirty returns (dirty_pages_left, "
                                             f"newly_dirtied), not {len(result)} items")
                        left, newly = result
                    else:
                        left, newly = result, 0
                    left = _pages(left, "dirty_pages_left")
                    newly_dirtied[0] = _pages(newly, "newly_dirtied")
                    return left
                except Exception:
                    log.exception("sync_dirty of the RAM model raised; dirty count unchanged")
                    return unchanged()
                finally:
                    _leave(key)

            c_sync = _native.SwoRamSyncDirtyFn(c_sync_dirty)
            ops.sync_dirty = c_sync
        handle = _native.RamP()
        with session._use() as s:
            check(_native.lib.swo_ram_new(s, total_bytes, page_size, ctypes.byref(ops), None,
                                          ctypes.byref(handle)))
            holder.append(handle)
            self._created(session, handle, (ops, c_sync, sync_dirty))

    def set_dirty_pages(self, pages: int) -> None:
        """Sets the dirty page count (e.g. after the VMM's own bitmap sync); above the RAM's
        page count it raises ``SWO_ERR_OUT_OF_RANGE`` and changes nothing."""
        pages = _u64(pages, "pages")
        with self._use() as h:
            check(_native.lib.swo_ram_set_dirty_pages(h, pages))

    def record_sent(self, normal_pages: int, zero_pages: int = 0) -> None:
        """Records pages sent: ``ram.normal`` and ``ram.duplicate`` grow, the dirty count
        shrinks by their sum (not below 0)."""
        normal_pages = _u64(normal_pages, "normal_pages")
        zero_pages = _u64(zero_pages, "zero_pages")
        with self._use() as h:
            check(_native.lib.swo_ram_record_sent(h, normal_pages, zero_pages))

    @property
    def figures(self) -> RamFigures:
        """The model's figures (what query-migrate reports in ``ram``)."""
        out = SwoRamFigures()
        with self._use() as h:
            check(_native.lib.swo_ram_get_figures(h, ctypes.byref(out)))
        return RamFigures._from_c(out)

    @property
    def dirty_pages(self) -> int:
        return self.figures.dirty_pages

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.total_bytes} bytes"
        return f"<switchover.Ram {state}>"
