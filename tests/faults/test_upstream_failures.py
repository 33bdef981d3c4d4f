"""Every way a deployment can fail gives a clean answer, a counted kind, no traceback, no collateral.

One proxy process serves one target per fault, each backed by its own real HTTP server on loopback
(or by nothing at all, for "connection refused"), plus a healthy target. Each case scrapes its
faulty target while the healthy one is scraped concurrently.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from testkit.cavage import KeyRegistry
from testkit.ports import refused_port
from tests.support.proxy_process import ProxyProcess, sample_value
from tests.support.signed_upstream import FaultMode, SignedUpstream

MAX_RESPONSE_BYTES = 1024 * 1024
KINDS = (
    "timeout",
    "connect",
    "signature_refused",
    "oversized",
    "upstream_status",
    "protocol",
    "busy",
)


@pytest.fixture(scope="module")
def lab(registry, api_key, tmp_path_factory):
    upstreams = {
        "healthy": SignedUpstream(registry),
        "reset": SignedUpstream(registry),
        "garbage": SignedUpstream(registry),
        "oversized": SignedUpstream(registry),
        "oversized-stream": SignedUpstream(registry),
        "notauth": SignedUpstream(KeyRegistry()),  # the gateway does not know our key
        "error500": SignedUpstream(registry),
        "goes-down": SignedUpstream(registry),
    }
    upstreams["reset"].set_faults(mode=FaultMode.RESET_MID_BODY)
    upstreams["garbage"].set_faults(mode=FaultMode.GARBAGE)
    upstreams["oversized"].set_faults(
        mode=FaultMode.OVERSIZED, oversized_bytes=4 * MAX_RESPONSE_BYTES
    )
    upstreams["oversized-stream"].set_faults(
        mode=FaultMode.OVERSIZED,
        oversized_bytes=4 * MAX_RESPONSE_BYTES,
        oversized_declares_length=False,
    )
    upstreams["error500"].set_faults(mode=FaultMode.STATUS, status=500)
    targets = [f"{name}={upstream.url}" for name, upstream in upstreams.items()]
    env = {
        "OCI_CONFIG_FILE": str(api_key.config_path),
        "MAX_RESPONSE_BYTES": str(MAX_RESPONSE_BYTES),
        "UPSTREAM_TIMEOUT_SECONDS": "5",
    }
    try:
        # Held for the whole module, so nothing can start listening on the refused target's port.
        with refused_port() as refused:
            targets.append(f"refused=http://127.0.0.1:{refused}/metrics")
            env["TARGETS"] = ",".join(targets)
            with ProxyProcess(env, work_dir=tmp_path_factory.mktemp("proxy")) as proxy:
                yield proxy, upstreams
    finally:
        for upstream in upstreams.values():
            upstream.close()


def _failures(proxy: ProxyProcess, deployment: str) -> dict[str, float]:
    text = proxy.metrics()
    return {
        kind: sample_value(
            text, "aqua_proxy_scrape_failures_total", {"deployment": deployment, "kind": kind}
        )
        for kind in KINDS
    }


async def _scrape_with_healthy_neighbour(proxy: ProxyProcess, target: str, count: int):
    """`count` scrapes of `target` (one after the other) while `healthy` is scraped in a loop."""
    done = asyncio.Event()

    async def neighbour(client: httpx.AsyncClient):
        seen = []
        while not done.is_set():
            response = await client.get("/targets/healthy/metrics")
            seen.append((response.status_code, b"vllm:num_requests_running" in response.content))
            await asyncio.sleep(0.01)
        return seen

    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
        healthy = asyncio.create_task(neighbour(client))
        responses = []
        for _ in range(count):
            responses.append(
                await client.get(
                    f"/targets/{target}/metrics",
                    headers={"x-prometheus-scrape-timeout-seconds": "10"},
                )
            )
        await asyncio.sleep(0.1)
        done.set()
        return responses, await healthy


CASES = [
    # target, kind counted, text the one-line body must contain
    ("refused", "connect", "cannot connect"),
    ("reset", "protocol", "broke the HTTP exchange"),
    ("garbage", "protocol", "broke the HTTP exchange"),
    ("oversized", "oversized", f"larger than MAX_RESPONSE_BYTES ({MAX_RESPONSE_BYTES} bytes)"),
    ("oversized-stream", "oversized", "larger than MAX_RESPONSE_BYTES"),
    ("notauth", "signature_refused", "upstream answered 404 NotAuthorizedOrNotFound"),
    ("error500", "upstream_status", "upstream answered 500"),
]


@pytest.mark.parametrize(("target", "kind", "text"), CASES, ids=[case[0] for case in CASES])
def test_a_failing_deployment_gets_a_clean_counted_error(lab, target, kind, text):
    proxy, upstreams = lab
    before = _failures(proxy, target)
    healthy_before = _failures(proxy, "healthy")
    responses, neighbour = asyncio.run(_scrape_with_healthy_neighbour(proxy, target, 3))

    for response in responses:
        assert response.status_code == 502, (response.status_code, response.text)
        body = response.text
        assert body.startswith(f"aqua-metrics: target {target}: "), body
        assert text in body, body
        assert body.count("\n") == 1 and body.endswith("\n"), "one line"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "content-encoding" not in response.headers
    after = _failures(proxy, target)
    counted = {k: after[k] - before[k] for k in KINDS if after[k] != before[k]}
    assert counted == {kind: 3}, counted

    assert neighbour, "the healthy deployment was not scraped meanwhile"
    assert all(seen == (200, True) for seen in neighbour), neighbour
    assert _failures(proxy, "healthy") == healthy_before

    logs = proxy.logs()
    assert "Traceback" not in logs, logs
    assert " ERROR " not in logs, logs
    # The state change is logged once, not once per scrape.
    assert logs.count(f"target {target}: failing ({kind}") == 1, logs
    if target != "refused":
        assert all(r.target == upstreams[target].metrics_path for r in upstreams[target].requests)


def test_a_deployment_that_goes_down_is_reported_and_the_proxy_keeps_serving(lab):
    proxy, upstreams = lab
    down = upstreams["goes-down"]
    ok = proxy.get("/targets/goes-down/metrics")
    assert ok[0] == 200, ok
    down.set_faults(refuse_after=0)  # every request from now on: reset, and the listener closes
    down.stop_listening()
    before = _failures(proxy, "goes-down")
    responses, neighbour = asyncio.run(_scrape_with_healthy_neighbour(proxy, "goes-down", 3))
    assert [r.status_code for r in responses] == [502, 502, 502], [r.text for r in responses]
    after = _failures(proxy, "goes-down")
    counted = {k: after[k] - before[k] for k in KINDS if after[k] != before[k]}
    # A kept-alive connection may be reset first; from then on, connections are refused.
    assert sum(counted.values()) == 3 and set(counted) <= {"connect", "protocol"}, counted
    assert counted.get("connect", 0) >= 2, counted
    assert "cannot connect" in responses[-1].text
    assert neighbour and all(seen == (200, True) for seen in neighbour), neighbour
    assert "Traceback" not in proxy.logs()
    status, body = proxy.get("/readyz")
    assert status == 200, body
