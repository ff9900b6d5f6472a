"""The convergence engine from Python (issue 3; numbers from docs/qemu-model.md §The 100 ms
window, §One loop pass, §Expected downtime, §Status and transitions)."""
import logging

import pytest

import switchover as so
from switchover import Pending, Session, Status, SwitchoverError
from loop_support import Loop, fixed

INT64_MAX = 2**63 - 1
VGPU_STOPCOPY = 2_050_000_000  # ≈1.91 GiB of vGPU stop-copy state (the seed's story)
GIB = 1_073_741_824


def statuses(session):
    return [e["data"]["status"] for e in session.events if e["event"] == "MIGRATION"]


# -- the 100 ms window -----------------------------------------------------------------------

def test_threshold_is_bandwidth_times_downtime_limit_after_100_ms(session):
    session.register_handler("ram", fixed(pre=50_000_000))
    session.migration_start(0)
    session.setup_done(0)
    session.record_transferred(1_000_000)
    session.update_counters(99)
    assert session.info(99).threshold_bytes == 0  # nothing before 100 ms
    session.update_counters(100)
    info = session.info(100)
    assert info.mbps == 80.0
    assert info.switchover_bw == 10_000_000.0
    assert info.threshold_bytes == 3_000_000  # 10 MB/s × 300 ms


def test_threshold_uses_avail_switchover_bandwidth_as_a_double(session):
    session.set_parameters({"avail-switchover-bandwidth": 4_000_500})
    session.register_handler("ram", fixed(pre=50_000_000))
    session.migration_start(0)
    session.setup_done(0)
    session.record_transferred(1_000_000)
    session.update_counters(100)
    assert session.info(100).threshold_bytes == 1_200_150  # 4000500 / 1000.0 × 300


def test_multifd_bytes_count_in_the_window_and_unknown_channels_are_refused(session):
    session.register_handler("ram", fixed(pre=50_000_000))
    session.migration_start(0)
    session.setup_done(0)
    session.record_transferred(500_000, channel=so.CHANNEL_MULTIFD)
    session.record_transferred(500_000, channel=so.CHANNEL_MAIN)
    session.update_counters(100)
    assert session.info(100).threshold_bytes == 3_000_000
    assert session.info(100).transferred_bytes == 1_000_000
    with pytest.raises(SwitchoverError) as e:
        session.record_transferred(1, channel=7)
    assert e.value.code == Status.ERR_INVALID_ARG
    with pytest.raises(ValueError):
        session.record_transferred(-1)


# -- expected downtime -----------------------------------------------------------------------

def test_migration_downtime_calc_expected_is_the_limit_until_the_first_exact_pass(session):
    """QEMU's `migrate_init` sets dirty-sync-count to 1 and `migration_downtime_calc_expected`
    reports the limit while it is <= 1: only before the first exact pass (pass 2). The
    switchover bandwidth is read when asked (`migration_get_switchover_bw`)."""
    session.register_handler("ram", fixed(pre=1_000_000))
    loop = Loop(session)
    loop.start()
    assert session.info(loop.now).expected_downtime_ms == 300  # count 1: downtime-limit
    step = loop.pass_(sent=1_000_000)  # 80 Mbps -> threshold 3,000,000: exact query, pass 2
    assert step.exact and step.pass_ == 2
    assert step.action == so.ACTION_SWITCHOVER  # 1,000,000 <= 3,000,000
    assert session.info(loop.now).expected_downtime_ms == 100  # 1,000,000 B at 80 Mbps
    loop.pass_(sent=1_000_000)
    info = session.info(loop.now)
    assert info.pass_ == 3 and info.last_sync_bytes == 1_000_000
    assert info.expected_downtime_ms == 100
    session.set_parameters({"avail-switchover-bandwidth": 4_000_000})
    assert session.info(loop.now).expected_downtime_ms == 250  # at once, no window needed


