"""Scenario files: parsing of sizes and rates, defaults, validation errors naming the key."""
import re
from pathlib import Path

import pytest

from switchover.sim import scenario as scn

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = ["idle-4g", "web-server", "hot-database", "vgpu", "vgpu-auto", "nic-vf",
           "garbage-driver"]


@pytest.mark.parametrize("text,expected", [
    (4096, 4096), ("4096", 4096), ("8MiB", 8 * 2**20), ("8M", 8 * 2**20),
    ("1.91GiB", 2050846884), ("32G", 32 * 2**30), ("1.5 GiB", 1610612736), ("100B", 100)])
def test_sizes_take_binary_suffixes(text, expected):
    assert scn.parse_size(text, "k") == expected


@pytest.mark.parametrize("text,expected", [
    ("460Mbps", 57.5e6), ("10Gbps", 1.25e9), ("1GiB/s", 2.0**30), (1000, 1000.0)])
def test_rates_are_bits_per_second_or_sizes_per_second(text, expected):
    assert scn.parse_rate(text, "k") == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["10MB/x", "-1", "lots", True])
def test_bad_size_names_the_key(bad):
    with pytest.raises(scn.ScenarioError, match=r"ram\.size"):
        scn.parse_size(bad, "ram.size")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_validates(name):
    sc = scn.load(SCENARIOS / f"{name}.toml")
    assert sc.name == name
    assert sc.description


def test_vgpu_scenario_says_what_the_issue_says():
    sc = scn.load(SCENARIOS / "vgpu.toml")
    assert sc.ram.size == 32 * 2**30
    (dev,) = sc.devices
    assert 1.85 * 2**30 < dev.stop_copy < 1.95 * 2**30
    assert sc.link.bandwidth == pytest.approx(10e9 / 8)
    assert sc.link.precopy_ceiling() == pytest.approx(460e6 / 8)
    assert sc.params["avail-switchover-bandwidth"] == 2**30
    assert sc.downtime_limit_ms() == 300
    (act,) = sc.actions
    assert act.set == {"downtime-limit": 2000}
    auto = scn.load(SCENARIOS / "vgpu-auto.toml")
    assert auto.actions == () and auto.params["auto-downtime-max"] == 3000


def test_defaults_describe_an_idle_4g_guest_on_10gbps():
    sc = scn.from_dict({})
    assert sc.ram.size == 4 * 2**30 and sc.ram.page_size == 4096
    assert sc.ram.dirty_rate_mib_s == 0 and sc.devices == ()
    assert sc.link.bandwidth == pytest.approx(1.25e9)
    assert sc.tick_ms == 50 and sc.seed == 1


@pytest.mark.parametrize("raw,key", [
    ({"ram": {"page_size": 4000}}, "ram.page_size"),
    ({"ram": {"size": "4GiB", "page_size": 4096, "working_set": "8GiB"}}, "ram.working_set"),
    ({"ram": {"size": 4097}}, "ram.size"),
    ({"ram": {"zero_share": 1.5}}, "ram.zero_share"),
    ({"ram": {"colour": "red"}}, "ram.colour"),
    ({"ram": {"pattern": "zigzag"}}, "ram.pattern"),
    ({"ram": {"pattern": "uniform", "hot_share": 0.5}}, "ram.hot_share"),
    ({"ram": {"pattern": "hotspot", "hot_share": 1.5}}, "ram.hot_share"),
    ({"ram": {"pattern": "hotspot", "working_set": "64MiB", "hot_set": "128MiB"}}, "ram.hot_set"),
    ({"ram": {"page_header_bytes": -1}}, "ram.page_header_bytes"),
    ({"devices": [{"name": "gpu"}]}, r"devices\[0\]\.stop_copy"),
    ({"devices": [{"stop_copy": "1M", "fault": "flaky"}]}, r"devices\[0\]\.fault"),
    ({"devices": [{"stop_copy": "1M", "precopy_initial": "2M"}]}, r"devices\[0\]\.precopy_initial"),
    ({"devices": [{"name": "a", "stop_copy": 1}, {"name": "a", "stop_copy": 1}]}, r"devices\[1\]\.name"),
    ({"link": {"bandwidth": 0}}, "link.bandwidth"),
    ({"link": {"jitter": "lots"}}, "link.jitter"),
    ({"actions": [{"set": {"downtime-limit": 1}}]}, r"actions\[0\]\.at_s"),
    ({"actions": [{"at_s": 1}]}, r"actions\[0\]"),
    ({"params": {"downtime-limit": 1.5}}, "params.downtime-limit"),
    ({"capabilities": {"events": "yes"}}, "capabilities.events"),
    ({"sim": {"tick_ms": 0}}, "sim.tick_ms"),
    ({"ram": {"dirty_rate_mib_s": [{"at_s": 5, "dirty_rate_mib_s": 1},
                                   {"at_s": 2, "dirty_rate_mib_s": 1}]}},
     r"ram\.dirty_rate_mib_s\[1\]\.at_s"),
])
def test_invalid_values_are_refused_naming_the_key(raw, key):
    with pytest.raises(scn.ScenarioError, match=key):
        scn.from_dict(raw)


def test_pattern_defaults_to_uniform_and_hotspot_to_a_tenth_of_the_set():
    sc = scn.from_dict({})
    assert sc.ram.pattern == "uniform" and sc.ram.page_header_bytes == 8
    hs = scn.from_dict({"ram": {"working_set": "100MiB", "pattern": "hotspot"}}).ram
    assert hs.hot_share == 0.9 and hs.hot_set_pages == 10 * 2**20 // 4096


