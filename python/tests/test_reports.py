"""query-migrate and info migrate from Python (issue 5; docs/qemu-model.md §query-migrate and
§HMP): every status validates against the JSON Schema of MigrationInfo, the HMP text has the
11.1 lines, and a report thread reads consistent documents while the migration thread steps."""
import json
import os
import threading

import jsonschema  # a required test dependency (scripts/env.sh installs it): never skipped
import pytest

import switchover as so
from switchover import Ram, Session, Vfio
from conftest import REPO

SCHEMA_PATH = os.path.join(REPO, "tests", "schema", "migration-info.schema.json")
PAGE = 4096
GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def validator():
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def fixed(pre=0, stop=0, post=0):
    return lambda exact, final: (pre, stop, post)


def converging(session, pre=1_000_000):
    """A migration whose first pass switches over: 1,000,000 B pending, 10 MB/s."""
    session.register_handler("dev", fixed(pre=pre))
    session.migration_start(0)
    session.setup_done(5)
    session.record_transferred(1_000_000)
    session.update_counters(100)
    return session.iteration_step(100)


def to_status(session, name):
    """Brings a fresh session to the status called `name`; returns the time to report at."""
    if name == "none":
        return 0
    if name == "setup":
        session.migration_start(0)
        return 10
    if name == "pre-switchover":
        session.set_capability("pause-before-switchover", True)
    if name == "postcopy-active":
        session.set_capability("postcopy-ram", True)
        session.register_handler("ram", fixed(post=5 * MIB))
        session.migration_start(0)
        session.setup_done(5)
        session.postcopy_request()
        session.record_transferred(1_000_000)
        session.update_counters(100)
        assert session.iteration_step(100).action == so.ACTION_START_POSTCOPY
        session.postcopy_start(110)
        return 200
    if name == "cancelled":
        session.migration_start(0)
        session.cancel(50)
        return 60
    if name == "failed":
        session.migration_start(0)
        session.fail(50, "destination closed the connection")
        return 60
    assert converging(session).action == so.ACTION_SWITCHOVER
    if name == "active":
        return 150
    session.switchover_begin(120)
    if name in ("pre-switchover", "device"):
        return 150
    assert name == "completed"
    session.complete(140)
    return 150


STATUSES = ["none", "setup", "active", "pre-switchover", "device", "postcopy-active",
            "completed", "cancelled", "failed"]


@pytest.mark.parametrize("name", STATUSES)
def test_query_migrate_validates_against_the_schema_in_every_status(session, validator, name):
    now = to_status(session, name)
    assert session.status_name == name
    report = session.query_migrate(now)
    if name == "none":
        assert report == {}
        return
    validator.validate(report)
    assert report["status"] == name
    strict_json_object(session.query_migrate_json(now))
    live = name in ("active", "pre-switchover", "device", "postcopy-active")
    assert ("remaining" in report) == live
    if name in ("postcopy-active", "completed"):
        assert "downtime" in report and "expected-downtime" not in report
    elif live:
        assert "expected-downtime" in report and "downtime" not in report


def strict_json_object(text):
    """Parses `text` as one JSON object the way a strict QMP client would: no member twice in
    any object, no NaN or Infinity, nothing after the document. Returns the object."""
    def no_duplicates(pairs):
        names = [k for k, _ in pairs]
        assert len(names) == len(set(names)), f"a member appears twice: {names}"
        return dict(pairs)

    def no_constant(name):
        raise AssertionError(f"{name} is not JSON")

    doc = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    assert isinstance(doc, dict)
    return doc


def test_strict_json_object_refuses_what_a_qmp_client_refuses():
    # The check above must be able to fail.
    for bad in ('{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}', '{"a": NaN}', '{"a": 1} {}'):
        with pytest.raises((AssertionError, ValueError)):
            strict_json_object(bad)


# docs/qemu-model.md §query-migrate: `status, ram, remaining, vfio, total-time,
# expected-downtime, downtime, setup-time, error-desc`, and the library's `x-switchover` after
# QEMU's members (docs/design.md §Reports); `ram` has all its members, in this order.
TOP_ORDER = ["status", "ram", "remaining", "vfio", "total-time", "expected-downtime",
             "downtime", "setup-time", "error-desc", "x-switchover"]