def test_expected_downtime_is_int64_max_without_bandwidth(session):
    session.register_handler("vgpu", fixed(stop=VGPU_STOPCOPY))
    session.migration_start(0)
    session.setup_done(0)
    session.iteration_step(10)  # precopy 0 forces the exact query; no window closed yet
    session.iteration_step(20)
    info = session.info(20)
    assert info.pass_ == 3
    assert info.expected_downtime_ms == INT64_MAX
    assert not info.expected_downtime_known


# -- the loop decision ------------------------------------------------------------------------

def test_total_equal_to_the_threshold_switches_over(session):
    session.register_handler("ram", fixed(pre=3_000_000))
    loop = Loop(session)
    loop.start()
    step = loop.pass_(sent=1_000_000)
    assert step.threshold == 3_000_000
    assert step.pending == Pending(3_000_000, 0, 0)
    assert step.action == so.ACTION_SWITCHOVER and step.action_name == "switchover"


def test_fast_zero_with_threshold_zero_needs_the_exact_figure():
    # The old downtime violation: the fast query says 0, the exact one counts 2 GB of stop-copy.
    with Session() as s:
        s.register_handler("vfio", lambda exact, final: (0, VGPU_STOPCOPY if exact else 0, 0))
        s.migration_start(0)
        s.setup_done(0)
        step = s.iteration_step(10)
        assert step.threshold == 0
        assert step.exact
        assert step.pending.total == VGPU_STOPCOPY
        assert step.action == so.ACTION_ITERATE


# -- the vGPU story -------------------------------------------------------------------------

def vgpu(session, limit_ms, **params):
    session.register_handler("vgpu", fixed(stop=VGPU_STOPCOPY), flags=so.HANDLER_NO_POSTCOPY)
    session.set_parameters({"avail-switchover-bandwidth": GIB, "downtime-limit": limit_ms,
                            **params})
    loop = Loop(session)
    loop.start()
    return loop


def test_vgpu_expected_downtime_is_1909_ms(session):
    # docs/qemu-model.md §Expected downtime: trunc(2,050,000,000 B * 1000 / 1 GiB/s)
    # = trunc(1909.25...) = 1909 ms.
    loop = vgpu(session, 1000)
    loop.pass_()
    loop.pass_()
    info = session.info(loop.now)
    assert info.expected_downtime_ms == 1909
    assert info.switchover_bw == GIB
    assert info.remaining_bytes == VGPU_STOPCOPY and info.has_remaining


@pytest.mark.parametrize("limit", [1000, 1500])
def test_vgpu_never_switches_over_at_a_limit_below_1910_ms(session, limit):
    loop = vgpu(session, limit)
    actions = {loop.pass_().action for _ in range(30)}
    assert actions == {so.ACTION_ITERATE}
    assert session.status == so.STATUS_ACTIVE


def test_vgpu_switches_over_on_the_next_pass_once_the_limit_is_2000_ms(session):
    loop = vgpu(session, 1500)
    for _ in range(4):
        assert loop.pass_().action == so.ACTION_ITERATE
    session.set_parameter("downtime-limit", "2000")
    advice = session.advice(loop.now)
    assert advice.will_switchover
    assert advice.recommended_downtime_ms == 0  # no change advised
    assert loop.pass_().action == so.ACTION_SWITCHOVER
    proceed, final = session.switchover_begin(loop.now)
    assert proceed
    assert final.stopcopy == VGPU_STOPCOPY
    assert session.status == so.STATUS_DEVICE
    session.complete(loop.now + 1909)
    assert session.status_name == "completed"
    assert session.info(loop.now + 5000).downtime_ms == 1909


