"""The simulated VM: the truth the library is asked to judge.

Pure arithmetic, no library calls: :class:`GuestRam` (a dirty bitmap in page counts),
:class:`Device` (a VFIO device's state and what its driver reports), :class:`Link` (bytes
per tick with seeded jitter). The simulation loop (``run.py``) moves bytes between them and
tells the library what happened.
"""
from __future__ import annotations

import errno
import math
import random

from .scenario import DeviceSpec, LinkSpec, RamSpec

MiB = 2**20


class GuestRam:
    """Guest RAM as page counts, following QEMU's rounds.

    ``bulk`` pages were never sent (the first round; a ``zero_share`` of them are zero
    pages), ``resend`` pages were sent and dirtied again, and found by a dirty-bitmap sync.
    Together they are the migration bitmap (``dirty_pages``): what a round still has to send,
    the fast query's precopy figure. Between syncs the bitmap only shrinks: QEMU collects the
    guest's writes (KVM's dirty log, TCG's dirty memory bitmap) only in
    ``migration_bitmap_sync`` (migration/ram.c), so a page written during a round is found
    at the next sync, whether it was sent before or after the write.

    ``unsynced`` pages were written since the last sync: the distinct pages of the working set
    hit by the ``writes`` page writes done since then (:meth:`distinct_pages`, by ``pattern``).
    A sync (the exact query) folds those that are not already in the bitmap into ``resend``.
    """

    def __init__(self, spec: RamSpec):
        self.spec = spec
        self.total = spec.total_pages
        self.ws = max(1, spec.working_set_pages)
        self.hot = spec.hot_set_pages
        self.bulk = float(self.total)
        self.resend = 0.0
        self.unsynced = 0.0
        self.writes = 0.0             # page writes since the last sync
        self.running = True
        self.dirtying = True          # false once the guest runs on the destination
        self.sent_normal = 0
        self.sent_zero = 0
        self._bulk_sent = 0.0
        self._resend_sent = 0.0

    def distinct_pages(self, writes: float) -> float:
        """Distinct pages of the working set (``W`` pages) dirtied by ``writes`` page writes.

        - ``sequential``: the guest sweeps its working set page after page, wrapping (a
          ``memset`` loop, the test guest's ``dirtier``): ``min(writes, W)``; the whole set is
          dirty again every ``W / rate`` seconds.
        - ``uniform``: each write hits a page drawn uniformly: ``W * (1 - exp(-writes / W))``.
        - ``hotspot``: a share ``h`` of the writes falls uniformly on a hot set of ``H`` pages,
          the rest uniformly on the whole working set:
          ``H * (1 - exp(-(h/H + (1-h)/W) * writes)) + (W - H) * (1 - exp(-(1-h)/W * writes))``.
        """
        if writes <= 0:
            return 0.0
        W = float(self.ws)
        pattern = self.spec.pattern
        if pattern == "sequential":
            return min(writes, W)
        if pattern == "hotspot":
            H = float(self.hot)
            h = self.spec.hot_share
            cold = -math.expm1(-(1 - h) / W * writes)
            hot = -math.expm1(-(h / H + (1 - h) / W) * writes)
            return H * hot + (W - H) * cold
        return W * -math.expm1(-writes / W)

    # -- guest side --------------------------------------------------------------------
    def advance(self, dt_s: float, t_s: float) -> None:
        """The guest runs for ``dt_s`` seconds at its dirty rate at time ``t_s``."""
        if not (self.running and self.dirtying) or dt_s <= 0:
            return
        writes = self.spec.dirty_rate_at(t_s) * MiB * dt_s / self.spec.page_size
        if writes <= 0:
            return
        self.writes += writes
        self.unsynced = max(self.unsynced, self.distinct_pages(self.writes))

    def sync(self) -> tuple[int, int]:
        """The dirty-bitmap sync: (dirty pages left, pages newly dirtied since the last)."""
        newly = self.unsynced
        already = min(1.0, self.bulk / self.total + self.resend / self.ws)
        self.resend = min(float(self.total) - self.bulk,
                          self.resend + newly * max(0.0, 1.0 - already))
        self.unsynced = 0.0
        self.writes = 0.0
        return self.dirty_pages, round(newly)

    # -- figures -----------------------------------------------------------------------
    @property
    def dirty_pages(self) -> int:
        """Pages in the bitmap (what the library's RAM model counts)."""
        return min(self.total, round(self.bulk + self.resend))

    def wire_bytes_left(self) -> float:
        """Bytes the bitmap still needs on the wire (zero pages are cheap)."""
        return self._page_cost_sum(self.bulk, self.resend)

    def _page_cost_sum(self, bulk: float, resend: float) -> float:
        s = self.spec
        # QEMU's save_page_header (migration/ram.c) precedes every page: a zero page is that
        # header and one byte (zero_page_wire_bytes), a normal page the header and its data.
        normal = s.page_size + s.page_header_bytes
        bulk_cost = s.zero_share * s.zero_page_wire_bytes + (1 - s.zero_share) * normal
        return bulk * bulk_cost + resend * normal

    # -- sending -----------------------------------------------------------------------
    def send(self, budget: float) -> tuple[float, int, int]:
        """Sends pages worth at most ``budget`` wire bytes, walking the bitmap so that bulk
        and re-dirtied pages leave in proportion. Returns (bytes, normal pages, zero pages);
        page counts are whole, bytes follow them."""
        pages_left = self.bulk + self.resend
        if budget <= 0 or pages_left < 0.5:
            return 0.0, 0, 0
        cost_all = self.wire_bytes_left()
        share = 1.0 if cost_all <= budget else budget / cost_all
        bulk_before, resend_before = self.bulk, self.resend
        self.bulk = bulk_before * (1 - share)
        self.resend = resend_before * (1 - share)
        if share == 1.0:
            self.bulk = self.resend = 0.0
        # Whole pages for the library's counters, rounded from running totals so the
        # counts never drift from the fractional model.
        sent_bulk = bulk_before - self.bulk
        sent_resend = resend_before - self.resend
        self._bulk_sent += sent_bulk
        self._resend_sent += sent_resend
        zero_total = round(self._bulk_sent * self.spec.zero_share)
        normal_total = round(self._bulk_sent * (1 - self.spec.zero_share) + self._resend_sent)
        zero = zero_total - self.sent_zero
        normal = normal_total - self.sent_normal
        self.sent_zero, self.sent_normal = zero_total, normal_total
        return self._page_cost_sum(sent_bulk, sent_resend), normal, zero


