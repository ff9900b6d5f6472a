"""The simulator's formatting leaves: sizes, times and limits as its text shows them. A leaf
(imports nothing of the package), so that run.py and output.py can both use it without
importing each other."""
from __future__ import annotations

INT64_MAX = 2**63 - 1

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def fmt_size(n: float | int | None) -> str:
    """QEMU's size_to_str: 3 significant digits, binary units, stepping up at 1000."""
    if n is None:
        return "-"
    value = float(n)
    i = 0
    while value >= 1000 and i < len(_UNITS) - 1:
        value /= 1024
        i += 1
    return f"{value:.3g} {_UNITS[i]}"


def fmt_ms(v: int | None) -> str:
    if v is None:
        return "-"
    if v >= INT64_MAX:
        return "inf"
    return f"{v} ms"


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.1f} s"


def fmt_eta(ms: int | None) -> str:
    """The library's ETA in seconds with one decimal, or ``never`` (None)."""
    return "never" if ms is None else f"{ms / 1000:.1f}"
