"""OCI Monitoring through the real stack: `aqua-metrics start`, real Prometheus, the proxy's
collector reading the signature-checking Monitoring stand-in with an API key.

Two deployments, each a signed upstream whose URL carries its deployment OCID, both publishing
OCI Monitoring metrics in one compartment. Prometheus must store the gauges with the labels that
join them to vLLM's series on `deployment`, keep them through a spell of 429s, let a deployment
that stops reporting go stale, and answer every query of the "Infrastructure (OCI Monitoring)"
row and the health panels with data. One stack for the module; every wait has a deadline.
"""

from __future__ import annotations

import pytest

from testkit.cavage import KeyRegistry
from testkit.monitoring_api import MonitoringApi
from testkit.oci_credentials import fake_ocid, make_api_key_profile
from testkit.stack import Stack
from testkit.waiting import wait_until
from tests.stack.test_dashboard_queries import run_query
from tests.support.dashboards import ALL, check_targets, load_dashboards, panel_queries
from tests.support.signed_upstream import SignedUpstream
from tests.support.vllm_payloads import LegacyVllm

pytestmark = pytest.mark.stack

COMPARTMENT = fake_ocid("compartment")
GPU = "oci_datascience_modeldeploy_gpu_utilization_ratio"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    with (
        SignedUpstream(registry, body_factory=LegacyVllm(seed=3).render) as llama,
        SignedUpstream(registry, body_factory=LegacyVllm(seed=4).render) as mistral,
        MonitoringApi(registry) as api,
    ):
        ocids = {}
        for name, upstream in (("llama", llama), ("mistral", mistral)):
            ocids[name] = upstream.prefix.strip("/").lower()
            api.add(compartment_id=COMPARTMENT, ocid=ocids[name], instances=2)
        api.add(compartment_id=COMPARTMENT)  # not a target: never exposed
        stack = Stack.create(
            TARGETS=f"llama={llama.url},mistral={mistral.url}",
            OCI_CONFIG_FILE=str(creds.config_path),
            OCI_MONITORING_ENDPOINT=api.endpoint,
            OCI_MONITORING_COMPARTMENT_ID=COMPARTMENT,
            OCI_MONITORING_INTERVAL="3s",
            SCRAPE_INTERVAL="2s",
            SCRAPE_TIMEOUT="1s",
        ).start()
        try:
            stack.wait_for(f'count({GPU}{{deployment="mistral"}}) == 2', timeout=90)
            yield stack, api, ocids
        finally:
            stack.cleanup()


def test_gauges_are_stored_with_the_join_labels(world):
    stack, api, ocids = world
    series = stack.query(GPU)
    assert {s["metric"]["deployment"] for s in series} == {"llama", "mistral"}
    for item in series:
        labels = item["metric"]
        assert labels["job"] == "oci-monitoring"
        assert labels["deployment_ocid"] == ocids[labels["deployment"]]
        assert labels["instance_id"].startswith("ocid1.datasciencemodeldeploymentinstance.")
        assert 0 < float(item["value"][1]) < 1
    statuses = stack.query(
        'oci_datascience_modeldeploy_predict_response_per_second{deployment="llama"}'
    )
    assert {s["metric"]["status_family"] for s in statuses} == {"2XX", "4XX", "5XX"}
    latency = stack.query("oci_datascience_modeldeploy_predict_latency_seconds")
    assert all(0.5 < float(s["value"][1]) < 2 for s in latency)
    assert all(c.verified is not None for c in api.calls)
    # One query per metric for the compartment (three deployments there), none per deployment.
    queries = {c.body["query"] for c in api.calls if c.operation == "summarizeMetricsData"}
    assert len(queries) == len(api.metrics)
    assert all(".groupBy(resourceId" in q and "{" not in q for q in queries), queries


def test_gauges_join_vllm_series_on_deployment(world):
    stack, _, _ = world
    stack.wait_for('count(vllm:num_requests_running{deployment="llama"})', timeout=60)
    joined = stack.query(
        f"{GPU} * on (deployment) group_left max by (deployment) (vllm:num_requests_running)"
    )
    assert {s["metric"]["deployment"] for s in joined} == {"llama", "mistral"}


def test_collector_health_is_exposed(world):
    stack, _, _ = world
    assert stack.query("aqua_oci_monitoring_enabled == 1")
    assert stack.query("aqua_oci_monitoring_failing == 0")
    assert stack.query("time() - aqua_oci_monitoring_last_success_timestamp_seconds < 60")
    [age] = stack.query("aqua_oci_monitoring_datapoint_age_seconds")
    assert 180 <= float(age["value"][1]) < 360  # the newest complete minute lags by minutes
    assert stack.query('aqua_oci_monitoring_api_calls_total{result="ok"} > 0')


# The "Infrastructure (OCI Monitoring)" row of "vLLM deployment" and the collector row of
# "Monitoring health" (tests/support/dashboards.py OCI_MONITORING_TARGETS lists them as empty
# where OCI Monitoring is off).
NEW_PANELS = {"aqua-vllm": range(91, 99), "aqua-health": range(61, 66)}


def test_every_new_panel_query_returns_data(world):
    stack, _, _ = world
    variables = {"datasource": "aqua-prometheus", "deployment": ALL, "model_name": ALL}
    queries = [
        query
        for uid, dashboard in load_dashboards().items()
        for query in panel_queries(dashboard, variables, rate_interval="1m", interval="2s")
        if query.kind == "panel" and query.panel_id in NEW_PANELS.get(uid, ())
    ]
    assert len(queries) == 15

    def has_data(expr: str, instant: bool) -> bool:
        body = run_query(stack, expr, instant=instant)
        assert body.get("status") == "success", (body, expr)
        return bool(body["data"]["result"])

    def all_have_data() -> bool:
        missing, _ = check_targets(queries, has_data, {})
        return not missing

    wait_until(
        all_have_data,
        90,
        1.0,
        lambda: f"without data: {check_targets(queries, has_data, {})[0]}",
    )


def test_survives_throttling_and_keeps_the_last_values(world):
    stack, api, _ = world
    api.throttle(seconds=12)
    wait_until(
        lambda: any(c.status == 429 for c in api.calls), 30, 0.2, "the stand-in never throttled"
    )
    stack.wait_for('sum(aqua_oci_monitoring_api_calls_total{result="throttled"}) > 0', timeout=60)
    # While throttled, the last good values are still served.
    assert len(stack.query(GPU)) == 4
    stack.wait_for("aqua_oci_monitoring_failing == 0", timeout=90)
    ok_after = [c for c in api.calls if c.status == 200]
    assert ok_after
    assert len(stack.query(GPU)) == 4
    assert stack.query('up{job="aqua-proxy"} == 1')


def test_a_deployment_that_stops_reporting_goes_stale(world):
    stack, api, ocids = world
    api.stop_reporting(ocids["mistral"])
    stack.wait_for(f'{GPU}{{deployment="mistral"}}', timeout=60, predicate=lambda r: r == [])
    assert len(stack.query(f'{GPU}{{deployment="llama"}}')) == 2
