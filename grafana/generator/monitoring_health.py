"""The "Monitoring health" dashboard: is the monitoring itself working? The overview, deployment
scrapes and proxy rows are here; Prometheus, alerts and processes in `monitoring_stack`."""

from __future__ import annotations

from grafana.generator import monitoring_health_remote, monitoring_oci, monitoring_stack
from grafana.generator.dashboard import DATASOURCE_VARIABLE, DEPLOYMENT_VARIABLE, dashboard
from grafana.generator.layout import Layout
from grafana.generator.metrics import STACK_JOBS, UP_BY_DEPLOYMENT
from grafana.generator.panels import (
    UP_MAPPINGS,
    Json,
    stat,
    state_timeline,
    table,
    target,
    targets,
    timeseries,
)
from grafana.generator.promql import (
    PER_DEPLOYMENT,
    RATE,
    by,
    proxy_sel,
    sel,
    with_display_name,
    zero_if_absent,
)

ALARM_AT_ONE = ((None, "green"), (1, "red"))


def _count(
    title: str, description: str, expr: str, steps: tuple[tuple[float | None, str], ...]
) -> Json:
    """A stat of how many there are now; `0`, not "No traffic", when there are none."""
    return stat(title, description, [target(expr)], unit="none", steps=steps, no_value="0")


def _range_count(
    title: str, description: str, expr: str, steps: tuple[tuple[float | None, str], ...]
) -> Json:
    """A stat of how many happened in the selected time range, a whole number without a graph."""
    return stat(
        title,
        description,
        [target(expr, instant=True)],
        unit="none",
        steps=steps,
        graph=False,
        no_value="0",
        decimals=0,
    )


def overview(grid: Layout) -> None:
    """Counts at a glance: deployments up and down, alerts, failures."""
    tiles = (
        _count(
            "Deployments up",
            "Deployments whose metrics Prometheus scraped successfully at the last attempt.",
            f"count({sel('up', model=False)} == 1) or vector(0)",
            ((None, "blue"),),
        ),
        _count(
            "Deployments down",
            "Deployments Prometheus could not scrape at the last attempt. See *Scrape failures by "
            "kind* for the reason; *AquaDeploymentDown* fires after 2 minutes.",
            f"count({sel('up', model=False)} == 0) or vector(0)",
            ALARM_AT_ONE,
        ),
        _count(
            "Firing alerts",
            "Alert rules of aqua-metrics firing now (evaluated by Prometheus). The *Alerts* row "
            "lists them.",
            'count(ALERTS{alertstate="firing"}) or vector(0)',
            ALARM_AT_ONE,
        ),
        _count(
            "Stack components down",
            "Components of this container (signing proxy, Prometheus, Grafana) whose own metrics "
            "Prometheus cannot scrape. A down proxy stops all deployment scrapes; check the "
            "container's logs.",
            f"count(up{{{STACK_JOBS}}} == 0) or vector(0)",
            ALARM_AT_ONE,
        ),
        _range_count(
            "Scrape failures (time range)",
            "Scrapes of the selected deployments the proxy could not answer with metrics, in the "
            "selected time range. The panels below break them down by kind.",
            f"sum(increase({proxy_sel('aqua_proxy_scrape_failures_total')}[$__range])) "
            "or vector(0)",
            ((None, "green"), (1, "orange")),
        ),
        _range_count(
            "Rule evaluation failures (time range)",
            "Failed evaluations of Prometheus alert rules in the selected time range. Failing "
            "rules cannot alert: look at Prometheus' log for the rule and the error.",
            'sum(increase(prometheus_rule_evaluation_failures_total{job="prometheus"}'
            "[$__range])) or vector(0)",
            ALARM_AT_ONE,
        ),
    )
    for tile in tiles:
        grid.add(4, 4, tile)


def deployment_scrapes(grid: Layout) -> None:
    """Scrape status, targets, durations and sizes per deployment."""
    grid.row("Deployment scrapes")
    grid.add(
        12,
        8,
        state_timeline(
            "Deployment scrape status",
            "Whether each deployment could be scraped through the proxy, over time.\n\n**When it "
            "is bad:** a deployment that is DOWN has no fresh metrics; the failure-kind panels "
            "below say why.\n\nMetric: `up`",
            [target(UP_BY_DEPLOYMENT, "{{display_name}}")],
        ),
    )
    grid.add(
        12,
        8,
        table(
            "Scrape targets",
            "Every target Prometheus scrapes, with its labels and whether the last scrape "
            "succeeded: the selected deployments (through the proxy) and this container's own "
            "components.\n\n**When it is bad:** a DOWN deployment points at the proxy's failure "
            "kinds; a DOWN component at the container's logs.\n\nMetric: `up`",
            [
                target(
                    f"{sel('up', model=False)} or up{{{STACK_JOBS}}}",
                    instant=True,
                    fmt="table",
                )
            ],
            unit="none",
            exclude=("Time", "__name__"),
            rename={"Value": "State"},
            mappings=UP_MAPPINGS,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Scrape duration",
            "How long Prometheus' scrape of each deployment took, and the proxy's 95th percentile "
            "time to answer it (signing plus the upstream fetch through the OCI gateway).\n\n"
            "**When it is bad:** durations near the scrape timeout end in failed scrapes; the "
            "gateway or the deployment is slow, so raise SCRAPE_TIMEOUT or the scrape interval."
            "\n\nMetrics: `scrape_duration_seconds`, `aqua_proxy_scrape_duration_seconds`",
            targets(
                (
                    "{{display_name}} (Prometheus)",
                    f"max {by(PER_DEPLOYMENT)} ({sel('scrape_duration_seconds', model=False)})",
                ),
                (
                    "{{display_name}} (proxy p95)",
                    with_display_name(
                        "histogram_quantile(0.95, sum by (deployment, le) "
                        f"(rate({proxy_sel('aqua_proxy_scrape_duration_seconds_bucket')}[{RATE}])))"
                    ),
                ),
            ),
            unit="s",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Samples per scrape",
            "Samples Prometheus took from each deployment's scrape.\n\n**When it is bad:** a drop "
            "to a handful means the deployment answered something other than vLLM metrics; a "
            "steady climb means growing label cardinality.\n\nMetric: `scrape_samples_scraped`",
            targets(
                (
                    "{{display_name}}",
                    f"max {by(PER_DEPLOYMENT)} ({sel('scrape_samples_scraped', model=False)})",
                )
            ),
            unit="short",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Proxy requests in flight",
            "Scrapes the proxy is answering, per deployment (one fetches from the deployment at "
            "a time, the others wait for it).\n\n**When it is bad:** "
            "more than one for long means scrapes pile up behind a slow upstream; the proxy then "
            "refuses new ones (failure kind *busy*).\n\nMetric: `aqua_proxy_inflight_requests`",
            targets(
                (
                    "{{display_name}}",
                    zero_if_absent(
                        with_display_name(
                            f"sum by (deployment) ({proxy_sel('aqua_proxy_inflight_requests')})"
                        ),
                        "display_name",
                    ),
                )
            ),
            unit="short",
        ),
    )


