"""The vLLM deployment dashboard's collapsed "Replicas" row: each replica behind a deployment.

A deployment with several instances answers `/predict/metrics` from whichever replica its load
balancer picks; the proxy fetches until every replica answered and labels each one's series
`replica` (app/replicas). The other panels sum (or average) over replicas; this row splits them.
A single-replica deployment's series carry no `replica` label and show as one line.
"""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.metrics import (
    GENERATION_TOKENS,
    KV_USAGE,
    REQUEST_SUCCESS,
    RUNNING,
    START_TIME_SELECTOR,
)
from grafana.generator.panels import table, target, targets, timeseries
from grafana.generator.promql import (
    PER_DEPLOYMENT,
    RATE,
    by,
    counter_rate,
    gauge,
    proxy_sel,
    ratio,
    with_display_name,
)

PER_REPLICA = (*PER_DEPLOYMENT, "replica")
LEGEND = "{{display_name}} · {{replica}}"


def replicas(grid: Layout) -> None:
    """Replicas served, per-replica traffic and KV cache, and each replica's start time."""
    grid.row("Replicas", collapsed=True)
    grid.add(
        6,
        8,
        timeseries(
            "Replicas served",
            "Replicas whose metrics each scrape answered with, against the replicas expected (the "
            "instance count where discovery knows it, else the replicas met recently). A replica "
            "that did not answer in a scrape is served from its last page for up to two scrape "
            "intervals, then dropped, so its series go stale.\n\n**When it is bad:** served below "
            "expected for 10 minutes raises *AquaReplicaMissing*: a replica is not reached through "
            "the load balancer.\n\nMetrics: `aqua_proxy_replicas_served`, "
            "`aqua_proxy_replicas_expected`",
            targets(
                (
                    "{{display_name}} · served",
                    with_display_name(
                        f"max by (deployment) ({proxy_sel('aqua_proxy_replicas_served')})"
                    ),
                ),
                (
                    "{{display_name}} · expected",
                    with_display_name(
                        f"max by (deployment) ({proxy_sel('aqua_proxy_replicas_expected')})"
                    ),
                ),
            ),
            unit="short",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Upstream fetches per scrape",
            "Requests the proxy sent to the deployment per scrape: 1 for one replica; with n "
            "replicas picked at random by the load balancer, n·H(n) on average (3 for 2, 5.5 for "
            "3, 21.7 for 8), never more than the cap (REPLICA_FETCH_CAP). These count against the "
            "tenancy's predict rate limit.\n\nMetric: `aqua_proxy_scrape_fetches`",
            targets(
                (
                    "{{display_name}}",
                    with_display_name(
                        ratio(
                            "sum by (deployment) (rate("
                            f"{proxy_sel('aqua_proxy_scrape_fetches_sum')}[{RATE}]))",
                            "sum by (deployment) (rate("
                            f"{proxy_sel('aqua_proxy_scrape_fetches_count')}[{RATE}]))",
                        )
                    ),
                )
            ),
            unit="short",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Why fetching stopped",
            "Scrapes per second by why the proxy stopped fetching: *complete* (every replica "
            "answered), *fetch_cap* (REPLICA_FETCH_CAP reached first), *deadline* (the scrape "
            "timeout came first), *fetch_failed* (an attempt failed after some replicas had "
            "answered) or *unidentified* (no `process_start_time_seconds`: relayed as fetched)."
            "\n\n**When it is bad:** frequent *fetch_cap* or *deadline* leave replicas served "
            "from older pages; raise REPLICA_FETCH_CAP or SCRAPE_TIMEOUT.\n\n"
            "Metric: `aqua_proxy_scrape_stops_total`",
            targets(
                (
                    "{{display_name}} · {{reason}}",
                    with_display_name(
                        "sum by (deployment, reason) (rate("
                        f"{proxy_sel('aqua_proxy_scrape_stops_total')}[{RATE}]))"
                    ),
                )
            ),
            unit="ops",
            stack=True,
        ),
    )
    grid.add(
        6,
        8,
        table(
            "Replica start times",
            "When each replica's vLLM server process started (`process_start_time_seconds`): a "
            "restarted replica shows as a new row with a new id, and the old one disappears "
            "within two scrape intervals.\n\n**When it is bad:** start times that keep moving "
            "mean a replica restarts in a loop (*AquaReplicaRestartLoop*): check its logs.\n\n"
            "Metric: `process_start_time_seconds`",
            [
                target(
                    f"1000 * max {by(PER_REPLICA)} ({START_TIME_SELECTOR})",
                    instant=True,
                    fmt="table",
                )
            ],
            unit="dateTimeAsIso",
            rename={
                "deployment": "Deployment",
                "display_name": "Display name",
                "replica": "Replica",
                "Value": "Started",
            },
            no_value="No process start times reported",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Requests / s per replica",
            "Requests finished per second by each replica. The load balancer should spread them "
            "about evenly.\n\n**When it is bad:** one replica far below the others is slow or "
            "unhealthy; one at zero while the rest work is not receiving traffic.\n\n"
            "Metric: `vllm:request_success_total`",
            targets((LEGEND, counter_rate(REQUEST_SUCCESS, PER_REPLICA))),
            unit="reqps",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Generation tokens / s per replica",
            "Output tokens generated per second by each replica.\n\n**When it is bad:** a replica "
            "with running requests but no tokens is hung (*AquaGenerationStalled* looks at the "
            "deployment's sum).\n\nMetric: `vllm:generation_tokens_total`",
            targets((LEGEND, counter_rate(GENERATION_TOKENS, PER_REPLICA))),
            unit="count:tok/s",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "KV cache usage per replica",
            "Each replica's KV cache usage, averaged over its engines. The deployment tiles "
            "average it over replicas.\n\n**When it is bad:** one replica near 100% while others "
            "are idle points at uneven balancing or sticky long requests.\n\n"
            "Metric: `vllm:kv_cache_usage_perc` (older vLLM: `vllm:gpu_cache_usage_perc`)",
            targets((LEGEND, gauge(KV_USAGE, "avg", PER_REPLICA))),
            unit="percentunit",
            maximum=1,
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Running requests per replica",
            "Requests in each replica's running batch now. The deployment tiles sum them over "
            "replicas.\n\n**When it is bad:** one replica with a full batch while others have "
            "room means uneven balancing.\n\nMetric: `vllm:num_requests_running`",
            targets((LEGEND, gauge(RUNNING, "sum", PER_REPLICA))),
            unit="short",
        ),
    )
