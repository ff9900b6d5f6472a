"""Exceptions raised inside callbacks the library calls (handlers, ``is_active``, VMM hooks,
the event callback, RAM and VFIO readers) fail the test that raised them.

The binding catches every exception a callback raises, logs it on the ``switchover`` logger
and carries on (a VMM must survive a buggy device), so an ``assert`` inside a test's callback
would pass whatever happens. Two nets catch them:

- the ``callback_errors`` fixture (autouse, through ``conftest.py``) records every record the
  ``switchover`` logger emits with an exception attached, and fails the test at teardown;
  a test that makes callbacks raise on purpose says so with ``@pytest.mark.callback_errors``,
  and even then an ``AssertionError`` or a pytest outcome (``pytest.fail``, a failed
  ``pytest.raises``) still fails it;
- exceptions that escape a ctypes callback altogether (``BaseException``, e.g. the
  ``Failed`` of ``pytest.raises``) reach :func:`sys.unraisablehook`; pytest turns them into
  ``PytestUnraisableExceptionWarning``, made an error here (likewise exceptions in threads).
"""
import logging

import pytest

WARNINGS_AS_ERRORS = (
    "error::pytest.PytestUnraisableExceptionWarning",
    "error::pytest.PytestUnhandledThreadExceptionWarning",
)


def configure(config):
    config.addinivalue_line(
        "markers", "callback_errors: the test makes library callbacks raise on purpose; "
        "exceptions other than AssertionError and pytest outcomes are allowed")
    for line in WARNINGS_AS_ERRORS:
        config.addinivalue_line("filterwarnings", line)


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.records.append(record)


def _is_test_failure(exc):
    # pytest.fail / a failed pytest.raises raise outcome exceptions (BaseException subclasses)
    return isinstance(exc, AssertionError) or type(exc).__module__.startswith("_pytest")


@pytest.fixture(autouse=True)
def callback_errors(request):
    """The exceptions callbacks raised during the test (logging records), checked after it."""
    recorder = _Recorder()
    logger = logging.getLogger("switchover")
    logger.addHandler(recorder)
    try:
        yield recorder.records
    finally:
        logger.removeHandler(recorder)
    allowed = request.node.get_closest_marker("callback_errors") is not None
    bad = [r for r in recorder.records if not allowed or _is_test_failure(r.exc_info[1])]
    if bad:
        lines = [f"{len(bad)} exception(s) raised inside library callbacks (caught and logged "
                 "by the binding):"]
        for r in bad:
            lines.append(f"- {r.getMessage()}: {type(r.exc_info[1]).__name__}: {r.exc_info[1]}")
        pytest.fail("\n".join(lines), pytrace=False)
