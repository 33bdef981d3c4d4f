"""The Monitoring stand-in, judged by the real `oci.monitoring.MonitoringClient`.

If the SDK parses our JSON into its own `Metric` / `MetricData` / `AggregatedDatapoint` models,
pages ListMetrics through `opc-next-page`, and our verifier refuses what it should, the stand-in
is faithful enough for the collector's tests to trust.
"""

from __future__ import annotations

import datetime

import httpx
import oci
import pytest
from oci.monitoring.models import (
    AggregatedDatapoint,
    ListMetricsDetails,
    Metric,
    MetricData,
    SummarizeMetricsDataDetails,
)

from testkit.monitoring_api import NAMESPACE, MonitoringApi, parse_query
from testkit.oci_credentials import fake_ocid, make_api_key_profile
from tests.support.sdk_signing import sdk_client

COMPARTMENT = fake_ocid("compartment")
OTHER = fake_ocid("compartment")
NOW = 1_800_000_000.0  # a fixed wall clock: minutes are predictable


@pytest.fixture
def api(registry):
    with MonitoringApi(registry, clock=lambda: NOW) as server:
        yield server


@pytest.fixture(scope="module")
def signer(api_key):
    return oci.signer.Signer.from_config(oci.config.from_file(str(api_key.config_path)))


def client(api: MonitoringApi, signer) -> oci.monitoring.MonitoringClient:
    return sdk_client(oci.monitoring.MonitoringClient, signer, api.endpoint)


def summarize(api, signer, query: str, minutes: int = 10, compartment: str = COMPARTMENT):
    end = datetime.datetime.fromtimestamp(NOW, datetime.UTC)
    details = SummarizeMetricsDataDetails(
        namespace=NAMESPACE,
        query=query,
        start_time=end - datetime.timedelta(minutes=minutes),
        end_time=end,
        resolution="1m",
    )
    return (
        client(api, signer)
        .summarize_metrics_data(compartment, details, retry_strategy=oci.retry.NoneRetryStrategy())
        .data
    )


def test_sdk_parses_summarized_data_per_instance(api, signer):
    deployment = api.add(compartment_id=COMPARTMENT, instances=2)
    api.add(compartment_id=OTHER)

    data = summarize(api, signer, "GpuUtilization[1m].groupBy(resourceId, instanceId).mean()")

    assert len(data) == 2
    assert all(isinstance(item, MetricData) for item in data)
    assert {item.dimensions["instanceId"] for item in data} == set(deployment.instances)
    for item in data:
        assert item.name == "GpuUtilization"
        assert item.namespace == NAMESPACE
        assert item.compartment_id == COMPARTMENT
        assert item.resolution == "1m"
        assert item.dimensions["resourceId"] == deployment.ocid
        assert set(item.dimensions) == {"resourceId", "instanceId"}
        points = item.aggregated_datapoints
        assert all(isinstance(p, AggregatedDatapoint) for p in points)
        assert all(isinstance(p.timestamp, datetime.datetime) for p in points)
        # Minutes of the last 10 that have arrived (the newest ones are still late).
        stamps = [p.timestamp.timestamp() for p in points]
        assert stamps == sorted(stamps)
        assert 0 < NOW - stamps[-1] - api.arrival_seconds < 60
        assert len(points) in (8, 9)


def test_late_minutes_are_partial_until_revised(api, signer):
    api.add(compartment_id=COMPARTMENT)
    [item] = summarize(api, signer, "CpuUtilization[1m].groupBy(resourceId, instanceId).mean()")
    [stream] = [s for s in api.streams(COMPARTMENT) if s.metric.name == "CpuUtilization"]
    for point in item.aggregated_datapoints:
        minute = point.timestamp.timestamp()
        final = api.final_value(stream, minute)
        if NOW - minute >= api.final_after_seconds:
            assert point.value == pytest.approx(final)
        else:
            assert point.value == pytest.approx(final / 2)


def test_group_by_status_and_sum(api, signer):
    deployment = api.add(compartment_id=COMPARTMENT)
    data = summarize(
        api, signer, "PredictResponse[1m].groupBy(resourceId, statusCode, statusFamily).sum()"
    )
    assert {(d.dimensions["statusCode"], d.dimensions["statusFamily"]) for d in data} == {
        ("200", "2XX"),
        ("429", "4XX"),
        ("503", "5XX"),
    }
    assert {d.dimensions["resourceId"] for d in data} == {deployment.ocid}
    # Grouped by deployment only: the three status streams are summed per minute.
    [total] = summarize(api, signer, "PredictResponse[1m].groupBy(resourceId).sum()")
    per_status = sum(d.aggregated_datapoints[0].value for d in data)
    assert total.aggregated_datapoints[0].value == pytest.approx(per_status)


