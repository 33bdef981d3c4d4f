"""The "OCI Monitoring collector" row of "Monitoring health": is the proxy reading OCI Monitoring?

The collector (app.monitoring) serves its health beside its gauges on `/oci-monitoring/metrics`
(job `oci-monitoring`), so a missing IAM policy shows here as failing calls, not as a crash.
"""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.panels import stat, target, timeseries
from grafana.generator.promql import RATE

JOB = '{job="oci-monitoring"}'
STATE_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"color": "text", "index": 0, "text": "Off"},
            "1": {"color": "green", "index": 1, "text": "Reading"},
            "2": {"color": "red", "index": 2, "text": "Failing"},
        },
    }
]
LAG = (
    " OCI Monitoring publishes per-minute values that arrive minutes late; the collector shows "
    "the newest complete minute, so its data always lags by about three minutes."
)


def oci_monitoring(grid: Layout) -> None:
    grid.row("OCI Monitoring collector")
    grid.add(
        6,
        4,
        stat(
            "OCI Monitoring",
            "Whether the proxy reads the deployments' OCI Monitoring metrics (GPU, CPU, memory, "
            "network, gateway). **Off**: OCI_MONITORING=false, or with `auto` no compartment or "
            "no deployment OCID is known (the proxy logs why at start), or `auto` switched off "
            "because OCI Monitoring refused the credentials on its first round (no `read metrics` "
            "policy; restart after granting it). **Failing**: every call of the last round "
            "failed; the last good values are kept until they are minutes old. A missing IAM "
            "policy shows as *not_authorized* calls below." + LAG,
            [
                target(
                    f"max(aqua_oci_monitoring_enabled{JOB} * (1 + aqua_oci_monitoring_failing{JOB}))"
                )
            ],
            unit="none",
            steps=((None, "text"),),
            mappings=STATE_MAPPINGS,
            color_mode="background",
            graph=False,
            no_value="Not scraped",
        ),
    )
    grid.add(
        6,
        4,
        stat(
            "Since the last good round",
            "Time since a collection round last worked. It grows while calls fail (throttling, "
            "a missing policy, no network to the telemetry endpoint)." + LAG,
            [target(f"time() - max(aqua_oci_monitoring_last_success_timestamp_seconds{JOB})")],
            unit="s",
            steps=((None, "green"), (300, "orange"), (900, "red")),
            graph=False,
            no_value="Never",
        ),
    )
    grid.add(
        6,
        4,
        stat(
            "Newest datapoint age",
            "Age of the newest OCI Monitoring minute exposed: about three minutes when all is "
            "well (minutes are exposed once complete); series older than six minutes are dropped "
            "so a removed deployment goes stale." + LAG,
            [target(f"max(aqua_oci_monitoring_datapoint_age_seconds{JOB})")],
            unit="s",
            steps=((None, "green"), (300, "orange"), (360, "red")),
            graph=False,
            no_value="No data",
        ),
    )
    grid.add(
        6,
        4,
        stat(
            "Deployments read",
            "Deployments whose OCI Monitoring metrics the collector reads (targets with a "
            "deployment OCID), and how many gauges it exposes now." + LAG,
            [
                target(f"max(aqua_oci_monitoring_deployments{JOB})", "deployments"),
                target(f"max(aqua_oci_monitoring_series{JOB})", "gauges", "B"),
            ],
            unit="none",
            graph=False,
            no_value="0",
        ),
    )
    grid.add(
        24,
        8,
        timeseries(
            "OCI Monitoring API calls by result",
            "Calls per minute to OCI Monitoring (ListMetrics, SummarizeMetricsData) by result. "
            "One SummarizeMetricsData call per metric per compartment, whatever the number of "
            "deployments, paced under the tenancy's limit of about 10 calls per second. "
            "*throttled* (429) and *server_error* are retried with backoff; *not_authorized* "
            "means the policy `allow dynamic-group <group> to read metrics in compartment "
            "<compartment> where target.metrics.namespace='oci_datascience_modeldeploy'` is "
            "missing (see the README)." + LAG,
            [
                target(
                    "60 * sum by (operation, result) (rate("
                    f"aqua_oci_monitoring_api_calls_total{JOB}[{RATE}])) > 0",
                    "{{operation}} {{result}}",
                )
            ],
            unit="opm",
            bars=True,
        ),
    )
