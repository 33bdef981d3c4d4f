"""Shared fixtures for the fault-injection and load suites: an API key the stand-in gateways trust.

Every test here runs the proxy as a real process (`python -m app proxy`) against real HTTP servers
on loopback; see tests/support/proxy_process.py and tests/support/counting_upstream.py.
"""

from __future__ import annotations

import pytest

from tests.support.cavage import KeyRegistry
from tests.support.oci_credentials import ApiKeyCredentials, make_api_key_profile


@pytest.fixture(scope="module")
def registry() -> KeyRegistry:
    return KeyRegistry()


@pytest.fixture(scope="module")
def api_key(tmp_path_factory, registry) -> ApiKeyCredentials:
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    return creds
