"""Fleet discovery in the real stack: `aqua-metrics start` (supervisord, proxy, Prometheus) with only
OCI_COMPARTMENT_ID set, over the Data Science stand-in and signature-checking deployment stand-ins.

One stack (default DISCOVERY_SCOPE=aqua) serves every check (module scope); the checks run in file
order and change the stand-in's fleet as they go. The last check starts a second stack over the same
fleet with DISCOVERY_SCOPE=all, which must scrape the non-AQUA deployment too. Everything is polled with deadlines; timing claims are read from the sample
timestamps Prometheus stored, not from how fast the test happened to poll.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from testkit.datascience_api import TGI_IMAGE, DataScienceApi
from testkit.oci_credentials import fake_ocid
from testkit.stack import Stack
from tests.support.signed_upstream import SignedUpstream

pytestmark = pytest.mark.stack

REGION = "us-ashburn-1"
DISCOVERY_INTERVAL = 2.0
SCRAPE_INTERVAL = 2.0
# Prometheus hands target changes to its scrape manager at most every 5 s (discovery manager).
PROMETHEUS_TARGET_UPDATE_THROTTLE = 5.0
POLLER_JITTER = 0.1
TARGET_LABELS = (
    "deployment",
    "deployment_ocid",
    "region",
    "display_name",
    "aqua_model",
    "shape",
    "inference_container",
)


class Fleet:
    """The stand-ins: the control plane and one signed upstream per deployment."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.compartment = fake_ocid("compartment")
        self.api = DataScienceApi(registry, region=REGION, max_limit=2)  # pages of 2
        self.upstreams: dict[str, SignedUpstream] = {}

    def add(self, key: str, display_name: str, **fields):
        upstream = SignedUpstream(self.registry)
        self.upstreams[key] = upstream
        return self.api.add(
            display_name,
            compartment_id=self.compartment,
            url=upstream.url,
            id=upstream.prefix[1:],
            **fields,
        )

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.close()
        self.api.close()


@pytest.fixture(scope="module")
def fleet(registry, api_key):
    fleet = Fleet(registry)
    fleet.chat = fleet.add("chat", "Chat prod", aqua_model="Llama-3.1-8B-Instruct")
    fleet.summarizer = fleet.add(
        "summarizer",
        "Summarizer",
        aqua_model="Mistral-7B",
        image=TGI_IMAGE,
        instance_shape_name="VM.GPU.A10.1",
    )
    fleet.custom = fleet.add("custom", "Custom BYOC", aqua=False)
    fleet.failed = fleet.add("failed", "Broken", lifecycle_state="FAILED")
    fleet.creating = fleet.add("creating", "Coming soon", lifecycle_state="CREATING")
    yield fleet
    fleet.close()


def _discovering_stack(fleet: Fleet, api_key, **settings: str) -> Stack:
    """A stack with only the compartment (and the stand-ins' endpoint) set, plus `settings`."""
    return Stack.create(
        OCI_COMPARTMENT_ID=fleet.compartment,
        OCI_DATA_SCIENCE_ENDPOINT=fleet.api.endpoint,
        OCI_REGION=REGION,
        OCI_CONFIG_FILE=str(api_key.config_path),
        DISCOVERY_INTERVAL=f"{DISCOVERY_INTERVAL:g}s",
        SCRAPE_INTERVAL=f"{SCRAPE_INTERVAL:g}s",
        SCRAPE_TIMEOUT="1s",
        **settings,
    )


@pytest.fixture(scope="module")
def stack(fleet, api_key):
    stack = _discovering_stack(fleet, api_key)
    try:
        yield stack.start()
    finally:
        stack.cleanup()


def _sd_names(stack: Stack) -> set[str]:
    with urllib.request.urlopen(f"{stack.proxy_url}/sd", timeout=5) as response:
        return {group["labels"]["deployment"] for group in json.load(response)}


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s (last: {result!r})")
        time.sleep(0.2)


def test_every_aqua_active_deployment_is_scraped_with_all_labels(stack, fleet):
    series = stack.wait_for(
        'vllm:num_requests_running{job="vllm"}', predicate=lambda r: len(r) >= 2
    )
    by_name = {s["metric"]["deployment"]: s["metric"] for s in series}
    assert set(by_name) == {"chat-prod", "summarizer"}
    chat, summarizer = by_name["chat-prod"], by_name["summarizer"]
    assert {k: chat[k] for k in TARGET_LABELS} == {
        "deployment": "chat-prod",
        "deployment_ocid": fleet.chat.id,
        "region": REGION,
        "display_name": "Chat prod",
        "aqua_model": "Llama-3.1-8B-Instruct",
        "shape": "VM.GPU.A10.2",
        "inference_container": "vllm",
    }
    assert (summarizer["inference_container"], summarizer["shape"]) == ("tgi", "VM.GPU.A10.1")
    # vLLM's own labels survive: no target label is called model_name or engine.
    assert chat["model_name"] == "test-model" and chat["engine"] == "0"
    # Only ACTIVE AQUA deployments are in /sd; the others were never contacted.
    assert _sd_names(stack) == {"chat-prod", "summarizer"}
    for key in ("custom", "failed", "creating"):
        assert fleet.upstreams[key].requests == [], key
    # Every scrape that reached a deployment carried a signature the stand-in verified.
    assert all(r.verified for r in fleet.upstreams["chat"].requests)
    assert all(call.verified for call in fleet.api.calls)


