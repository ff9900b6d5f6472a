"""Shared fixtures for the switchover Python tests."""
import os
import sys

import pytest

# Run from a checkout without installing: the package lives next to this directory.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import switchover  # noqa: E402
from callback_guard import callback_errors  # noqa: E402,F401  (autouse fixture)
from callback_guard import configure as _configure_callback_guard  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HEADER = os.path.join(REPO, "include", "switchover.h")


@pytest.fixture
def session():
    with switchover.Session() as s:
        yield s


def pytest_configure(config):
    _configure_callback_guard(config)
