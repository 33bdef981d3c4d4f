"""Shared fixtures for the security suite."""

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
