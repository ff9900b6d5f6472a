"""Shared fixtures for the switchover Python tests."""
import os
import sys

import pytest

# Run from a checkout without installing: the package lives next to this directory.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import switchover  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HEADER = os.path.join(REPO, "include", "switchover.h")


@pytest.fixture
def session():
    with switchover.Session() as s:
        yield s