def test_list_metrics_pages_and_shows_every_dimension(registry, signer):
    with MonitoringApi(registry, clock=lambda: NOW, list_page_size=7) as api:
        deployment = api.add(compartment_id=COMPARTMENT, instances=2)
        details = ListMetricsDetails(namespace=NAMESPACE)
        listed = oci.pagination.list_call_get_all_results(
            client(api, signer).list_metrics,
            COMPARTMENT,
            details,
            retry_strategy=oci.retry.NoneRetryStrategy(),
        ).data
        assert all(isinstance(m, Metric) for m in listed)
        assert len(listed) == len(api.streams(COMPARTMENT)) > 7
        assert len([c for c in api.calls if c.status == 200]) > 1  # it paged
        gpu = [m for m in listed if m.name == "GpuUtilization"]
        assert {m.dimensions["instanceId"] for m in gpu} == set(deployment.instances)
        response = [m for m in listed if m.name == "PredictResponse"]
        assert {"statusCode", "statusFamily", "resourceId"} <= set(response[0].dimensions)
        assert all(m.compartment_id == COMPARTMENT for m in listed)

        names = oci.pagination.list_call_get_all_results(
            client(api, signer).list_metrics,
            COMPARTMENT,
            ListMetricsDetails(namespace=NAMESPACE, group_by=["name"]),
            retry_strategy=oci.retry.NoneRetryStrategy(),
        )
        assert sorted(m.name for m in names.data) == sorted(s.name for s in api.metrics)


def test_stopped_deployment_drops_out(api, signer):
    gone = api.add(compartment_id=COMPARTMENT)
    kept = api.add(compartment_id=COMPARTMENT)
    api.stop_reporting(gone.ocid)
    data = summarize(api, signer, "PredictLatency[1m].groupBy(resourceId).mean()")
    assert [d.dimensions["resourceId"] for d in data] == [kept.ocid]


@pytest.mark.parametrize(("status", "code"), [(429, "TooManyRequests")])
def test_throttling_for_n_requests(api, signer, status, code):
    api.add(compartment_id=COMPARTMENT)
    api.throttle(times=2)
    for _ in range(2):
        with pytest.raises(oci.exceptions.ServiceError) as info:
            summarize(api, signer, "PredictLatency[1m].groupBy(resourceId).mean()")
        assert (info.value.status, info.value.code) == (status, code)
    assert summarize(api, signer, "PredictLatency[1m].groupBy(resourceId).mean()")


def test_denied_compartment_and_bad_query(api, signer):
    api.deny_compartment(COMPARTMENT)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        summarize(api, signer, "PredictLatency[1m].groupBy(resourceId).mean()")
    assert (info.value.status, info.value.code) == (404, "NotAuthorizedOrNotFound")
    api.deny_compartment(COMPARTMENT, denied=False)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        summarize(api, signer, "PredictLatency[1m].groupBy(resourceId).percentile(0.9)")
    assert info.value.status == 400


def test_unknown_key_and_tampered_body_are_refused(api, signer, tmp_path):
    stranger = make_api_key_profile(tmp_path)
    foreign = oci.signer.Signer.from_config(oci.config.from_file(str(stranger.config_path)))
    with pytest.raises(oci.exceptions.ServiceError) as info:
        summarize(api, foreign, "PredictLatency[1m].mean()")
    assert (info.value.status, info.value.code) == (401, "NotAuthenticated")

    url = f"{api.endpoint}/20180401/metrics/actions/listMetrics?compartmentId={COMPARTMENT}"
    body = b'{"namespace": "oci_datascience_modeldeploy"}'
    request = httpx.Request("POST", url, content=body, headers={"content-type": "application/json"})
    prepared = signer(_Wire(request), enforce_content_headers=True)
    headers = dict(prepared.headers)
    good = httpx.post(url, content=body, headers=headers)
    assert good.status_code == 200, good.text
    tampered = httpx.post(
        url, content=body.replace(b"modeldeploy", b"modeldeplox"), headers=headers
    )
    assert tampered.status_code == 401
    assert api.calls[-1].error is not None


class _Wire:
    """The minimal `requests`-like object the SDK signer reads."""

    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.path_url = request.url.raw_path.decode()
        self.body = request.content
        self.headers = {
            "content-type": "application/json",
            "content-length": str(len(request.content)),
            "date": datetime.datetime.now(datetime.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }


def test_query_parser():
    parsed = parse_query(
        'GpuUtilization[1m]{resourceId = "x"}.groupBy(resourceId, instanceId).max()'
    )
    assert parsed is not None
    assert (parsed.name, parsed.interval_minutes, parsed.statistic) == ("GpuUtilization", 1, "max")
    assert parsed.group_by == ("resourceId", "instanceId")
    assert parsed.filters == {"resourceId": "x"}
    assert parse_query("GpuUtilization.mean()") is None
