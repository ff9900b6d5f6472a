"""Sessions and pending-data handlers from Python (docs/qemu-model.md §Pending buckets)."""
import gc
import logging
import weakref

import pytest

import switchover
from switchover import HandlerFlag, Pending, Session, Status, SwitchoverError

U64_MAX = 2**64 - 1


def fixed(pre=0, stop=0, post=0):
    return lambda exact, final: (pre, stop, post)


def test_buckets_add_across_handlers_and_total_is_their_sum(session):
    session.register_handler("ram", fixed(pre=1000))
    session.register_handler("0000:3b:00.0/vfio", fixed(pre=10, stop=2_000_000_000))
    session.register_handler("block", fixed(post=5))
    p = session.query_pending()
    assert p == Pending(precopy=1010, stopcopy=2_000_000_000, postcopy=5, total=2_000_001_015)
    assert session.query_pending(exact=True).total == 2_000_001_015


def test_empty_session_has_nothing_pending(session):
    assert session.query_pending() == Pending(0, 0, 0, 0)


def test_pending_is_a_frozen_dataclass_with_a_saturating_total():
    p = Pending(1, 2, 3)
    assert p.total == 6
    assert Pending(U64_MAX, 1).total == U64_MAX
    with pytest.raises(AttributeError):
        p.total = 7


@pytest.mark.parametrize("figures", [dict(precopy=-1), dict(stopcopy=-2_050_000_000),
                                     dict(postcopy=-1), dict(precopy=1, total=-1)])
def test_pending_with_a_negative_figure_is_refused(figures):
    with pytest.raises(ValueError, match="negative"):
        Pending(**figures)


def test_handlers_may_return_pending_tuple_dict_or_none(session):
    session.register_handler("pending", lambda e, f: Pending(precopy=1))
    session.register_handler("tuple", lambda e, f: (0, 2, 0))
    session.register_handler("list", lambda e, f: [0, 0, 4])
    session.register_handler("dict", lambda e, f: {"precopy": 8, "postcopy": 16})
    session.register_handler("dict-bytes", lambda e, f: {"stopcopy_bytes": 32})
    session.register_handler("none", lambda e, f: None)
    assert session.query_pending() == Pending(9, 34, 20)


def test_exact_and_final_reach_the_callable(session):
    seen = []
    session.register_handler("ram", lambda exact, final: seen.append((exact, final)))
    session.query_pending()
    session.query_pending(exact=True)
    assert seen == [(False, False), (True, False)]
    assert all(type(x) is bool for pair in seen for x in pair)


class Device:
    def __init__(self, pre=0, stop=0, active=True):
        self.pre, self.stop, self.active = pre, stop, active
        self.calls = 0

    def save_query_pending(self, exact, final):
        self.calls += 1
        return {"precopy": self.pre, "stopcopy": self.stop}

    def is_active(self):
        return self.active


def test_objects_with_save_query_pending_and_is_active(session):
    gpu = Device(pre=64 << 20, stop=1910 << 20)
    idle = Device(pre=999, active=False)
    session.register_handler("gpu", gpu, flags=HandlerFlag.NO_POSTCOPY)
    session.register_handler("idle", idle)
    assert session.query_pending(exact=True) == Pending(64 << 20, 1910 << 20, 0)
    assert idle.calls == 0  # inactive handlers are skipped
    idle.active = True
    assert session.query_pending().precopy == (64 << 20) + 999


def test_callbacks_stay_alive_while_registered(session):
    # No reference to the callable or its ctypes trampoline is kept by the caller.
    session.register_handler("ram", lambda e, f: (123, 0, 0))
    session.register_handler("dev", Device(stop=7))
    gc.collect()
    assert session.query_pending().total == 130
    gc.collect()
    assert session.query_pending(exact=True).total == 130


def test_unregister_releases_the_callbacks(session):
    dev = Device(pre=5)
    ref = weakref.ref(dev)
    h = session.register_handler("dev", dev)
    del dev
    gc.collect()
    assert ref() is not None  # kept alive while registered
    h.unregister()
    assert not h.registered
    gc.collect()
    assert ref() is None  # released on unregister
    assert session.query_pending().total == 0
    h.unregister()  # idempotent


