"""Scenario files: TOML in, a validated :class:`Scenario` out.

Every value has a default, so a scenario file only says what differs from an idle 4 GiB
guest on a 10 Gbps link. Sizes are bytes as an int or a string with a binary suffix
(``"32GiB"``, ``"1.91G"``, ``"8M"``); link rates are bytes per second as an int, a size per
second (``"1GiB/s"``) or decimal bits per second (``"460Mbps"``, ``"10Gbps"``). Every error
names the offending key (:class:`ScenarioError`).

Reference (defaults in brackets)::

    name, description                    # text
    [sim]   seed [1], tick_ms [50], max_time_s [600]
    [ram]   size ["4GiB"], page_size [4096], zero_share [0] (share of zero pages in the
            first pass), working_set [all of RAM], zero_page_wire_bytes [9],
            page_header_bytes [8] (QEMU's header before each normal page's data),
            dirty_rate_mib_s [0] -- a number, or [{at_s=0, dirty_rate_mib_s=10}, ...],
            pattern ["uniform"|"sequential"|"hotspot"] (how writes fall on the working
            set), hot_share [0.9], hot_set [working set / 10] (hotspot only)
    [[devices]]  name, stop_copy (state moved with the guest stopped, incl. precopy data),
            precopy_initial [0], dirty_rate_mib_s [0] (a device with neither has no
            PRE_COPY state), fault ["none"|"garbage"|"ioctl-fails"|"lies-low"],
            lie_factor [0.1], garbage_value [2**64-1]
    [link]  bandwidth ["10Gbps"], jitter [0] (fraction, uniform, seeded), sender_max [link]
            (what the sender reaches while the guest runs), switchover [link] (what it
            really reaches with the guest stopped), switchover_fixed_ms [0] (the real pause
            bytes do not explain: final device state, reconnects; the library only knows
            what the `downtime-fixed` parameter tells it)
    [params]        QMP migrate-set-parameters members, e.g. downtime-limit = 300,
                    avail-switchover-bandwidth = "1GiB", auto-downtime-max = 3000;
                    the operator policy: deadline = 60000 (ms), deadline-per-gib,
                    deadline-action = "cancel"|"force-switchover"|"postcopy",
                    stall-action, stall-action-passes, downtime-fixed (ms)
    [capabilities]  e.g. events = true (always on unless set false), postcopy-ram = true
    [[actions]]     at_s, and any of: set = {downtime-limit = 2000}, capabilities = {...},
                    postcopy = true, ack = true (destination acks switchover), cancel = true

Sizes are 64-bit: 2**64 bytes or more is an error. ``[params]``, ``[capabilities]`` and each
action's ``set`` and ``capabilities`` are checked when the scenario loads, by the library
itself (applied to a scratch session in the order the run applies them), so a misspelt or
out-of-range name is a load error naming its key, not a refusal in the middle of a run.
"""
from __future__ import annotations

import copy
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GARBAGE_SIZE = 2**64 - 1
FAULTS = ("none", "garbage", "ioctl-fails", "lies-low")
# How the guest's writes fall on its working set (model.GuestRam.distinct_pages has the
# formula each follows).
PATTERNS = ("uniform", "sequential", "hotspot")

# Parameters whose values are sizes (bytes): strings like "1GiB" are accepted for them.
SIZE_PARAMS = ("max-bandwidth", "avail-switchover-bandwidth", "max-postcopy-bandwidth")


class ScenarioError(ValueError):
    """A scenario value is missing, of the wrong type or out of range; the message names it."""


_SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_BITS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)bps\s*$", re.IGNORECASE)
_BITS_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_size(value: Any, key: str) -> int:
    """Bytes from an int or a string such as ``"1.91GiB"``, ``"8M"``, ``"4096"``; at most
    2**64-1 (the library's sizes are 64-bit)."""
    size = _parse_size(value, key)
    if size > GARBAGE_SIZE:
        raise ScenarioError(f"{key} = {_toml(value)}: 2**64 bytes or more; sizes are 64-bit "
                            f"(at most {GARBAGE_SIZE})")
    return size