class Device:
    """A VFIO device: its true migration state and what its driver reports about it."""

    def __init__(self, spec: DeviceSpec):
        self.spec = spec
        self.core = float(spec.stop_copy - spec.precopy_initial)   # moves only when stopped
        self.initial = float(spec.precopy_initial)                 # precopy data not yet read
        self.dirty = 0.0                                           # re-dirtied precopy data
        self.running = True
        self.read_total = 0

    def advance(self, dt_s: float) -> None:
        if self.running and self.spec.dirty_rate_mib_s > 0 and dt_s > 0:
            cap = float(self.spec.stop_copy)
            self.dirty = min(cap, self.dirty + self.spec.dirty_rate_mib_s * MiB * dt_s)

    @property
    def precopy_left(self) -> float:
        return self.initial + self.dirty

    @property
    def stop_copy_length(self) -> float:
        """The true total the stop-copy phase would move now."""
        return self.core + self.initial + self.dirty

    def read_precopy(self, budget: float) -> int:
        """Reads up to ``budget`` bytes of precopy data; returns whole bytes read."""
        n = int(min(budget, self.precopy_left))
        take = min(float(n), self.initial)
        self.initial -= take
        self.dirty = max(0.0, self.dirty - (n - take))
        self.read_total += n
        return n

    def read_stop_copy(self, budget: float) -> int:
        n = int(min(budget, math.ceil(self.stop_copy_length)))
        left = float(n)
        for part in ("initial", "dirty", "core"):
            take = min(left, getattr(self, part))
            setattr(self, part, getattr(self, part) - take)
            left -= take
        self.read_total += n
        return n

    # -- what the driver says (the VFIO readers handed to the library) ------------------
    def _report(self, true_value: float) -> int:
        fault = self.spec.fault
        if fault == "garbage":
            return self.spec.garbage_value
        if fault == "ioctl-fails":
            raise OSError(errno.EIO, "simulated ioctl failure")
        if fault == "lies-low":
            return int(true_value * self.spec.lie_factor)
        return round(true_value)

    def query_stop_copy_size(self) -> int:
        return self._report(self.stop_copy_length)

    def query_precopy_info(self) -> tuple[int, int]:
        if self.spec.fault == "garbage":
            return self.spec.garbage_value, self.spec.garbage_value
        return self._report(self.initial), self._report(self.dirty)


class Link:
    """Bytes per second the migration can move, with seeded jitter.

    Before switchover: min(link, sender ceiling, max-bandwidth); at switchover the rate
    limit is lifted and the sender's real stopped-guest speed applies.
    """

    def __init__(self, spec: LinkSpec, seed: int):
        self.spec = spec
        self.rng = random.Random(seed)

    def _jitter(self) -> float:
        j = self.spec.jitter
        return 1.0 + self.rng.uniform(-j, j) if j > 0 else 1.0

    def precopy_rate(self, max_bandwidth: float) -> float:
        rate = self.spec.precopy_ceiling() * self._jitter()
        if max_bandwidth > 0:
            rate = min(rate, max_bandwidth)
        return rate

    def switchover_rate(self) -> float:
        return self.spec.switchover_ceiling() * self._jitter()
