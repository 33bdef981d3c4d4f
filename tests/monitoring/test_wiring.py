"""Which deployments the proxy's collector reads: configured targets, and discovery's fleet."""

from __future__ import annotations

import logging

from app.discovery.deployments import DiscoveredDeployment, InferenceContainer
from app.discovery.fleet import build_fleet
from app.monitoring.wiring import monitoring_service
from app.settings import load_settings
from testkit.oci_credentials import fake_ocid

COMPARTMENT = fake_ocid("compartment")
DEPLOYMENT = "ocid1.datasciencemodeldeployment.oc1.iad.explicitone"
URL = f"https://modeldeployment.us-ashburn-1.oci.customer-oci.com/{DEPLOYMENT}"


class FakeCredentials:
    """Just what the wiring reads: an SDK signer (never called here)."""

    sdk_signer = object()


def settings(tmp_path, **env):
    return load_settings({"DATA_DIR": str(tmp_path), "OCI_AUTH": "none", **env})


def discovered(name: str, compartment: str, region: str = "eu-frankfurt-1") -> DiscoveredDeployment:
    ocid = fake_ocid("datasciencemodeldeployment", "fra")
    return DiscoveredDeployment(
        ocid=ocid,
        display_name=name,
        url=f"https://modeldeployment.{region}.oci.customer-oci.com/{ocid}",
        lifecycle_state="ACTIVE",
        compartment_id=compartment,
        project_id=fake_ocid("datascienceproject"),
        region=region,
        is_aqua=True,
        aqua_model=name,
        shape="VM.GPU.A10.2",
        instance_count=1,
        inference_container=InferenceContainer.VLLM,
        image="dsmc://odsc-vllm-serving:0.22.1.1",
        time_created=None,
    )


def test_without_a_compartment_a_target_s_ocid_turns_auto_on_for_a_lookup(tmp_path, caplog):
    config = settings(tmp_path, TARGETS=f"llama={URL}")
    with caplog.at_level(logging.INFO, logger="app.monitoring"):
        service = monitoring_service(config, FakeCredentials())  # type: ignore[arg-type]
    assert service.enabled and service.collector is not None
    assert "in the compartments their OCIDs are looked up in" in caplog.text
    # Until the lookup (in the collector's first round) has found it, nothing is placed.
    assert not service._scope_provider().places


def test_a_url_without_a_region_is_never_looked_up_in_a_guessed_one(tmp_path, caplog):
    """A loopback stand-in's URL names the OCID but no region: without a compartment `auto`
    stays off rather than asking the credentials' region's real Data Science API about it."""
    loopback = f"http://127.0.0.1:9/{DEPLOYMENT}/predict/metrics"
    config = settings(tmp_path, TARGETS=f"llama={loopback}")
    with caplog.at_level(logging.INFO, logger="app.monitoring"):
        service = monitoring_service(config, FakeCredentials())  # type: ignore[arg-type]
    assert not service.enabled and service.collector is None
    assert "no target's URL names its model deployment OCID and region" in caplog.text


def test_explicit_targets_are_read_in_their_region_and_the_configured_compartment(tmp_path):
    config = settings(tmp_path, TARGETS=f"llama={URL}", OCI_MONITORING_COMPARTMENT_ID=COMPARTMENT)
    service = monitoring_service(config, FakeCredentials())  # type: ignore[arg-type]
    assert service.enabled and service.collector is not None
    scope = service.collector._scope_provider()
    [(place, members)] = scope.places.items()
    assert (place.region, place.compartment_id) == ("us-ashburn-1", COMPARTMENT)
    assert [(w.name, w.ocid) for w in members] == [("llama", DEPLOYMENT)]


def test_discovered_deployments_bring_their_compartment_and_region(tmp_path):
    elsewhere = fake_ocid("compartment")
    config = settings(
        tmp_path,
        TARGETS=f"llama={URL}",
        OCI_COMPARTMENT_ID=COMPARTMENT,
        # Discovery needs credentials and a region; a resource principal environment gives both.
        OCI_AUTH="resource_principal",
        OCI_RESOURCE_PRINCIPAL_VERSION="2.2",
        OCI_REGION="us-ashburn-1",
    )
    explicit = list(config.proxy.targets)
    fleet = build_fleet([discovered("qwen", elsewhere), discovered("phi", COMPARTMENT)], explicit)
    service = monitoring_service(
        config,
        FakeCredentials(),  # type: ignore[arg-type]
        fleet_provider=lambda: fleet,
    )
    assert service.collector is not None
    scope = service.collector._scope_provider()
    placed = {
        w.name: (place.region, place.compartment_id)
        for place, members in scope.places.items()
        for w in members
    }
    assert placed == {
        "llama": ("us-ashburn-1", COMPARTMENT),
        "qwen": ("eu-frankfurt-1", elsewhere),
        "phi": ("eu-frankfurt-1", COMPARTMENT),
    }
