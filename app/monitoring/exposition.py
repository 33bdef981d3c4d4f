"""The `/oci-monitoring/metrics` body: the gauges of the newest snapshot, and collector health.

Samples carry no timestamp (an explicit one would disable Prometheus' staleness handling and lose
revisions). Health, always present so the dashboard can say why there is no data:

* `aqua_oci_monitoring_enabled` 1 when the collector runs (0: OCI_MONITORING off, nothing to read,
  or `auto` switched off because the credentials were refused on the first round);
* `aqua_oci_monitoring_failing` 1 while rounds fail;
* `aqua_oci_monitoring_refused` 1 while OCI Monitoring refuses the credentials (401, or 404
  NotAuthorizedOrNotFound: no `read metrics` policy) in at least one compartment, and after `auto`
  switched off for that reason;
* `aqua_oci_monitoring_last_success_timestamp_seconds` (absent until a round has worked);
* `aqua_oci_monitoring_datapoint_age_seconds`: age of the newest exposed datapoint;
* `aqua_oci_monitoring_series`, `aqua_oci_monitoring_deployments`;
* `aqua_oci_monitoring_api_calls_total{operation, result}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.monitoring.api import CALL_RESULTS
from app.monitoring.collector import Snapshot

OPERATIONS = ("list_metrics", "summarize_metrics_data")


@dataclass(frozen=True)
class Health:
    enabled: bool
    failing: bool
    last_success: float | None
    deployments: int
    calls: Mapping[tuple[str, str], int]
    refused: bool = False


def metric_families(
    snapshot: Snapshot | None, health: Health, *, now: float, stale: float
) -> list[Metric]:
    families: dict[str, GaugeMetricFamily] = {}
    exposed = 0
    newest: float | None = None
    for sample in snapshot.samples if snapshot is not None else ():
        if sample.timestamp < now - stale:
            continue
        family = families.get(sample.gauge)
        if family is None:
            family = GaugeMetricFamily(
                sample.gauge, sample.help, labels=[k for k, _ in sample.labels]
            )
            families[sample.gauge] = family
        family.add_metric([v for _, v in sample.labels], sample.value)
        exposed += 1
        newest = sample.timestamp if newest is None else max(newest, sample.timestamp)
    out: list[Metric] = list(families.values())
    out.append(
        GaugeMetricFamily(
            "aqua_oci_monitoring_enabled",
            "1 when the OCI Monitoring collector runs (OCI_MONITORING)",
            value=1.0 if health.enabled else 0.0,
        )
    )
    out.append(
        GaugeMetricFamily(
            "aqua_oci_monitoring_failing",
            "1 while OCI Monitoring collection rounds fail (last good values are kept)",
            value=1.0 if health.failing else 0.0,
        )
    )
    out.append(
        GaugeMetricFamily(
            "aqua_oci_monitoring_refused",
            "1 while OCI Monitoring refuses the credentials (HTTP 401, or 404 "
            "NotAuthorizedOrNotFound: no 'read metrics' IAM policy) in a compartment; with "
            "OCI_MONITORING=auto a refusal on the first round switches the collector off",
            value=1.0 if health.refused else 0.0,
        )
    )
    if health.last_success is not None:
        out.append(
            GaugeMetricFamily(
                "aqua_oci_monitoring_last_success_timestamp_seconds",
                "When an OCI Monitoring collection round last worked",
                value=health.last_success,
            )
        )
    if newest is not None:
        out.append(
            GaugeMetricFamily(
                "aqua_oci_monitoring_datapoint_age_seconds",
                "Age of the newest exposed OCI Monitoring datapoint (minutes arrive late)",
                value=max(0.0, now - newest),
            )
        )
    out.append(
        GaugeMetricFamily(
            "aqua_oci_monitoring_series", "OCI Monitoring gauges exposed now", value=exposed
        )
    )
    out.append(
        GaugeMetricFamily(
            "aqua_oci_monitoring_deployments",
            "Deployments whose OCI Monitoring metrics are read",
            value=health.deployments,
        )
    )
    calls = CounterMetricFamily(
        "aqua_oci_monitoring_api_calls",
        "OCI Monitoring API calls (every attempt) by operation and result",
        labels=["operation", "result"],
    )
    for operation in OPERATIONS:
        for result in CALL_RESULTS:
            calls.add_metric([operation, result], health.calls.get((operation, result), 0))
    out.append(calls)
    return out


class _Fixed:
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(snapshot: Snapshot | None, health: Health, *, now: float, stale: float) -> bytes:
    """The exposition text (format 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(metric_families(snapshot, health, now=now, stale=stale)))  # type: ignore[arg-type]
    return generate_latest(registry)