def test_inventory_reports_every_state(stack, fleet):
    info = stack.wait_for('aqua_deployment_info{job="aqua-proxy"}', predicate=lambda r: len(r) >= 4)
    states = {s["metric"]["display_name"]: s["metric"]["lifecycle_state"] for s in info}
    assert states == {
        "Chat prod": "ACTIVE",
        "Summarizer": "ACTIVE",
        "Broken": "FAILED",
        "Coming soon": "CREATING",
    }
    by_state = stack.query('aqua_discovery_deployments{job="aqua-proxy"} > 0')
    counts = {s["metric"]["lifecycle_state"]: s["value"][1] for s in by_state}
    assert counts == {"ACTIVE": "2", "FAILED": "1", "CREATING": "1"}
    assert stack.query('aqua_discovery_last_success_timestamp_seconds{job="aqua-proxy"}')


def test_a_deployment_added_at_run_time_is_stored_within_one_interval_plus_one_refresh(
    stack, fleet
):
    added_at = time.time()
    fleet.late = fleet.add("late", "Late arrival", aqua_model="Qwen2.5-7B")
    series = stack.wait_for('timestamp(vllm:num_requests_running{deployment="late-arrival"})')
    stored_at = float(series[0]["value"][1])
    # One discovery interval (with jitter) + one /sd refresh (= DISCOVERY_INTERVAL here) +
    # Prometheus' target-update throttle + the first scrape's offset in its interval + 1 s slack.
    bound = (
        DISCOVERY_INTERVAL * (1 + POLLER_JITTER)
        + DISCOVERY_INTERVAL
        + PROMETHEUS_TARGET_UPDATE_THROTTLE
        + SCRAPE_INTERVAL
        + 1.0
    )
    assert stored_at - added_at <= bound, f"stored {stored_at - added_at:.1f}s after adding"
    assert "late-arrival" in _sd_names(stack)


def test_a_deleted_deployment_leaves_sd(stack, fleet):
    fleet.api.delete(fleet.late.id)
    _until(lambda: "late-arrival" not in _sd_names(stack), 30, "late-arrival leaving /sd")
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"{stack.proxy_url}/targets/late-arrival/metrics", timeout=5)
    assert gone.value.code == 404
    assert _sd_names(stack) == {"chat-prod", "summarizer"}


def test_an_api_outage_keeps_scraping_the_last_known_fleet(stack, fleet):
    def failures() -> float:
        result = stack.query('aqua_discovery_list_calls_total{result="server_error"}')
        return float(result[0]["value"][1]) if result else 0.0

    fleet.api.fail(500)
    try:
        stack.wait_for(
            'aqua_discovery_list_calls_total{result="server_error"}',
            predicate=lambda r: r and float(r[0]["value"][1]) >= 2,
        )
        during_outage = time.time()
        # Both deployments keep being scraped after the failures were counted.
        for name in ("chat-prod", "summarizer"):
            stack.wait_for(
                f'timestamp(vllm:num_requests_running{{deployment="{name}"}})',
                predicate=lambda r: r and float(r[0]["value"][1]) > during_outage,
            )
        assert failures() >= 2
        assert _sd_names(stack) == {"chat-prod", "summarizer"}
        assert stack.logs().count("discovery: failing (server_error: HTTP 500") == 1
    finally:
        fleet.api.clear_fault()


def test_scope_all_also_scrapes_the_non_aqua_deployment_with_its_labels(fleet, api_key):
    everything = _discovering_stack(fleet, api_key, DISCOVERY_SCOPE="all")
    try:
        everything.start()
        series = everything.wait_for(
            'vllm:num_requests_running{job="vllm"}', predicate=lambda r: len(r) >= 3
        )
        by_name = {s["metric"]["deployment"]: s["metric"] for s in series}
        assert set(by_name) == {"chat-prod", "summarizer", "custom-byoc"}
        custom = by_name["custom-byoc"]
        assert {k: custom.get(k, "") for k in TARGET_LABELS} == {
            "deployment": "custom-byoc",
            "deployment_ocid": fleet.custom.id,
            "region": REGION,
            "display_name": "Custom BYOC",
            "aqua_model": "",  # no aqua_model_name tag: Prometheus drops the empty label
            "shape": "VM.GPU.A10.2",
            "inference_container": "vllm",
        }
        assert custom["model_name"] == "test-model"
        assert _sd_names(everything) == {"chat-prod", "summarizer", "custom-byoc"}
        # Scraped through the proxy with signatures the deployment stand-in verified.
        scrapes = fleet.upstreams["custom"].requests
        assert scrapes and all(r.verified for r in scrapes)
        # Still only ACTIVE ones: the FAILED and CREATING deployments were never contacted.
        assert fleet.upstreams["failed"].requests == fleet.upstreams["creating"].requests == []
    finally:
        everything.cleanup()
