"""Merging explicit targets with discovered deployments (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.discovery.deployments import DiscoveredDeployment, InferenceContainer
from app.discovery.fleet import (
    DiscoveryScope,
    build_fleet,
    discovered_metrics_url,
    url_key,
)
from app.targets import Target, parse_targets

HOST = "https://modeldeployment.us-ashburn-1.oci.customer-oci.com"
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _ocid(unique: str) -> str:
    return f"ocid1.datasciencemodeldeployment.oc1.iad.amaaaaaa{unique}"


def _deployment(name, unique, *, state="ACTIVE", aqua=True, url=None, age=0):
    ocid = _ocid(unique)
    return DiscoveredDeployment(
        ocid=ocid,
        display_name=name,
        url=f"{HOST}/{ocid}" if url is None else url,
        lifecycle_state=state,
        compartment_id="c",
        project_id="p",
        region="us-ashburn-1",
        is_aqua=aqua,
        aqua_model="Llama-3.1-8B" if aqua else "",
        shape="VM.GPU.A10.2",
        instance_count=1,
        inference_container=InferenceContainer.VLLM,
        image="dsmc://odsc-vllm-serving:1",
        time_created=BASE + timedelta(days=age),
    )


def _explicit(text: str) -> list[Target]:
    return list(parse_targets(None, text))


def test_only_active_aqua_deployments_are_scraped_but_all_in_scope_are_entries():
    active = _deployment("Chat", "a1")
    failed = _deployment("Broken", "f1", state="FAILED")
    plain = _deployment("Custom", "p1", aqua=False)
    fleet = build_fleet([active, failed, plain])

    assert [t.name for t in fleet.targets] == ["chat"]
    assert fleet.targets[0].url == f"{HOST}/{active.ocid}/predict/metrics"
    assert fleet.targets[0].labels["display_name"] == "Chat"
    by_name = {e.name: e for e in fleet.entries}
    assert set(by_name) == {"chat", "broken"}
    assert by_name["broken"].scraped is False
    assert by_name["broken"].reason == "not ACTIVE (FAILED)"
    assert fleet.out_of_scope == (plain,)


def test_scope_all_includes_deployments_without_aqua_tags():
    plain = _deployment("Custom", "p1", aqua=False)
    fleet = build_fleet([plain], scope=DiscoveryScope.ALL)
    assert [t.name for t in fleet.targets] == ["custom"]
    assert fleet.out_of_scope == ()


def test_urls_that_target_would_refuse_are_never_scraped():
    plain_http = _deployment("Plain", "h1", url=f"http://example.com/{_ocid('h1')}")
    with_user = _deployment("User", "u1", url=f"https://u:p@example.com/{_ocid('u1')}")
    no_url = _deployment("None", "n1", url="")
    loopback = _deployment("Local", "l1", url=f"http://127.0.0.1:9/{_ocid('l1')}")
    fleet = build_fleet([plain_http, with_user, no_url, loopback])

    assert [t.name for t in fleet.targets] == ["local"]
    reasons = {e.name: e.reason for e in fleet.entries}
    assert reasons["plain"].startswith("URL not allowed:")
    assert "plain http" in reasons["plain"]
    assert "user:password" in reasons["user"]
    assert reasons["none"] == "the API gave no model deployment URL"
    assert all(e.metrics_url is None for e in fleet.entries if e.name != "local")


def test_explicit_targets_come_first_and_win_name_collisions():
    discovered = _deployment("prod", "d1")
    explicit = _explicit(f"prod=https://other.example.com/{_ocid('x9')}")
    fleet = build_fleet([discovered], explicit)

    assert [t.name for t in fleet.targets] == ["prod", "prod-aaaad1"]
    assert fleet.targets[0].url == explicit[0].url
    assert fleet.targets[1].url.endswith(f"{discovered.ocid}/predict/metrics")


def test_the_same_deployment_given_explicitly_is_scraped_once_under_the_explicit_name():
    discovered = _deployment("Llama prod", "d1")
    explicit = _explicit(f"mine={HOST.upper().replace('HTTPS', 'https')}/{discovered.ocid}/")
    fleet = build_fleet([discovered], explicit)

    assert [t.name for t in fleet.targets] == ["mine"]
    labels = fleet.targets[0].labels
    assert labels["deployment"] == "mine"
    assert labels["display_name"] == "Llama prod"  # enriched from discovery
    assert labels["aqua_model"] == "Llama-3.1-8B"
    [entry] = fleet.entries
    assert (entry.name, entry.scraped) == ("mine", False)
    assert "configured explicitly" in entry.reason


def test_explicit_targets_stay_when_nothing_is_discovered():
    explicit = _explicit("a=https://a.example.com/metrics")
    assert build_fleet([], explicit).targets == tuple(explicit)


def test_discovered_metrics_url_and_url_key():
    ocid = _ocid("z1")
    assert discovered_metrics_url(f"{HOST}/{ocid}/") == f"{HOST}/{ocid}/predict/metrics"
    assert url_key("HTTPS://Host.Example/a/") == "https://host.example/a"


def test_fleet_holds_app_targets_and_looks_them_up_by_name():
    [target] = parse_targets(None, "a=https://a.example.com/metrics")
    fleet = build_fleet([_deployment("Chat", "c1")], [target])
    assert fleet.target("a") is target
    chat = fleet.target("chat")
    assert isinstance(chat, Target)
    assert chat.labels["display_name"] == "Chat"
    assert fleet.target("nope") is None