def test_handler_as_context_manager_unregisters(session):
    with session.register_handler("tmp", fixed(pre=3)) as h:
        assert session.query_pending().total == 3
        assert session.handlers == [h]
    assert not h.registered
    assert session.handlers == []
    assert session.query_pending().total == 0


def test_handler_describes_itself(session):
    h = session.register_handler("vfio", fixed(), instance_id=3,
                                 flags=HandlerFlag.NO_POSTCOPY | HandlerFlag.EXACT_NEEDS_STOPPED_VM)
    assert h.id != 0
    assert (h.idstr, h.instance_id) == ("vfio", 3)
    assert h.flags == HandlerFlag.NO_POSTCOPY | HandlerFlag.EXACT_NEEDS_STOPPED_VM
    assert "vfio" in repr(h) and "registered" in repr(h)


def test_garbage_sizes_saturate_instead_of_wrapping(session):
    session.register_handler("a", fixed(pre=U64_MAX, stop=U64_MAX))
    session.register_handler("b", fixed(pre=U64_MAX, stop=1, post=U64_MAX))
    assert session.query_pending(exact=True) == Pending(U64_MAX, U64_MAX, U64_MAX, U64_MAX)


def test_python_ints_beyond_64_bits_saturate(session):
    session.register_handler("huge", fixed(pre=2**70))
    session.register_handler("one", fixed(pre=1, stop=5))
    assert session.query_pending() == Pending(U64_MAX, 5, 0, U64_MAX)


# A failing handler never under-counts: before its first answer it counts QEMU's VFIO
# fallback for an unreadable size (docs/qemu-model.md §VFIO: stop-copy 100 GiB), after it
# its last answer.
UNKNOWN_STOP_COPY = 107374182400


@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_a_handler_raising_before_any_answer_counts_100_gib_of_stop_copy(session, caplog):
    def broken(exact, final):
        raise RuntimeError("device fell over")

    session.register_handler("broken", broken)
    session.register_handler("fine", fixed(stop=7))
    with caplog.at_level(logging.ERROR, logger="switchover"):
        assert session.query_pending() == Pending(0, UNKNOWN_STOP_COPY + 7, 0)
    assert switchover.UNKNOWN_STOP_COPY == UNKNOWN_STOP_COPY
    assert "broken" in caplog.text and "device fell over" in caplog.text


@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_a_handler_raising_after_an_answer_counts_its_last_answer_again(session, caplog):
    answers = [(10, 2_050_000_000, 3), RuntimeError("busy"), RuntimeError("busy"), (1, 2, 3)]

    def flaky(exact, final):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    session.register_handler("flaky", flaky)
    assert session.query_pending() == Pending(10, 2_050_000_000, 3)
    with caplog.at_level(logging.ERROR, logger="switchover"):
        assert session.query_pending(exact=True) == Pending(10, 2_050_000_000, 3)
        assert session.query_pending(exact=True) == Pending(10, 2_050_000_000, 3)
    # A run of failures logs one traceback, not one per pass.
    assert caplog.text.count("Traceback") == 1
    assert session.query_pending() == Pending(1, 2, 3)


@pytest.mark.parametrize("result", [(-1, 0, 0), (1, 2), "lots", {"precopy": 1, "typo": 2},
                                    (1.5, 0, 0)])
@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_bad_results_are_logged_and_count_as_a_failure(session, caplog, result):
    session.register_handler("bad", lambda e, f: result)
    session.register_handler("fine", fixed(post=11))
    with caplog.at_level(logging.ERROR, logger="switchover"):
        assert session.query_pending() == Pending(0, UNKNOWN_STOP_COPY, 11)
    assert "bad" in caplog.text


@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_an_is_active_that_raises_counts_the_handler_as_active(session, caplog):
    class Flaky(Device):
        def is_active(self):
            raise OSError("no such device")

    flaky = Flaky(pre=100)
    session.register_handler("flaky", flaky)
    with caplog.at_level(logging.ERROR, logger="switchover"):
        assert session.query_pending().total == 100
    assert flaky.calls == 1
    assert "no such device" in caplog.text


