"""A deployment slower than the scrape timeout: 504 in time, no pile-up, recovery.

The proxy runs as a real process; the deployment is a `CountingUpstream` whose delay fault ends when
the proxy hangs up, so its `open_requests` counts exactly what the proxy still waits for. A second,
healthy deployment is scraped throughout and must never notice.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from testkit.waiting import wait_until
from tests.support.counting_upstream import CountingUpstream
from tests.support.netstat import established_connections
from tests.support.proxy_process import ProxyProcess, sample_value
from tests.support.signed_upstream import SignedUpstream

MAX_INFLIGHT = 4
UPSTREAM_TIMEOUT = 2.5
SLOW = 30.0  # seconds the slow deployment would take; far beyond every timeout here
TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"


@pytest.fixture(scope="module")
def upstreams(registry):
    with CountingUpstream(registry) as slow, SignedUpstream(registry) as healthy:
        yield slow, healthy


@pytest.fixture(scope="module")
def proxy(upstreams, api_key, tmp_path_factory):
    slow, healthy = upstreams
    env = {
        "TARGETS": f"slow={slow.url},healthy={healthy.url}",
        "OCI_CONFIG_FILE": str(api_key.config_path),
        "MAX_INFLIGHT_PER_TARGET": str(MAX_INFLIGHT),
        "UPSTREAM_TIMEOUT_SECONDS": str(UPSTREAM_TIMEOUT),
    }
    with ProxyProcess(env, work_dir=tmp_path_factory.mktemp("proxy")) as process:
        yield process
    assert "Traceback" not in process.logs(), process.logs()


@pytest.fixture
def slow(upstreams):
    upstream = upstreams[0]
    upstream.set_faults(delay_seconds=SLOW)
    yield upstream
    upstream.reset_faults()


async def _timed_get(client: httpx.AsyncClient, path: str, headers: dict[str, str]):
    started = time.monotonic()
    response = await client.get(path, headers=headers)
    return response, time.monotonic() - started


@pytest.mark.parametrize(
    ("header", "deadline"),
    [
        ("1.5", 1.0),  # Prometheus' timeout, minus the proxy's 0.5 s margin
        ("30", UPSTREAM_TIMEOUT),  # the configured upstream timeout is the tighter one
        (None, UPSTREAM_TIMEOUT),
    ],
)
def test_a_slow_deployment_gets_504_inside_the_scrape_timeout(proxy, slow, header, deadline):
    before = sample_value(
        proxy.metrics(),
        "aqua_proxy_scrape_failures_total",
        {"deployment": "slow", "kind": "timeout"},
    )

    async def go():
        headers = {TIMEOUT_HEADER: header} if header else {}
        async with httpx.AsyncClient(base_url=proxy.url, timeout=60) as client:
            return await _timed_get(client, "/targets/slow/metrics", headers)

    response, elapsed = asyncio.run(go())
    assert response.status_code == 504, response.text
    assert response.text.startswith("aqua-metrics: target slow: timeout;"), response.text
    assert response.headers["content-type"].startswith("text/plain")
    # Answered when the deadline passed: not before (it did wait), not much after.
    assert deadline - 0.05 <= elapsed < deadline + 0.4, elapsed
    if header:
        assert elapsed < float(header), "answered after Prometheus had given up"
    after = sample_value(
        proxy.metrics(),
        "aqua_proxy_scrape_failures_total",
        {"deployment": "slow", "kind": "timeout"},
    )
    assert after == before + 1
    # The abandoned upstream request is closed, not left running.
    assert slow.wait_idle(1.0), f"{slow.open_requests} upstream requests still open"


def test_timeouts_do_not_pile_up_and_the_healthy_deployment_is_unaffected(proxy, slow, upstreams):
    healthy = upstreams[1]
    waves, per_wave = 3, 12
    samples: dict[str, list[int]] = {"upstream": [], "connections": [], "gauge": []}

    async def watch(stop: asyncio.Event):
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as client:
            while not stop.is_set():
                text = (await client.get("/metrics")).text
                samples["gauge"].append(
                    int(sample_value(text, "aqua_proxy_inflight_requests", {"deployment": "slow"}))
                )
                samples["upstream"].append(slow.open_requests)
                samples["connections"].append(established_connections(proxy.pid, slow.port))
                await asyncio.sleep(0.05)

    async def healthy_loop(stop: asyncio.Event):
        statuses = []
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as client:
            while not stop.is_set():
                response = await client.get(
                    "/targets/healthy/metrics", headers={TIMEOUT_HEADER: "1.5"}
                )
                statuses.append((response.status_code, b"vllm:" in response.content))
                await asyncio.sleep(0.02)
        return statuses

    async def go():
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(stop))
        healthy_task = asyncio.create_task(healthy_loop(stop))
        results = []
        limits = httpx.Limits(max_connections=per_wave * 2)
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30, limits=limits) as client:
            for _ in range(waves):
                wave = await asyncio.gather(
                    *(
                        _timed_get(client, "/targets/slow/metrics", {TIMEOUT_HEADER: "1.5"})
                        for _ in range(per_wave)
                    )
                )
                results.append(wave)
        # Every wave has been answered: nothing may still be waiting upstream.
        idle_after = await asyncio.to_thread(slow.wait_idle, 1.0)
        stop.set()
        await watcher
        return results, await healthy_task, idle_after

    slow.reset_peak()
    results, healthy_statuses, idle_after = asyncio.run(go())

    for wave in results:
        statuses = sorted(response.status_code for response, _ in wave)
        assert set(statuses) <= {503, 504}, statuses
        # At most MAX_INFLIGHT went upstream (and timed out); the rest were refused as busy.
        assert statuses.count(504) <= MAX_INFLIGHT, statuses
        assert statuses.count(504) >= 1, statuses
        for response, elapsed in wave:
            assert elapsed < 1.5, f"{response.status_code} after {elapsed:.2f}s"
            if response.status_code == 503:
                assert "MAX_INFLIGHT_PER_TARGET" in response.text
    assert slow.peak_open_requests <= MAX_INFLIGHT, slow.peak_open_requests
    assert max(samples["upstream"]) <= MAX_INFLIGHT, samples["upstream"]
    assert max(samples["connections"]) <= MAX_INFLIGHT, samples["connections"]
    assert max(samples["gauge"]) <= MAX_INFLIGHT, samples["gauge"]
    assert idle_after, f"{slow.open_requests} upstream requests still open after the waves"
    text = proxy.metrics()
    assert sample_value(text, "aqua_proxy_inflight_requests", {"deployment": "slow"}) == 0
    assert established_connections(proxy.pid, slow.port) == 0, "timed-out connections kept open"
    assert healthy_statuses, "the healthy deployment was never scraped"
    assert all(status == (200, True) for status in healthy_statuses), healthy_statuses
    assert all(r.status == 200 for r in healthy.requests)


def test_scrapes_recover_as_soon_as_the_deployment_does(proxy, upstreams):
    slow = upstreams[0]
    slow.set_faults(delay_seconds=SLOW)
    status, _ = proxy.get("/targets/slow/metrics", {TIMEOUT_HEADER: "1.2"})
    assert status == 504
    slow.reset_faults()
    started = time.monotonic()
    status, body = proxy.get("/targets/slow/metrics", {TIMEOUT_HEADER: "1.2"})
    assert status == 200, body
    assert b"vllm:num_requests_running" in body
    assert time.monotonic() - started < 1.0
    # The state change is logged once, as a recovery.
    wait_until(lambda: "target slow: recovered" in proxy.logs(), 2, message=proxy.logs)
    assert slow.wait_idle(1.0)
