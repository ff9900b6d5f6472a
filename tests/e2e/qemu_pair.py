"""A real QEMU migration between two QEMU processes on this machine, recorded.

Used by the real-guest scripts (``scripts/record-real-runs.sh``, the watcher's and the QEMU
integration's end-to-end scripts): a source QEMU boots the test guest of
``scripts/guest-image.sh`` (a Debian kernel, busybox and ``dirtier``, which fills memory and
then dirties pages at a set rate), a destination QEMU waits with ``-incoming
tcp:127.0.0.1:PORT``; both are driven over QMP with ``qemu.qmp`` (PyPI). The migration's
``query-migrate`` is sampled every 100 ms against one monotonic clock, scheduled actions
(``migrate-set-parameters`` at t = 40 s, ...) are applied on time, and everything goes into a
RUN.json. Both QEMUs are always killed, on errors and timeouts too.

As a library::

    sys.path.insert(0, "tests/e2e"); import qemu_pair
    spec = qemu_pair.GuestSpec(dirty_mib_s=40, region_mib=256)
    run = asyncio.run(qemu_pair.run_migration(
        qemu="/usr/bin/qemu-system-x86_64", guest=spec,
        parameters={"max-bandwidth": 32 * qemu_pair.MiB, "downtime-limit": 300},
        actions=[qemu_pair.Action(40.0, parameters={"downtime-limit": 10000})],
        timeout_s=120, workdir="out/run1"))

or, for more control (extra monitors for a watcher, a callback per sample),
``async with qemu_pair.QemuPair(...) as pair: await pair.start(); await pair.migrate(...)``.

As a program: ``.venv/bin/python tests/e2e/qemu_pair.py --help``.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional, Sequence, Union

try:
    from qemu.qmp import QMPClient
except ImportError as exc:  # pragma: no cover - the scripts install it first
    raise SystemExit("qemu_pair: the qemu.qmp package is missing "
                     "(.venv/bin/python -m pip install qemu.qmp)") from exc

MiB = 2**20
RUN_FORMAT = "switchover-real-run/1"
REPO = Path(__file__).resolve().parents[2]
FINAL_STATUSES = ("completed", "failed", "cancelled")


class HarnessError(RuntimeError):
    """The pair could not be set up or driven (boot failed, QEMU died, a timeout)."""


@dataclasses.dataclass
class GuestSpec:
    """The test guest: its size and what ``dirtier`` does inside it (see dirtier.c)."""
    mem_mib: int = 1024
    fill_mib: int = 512
    region_mib: int = 256
    dirty_mib_s: int = 0
    pattern: str = "sequential"        # sequential | uniform | hotspot
    hot_share: int = 90                # hotspot: percent of writes into the hot set
    hot_mib: Optional[int] = None      # hotspot: hot set size (default region / 10)
    smp: int = 1
    extra_append: str = ""

    def append_line(self) -> str:
        if self.pattern not in ("sequential", "uniform", "hotspot"):
            raise ValueError(f"pattern {self.pattern!r} is not sequential, uniform or hotspot")
        parts = ["console=ttyS0", "panic=-1", "loglevel=4",
                 f"swo_fill_mib={int(self.fill_mib)}", f"swo_region_mib={int(self.region_mib)}",
                 f"swo_dirty_mib_s={int(self.dirty_mib_s)}", f"swo_pattern={self.pattern}",
                 f"swo_hot_share={int(self.hot_share)}"]
        if self.hot_mib is not None:
            parts.append(f"swo_hot_mib={int(self.hot_mib)}")
        if self.extra_append:
            parts.append(self.extra_append)
        return " ".join(parts)


@dataclasses.dataclass
class Action:
    """Something done at ``at_s`` seconds after ``migrate`` was issued: parameters and/or
    capabilities set, a QMP command, or an arbitrary ``fn(pair, t_s)`` (may be async)."""
    at_s: float
    parameters: Optional[dict] = None
    capabilities: Optional[dict] = None
    command: Optional[str] = None
    arguments: Optional[dict] = None
    fn: Optional[Callable[["QemuPair", float], Any]] = None
    label: str = ""

    def describe(self) -> dict:
        d: dict[str, Any] = {"at_s": self.at_s}
        for k in ("parameters", "capabilities", "command", "arguments"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.fn is not None:
            d["fn"] = getattr(self.fn, "__name__", "callable")
        if self.label:
            d["label"] = self.label
        return d


def guest_image_dir() -> Path:
    """Builds or reuses the guest image (scripts/guest-image.sh) and returns its directory."""
    out = subprocess.run([str(REPO / "scripts" / "guest-image.sh"), "--print-dir"],
                         stdout=subprocess.PIPE, check=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def cache_dir() -> Path:
    base = os.environ.get("SWITCHOVER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "switchover")
    return Path(base)


def kvm_boots(qemu: str, guest_dir: Path, timeout_s: float = 40.0) -> bool:
    """Whether the test guest boots under KVM with this QEMU on this host.

    ``-accel kvm -accel tcg`` falls back to TCG only where KVM cannot be opened; a nested
    /dev/kvm can open and still hang the guest (seen on this project's build machine: the
    kernel stops after "Probing EDD"). So the guest is booted once under KVM alone and the
    answer is cached per QEMU version, host kernel and guest image."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    key = f"{qemu_version(qemu)}-{os.uname().release}-{guest_dir.name}"
    probe = cache_dir() / "kvm-probe" / re.sub(r"[^A-Za-z0-9._-]", "_", key)
    if probe.exists():
        return probe.read_text().strip() == "yes"
    with tempfile.TemporaryDirectory(prefix="swo-kvm-probe-") as tmp:
        serial = Path(tmp) / "serial"
        argv = [qemu, "-accel", "kvm", "-m", "256", "-nodefaults", "-no-user-config",
                "-display", "none", "-vga", "none", "-no-reboot",
                "-kernel", str(guest_dir / "vmlinuz"), "-initrd", str(guest_dir / "initrd.img"),
                "-append", "console=ttyS0 panic=-1 swo_fill_mib=8 swo_region_mib=8",
                "-serial", f"file:{serial}"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        ok = False
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and p.poll() is None:
                if serial.exists() and b"SWO-READY" in serial.read_bytes():
                    ok = True
                    break
                time.sleep(0.2)
        finally:
            p.kill()
            p.wait()
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("yes\n" if ok else "no\n")
    return ok


def resolve_accel(accel: Union[str, Sequence[str]], qemu: str, guest_dir: Path) -> list[str]:
    """``"auto"`` → ``$SWO_ACCEL`` if set, else ``["kvm", "tcg"]`` where the guest boots
    under KVM, else ``["tcg"]``;
    a list is taken as given (each becomes one ``-accel``)."""
    if isinstance(accel, str):
        if accel == "auto" and os.environ.get("SWO_ACCEL"):
            accel = os.environ["SWO_ACCEL"]
        if accel != "auto":
            return [a for a in accel.split(",") if a]
        return ["kvm", "tcg"] if kvm_boots(qemu, guest_dir) else ["tcg"]
    return list(accel)


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_version(qemu: str) -> str:
    out = subprocess.run([qemu, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=False).stdout
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else out.strip()


class _Proc:
    """One QEMU process with its monitor sockets and serial log."""

    def __init__(self, name: str, argv: list[str], workdir: Path):
        self.name = name
        self.argv = argv
        self.log_path = workdir / f"{name}.log"
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> None:
        log = open(self.log_path, "wb")
        try:
            # Own process group: a Ctrl-C of the harness reaches QEMU only through kill().
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=10)


class QemuPair:
    """A source QEMU running the test guest and a destination QEMU waiting for it."""

    def __init__(self, qemu: str = "qemu-system-x86_64", *,
                 firmware_dirs: Sequence[str] = (),
                 guest: Optional[GuestSpec] = None,
                 guest_dir: Optional[Union[str, Path]] = None,
                 accel: Union[str, Sequence[str]] = "auto",
                 machine: Optional[str] = None,
                 workdir: Optional[Union[str, Path]] = None,
                 extra_args: Sequence[str] = (),
                 src_extra_args: Sequence[str] = (),
                 dst_extra_args: Sequence[str] = (),
                 extra_qmp_sockets: int = 0,
                 env: Optional[dict] = None):
        resolved = shutil.which(qemu) if os.sep not in qemu else qemu
        if not resolved or not os.access(resolved, os.X_OK):
            raise HarnessError(f"QEMU binary {qemu!r} not found or not executable")
        self.qemu = str(resolved)
        self.firmware_dirs = [str(d) for d in firmware_dirs]
        self.guest = guest or GuestSpec()
        self.guest_dir = Path(guest_dir) if guest_dir else None
        self.accel_requested = accel if isinstance(accel, str) else list(accel)
        self.accel: list[str] = []
        self.machine = machine
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="swo-pair-"))
        self.extra_args = list(extra_args)
        self.src_extra_args = list(src_extra_args)
        self.dst_extra_args = list(dst_extra_args)
        self.n_extra_qmp = extra_qmp_sockets
        self.env = env
        # Unix socket paths are limited to 108 bytes: keep them in a short private directory.
        self.sockdir = Path(tempfile.mkdtemp(prefix="swo-qmp-"))
        self.src_qmp_path = self.sockdir / "src.qmp"
        self.dst_qmp_path = self.sockdir / "dst.qmp"
        # Further monitors on the source, free for other QMP clients (e.g. switchover-watch):
        # a QEMU monitor socket serves one client at a time.
        self.extra_qmp_paths = [self.sockdir / f"src-extra{i}.qmp" for i in range(extra_qmp_sockets)]
        self.src_serial = self.workdir / "src.serial"
        self.dst_serial = self.workdir / "dst.serial"
        self.port: Optional[int] = None
        self.src: Optional[_Proc] = None
        self.dst: Optional[_Proc] = None
        self.src_qmp: Optional[QMPClient] = None
        self.dst_qmp: Optional[QMPClient] = None
        self.t_ready: Optional[float] = None        # monotonic time of SWO-READY seen
        self.boot_s: Optional[float] = None
        self.version: Optional[str] = None
        self.kvm: Optional[bool] = None

    # -- life cycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> "QemuPair":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _argv(self, role: str) -> list[str]:
        assert self.guest_dir is not None
        argv = [self.qemu]
        for d in self.firmware_dirs:
            argv += ["-L", d]
        for a in self.accel:
            argv += ["-accel", a]
        if self.machine:
            argv += ["-machine", self.machine]
        serial = self.src_serial if role == "src" else self.dst_serial
        qmp = self.src_qmp_path if role == "src" else self.dst_qmp_path
        argv += ["-m", str(self.guest.mem_mib), "-smp", str(self.guest.smp),
                 "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
                 "-no-reboot",
                 "-kernel", str(self.guest_dir / "vmlinuz"),
                 "-initrd", str(self.guest_dir / "initrd.img"),
                 "-append", self.guest.append_line(),
                 "-serial", f"file:{serial}",
                 "-qmp", f"unix:{qmp},server=on,wait=off"]
        if role == "src":
            for p in self.extra_qmp_paths:
                argv += ["-qmp", f"unix:{p},server=on,wait=off"]
        argv += self.extra_args
        if role == "src":
            argv += self.src_extra_args
        else:
            argv += ["-incoming", f"tcp:127.0.0.1:{self.port}"] + self.dst_extra_args
        return argv

    async def _connect(self, proc: _Proc, path: Path, timeout_s: float) -> QMPClient:
        deadline = time.monotonic() + timeout_s
        last: Optional[Exception] = None
        while time.monotonic() < deadline:
            if not proc.alive():
                raise HarnessError(f"{proc.name} QEMU exited (status {proc.popen.returncode}): "
                                   f"{proc.log_tail()}")
            if path.exists():
                client = QMPClient(proc.name)
                try:
                    await client.connect(str(path))
                    return client
                except Exception as exc:  # the socket may not accept yet
                    last = exc
            await asyncio.sleep(0.05)
        raise HarnessError(f"{proc.name} QMP socket {path} did not answer in {timeout_s} s ({last})")

    async def start(self, boot_timeout_s: float = 180.0) -> None:
        """Starts both QEMUs, connects QMP and waits for the guest's SWO-READY line."""
        if self.guest_dir is None:
            self.guest_dir = await asyncio.to_thread(guest_image_dir)
        self.accel = await asyncio.to_thread(resolve_accel, self.accel_requested, self.qemu,
                                             self.guest_dir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for p in (self.src_serial, self.dst_serial):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.version = qemu_version(self.qemu)
        # The destination first; a port taken between probing and binding is retried.
        for attempt in range(5):
            self.port = free_tcp_port()
            self.dst = _Proc("dst", self._argv("dst"), self.workdir)
            self.dst.start()
            try:
                self.dst_qmp = await self._connect(self.dst, self.dst_qmp_path, 30)
                break
            except HarnessError:
                if attempt == 4 or "Address already in use" not in self.dst.log_tail():
                    raise
                self.dst.kill()
        t_boot = time.monotonic()
        self.src = _Proc("src", self._argv("src"), self.workdir)
        self.src.start()
        self.src_qmp = await self._connect(self.src, self.src_qmp_path, 30)
        kvm = await self.src_qmp.execute("query-kvm")
        self.kvm = bool(kvm.get("enabled"))
        await self.wait_serial(self.src_serial, "SWO-READY", boot_timeout_s, self.src)
        self.t_ready = time.monotonic()
        self.boot_s = self.t_ready - t_boot

    async def wait_serial(self, path: Path, marker: str, timeout_s: float,
                          proc: Optional[_Proc] = None, after: int = 0) -> str:
        """Waits for a line containing ``marker`` in a serial log (from byte ``after``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                text = path.read_bytes()[after:].decode(errors="replace")
            except FileNotFoundError:
                text = ""
            for line in text.splitlines():
                if marker in line:
                    if "SWO-ERROR" in text:
                        raise HarnessError(f"guest reported: {text[text.index('SWO-ERROR'):][:200]}")
                    return line
            if proc is not None and not proc.alive():
                raise HarnessError(f"{proc.name} QEMU exited while waiting for {marker!r}: "
                                   f"{proc.log_tail()}\nserial: {text[-1500:]}")
            if time.monotonic() > deadline:
                raise HarnessError(f"no {marker!r} on {path} after {timeout_s} s; serial ends: "
                                   f"{text[-1500:]}")
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        """Disconnects and kills both QEMUs (safe to call more than once)."""
        for client in (self.src_qmp, self.dst_qmp):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 3)
        self.src_qmp = self.dst_qmp = None
        for proc in (self.src, self.dst):
            if proc is not None:
                proc.kill()
        shutil.rmtree(self.sockdir, ignore_errors=True)

    # -- the migration ------------------------------------------------------------------------
    async def migrate(self, *, capabilities: Optional[dict] = None,
                      parameters: Optional[dict] = None,
                      actions: Sequence[Action] = (),
                      timeout_s: float = 300.0,
                      sample_interval_s: float = 0.1,
                      on_sample: Optional[Callable[["QemuPair", dict], Any]] = None,
                      check_destination: bool = True) -> dict:
        """Sets capabilities and parameters on the source, migrates, samples and returns the
        record (see :func:`summarise` for the outcome). A migration still running after
        ``timeout_s`` is cancelled; ``outcome.timed_out`` then says so."""
        assert self.src_qmp is not None and self.dst_qmp is not None, "start() first"
        capabilities = dict(capabilities or {})
        parameters = dict(parameters or {})
        if capabilities:
            caps = [{"capability": k, "state": bool(v)} for k, v in capabilities.items()]
            await self.src_qmp.execute("migrate-set-capabilities", {"capabilities": caps})
            await self.dst_qmp.execute("migrate-set-capabilities", {"capabilities": caps})
        if parameters:
            await self.src_qmp.execute("migrate-set-parameters", parameters)
        params_now = await self.src_qmp.execute("query-migrate-parameters")
        caps_now = await self.src_qmp.execute("query-migrate-capabilities")
        src_serial_mark = self.src_serial.stat().st_size if self.src_serial.exists() else 0

        events: list[dict] = []
        applied: list[dict] = []
        samples: list[dict] = []
        pending = sorted(actions, key=lambda a: a.at_s)
        t0 = time.monotonic()

        async def collect_events() -> None:
            async for ev in self.src_qmp.events:
                events.append({"t": time.monotonic() - t0, "event": ev.get("event"),
                               "data": ev.get("data", {})})

        ev_task = asyncio.create_task(collect_events())
        timed_out = False
        cancel_sent_at: Optional[float] = None
        try:
            await self.src_qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{self.port}"})
            k = 0
            while True:
                t = time.monotonic() - t0
                while pending and pending[0].at_s <= t:
                    act = pending.pop(0)
                    applied.append(dict(act.describe(), applied_at_s=t))
                    await self._apply(act, t)
                info = await self.src_qmp.execute("query-migrate")
                sample = {"t": round(time.monotonic() - t0, 4), "query-migrate": info}
                samples.append(sample)
                if on_sample is not None:
                    r = on_sample(self, sample)
                    if inspect.isawaitable(r):
                        await r
                status = info.get("status")
                if status in FINAL_STATUSES:
                    break
                if not self.src.alive():
                    raise HarnessError(f"source QEMU died during migration: {self.src.log_tail()}")
                if t > timeout_s and cancel_sent_at is None:
                    timed_out = True
                    cancel_sent_at = t
                    await self.src_qmp.execute("migrate_cancel")
                if cancel_sent_at is not None and t > cancel_sent_at + 30:
                    raise HarnessError("migration did not end 30 s after migrate_cancel")
                k += 1
                delay = t0 + k * sample_interval_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:  # a slow sample: keep the grid, skip the missed ticks
                    k = int((time.monotonic() - t0) / sample_interval_s) + 1
        finally:
            await asyncio.sleep(0.2)   # let the last events arrive
            ev_task.cancel()
            with contextlib.suppress(BaseException):
                await ev_task

        dest: dict[str, Any] = {}
        final_status = samples[-1]["query-migrate"].get("status") if samples else None
        if final_status == "completed":
            st = await self.dst_qmp.execute("query-status")
            dest["status"] = st.get("status")
            if check_destination:
                # The guest prints SWO-STAT every 5 s: a line on the destination's serial log
                # shows it runs there.
                try:
                    await self.wait_serial(self.dst_serial, "SWO-STAT", 12, self.dst)
                    dest["guest_alive"] = True
                except HarnessError:
                    dest["guest_alive"] = False
        guest_stats = parse_guest_stats(self.src_serial.read_text(errors="replace")
                                        if self.src_serial.exists() else "")
        record = {
            "format": RUN_FORMAT,
            "inputs": {
                "guest": dataclasses.asdict(self.guest),
                "append": self.guest.append_line(),
                "guest_image": str(self.guest_dir),
                "guest_manifest": _read(self.guest_dir / "manifest.txt"),
                "qemu": {"binary": self.qemu, "version": self.version,
                         "accel_requested": self.accel_requested,
                         "accel_args": self.accel,
                         "accel": "kvm" if self.kvm else "tcg",
                         "machine": self.machine, "firmware_dirs": self.firmware_dirs,
                         "src_argv": self.src.argv if self.src else None},
                "capabilities_set": capabilities,
                "parameters_set": parameters,
                "migrate_parameters": params_now,
                "migrate_capabilities": {c["capability"]: c["state"] for c in caps_now},
                "actions": [a.describe() for a in actions],
                "timeout_s": timeout_s,
                "sample_interval_s": sample_interval_s,
                "boot_s": self.boot_s,
                "host": {"nproc": os.cpu_count(), "uname": " ".join(os.uname())},
            },
            "guest_stats": guest_stats,
            "samples": samples,
            "events": events,
            "actions_applied": applied,
            "destination": dest,
        }
        record["outcome"] = summarise(record, timed_out=timed_out)
        return record

    async def _apply(self, act: Action, t: float) -> None:
        if act.parameters:
            await self.src_qmp.execute("migrate-set-parameters", act.parameters)
        if act.capabilities:
            caps = [{"capability": k, "state": bool(v)} for k, v in act.capabilities.items()]
            await self.src_qmp.execute("migrate-set-capabilities", {"capabilities": caps})
        if act.command:
            await self.src_qmp.execute(act.command, act.arguments or {})
        if act.fn is not None:
            r = act.fn(self, t)
            if inspect.isawaitable(r):
                await r


def _read(p: Path) -> Optional[str]:
    try:
        return p.read_text()
    except OSError:
        return None


def parse_guest_stats(serial: str) -> dict:
    """The guest's own account: its SWO-READY settings and SWO-STAT (t, pages written) lines,
    and the dirty rate it achieved (MiB/s) between the first and the last of them."""
    ready = None
    stats = []
    for line in serial.splitlines():
        if "SWO-READY" in line:
            ready = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        m = re.search(r"SWO-STAT t=([\d.]+) writes=(\d+)", line)
        if m:
            stats.append([float(m.group(1)), int(m.group(2))])
    rate = None
    if len(stats) >= 2 and stats[-1][0] > stats[0][0]:
        rate = (stats[-1][1] - stats[0][1]) * 4096 / MiB / (stats[-1][0] - stats[0][0])
    return {"ready": ready, "stat": stats, "achieved_dirty_mib_s": rate}


def _ram(sample: dict) -> dict:
    return sample["query-migrate"].get("ram", {}) or {}


def syncs(samples: Sequence[dict]) -> list[dict]:
    """Per dirty-bitmap sync: the first sample that shows a new ``dirty-sync-count`` (at most
    one sample interval after the sync), with the figures QEMU reported there."""
    out = []
    last = None
    for s in samples:
        ram = _ram(s)
        n = ram.get("dirty-sync-count")
        if n is None or n == last:
            continue
        last = n
        q = s["query-migrate"]
        out.append({"t": s["t"], "dirty-sync-count": n, "status": q.get("status"),
                    "remaining": ram.get("remaining"), "transferred": ram.get("transferred"),
                    "expected-downtime": q.get("expected-downtime"),
                    "dirty-pages-rate": ram.get("dirty-pages-rate"), "mbps": ram.get("mbps")})
    return out


def summarise(record: dict, timed_out: bool = False) -> dict:
    """The outcome of a recorded run, from its samples."""
    samples = record["samples"]
    last = samples[-1]["query-migrate"] if samples else {}
    active = [s for s in samples if s["query-migrate"].get("status") == "active"]
    last_active = active[-1] if active else None
    ram = last.get("ram", {}) or {}
    return {
        "status": last.get("status"),
        "timed_out": timed_out,
        "total-time": last.get("total-time"),
        "downtime": last.get("downtime"),
        "setup-time": last.get("setup-time"),
        "expected-downtime-at-switchover": (last_active["query-migrate"].get("expected-downtime")
                                            if last_active else None),
        "remaining-at-switchover": _ram(last_active).get("remaining") if last_active else None,
        "t-last-active": last_active["t"] if last_active else None,
        "passes": ram.get("dirty-sync-count"),
        "transferred": ram.get("transferred"),
        "normal": ram.get("normal"),
        "duplicate": ram.get("duplicate"),
        "total": ram.get("total"),
        "samples": len(samples),
        "syncs": syncs(samples),
    }


async def run_migration(qemu: str = "qemu-system-x86_64", *, guest: Optional[GuestSpec] = None,
                        firmware_dirs: Sequence[str] = (),
                        accel: Union[str, Sequence[str]] = "auto",
                        capabilities: Optional[dict] = None, parameters: Optional[dict] = None,
                        actions: Sequence[Action] = (), timeout_s: float = 300.0,
                        boot_timeout_s: float = 180.0, workdir: Optional[str] = None,
                        guest_dir: Optional[str] = None, settle_s: float = 0.0,
                        **pair_kwargs) -> dict:
    """Boots a pair, waits for the workload (and ``settle_s`` more), migrates, records;
    both QEMUs are killed however it ends."""
    pair = QemuPair(qemu, firmware_dirs=firmware_dirs, guest=guest, accel=accel,
                    workdir=workdir, guest_dir=guest_dir, **pair_kwargs)
    try:
        await pair.start(boot_timeout_s)
        if settle_s > 0:
            await asyncio.sleep(settle_s)
        return await pair.migrate(capabilities=capabilities, parameters=parameters,
                                  actions=actions, timeout_s=timeout_s)
    finally:
        await pair.close()


def _parse_action(text: str) -> Action:
    """``T:key=value[,key=value]`` → migrate-set-parameters at T seconds."""
    m = re.fullmatch(r"([\d.]+):(.+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"--at {text!r}: expected SECONDS:param=value[,...]")
    params = {}
    for kv in m.group(2).split(","):
        if "=" not in kv:
            raise argparse.ArgumentTypeError(f"--at {text!r}: {kv!r} is not param=value")
        k, v = kv.split("=", 1)
        params[k] = _value(v)
    return Action(float(m.group(1)), parameters=params)


def _value(v: str) -> Any:
    if v in ("true", "false"):
        return v == "true"
    try:
        return int(v)
    except ValueError:
        return v


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Record one real QEMU migration to a RUN.json.")
    ap.add_argument("--qemu", default="qemu-system-x86_64", help="QEMU binary")
    ap.add_argument("-L", dest="firmware", action="append", default=[],
                    help="firmware directory (repeatable), passed to both QEMUs")
    ap.add_argument("--accel", default="auto",
                    help="auto (default: kvm,tcg where the guest boots under KVM, else tcg) "
                         "or a comma-separated list, each passed as -accel")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--mem", type=int, default=1024, help="guest MiB (default 1024)")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--fill", type=int, default=512, help="MiB filled once (default 512)")
    ap.add_argument("--region", type=int, default=256, help="MiB the workload dirties over")
    ap.add_argument("--rate", type=int, default=0, help="MiB/s dirtied (default 0: idle)")
    ap.add_argument("--pattern", default="sequential", choices=["sequential", "uniform", "hotspot"])
    ap.add_argument("--hot-share", type=int, default=90)
    ap.add_argument("--hot-mib", type=int, default=None)
    ap.add_argument("--max-bandwidth", type=float, default=None, help="MiB/s")
    ap.add_argument("--downtime-limit", type=int, default=None, help="ms")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="another migrate-set-parameters entry (repeatable)")
    ap.add_argument("--cap", action="append", default=[], metavar="NAME[=on|off]",
                    help="a migration capability (repeatable)")
    ap.add_argument("--at", action="append", default=[], type=_parse_action,
                    metavar="T:KEY=VALUE[,...]", help="set parameters at T seconds (repeatable)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to let the workload run after SWO-READY before migrating")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="cancel the migration after this many seconds")
    ap.add_argument("--workdir", default=None, help="logs and serial files (default: a temp dir)")
    ap.add_argument("--guest-dir", default=None, help="vmlinuz + initrd.img (default: build)")
    ap.add_argument("--out", required=True, help="RUN.json to write")
    args = ap.parse_args(argv)

    guest = GuestSpec(mem_mib=args.mem, fill_mib=args.fill, region_mib=args.region,
                      dirty_mib_s=args.rate, pattern=args.pattern, hot_share=args.hot_share,
                      hot_mib=args.hot_mib, smp=args.smp)
    params: dict[str, Any] = {}
    if args.max_bandwidth is not None:
        params["max-bandwidth"] = int(args.max_bandwidth * MiB)
    if args.downtime_limit is not None:
        params["downtime-limit"] = args.downtime_limit
    for kv in args.param:
        k, _, v = kv.partition("=")
        params[k] = _value(v)
    caps = {}
    for c in args.cap:
        k, _, v = c.partition("=")
        caps[k] = v not in ("off", "false", "0")
    accel = args.accel
    try:
        record = asyncio.run(run_migration(
            args.qemu, guest=guest, firmware_dirs=args.firmware, accel=accel,
            capabilities=caps, parameters=params, actions=args.at, timeout_s=args.timeout,
            workdir=args.workdir, guest_dir=args.guest_dir, settle_s=args.settle,
            machine=args.machine))
    except HarnessError as exc:
        print(f"qemu_pair: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    o = record["outcome"]
    print(f"{out}: {o['status']}{' (timed out)' if o['timed_out'] else ''}, "
          f"total {o['total-time']} ms, downtime {o['downtime']} ms, "
          f"expected {o['expected-downtime-at-switchover']} ms, passes {o['passes']}, "
          f"transferred {o['transferred']} B, accel {record['inputs']['qemu']['accel']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
