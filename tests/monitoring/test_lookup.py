"""A configured target's compartment, looked up from its deployment OCID, end to end in process:
the settings, the wiring, the real SDK against the Data Science and Monitoring stand-ins (both
verify every signature), and the collector's rounds."""

from __future__ import annotations

import asyncio
import logging

import oci
import pytest

from app.monitoring.lookup import LOOKUP_HINT, CompartmentLookup
from app.monitoring.scope import Watched
from app.monitoring.wiring import monitoring_service
from app.settings import load_settings
from testkit.datascience_api import DataScienceApi
from testkit.monitoring_api import MonitoringApi
from testkit.oci_credentials import fake_ocid

COMPARTMENT = fake_ocid("compartment")


class Credentials:
    """What the wiring reads of the proxy's credentials: the SDK signer."""

    def __init__(self, signer) -> None:
        self.sdk_signer = signer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def signer(api_key):
    return oci.signer.Signer.from_config(oci.config.from_file(str(api_key.config_path)))


@pytest.fixture
def datascience(registry):
    with DataScienceApi(registry) as server:
        yield server


@pytest.fixture
def monitoring(registry):
    with MonitoringApi(registry) as server:
        yield server


def deployment_url(ocid: str) -> str:
    return f"https://modeldeployment.us-ashburn-1.oci.customer-oci.com/{ocid}"


def test_a_plain_target_is_read_in_the_compartment_its_ocid_is_looked_up_in(
    tmp_path, signer, datascience, monitoring, caplog
):
    ocid = fake_ocid("datasciencemodeldeployment", "iad")
    datascience.add("llama", compartment_id=COMPARTMENT, id=ocid)
    monitoring.add(compartment_id=COMPARTMENT, ocid=ocid)
    monitoring.add(compartment_id=fake_ocid("compartment"))  # elsewhere: never asked for
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "OCI_AUTH": "none",  # the signer comes with the credentials object below
            "TARGETS": f"llama={deployment_url(ocid)}",
            "OCI_MONITORING_ENDPOINT": monitoring.endpoint,
        }
    )
    assert settings.oci_monitoring.mode == "auto"
    assert settings.oci_monitoring.compartment_ids == ()
    with caplog.at_level(logging.INFO, logger="app.monitoring"):
        service = monitoring_service(
            settings, Credentials(signer), datascience_endpoint=datascience.endpoint
        )
        assert service.enabled and service.poller is not None
        assert datascience.calls == []  # nothing is looked up while the proxy starts
        for _ in range(2):
            assert asyncio.run(service.poller.poll_once())

    [lookup] = datascience.calls  # once, not once per round
    assert lookup.target == f"/20190101/modelDeployments/{ocid}"
    assert lookup.status == 200 and lookup.verified is not None
    assert {c.compartment_id for c in monitoring.calls} == {COMPARTMENT}
    assert all(c.verified is not None for c in monitoring.calls)
    body = service.render().decode()
    assert f'deployment="llama",deployment_ocid="{ocid}"' in body
    assert "oci_datascience_modeldeploy_gpu_utilization_ratio{" in body
    assert "aqua_oci_monitoring_deployments 1.0" in body
    assert f"oci-monitoring: llama is in compartment {COMPARTMENT}" in caplog.text


def test_a_target_without_an_ocid_leaves_auto_off_without_a_compartment(tmp_path, signer, caplog):
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "OCI_AUTH": "none", "TARGET": "https://llm.example.com"}
    )
    with caplog.at_level(logging.INFO, logger="app.monitoring"):
        service = monitoring_service(settings, Credentials(signer))
    assert not service.enabled
    assert "oci-monitoring: off (no compartment is known" in caplog.text


def test_a_failed_lookup_is_retried_with_backoff_and_logged_once(signer, datascience, caplog):
    ocid = fake_ocid("datasciencemodeldeployment", "iad")
    datascience.add("llama", compartment_id=COMPARTMENT, id=ocid)
    datascience.deny_compartment(COMPARTMENT)
    clock = Clock()
    lookup = CompartmentLookup(
        lambda: signer,
        default_region=None,
        endpoint=datascience.endpoint,
        clock=clock,
        initial_backoff=30.0,
    )
    watched = [Watched("llama", ocid, "us-ashburn-1")]
    with caplog.at_level(logging.INFO, logger="app.monitoring"):
        lookup.resolve(watched)
        lookup.resolve(watched)  # before the backoff has passed: no call
        assert len(datascience.calls) == 1
        clock.now += 40  # past 30 s +-20%
        lookup.resolve(watched)  # refused again: not logged again
        assert len(datascience.calls) == 2
        assert lookup.place(watched) == watched
        datascience.deny_compartment(COMPARTMENT, denied=False)
        clock.now += 45
        lookup.resolve(watched)  # the backoff doubled: 60 s -20% have not passed
        assert len(datascience.calls) == 2
        clock.now += 30
        lookup.resolve(watched)
    assert len(datascience.calls) == 3
    [placed] = lookup.place(watched)
    assert placed.compartment_id == COMPARTMENT
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "oci-monitoring: cannot look up the compartment of llama (not_authorized: HTTP 404 "
        f"NotAuthorizedOrNotFound); retrying with backoff; {LOOKUP_HINT}"
    ]
    assert (
        f"oci-monitoring: llama is in compartment {COMPARTMENT} (found after failed lookups)"
        in caplog.text
    )
    assert lookup.counts == {"not_authorized": 2, "ok": 1}


def test_a_configured_compartment_is_not_looked_up(signer, datascience):
    lookup = CompartmentLookup(lambda: signer, default_region=None, endpoint=datascience.endpoint)
    known = Watched("llama", fake_ocid("datasciencemodeldeployment"), None, COMPARTMENT)
    lookup.resolve([known])
    assert datascience.calls == []
    assert lookup.place([known]) == [known]
