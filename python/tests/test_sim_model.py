"""The VM, device and link model: pure arithmetic, no library."""
import errno
import math

import pytest

from switchover.sim import scenario as scn
from switchover.sim.model import Device, GuestRam, Link

MiB = 2**20


def ram(**kw):
    return GuestRam(scn.from_dict({"ram": kw}).ram)


def test_first_pass_bitmap_holds_every_page():
    r = ram(size="1GiB")
    assert r.dirty_pages == 2**30 // 4096


def test_random_writes_saturate_the_working_set():
    # W pages written W times at random: W * (1 - 1/e) distinct pages.
    r = ram(size="1GiB", working_set="4MiB", dirty_rate_mib_s=4)
    r.bulk = 0.0
    r.advance(1.0, 0.0)
    w = 4 * MiB // 4096
    assert r.unsynced == pytest.approx(w * (1 - math.exp(-1)))
    for _ in range(100):
        r.advance(1.0, 1.0)
    assert r.unsynced == pytest.approx(w, rel=1e-9)


def test_sequential_writes_dirty_one_new_page_each_until_the_set_is_full():
    # dirtier's sweep: 8 MiB/s over a 256 MiB set dirties 8 MiB a second, all of the set
    # after 32 s, never more.
    r = ram(size="1GiB", working_set="256MiB", dirty_rate_mib_s=8, pattern="sequential")
    r.advance(1.0, 0.0)
    assert r.unsynced == pytest.approx(8 * MiB // 4096)
    r.advance(30.0, 1.0)
    assert r.unsynced == pytest.approx(31 * 8 * MiB // 4096)
    r.advance(10.0, 31.0)
    assert r.unsynced == 256 * MiB // 4096


def test_a_sync_restarts_the_count_of_writes():
    r = ram(size="1GiB", working_set="256MiB", dirty_rate_mib_s=40, pattern="sequential")
    r.bulk = 0.0
    r.advance(2.0, 0.0)
    _, newly = r.sync()
    assert newly == 80 * MiB // 4096
    r.advance(1.0, 2.0)
    assert r.unsynced == pytest.approx(40 * MiB // 4096)


def test_hotspot_writes_follow_the_two_set_formula():
    # 90 % of the writes on a 16 MiB hot set, the rest on all of a 160 MiB set.
    r = ram(size="1GiB", working_set="160MiB", dirty_rate_mib_s=32, pattern="hotspot",
            hot_share=0.9, hot_set="16MiB")
    r.advance(1.0, 0.0)
    W, H, w = 160 * 256, 16 * 256, 32 * 256
    hot = H * (1 - math.exp(-(0.9 / H + 0.1 / W) * w))
    cold = (W - H) * (1 - math.exp(-0.1 / W * w))
    assert r.unsynced == pytest.approx(hot + cold)
    # 1.8 writes per hot page: 1 - e^-1.8 = 83 % of the hot set; the cold part barely touched
    assert 0.8 * H < hot < 0.86 * H and cold < 0.03 * (W - H)


def test_dirtying_in_small_steps_equals_one_big_step():
    a, b = ram(working_set="64MiB", dirty_rate_mib_s=100), ram(working_set="64MiB", dirty_rate_mib_s=100)
    a.advance(0.5, 0)
    for _ in range(10):
        b.advance(0.05, 0)
    assert a.unsynced == pytest.approx(b.unsynced)


def test_a_stopped_guest_dirties_nothing():
    r = ram(dirty_rate_mib_s=100)
    r.running = False
    r.advance(1.0, 0)
    assert r.unsynced == 0


def test_sync_reports_newly_dirtied_and_adds_only_pages_not_already_dirty():
    r = ram(size="1GiB", working_set="100MiB", dirty_rate_mib_s=10)
    r.bulk = 0.0
    r.unsynced = 1000.0
    left, newly = r.sync()
    assert (left, newly) == (1000, 1000)
    r.unsynced = 1000.0
    ws = 100 * MiB // 4096
    left, newly = r.sync()
    assert newly == 1000
    assert left == round(1000 + 1000 * (1 - 1000 / ws))
    assert r.unsynced == 0


def test_sending_spends_the_budget_zero_pages_cheap():
    # QEMU's save_page_header: 8 bytes before a normal page's 4096, a zero page 8 + 1.
    r = ram(size="4MiB", zero_share=0.5, zero_page_wire_bytes=9)
    pages = 1024
    full_cost = pages * (0.5 * 9 + 0.5 * (4096 + 8))
    assert r.wire_bytes_left() == pytest.approx(full_cost)
    nbytes, normal, zero = r.send(full_cost / 4)
    assert nbytes == pytest.approx(full_cost / 4)
    assert (normal, zero) == (128, 128)
    nbytes, normal2, zero2 = r.send(10 * full_cost)
    assert nbytes == pytest.approx(full_cost * 3 / 4)
    assert normal + normal2 == 512 and zero + zero2 == 512
    assert r.dirty_pages == 0
    assert r.send(1e9) == (0.0, 0, 0)


def test_resent_pages_are_never_zero_pages():
    r = ram(size="4MiB", zero_share=0.9)
    r.bulk = 0.0
    r.resend = 100.0
    nbytes, normal, zero = r.send(1e9)
    assert (normal, zero) == (100, 0) and nbytes == 100 * (4096 + 8)


def dev(**kw):
    base = {"name": "d", "stop_copy": "100MiB"}
    return Device(scn.from_dict({"devices": [{**base, **kw}]}).devices[0])


def test_device_reports_its_state_and_precopy_data():
    d = dev(precopy_initial="40MiB")
    assert d.query_stop_copy_size() == 100 * MiB
    assert d.query_precopy_info() == (40 * MiB, 0)
    assert d.read_precopy(10 * MiB) == 10 * MiB
    assert d.query_precopy_info() == (30 * MiB, 0)
    assert d.query_stop_copy_size() == 90 * MiB


def test_device_dirtying_adds_precopy_and_stop_copy_data_capped_at_the_state():
    d = dev(precopy_initial="40MiB", dirty_rate_mib_s=10)
    d.advance(1.0)
    assert d.query_precopy_info() == (40 * MiB, 10 * MiB)
    assert d.query_stop_copy_size() == 110 * MiB
    d.advance(1000)
    assert d.dirty == 100 * MiB
    d.running = False
    d.advance(1.0)
    assert d.dirty == 100 * MiB


def test_stop_copy_read_drains_everything():
    d = dev(precopy_initial="40MiB")
    assert d.read_stop_copy(1e12) == 100 * MiB
    assert d.stop_copy_length == 0


def test_garbage_driver_reports_2_64_minus_1():
    d = dev(fault="garbage", precopy_initial="1MiB")
    assert d.query_stop_copy_size() == 2**64 - 1
    assert d.query_precopy_info() == (2**64 - 1, 2**64 - 1)


def test_failing_driver_raises_oserror_eio():
    d = dev(fault="ioctl-fails")
    with pytest.raises(OSError) as e:
        d.query_stop_copy_size()
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError):
        d.query_precopy_info()


def test_lying_driver_reports_a_fraction():
    d = dev(fault="lies-low", lie_factor=0.25)
    assert d.query_stop_copy_size() == 25 * MiB
    assert d.stop_copy_length == 100 * MiB


def test_link_rate_is_the_smallest_ceiling():
    spec = scn.from_dict({"link": {"bandwidth": "10Gbps", "sender_max": "460Mbps",
                                   "switchover": "1GiB/s"}}).link
    link = Link(spec, seed=1)
    assert link.precopy_rate(0) == pytest.approx(57.5e6)
    assert link.precopy_rate(10e6) == pytest.approx(10e6)
    assert link.switchover_rate() == pytest.approx(2**30)
    plain = Link(scn.from_dict({}).link, seed=1)
    assert plain.switchover_rate() == pytest.approx(1.25e9)


def test_jitter_is_bounded_and_reproducible_from_the_seed():
    spec = scn.from_dict({"link": {"bandwidth": 1000, "jitter": 0.2}}).link
    a = [Link(spec, 7).precopy_rate(0) for _ in range(1)]
    la, lb, lc = Link(spec, 7), Link(spec, 7), Link(spec, 8)
    ra = [la.precopy_rate(0) for _ in range(200)]
    rb = [lb.precopy_rate(0) for _ in range(200)]
    rc = [lc.precopy_rate(0) for _ in range(200)]
    assert ra == rb and ra != rc and a[0] == ra[0]
    assert all(800 <= x <= 1200 for x in ra)
    assert max(ra) > 1100 and min(ra) < 900
