"""Shared fixtures. Binaries are found, never skipped: a missing one fails the test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.binaries import REPO_ROOT, find_binary
from testkit.cavage import KeyRegistry
from testkit.oci_credentials import ApiKeyCredentials, make_api_key_profile


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def prometheus_path() -> Path:
    return find_binary("prometheus", "PROMETHEUS_BIN")


@pytest.fixture(scope="session")
def promtool_path() -> Path:
    return find_binary("promtool", "PROMTOOL_BIN")


@pytest.fixture(scope="module")
def registry() -> KeyRegistry:
    """What a stand-in OCI gateway trusts (tests may override it per function)."""
    return KeyRegistry()


@pytest.fixture(scope="module")
def api_key(tmp_path_factory, registry) -> ApiKeyCredentials:
    """An API key profile on disk, trusted by `registry`."""
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    return creds
