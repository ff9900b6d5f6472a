"""Python binding of libswitchover: decides when a live migration can switch over.

    >>> import switchover
    >>> with switchover.Session() as s:
    ...     ram = s.register_handler("ram", lambda exact, final: (512 << 20, 0, 0))
    ...     s.query_pending(exact=True).total
    536870912

Every failure of the library raises :class:`SwitchoverError` with its ``code`` and the
library's ``message``. Sizes are ints (bytes).
"""
from ._native import (Action, HandlerFlag, MigrationStatus, Status, SwoHandlerOps,
                      SwoPending, SwoStep, SwoVmmOps, has)
from ._native import lib as _lib
from .errors import SwitchoverError
from .session import Handler, Pending, Session
from .sizes import parse_size, size_to_str

__version__ = "0.1.0"

#: The loaded library's version string (``swo_version``).
library_version: str = _lib.version
#: Path of the loaded shared library.
library_path: str = _lib.path

__all__ = [
    "Action", "Handler", "HandlerFlag", "MigrationStatus", "Pending", "Session", "Status",
    "SwitchoverError", "SwoHandlerOps", "SwoPending", "SwoStep", "SwoVmmOps", "has",
    "library_path", "library_version", "parse_size", "size_to_str",
]