def test_dirty_rate_can_change_over_time():
    sc = scn.from_dict({"ram": {"dirty_rate_mib_s": [
        {"at_s": 0, "dirty_rate_mib_s": 10}, {"at_s": 30, "dirty_rate_mib_s": 200}]}})
    assert sc.ram.dirty_rate_at(0) == 10
    assert sc.ram.dirty_rate_at(29.9) == 10
    assert sc.ram.dirty_rate_at(30) == 200


def test_size_parameters_accept_size_strings_others_pass_through():
    sc = scn.from_dict({"params": {"max-bandwidth": "1GiB", "downtime-limit": 500}})
    assert sc.params == {"max-bandwidth": 2**30, "downtime-limit": 500}


def test_actions_are_sorted_by_time():
    sc = scn.from_dict({"actions": [{"at_s": 9, "cancel": True},
                                    {"at_s": 3, "set": {"downtime-limit": 900}}]})
    assert [a.at_s for a in sc.actions] == [3, 9]
    assert sc.actions[0].describe() == "set downtime-limit=900"


def test_overrides_reach_tables_and_arrays():
    sc = scn.load(SCENARIOS / "vgpu.toml", {"params.downtime-limit": 1500,
                                            "devices.0.stop_copy": "1GiB",
                                            "ram.dirty_rate_mib_s": 7})
    assert sc.downtime_limit_ms() == 1500
    assert sc.devices[0].stop_copy == 2**30
    assert sc.ram.dirty_rate_mib_s == 7
    with pytest.raises(scn.ScenarioError, match="devices.5"):
        scn.load(SCENARIOS / "vgpu.toml", {"devices.5.stop_copy": 1})


def test_cli_values_follow_toml_scalars():
    assert scn.parse_cli_value("300") == 300
    assert scn.parse_cli_value("1.5") == 1.5
    assert scn.parse_cli_value("true") is True
    assert scn.parse_cli_value("1GiB") == "1GiB"


def test_bad_toml_and_missing_file_are_scenario_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ram\nsize=1")
    with pytest.raises(scn.ScenarioError, match="not valid TOML"):
        scn.load(bad)
    with pytest.raises(scn.ScenarioError, match="No such file"):
        scn.load(tmp_path / "missing.toml")


# -- checked by the library when the scenario loads (docs/qemu-model.md §Parameters) --------

@pytest.mark.parametrize("raw, key, wording", [
    ({"params": {"auto-downtime-max": 2_000_001}}, "params.auto-downtime-max",
     "(2000 * 1000) ms"),
    ({"params": {"downtime-limit": 2_000_001}}, "params.downtime-limit", "(2000 * 1000) ms"),
    ({"actions": [{"at_s": 1, "set": {"downtime-limit": 2_000_001}}]},
     "actions[0].set.downtime-limit", "(2000 * 1000) ms"),
    ({"actions": [{"at_s": 1, "capabilities": {"postcopy": True}}]},
     "actions[0].capabilities.postcopy", "does not accept value 'postcopy'"),
    # The file's index, although the actions run (and are checked) in time order.
    ({"actions": [{"at_s": 9, "cancel": True}, {"at_s": 3, "set": {"downtme-limit": 1}}]},
     "actions[1].set.downtme-limit", "is unexpected"),
])
def test_the_library_refuses_bad_names_and_values_at_load_naming_the_key(raw, key, wording):
    with pytest.raises(scn.ScenarioError) as refused:
        scn.from_dict(raw)
    # Issue 16: the message names the key and the offending value, as the file writes it.
    key_value = next(f"{key} = {'true' if v is True else v}" for v in [_value_at(raw, key)])
    assert str(refused.value).startswith(f"{key_value}: "), str(refused.value)
    assert wording in str(refused.value)


def test_the_largest_downtime_limit_and_known_capabilities_load():
    sc = scn.from_dict({"params": {"downtime-limit": 2_000_000},
                        "capabilities": {"postcopy-ram": True, "switchover-ack": True},
                        "actions": [{"at_s": 1, "set": {"downtime-limit": 0},
                                     "capabilities": {"pause-before-switchover": True}}]})
    assert sc.downtime_limit_ms() == 2_000_000
    assert sc.capabilities == {"postcopy-ram": True, "switchover-ack": True}


@pytest.mark.parametrize("value, key", [
    (2**64, "devices[0].stop_copy"), ("16384P", "devices[0].stop_copy"),
    (2**70, "devices[0].stop_copy")])
def test_sizes_of_2_to_the_64_bytes_are_refused_naming_the_key(value, key):
    with pytest.raises(scn.ScenarioError, match=re.escape(key)):
        scn.from_dict({"devices": [{"stop_copy": value}]})


def test_the_largest_64_bit_size_loads():
    assert scn.parse_size(2**64 - 1, "k") == 2**64 - 1
    assert scn.parse_size("16383.99P", "k") < 2**64


def _value_at(raw, key):
    """The value a dotted key with [index] parts names in ``raw``."""
    import re as _re
    node = raw
    for part in key.split("."):
        m = _re.fullmatch(r"(.+)\[(\d+)\]", part)
        node = node[m.group(1)][int(m.group(2))] if m else node[part]
    return node