def test_vgpu_stall_is_reported_once_with_an_advice_of_about_2100_ms(session):
    session.set_capability("events", True)  # MIGRATION_STALL follows `events`, as QEMU's events
    loop = vgpu(session, 1000)
    for _ in range(5):  # pass 1 sets the best remaining; 4 passes without progress
        loop.pass_()
        assert not session.info(loop.now).stalled
    loop.pass_()  # 5 passes without progress (stall-passes 5)
    info, advice = session.info(loop.now), session.advice(loop.now)
    assert info.stalled and advice.stalled
    assert advice.passes_since_progress == 5
    assert advice.best_remaining_bytes == VGPU_STOPCOPY
    assert advice.recommended_downtime_ms == 2100  # 1909 ms + 10 % headroom = 2099.9, up
    assert advice.expected_downtime_ms == 1909
    assert not advice.will_switchover and not advice.beyond_max
    for _ in range(5):
        loop.pass_()
    stalls = session.events_named("MIGRATION_STALL")
    assert len(stalls) == 1
    assert stalls[0]["downtime-limit"] == 1000
    assert stalls[0]["recommended-downtime"] == advice.recommended_downtime_ms


def test_vgpu_converges_by_itself_with_auto_downtime_max_3000(session):
    session.set_capability("events", True)  # MIGRATION_DOWNTIME_ADJUSTED follows `events`
    loop = vgpu(session, 300, **{"auto-downtime-max": 3000})
    actions = []
    while len(actions) < 12 and so.ACTION_SWITCHOVER not in actions:
        actions.append(loop.pass_().action)
    # Pass 1 sets the best remaining, pass 6 is the 5th without progress: the stall raises
    # the limit to the advice (1909 ms + 10 % = 2100 ms, within 3000); pass 7 switches over.
    assert actions == [so.ACTION_ITERATE] * 6 + [so.ACTION_SWITCHOVER]
    new_limit = session.parameters["downtime-limit"]
    assert new_limit == 2100
    adjusted = session.events_named("MIGRATION_DOWNTIME_ADJUSTED")
    assert len(adjusted) == 1
    assert adjusted[0]["old-downtime-limit"] == 300
    assert adjusted[0]["downtime-limit"] == new_limit


def test_vgpu_advice_beyond_auto_downtime_max_changes_nothing(session):
    loop = vgpu(session, 1000, **{"auto-downtime-max": 2000})
    for _ in range(8):
        assert loop.pass_().action == so.ACTION_ITERATE
    advice = session.advice(loop.now)
    assert advice.stalled and advice.beyond_max
    assert session.parameters["downtime-limit"] == 1000
    assert session.events_named("MIGRATION_DOWNTIME_ADJUSTED") == []


# -- pause-before-switchover and switchover-ack ------------------------------------------------

def test_pause_before_switchover_waits_for_migrate_continue(session):
    session.set_capability("events", True)
    session.set_capability("pause-before-switchover", True)
    session.register_handler("ram", fixed(pre=1_000_000))
    loop = Loop(session)
    loop.start()
    assert loop.pass_(sent=1_000_000).action == so.ACTION_SWITCHOVER
    assert session.switchover_begin(loop.now) == (False, Pending(0, 0, 0))
    assert session.status == so.STATUS_PRE_SWITCHOVER
    assert session.switchover_begin(loop.now + 1) == (False, Pending(0, 0, 0))  # still paused
    with pytest.raises(SwitchoverError) as e:
        session.migrate_continue(so.STATUS_ACTIVE)
    assert e.value.code == Status.ERR_BAD_STATE
    assert e.value.message == "Migration not in expected state: pre-switchover"
    assert session.status == so.STATUS_PRE_SWITCHOVER
    session.migrate_continue(so.STATUS_PRE_SWITCHOVER)
    assert session.status == so.STATUS_DEVICE
    proceed, final = session.switchover_begin(loop.now + 2)
    assert proceed and final.precopy == 1_000_000
    session.complete(loop.now + 3)
    assert statuses(session) == ["setup", "active", "pre-switchover", "device", "completed"]


def test_switchover_ack_makes_a_due_switchover_wait(session):
    session.set_capability("switchover-ack", True)
    session.register_handler("ram", fixed(pre=1_000_000))
    loop = Loop(session)
    loop.start()
    step = loop.pass_(sent=1_000_000)
    assert step.action == so.ACTION_WAIT and step.action_name == "wait"
    session.set_switchover_acked(True)
    assert loop.pass_(sent=1_000_000).action == so.ACTION_SWITCHOVER