def test_errors_carry_code_name_and_the_library_message(session):
    session.register_handler("vfio", fixed(), instance_id=1)
    with pytest.raises(SwitchoverError) as info:
        session.register_handler("vfio", fixed(), instance_id=1)
    e = info.value
    assert e.code == Status.ERR_EXISTS == 7
    assert e.name == "SWO_ERR_EXISTS"
    assert "vfio" in e.message and "1" in e.message
    assert str(e) == f"SWO_ERR_EXISTS: {e.message}"
    # The same idstr with another instance id is fine.
    session.register_handler("vfio", fixed(), instance_id=2)


def test_unknown_flag_bits_and_empty_idstr_are_invalid_args(session):
    with pytest.raises(SwitchoverError) as info:
        session.register_handler("dev", fixed(), flags=1 << 2)
    assert info.value.code == Status.ERR_INVALID_ARG
    assert "flag" in info.value.message
    with pytest.raises(SwitchoverError) as info:
        session.register_handler("", fixed())
    assert info.value.code == Status.ERR_INVALID_ARG
    assert session.handlers == []


def test_bad_python_arguments_are_refused_before_reaching_c(session):
    with pytest.raises(TypeError):
        session.register_handler(b"ram", fixed())
    with pytest.raises(ValueError):
        session.register_handler("ra\0m", fixed())
    with pytest.raises(ValueError):
        session.register_handler("ram", fixed(), instance_id=2**32)
    with pytest.raises(ValueError):
        session.register_handler("ram", fixed(), instance_id=-1)
    with pytest.raises(TypeError):
        session.register_handler("ram", 42)
    assert session.handlers == []


def test_unknown_error_codes_keep_their_number():
    e = SwitchoverError(99, "odd")
    assert e.code == 99 and e.name == "SWO_ERR_UNKNOWN" and e.message == "odd"


def test_context_manager_closes_the_session():
    with Session() as s:
        h = s.register_handler("ram", fixed(pre=1))
        assert not s.closed
    assert s.closed
    assert not h.registered
    with pytest.raises(ValueError, match="closed"):
        s.query_pending()
    with pytest.raises(ValueError, match="closed"):
        s.register_handler("ram", fixed())
    h.unregister()  # no-op once the session is gone
    s.close()  # idempotent


def test_dropping_a_session_frees_it_and_its_handlers():
    dev = Device(pre=1)
    s = Session()
    s.register_handler("dev", dev)
    h = s.handlers[0]
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None
    assert not h.registered
    h.unregister()  # the session is gone: nothing to do


def test_reentrant_calls_from_a_callback_raise_reentrant(session):
    other = Session()
    seen = {}

    def calls_back(exact, final):
        for what, call in (("query", session.query_pending),
                           ("unregister", lambda: handler.unregister()),
                           ("register", lambda: session.register_handler("late", fixed()))):
            try:
                call()
                seen[what] = "ok"
            except SwitchoverError as e:
                seen[what] = e.code
        try:
            session.close()
        except RuntimeError:
            seen["close"] = "refused"
        # Another session works from inside the callback.
        with other.register_handler("from-callback", fixed(stop=11)):
            seen["other"] = other.query_pending(exact=True).total
        return (100, 0, 0)

    handler = session.register_handler("reentrant", calls_back)
    assert session.query_pending() == Pending(100, 0, 0)  # the outer query completes
    assert seen == {"query": Status.ERR_REENTRANT, "unregister": Status.ERR_REENTRANT,
                    "register": Status.ERR_REENTRANT, "close": "refused", "other": 11}
    assert handler.registered and not session.closed
    assert [h.idstr for h in session.handlers] == ["reentrant"]
    other.close()


def test_library_version_and_module_exports():
    assert switchover.library_version.count(".") == 2
    for name in switchover.__all__:
        assert hasattr(switchover, name), name
