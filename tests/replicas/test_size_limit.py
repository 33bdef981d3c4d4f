"""SCRAPE_BODY_SIZE_LIMIT bounds the merged answer of several replicas, not only each page (#16).

The proxy's real forwarding path (`Forwarder`, pooled httpx clients, streaming with the unpacked
size meter) against the stand-in load balancer over simulated replicas on real loopback HTTP. A
deployment whose replicas' pages are each within the limit but together above it is refused as
`oversized`, like one page too large, and the proxy keeps none of those pages; what it keeps
between scrapes never passes the limit, whichever replicas come and go.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.forwarding import Forwarder
from app.proxy_metrics import ProxyMetrics, create_proxy_metrics
from app.replicas.exposition import label_samples, replica_id
from app.scrape_failures import FailureKind, ScrapeOutcome
from app.settings import load_settings
from app.targets import Target
from app.upstreams import UpstreamClients
from tests.support.replica_pool import ReplicaPool, make_replicas


def _page_sizes(pool: ReplicaPool) -> tuple[int, int]:
    """The largest page of the pool, as fetched and once labelled (values grow slowly: margin)."""
    now = time.monotonic() + 3600
    pages = [replica.render(now) for replica in pool.replicas]
    labelled = [
        label_samples(page, replica_id(r.start_time)) for page, r in zip(pages, pool.replicas)
    ]
    return max(map(len, pages)), max(map(len, labelled))


class Proxy:
    """A Forwarder for one target over `pool`, scraping as Prometheus asks it to."""

    def __init__(self, pool: ReplicaPool, limit: int, instance_count: int | None) -> None:
        self.target = Target(
            "a", pool.url, labels={"deployment": "a"}, instance_count=instance_count
        )
        self.metrics: ProxyMetrics = create_proxy_metrics()
        self.limit = limit
        self._settings = load_settings({"TARGETS": f"a={pool.url}", "OCI_AUTH": "none"}).proxy

    def scrape(
        self, times: int = 1, accept_encoding: str = "gzip"
    ) -> tuple[list[ScrapeOutcome], int]:
        """`times` scrapes in a row; their outcomes and the page bytes kept after each."""

        async def run() -> tuple[list[ScrapeOutcome], list[int]]:
            clients = UpstreamClients(self._settings, None)
            forwarder = Forwarder(
                clients=clients,
                metrics=self.metrics,
                upstream_timeout_seconds=10,
                max_response_bytes=16 << 20,
                max_inflight_per_target=1,
                max_unpacked_bytes=self.limit,
            )
            outcomes, kept = [], []
            try:
                for _ in range(times):
                    outcomes.append(
                        await forwarder.scrape(
                            self.target,
                            accept=None,
                            accept_encoding=accept_encoding,
                            scrape_timeout_header=None,
                        )
                    )
                    kept.append(forwarder.retained_page_bytes("a"))
            finally:
                await clients.aclose()
            return outcomes, kept

        outcomes, kept = asyncio.run(run())
        return outcomes, max(kept)

    def failures(self, kind: FailureKind) -> float:
        for family in text_string_to_metric_families(
            generate_latest(self.metrics.registry).decode()
        ):
            for sample in family.samples:
                if sample.name == "aqua_proxy_scrape_failures_total" and sample.labels == {
                    "deployment": "a",
                    "kind": kind.value,
                }:
                    return sample.value
        return 0.0


@pytest.mark.parametrize("gzip", [False, True], ids=["identity", "gzip"])
def test_replicas_too_large_together_are_refused_and_nothing_of_them_is_kept(gzip):
    with ReplicaPool(make_replicas(8, demo_pages=True), seed=5, gzip=gzip) as pool:
        page, labelled = _page_sizes(pool)
        # Every page alone fits, with room; any three together do not.
        limit = 2 * labelled + page // 2
        proxy = Proxy(pool, limit, instance_count=8)
        outcomes, kept = proxy.scrape(times=2)
        for outcome in outcomes:
            assert outcome.status == 502 and outcome.failure is FailureKind.OVERSIZED
            assert b"SCRAPE_BODY_SIZE_LIMIT" in outcome.body and b"merged" in outcome.body
        assert proxy.failures(FailureKind.OVERSIZED) == 2
        assert kept == 0, "a refused scrape keeps no page"
        # It stops as soon as the pages cannot fit: a handful of fetches, not the cap of 40.
        assert pool.requests <= 2 * 5


def test_replicas_within_the_limit_together_are_served():
    with ReplicaPool(make_replicas(2, demo_pages=True), seed=5) as pool:
        page, labelled = _page_sizes(pool)
        limit = 2 * labelled + page // 2
        proxy = Proxy(pool, limit, instance_count=2)
        outcomes, kept = proxy.scrape(times=2)
        for outcome in outcomes:
            assert outcome.status == 200, outcome.body[:200]
            assert len(outcome.body) <= limit
            assert outcome.body.count(b"\nprocess_start_time_seconds{replica=") == 2
        assert 0 < kept <= limit


def test_pages_kept_between_scrapes_never_pass_the_limit():
    # Two replicas fit; both restart (two new ones, no instance count known): the old pages, still
    # young enough to be served, are dropped to make room rather than held beside the new ones.
    with ReplicaPool(make_replicas(2, demo_pages=True), seed=7) as pool:
        page, labelled = _page_sizes(pool)
        limit = 2 * labelled + page // 2
        proxy = Proxy(pool, limit, instance_count=None)
        outcomes, kept = proxy.scrape(times=12)  # random picks: both met, then labelled
        assert all(outcome.status == 200 for outcome in outcomes)
        assert b'replica="' in outcomes[-1].body and kept <= limit
        old = {replica_id(r.start_time) for r in pool.replicas}
        for index in range(2):
            pool.restart(index, start_time=1_796_000_000.0 + index)
        new = {replica_id(r.start_time) for r in pool.replicas}
        outcomes, kept = proxy.scrape(times=12)
        served = outcomes[-1].body.decode()
        assert outcomes[-1].status == 200 and kept <= limit
        assert all(f'replica="{r}"' in served for r in new)
        assert not any(f'replica="{r}"' in served for r in old)
