"""Parameters and capabilities (docs/qemu-model.md §Parameters) through the binding."""
import pytest

from switchover import SwitchoverError, Status

DOWNTIME_MESSAGE = ("Parameter 'downtime_limit' expects an integer in the range of 0 to "
                    "(2000 * 1000) ms")


def test_defaults_are_qemus(session):
    p = session.parameters
    assert p["downtime-limit"] == 300
    assert p["max-bandwidth"] == 134217728
    assert p["avail-switchover-bandwidth"] == 0
    assert p["max-postcopy-bandwidth"] == 0


def test_hmp_sizes_default_to_mib(session):
    session.set_parameter("max-bandwidth", "100")
    assert session.parameters["max-bandwidth"] == 104857600
    session.set_parameter("avail-switchover-bandwidth", "1.5G")
    assert session.parameters["avail-switchover-bandwidth"] == 1610612736
    session.set_parameter("max-bandwidth", "100B")
    assert session.parameters["max-bandwidth"] == 100


def test_int_values_are_exact_bytes_and_milliseconds(session):
    session.set_parameter("max-bandwidth", 1000)
    session.set_parameter("downtime-limit", 2000)
    p = session.parameters
    assert (p["max-bandwidth"], p["downtime-limit"]) == (1000, 2000)


@pytest.mark.parametrize("value", ["2000001", 2000001])
def test_downtime_limit_above_2000000_is_rejected_with_qemus_message(session, value):
    with pytest.raises(SwitchoverError) as info:
        session.set_parameter("downtime-limit", value)
    assert info.value.message == DOWNTIME_MESSAGE
    assert info.value.code in (Status.ERR_OUT_OF_RANGE, Status.ERR_INVALID_ARG)
    assert session.parameters["downtime-limit"] == 300
    session.set_parameter("downtime-limit", "2000000")  # the bound itself is fine
    assert session.parameters["downtime-limit"] == 2000000


def test_hmp_size_with_trailing_characters_is_rejected(session):
    with pytest.raises(SwitchoverError):
        session.set_parameter("max-bandwidth", "10MB")
    assert session.parameters["max-bandwidth"] == 134217728


def test_qmp_set_merges_and_applies_all_or_nothing(session):
    session.set_parameters({"downtime-limit": 500, "max-bandwidth": 1 << 30})
    assert session.parameters["downtime-limit"] == 500
    assert session.parameters["max-bandwidth"] == 1 << 30
    before = session.parameters
    for bad in ({"downtime-limit": 700, "max-bandwidth": "fast"},    # mistyped member
                {"downtime-limit": 700, "no-such-parameter": 1},     # unknown member
                {"max-bandwidth": 5, "downtime-limit": 2000001}):    # one value out of range
        with pytest.raises(SwitchoverError):
            session.set_parameters(bad)
        assert session.parameters == before, bad


def test_unknown_parameter_names_are_errors(session):
    with pytest.raises(SwitchoverError) as info:
        session.set_parameter("no-such-parameter", "1")
    assert "no-such-parameter" in info.value.message


def test_parameters_are_a_fresh_dict_each_time(session):
    p = session.parameters
    p["downtime-limit"] = 1
    assert session.parameters["downtime-limit"] == 300


def test_parameter_values_must_be_str_or_int(session):
    with pytest.raises(TypeError):
        session.set_parameter("downtime-limit", 1.5)
    with pytest.raises(TypeError):
        session.set_parameter("downtime-limit", None)


def test_capabilities_are_off_by_default_and_can_be_turned_on(session):
    caps = session.capabilities
    for name in ("events", "pause-before-switchover", "switchover-ack", "postcopy-ram"):
        assert caps[name] is False, name
    session.set_capability("events", True)
    session.set_capability("postcopy-ram")
    caps = session.capabilities
    assert caps["events"] is True and caps["postcopy-ram"] is True
    assert caps["switchover-ack"] is False
    session.set_capability("events", False)
    assert session.capabilities["events"] is False


def test_unknown_capabilities_are_errors(session):
    with pytest.raises(SwitchoverError) as info:
        session.set_capability("warp-drive", True)
    assert "warp-drive" in info.value.message
    assert "warp-drive" not in session.capabilities
