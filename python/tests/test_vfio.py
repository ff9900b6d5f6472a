"""The VFIO device model from Python (issue 4; docs/qemu-model.md §VFIO)."""
import errno
import logging
import os

import pytest

import switchover as so
from switchover import Pending, Status, SwitchoverError, Vfio

GIB = 1 << 30
MIB = 1 << 20
INT64_MAX = 2**63 - 1
FALLBACK = 107_374_182_400  # 100 GiB when the stop-copy size cannot be read


class Device:
    """A device whose size readers the test scripts, counting every read."""

    def __init__(self, stop_copy=0, initial=0, dirty=0):
        self.stop_copy, self.initial, self.dirty = stop_copy, initial, dirty
        self.stop_reads = self.precopy_reads = 0
        self.fail_with = None

    def query_stop_copy_size(self):
        self.stop_reads += 1
        if self.fail_with is not None:
            raise OSError(self.fail_with, os.strerror(self.fail_with))
        return self.stop_copy

    def query_precopy_info(self):
        self.precopy_reads += 1
        return self.initial, self.dirty

    def attach(self, session, name):
        return Vfio(session, name, query_stop_copy_size=self.query_stop_copy_size,
                    query_precopy_info=self.query_precopy_info)


def warnings(session, kind=None):
    return [d for d in session.events_named("DEVICE_SIZE_WARNING")
            if kind is None or d.get("kind") == kind]


def test_two_devices_count_in_remaining_and_expected_downtime(session):
    gpu, nic = Device(stop_copy=2 * GIB), Device(stop_copy=8 * MIB)
    gpu.attach(session, "0000:3b:00.0")
    nic.attach(session, "0000:5e:00.1")
    session.set_parameters({"avail-switchover-bandwidth": GIB, "downtime-limit": 1000})
    session.migration_start(0)
    session.setup_done(0)
    for now in (100, 200):
        session.update_counters(now)
        step = session.iteration_step(now)
        assert step.action == so.ACTION_ITERATE
    assert step.pending == Pending(0, 2 * GIB + 8 * MIB, 0)
    info = session.info(200)
    assert info.remaining_bytes == 2 * GIB + 8 * MIB
    # (2 GiB + 8 MiB) at 1 GiB/s = 2007.8 ms: the NIC's 7.8 ms count too.
    assert info.expected_downtime_ms == 2007
    report = session.query_migrate(200)
    assert report["remaining"] == 2 * GIB + 8 * MIB
    assert report["expected-downtime"] == 2007
    assert report["vfio"] == {"transferred": 0}


def test_fast_queries_use_the_cache_and_exact_ones_re_read(session):
    dev = Device(stop_copy=GIB)
    dev.attach(session, "gpu")
    assert dev.stop_reads == 1  # read once at creation
    dev.stop_copy = 2 * GIB
    assert session.query_pending().stopcopy == GIB
    assert dev.stop_reads == 1
    assert session.query_pending(exact=True).stopcopy == 2 * GIB
    assert dev.stop_reads == 2


def test_precopy_info_is_read_only_in_pre_copy_and_split_from_stop_copy(session):
    dev = Device(stop_copy=2 * GIB, initial=100 * MIB, dirty=10 * MIB)
    vfio = dev.attach(session, "gpu")
    session.query_pending(exact=True)
    assert dev.precopy_reads == 0  # RUNNING: no precopy info
    vfio.set_state(so.VFIO_PRE_COPY)
    assert vfio.state == so.VFIO_PRE_COPY
    p = session.query_pending(exact=True)
    assert dev.precopy_reads == 1
    assert p == Pending(precopy=110 * MIB, stopcopy=2 * GIB - 110 * MIB)
    vfio.set_state(so.VFIO_PRE_COPY_P2P)
    vfio.refresh()
    assert dev.precopy_reads == 2
    vfio.set_state(so.VFIO_STOP_COPY)
    vfio.refresh()
    assert dev.precopy_reads == 2


