"""Fixtures for discovery tests: the Data Science stand-in and a lister signing with a real key."""

from __future__ import annotations

import oci
import pytest

from app.discovery.listing import DeploymentLister, ListingConfig
from testkit.datascience_api import DataScienceApi
from testkit.oci_credentials import fake_ocid


@pytest.fixture(scope="module")
def sdk_signer(api_key):
    """The SDK signer an API-key profile gives (what the proxy holds for OCI_AUTH=api_key)."""
    return oci.signer.Signer.from_config(oci.config.from_file(str(api_key.config_path)))


@pytest.fixture
def compartment() -> str:
    return fake_ocid("compartment")


@pytest.fixture
def datascience(registry):
    with DataScienceApi(registry, default_limit=7) as api:
        yield api


@pytest.fixture
def make_lister(datascience, sdk_signer, compartment):
    def make(**changes) -> DeploymentLister:
        options = {
            "compartment_ids": (compartment,),
            "region": "us-ashburn-1",
            "endpoint": datascience.endpoint,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
        }
        options.update(changes)
        return DeploymentLister(ListingConfig(**options), lambda: sdk_signer)

    return make
