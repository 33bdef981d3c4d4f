"""Discovery on the proxy's /metrics: the inventory of deployments and how listing is going.

A custom prometheus_client collector that reads the current snapshot at scrape time, so the
exposition always matches the fleet the proxy serves (no gauges to keep in step):

* `aqua_deployment_info{deployment, deployment_ocid, display_name, aqua_model,
  inference_container, shape, lifecycle_state, region} 1` for every in-scope deployment found,
  in any state (a FAILED one shows on the dashboards too);
* `aqua_discovery_last_success_timestamp_seconds` (absent until a listing has worked);
* `aqua_discovery_list_calls_total{result}`: listings by result kind (`ok`, `throttled`, ...);
* `aqua_discovery_deployments{lifecycle_state}`: deployments found per state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.discovery.fleet import Fleet
from app.discovery.poller import PollStatus

INFO_LABELS = (
    "deployment",
    "deployment_ocid",
    "display_name",
    "aqua_model",
    "inference_container",
    "shape",
    "lifecycle_state",
    "region",
)
LIFECYCLE_STATES = (
    "CREATING",
    "ACTIVE",
    "UPDATING",
    "INACTIVE",
    "NEEDS_ATTENTION",
    "FAILED",
    "DELETING",
    "DELETED",
)


class DiscoveryCollector(Collector):
    """Renders `fleet()` and `status()` (both read at every scrape; either may be None)."""

    def __init__(
        self,
        fleet: Callable[[], Fleet | None],
        status: Callable[[], PollStatus[object] | None],
    ) -> None:
        self._fleet = fleet
        self._status = status

    def describe(self) -> list[Metric]:
        return []  # label values are dynamic; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        fleet = self._fleet()
        status = self._status()
        entries = fleet.entries if fleet is not None else ()

        info = GaugeMetricFamily(
            "aqua_deployment_info",
            "A model deployment found by discovery (any lifecycle state); value always 1.",
            labels=INFO_LABELS,
        )
        for entry in entries:
            labels = entry.labels
            info.add_metric(
                [
                    entry.name,
                    labels.get("deployment_ocid", ""),
                    labels.get("display_name", ""),
                    labels.get("aqua_model", ""),
                    labels.get("inference_container", ""),
                    labels.get("shape", ""),
                    entry.deployment.lifecycle_state,
                    labels.get("region", ""),
                ],
                1.0,
            )
        yield info

        by_state = GaugeMetricFamily(
            "aqua_discovery_deployments",
            "Deployments found by the last good listing, by lifecycle state.",
            labels=["lifecycle_state"],
        )
        counted = Counter(entry.deployment.lifecycle_state for entry in entries)
        for state in (*LIFECYCLE_STATES, *sorted(set(counted) - set(LIFECYCLE_STATES))):
            by_state.add_metric([state], float(counted.get(state, 0)))
        yield by_state

        calls = CounterMetricFamily(
            "aqua_discovery_list_calls",
            "Listings of the Data Science API, by result (ok or a failure kind).",
            labels=["result"],
        )
        for result, count in sorted((status.calls if status else {}).items()):
            calls.add_metric([result], float(count))
        yield calls

        last = GaugeMetricFamily(
            "aqua_discovery_last_success_timestamp_seconds",
            "When a listing last succeeded (Unix time).",
        )
        if status is not None and status.last_success is not None:
            last.add_metric([], status.last_success)
        yield last
