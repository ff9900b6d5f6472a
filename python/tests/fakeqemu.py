"""A fake QEMU monitor for the watcher's tests: a QMP server (greeting, capabilities
negotiation, commands, errors in QMP's shape) in front of a small model of QEMU 7.2's
pre-copy, driven by real time so that the watcher's clock and the figures agree.

The model follows ``migration_iteration_run`` / ``ram_save_pending`` of QEMU 7.2: a round
sends the pages dirty at the last sync at ``max-bandwidth``; what the guest writes meanwhile
(``dirty_rate`` bytes/s over a ``dirty_region`` it cycles through, so never more than the
region) is found by the next ``migration_bitmap_sync``, which comes when the round is done
(``ram_save_pending``: the remaining below the threshold ``bandwidth × downtime-limit``) and
bumps ``dirty-sync-count``; what the round had left stays dirty (from the second loop round
on it lies in the dirtied region, so a sync finds at most the region); the migration
completes at a sync whose figure is below the threshold. ``ram.remaining`` is what the round
still has to send (the bitmap), as QEMU reports it; there is no top-level ``remaining``
(QEMU 7.2). The final copy runs without the rate limit (``migration_completion``) at
``final_bw``, with the status ``device`` meanwhile (the guest stopped), so the downtime is
``remaining / final_bw``, reported at ``completed`` in whole ms as QEMU's
``migration_downtime_end`` does (end − ``downtime_start``).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Dict, List, Optional


class Model:
    def __init__(self, ram_bytes: int, bandwidth: int, dirty_rate: float = 0.0,
                 dirty_region: int = 0, downtime_limit: int = 300,
                 final_bw: float = 2e9, setup_s: float = 0.02, device_status: bool = True):
        self.ram = ram_bytes
        self.params: Dict[str, Any] = {
            "downtime-limit": downtime_limit, "max-bandwidth": bandwidth,
            "avail-switchover-bandwidth": 0, "announce-initial": 50,
        }
        self.dirty_rate = dirty_rate
        self.region = dirty_region
        self.final_bw = final_bw
        self.setup_s = setup_s
        self.status = "none"
        self.started: Optional[float] = None
        self.t = 0.0
        self.round_left = float(ram_bytes)
        self.dirty = 0.0
        self.transferred = 0.0
        self.syncs = 0
        self.total_time = 0
        self.downtime: Optional[int] = None
        self.stop_t: Optional[float] = None
        # False: QEMU up to 8.0 without pause-before-switchover, which stays `active` through
        # the final copy; the reply after it shows the final syncs (the loop's and
        # ram_save_complete's) and nothing remaining.
        self.device_status = device_status
        self.error: Optional[str] = None

    def start(self, now: float) -> None:
        self.status, self.started, self.t = "setup", now, now

    def advance(self, now: float) -> None:
        if self.status not in ("setup", "active", "device"):
            return
        assert self.started is not None
        if self.status == "setup" and now - self.started >= self.setup_s:
            self.status, self.syncs, self.t = "active", 1, self.started + self.setup_s
        while self.status == "active" and self.t < now:
            dt = min(0.005, now - self.t)
            self.t += dt
            bw = self.params["max-bandwidth"]
            sent = min(self.round_left, bw * dt)
            self.round_left -= sent
            self.transferred += sent
            self.dirty = min(float(self.region), self.dirty + self.dirty_rate * dt)
            threshold = bw * self.params["downtime-limit"] / 1000
            if self.round_left < threshold:
                # ram_save_pending: remaining_size < max_size (the threshold) syncs the bitmap;
                # what the round had left stays dirty, plus what the guest wrote.
                self.syncs += 1
                found = self.round_left + self.dirty
                # From the second loop round on, what a round has left lies in the dirtied
                # region too: the two overlap, and the sync finds at most the region.
                if self.syncs > 2:
                    found = min(found, float(self.region) or found)
                self.round_left, self.dirty = found, 0.0
                if self.round_left < threshold:
                    # migration_completion: downtime_start, vm_stop, status `device` while
                    # the final copy runs at final_bw (no rate limit).
                    self.status, self.stop_t = "device", self.t
        while self.status == "device" and self.t < now:
            dt = min(0.005, now - self.t)
            sent = min(self.round_left, self.final_bw * dt)
            self.round_left -= sent
            self.transferred += sent
            if self.round_left <= 1e-6 * self.final_bw * dt:
                end = self.t + (sent / self.final_bw if self.final_bw else dt)
                self.round_left = 0
                self.status = "completed"
                # migration_downtime_end: end - downtime_start, whole ms.
                self.downtime = int(round((end - self.stop_t) * 1000))
                self.total_time = int(round((end - self.started) * 1000))
            self.t += dt
        if self.status in ("active", "device"):
            self.total_time = int((now - self.started) * 1000)

    def query_migrate(self) -> Dict[str, Any]:
        if self.status == "none":
            return {}
        if self.status == "device" and not self.device_status:
            info = self._reply("active")
            info["ram"]["remaining"] = 0
            info["ram"]["dirty-sync-count"] = self.syncs + 1
            return info
        return self._reply(self.status)

    def _reply(self, status: str) -> Dict[str, Any]:
        if status in ("setup", "cancelled"):
            return {"status": status}
        done = status == "completed"
        info: Dict[str, Any] = {"status": status, "ram": {
            "transferred": int(self.transferred), "remaining": 0 if done else int(self.round_left),
            "total": self.ram, "duplicate": 0, "normal": int(self.transferred) // 4096,
            "normal-bytes": int(self.transferred) // 4096 * 4096, "dirty-pages-rate": 0,
            "mbps": self.params["max-bandwidth"] * 8 / 1e6, "dirty-sync-count": self.syncs,
            "postcopy-requests": 0, "page-size": 4096, "multifd-bytes": 0,
            "pages-per-second": 0, "precopy-bytes": int(self.transferred),
            "downtime-bytes": 0, "postcopy-bytes": 0, "dirty-sync-missed-zero-copy": 0},
            "total-time": self.total_time, "setup-time": int(self.setup_s * 1000)}
        if done:
            info["downtime"] = self.downtime
        else:
            info["expected-downtime"] = self.params["downtime-limit"]
        return info


class FakeQemu:
    """A QMP server on a unix socket, in a thread; ``commands`` records what clients sent."""

    def __init__(self, path: str, model: Model, start_on_connect: bool = True,
                 refuse: Optional[Dict[str, str]] = None, hang_up_after: Optional[int] = None,
                 dirty_rate_mib: Optional[int] = None):
        self.path = path
        # calc-dirty-rate / query-dirty-rate answer with this rate (MiB/s); None: the commands
        # are not found, as on a QEMU without them.
        self.dirty_rate_mib = dirty_rate_mib
        self.dr_until: Optional[float] = None
        self.model = model
        self.start_on_connect = start_on_connect
        self.refuse = refuse or {}
        self.hang_up_after = hang_up_after
        self.commands: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FakeQemu":
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._client, path=self.path))
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader, writer) -> None:
        def send(obj):
            writer.write(json.dumps(obj).encode() + b"\r\n")

        send({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7},
                                  "package": "fake"}, "capabilities": []}})
        await writer.drain()
        if self.start_on_connect and self.model.status == "none":
            self.model.start(time.monotonic())
        handled = 0
        async for msg in _messages(reader):
            cmd, args, mid = msg.get("execute"), msg.get("arguments", {}), msg.get("id")
            with self.lock:
                self.commands.append({"execute": cmd, "arguments": args})
                self.model.advance(time.monotonic())
                reply: Dict[str, Any]
                if cmd in self.refuse:
                    reply = {"error": {"class": "GenericError", "desc": self.refuse[cmd]}}
                elif cmd == "qmp_capabilities":
                    reply = {"return": {}}
                elif cmd == "query-migrate":
                    reply = {"return": self.model.query_migrate()}
                elif cmd == "query-migrate-parameters":
                    reply = {"return": dict(self.model.params)}
                elif cmd == "migrate-set-parameters":
                    self.model.params.update(args)
                    reply = {"return": {}}
                elif cmd == "calc-dirty-rate" and self.dirty_rate_mib is not None:
                    # dirtyrate.c, page sampling: measured after calc-time seconds; the rate in
                    # whole MiB/s.
                    self.dr_until = time.monotonic() + float(args.get("calc-time", 1))
                    reply = {"return": {}}
                elif cmd == "query-dirty-rate" and self.dirty_rate_mib is not None:
                    measured = self.dr_until is not None and time.monotonic() >= self.dr_until
                    reply = {"return": {"status": "measured" if measured else "measuring",
                                        "dirty-rate": self.dirty_rate_mib if measured else 0,
                                        "calc-time": 1, "sample-pages": 512,
                                        "mode": "page-sampling"}}
                elif cmd == "migrate_cancel":
                    if self.model.status in ("setup", "active"):
                        self.model.status = "cancelled"
                    reply = {"return": {}}
                else:
                    reply = {"error": {"class": "CommandNotFound",
                                       "desc": f"The command {cmd} has not been found"}}
            if mid is not None:
                reply["id"] = mid
            send(reply)
            await writer.drain()
            handled += 1
            if self.hang_up_after is not None and handled >= self.hang_up_after:
                break
        writer.close()


async def _messages(reader):
    """QMP messages as a JSON stream: qemu.qmp ends them with no newline (QEMU's parser is a
    streaming one, json-streamer.c)."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        chunk = await reader.read(4096)
        if not chunk:
            return
        buf += chunk.decode()
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                msg, end = decoder.raw_decode(buf)
            except json.JSONDecodeError:
                break
            buf = buf[end:]
            yield msg