# -- invalid transitions ----------------------------------------------------------------------

INVALID_FROM_NONE = [
    ("setup_done", (0,)), ("complete", (0,)), ("iteration_step", (0,)),
    ("switchover_begin", (0,)), ("postcopy_start", (0,)), ("cancel", (0,)),
    ("fail", (0, "boom")), ("migrate_continue", (so.STATUS_PRE_SWITCHOVER,)),
    ("update_counters", (0,)),
]


@pytest.mark.parametrize("call,args", INVALID_FROM_NONE, ids=[c for c, _ in INVALID_FROM_NONE])
def test_invalid_transition_from_none_raises_bad_state_and_changes_nothing(session, call,
                                                                           args):
    with pytest.raises(SwitchoverError) as e:
        getattr(session, call)(*args)
    assert e.value.code == Status.ERR_BAD_STATE
    assert e.value.name == "SWO_ERR_BAD_STATE"
    assert "none" in e.value.message  # names the state
    assert session.status == so.STATUS_NONE
    assert session.query_migrate(0) == {}


def test_invalid_transitions_while_active_leave_it_active(session):
    session.register_handler("ram", fixed(pre=10**9))
    session.migration_start(0)
    with pytest.raises(SwitchoverError) as e:
        session.complete(1)
    assert e.value.code == Status.ERR_BAD_STATE and session.status == so.STATUS_SETUP
    session.setup_done(1)
    for call, args in [("migration_start", (2,)), ("setup_done", (2,)), ("complete", (2,)),
                       ("postcopy_start", (2,)),
                       ("migrate_continue", (so.STATUS_PRE_SWITCHOVER,))]:
        with pytest.raises(SwitchoverError) as e:
            getattr(session, call)(*args)
        assert e.value.code == Status.ERR_BAD_STATE, call
        assert session.status == so.STATUS_ACTIVE, call
    # qmp_migrate_continue: naming the current state when not paused does nothing.
    session.migrate_continue(so.STATUS_ACTIVE)
    assert session.status == so.STATUS_ACTIVE


def test_completed_migration_can_start_again_and_statistics_reset(session):
    session.register_handler("ram", fixed(pre=1_000_000))
    loop = Loop(session)
    loop.start()
    loop.pass_(sent=1_000_000)
    session.switchover_begin(loop.now)
    session.complete(loop.now)
    with pytest.raises(SwitchoverError):
        session.setup_done(loop.now)
    assert session.status == so.STATUS_COMPLETED
    session.migration_start(loop.now)
    info = session.info(loop.now)
    assert info.status == so.STATUS_SETUP and info.pass_ == 1  # migrate_init
    assert info.transferred_bytes == 0 and info.threshold_bytes == 0


def test_cancel_and_fail_end_a_live_migration(session):
    session.migration_start(0)
    session.cancel(5)
    assert session.status == so.STATUS_CANCELLED and session.status_name == "cancelled"
    session.migration_start(10)
    session.setup_done(10)
    session.fail(20, "vfio: device stopped answering")
    assert session.status == so.STATUS_FAILED
    assert session.query_migrate(30) == {"status": "failed",
                                         "error-desc": "vfio: device stopped answering"}


# -- events and VMM hooks ---------------------------------------------------------------------

def test_migration_events_arrive_in_order_with_the_events_capability(session):
    got = []
    session.set_vmm_ops(event=got.append)
    session.set_capability("events", True)
    session.register_handler("ram", fixed(pre=1_000_000))
    loop = Loop(session, now=12_345)
    loop.start()
    loop.pass_(sent=1_000_000)
    session.switchover_begin(loop.now)
    session.complete(loop.now)
    assert statuses(session) == ["setup", "active", "device", "completed"]
    assert session.events_named("MIGRATION_PASS") == [{"pass": 2}]
    assert got == session.events  # the callback saw every event, in the same order
    first = session.events[0]
    assert first == {"timestamp": {"seconds": 12, "microseconds": 345000},
                     "event": "MIGRATION", "data": {"status": "setup"}}
    session.clear_events()
    assert session.events == []


