"""The built-in RAM model from Python (issue 3 item 5; QEMU-BEHAVIOUR.md §Pending buckets:
RAM dirty pages are precopy, or postcopy with postcopy-ram; only exact queries sync)."""
import gc
import logging
import weakref

import pytest

import switchover as so
from switchover import Pending, Ram, Status, SwitchoverError

PAGE = 4096
GIB = 1 << 30


class Bitmap:
    """A dirty bitmap the test scripts: each sync reports `left` pages, `newly` new ones."""

    def __init__(self, left=0, newly=0):
        self.left, self.newly = left, newly
        self.syncs = 0

    def __call__(self):
        self.syncs += 1
        return self.left, self.newly


def test_only_exact_queries_sync_the_dirty_bitmap(session):
    bitmap = Bitmap(left=1000)
    ram = Ram(session, GIB, sync_dirty=bitmap)
    assert session.query_pending() == Pending(0, 0, 0)  # fast: no sync, nothing dirty yet
    assert bitmap.syncs == 0
    assert session.query_pending(exact=True) == Pending(precopy=1000 * PAGE)
    assert bitmap.syncs == 1
    bitmap.left = 10
    assert session.query_pending().precopy == 1000 * PAGE  # fast: the last synced figure
    assert bitmap.syncs == 1
    assert session.query_pending(exact=True).precopy == 10 * PAGE
    assert bitmap.syncs == 2
    assert ram.dirty_pages == 10


def test_the_loop_syncs_once_per_exact_pass(session):
    bitmap = Bitmap(left=0)
    Ram(session, GIB, sync_dirty=bitmap)
    session.migration_start(0)
    session.setup_done(0)
    for n in range(1, 4):
        step = session.iteration_step(n * 100)  # precopy 0: every pass is exact
        assert step.exact
    assert bitmap.syncs == 3
    assert session.info(300).pass_ == 4  # migrate_init starts the count at 1


def test_dirty_pages_count_as_postcopy_with_postcopy_ram(session):
    ram = Ram(session, GIB)
    ram.set_dirty_pages(2048)
    assert session.query_pending() == Pending(precopy=2048 * PAGE)
    session.set_capability("postcopy-ram", True)
    assert session.query_pending() == Pending(postcopy=2048 * PAGE)


def test_record_sent_lowers_the_dirty_count_and_feeds_the_ram_figures(session):
    ram = Ram(session, 4 * GIB)
    session.migration_start(0)
    session.setup_done(0)
    ram.set_dirty_pages(1000)
    ram.record_sent(300, 200)
    figures = ram.figures
    assert (figures.normal_pages, figures.zero_pages, figures.dirty_pages) == (300, 200, 500)
    assert figures.total_bytes == 4 * GIB and figures.page_size == PAGE
    ram.record_sent(10_000)  # more than is dirty: floors at 0
    assert ram.dirty_pages == 0
    report = session.query_migrate(50)["ram"]
    assert report["normal"] == 10_300 and report["duplicate"] == 200
    assert report["normal-bytes"] == 10_300 * PAGE
    assert report["total"] == 4 * GIB and report["page-size"] == PAGE


def test_dirty_pages_rate_is_measured_over_windows_of_at_least_1000_ms(session):
    bitmap = Bitmap(left=100, newly=500)
    ram = Ram(session, GIB, sync_dirty=bitmap)
    session.migration_start(0)
    session.setup_done(0)
    now = 0
    while now < 900:
        now += 100
        session.update_counters(now)
        session.query_pending(exact=True)
        assert ram.figures.dirty_pages_rate == 0, now
    for _ in range(3):
        now += 100
        session.update_counters(now)
        session.query_pending(exact=True)
    assert ram.figures.dirty_pages_rate > 0
    assert session.query_migrate(now)["ram"]["dirty-pages-rate"] == ram.figures.dirty_pages_rate


def test_set_dirty_pages_above_the_page_count_is_refused_and_changes_nothing(session):
    ram = Ram(session, 3 * PAGE)
    ram.set_dirty_pages(3)
    with pytest.raises(SwitchoverError) as e:
        ram.set_dirty_pages(4)
    assert e.value.code == Status.ERR_OUT_OF_RANGE
    assert ram.dirty_pages == 3


def test_a_garbage_sync_figure_is_clamped_to_the_page_count_with_a_warning(session):
    Ram(session, 3 * PAGE, sync_dirty=lambda: (2**64 - 1, 0))
    assert session.query_pending(exact=True).precopy == 3 * PAGE
    warnings = session.events_named("DEVICE_SIZE_WARNING")
    assert len(warnings) == 1 and warnings[0]["device"] == "ram"


def test_a_sync_that_raises_is_logged_and_leaves_the_dirty_count_unchanged(session, caplog):
    def broken():
        raise RuntimeError("bitmap gone")

    ram = Ram(session, GIB, sync_dirty=broken)
    ram.set_dirty_pages(77)
    with caplog.at_level(logging.ERROR, logger="switchover"):
        assert session.query_pending(exact=True).precopy == 77 * PAGE
    assert "sync_dirty of the RAM model raised" in caplog.text
    assert ram.dirty_pages == 77


def test_a_sync_may_return_just_the_pages_left(session):
    Ram(session, GIB, sync_dirty=lambda: 5)
    assert session.query_pending(exact=True).precopy == 5 * PAGE


@pytest.mark.parametrize("total,page,code", [
    (1000, PAGE, Status.ERR_INVALID_ARG),      # not a multiple of the page size
    (0, PAGE, Status.ERR_INVALID_ARG),         # empty
    (PAGE, 1000, Status.ERR_INVALID_ARG),      # not a power of two
    (GIB, 256, Status.ERR_OUT_OF_RANGE),       # below 512 B
    (4 * GIB, 2 * GIB, Status.ERR_OUT_OF_RANGE),  # above 1 GiB
])
def test_bad_geometry_is_refused(session, total, page, code):
    with pytest.raises(SwitchoverError) as e:
        Ram(session, total, page)
    assert e.value.code == code
    assert session.models == []


def test_one_ram_model_per_session(session):
    Ram(session, GIB)
    with pytest.raises(SwitchoverError) as e:
        Ram(session, GIB)
    assert e.value.code == Status.ERR_EXISTS


def test_the_session_keeps_the_model_and_its_callback_alive_until_closed(session):
    bitmap = Bitmap(left=3)
    ref = weakref.ref(bitmap)
    Ram(session, GIB, sync_dirty=bitmap)
    del bitmap
    gc.collect()
    assert session.query_pending(exact=True).precopy == 3 * PAGE
    (ram,) = session.models
    with ram:
        pass  # leaving the block closes it
    assert ram.closed and session.models == []
    gc.collect()
    assert ref() is None
    assert session.query_pending(exact=True).total == 0  # unregistered
    with pytest.raises(ValueError, match="closed switchover.Ram"):
        ram.set_dirty_pages(1)
    ram.close()  # idempotent


def test_closing_the_session_closes_its_models():
    session = so.Session()
    ram = Ram(session, GIB)
    session.close()
    assert ram.closed


def test_closing_the_model_from_its_own_callback_is_refused(session):
    errors = []
    holder = []

    def sync():
        try:
            holder[0].close()
        except RuntimeError as e:
            errors.append(e)
        return 1

    holder.append(Ram(session, GIB, sync_dirty=sync))
    session.query_pending(exact=True)
    assert len(errors) == 1 and not holder[0].closed
