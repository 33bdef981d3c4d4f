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
            "Upstream requests in flight, per deployment.",
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
    )