def test_reads_shrink_the_cache_stop_copy_first_then_initial_then_dirty(session):
    dev = Device(stop_copy=1000, initial=300, dirty=200)
    vfio = dev.attach(session, "nic")
    vfio.set_state(so.VFIO_PRE_COPY)
    vfio.refresh()
    vfio.record_read(400)
    assert vfio.sizes == so.VfioSizes(stopcopy_size=600, precopy_init_size=0,
                                      precopy_dirty_size=100, transferred=400)
    vfio.record_read(0)  # end of precopy data for now
    assert (vfio.sizes.precopy_init_size, vfio.sizes.precopy_dirty_size) == (0, 0)
    vfio.record_read(10_000)  # larger than the cache: floors at 0
    assert vfio.sizes.stopcopy_size == 0
    assert vfio.sizes.transferred == 10_400
    assert len(warnings(session, "read-exceeds-cache")) == 1


def test_precopy_larger_than_stop_copy_gives_an_empty_stop_copy_bucket(session):
    dev = Device(stop_copy=100, initial=300, dirty=0)
    vfio = dev.attach(session, "gpu")
    vfio.set_state(so.VFIO_PRE_COPY)
    assert session.query_pending(exact=True) == Pending(precopy=300, stopcopy=0)


@pytest.mark.parametrize("garbage", [2**64 - 1, 2**63])
def test_garbage_sizes_are_clamped_with_one_warning(session, garbage):
    dev = Device(stop_copy=garbage)
    vfio = dev.attach(session, "gpu")
    assert vfio.sizes.stopcopy_size == INT64_MAX
    with pytest.raises(SwitchoverError) as e:
        vfio.refresh()
    assert e.value.code == Status.ERR_OUT_OF_RANGE
    assert "Estimated stop copy size overflow" in e.value.message
    assert session.query_pending(exact=True).stopcopy == INT64_MAX  # no wrap
    assert len(warnings(session)) == 1  # once per device and kind
    assert warnings(session)[0]["kind"] == "stop-copy-overflow"


def test_garbage_precopy_sizes_are_clamped_and_sums_do_not_wrap(session):
    dev = Device(stop_copy=GIB, initial=2**64 - 1, dirty=2**64 - 1)
    vfio = dev.attach(session, "gpu")
    vfio.set_state(so.VFIO_PRE_COPY)
    with pytest.raises(SwitchoverError) as e:
        vfio.refresh()
    assert e.value.code == Status.ERR_OUT_OF_RANGE
    sizes = vfio.sizes
    assert sizes.precopy_init_size == sizes.precopy_dirty_size == INT64_MAX
    p = session.query_pending()
    assert p.precopy >= INT64_MAX and p.stopcopy == 0
    assert p.total >= INT64_MAX


def test_a_failing_stop_copy_reader_falls_back_to_100_gib(session):
    dev = Device(stop_copy=GIB)
    dev.fail_with = errno.ENODEV
    vfio = dev.attach(session, "gpu")  # the first read fails: a warning, not an error
    assert vfio.sizes.stopcopy_size == FALLBACK
    (warning,) = warnings(session)
    assert warning["kind"] == "stop-copy-query-failed" and warning["value"] == errno.ENODEV
    with pytest.raises(SwitchoverError) as e:
        vfio.refresh()
    assert e.value.code == Status.ERR_IO
    assert session.query_pending(exact=True).stopcopy == FALLBACK
    dev.fail_with = None
    vfio.refresh()
    assert vfio.sizes.stopcopy_size == GIB


def test_a_reader_may_return_a_negative_errno(session):
    Vfio(session, "nic", query_stop_copy_size=lambda: -errno.EBUSY)
    assert warnings(session)[0]["value"] == errno.EBUSY
    assert session.query_pending().stopcopy == FALLBACK