def _passes_with_events(session, passes, delivered):
    session.set_vmm_ops(event=delivered.append)
    session.set_capability("events", True)
    session.register_handler("dev", fixed(stop=1 << 40))  # never converges
    session.migration_start(0)
    session.setup_done(0)
    for i in range(1, passes + 1):
        session.iteration_step(i * 100)
    return [e for e in session.events if e["event"] == "MIGRATION_PASS"]


def test_a_session_keeps_the_most_recent_1000_events_by_default(session):
    # One MIGRATION_PASS per pass, so 1500 passes deliver more than 1500 events.
    assert so.KEEP_EVENTS == 1000
    delivered = []
    passes = _passes_with_events(session, 1500, delivered)
    assert len(delivered) > 1500
    assert session.events == delivered[-1000:]
    assert session.events_dropped == len(delivered) - 1000
    assert passes[-1]["data"] == {"pass": 1501}  # the count starts at 1 (migrate_init)


def test_keep_events_none_keeps_every_event_and_0_keeps_none():
    delivered = []
    with Session(keep_events=None) as every:
        assert len(_passes_with_events(every, 1500, delivered)) == 1500
        assert every.events == delivered and every.events_dropped == 0
    delivered = []
    with Session(keep_events=0) as none:
        assert _passes_with_events(none, 10, delivered) == []
        assert none.events == [] and none.events_dropped == len(delivered)
    assert [e["data"] for e in delivered if e["event"] == "MIGRATION_PASS"][-1] == {"pass": 11}


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("10", TypeError)])
def test_keep_events_must_be_a_count(bad, error):
    with pytest.raises(error):
        Session(keep_events=bad)


def test_no_migration_events_without_the_events_capability(session):
    session.migration_start(0)
    session.setup_done(0)
    session.cancel(1)
    assert session.events == []


@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_an_event_callback_that_raises_is_logged_and_the_event_kept(session, caplog):
    def bad(event):
        raise RuntimeError("observer bug")

    session.set_vmm_ops(event=bad)
    session.set_capability("events", True)
    with caplog.at_level(logging.ERROR, logger="switchover"):
        session.migration_start(0)
    assert statuses(session) == ["setup"]
    assert "event callback raised" in caplog.text


class Vmm:
    def __init__(self, stop_rc=0, resume_rc=0):
        self.stops = self.resumes = 0
        self.stop_rc, self.resume_rc = stop_rc, resume_rc

    def vm_stop(self):
        self.stops += 1
        return self.stop_rc

    def vm_resume(self):
        self.resumes += 1
        return self.resume_rc


def test_exact_sizing_with_the_guest_stopped_resumes_it_unless_switching_over(session):
    vmm = Vmm()
    session.set_vmm_ops(vm_stop=vmm.vm_stop, vm_resume=vmm.vm_resume)
    session.register_handler("vgpu", fixed(stop=VGPU_STOPCOPY),
                             flags=so.HANDLER_EXACT_NEEDS_STOPPED_VM)
    session.set_parameters({"avail-switchover-bandwidth": GIB, "downtime-limit": 1000})
    loop = Loop(session)
    loop.start()
    step = loop.pass_()
    assert step.exact and not step.vm_stopped
    assert (vmm.stops, vmm.resumes) == (1, 1)
    session.set_parameters({"downtime-limit": 2000})
    step = loop.pass_()
    assert step.action == so.ACTION_SWITCHOVER and step.vm_stopped
    assert step.flags == so.STEP_EXACT | so.STEP_VM_STOPPED
    assert (vmm.stops, vmm.resumes) == (2, 1)  # left stopped for the switchover
    assert session.switchover_begin(loop.now)[0]
    assert vmm.stops == 2  # the step had stopped it already


