"""The inventory and discovery metrics as Prometheus reads them from the proxy's registry."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.discovery.deployments import DiscoveredDeployment, InferenceContainer
from app.discovery.fleet import Fleet, build_fleet
from app.discovery.inventory import INFO_LABELS, DiscoveryCollector
from app.discovery.poller import PollStatus


def _deployment(name, unique, state="ACTIVE"):
    ocid = f"ocid1.datasciencemodeldeployment.oc1.iad.amaaaaaa{unique}"
    return DiscoveredDeployment(
        ocid=ocid,
        display_name=name,
        url=f"https://modeldeployment.us-ashburn-1.oci.customer-oci.com/{ocid}",
        lifecycle_state=state,
        compartment_id="c",
        project_id="p",
        region="us-ashburn-1",
        is_aqua=True,
        aqua_model='Llama "3"',
        shape="VM.GPU.A10.2",
        instance_count=1,
        inference_container=InferenceContainer.VLLM,
        image="",
        time_created=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _scrape(fleet, status):
    registry = CollectorRegistry()
    registry.register(DiscoveryCollector(lambda: fleet, lambda: status))
    text = generate_latest(registry).decode()
    return text, {
        sample.name: sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name != "aqua_deployment_info"
    } | {
        ("info", sample.labels["deployment"]): sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "aqua_deployment_info"
    }


def _by_labels(text, name, label):
    return {
        sample.labels[label]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_every_deployment_in_any_state_has_an_info_series():
    fleet = build_fleet(
        [
            _deployment("Chat", "a1"),
            _deployment("Broken", "b1", "FAILED"),
            _deployment("Sick", "c1", "NEEDS_ATTENTION"),
        ]
    )
    status = PollStatus(
        result=None,
        last_success=1700000000.5,
        failing=False,
        consecutive_failures=0,
        last_error=None,
        calls={"ok": 3, "throttled": 1, "error": 0},
    )
    text, samples = _scrape(fleet, status)

    chat = samples[("info", "chat")]
    assert chat.value == 1.0
    assert set(chat.labels) == set(INFO_LABELS)
    assert chat.labels == {
        "deployment": "chat",
        "deployment_ocid": fleet.entries[1].deployment.ocid,
        "display_name": "Chat",
        "aqua_model": 'Llama "3"',
        "inference_container": "vllm",
        "shape": "VM.GPU.A10.2",
        "lifecycle_state": "ACTIVE",
        "region": "us-ashburn-1",
    }
    assert samples[("info", "broken")].labels["lifecycle_state"] == "FAILED"
    assert samples[("info", "sick")].labels["lifecycle_state"] == "NEEDS_ATTENTION"

    by_state = _by_labels(text, "aqua_discovery_deployments", "lifecycle_state")
    assert by_state["ACTIVE"] == by_state["FAILED"] == by_state["NEEDS_ATTENTION"] == 1.0
    assert by_state["DELETED"] == 0.0
    calls = _by_labels(text, "aqua_discovery_list_calls_total", "result")
    assert calls == {"error": 0.0, "ok": 3.0, "throttled": 1.0}
    assert samples["aqua_discovery_last_success_timestamp_seconds"].value == 1700000000.5
    assert "engine=" not in text and "model_name=" not in text


def test_before_any_listing_nothing_is_invented():
    text, samples = _scrape(Fleet(), None)
    assert not [k for k in samples if isinstance(k, tuple)]
    assert "aqua_discovery_last_success_timestamp_seconds" not in samples
    assert "\naqua_discovery_last_success_timestamp_seconds " not in text
    assert "# TYPE aqua_deployment_info gauge" in text


def test_the_collector_reads_the_snapshot_at_each_scrape():
    current = {"fleet": build_fleet([_deployment("One", "a1")])}
    registry = CollectorRegistry()
    registry.register(DiscoveryCollector(lambda: current["fleet"], lambda: None))
    assert 'deployment="one"' in generate_latest(registry).decode()
    current["fleet"] = build_fleet([_deployment("Two", "b2")])
    text = generate_latest(registry).decode()
    assert 'deployment="two"' in text
    assert 'deployment="one"' not in text
