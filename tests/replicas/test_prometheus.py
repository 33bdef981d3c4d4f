"""A real Prometheus scrapes gather()'s answers for a 3-replica pool: true sums, no resets.

A tiny loopback server answers each scrape by running gather() against the stand-in load
balancer (random replica per request), as the proxy will. After ~35 s of 2 s scrapes, PromQL over
the stored series must give the pool's true total pace and gauge sum, and no counter reset; then
a replica restarts and shows as one new replica, still without a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.parse
import urllib.request

import httpx
import pytest

from app.replicas.exposition import replica_id
from app.replicas.gather import FetchedPage, gather, suggested_fetch_cap
from app.replicas.tracker import ReplicaTracker
from testkit.background_server import BackgroundHTTPServer, QuietHandler
from testkit.prometheus import running_prometheus
from tests.support.replica_pool import ReplicaPool, make_replicas

pytestmark = pytest.mark.stack

SCRAPE_INTERVAL = 2.0


class _GatherHandler(QuietHandler):
    def do_GET(self) -> None:
        server: GatherServer = self.owner
        timeout = float(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds", "1.5"))
        result = server.scrape(max(0.1, timeout - 0.5))
        self.send_bytes(200, result.body, {"Content-Type": result.content_type})


class GatherServer(BackgroundHTTPServer):
    """Answers GET /metrics with gather() over `pool`, one tracker for all scrapes."""

    def __init__(self, pool: ReplicaPool) -> None:
        self.pool = pool
        self.tracker = ReplicaTracker(
            max_age_seconds=2 * SCRAPE_INTERVAL,
            learn_window_seconds=4 * SCRAPE_INTERVAL,
            max_retained_bytes=64 << 20,
        )
        self.fetches: list[int] = []
        self._lock = threading.Lock()
        super().__init__(_GatherHandler)

    def scrape(self, deadline: float):
        async def run():
            async with httpx.AsyncClient() as client:

                async def fetch() -> FetchedPage:
                    response = await client.get(self.pool.url)
                    return FetchedPage(response.content, response.headers["content-type"])

                expected = self.tracker.expected(None, time.monotonic())
                return await gather(
                    fetch,
                    self.tracker,
                    deadline_seconds=deadline,
                    max_fetches=suggested_fetch_cap(expected),
                    max_unpacked_bytes=64 << 20,
                    label_single_replica=True,
                )

        with self._lock:
            result = asyncio.run(run())
            self.fetches.append(result.fetches)
            return result


@contextlib.contextmanager
def prometheus_scraping(prometheus_path, tmp_path, target: str):
    """A real Prometheus scraping `target`; yields its base URL and its log file."""
    config = (
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL:g}s\n"
        "  scrape_timeout: 1500ms\n"
        "scrape_configs:\n"
        "  - job_name: replicas\n"
        "    fallback_scrape_protocol: PrometheusText0.0.4\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    with running_prometheus(prometheus_path, tmp_path, tmp_path / "data", config) as base:
        yield base, tmp_path / "prometheus.log"


def query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def scalar(base: str, expr: str) -> float | None:
    result = query(base, expr)
    return float(result[0]["value"][1]) if result else None


def wait_for(base: str, expr: str, log, timeout: float) -> None:
    """Poll an instant query until it returns a series (bounded; fails with the log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if query(base, expr):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out on {expr}: {log.read_text()[-2000:]}"
        time.sleep(1.0)


def test_prometheus_sees_the_true_sums_of_three_replicas(prometheus_path, tmp_path):
    with (
        ReplicaPool(make_replicas(3, demo_pages=True), seed=11) as pool,
        GatherServer(pool) as server,
        prometheus_scraping(prometheus_path, tmp_path, server.authority) as (base, log),
    ):
        # Wait (polling, bounded) until every replica has 30 s of samples stored.
        wait_for(
            base,
            "count(count_over_time(vllm:generation_tokens_total[30s]) >= 13) == 3",
            log,
            timeout=90,
        )

        up = scalar(base, 'min_over_time(up{job="replicas"}[30s])')
        assert up == 1.0
        total = scalar(base, "sum(rate(vllm:generation_tokens_total[30s]))")
        assert total == pytest.approx(pool.total_tokens_per_second, rel=0.05)
        requests = scalar(base, "sum(rate(vllm:request_success_total[30s]))")
        assert requests == pytest.approx(pool.total_tokens_per_second / 50, rel=0.05)
        assert scalar(base, "sum(resets(vllm:generation_tokens_total[40s]))") == 0.0
        assert scalar(base, "sum(resets(vllm:e2e_request_latency_seconds_count[40s]))") == 0.0
        assert scalar(base, "sum(vllm:num_requests_running)") == sum(
            r.running for r in pool.replicas
        )
        assert scalar(base, "avg(vllm:kv_cache_usage_perc)") == pytest.approx(0.2)
        assert scalar(base, "count(count by (replica) (process_start_time_seconds))") == 3
        assert max(server.fetches) <= suggested_fetch_cap(3)

        # A replica restarts: one new replica appears, no counter series resets, and the summed
        # rate stays the pool's pace (the old series stops growing as the new one starts at 0).
        new = replica_id(pool.restart(1, start_time=1_796_500_000.5).start_time)
        wait_for(
            base,
            f'count_over_time(vllm:generation_tokens_total{{replica="{new}"}}[30s]) >= 8',
            log,
            timeout=60,
        )
        replicas = query(
            base, "count by (replica) (count_over_time(process_start_time_seconds[30s]))"
        )
        assert len(replicas) == 4 and new in {r["metric"]["replica"] for r in replicas}
        assert scalar(base, "sum(resets(vllm:generation_tokens_total[40s]))") == 0.0
        total = scalar(base, "sum(rate(vllm:generation_tokens_total[30s]))")
        assert total == pytest.approx(pool.total_tokens_per_second, rel=0.1)
