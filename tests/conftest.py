"""Shared fixtures. Binaries are found, never skipped: a missing one fails the test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.binaries import REPO_ROOT, find_binary


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def prometheus_path() -> Path:
    return find_binary("prometheus", "PROMETHEUS_BIN")


@pytest.fixture(scope="session")
def promtool_path() -> Path:
    return find_binary("promtool", "PROMTOOL_BIN")
