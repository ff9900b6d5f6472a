"""A small model of QEMU's outgoing migration accounting, written from QEMU's C source
(upstream, p-b-o/qemu-ci mirror: migration/migration.c at 1215f16e493f, migration/ram.c at
e07f026cfd1a, migration/migration-hmp-cmds.c at 695bb453f377; util/cutils.c `size_to_str`),
NOT from the switchover library. Names follow QEMU's so the two can be read side by side.

Each method is one QEMU function (or the part of one that a library call stands for); the
differential test (test_differential.py) drives this model and the library with the same
inputs and compares every decision and report.

Integers are Python ints; where QEMU's C would wrap (uint64 sums), :func:`u64` wraps. Doubles
are Python floats (IEEE binary64, as C's double), computed in QEMU's order of operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

INT64_MAX = (1 << 63) - 1
BUFFER_DELAY = 100  # migration/migration-stats.h


def u64(value: int) -> int:
    """C's uint64_t arithmetic: wraps modulo 2^64."""
    return value & ((1 << 64) - 1)


def c_double_to_u64(value: float) -> int:
    """`(uint64_t) double` for the finite, non-negative values the model produces."""
    return int(value)


def size_to_str(val: int) -> str:
    """util/cutils.c `size_to_str`: `frexp(val / (1000.0 / 1024.0), &i); i = (i - 1) / 10;`
    then `"%0.3g %sB"` of `val / (1 << (i * 10))`."""
    suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
    _, exp = math.frexp(val / (1000.0 / 1024.0))
    i = int((exp - 1) / 10)  # C integer division truncates towards zero
    div = 1 << (i * 10)
    return "%0.3g %sB" % (val / div, suffixes[i])


@dataclass
class MigPendingData:
    """`MigPendingData`: the three buckets and their (uint64, wrapping) total."""

    precopy_bytes: int = 0
    stopcopy_bytes: int = 0
    postcopy_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return u64(self.precopy_bytes + self.stopcopy_bytes + self.postcopy_bytes)


@dataclass
class MigStats:
    """`MigrationAtomicStats mig_stats` (migration/migration-stats.h), the members used."""

    dirty_sync_count: int = 0
    dirty_bytes_last_sync: int = 0
    dirty_bytes_total: int = 0
    precopy_bytes: int = 0
    downtime_bytes: int = 0
    postcopy_bytes: int = 0
    multifd_bytes: int = 0


# A device: (exact, final) -> (precopy, stopcopy, postcopy), added into the buckets.
Handler = Callable[[bool, bool], Tuple[int, int, int]]


