"""1,000 concurrent requests to the proxy process: nothing fails beyond the configured limits, memory
stays bounded, and the log does not grow with the load.

The burst opens every connection first, then sends every request at once, so all 1,000 are in the
proxy together. The configured limit is MAX_INFLIGHT_PER_TARGET (4): a scrape beyond it is answered
503 (busy) at once; everything else must be 200. CI runs 2 bursts; AQUA_FULL_SOAK=1 runs 10.

Memory bound, justified: the proxy keeps no per-request state after answering, so RSS after a burst
may only grow by what serving 1,000 connections at once needs (h11 connection, ASGI scope, task and
buffers: tens of KiB each, so at most ~40 MiB, which CPython's allocator may keep for reuse), and a
second burst must reuse that memory: growth between bursts stays under 8 MiB (a leak of 8 KiB per
request would already exceed it). The issue's absolute target (under 100 MiB) applies throughout.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import httpx
import pytest

from testkit.waiting import wait_until
from tests.support.counting_upstream import CountingUpstream
from tests.support.proxy_process import ProxyProcess, sample_value
from tests.support.raw_http import parse_response

FULL = os.environ.get("AQUA_FULL_SOAK") == "1"
BURSTS = 10 if FULL else 2
CONCURRENT = 1000
MAX_INFLIGHT = 4
MiB = 1024 * 1024
FIRST_BURST_GROWTH = 40 * MiB
LATER_BURST_GROWTH = 8 * MiB
RSS_CEILING = 100 * MiB

# What each of the 1,000 requests asks for (cycled): mostly scrapes of the two deployments.
PATHS = [
    "/targets/slowish/metrics",
    "/targets/fast/metrics",
    "/targets/slowish/metrics",
    "/targets/fast/metrics",
    "/metrics",
    "/targets/slowish/metrics",
    "/targets/fast/metrics",
    "/sd",
    "/targets/fast/metrics",
    "/healthz",
]


@pytest.fixture(scope="module")
def lab(registry, api_key, tmp_path_factory):
    with CountingUpstream(registry) as slowish, CountingUpstream(registry) as fast:
        slowish.set_faults(delay_seconds=0.2)  # keeps its slots busy during the burst
        env = {
            "TARGETS": f"slowish={slowish.url},fast={fast.url}",
            "OCI_CONFIG_FILE": str(api_key.config_path),
            "MAX_INFLIGHT_PER_TARGET": str(MAX_INFLIGHT),
        }
        with ProxyProcess(env, work_dir=tmp_path_factory.mktemp("proxy")) as proxy:
            yield proxy, {"slowish": slowish, "fast": fast}


async def _burst(port: int, count: int) -> list[tuple[str, bytes | Exception]]:
    """Open `count` connections, then send one request on each at the same moment."""
    connections = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port) for _ in range(count))
    )
    go = asyncio.Event()

    async def one(index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        path = PATHS[index % len(PATHS)]
        try:
            await go.wait()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: proxy\r\n"
                "X-Prometheus-Scrape-Timeout-Seconds: 10\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            return path, await asyncio.wait_for(reader.read(), timeout=60)
        except Exception as exc:  # reported, never swallowed: the test fails on it
            return path, exc
        finally:
            writer.close()

    tasks = [
        asyncio.create_task(one(i, reader, writer))
        for i, (reader, writer) in enumerate(connections)
    ]
    await asyncio.sleep(0.05)
    go.set()
    return await asyncio.gather(*tasks)


def _check_burst(results) -> Counter:
    outcomes: Counter = Counter()
    for path, raw in results:
        assert not isinstance(raw, Exception), f"{path}: {raw!r}"
        response = parse_response(raw)
        outcomes[(path, response.status)] += 1
        if response.status == 503:
            assert path.startswith("/targets/"), f"{path} answered 503"
            assert b"MAX_INFLIGHT_PER_TARGET" in response.body, response.body
        else:
            assert response.status == 200, (path, response.status, response.body[:200])
        if path.startswith("/targets/") and response.status == 200:
            assert b"vllm:num_requests_running" in response.body
    return outcomes


def test_1000_concurrent_requests_stay_within_the_configured_limits(lab):
    proxy, upstreams = lab
    for _ in range(3):  # warm up: imports, pools, first allocations
        for path in PATHS:
            assert proxy.get(path)[0] == 200
    baseline = proxy.rss_bytes()
    after: list[int] = []
    for _ in range(BURSTS):
        upstreams["slowish"].reset_peak()
        started = time.monotonic()
        outcomes = _check_burst(asyncio.run(_burst(proxy.port, CONCURRENT)))
        assert time.monotonic() - started < 60
        for name in ("slowish", "fast"):
            assert outcomes[(f"/targets/{name}/metrics", 200)] >= 1, outcomes
        # Never more than the limit upstream at once.
        assert upstreams["slowish"].peak_open_requests <= MAX_INFLIGHT
        assert upstreams["fast"].peak_open_requests <= MAX_INFLIGHT
        assert sum(outcomes.values()) == CONCURRENT
        after.append(proxy.rss_bytes())

    text = proxy.metrics()
    for name in ("slowish", "fast"):
        assert sample_value(text, "aqua_proxy_inflight_requests", {"deployment": name}) == 0
        counted = {
            kind
            for kind in ("timeout", "connect", "protocol", "oversized", "upstream_status")
            if sample_value(
                text, "aqua_proxy_scrape_failures_total", {"deployment": name, "kind": kind}
            )
        }
        assert not counted, f"{name}: failures beyond the limit: {counted}"
    assert "Traceback" not in proxy.logs()
    mib = [round(v / MiB, 1) for v in [baseline, *after]]
    assert after[0] - baseline < FIRST_BURST_GROWTH, f"RSS MiB: {mib}"
    assert after[-1] - after[0] < LATER_BURST_GROWTH, f"RSS grows burst after burst: {mib}"
    assert max(after) < RSS_CEILING, f"RSS MiB: {mib}"


def test_scrapes_do_not_grow_the_log(lab):
    """State changes are logged, scrapes are not: 200 successful scrapes add no log line."""
    proxy, _ = lab
    assert proxy.get("/targets/fast/metrics")[0] == 200

    def fast_logged_as_ok() -> bool:
        """`fast` turning ok is a state change the proxy logs; wait until that line is on disk."""
        states = [line for line in proxy.logs().splitlines() if "target fast: " in line]
        return bool(states) and states[-1].endswith(("scraping ok", "recovered"))

    wait_until(fast_logged_as_ok, 10, message=proxy.logs)
    lines_before = len(proxy.logs().splitlines())

    async def steady():
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            for _ in range(50):
                responses = await asyncio.gather(
                    *(client.get("/targets/fast/metrics") for _ in range(MAX_INFLIGHT))
                )
                assert [r.status_code for r in responses] == [200] * MAX_INFLIGHT

    asyncio.run(steady())
    # Absence cannot be awaited: give a line written late a moment to reach the file.
    time.sleep(0.2)
    added = proxy.logs().splitlines()[lines_before:]
    assert not added, f"{len(added)} log lines for 200 scrapes, e.g.:\n" + "\n".join(added[:3])
