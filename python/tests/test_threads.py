"""The binding from several threads: queries while handlers come and go, per-thread error
messages, and close() while another thread is using the session."""
import threading
import time

import pytest

from switchover import Session, Status, SwitchoverError


def test_no_callback_runs_after_unregister_returns_while_another_thread_queries():
    s = Session()
    stop = threading.Event()
    errors = []
    queries = [0]

    def query_loop():
        try:
            while not stop.is_set():
                p = s.query_pending(exact=queries[0] % 2 == 0)
                assert 1000 <= p.total <= 1002
                queries[0] += 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    s.register_handler("steady", lambda e, f: (1000, 0, 0))
    t = threading.Thread(target=query_loop)
    t.start()
    after_unregister = []
    called = []
    live = []
    try:
        for round_ in range(400):
            if len(live) == 2:
                h, freed, calls = live.pop(0)
                if round_ % 20 == 0:
                    # Make sure this unregister really overlaps with queries (no timing).
                    while not calls and t.is_alive():
                        threading.Event().wait(0.0005)
                h.unregister()
                freed.set()

            freed, calls = threading.Event(), []

            def cb(exact, final, freed=freed, calls=calls):
                if freed.is_set():
                    after_unregister.append(1)
                calls.append(1)
                time.sleep(0)  # let the unregistering thread run while we are inside
                if freed.is_set():
                    after_unregister.append(1)
                return (1, 0, 0)

            h = s.register_handler("churn", cb, instance_id=round_)
            live.append((h, freed, calls))
            called.append(calls)
        for h, freed, _ in live:
            h.unregister()
            freed.set()
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert after_unregister == []
    assert queries[0] > 0
    assert sum(1 for c in called if c) >= 400 // 20 - 1
    s.close()


def test_error_messages_belong_to_the_thread_that_failed():
    s = Session()
    failures = []

    def worker(n):
        idstr = f"dev-{n}"
        try:
            s.register_handler(idstr, lambda e, f: None, instance_id=n)
            for _ in range(200):
                with pytest.raises(SwitchoverError) as info:
                    s.register_handler(idstr, lambda e, f: None, instance_id=n)
                assert info.value.code == Status.ERR_EXISTS
                assert idstr in info.value.message, info.value.message
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(1000 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(s.handlers) == 4
    s.close()


def test_close_waits_for_calls_on_other_threads_then_refuses_new_ones():
    s = Session()
    s.register_handler("ram", lambda e, f: (1, 2, 3))
    started = threading.Event()
    outcome = []

    def query_loop():
        try:
            while True:
                assert s.query_pending().total == 6
                started.set()
        except ValueError as e:
            outcome.append(str(e))
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=query_loop)
    t.start()
    started.wait()
    s.close()
    t.join()
    assert len(outcome) == 1 and "closed" in outcome[0], outcome


def test_a_callback_unregistering_itself_while_another_thread_unregisters_it_is_refused():
    # The per-handler unregister lock must not be taken inside a callback: the thread holding
    # it waits in the library for that callback to return. The library refuses the inner
    # call (SWO_ERR_REENTRANT) and the outer one completes.
    s = Session()  # closed only once the threads are done: close() waits for them
    inside, gate, seen = threading.Event(), threading.Event(), []
    handle = []

    def callback(exact, final):
        inside.set()
        gate.wait(5)
        try:
            handle[0].unregister()
        except SwitchoverError as e:
            seen.append(e.code)
        return (1, 0, 0)

    handle.append(s.register_handler("self", callback))
    # Daemon threads: a deadlock fails the test instead of hanging the interpreter.
    query = threading.Thread(target=s.query_pending, daemon=True)
    query.start()
    assert inside.wait(5)
    outer = threading.Thread(target=handle[0].unregister, daemon=True)
    outer.start()
    while not handle[0]._unregistering.locked():  # the outer call holds the lock
        threading.Event().wait(0.0005)
    gate.set()
    for t in (query, outer):
        t.join(10)
        assert not t.is_alive()
    assert seen == [Status.ERR_REENTRANT]
    assert not handle[0].registered
    s.close()
