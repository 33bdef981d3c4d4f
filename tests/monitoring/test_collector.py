"""The collector against the Monitoring stand-in, through the real SDK client and a real signer.

The stand-in's clock is the collector's clock (a fixed, steppable wall time), so which minute is
"complete" is exact; pacing and retry sleeps are recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import logging

import oci
import pytest

from app.discovery.poller import PollError
from app.monitoring.api import Pacer
from app.monitoring.collector import MonitoringCollector
from app.monitoring.exposition import Health
from app.monitoring.naming import shape_of, snake_case
from app.monitoring.scope import Watched, build_scope
from app.monitoring.service import MonitoringService, decide
from testkit.monitoring_api import GPU_DEPLOYMENT_METRICS, MonitoringApi
from testkit.oci_credentials import fake_ocid, make_api_key_profile

COMPARTMENT = fake_ocid("compartment")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_030.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def api(registry, clock):
    with MonitoringApi(registry, clock=clock) as server:
        yield server


@pytest.fixture(scope="module")
def signer(api_key):
    return oci.signer.Signer.from_config(oci.config.from_file(str(api_key.config_path)))


def make_collector(api, signer, clock, watched, *, sleeps=None, **options):
    sleeps = [] if sleeps is None else sleeps
    scope = build_scope(watched, (COMPARTMENT,), single_endpoint=True)
    return MonitoringCollector(
        lambda: scope,
        lambda: signer,
        endpoint=api.endpoint,
        pacer=Pacer(1000.0, sleep=sleeps.append),
        clock=clock,
        sleep=sleeps.append,
        **options,
    )


def by_gauge(snapshot):
    found: dict[str, list] = {}
    for sample in snapshot.samples:
        found.setdefault(sample.gauge, []).append(sample)
    return found


def test_exposes_newest_complete_minute_with_join_labels(api, signer, clock):
    deployment = api.add(compartment_id=COMPARTMENT, instances=2)
    collector = make_collector(api, signer, clock, [Watched("llama", deployment.ocid)])

    snapshot = collector()

    gauges = by_gauge(snapshot)
    gpu = gauges["oci_datascience_modeldeploy_gpu_utilization_ratio"]
    assert {dict(s.labels)["instance_id"] for s in gpu} == set(deployment.instances)
    minute = api.complete_minute(collector.settle)
    for sample in gpu:
        labels = dict(sample.labels)
        assert (labels["deployment"], labels["deployment_ocid"]) == ("llama", deployment.ocid)
        assert sample.timestamp == minute
        [stream] = [
            s
            for s in api.streams()
            if s.metric.name == "GpuUtilization" and s.dims["instanceId"] == labels["instance_id"]
        ]
        # The final (revised) value, not the partial one first published, as a 0-1 ratio.
        assert sample.value == pytest.approx(api.final_value(stream, minute) / 100)
    statuses = {
        (dict(s.labels)["status_code"], dict(s.labels)["status_family"])
        for s in gauges["oci_datascience_modeldeploy_predict_response_per_second"]
    }
    assert statuses == {("200", "2XX"), ("429", "4XX"), ("503", "5XX")}
    [latency] = gauges["oci_datascience_modeldeploy_predict_latency_seconds"]
    assert 0.5 < latency.value < 1.5  # ~850 ms published, exposed in seconds
    assert "instance_id" not in dict(latency.labels)
    assert {
        dict(s.labels)["network_type"]
        for s in gauges["oci_datascience_modeldeploy_network_bytes_per_second"]
    } == {"BytesIn", "BytesOut"}
    assert snapshot.newest_datapoint == minute


def test_one_call_per_metric_whatever_the_number_of_deployments(api, signer, clock):
    watched = []
    for index in range(25):
        deployment = api.add(compartment_id=COMPARTMENT, instances=2)
        watched.append(Watched(f"md-{index}", deployment.ocid))
    collector = make_collector(api, signer, clock, watched)

    snapshot = collector()
    collector()

    summarize = [c for c in api.calls if c.operation == "summarizeMetricsData"]
    listing = [c for c in api.calls if c.operation == "listMetrics"]
    assert len(summarize) == 2 * len(GPU_DEPLOYMENT_METRICS)
    assert len(listing) == 1  # the catalogue is cached between rounds
    assert {s.dims.get("resourceId") for s in api.streams()} == {
        dict(s.labels)["deployment_ocid"] for s in snapshot.samples
    }
    assert all(c.verified is not None for c in api.calls)


def test_deployments_outside_the_target_set_are_not_exposed(api, signer, clock):
    ours = api.add(compartment_id=COMPARTMENT)
    api.add(compartment_id=COMPARTMENT)  # someone else's deployment in the same compartment
    snapshot = make_collector(api, signer, clock, [Watched("ours", ours.ocid)])()
    assert {dict(s.labels)["deployment_ocid"] for s in snapshot.samples} == {ours.ocid}


def test_throttling_is_retried_with_backoff(api, signer, clock):
    deployment = api.add(compartment_id=COMPARTMENT)
    sleeps: list[float] = []
    collector = make_collector(api, signer, clock, [Watched("a", deployment.ocid)], sleeps=sleeps)
    api.throttle(times=3)

    snapshot = collector()

    assert snapshot.samples
    assert collector.counts[("list_metrics", "throttled")] == 3
    assert collector.counts[("list_metrics", "ok")] == 1
    backoffs = [s for s in sleeps if s >= 0.3]
    assert len(backoffs) == 3 and backoffs[0] < backoffs[1] < backoffs[2]


def test_a_failed_round_keeps_the_last_good_values_until_they_are_stale(api, signer, clock):
    deployment = api.add(compartment_id=COMPARTMENT)
    collector = make_collector(api, signer, clock, [Watched("a", deployment.ocid)])
    service = MonitoringService(collector, lambda: build_scope([], ()), clock=clock)
    good = collector()
    api.throttle(seconds=3600)

    with pytest.raises(PollError) as info:
        collector()
    assert info.value.kind == "throttled"
    assert collector.counts[("summarize_metrics_data", "throttled")] > 0
    # The poller keeps `good`; the exposition drops its samples once they are older than stale.
    clock.now += 60
    still = service_render(service, good, clock)
    assert "oci_datascience_modeldeploy_gpu_utilization_ratio{" in still
    clock.now += collector.stale
    later = service_render(service, good, clock)
    assert "oci_datascience_modeldeploy_gpu_utilization_ratio{" not in later
    assert "aqua_oci_monitoring_enabled 1.0" in later


def service_render(service, snapshot, clock):
    from app.monitoring.exposition import render

    health = Health(True, True, clock.now - 60, 1, dict(service.collector.counts))
    return render(snapshot, health, now=clock.now, stale=service.collector.stale).decode()


def test_a_deployment_that_stops_reporting_drops_out(api, signer, clock):
    gone = api.add(compartment_id=COMPARTMENT)
    kept = api.add(compartment_id=COMPARTMENT)
    collector = make_collector(
        api, signer, clock, [Watched("gone", gone.ocid), Watched("kept", kept.ocid)]
    )
    assert {dict(s.labels)["deployment"] for s in collector().samples} == {"gone", "kept"}
    api.stop_reporting(gone.ocid)
    clock.now += 60
    assert {dict(s.labels)["deployment"] for s in collector().samples} == {"kept"}


def test_missing_policy_fails_the_round_with_the_iam_hint(api, signer, clock, caplog):
    deployment = api.add(compartment_id=COMPARTMENT)
    api.deny_compartment(COMPARTMENT)
    collector = make_collector(api, signer, clock, [Watched("a", deployment.ocid)], strict=True)
    with caplog.at_level(logging.WARNING, logger="app.monitoring"):
        for _ in range(2):
            with pytest.raises(PollError) as info:
                collector()
    assert info.value.kind == "not_authorized"
    assert "read metrics in compartment" in info.value.hint
    strict_lines = [r for r in caplog.records if "OCI_MONITORING=true" in r.getMessage()]
    assert len(strict_lines) == 1  # once, not every round
    assert collector.counts[("list_metrics", "not_authorized")] == 2  # not retried


def test_a_settle_time_shorter_than_revisions_would_expose_partial_minutes(api, signer, clock):
    # Why the default settle time is longer than OCI's revision delay: shorter, the newest minute
    # exposed is still the partial value first published.
    deployment = api.add(compartment_id=COMPARTMENT)
    watched = [Watched("a", deployment.ocid)]
    short = make_collector(api, signer, clock, watched, settle=api.arrival_seconds + 1)
    default = make_collector(api, signer, clock, watched)
    assert default.settle > api.final_after_seconds

    def gpu(collector):
        [sample] = [s for s in collector().samples if s.gauge.endswith("_cpu_utilization_ratio")]
        [stream] = [s for s in api.streams() if s.metric.name == "CpuUtilization"]
        return sample.value * 100, api.final_value(stream, sample.timestamp)

    value, final = gpu(short)
    assert value == pytest.approx(final / 2)
    value, final = gpu(default)
    assert value == pytest.approx(final)


def test_render_without_collector_says_disabled():
    service = MonitoringService(None, lambda: build_scope([], ()))
    body = service.render().decode()
    assert "aqua_oci_monitoring_enabled 0.0" in body
    assert "oci_datascience_modeldeploy_" not in body


@pytest.mark.parametrize(
    ("oci_name", "gauge", "statistic", "scale"),
    [
        ("GpuUtilization", "oci_datascience_modeldeploy_gpu_utilization_ratio", "mean", 0.01),
        ("PredictBandwidth", "oci_datascience_modeldeploy_predict_bandwidth_ratio", "mean", 0.01),
        ("PredictLatency", "oci_datascience_modeldeploy_predict_latency_seconds", "mean", 0.001),
        ("NetworkBytes", "oci_datascience_modeldeploy_network_bytes_per_second", "sum", 1 / 60),
        (
            "PredictRequestCount",
            "oci_datascience_modeldeploy_predict_request_per_second",
            "sum",
            1 / 60,
        ),
        (
            "PredictResponse",
            "oci_datascience_modeldeploy_predict_response_per_second",
            "sum",
            1 / 60,
        ),
        ("SomethingNew", "oci_datascience_modeldeploy_something_new", "mean", 1.0),
    ],
)
def test_gauge_shapes(oci_name, gauge, statistic, scale):
    shape = shape_of(oci_name)
    assert (shape.gauge, shape.statistic, shape.scale) == (gauge, statistic, pytest.approx(scale))


def test_query_groups_by_the_dimensions_the_metric_has():
    shape = shape_of("PredictResponse")
    query = shape.query(frozenset({"resourceId", "statusCode", "statusFamily", "result"}))
    assert query == "PredictResponse[1m].groupBy(resourceId, statusCode, statusFamily).sum()"
    assert snake_case("GPUMemoryUtilization") == "gpu_memory_utilization"


def test_scope_places_and_decision():
    other = fake_ocid("compartment")
    scope = build_scope(
        [Watched("a", "ocid1.x.a", "us-ashburn-1"), Watched("b", "ocid1.x.b", None, other)],
        (COMPARTMENT,),
        default_region="eu-frankfurt-1",
    )
    assert {(p.region, p.compartment_id) for p in scope.places} == {
        ("us-ashburn-1", COMPARTMENT),
        ("eu-frankfurt-1", other),
    }
    assert build_scope([Watched("a", "ocid1.x.a")], ()).unplaced
    assert decide("auto", has_signer=True, watched=1, compartments=1) == (True, "")
    assert not decide("auto", has_signer=True, watched=0, compartments=1)[0]
    assert not decide("auto", has_signer=False, watched=1, compartments=1)[0]
    assert not decide("false", has_signer=True, watched=1, compartments=1)[0]


def poll(service, times=1):
    assert service.poller is not None
    return [asyncio.run(service.poller.poll_once()) for _ in range(times)]


def monitoring_lines(caplog, level=logging.INFO):
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith("app.monitoring") and r.levelno >= level
    ]


def test_auto_switches_off_with_one_line_when_the_first_round_is_refused(
    api, signer, clock, caplog
):
    deployment = api.add(compartment_id=COMPARTMENT)
    api.deny_compartment(COMPARTMENT)
    watched = [Watched("a", deployment.ocid)]
    collector = make_collector(api, signer, clock, watched, auto_off=True)
    service = MonitoringService(collector, collector._scope_provider, clock=clock)
    with caplog.at_level(logging.INFO):
        poll(service, 3)
    assert monitoring_lines(caplog) == [
        (
            "WARNING",
            "oci-monitoring: off: OCI Monitoring refused the credentials on the first round "
            f"(HTTP 404 NotAuthorizedOrNotFound in 1 compartment(s), e.g. {COMPARTMENT}); "
            "reading OCI Monitoring needs an IAM policy such as 'allow dynamic-group <group> to "
            f"read metrics in compartment id {COMPARTMENT} where target.metrics.namespace="
            "'oci_datascience_modeldeploy''; restart after granting it",
        )
    ]
    assert len(api.calls) == 1  # one refused ListMetrics, then no call at all
    assert not service.enabled
    body = service.render().decode()
    assert "aqua_oci_monitoring_enabled 0.0" in body
    assert "aqua_oci_monitoring_refused 1.0" in body
    assert "aqua_oci_monitoring_failing 0.0" in body
    assert (
        'aqua_oci_monitoring_api_calls_total{operation="list_metrics",result="not_authorized"} 1.0'
        in body
    )
    # Granting the policy later is not picked up: auto stays off until a restart.
    api.deny_compartment(COMPARTMENT, denied=False)
    poll(service)
    assert len(api.calls) == 1


def test_auto_switches_off_when_the_signature_is_refused(api, clock, tmp_path, caplog):
    stranger = make_api_key_profile(tmp_path)  # a key the stand-in does not know: 401
    foreign = oci.signer.Signer.from_config(oci.config.from_file(str(stranger.config_path)))
    deployment = api.add(compartment_id=COMPARTMENT)
    collector = make_collector(api, foreign, clock, [Watched("a", deployment.ocid)], auto_off=True)
    with caplog.at_level(logging.INFO):
        collector()
    assert collector.switched_off is not None
    assert collector.switched_off.kind == "not_authenticated"
    [(level, line)] = monitoring_lines(caplog)
    assert level == "WARNING" and "HTTP 401 NotAuthenticated" in line
    assert "read metrics in compartment id" in line


def test_auto_stays_on_when_refused_only_after_it_has_worked(api, signer, clock, caplog):
    deployment = api.add(compartment_id=COMPARTMENT)
    collector = make_collector(api, signer, clock, [Watched("a", deployment.ocid)], auto_off=True)
    service = MonitoringService(collector, collector._scope_provider, clock=clock)
    assert poll(service) == [True]
    api.deny_compartment(COMPARTMENT)
    collector.catalogue_every = 1  # ListMetrics every round: the refusal shows at once
    with caplog.at_level(logging.INFO):
        assert poll(service, 2) == [False, False]
    assert service.enabled and collector.switched_off is None
    levels = [level for level, _ in monitoring_lines(caplog)]
    assert levels == ["WARNING", "WARNING"]  # the refusal, and the poller's failing line
    body = service.render().decode()
    assert "aqua_oci_monitoring_enabled 1.0" in body
    assert "aqua_oci_monitoring_failing 1.0" in body
    assert "aqua_oci_monitoring_refused 1.0" in body


def test_auto_keeps_reading_the_compartments_it_may_read(api, signer, clock, caplog):
    denied = fake_ocid("compartment")
    ours = api.add(compartment_id=COMPARTMENT)
    theirs = api.add(compartment_id=denied)
    api.deny_compartment(denied)
    scope = build_scope(
        [
            Watched("ours", ours.ocid, None, COMPARTMENT),
            Watched("theirs", theirs.ocid, None, denied),
        ],
        (),
        single_endpoint=True,
    )
    collector = MonitoringCollector(
        lambda: scope,
        lambda: signer,
        endpoint=api.endpoint,
        auto_off=True,
        pacer=Pacer(1000.0, sleep=lambda _: None),
        clock=clock,
    )
    with caplog.at_level(logging.INFO):
        snapshots = [collector(), collector()]
    assert collector.switched_off is None
    assert {dict(s.labels)["deployment"] for s in snapshots[-1].samples} == {"ours"}
    [(level, line)] = monitoring_lines(caplog)
    assert level == "WARNING"
    assert f"in 1 compartment(s), e.g. {denied}" in line
    assert set(collector.refused) == {denied}


def test_true_logs_an_error_per_state_change_and_keeps_trying(api, signer, clock, caplog):
    deployment = api.add(compartment_id=COMPARTMENT)
    api.deny_compartment(COMPARTMENT)
    collector = make_collector(api, signer, clock, [Watched("a", deployment.ocid)], strict=True)
    service = MonitoringService(collector, collector._scope_provider, clock=clock)
    with caplog.at_level(logging.INFO):
        assert poll(service, 3) == [False, False, False]
        refused_body = service.render().decode()
        api.deny_compartment(COMPARTMENT, denied=False)
        assert poll(service) == [True]
        granted_body = service.render().decode()
        api.deny_compartment(COMPARTMENT)
        collector.catalogue_every = 1
        assert poll(service) == [False]
    lines = monitoring_lines(caplog)
    errors = [line for level, line in lines if level == "ERROR"]
    assert len(errors) == 2  # refused, (granted: INFO), refused again; not once per round
    assert errors[0].startswith(
        "oci-monitoring: OCI_MONITORING=true but the credentials cannot read metrics "
        "(HTTP 404 NotAuthorizedOrNotFound in 1 compartment(s)"
    )
    assert f"read metrics in compartment id {COMPARTMENT}" in errors[0]
    assert ("INFO", "oci-monitoring: the credentials can read metrics again") in lines
    assert collector.counts[("list_metrics", "not_authorized")] == 4  # every round tried
    for expected in (
        "aqua_oci_monitoring_enabled 1.0",
        "aqua_oci_monitoring_failing 1.0",
        "aqua_oci_monitoring_refused 1.0",
    ):
        assert expected in refused_body
    assert "aqua_oci_monitoring_refused 0.0" in granted_body
    assert "aqua_oci_monitoring_failing 0.0" in granted_body
