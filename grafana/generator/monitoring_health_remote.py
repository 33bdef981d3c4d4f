"""The Monitoring health dashboard's "Remote write" row: is every sample reaching the central store?

Filled only when REMOTE_WRITE_URL is set (Prometheus exports no remote-storage series otherwise).
The lag expression is shared with the AquaRemoteWriteBehind alert (rules.py).
"""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.panels import targets, timeseries
from grafana.generator.promql import RATE

PROMETHEUS = '{job="prometheus"}'
# Seconds between the newest sample Prometheus appended and the newest one the queue delivered,
# per collector and queue. highest_timestamp_in_seconds has no queue labels; the sent timestamp has
# remote_name and url. On a central store every collector sends the same remote_name and url, and
# only its external label `aqua_monitor` (MONITOR_NAME) tells them apart, so both sides keep it: a
# lagging collector is never hidden by a healthy one. Locally `aqua_monitor` is absent (Prometheus
# adds external labels only to what it sends), which groups the same way.
REMOTE_WRITE_LAG = (
    f"max by (aqua_monitor) (prometheus_remote_storage_highest_timestamp_in_seconds{PROMETHEUS})\n"
    "- on (aqua_monitor) group_right\n"
    "max by (aqua_monitor, remote_name, url) "
    f"(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{PROMETHEUS})"
)
# The other panels too are per collector and queue: collectors share remote_name, not aqua_monitor.
PER_QUEUE = "aqua_monitor, remote_name"
QUEUE_LEGEND = "{{aqua_monitor}} {{remote_name}}"
ONLY_WITH_REMOTE_WRITE = (
    "Empty unless REMOTE_WRITE_URL is set. On a central store, one line per collector "
    "(`aqua_monitor`, its MONITOR_NAME)."
)


def _per_queue_rate(metric: str) -> str:
    return f"sum by ({PER_QUEUE}) (rate({metric}{PROMETHEUS}[{RATE}]))"


def remote_write(grid: Layout) -> None:
    """Samples sent, pending, failed and the delivery lag of Prometheus' remote_write queue."""
    grid.row("Remote write")
    grid.add(
        6,
        8,
        timeseries(
            "Samples sent / s",
            "Samples Prometheus delivered to the central store per second, and samples it "
            "appended locally (what there is to send). "
            f"{ONLY_WITH_REMOTE_WRITE}\n\n**When it is bad:** sent below appended for long "
            "means the backlog grows; see the lag panel.\n\nMetrics: "
            "`prometheus_remote_storage_samples_total`, `prometheus_remote_storage_samples_in_total`",
            targets(
                (
                    f"{QUEUE_LEGEND} sent",
                    _per_queue_rate("prometheus_remote_storage_samples_total"),
                ),
                (
                    "{{aqua_monitor}} appended",
                    "sum by (aqua_monitor) "
                    f"(rate(prometheus_remote_storage_samples_in_total{PROMETHEUS}[{RATE}]))",
                ),
            ),
            unit="short",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Samples pending",
            "Samples read from the write-ahead log and waiting in the queue's shards. "
            f"{ONLY_WITH_REMOTE_WRITE}\n\n**When it is bad:** a queue that stays full means the "
            "receiver is slow or refusing; the write-ahead log keeps the rest of the backlog."
            "\n\nMetric: `prometheus_remote_storage_samples_pending`",
            targets(
                (
                    QUEUE_LEGEND,
                    f"sum by ({PER_QUEUE}) (prometheus_remote_storage_samples_pending{PROMETHEUS})",
                )
            ),
            unit="short",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Failed and retried samples / s",
            "Samples the receiver refused for good (failed: dropped) and samples sent again after "
            f"a recoverable error (retried). {ONLY_WITH_REMOTE_WRITE}\n\n**When it is bad:** "
            "failed samples are lost: check the receiver's answer in Prometheus' log (auth, "
            "tenant header, out-of-order or too-old samples). Retries during an outage are "
            "expected.\n\nMetrics: `prometheus_remote_storage_samples_failed_total`, "
            "`prometheus_remote_storage_samples_retried_total`",
            targets(
                (
                    f"{QUEUE_LEGEND} failed",
                    _per_queue_rate("prometheus_remote_storage_samples_failed_total"),
                ),
                (
                    f"{QUEUE_LEGEND} retried",
                    _per_queue_rate("prometheus_remote_storage_samples_retried_total"),
                ),
            ),
            unit="short",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Highest timestamp lag",
            "How far the central store is behind: the newest sample Prometheus appended minus the "
            f"newest one it delivered. {ONLY_WITH_REMOTE_WRITE}\n\n**When it is bad:** a lag that "
            "keeps growing means nothing is delivered (receiver down, refused credentials); "
            "*AquaRemoteWriteBehind* fires above 2 minutes. After an outage it falls back once "
            "the backlog drains.\n\nMetrics: "
            "`prometheus_remote_storage_highest_timestamp_in_seconds`, "
            "`prometheus_remote_storage_queue_highest_sent_timestamp_seconds`",
            targets((QUEUE_LEGEND, REMOTE_WRITE_LAG)),
            unit="s",
        ),
    )
