"""size_to_str and parse_size: every example of docs/qemu-model.md, plus rejections."""
import pytest

from switchover import Status, SwitchoverError, parse_size, size_to_str

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (999, "999 B"), (1000, "0.977 KiB"), (4096, "4 KiB"),
    (104857600, "100 MiB"), (123456789, "118 MiB"), (1460288880, "1.36 GiB"),
    (1610612736, "1.5 GiB"), (2**64 - 1, "16 EiB"),
])
def test_size_to_str_examples(value, text):
    assert size_to_str(value) == text


@pytest.mark.parametrize("text, value", [
    ("100", 104857600), ("1.5", 1572864), ("1.5G", 1610612736), ("100B", 100),
    ("1k", 1024), ("1K", 1024), ("0x10", 16 << 20), ("0", 0), ("1T", 1 << 40),
    ("7E", 7 << 60),
])
def test_parse_size_examples(text, value):
    assert parse_size(text) == value


def test_parse_size_default_suffix():
    assert parse_size("100", "B") == 100
    assert parse_size("100", "K") == 102400
    assert parse_size("2", "G") == 2 << 30
    assert parse_size("2M", "B") == 2 << 20


@pytest.mark.parametrize("text", ["1KiB", "1 M", "10MB", "-1", "1.5B", "16E", "8E", "",
                                  "abc", "0x", "1e3"])
def test_parse_size_rejections(text):
    with pytest.raises(SwitchoverError) as info:
        parse_size(text)
    assert info.value.code in (Status.ERR_PARSE, Status.ERR_OUT_OF_RANGE,
                               Status.ERR_INVALID_ARG)
    assert info.value.message


def test_parse_size_message_uses_qemus_wording():
    with pytest.raises(SwitchoverError) as info:
        parse_size("10MB")
    assert info.value.message == "Invalid size 10MB"
    with pytest.raises(SwitchoverError) as info:
        parse_size("8E")  # 2**63 > INT64_MAX
    assert info.value.message == "Invalid size 8E"


def test_sizes_round_trip_through_int64_max():
    assert parse_size(str(INT64_MAX), "B") == INT64_MAX
    with pytest.raises(SwitchoverError):
        parse_size(str(INT64_MAX + 1), "B")


def test_size_to_str_refuses_what_is_no_uint64():
    with pytest.raises(ValueError):
        size_to_str(-1)
    with pytest.raises(ValueError):
        size_to_str(2**64)
    with pytest.raises(TypeError):
        size_to_str(1.5)


def test_size_to_str_of_zero_is_the_same_before_and_after_the_params_merge():
    assert size_to_str(0) == "0 B"


def test_parse_size_checks_its_python_arguments():
    with pytest.raises(TypeError):
        parse_size(100)
    with pytest.raises(ValueError):
        parse_size("1", "MB")
    with pytest.raises(ValueError):
        parse_size("1\0", "M")


def _size_samples():
    """Byte counts where a formatting difference would show: each unit step (1000 × 1024^k,
    where QEMU's `size_to_str` moves to the next unit) and its neighbours, the powers of two
    and of ten, the 3-significant-digit rounding edges (999.5 × 1024^k), the ends of uint64,
    and a seeded spread across every magnitude."""
    import random
    out = {0, 1, 2**64 - 1, 2**63, 2**63 - 1}
    for k in range(7):
        for base in (1000 * 1024**k, 1024**k, 10**(3 * k), int(999.5 * 1024**k),
                     int(9.995 * 1024**k), int(99.95 * 1024**k)):
            out.update(v for v in range(base - 2, base + 3) if 0 <= v < 2**64)
    rng = random.Random(17)
    out.update(rng.randrange(0, 2**rng.randrange(1, 65)) for _ in range(3000))
    return sorted(out)


def test_the_simulators_size_printing_is_the_librarys():
    """The simulator formats sizes in Python (`sim/units.py`, it also takes fractional byte
    counts); for every whole byte count it must print what the library's `swo_size_to_str`
    (QEMU's util/cutils.c `size_to_str`) prints: one formula, checked here."""
    from switchover.sim.units import fmt_size
    diffs = [(v, fmt_size(v), size_to_str(v)) for v in _size_samples()
             if fmt_size(v) != size_to_str(v)]
    assert diffs == []