RAM_ORDER = ["transferred", "remaining", "total", "duplicate", "normal", "normal-bytes",
             "dirty-pages-rate", "mbps", "dirty-sync-count", "postcopy-requests", "page-size",
             "multifd-bytes", "pages-per-second", "precopy-bytes", "downtime-bytes",
             "postcopy-bytes", "dirty-sync-missed-zero-copy"]


def ordered_keys(text):
    """Top-level and `ram` member names in the order the text has them."""
    doc = json.loads(text, object_pairs_hook=lambda pairs: pairs)
    top = [k for k, _ in doc]
    ram = [k for k, _ in dict(doc).get("ram", [])]
    return top, ram


def test_member_order_is_qemus(session):
    now = to_status(session, "active")
    top, ram = ordered_keys(session.query_migrate_json(now))
    assert top == ["status", "ram", "remaining", "total-time", "expected-downtime",
                   "setup-time", "x-switchover"]
    assert ram == RAM_ORDER


@pytest.mark.parametrize("name", ["active", "completed"])
def test_member_order_with_a_vfio_device(session, name):
    Vfio(session, "nic", query_stop_copy_size=lambda: 1000)  # small: still converges
    now = to_status(session, name)
    top, ram = ordered_keys(session.query_migrate_json(now))
    expected = {
        "active": ["status", "ram", "remaining", "vfio", "total-time", "expected-downtime",
                   "setup-time", "x-switchover"],
        "completed": ["status", "ram", "vfio", "total-time", "downtime", "setup-time",
                      "x-switchover"],
    }[name]
    assert top == expected
    assert [k for k in TOP_ORDER if k in top] == top  # a sub-sequence of the full order
    assert ram == RAM_ORDER


def test_member_order_of_a_failed_migration(session):
    now = to_status(session, "failed")
    top, _ = ordered_keys(session.query_migrate_json(now))
    assert top == ["status", "error-desc"]


def test_figures_of_an_active_migration(session):
    now = to_status(session, "active")
    report = session.query_migrate(now)
    assert report["remaining"] == 1_000_000
    assert report["setup-time"] == 5 and report["total-time"] == 150
    # One exact pass (dirty-sync-count 2, from migrate_init's 1): 1,000,000 B at 80 Mbps.
    assert report["expected-downtime"] == 100
    assert report["ram"]["transferred"] == 1_000_000
    assert report["ram"]["mbps"] == 80
    assert report["ram"]["dirty-sync-count"] == 2
    assert report["x-switchover"]["threshold"] == 3_000_000


def test_completed_migration_reports_downtime_and_no_remaining(session):
    now = to_status(session, "completed")
    report = session.query_migrate(now)
    assert report["downtime"] == 20  # guest stopped at 120, completed at 140
    assert report["total-time"] == 140  # frozen at completion
    assert report["ram"]["remaining"] == 0 and report["ram"]["dirty-pages-rate"] == 0
    text = session.info_migrate(now + 1000)
    assert "Status: \t\tcompleted\n" in text
    assert "Time (ms): \t\ttotal=140, setup=5, down=20\n" in text
    assert "Remaining:" not in text


def test_info_migrate_reproduces_the_seed_sample():
    with Session() as s:
        ram = Ram(s, 4 * GIB + 16 * MIB)  # 4.02 GiB
        s.migration_start(0)
        s.setup_done(14)
        # No exact pass yet: dirty_syncs=1 (QEMU's migrate_init) and exp_down = the limit.
        last_window_bytes, last_window_pages = 10_506_250, 2566  # 840.50 Mbps, 25660 pps
        s.record_transferred(1_266_000_000 - last_window_bytes)
        ram.record_sent(307_923 - last_window_pages, 388_148)
        s.update_counters(11_980)
        s.record_transferred(last_window_bytes)
        ram.record_sent(last_window_pages, 0)
        s.update_counters(12_080)
        ram.set_dirty_pages(356_516)  # 1.36 GiB
        assert s.query_pending().total == 356_516 * PAGE  # the system-wide remaining
        text = s.info_migrate(12_080)
    assert text == (
        "Status: \t\tactive\n"
        "Time (ms): \t\ttotal=12080, setup=14, exp_down=300\n"
        "Remaining: \t\t1.36 GiB\n"
        "RAM info:\n"
        "  Throughput (Mbps): \t840.50\n"
        "  Sizes: \t\tpagesize=4 KiB, total=4.02 GiB\n"
        "  Transfers: \t\ttransferred=1.18 GiB, remain=1.36 GiB\n"
        "    Channels: \t\tprecopy=1.18 GiB, multifd=0 B, postcopy=0 B\n"
        "    Page Types: \tnormal=307923, zero=388148\n"
        "  Page Rates (pps): \ttransfer=25660\n"
        "  Others: \t\tdirty_syncs=1\n")


