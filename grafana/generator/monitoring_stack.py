"""The Monitoring health dashboard's rows about the container itself: Prometheus, alerts, processes."""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.metrics import STACK_JOBS
from grafana.generator.panels import (
    DATASOURCE_NAME,
    alertlist,
    table,
    target,
    targets,
    timeseries,
)
from grafana.generator.promql import RATE


def prometheus(grid: Layout) -> None:
    """Prometheus itself: ingestion, series, disk, rules, discovery."""
    grid.row("Prometheus")
    grid.add(
        8,
        8,
        timeseries(
            "Samples ingested / s",
            "Samples Prometheus appends to its database per second, all jobs together.\n\n**When "
            "it is bad:** a sudden rise means new or exploding series (more deployments, label "
            "churn); memory and disk use follow it.\n\n"
            "Metric: `prometheus_tsdb_head_samples_appended_total`",
            targets(
                (
                    "samples",
                    'sum(rate(prometheus_tsdb_head_samples_appended_total{job="prometheus"}'
                    f"[{RATE}]))",
                )
            ),
            unit="short",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Head series",
            "Series held in memory by Prometheus (the head block).\n\n**When it is bad:** steady "
            "growth without new deployments means label churn; Prometheus' memory grows with "
            "it.\n\nMetric: `prometheus_tsdb_head_series`",
            targets(("series", 'max(prometheus_tsdb_head_series{job="prometheus"})')),
            unit="short",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "TSDB disk usage",
            "Bytes on disk of persisted blocks and of the write-ahead log.\n\n**When it is bad:** "
            "growth towards the volume's size: lower the retention time or size.\n\n"
            "Metrics: `prometheus_tsdb_storage_blocks_bytes`, `prometheus_tsdb_wal_storage_size_bytes`",
            targets(
                ("blocks", 'max(prometheus_tsdb_storage_blocks_bytes{job="prometheus"})'),
                ("WAL", 'max(prometheus_tsdb_wal_storage_size_bytes{job="prometheus"})'),
            ),
            unit="bytes",
            stack=True,
            fill=30,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Rule evaluation failures and missed iterations",
            "Failed rule evaluations and skipped evaluation cycles, per minute, by rule group.\n\n"
            "**When it is bad:** failing or skipped rules cannot alert; Prometheus' log names the "
            "rule and the error.\n\nMetrics: `prometheus_rule_evaluation_failures_total`, "
            "`prometheus_rule_group_iterations_missed_total`",
            targets(
                (
                    "{{rule_group}} failed",
                    "60 * sum by (rule_group) (rate("
                    f'prometheus_rule_evaluation_failures_total{{job="prometheus"}}[{RATE}]))',
                ),
                (
                    "{{rule_group}} missed",
                    "60 * sum by (rule_group) (rate("
                    f'prometheus_rule_group_iterations_missed_total{{job="prometheus"}}[{RATE}]))',
                ),
            ),
            unit="opm",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Rule group evaluation duration",
            "How long the last evaluation of each rule group took.\n\n**When it is bad:** a "
            "duration close to the evaluation interval makes Prometheus skip cycles.\n\n"
            "Metric: `prometheus_rule_group_last_duration_seconds`",
            targets(
                (
                    "{{rule_group}}",
                    "max by (rule_group) "
                    '(prometheus_rule_group_last_duration_seconds{job="prometheus"})',
                )
            ),
            unit="s",
        ),
    )
    sync = grid.add(
        8,
        8,
        timeseries(
            "Target discovery and sync",
            "Targets per scrape job (deployments come from the proxy's service discovery), "
            "failed service-discovery requests per minute, and the 90th percentile time to sync a "
            "job's targets (right axis).\n\n**When it is bad:** SD failures mean Prometheus cannot "
            "reach the proxy's /sd endpoint and keeps its last known targets.\n\n"
            "Metrics: `prometheus_target_scrape_pool_targets`, `prometheus_sd_http_failures_total`, "
            "`prometheus_target_sync_length_seconds`",
            targets(
                (
                    "{{scrape_job}} targets",
                    'sum by (scrape_job) (prometheus_target_scrape_pool_targets{job="prometheus"})',
                ),
                (
                    "SD failures / min",
                    f'60 * sum(rate(prometheus_sd_http_failures_total{{job="prometheus"}}[{RATE}]))',
                ),
                (
                    "{{scrape_job}} sync p90",
                    "max by (scrape_job) (prometheus_target_sync_length_seconds"
                    '{job="prometheus", quantile="0.9"})',
                ),
            ),
            unit="short",
        ),
    )
    # Sync durations are seconds: give them their own unit on a right axis.
    sync["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byRegexp", "options": ".* sync p90"},
            "properties": [
                {"id": "unit", "value": "s"},
                {"id": "custom.axisPlacement", "value": "right"},
            ],
        }
    ]


