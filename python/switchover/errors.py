"""The one exception of the package, raised from one place: :func:`check`; and
:func:`read_text`, the string-out calls that raise it."""
from __future__ import annotations

import ctypes
from typing import Union

from . import _native
from ._native import Status


class SwitchoverError(Exception):
    """A call into libswitchover failed.

    ``code`` is the status code (a :class:`Status` when the number is known), ``name`` its C
    name (``SWO_ERR_NOT_FOUND``) and ``message`` the library's message for the failure, in
    QEMU's wording where QEMU has one (``Invalid size 10MB``).
    """

    def __init__(self, code: int, message: str):
        try:
            code = Status(code)
        except ValueError:
            pass
        super().__init__(code, message)
        self.code: Union[Status, int] = code
        self.message = message

    @property
    def name(self) -> str:
        return _native.status_name(int(self.code))

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


def last_error_message() -> str:
    """The calling thread's message for its last failed call ("" when none failed)."""
    lib = _native.lib
    needed = ctypes.c_size_t(0)
    if lib.swo_last_error_message(None, 0, ctypes.byref(needed)) != Status.OK:
        return ""
    buf = ctypes.create_string_buffer(needed.value + 1)
    if lib.swo_last_error_message(buf, len(buf), ctypes.byref(needed)) != Status.OK:
        return ""
    return buf.raw[:needed.value].decode("utf-8", errors="replace")


def check(status: int) -> None:
    """Raises :class:`SwitchoverError` with the thread's last message unless ``status`` is
    ``SWO_OK``. Call it right after the failing call, on the same thread."""
    if status != Status.OK:
        raise SwitchoverError(status, last_error_message())


def read_text(fn, *args) -> str:
    """Calls a string-out function ``fn(*args, buf, len, out_len)`` under the library's
    buffer convention (ask the length with a NULL buffer, then read) and returns the text.
    Raises :class:`SwitchoverError` on failure. (Here rather than in :mod:`._native`, which
    this module imports: the two used to import each other.)"""
    needed = ctypes.c_size_t(0)
    check(fn(*args, None, 0, ctypes.byref(needed)))
    while True:
        buf = ctypes.create_string_buffer(needed.value + 1)
        status = fn(*args, buf, len(buf), ctypes.byref(needed))
        if status == Status.ERR_BUFFER_TOO_SMALL:
            continue  # the text grew between the two calls; needed has the new length
        check(status)
        return buf.raw[:needed.value].decode()