@dataclass
class QemuMigration:
    """`MigrationState *s` with `mig_stats`, driven one QEMU function at a time."""

    handlers: List[Handler] = field(default_factory=list)
    # migrate-set-capabilities / migrate-set-parameters
    events: bool = False
    pause_before_switchover: bool = False
    postcopy_ram: bool = False
    downtime_limit: int = 300
    avail_switchover_bandwidth: int = 0
    # MigrationState
    state: str = "none"
    mbps: float = 0.0
    pages_per_second: float = 0.0
    threshold_size: int = 0
    start_time: int = 0
    setup_time: int = 0
    total_time: int = 0
    downtime: int = 0
    downtime_start: int = 0
    iteration_start_time: int = 0
    iteration_initial_bytes: int = 0
    start_postcopy: bool = False
    error: Optional[str] = None
    # runstate: the user's word (`stop`/`cont`) and the migration's own stop
    user_running: bool = True
    stopped_by_migration: bool = False
    mig_stats: MigStats = field(default_factory=MigStats)
    sent_events: List[Tuple[str, dict]] = field(default_factory=list)

    # -- helpers -------------------------------------------------------------------------

    def runstate_is_running(self) -> bool:
        return self.user_running and not self.stopped_by_migration

    def migration_transferred_bytes(self) -> int:
        st = self.mig_stats
        return st.precopy_bytes + st.downtime_bytes + st.postcopy_bytes + st.multifd_bytes

    def migration_in_postcopy(self) -> bool:
        return self.state == "postcopy-active"

    def migrate_set_state(self, new_state: str) -> None:
        """`migrate_set_state` + `migrate_generate_event` (only with `events`)."""
        self.state = new_state
        if self.events:
            self.sent_events.append(("MIGRATION", {"status": new_state}))

    def qemu_savevm_query_pending(self, exact: bool, final: bool = False) -> MigPendingData:
        """`qemu_savevm_query_pending_iter` / `_final`: every handler adds into the buckets;
        the total becomes `mig_stats.dirty_bytes_total` (QEMU-BEHAVIOUR.md §Pending)."""
        pending = MigPendingData()
        for handler in self.handlers:
            pre, stop, post = handler(exact, final)
            pending.precopy_bytes = u64(pending.precopy_bytes + pre)
            pending.stopcopy_bytes = u64(pending.stopcopy_bytes + stop)
            pending.postcopy_bytes = u64(pending.postcopy_bytes + post)
        self.mig_stats.dirty_bytes_total = pending.total_bytes
        return pending

    # -- migration.c -------------------------------------------------------------------

    def migrate_init(self, now: int) -> None:
        """`migrate_init`: reinitialise everything but parameters and capabilities; zero
        `mig_stats` then `dirty_sync_count = 1`. The migration thread then opens the first
        bandwidth window (`update_iteration_initial_status`)."""
        self.mbps = 0.0
        self.pages_per_second = 0.0
        self.downtime = 0
        self.setup_time = 0
        self.start_postcopy = False
        self.error = None
        self.migrate_set_state("setup")
        self.start_time = now
        self.total_time = 0
        self.iteration_initial_bytes = 0
        self.threshold_size = 0
        self.mig_stats = MigStats(dirty_sync_count=1)
        self.stopped_by_migration = False
        self.iteration_start_time = now

    def setup_done(self, now: int) -> None:
        """`migration_thread`: `s->setup_time = now - setup_start`, then `active`."""
        self.setup_time = now - self.start_time
        self.migrate_set_state("active")

    def ram_transferred_add(self, nbytes: int) -> None:
        """migration/ram.c `ram_transferred_add`."""
        if self.runstate_is_running():
            self.mig_stats.precopy_bytes += nbytes
        elif self.migration_in_postcopy():
            self.mig_stats.postcopy_bytes += nbytes
        else:
            self.mig_stats.downtime_bytes += nbytes

    def multifd_add(self, nbytes: int) -> None:
        self.mig_stats.multifd_bytes += nbytes

    def migration_get_switchover_bw(self) -> float:
        """`migration_get_switchover_bw`: bytes/s."""
        if self.avail_switchover_bandwidth:
            return float(self.avail_switchover_bandwidth)
        return self.mbps / 8 * 1000 * 1000

    def migration_update_counters(self, current_time: int) -> None:
        """`migration_update_counters`; the migration thread calls it only between loop
        passes (`active`, `postcopy-active`): never while it waits in the pause or runs the
        switchover."""
        if self.state not in ("active", "postcopy-active"):
            return
        if current_time < self.iteration_start_time + BUFFER_DELAY:
            return
        current_bytes = self.migration_transferred_bytes()
        transferred = current_bytes - self.iteration_initial_bytes
        time_spent = current_time - self.iteration_start_time
        self.mbps = ((float(transferred) * 8.0) / (float(time_spent) / 1000.0)) / 1000.0 / 1000.0
        switchover_bw_per_ms = self.migration_get_switchover_bw() / 1000
        self.threshold_size = c_double_to_u64(switchover_bw_per_ms * self.downtime_limit)
        self.pages_per_second = 0.0  # no RAM pages in these scenarios
        self.iteration_start_time = current_time
        self.iteration_initial_bytes = current_bytes

    def migration_iteration_go_next(self) -> MigPendingData:
        """`migration_iteration_go_next`: slow sync, last-sync figure, count, event."""
        pending = self.qemu_savevm_query_pending(exact=True)
        self.mig_stats.dirty_bytes_last_sync = pending.total_bytes
        self.mig_stats.dirty_sync_count += 1
        if self.events:
            self.sent_events.append(("MIGRATION_PASS", {"pass": self.mig_stats.dirty_sync_count}))
        return pending

    def migration_iteration_run(self) -> Tuple[str, MigPendingData, bool]:
        """`migration_iteration_run`: returns (what the thread does next, the figures the
        decision used, whether the slow sync ran). `switchover-ack` is not modelled (always
        `can_switchover`)."""
        in_postcopy = self.state == "postcopy-active"
        pending = self.qemu_savevm_query_pending(exact=False)
        if in_postcopy:
            return ("complete" if pending.total_bytes == 0 else "iterate"), pending, False
        exact = False
        # migration_iteration_next_ready
        if pending.total_bytes <= self.threshold_size or pending.precopy_bytes == 0:
            pending = self.migration_iteration_go_next()
            exact = True
        can_switchover = True
        # postcopy_should_start
        if can_switchover and not (
            pending.precopy_bytes + pending.stopcopy_bytes > self.threshold_size
        ) and self.start_postcopy:
            return "postcopy", pending, exact
        if can_switchover and pending.total_bytes <= self.threshold_size:
            return "switchover", pending, exact
        return "iterate", pending, exact

    def migration_stop_vm(self, now: int) -> None:
        """`migration_stop_vm`: `migration_downtime_start`, then the guest stops."""
        self.downtime_start = now
        self.stopped_by_migration = True

    def migration_switchover_prepare(self) -> bool:
        """`migration_switchover_prepare` up to its wait: True = went to `device`, False =
        waiting in `pre-switchover` (the library returns to the caller there)."""
        if not self.pause_before_switchover:
            self.migrate_set_state("device")
            return True
        self.migrate_set_state("pre-switchover")
        return False

    def migration_switchover_start_after_prepare(self) -> MigPendingData:
        """The rest of `migration_switchover_start`: the final query."""
        return self.qemu_savevm_query_pending(exact=True, final=True)

    def migration_downtime_end(self, now: int) -> None:
        """`migration_downtime_end`: set while still 0."""
        if not self.downtime:
            self.downtime = now - self.downtime_start

    def enter_postcopy(self, now: int) -> None:
        """The end of `postcopy_start`: downtime end, then `postcopy-active`."""
        self.migration_downtime_end(now)
        self.migrate_set_state("postcopy-active")

    def migration_completion_end(self, now: int) -> None:
        """`migration_completion_end`."""
        nbytes = self.migration_transferred_bytes()
        self.migration_downtime_end(now)
        self.total_time = now - self.start_time
        transfer_time = self.total_time - self.setup_time
        if transfer_time:
            self.mbps = (float(nbytes) * 8.0) / transfer_time / 1000
        self.migrate_set_state("completed")

    def qmp_migrate_cancel(self) -> Optional[str]:
        """`qmp_migrate_cancel` + `migration_cancel` + the migration thread's way out
        (`migration_switchover_start` fails a pause with "Switchover is interrupted") +
        `migration_cleanup` (`cancelling → cancelled`; the guest runs again). Returns the
        error text, or None."""
        if self.migration_in_postcopy():
            return "Postcopy migration in progress, cannot cancel."
        was = self.state
        self.migrate_set_state("cancelling")
        if was == "pre-switchover":
            self.error = self.error or "Switchover is interrupted"
        self.migrate_set_state("cancelled")
        self.stopped_by_migration = False
        return None

    def qmp_migrate_continue(self, state: str) -> Optional[str]:
        """`qmp_migrate_continue`: only `s->state != state` is an error."""
        if self.state != state:
            return "Migration not in expected state: %s" % self.state
        if self.state == "pre-switchover":
            self.migrate_set_state("device")  # the woken `migration_switchover_prepare`
        return None

    def qmp_migrate_start_postcopy(self) -> None:
        self.start_postcopy = True

    # -- reports -----------------------------------------------------------------------

    def migration_downtime_calc_expected(self) -> int:
        """`migration_downtime_calc_expected`."""
        if self.mig_stats.dirty_sync_count <= 1:
            return self.downtime_limit
        bw = self.migration_get_switchover_bw()
        last = float(self.mig_stats.dirty_bytes_last_sync)
        if bw == 0.0:
            expected_ms = math.nan if last == 0.0 else math.inf
        else:
            expected_ms = last / bw * 1000
        if math.isnan(expected_ms) or expected_ms >= float(INT64_MAX):
            return INT64_MAX
        return int(expected_ms)

    def fill_source_migration_info(self, now: int) -> Dict:
        """`qmp_query_migrate` → `fill_source_migration_info` with `populate_time_info`,
        `populate_ram_info` (no RAM model: its page members are 0), `populate_global_info`;
        no VFIO device, so no `vfio`. Members in QAPI order."""
        info: Dict = {}
        state = self.state
        if state == "none":
            return info
        info["status"] = state
        if state in ("active", "cancelling", "postcopy-active", "pre-switchover", "device",
                     "completed"):
            st = self.mig_stats
            ram = {
                "transferred": self.migration_transferred_bytes(),
                "remaining": 0, "total": 0, "duplicate": 0, "normal": 0, "normal-bytes": 0,
                "dirty-pages-rate": 0,
                "mbps": self.mbps,
                "dirty-sync-count": st.dirty_sync_count,
                "postcopy-requests": 0, "page-size": 0,
                "multifd-bytes": st.multifd_bytes,
                "pages-per-second": int(self.pages_per_second),
                "precopy-bytes": st.precopy_bytes,
                "downtime-bytes": st.downtime_bytes,
                "postcopy-bytes": st.postcopy_bytes,
                "dirty-sync-missed-zero-copy": 0,
            }
            info["ram"] = ram
            if state != "completed":
                info["remaining"] = st.dirty_bytes_total
            info["total-time"] = self.total_time if state == "completed" else now - self.start_time
            if state == "completed" or self.migration_in_postcopy():
                info["downtime"] = self.downtime
            else:
                info["expected-downtime"] = self.migration_downtime_calc_expected()
            info["setup-time"] = self.setup_time
        if self.error is not None:
            info["error-desc"] = self.error
        return info

    def hmp_info_migrate(self, now: int) -> str:
        """migration-hmp-cmds.c `hmp_info_migrate` over :meth:`fill_source_migration_info`."""
        info = self.fill_source_migration_info(now)
        out = []
        if "status" in info:
            line = "Status: \t\t%s" % info["status"]
            if info["status"] == "failed" and "error-desc" in info:
                line += " (%s)" % info["error-desc"]
            out.append(line + "\n")
            if info.get("total-time", 0):
                line = "Time (ms): \t\ttotal=%d" % info["total-time"]
                if "setup-time" in info:
                    line += ", setup=%d" % info["setup-time"]
                if "expected-downtime" in info:
                    line += ", exp_down=%d" % info["expected-downtime"]
                if "downtime" in info:
                    line += ", down=%d" % info["downtime"]
                out.append(line + "\n")
        if "remaining" in info:
            out.append("Remaining: \t\t%s\n" % size_to_str(info["remaining"]))
        ram = info.get("ram")
        if ram is not None:
            out.append("RAM info:\n")
            out.append("  Throughput (Mbps): \t%0.2f\n" % ram["mbps"])
            out.append("  Sizes: \t\tpagesize=%s, total=%s\n"
                       % (size_to_str(ram["page-size"]), size_to_str(ram["total"])))
            out.append("  Transfers: \t\ttransferred=%s, remain=%s\n"
                       % (size_to_str(ram["transferred"]), size_to_str(ram["remaining"])))
            out.append("    Channels: \t\tprecopy=%s, multifd=%s, postcopy=%s\n"
                       % (size_to_str(ram["precopy-bytes"]), size_to_str(ram["multifd-bytes"]),
                          size_to_str(ram["postcopy-bytes"])))
            out.append("    Page Types: \tnormal=%d, zero=%d\n" % (ram["normal"], ram["duplicate"]))
            line = "  Page Rates (pps): \ttransfer=%d" % ram["pages-per-second"]
            if ram["dirty-pages-rate"]:
                line += ", dirty=%d" % ram["dirty-pages-rate"]
            out.append(line + "\n")
            line = "  Others: \t\tdirty_syncs=%d" % ram["dirty-sync-count"]
            if ram["postcopy-requests"]:
                line += ", postcopy_req=%d" % ram["postcopy-requests"]
            if ram["downtime-bytes"]:
                line += ", downtime_bytes=%d" % ram["downtime-bytes"]
            out.append(line + "\n")
        return "".join(out)