@pytest.mark.callback_errors  # raises inside a callback on purpose
def test_a_reader_that_raises_something_else_is_logged_and_counts_as_eio(session, caplog):
    with caplog.at_level(logging.ERROR, logger="switchover"):
        vfio = Vfio(session, "gpu", query_stop_copy_size=lambda: 1 / 0)
    assert "query_stop_copy_size of VFIO device 'gpu' raised" in caplog.text
    assert vfio.sizes.stopcopy_size == FALLBACK
    assert warnings(session)[0]["value"] == errno.EIO


def test_a_failing_precopy_reader_gives_precopy_zero(session):
    def broken():
        raise OSError(errno.EINVAL, "not in PRE_COPY")

    vfio = Vfio(session, "gpu", query_stop_copy_size=lambda: GIB, query_precopy_info=broken)
    vfio.set_state(so.VFIO_PRE_COPY)
    with pytest.raises(SwitchoverError) as e:
        vfio.refresh()
    assert e.value.code == Status.ERR_IO
    assert session.query_pending() == Pending(0, GIB, 0)
    assert warnings(session, "precopy-query-failed")


def test_postcopy_is_refused_while_a_vfio_device_exists(session):
    session.set_capability("postcopy-ram", True)
    vfio = Device(stop_copy=8 * MIB).attach(session, "0000:5e:00.1")
    session.migration_start(0)
    session.setup_done(0)
    with pytest.raises(SwitchoverError) as e:
        session.postcopy_request()
    assert e.value.code == Status.ERR_UNSUPPORTED
    assert "0000:5e:00.1" in e.value.message
    vfio.close()
    session.postcopy_request()  # no VFIO device any more


def test_vfio_member_is_reported_only_while_a_device_exists(session):
    session.migration_start(0)
    session.setup_done(0)
    assert "vfio" not in session.query_migrate(10)
    vfio = Device(stop_copy=MIB).attach(session, "nic")
    vfio.record_read(4096)
    report = session.query_migrate(20)
    assert report["vfio"] == {"transferred": 4096}
    assert "vfio=4 KiB" in session.info_migrate(20)
    vfio.close()
    assert "vfio" not in session.query_migrate(30)


def test_state_above_7_is_refused_and_kept(session):
    vfio = Device(stop_copy=MIB).attach(session, "nic")
    with pytest.raises(SwitchoverError) as e:
        vfio.set_state(8)
    assert e.value.code == Status.ERR_INVALID_ARG
    assert vfio.state == so.VFIO_RUNNING


def test_two_devices_may_not_share_a_name(session):
    Device(stop_copy=MIB).attach(session, "nic")
    with pytest.raises(SwitchoverError) as e:
        Device(stop_copy=MIB).attach(session, "nic")
    assert e.value.code == Status.ERR_EXISTS
    assert len(session.models) == 1


def test_from_fd_on_a_file_that_is_no_vfio_device_falls_back_to_100_gib(session, tmp_path):
    path = tmp_path / "not-a-device"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        vfio = Vfio.from_fd(session, "fake", fd)
        assert vfio.sizes.stopcopy_size == FALLBACK  # the ioctl failed (ENOTTY)
        assert warnings(session)[0]["kind"] == "stop-copy-query-failed"
        vfio.set_data_fd(fd)
        vfio.set_data_fd(-1)
        vfio.close()
    finally:
        os.close(fd)
    with pytest.raises(ValueError):
        Vfio.from_fd(session, "neg", -1)


def test_set_data_fd_needs_a_device_made_from_an_fd(session):
    vfio = Device(stop_copy=MIB).attach(session, "nic")
    with pytest.raises(SwitchoverError) as e:
        vfio.set_data_fd(3)
    assert e.value.code == Status.ERR_UNSUPPORTED


def test_devices_are_closed_with_the_session_and_unregistered_on_close():
    session = so.Session()
    dev = Device(stop_copy=MIB)
    vfio = dev.attach(session, "nic")
    assert session.query_pending().stopcopy == MIB
    vfio.close()
    assert session.query_pending().total == 0
    other = dev.attach(session, "nic")  # the name is free again
    session.close()
    assert other.closed
    with pytest.raises(ValueError, match="closed switchover.Vfio"):
        other.refresh()
