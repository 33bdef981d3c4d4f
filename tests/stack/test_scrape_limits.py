"""A deployment cannot exhaust Prometheus' memory (issue 16), seen through the real stack.

One deployment answers with a gzip bomb: 256 KiB on the wire, 256 MiB unpacked (4x the default
SCRAPE_BODY_SIZE_LIMIT; before the limit it took Prometheus from ~70 MiB to gigabytes). Another
answers with more samples than SCRAPE_SAMPLE_LIMIT. Prometheus' peak resident memory (VmHWM) stays
small, both scrapes fail with the reason on record, and a well-behaved neighbour keeps being
scraped.
"""

from __future__ import annotations

import json
import urllib.request
import zlib

import pytest

from testkit.stack import Stack
from testkit.waiting import wait_until
from tests.support.raw_upstream import RawUpstream, gzip_bomb, http_response
from tests.support.signed_upstream import default_metrics_body

pytestmark = pytest.mark.stack

SAMPLE_LIMIT = 500
PEAK_RSS_LIMIT = 400 * 1024 * 1024


def _wide_page(samples: int) -> bytes:
    lines = [b"# TYPE vllm:wide gauge\n"]
    lines += [f'vllm:wide{{i="{i}"}} 1\n'.encode() for i in range(samples)]
    return b"".join(lines)


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def hostile_upstream():
    bomb = gzip_bomb()
    pages = {
        b"/bomb/": (bomb, {"Content-Encoding": "gzip"}),
        b"/wide/": (
            zlib.compress(_wide_page(2 * SAMPLE_LIMIT), 6, 31),
            {"Content-Encoding": "gzip"},
        ),
        b"/fine/": (default_metrics_body(), {}),
    }

    def respond(head: bytes) -> bytes:
        target = head.split(b"\r\n")[0]
        body, headers = next(page for prefix, page in pages.items() if prefix in target)
        return http_response(body, {"Content-Type": "text/plain; version=0.0.4", **headers})

    with RawUpstream(respond) as upstream:
        yield upstream


def _target_errors(stack: Stack) -> dict[str, str]:
    with urllib.request.urlopen(f"{stack.prometheus_url}/api/v1/targets", timeout=10) as answer:
        active = json.load(answer)["data"]["activeTargets"]
    return {
        t["labels"].get("deployment", ""): t["lastError"]
        for t in active
        if t["labels"]["job"] == "vllm"
    }


def test_a_gzip_bomb_and_too_many_samples_fail_their_scrapes_not_prometheus(hostile_upstream):
    targets = ",".join(
        f"{name}={hostile_upstream.url(f'/{name}/metrics')}" for name in ("bomb", "wide", "fine")
    )
    stack = Stack.create(
        TARGETS=targets,
        SCRAPE_INTERVAL="2s",
        SCRAPE_TIMEOUT="2s",
        SCRAPE_SAMPLE_LIMIT=str(SAMPLE_LIMIT),
    ).start()
    try:
        stack.wait_for('up{deployment="fine"} == 1')
        stack.wait_for(
            'aqua_proxy_scrape_failures_total{deployment="bomb",kind="oversized"} >= 3', timeout=60
        )
        stack.wait_for('up{deployment="bomb"} == 0')
        stack.wait_for('up{deployment="wide"} == 0')
        errors: dict[str, str] = {}

        def reasons_recorded() -> bool:
            nonlocal errors
            errors = _target_errors(stack)
            return "sample limit" in errors.get("wide", "") and "502" in errors.get("bomb", "")

        wait_until(reasons_recorded, 30, 0.5, lambda: f"target errors: {errors}")
        assert errors["fine"] == ""
        peak = _peak_rss(stack.supervisor_pid("prometheus"))
        assert peak < PEAK_RSS_LIMIT, f"Prometheus peaked at {peak / 2**20:.0f} MiB"
        assert stack.query('vllm:num_requests_running{deployment="fine"}')
    finally:
        stack.cleanup()