def _parse_size(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ScenarioError(f"{key} = {_toml(value)}: expected a size")
    if isinstance(value, int):
        if value < 0:
            raise ScenarioError(f"{key} = {_toml(value)}: a size must not be negative")
        return value
    if isinstance(value, float):
        if value < 0 or not math.isfinite(value):
            raise ScenarioError(f"{key} = {_toml(value)}: a size must be a finite non-negative number")
        return round(value)
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            return round(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    raise ScenarioError(f"{key} = {_toml(value)}: cannot read it as a size (e.g. 4096, \"8MiB\", \"1.9G\")")


def parse_rate(value: Any, key: str) -> float:
    """Bytes per second from an int, ``"1GiB/s"`` or decimal bits per second ``"460Mbps"``."""
    if isinstance(value, str):
        m = _BITS_RE.match(value)
        if m:
            return float(m.group(1)) * _BITS_UNITS[m.group(2).lower()] / 8.0
        text = value.strip()
        if text.endswith("/s"):
            return float(parse_size(text[:-2], key))
        raise ScenarioError(f"{key} = {_toml(value)}: cannot read it as a rate (e.g. \"10Gbps\", \"1GiB/s\")")
    return float(parse_size(value, key))


def _number(value: Any, key: str, lo: float | None = 0.0, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{key} = {_toml(value)}: expected a number")
    if not math.isfinite(value):
        raise ScenarioError(f"{key} = {_toml(value)}: expected a finite number")
    if lo is not None and value < lo:
        raise ScenarioError(f"{key} = {_toml(value)}: must be at least {lo:g}")
    if hi is not None and value > hi:
        raise ScenarioError(f"{key} = {_toml(value)}: must be at most {hi:g}")
    return float(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{key} = {_toml(value)}: expected true or false")
    return value


def _table(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{key} = {_toml(value)}: expected a table")
    return value


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    for k in table:
        if k not in allowed:
            raise ScenarioError(f"{where}.{k}: unknown key (known: {', '.join(sorted(allowed))})")


REQUIRED = object()   # a key without a default


@dataclass(frozen=True)
class Key:
    """One row of the scenario format: the loader reads every key through :data:`KEYS`
    (unknown keys, defaults, types and ranges) and ``docs/scenarios.md`` is generated from
    it (``python -m switchover.sim.docs``; a test fails when the file is stale)."""

    table: str          # "" (top level), "sim", "ram", "devices[]", "actions[]", ...
    name: str
    kind: str           # text, integer, number, size, rate, bool, choice, table, rate-or-schedule
    default: Any        # the value a missing key means (REQUIRED: none)
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    doc: str = ""
    choices: tuple[str, ...] = ()
    default_text: str = ""   # the default, when the value alone does not say it

    @property
    def path(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


KEYS: tuple[Key, ...] = (
    Key("", "name", "text", None, default_text="the file name without .toml",
        doc="shown in the output and the plot title"),
    Key("", "description", "text", "", doc="free text"),
    Key("sim", "seed", "integer", 1, doc="seed of the link jitter (`--seed` overrides it)"),
    Key("sim", "tick_ms", "integer", 50, "ms", 1, 1000, doc="simulated time step"),
    Key("sim", "max_time_s", "number", 600, "s", 0.001, 7 * 24 * 3600,
        doc="give up after this much simulated time (`--max-time` overrides it)"),
    Key("ram", "size", "size", "4GiB", "bytes", 1, GARBAGE_SIZE,
        doc="guest memory; a non-zero multiple of `page_size`. **A scenario file must give "
            "it** (the minimum file is `[ram]` with `size`)"),
    Key("ram", "page_size", "size", 4096, "bytes", 512, GARBAGE_SIZE,
        doc="a power of two"),
    Key("ram", "zero_share", "number", 0, "share", 0, 1,
        doc="share of never-written (zero) pages in the first pass"),
    Key("ram", "working_set", "size", 0, "bytes", 0, GARBAGE_SIZE,
        default_text="0 (all of RAM)",
        doc="the part of RAM the guest writes into: at least one page, at most `size`"),
    Key("ram", "zero_page_wire_bytes", "integer", 9, "bytes", 0, None,
        doc="bytes QEMU sends for a zero page (header + marker); at most `page_size`"),
    Key("ram", "page_header_bytes", "integer", 8, "bytes", 0, None,
        doc="QEMU's header before each normal page's data on the wire; at most `page_size`"),
    Key("ram", "pattern", "choice", "uniform", choices=PATTERNS,
        doc="how the guest's writes fall on the working set of `W` pages, for the pages found "
            "dirty at a sync after `n` writes: `sequential` sweeps page after page, wrapping "
            "(`min(n, W)`); `uniform` draws each page uniformly (`W * (1 - exp(-n / W))`); "
            "`hotspot` sends `hot_share` of the writes uniformly to a hot set of `H` pages and "
            "the rest uniformly to the whole working set"),
    Key("ram", "hot_share", "number", 0.9, "share", 0, 1,
        doc="with `pattern = \"hotspot\"`: the share of the writes into the hot set"),
    Key("ram", "hot_set", "size", 0, "bytes", 0, GARBAGE_SIZE,
        default_text="0 (a tenth of the working set)",
        doc="with `pattern = \"hotspot\"`: the hot set; at least one page, at most the working "
            "set"),
    Key("ram", "dirty_rate_mib_s", "rate-or-schedule", 0, "MiB/s", 0, None,
        doc="how fast the guest dirties its working set: a number, or a schedule "
            "`[{at_s = 0, dirty_rate_mib_s = 10}, {at_s = 30, dirty_rate_mib_s = 200}]`"),
    Key("ram.dirty_rate_mib_s[]", "at_s", "number", REQUIRED, "s", 0, None,
        doc="from when this rate holds; times increase"),
    Key("ram.dirty_rate_mib_s[]", "dirty_rate_mib_s", "number", REQUIRED, "MiB/s", 0, None,
        doc="the rate from `at_s` on"),
    Key("devices[]", "name", "text", None, default_text="`vfio<index>`",
        doc="the device's idstr; unique"),
    Key("devices[]", "stop_copy", "size", REQUIRED, "bytes", 0, GARBAGE_SIZE,
        doc="state the stop-copy phase moves (with the guest stopped), precopy data included"),
    Key("devices[]", "precopy_initial", "size", 0, "bytes", 0, GARBAGE_SIZE,
        doc="the part of `stop_copy` that can move while the guest runs; at most `stop_copy`"),
    Key("devices[]", "dirty_rate_mib_s", "number", 0, "MiB/s", 0, None,
        doc="device state re-dirtied per second while running (a device with neither this "
            "nor `precopy_initial` has no PRE_COPY state)"),
    Key("devices[]", "fault", "choice", "none", choices=FAULTS,
        doc="`garbage`: reports `garbage_value` as its size; `ioctl-fails`: size queries "
            "fail; `lies-low`: reports `lie_factor` of the truth"),
    Key("devices[]", "lie_factor", "number", 0.1, "share", 0, 1,
        doc="with `fault = \"lies-low\"`"),
    Key("devices[]", "garbage_value", "integer", GARBAGE_SIZE, "bytes", 0, GARBAGE_SIZE,
        default_text="2**64-1", doc="with `fault = \"garbage\"`"),
    Key("link", "bandwidth", "rate", "10Gbps", "bytes/s", 1, None,
        doc="what the wire carries: bytes per second, a size per second (`\"1GiB/s\"`) or "
            "decimal bits per second (`\"460Mbps\"`)"),
    Key("link", "jitter", "number", 0, "share", 0, 0.9,
        doc="each tick's rate is `bandwidth * (1 + U(-jitter, +jitter))`, seeded"),
    Key("link", "sender_max", "rate", 0, "bytes/s", 0, None, default_text="0 (the link)",
        doc="what the sender reaches while the guest runs"),
    Key("link", "switchover", "rate", 0, "bytes/s", 0, None, default_text="0 (the link)",
        doc="what the sender really reaches with the guest stopped"),
    Key("link", "switchover_fixed_ms", "number", 0, "ms", 0, 2000 * 1000,
        doc="the fixed part of the real pause at the switchover (final vCPU/device state, "
            "reconnects), on top of the bytes; the library's `downtime-fixed` parameter is "
            "its prediction"),
    Key("", "params", "table", {}, default_text="QEMU's defaults",
        doc="QMP `migrate-set-parameters` members and the library's own (e.g. "
            "`downtime-limit = 300` in ms, `avail-switchover-bandwidth = \"1GiB\"` in "
            "bytes/s, `auto-downtime-max = 3000`); checked by the library when the file loads"),
    Key("", "capabilities", "table", {}, default_text="`events` on, the rest off",
        doc="QMP capabilities, e.g. `postcopy-ram = true`; checked by the library"),
    Key("actions[]", "at_s", "number", REQUIRED, "s", 0, None,
        doc="when the operator acts, in simulated seconds after the start"),
    Key("actions[]", "set", "table", {}, doc="parameters to set, as in `[params]`"),
    Key("actions[]", "capabilities", "table", {}, doc="capabilities to set"),
    Key("actions[]", "postcopy", "bool", False, doc="request postcopy (`migrate-start-postcopy`)"),
    Key("actions[]", "ack", "bool", False,
        doc="the destination acks the switchover (capability `switchover-ack`)"),
    Key("actions[]", "cancel", "bool", False, doc="cancel the migration"),
)
# Tables a scenario file may have (plus the top-level keys above): [[devices]], [[actions]].
TABLES = ("sim", "ram", "devices", "link", "params", "capabilities", "actions")


def keys_of(table: str) -> dict[str, Key]:
    """The rows of one table, by name."""
    return {k.name: k for k in KEYS if k.table == table}


def _toml(value: Any) -> str:
    """A value as a scenario file writes it (for messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _get(t: dict, table: str, name: str, where: str | None = None) -> Any:
    """``t[name]`` (or the row's default), checked against its row of :data:`KEYS`:
    converted to bytes (size), bytes/s (rate), float (number), int, bool, or a choice."""
    row = keys_of(table)[name]
    key = f"{where or table}.{name}" if (where or table) else name
    if name not in t:
        if row.default is REQUIRED:
            raise ScenarioError(f"{key}: required ({row.doc})")
        if row.default is None:
            return None
        value = row.default
    else:
        value = t[name]
    kind = row.kind
    if kind == "size":
        out: Any = parse_size(value, key)
    elif kind == "rate":
        out = parse_rate(value, key)
    elif kind == "number":
        return _number(value, key, row.lo, row.hi)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{key} = {_toml(value)}: expected an integer")
        out = value
    elif kind == "bool":
        return _bool(value, key)
    elif kind == "text":
        if not isinstance(value, str):
            raise ScenarioError(f"{key} = {_toml(value)}: expected a string")
        return value
    elif kind == "choice":
        if value not in row.choices:
            raise ScenarioError(f"{key} = {_toml(value)}: must be one of "
                                f"{', '.join(row.choices)}")
        return value
    else:
        return value
    if row.lo is not None and out < row.lo:
        raise ScenarioError(f"{key} = {_toml(value)}: must be at least {row.lo:g}")
    if row.hi is not None and out > row.hi:
        raise ScenarioError(f"{key} = {_toml(value)}: must be at most {row.hi:g}")
    return out


@dataclass(frozen=True)
class RateChange:
    at_s: float
    dirty_rate_mib_s: float


@dataclass(frozen=True)
class RamSpec:
    size: int = 4 * 2**30
    page_size: int = 4096
    zero_share: float = 0.0          # share of never-written (zero) pages in the first pass
    working_set: int = 0             # bytes the guest writes into; 0 = all of RAM
    dirty_rate_mib_s: float = 0.0    # at t=0
    dirty_schedule: tuple[RateChange, ...] = ()
    zero_page_wire_bytes: int = 9    # header + marker byte QEMU sends for a zero page
    page_header_bytes: int = 8       # QEMU's per-page header before a normal page's data
    pattern: str = "uniform"         # how the guest's writes fall: see PATTERNS
    hot_share: float = 0.9           # hotspot: share of the writes into the hot set
    hot_set: int = 0                 # hotspot: bytes of the hot set (0 = working set / 10)

    @property
    def total_pages(self) -> int:
        return self.size // self.page_size

    @property
    def working_set_pages(self) -> int:
        return (self.working_set or self.size) // self.page_size

    @property
    def hot_set_pages(self) -> int:
        ws = self.working_set_pages
        hot = self.hot_set // self.page_size if self.hot_set else ws // 10
        return max(1, min(ws, hot))

    def dirty_rate_at(self, t_s: float) -> float:
        """The guest's dirty rate in MiB/s at simulated time ``t_s``."""
        rate = self.dirty_rate_mib_s
        for change in self.dirty_schedule:
            if change.at_s <= t_s:
                rate = change.dirty_rate_mib_s
        return rate


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    stop_copy: int                   # device state the stop-copy phase moves, incl. precopy data
    precopy_initial: int = 0         # part of it that can move while the guest runs
    dirty_rate_mib_s: float = 0.0    # device state re-dirtied per second while running
    fault: str = "none"
    lie_factor: float = 0.1          # lies-low: the share of the truth the driver reports
    garbage_value: int = GARBAGE_SIZE

    @property
    def supports_precopy(self) -> bool:
        return self.precopy_initial > 0 or self.dirty_rate_mib_s > 0


@dataclass(frozen=True)
class LinkSpec:
    bandwidth: float = 10e9 / 8      # bytes/s the wire carries
    jitter: float = 0.0              # each tick's rate is bandwidth * (1 + U(-jitter, +jitter))
    sender_max: float = 0.0          # bytes/s the sender reaches while the guest runs (0 = link)
    switchover: float = 0.0          # bytes/s really reached with the guest stopped (0 = link)
    switchover_fixed_ms: float = 0.0  # the real pause bytes do not explain

    def precopy_ceiling(self) -> float:
        return min(self.bandwidth, self.sender_max) if self.sender_max > 0 else self.bandwidth

    def switchover_ceiling(self) -> float:
        return min(self.bandwidth, self.switchover) if self.switchover > 0 else self.bandwidth


@dataclass(frozen=True)
class Action:
    at_s: float
    set: dict = field(default_factory=dict)   # parameters for set_parameters (QMP names)
    capabilities: dict = field(default_factory=dict)
    postcopy: bool = False
    cancel: bool = False
    ack: bool = False                # the destination acks the switchover (switchover-ack)

    def describe(self) -> str:
        parts = [f"set {k}={v}" for k, v in self.set.items()]
        parts += [f"capability {k}={'on' if v else 'off'}" for k, v in self.capabilities.items()]
        if self.postcopy:
            parts.append("request postcopy")
        if self.ack:
            parts.append("destination acks switchover")
        if self.cancel:
            parts.append("cancel")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Scenario:
    name: str = "scenario"
    description: str = ""
    seed: int = 1
    tick_ms: int = 50
    max_time_s: float = 600.0
    ram: RamSpec = RamSpec()
    devices: tuple[DeviceSpec, ...] = ()
    link: LinkSpec = LinkSpec()
    params: dict = field(default_factory=dict)
    capabilities: dict = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def downtime_limit_ms(self) -> int:
        """The scenario's ``downtime-limit``, else the library's default (:func:`library_defaults`)."""
        if "downtime-limit" in self.params:
            return int(self.params["downtime-limit"])
        return int(library_defaults()["downtime-limit"])


def _ram(t: dict) -> RamSpec:
    _check_keys(t, set(keys_of("ram")), "ram")
    size = _get(t, "ram", "size")
    page = _get(t, "ram", "page_size")
    if page & (page - 1):
        raise ScenarioError(f"ram.page_size = {_toml(t.get('page_size'))}: must be a power of "
                            f"two >= 512")
    if size % page:
        raise ScenarioError(f"ram.size = {_toml(t.get('size'))}: must be a non-zero multiple of "
                            f"ram.page_size ({page})")
    ws = _get(t, "ram", "working_set")
    if ws > size:
        raise ScenarioError(f"ram.working_set = {_toml(t.get('working_set'))}: {ws} is larger "
                            f"than ram.size {size}")
    if 0 < ws < page:
        raise ScenarioError(f"ram.working_set = {_toml(t.get('working_set'))}: must be at least "
                            f"one page ({page})")
    zero = _get(t, "ram", "zero_share")
    zwire = _get(t, "ram", "zero_page_wire_bytes")
    if zwire > page:
        raise ScenarioError(f"ram.zero_page_wire_bytes = {zwire}: must be at most "
                            f"ram.page_size ({page})")
    header = _get(t, "ram", "page_header_bytes")
    if header > page:
        raise ScenarioError(f"ram.page_header_bytes = {header}: must be at most "
                            f"ram.page_size ({page})")
    pattern = _get(t, "ram", "pattern")
    hot_share = _get(t, "ram", "hot_share")
    hot_set = _get(t, "ram", "hot_set")
    if hot_set > (ws or size):
        raise ScenarioError(f"ram.hot_set = {_toml(t.get('hot_set'))}: {hot_set} is larger than "
                            f"the working set {ws or size}")
    if 0 < hot_set < page:
        raise ScenarioError(f"ram.hot_set = {_toml(t.get('hot_set'))}: must be at least one "
                            f"page ({page})")
    if pattern != "hotspot" and ("hot_share" in t or "hot_set" in t):
        raise ScenarioError(f"ram.pattern = {_toml(pattern)}: ram.hot_share and ram.hot_set "
                            f"only mean something with pattern = \"hotspot\"")
    rate_value = t.get("dirty_rate_mib_s", 0.0)
    schedule: list[RateChange] = []
    if isinstance(rate_value, list):
        rate0 = 0.0
        last_at = -1.0
        for i, entry in enumerate(rate_value):
            where = f"ram.dirty_rate_mib_s[{i}]"
            entry = _table(entry, where)
            _check_keys(entry, set(keys_of("ram.dirty_rate_mib_s[]")), where)
            at = _get(entry, "ram.dirty_rate_mib_s[]", "at_s", where)
            if at <= last_at:
                raise ScenarioError(f"{where}.at_s = {at:g}: times must increase ({at:g} after "
                                    f"{last_at:g})")
            last_at = at
            rate = _get(entry, "ram.dirty_rate_mib_s[]", "dirty_rate_mib_s", where)
            if at == 0:
                rate0 = rate
            schedule.append(RateChange(at, rate))
    else:
        rate0 = _number(rate_value, "ram.dirty_rate_mib_s", keys_of("ram")["dirty_rate_mib_s"].lo)
    return RamSpec(size=size, page_size=page, zero_share=zero, working_set=ws,
                   dirty_rate_mib_s=rate0, dirty_schedule=tuple(schedule),
                   zero_page_wire_bytes=zwire, page_header_bytes=header, pattern=pattern,
                   hot_share=hot_share, hot_set=hot_set)


def _device(t: dict, i: int, seen: set[str]) -> DeviceSpec:
    where = f"devices[{i}]"
    t = _table(t, where)
    _check_keys(t, set(keys_of("devices[]")), where)
    name = t.get("name", f"vfio{i}")
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{where}.name = {_toml(name)}: expected a non-empty string")
    if name in seen:
        raise ScenarioError(f"{where}.name = {_toml(name)}: duplicate device name")
    seen.add(name)
    stop = _get(t, "devices[]", "stop_copy", where)
    init = _get(t, "devices[]", "precopy_initial", where)
    if init > stop:
        raise ScenarioError(f"{where}.precopy_initial = {_toml(t['precopy_initial'])}: {init} "
                            f"is larger than stop_copy {stop}")
    return DeviceSpec(
        name=name, stop_copy=stop, precopy_initial=init,
        dirty_rate_mib_s=_get(t, "devices[]", "dirty_rate_mib_s", where),
        fault=_get(t, "devices[]", "fault", where),
        lie_factor=_get(t, "devices[]", "lie_factor", where),
        garbage_value=_get(t, "devices[]", "garbage_value", where))


def _link(t: dict) -> LinkSpec:
    _check_keys(t, set(keys_of("link")), "link")
    return LinkSpec(
        bandwidth=_get(t, "link", "bandwidth"),
        jitter=_get(t, "link", "jitter"),
        sender_max=_get(t, "link", "sender_max"),
        switchover=_get(t, "link", "switchover"),
        switchover_fixed_ms=_get(t, "link", "switchover_fixed_ms"))


def _params(t: dict, where: str) -> dict:
    out = {}
    for k, v in t.items():
        if k in SIZE_PARAMS:
            v = parse_size(v, f"{where}.{k}")
        elif not isinstance(v, (bool, int, str)):
            # bool for the on/off parameters (report-reason, reuse-switchover-bandwidth);
            # the library refuses a bool for any other parameter when the scenario loads.
            raise ScenarioError(f"{where}.{k} = {_toml(v)}: expected an integer, a string or "
                                f"true/false")
        out[k] = v
    return out


def _caps(t: dict, where: str) -> dict:
    return {k: _bool(v, f"{where}.{k}") for k, v in t.items()}


def _action(t: dict, i: int) -> Action:
    where = f"actions[{i}]"
    t = _table(t, where)
    _check_keys(t, set(keys_of("actions[]")), where)
    a = Action(
        at_s=_get(t, "actions[]", "at_s", where),
        set=_params(_table(t.get("set", {}), f"{where}.set"), f"{where}.set"),
        capabilities=_caps(_table(t.get("capabilities", {}), f"{where}.capabilities"),
                           f"{where}.capabilities"),
        postcopy=_get(t, "actions[]", "postcopy", where),
        cancel=_get(t, "actions[]", "cancel", where),
        ack=_get(t, "actions[]", "ack", where))
    if a.describe() == "nothing":
        raise ScenarioError(f"{where}: does nothing (give set, capabilities, postcopy, cancel or ack)")
    return a


def _library() -> Any | None:
    """The ``switchover`` package when the library loads, else None (no library checks)."""
    try:
        import switchover
    except (ImportError, OSError):
        return None
    session = getattr(switchover, "Session", None)
    if session is None or not all(hasattr(session, n) for n in ("set_parameters",
                                                                  "set_capability")):
        return None
    return switchover


_DEFAULTS: dict | None = None


def library_defaults() -> dict:
    """``query-migrate-parameters`` of a fresh session: the library's defaults (a copy), so
    the simulator writes none of its own. Raises RuntimeError without a loadable library."""
    global _DEFAULTS
    if _DEFAULTS is None:
        so = _library()
        if so is None:
            raise RuntimeError("the library's default parameters need the switchover library")
        with so.Session(keep_events=0) as s:
            _DEFAULTS = dict(s.parameters)
    return dict(_DEFAULTS)


_MAXIMA: dict[str, int] = {}


def library_max(name: str) -> int:
    """The largest value the library accepts for the integer parameter ``name`` (e.g.
    ``downtime-limit``: QEMU's ``MAX_MIGRATE_DOWNTIME``), asked of a fresh session so the
    simulator writes no bound of its own: a bisection over ``migrate-set-parameters`` between
    its default (accepted) and 2**64 - 1, a refused value changing nothing. Raises
    RuntimeError without a loadable library."""
    if name not in _MAXIMA:
        so = _library()
        if so is None:
            raise RuntimeError("the library's parameter bounds need the switchover library")
        with so.Session(keep_events=0) as s:
            def accepted(value: int) -> bool:
                try:
                    s.set_parameters({name: value})
                    return True
                except so.SwitchoverError:
                    return False
            lo, hi = int(s.parameters[name]), 2**64 - 1
            if accepted(hi):
                lo = hi
            while hi - lo > 1:  # lo accepted, hi refused
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if accepted(mid) else (lo, mid)
            _MAXIMA[name] = lo
    return _MAXIMA[name]


def _apply_params(so: Any, s: Any, params: dict, where: str) -> None:
    if not params:
        return
    try:
        s.set_parameters(params)
        return
    except so.SwitchoverError as whole:
        refused = whole
    for key, value in params.items():  # which member? (all or nothing: nothing applied yet)
        try:
            s.set_parameters({key: value})
        except so.SwitchoverError as e:
            raise ScenarioError(f"{where}.{key} = {_toml(value)}: {e.message or e}") from None
    raise ScenarioError(f"{where}: {refused.message or refused}") from None


def _apply_caps(so: Any, s: Any, caps: dict, where: str) -> None:
    for name, on in caps.items():
        try:
            s.set_capability(name, on)
        except so.SwitchoverError as e:
            raise ScenarioError(f"{where}.{name} = {_toml(on)}: {e.message or e}") from None


def check_with_library(params: dict, capabilities: dict,
                       actions: list[tuple[int, Action]]) -> None:
    """Applies what a run applies, in its order, to a scratch session: the capabilities
    (``events`` on first), the parameters, then each action's ``set`` and ``capabilities``
    in time order (``actions`` are (index in the file, action) pairs). A refusal becomes a
    :class:`ScenarioError` naming the key. Without a loadable library nothing is checked."""
    so = _library()
    if so is None:
        return
    with so.Session(keep_events=0) as s:
        _apply_caps(so, s, {"events": True, **capabilities}, "capabilities")
        _apply_params(so, s, params, "params")
        for i, a in sorted(actions, key=lambda pair: pair[1].at_s):
            _apply_params(so, s, a.set, f"actions[{i}].set")
            _apply_caps(so, s, a.capabilities, f"actions[{i}].capabilities")


def from_dict(raw: dict, origin: str = "scenario") -> Scenario:
    """Validates a parsed scenario table."""
    raw = _table(raw, origin)
    _check_keys(raw, set(keys_of("")) | set(TABLES), origin)
    sim = _table(raw.get("sim", {}), "sim")
    _check_keys(sim, set(keys_of("sim")), "sim")
    seed = _get(sim, "sim", "seed")
    tick = _get(sim, "sim", "tick_ms")
    max_time = _get(sim, "sim", "max_time_s")
    devices = raw.get("devices", [])
    if not isinstance(devices, list):
        raise ScenarioError(f"devices: expected an array of tables ([[devices]]), got {devices!r}")
    seen: set[str] = set()
    actions = raw.get("actions", [])
    if not isinstance(actions, list):
        raise ScenarioError(f"actions: expected an array of tables ([[actions]]), got {actions!r}")
    name = _get(raw, "", "name")
    if name is None:
        name = Path(origin).stem
    description = _get(raw, "", "description")
    ram = _ram(_table(raw.get("ram", {}), "ram"))
    device_specs = tuple(_device(d, i, seen) for i, d in enumerate(devices))
    link = _link(_table(raw.get("link", {}), "link"))
    params = _params(_table(raw.get("params", {}), "params"), "params")
    caps = _caps(_table(raw.get("capabilities", {}), "capabilities"), "capabilities")
    numbered = [(i, _action(a, i)) for i, a in enumerate(actions)]
    check_with_library(params, caps, numbered)
    return Scenario(
        name=name, description=description, seed=seed, tick_ms=tick, max_time_s=max_time,
        ram=ram, devices=device_specs, link=link, params=params, capabilities=caps,
        actions=tuple(sorted((a for _, a in numbered), key=lambda a: a.at_s)),
        raw=copy.deepcopy(raw))


def load_raw(path: str | Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror}") from None


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Reads and validates a scenario file, applying ``{"a.b": value}`` overrides first."""
    raw = load_raw(path)
    for key, value in (overrides or {}).items():
        set_path(raw, key, value)
    sc = from_dict(raw, str(path))   # errors naming a key first, then the minimum
    check_minimum(raw, path)
    return sc


def check_minimum(raw: dict, path: str | Path) -> None:
    """A scenario file says at least how much memory the guest has: an empty file (or one
    that only sets, say, [params]) is a mistake, not an idle 4 GiB guest."""
    ram = raw.get("ram")
    if not isinstance(ram, dict) or "size" not in ram:
        what = "is empty" if not raw else "has no [ram] size"
        raise ScenarioError(f"{path} {what}: a scenario file needs at least the guest's memory, "
                            f"[ram] size = \"4GiB\" for example (every key: docs/scenarios.md)")


def set_path(raw: dict, key: str, value: Any) -> None:
    """Sets ``raw[a][b]...`` for a dotted key; a numeric part indexes an array
    (``devices.0.stop_copy``). Missing tables are created."""
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise ScenarioError(f"{key}: no element {part!r} in {'.'.join(parts[:i]) or 'scenario'}") from None
            continue
        if not isinstance(node, dict):
            raise ScenarioError(f"{key}: {'.'.join(parts[:i])} is not a table")
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        try:
            node[int(last)] = value
        except (ValueError, IndexError):
            raise ScenarioError(f"{key}: no element {last!r}") from None
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{key}: {'.'.join(parts[:-1])} is not a table")


def parse_cli_value(text: str) -> Any:
    """A command-line value: TOML scalar rules (``300``, ``1.5``, ``true``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
