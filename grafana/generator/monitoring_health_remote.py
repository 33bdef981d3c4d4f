"""The Monitoring health dashboard's "Remote write" row: is every sample reaching the central store?

Filled only when REMOTE_WRITE_URL is set (Prometheus exports no remote-storage series otherwise).
The lag expression is shared with the AquaRemoteWriteBehind alert (rules.py).
"""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.panels import targets, timeseries
from grafana.generator.promql import RATE

PROMETHEUS = '{job="prometheus"}'
# Seconds between the newest sample Prometheus appended and the newest one the queue delivered.
# highest_timestamp_in_seconds has no queue labels; the sent timestamp has remote_name and url.
REMOTE_WRITE_LAG = (
    f"max(prometheus_remote_storage_highest_timestamp_in_seconds{PROMETHEUS})\n"
    "- ignoring (remote_name, url) group_right\n"
    "max by (remote_name, url) "
    f"(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{PROMETHEUS})"
)
ONLY_WITH_REMOTE_WRITE = "Empty unless REMOTE_WRITE_URL is set."


def _per_queue_rate(metric: str) -> str:
    return f"sum by (remote_name) (rate({metric}{PROMETHEUS}[{RATE}]))"


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
                    "{{remote_name}} sent",
                    _per_queue_rate("prometheus_remote_storage_samples_total"),
                ),
                (
                    "appended",
                    f"sum(rate(prometheus_remote_storage_samples_in_total{PROMETHEUS}[{RATE}]))",
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
                    "{{remote_name}}",
                    f"sum by (remote_name) (prometheus_remote_storage_samples_pending{PROMETHEUS})",
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
                    "{{remote_name}} failed",
                    _per_queue_rate("prometheus_remote_storage_samples_failed_total"),
                ),
                (
                    "{{remote_name}} retried",
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
            targets(("{{remote_name}}", REMOTE_WRITE_LAG)),
            unit="s",
        ),
    )
