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
            dirty_rate_mib_s [0] -- a number, or [{at_s=0, dirty_rate_mib_s=10}, ...]
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
        raise ScenarioError(f"{key}: {value!r} is 2**64 bytes or more; sizes are 64-bit "
                            f"(at most {GARBAGE_SIZE})")
    return size


def _parse_size(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ScenarioError(f"{key}: expected a size, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ScenarioError(f"{key}: size must not be negative, got {value}")
        return value
    if isinstance(value, float):
        if value < 0 or not math.isfinite(value):
            raise ScenarioError(f"{key}: size must be a finite non-negative number, got {value}")
        return round(value)
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            return round(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    raise ScenarioError(f"{key}: cannot read {value!r} as a size (e.g. 4096, \"8MiB\", \"1.9G\")")


def parse_rate(value: Any, key: str) -> float:
    """Bytes per second from an int, ``"1GiB/s"`` or decimal bits per second ``"460Mbps"``."""
    if isinstance(value, str):
        m = _BITS_RE.match(value)
        if m:
            return float(m.group(1)) * _BITS_UNITS[m.group(2).lower()] / 8.0
        text = value.strip()
        if text.endswith("/s"):
            return float(parse_size(text[:-2], key))
        raise ScenarioError(f"{key}: cannot read {value!r} as a rate (e.g. \"10Gbps\", \"1GiB/s\")")
    return float(parse_size(value, key))


def _number(value: Any, key: str, lo: float | None = 0.0, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{key}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(f"{key}: expected a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise ScenarioError(f"{key}: must be >= {lo:g}, got {value!r}")
    if hi is not None and value > hi:
        raise ScenarioError(f"{key}: must be <= {hi:g}, got {value!r}")
    return float(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{key}: expected true or false, got {value!r}")
    return value


def _table(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{key}: expected a table, got {value!r}")
    return value


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    for k in table:
        if k not in allowed:
            raise ScenarioError(f"{where}.{k}: unknown key (known: {', '.join(sorted(allowed))})")


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

    @property
    def total_pages(self) -> int:
        return self.size // self.page_size

    @property
    def working_set_pages(self) -> int:
        return (self.working_set or self.size) // self.page_size

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
        return int(self.params.get("downtime-limit", 300))


def _ram(t: dict) -> RamSpec:
    _check_keys(t, {"size", "page_size", "zero_share", "working_set", "dirty_rate_mib_s",
                    "zero_page_wire_bytes"}, "ram")
    size = parse_size(t.get("size", RamSpec.size), "ram.size")
    page = parse_size(t.get("page_size", RamSpec.page_size), "ram.page_size")
    if page < 512 or page & (page - 1):
        raise ScenarioError(f"ram.page_size: must be a power of two >= 512, got {page}")
    if size == 0 or size % page:
        raise ScenarioError(f"ram.size: must be a non-zero multiple of ram.page_size ({page}), got {size}")
    ws = parse_size(t.get("working_set", 0), "ram.working_set")
    if ws > size:
        raise ScenarioError(f"ram.working_set: {ws} is larger than ram.size {size}")
    if 0 < ws < page:
        raise ScenarioError(f"ram.working_set: must be at least one page ({page}), got {ws}")
    zero = _number(t.get("zero_share", 0.0), "ram.zero_share", 0.0, 1.0)
    zwire = int(_number(t.get("zero_page_wire_bytes", 9), "ram.zero_page_wire_bytes", 0, page))
    rate_value = t.get("dirty_rate_mib_s", 0.0)
    schedule: list[RateChange] = []
    if isinstance(rate_value, list):
        rate0 = 0.0
        last_at = -1.0
        for i, entry in enumerate(rate_value):
            where = f"ram.dirty_rate_mib_s[{i}]"
            entry = _table(entry, where)
            _check_keys(entry, {"at_s", "dirty_rate_mib_s"}, where)
            if "at_s" not in entry or "dirty_rate_mib_s" not in entry:
                raise ScenarioError(f"{where}: needs at_s and dirty_rate_mib_s")
            at = _number(entry["at_s"], f"{where}.at_s")
            if at <= last_at:
                raise ScenarioError(f"{where}.at_s: times must increase, got {at:g} after {last_at:g}")
            last_at = at
            rate = _number(entry["dirty_rate_mib_s"], f"{where}.dirty_rate_mib_s")
            if at == 0:
                rate0 = rate
            schedule.append(RateChange(at, rate))
    else:
        rate0 = _number(rate_value, "ram.dirty_rate_mib_s")
    return RamSpec(size=size, page_size=page, zero_share=zero, working_set=ws,
                   dirty_rate_mib_s=rate0, dirty_schedule=tuple(schedule),
                   zero_page_wire_bytes=zwire)


def _device(t: dict, i: int, seen: set[str]) -> DeviceSpec:
    where = f"devices[{i}]"
    t = _table(t, where)
    _check_keys(t, {"name", "stop_copy", "precopy_initial", "dirty_rate_mib_s", "fault",
                    "lie_factor", "garbage_value"}, where)
    name = t.get("name", f"vfio{i}")
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{where}.name: expected a non-empty string, got {name!r}")
    if name in seen:
        raise ScenarioError(f"{where}.name: duplicate device name {name!r}")
    seen.add(name)
    if "stop_copy" not in t:
        raise ScenarioError(f"{where}.stop_copy: required (the device state size)")
    stop = parse_size(t["stop_copy"], f"{where}.stop_copy")
    init = parse_size(t.get("precopy_initial", 0), f"{where}.precopy_initial")
    if init > stop:
        raise ScenarioError(f"{where}.precopy_initial: {init} is larger than stop_copy {stop}")
    fault = t.get("fault", "none")
    if fault not in FAULTS:
        raise ScenarioError(f"{where}.fault: must be one of {', '.join(FAULTS)}, got {fault!r}")
    garbage = t.get("garbage_value", GARBAGE_SIZE)
    if isinstance(garbage, bool) or not isinstance(garbage, int) or not 0 <= garbage < 2**64:
        raise ScenarioError(f"{where}.garbage_value: expected an integer in 0..2**64-1, got {garbage!r}")
    return DeviceSpec(
        name=name, stop_copy=stop, precopy_initial=init,
        dirty_rate_mib_s=_number(t.get("dirty_rate_mib_s", 0.0), f"{where}.dirty_rate_mib_s"),
        fault=fault,
        lie_factor=_number(t.get("lie_factor", 0.1), f"{where}.lie_factor", 0.0, 1.0),
        garbage_value=garbage)


def _link(t: dict) -> LinkSpec:
    _check_keys(t, {"bandwidth", "jitter", "sender_max", "switchover", "switchover_fixed_ms"},
                "link")
    bw = parse_rate(t.get("bandwidth", "10Gbps"), "link.bandwidth")
    if bw <= 0:
        raise ScenarioError("link.bandwidth: must be above 0")
    return LinkSpec(
        bandwidth=bw,
        jitter=_number(t.get("jitter", 0.0), "link.jitter", 0.0, 0.9),
        sender_max=parse_rate(t.get("sender_max", 0), "link.sender_max"),
        switchover=parse_rate(t.get("switchover", 0), "link.switchover"),
        switchover_fixed_ms=_number(t.get("switchover_fixed_ms", 0), "link.switchover_fixed_ms",
                                    0.0, 2000 * 1000))


def _params(t: dict, where: str) -> dict:
    out = {}
    for k, v in t.items():
        if k in SIZE_PARAMS:
            v = parse_size(v, f"{where}.{k}")
        elif not isinstance(v, (bool, int, str)):
            # bool for the on/off parameters (report-reason, reuse-switchover-bandwidth);
            # the library refuses a bool for any other parameter when the scenario loads.
            raise ScenarioError(f"{where}.{k}: expected an integer, a string or true/false, "
                                f"got {v!r}")
        out[k] = v
    return out


def _caps(t: dict, where: str) -> dict:
    return {k: _bool(v, f"{where}.{k}") for k, v in t.items()}


def _action(t: dict, i: int) -> Action:
    where = f"actions[{i}]"
    t = _table(t, where)
    _check_keys(t, {"at_s", "set", "capabilities", "postcopy", "cancel", "ack"}, where)
    if "at_s" not in t:
        raise ScenarioError(f"{where}.at_s: required (simulated seconds after the start)")
    a = Action(
        at_s=_number(t["at_s"], f"{where}.at_s"),
        set=_params(_table(t.get("set", {}), f"{where}.set"), f"{where}.set"),
        capabilities=_caps(_table(t.get("capabilities", {}), f"{where}.capabilities"),
                           f"{where}.capabilities"),
        postcopy=_bool(t.get("postcopy", False), f"{where}.postcopy"),
        cancel=_bool(t.get("cancel", False), f"{where}.cancel"),
        ack=_bool(t.get("ack", False), f"{where}.ack"))
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
            raise ScenarioError(f"{where}.{key}: {e.message or e}") from None
    raise ScenarioError(f"{where}: {refused.message or refused}") from None


def _apply_caps(so: Any, s: Any, caps: dict, where: str) -> None:
    for name, on in caps.items():
        try:
            s.set_capability(name, on)
        except so.SwitchoverError as e:
            raise ScenarioError(f"{where}.{name}: {e.message or e}") from None


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
    _check_keys(raw, {"name", "description", "sim", "ram", "devices", "link", "params",
                      "capabilities", "actions"}, origin)
    sim = _table(raw.get("sim", {}), "sim")
    _check_keys(sim, {"seed", "tick_ms", "max_time_s"}, "sim")
    seed = sim.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"sim.seed: expected an integer, got {seed!r}")
    tick = sim.get("tick_ms", 50)
    if isinstance(tick, bool) or not isinstance(tick, int) or not 1 <= tick <= 1000:
        raise ScenarioError(f"sim.tick_ms: expected an integer in 1..1000, got {tick!r}")
    max_time = _number(sim.get("max_time_s", 600.0), "sim.max_time_s", 0.001, 7 * 24 * 3600)
    devices = raw.get("devices", [])
    if not isinstance(devices, list):
        raise ScenarioError(f"devices: expected an array of tables ([[devices]]), got {devices!r}")
    seen: set[str] = set()
    actions = raw.get("actions", [])
    if not isinstance(actions, list):
        raise ScenarioError(f"actions: expected an array of tables ([[actions]]), got {actions!r}")
    name = raw.get("name", Path(origin).stem)
    if not isinstance(name, str):
        raise ScenarioError(f"name: expected a string, got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"description: expected a string, got {description!r}")
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
    return from_dict(raw, str(path))


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