@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_vm_stop_that_raises_counts_as_eio_and_is_warned_about(session, caplog):
    def vm_stop():
        raise RuntimeError("hypervisor bug")

    session.set_vmm_ops(vm_stop=vm_stop, vm_resume=lambda: None)
    session.register_handler("vgpu", fixed(stop=10), flags=so.HANDLER_EXACT_NEEDS_STOPPED_VM)
    session.migration_start(0)
    session.setup_done(0)
    with caplog.at_level(logging.ERROR, logger="switchover"):
        session.iteration_step(10)
    assert "vm_stop raised" in caplog.text
    warnings = session.events_named("DEVICE_SIZE_WARNING")
    assert warnings == [{"kind": "vm-stop-failed", "errno": 5, "devices": ["vgpu"]}]


def test_vm_resume_failure_raises_io_with_the_guest_still_stopped(session):
    vmm = Vmm(resume_rc=-5)
    session.set_vmm_ops(vm_stop=vmm.vm_stop, vm_resume=vmm.vm_resume)
    session.register_handler("vgpu", fixed(stop=10), flags=so.HANDLER_EXACT_NEEDS_STOPPED_VM)
    session.migration_start(0)
    session.setup_done(0)
    with pytest.raises(SwitchoverError) as e:
        session.iteration_step(10)
    assert e.value.code == Status.ERR_IO
    assert "still stopped" in e.value.message


def test_without_vm_ops_the_library_never_stops_the_guest(session):
    vmm = Vmm()
    session.set_vmm_ops(vm_stop=vmm.vm_stop, vm_resume=vmm.vm_resume)
    session.set_vmm_ops(event=lambda e: None)  # replaces the earlier hooks
    session.register_handler("vgpu", fixed(stop=10), flags=so.HANDLER_EXACT_NEEDS_STOPPED_VM)
    session.migration_start(0)
    session.setup_done(0)
    session.iteration_step(10)
    assert (vmm.stops, vmm.resumes) == (0, 0)
    assert session.events_named("DEVICE_SIZE_WARNING")[0]["kind"] == "no-vmm-ops"


def test_lifecycle_calls_from_a_callback_are_reentrant_errors(session):
    # The callback only records what the calls did; the assertions run after the step (an
    # exception inside the callback would be caught and logged by the binding).
    seen = []

    def attempt(call):
        try:
            call()
        except SwitchoverError as e:
            return ("SwitchoverError", e.code)
        except Exception as e:  # noqa: BLE001 - recorded and checked below
            return (type(e).__name__, None)
        return ("returned", None)

    def handler(exact, final):
        seen.append((attempt(lambda: session.cancel(0)), attempt(session.close)))
        return (0, 10, 0)

    session.register_handler("dev", handler)
    session.migration_start(0)
    session.setup_done(0)
    session.iteration_step(10)
    assert seen
    assert set(seen) == {(("SwitchoverError", Status.ERR_REENTRANT), ("RuntimeError", None))}
    assert session.status == so.STATUS_ACTIVE


def test_now_ms_outside_u64_is_a_value_error(session):
    with pytest.raises(ValueError):
        session.migration_start(-1)
    with pytest.raises(ValueError):
        session.info(2**64)
    assert session.status == so.STATUS_NONE


def test_vmm_hooks_stay_alive_without_a_caller_reference(session):
    import gc

    counts = {"stop": 0, "resume": 0}
    session.set_vmm_ops(vm_stop=lambda: counts.__setitem__("stop", counts["stop"] + 1),
                        vm_resume=lambda: counts.__setitem__("resume", counts["resume"] + 1))
    gc.collect()
    session.register_handler("vgpu", fixed(stop=10), flags=so.HANDLER_EXACT_NEEDS_STOPPED_VM)
    session.migration_start(0)
    session.setup_done(0)
    session.iteration_step(10)  # None from a hook counts as 0 (success)
    assert counts == {"stop": 1, "resume": 1}
