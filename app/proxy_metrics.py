"""The proxy's own metrics, on a private registry so tests and several apps never collide.

Label values are target names, status codes and fixed failure kinds: never URLs, tokens or
anything a user could not read in the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

SCRAPE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Upstream fetches per scrape: 1 for a single replica; n*H(n) on average for n replicas (3 for 2,
# 5.5 for 3, 21.7 for 8); never more than the cap (at most 40, app/replicas/gather.py).
FETCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40)


@dataclass(frozen=True)
class ProxyMetrics:
    registry: CollectorRegistry
    scrape_duration: Histogram
    upstream_responses: Counter
    scrape_failures: Counter
    signer_refreshes: Counter
    signer_refresh_failures: Counter
    inflight: Gauge
    notifications_published: Counter
    notification_failures: Counter
    scrape_fetches: Histogram
    replicas_served: Gauge
    replicas_expected: Gauge
    scrape_stops: Counter


def create_proxy_metrics() -> ProxyMetrics:
    # `_created` samples would double the series count for no dashboard use.
    disable_created_metrics()
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return ProxyMetrics(
        registry=registry,
        scrape_duration=Histogram(
            "aqua_proxy_scrape_duration_seconds",
            "Time to answer a scrape of a deployment, upstream fetch included.",
            ["deployment"],
            buckets=SCRAPE_BUCKETS,
            registry=registry,
        ),
        upstream_responses=Counter(
            "aqua_proxy_upstream_responses",
            "Responses received from deployments, by HTTP status code.",
            ["deployment", "code"],
            registry=registry,
        ),
        scrape_failures=Counter(
            "aqua_proxy_scrape_failures",
            "Scrapes the proxy could not answer with metrics, by failure kind.",
            ["deployment", "kind"],
            registry=registry,
        ),
        signer_refreshes=Counter(
            "aqua_proxy_signer_refreshes",
            "Times the OCI credentials were renewed (a new token was adopted).",
            ["mode"],
            registry=registry,
        ),
        signer_refresh_failures=Counter(
            "aqua_proxy_signer_refresh_failures",
            "Attempts to renew the OCI credentials that failed.",
            ["mode"],
            registry=registry,
        ),
        inflight=Gauge(
            "aqua_proxy_inflight_requests",
            "Scrapes in flight, per deployment (one fetches upstream at a time, the others wait).",
            ["deployment"],
            registry=registry,
        ),
        notifications_published=Counter(
            "aqua_proxy_notifications_published",
            "Alert notifications published to the OCI Notifications topic.",
            registry=registry,
        ),
        notification_failures=Counter(
            "aqua_proxy_notification_failures",
            "Alert notifications the topic did not take (Alertmanager retries them), by kind.",
            ["kind"],
            registry=registry,
        ),
        scrape_fetches=Histogram(
            "aqua_proxy_scrape_fetches",
            "Upstream requests made to answer one scrape (one per replica met, and repeats).",
            ["deployment"],
            buckets=FETCH_BUCKETS,
            registry=registry,
        ),
        replicas_served=Gauge(
            "aqua_proxy_replicas_served",
            "Replicas whose series the last scrape answered with (fresh or recent pages).",
            ["deployment"],
            registry=registry,
        ),
        replicas_expected=Gauge(
            "aqua_proxy_replicas_expected",
            "Replicas the last scrape tried to meet: the instance count where discovery knows "
            "it, else the replicas seen recently.",
            ["deployment"],
            registry=registry,
        ),
        scrape_stops=Counter(
            "aqua_proxy_scrape_stops",
            "Why the fetching for a scrape ended: complete, fetch_cap, deadline, fetch_failed or "
            "unidentified (no process_start_time_seconds: relayed as fetched).",
            ["deployment", "reason"],
            registry=registry,
        ),
    )
