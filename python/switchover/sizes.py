"""Sizes the way QEMU writes and reads them (``size_to_str``, HMP size arguments)."""
from __future__ import annotations

import ctypes
import operator

from . import _native
from .errors import check


def size_to_str(value: int) -> str:
    """Formats a byte count like QEMU's ``size_to_str``: ``4096`` -> ``'4 KiB'``,
    ``1610612736`` -> ``'1.5 GiB'``."""
    value = operator.index(value)
    if not 0 <= value <= _native.UINT64_MAX:
        raise ValueError(f"size {value} is outside 0..2**64-1")
    fn = _native.lib.swo_size_to_str
    needed = fn(value, None, 0)
    buf = ctypes.create_string_buffer(needed + 1)
    fn(value, buf, len(buf))
    return buf.raw[:needed].decode()


def parse_size(text: str, default_suffix: str = "M") -> int:
    """Parses a size with QEMU's HMP rules: ``'100'`` -> 104857600 (MiB by default),
    ``'1.5G'`` -> 1610612736, ``'0x10'`` -> 16 MiB. Raises
    :class:`~switchover.errors.SwitchoverError` (``Invalid size 10MB`` and the like)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_size() needs a str, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError("size text must not contain NUL")
    if not (isinstance(default_suffix, str) and len(default_suffix) == 1
            and default_suffix.isascii()):
        raise ValueError(f"default_suffix must be one ASCII letter, not {default_suffix!r}")
    out = ctypes.c_uint64(0)
    check(_native.lib.swo_parse_size(text.encode(), default_suffix.encode(),
                                     ctypes.byref(out)))
    return out.value