def alerts(grid: Layout) -> None:
    """Firing and pending alerts of the Prometheus rules."""
    grid.row("Alerts")
    grid.add(
        12,
        10,
        alertlist(
            "Alert rules (Prometheus)",
            "Firing and pending alerts of the rules Prometheus evaluates "
            "(rules/aqua-metrics.rules.yml), shown through the Prometheus data source. Each "
            "alert's description says what to do.",
            {
                "alertInstanceLabelFilter": "",
                "alertName": "",
                "dashboardAlerts": False,
                "datasource": DATASOURCE_NAME,
                "groupBy": [],
                "groupMode": "default",
                "maxItems": 50,
                "showInactiveAlerts": False,
                "showInstances": True,
                "sortOrder": 3,
                "stateFilter": {
                    "error": True,
                    "firing": True,
                    "noData": False,
                    "normal": False,
                    "pending": True,
                    "recovering": True,
                },
                "viewMode": "list",
            },
        ),
    )
    grid.add(
        12,
        10,
        table(
            "Firing alert instances",
            "Every firing alert with its labels (the `ALERTS` series Prometheus writes), one row "
            "per alert instance. Empty is good.\n\n**When it is bad:** the *Alert rules* panel "
            "shows each alert's description and what to do.\n\nMetric: `ALERTS`",
            [target('ALERTS{alertstate="firing"}', instant=True, fmt="table")],
            unit="none",
            exclude=("Time", "__name__", "Value", "alertstate"),
            no_value="No alerts firing",
        ),
    )


def processes(grid: Layout) -> None:
    """Memory, CPU and file descriptors of the container's programs."""
    grid.row("Processes")
    grid.add(
        8,
        8,
        timeseries(
            "Memory (RSS)",
            "Resident memory of the proxy, Prometheus and Grafana.\n\n**When it is bad:** the "
            "three share the container's memory limit; Prometheus grows with the number of "
            "series, the proxy should stay flat (growth means a leak).\n\n"
            "Metric: `process_resident_memory_bytes`",
            targets(("{{job}}", f"max by (job) (process_resident_memory_bytes{{{STACK_JOBS}}})")),
            unit="bytes",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "CPU",
            "CPU used by the proxy, Prometheus and Grafana; 100% is one full core.\n\n**When it "
            "is bad:** a proxy busy all the time slows scrapes (many deployments, large metric "
            "pages); give the container more CPU.\n\nMetric: `process_cpu_seconds_total`",
            targets(
                (
                    "{{job}}",
                    f"sum by (job) (rate(process_cpu_seconds_total{{{STACK_JOBS}}}[{RATE}]))",
                )
            ),
            unit="percentunit",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Open file descriptors",
            "Open files and sockets of the proxy, Prometheus and Grafana.\n\n**When it is bad:** "
            "a count that only grows means leaked connections; near the limit "
            "(`process_max_fds`) new scrapes fail.\n\nMetric: `process_open_fds`",
            targets(("{{job}}", f"max by (job) (process_open_fds{{{STACK_JOBS}}})")),
            unit="short",
        ),
    )