def proxy(grid: Layout) -> None:
    """The signing proxy: upstream statuses, failure kinds, credential refreshes."""
    grid.row("Proxy")
    grid.add(
        8,
        8,
        timeseries(
            "Upstream responses by status code",
            "Responses the proxy received from each deployment, by HTTP status.\n\n**When it is "
            "bad:** 404 from the OCI gateway means NotAuthorizedOrNotFound (wrong OCID or missing "
            "policy); 401 a refused signature; 429 the tenancy's predict rate limit; 5xx a "
            "failing deployment.\n\nMetric: `aqua_proxy_upstream_responses_total`",
            targets(
                (
                    "{{display_name}} · {{code}}",
                    zero_if_absent(
                        with_display_name(
                            "sum by (deployment, code) (rate("
                            f"{proxy_sel('aqua_proxy_upstream_responses_total')}[{RATE}]))"
                        ),
                        "code",
                    ),
                )
            ),
            unit="reqps",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Scrape failures by kind",
            "Scrapes the proxy answered without metrics, per minute, by cause: *timeout*, "
            "*connect* (network or DNS), *signature_refused* (the gateway rejected the signed "
            "request), *oversized* (response too large), *upstream_status* (non-200 from the "
            "deployment), *protocol* (not a metrics page), *busy* (too many scrapes in flight). "
            "A `none` line at zero means the proxy is up and nothing failed.\n\n**When it is "
            "bad:** *signature_refused* raises *AquaProxySignatureRefused*: check the dynamic "
            "group and the policy granting DATA_SCIENCE_MODEL_DEPLOYMENT_PREDICT.\n\n"
            "Metric: `aqua_proxy_scrape_failures_total`",
            targets(
                (
                    "{{display_name}} · {{kind}}",
                    zero_if_absent(
                        with_display_name(
                            "60 * sum by (deployment, kind) (rate("
                            f"{proxy_sel('aqua_proxy_scrape_failures_total')}[{RATE}]))"
                        ),
                        "kind",
                    ),
                )
            ),
            unit="opm",
            bars=True,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Signer credential refreshes",
            "Renewals of the OCI credentials the proxy signs with, per minute, by auth mode, and "
            "failed renewal attempts. A `none` line at zero means nothing was renewed in the "
            "window (API keys never need it).\n\n**When it is bad:** repeated failures end in "
            "expired tokens and refused signatures: check the instance or resource principal "
            "setup, or run `oci session refresh` for session tokens.\n\n"
            "Metrics: `aqua_proxy_signer_refreshes_total`, `aqua_proxy_signer_refresh_failures_total`",
            targets(
                (
                    "{{mode}} refreshed",
                    zero_if_absent(
                        "60 * sum by (mode) (rate("
                        f'aqua_proxy_signer_refreshes_total{{job="aqua-proxy"}}[{RATE}]))',
                        "mode",
                    ),
                ),
                (
                    "{{mode}} failed",
                    "60 * sum by (mode) (rate("
                    f'aqua_proxy_signer_refresh_failures_total{{job="aqua-proxy"}}[{RATE}]))',
                ),
            ),
            unit="opm",
            bars=True,
        ),
    )


def build() -> Json:
    grid = Layout()
    overview(grid)
    deployment_scrapes(grid)
    proxy(grid)
    monitoring_stack.prometheus(grid)
    monitoring_stack.alerts(grid)
    monitoring_stack.processes(grid)
    monitoring_oci.oci_monitoring(grid)
    monitoring_health_remote.remote_write(grid)
    return dashboard(
        "aqua-health",
        "Monitoring health",
        "Is the monitoring itself working: scrapes of each deployment through the signing proxy, "
        "the proxy's failures and credential refreshes, Prometheus ingestion and rule evaluation, "
        "firing alerts and the container's processes.",
        grid.panels,
        [DATASOURCE_VARIABLE, DEPLOYMENT_VARIABLE],
        ("aqua", "monitoring"),
    )