def test_info_migrate_has_a_stalled_line_while_stalled(session):
    session.register_handler("vgpu", fixed(stop=2_050_000_000))
    session.set_parameters({"avail-switchover-bandwidth": GIB, "downtime-limit": 1000})
    session.migration_start(0)
    session.setup_done(0)
    now = 0
    for _ in range(5):
        now += 100
        session.update_counters(now)
        session.iteration_step(now)
    assert "Stalled:" not in session.info_migrate(now)
    now += 100
    session.update_counters(now)
    session.iteration_step(now)
    assert session.info(now).stalled
    lines = session.info_migrate(now).splitlines()
    assert ("Stalled: \t\t5 passes, best remaining 1.91 GiB, downtime-limit 2100 ms would "
            "converge") in lines
    assert session.query_migrate(now)["x-switchover"]["stalled"] is True


def test_setup_and_failed_reports_are_short(session):
    session.migration_start(0)
    assert session.query_migrate(5) == {"status": "setup"}
    assert session.info_migrate(5).startswith("Status: \t\tsetup\n")
    session.fail(7)
    assert session.query_migrate(8) == {"status": "failed"}


def test_cancelling_is_reported_while_the_migration_thread_is_inside_a_step(session,
                                                                           validator):
    inside, release = threading.Event(), threading.Event()

    def slow(exact, final):
        inside.set()
        release.wait(10)
        return (10**9, 0, 0)

    session.register_handler("ram", slow)
    session.migration_start(0)
    session.setup_done(0)
    errors = []

    def migration_thread():
        try:
            session.iteration_step(10)
        except so.SwitchoverError as e:
            errors.append(e)

    t = threading.Thread(target=migration_thread)
    t.start()
    try:
        assert inside.wait(10)
        session.cancel(20)
        report = session.query_migrate(20)  # never waits for the callback
        assert report["status"] == "cancelling"
        validator.validate(report)
    finally:
        release.set()
        t.join()
    assert errors and errors[0].code == so.Status.ERR_BAD_STATE
    assert session.status == so.STATUS_CANCELLED


def test_a_report_thread_reads_consistent_documents_while_the_migration_steps(validator):
    s = Session()
    ram = Ram(s, GIB, sync_dirty=lambda: (1000, 100))
    s.register_handler("vgpu", fixed(stop=64 * MIB))
    s.migration_start(0)
    s.setup_done(0)
    done, started = threading.Event(), threading.Event()
    docs, problems = [], []

    def reporter():
        last_transferred = last_syncs = 0
        now = 0
        while not done.is_set() or not docs:
            now += 1
            try:
                report = json.loads(s.query_migrate_json(now))
            except Exception as e:  # reported by the main thread
                problems.append(repr(e))
                return
            if not report:
                continue
            docs.append(report)
            started.set()
            if "ram" in report:
                transferred = report["ram"]["transferred"]
                syncs = report["ram"]["dirty-sync-count"]
                if transferred < last_transferred or syncs < last_syncs:
                    problems.append((last_transferred, transferred, last_syncs, syncs))
                last_transferred, last_syncs = transferred, syncs
            s.info_migrate(now)

    t = threading.Thread(target=reporter)
    t.start()
    try:
        assert started.wait(10)  # the reports overlap with the steps below
        now = 0
        for _ in range(300):
            now += 100
            s.record_transferred(1_000_000)
            ram.record_sent(200, 44)
            s.update_counters(now)
            s.iteration_step(now)
    finally:
        done.set()
        t.join()
    assert problems == []
    assert len(docs) >= 2
    validator.validate(docs[-1])
    final = s.query_migrate(now)["ram"]
    assert final["dirty-sync-count"] == s.info(now).pass_ > 0
    assert final["transferred"] == 300 * 1_000_000
    assert docs[-1]["ram"]["transferred"] <= final["transferred"]
    s.close()
