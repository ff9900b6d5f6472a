"""Figures that change from pass to pass, through the C ABI (issue 14 item 6): ``SwoInfo``,
``SwoAdvice``, ``query-migrate`` and the ``MIGRATION_STALL`` event must use the last sync of
the latest pass. The vGPU's stop-copy state grows by 50,000,000 B per pass.

docs/qemu-model.md §Expected downtime: trunc(last_sync_bytes / switchover_bw * 1000). With
avail-switchover-bandwidth 1,000,000,000 B/s, pass k's S_k = 2,000,123,456 + 50,000,000·k B
takes 2000 + 50·k ms (the 123,456 B are 0.12 ms, truncated away)."""
import switchover as so

BW = 1_000_000_000


def stopcopy(k):
    return 2_000_123_456 + 50_000_000 * k


def run(session, passes, **params):
    current = {"k": 1}
    session.register_handler("vgpu", lambda exact, final: (0, stopcopy(current["k"]), 0),
                             flags=so.HANDLER_NO_POSTCOPY)
    session.set_capability("events", True)
    session.set_parameters({"avail-switchover-bandwidth": BW, "downtime-limit": 1000, **params})
    session.migration_start(0)
    session.setup_done(0)
    now = 0
    for k in range(1, passes + 1):
        current["k"] = k
        now += 100
        session.update_counters(now)
        step = session.iteration_step(now)
        yield k, now, step


def test_info_and_query_migrate_follow_the_latest_pass(session):
    for k, now, step in run(session, 4):
        assert step.action == so.ACTION_ITERATE
        assert step.pending.stopcopy == stopcopy(k)
        info = session.info(now)
        report = session.query_migrate(now)
        assert info.last_sync_bytes == stopcopy(k)
        assert info.remaining_bytes == stopcopy(k)
        assert report["remaining"] == stopcopy(k)
        assert report["x-switchover"]["last-sync-bytes"] == stopcopy(k)
        if k >= 3:
            assert info.expected_downtime_ms == 2000 + 50 * k
            assert report["expected-downtime"] == 2000 + 50 * k
    assert info.expected_downtime_ms == 2200  # pass 4; pass 3's figure would be 2150


def test_the_stall_event_and_the_advice_use_the_pass_that_stalled(session):
    for k, now, step in run(session, 6):
        assert step.action == so.ACTION_ITERATE
    stalls = session.events_named("MIGRATION_STALL")
    assert len(stalls) == 1
    # Pass 6 is the 5th without progress: S_6 -> 2300 ms; + 10 % headroom, up: 2530 ms.
    assert stalls[0]["expected-downtime"] == 2300
    assert stalls[0]["recommended-downtime"] == 2530
    assert stalls[0]["remaining"] == stopcopy(6)
    advice = session.advice(now)
    assert advice.stalled
    assert advice.expected_downtime_ms == 2300
    assert advice.recommended_downtime_ms == 2530
    assert session.info(now).expected_downtime_ms == 2300
