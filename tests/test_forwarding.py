"""The proxy's HTTP edges, with respx standing in for the deployment (unit level).

respx runs with assert_all_mocked: any upstream request other than the mocked, configured URL
raises, so every test here also proves nothing else is contacted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import re
from contextlib import asynccontextmanager

import httpx
import pytest
import respx

from app.demo import DemoDeployment, DemoTransport
from app.demo.fleet import demo_targets
from app.forwarding import Forwarder
from app.proxy_metrics import create_proxy_metrics
from app.server import create_app
from app.settings import load_settings
from app.targets import Target, demo_target
from app.upstreams import UpstreamClients

UPSTREAM = "http://127.0.0.1:9/metrics"
OTHER = "http://127.0.0.1:10/metrics"
BODY = b"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 1\n"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


@asynccontextmanager
async def proxy(**env):
    settings = load_settings({"TARGETS": f"a={UPSTREAM},b={OTHER}", "OCI_AUTH": "none", **env})
    app = create_app(settings, None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            client.app = app
            yield client


def metric_value(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def upstream():
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def test_only_scrape_headers_go_upstream(upstream):
    route = upstream.get(UPSTREAM).respond(200, content=BODY, headers={"content-type": EXPOSITION})

    async def go():
        async with proxy() as client:
            response = await client.get(
                "/targets/a/metrics?target=http://evil.example/&x=1",
                headers={
                    "authorization": "Bearer inbound-secret",
                    "proxy-authorization": "Basic aW5ib3VuZA==",
                    "cookie": "session=inbound-cookie",
                    "x-forwarded-for": "1.2.3.4",
                    "x-custom": "nope",
                    "accept": "text/plain;version=0.0.4",
                    "accept-encoding": "gzip",
                },
            )
            return response

    response = asyncio.run(go())
    assert response.status_code == 200 and response.content == BODY
    sent = route.calls.last.request
    assert str(sent.url) == UPSTREAM  # the inbound query string never travels
    assert set(sent.headers.keys()) <= {
        "host",
        "accept",
        "accept-encoding",
        "content-length",
        "user-agent",
        "connection",
    }
    assert sent.headers["accept"] == "text/plain;version=0.0.4"
    assert sent.headers["accept-encoding"] == "gzip"
    assert sent.headers["content-length"] == "0"
    assert sent.method == "GET" and sent.content == b""


def test_response_headers_are_honest_and_minimal(upstream):
    upstream.get(UPSTREAM).respond(
        200,
        content=BODY,
        headers={
            "content-type": EXPOSITION,
            "set-cookie": "a=b",
            "x-upstream": "leak",
            "opc-request-id": "abc",
            "keep-alive": "timeout=5",
        },
    )

    async def go():
        async with proxy() as client:
            return await client.get("/targets/a/metrics")

    response = asyncio.run(go())
    assert response.headers["content-type"] == EXPOSITION
    assert "set-cookie" not in response.headers
    assert "x-upstream" not in response.headers and "opc-request-id" not in response.headers
    assert "keep-alive" not in response.headers
    assert "content-encoding" not in response.headers


def test_gzip_from_upstream_is_relayed_byte_for_byte(upstream):
    compressed = gzip.compress(BODY)
    upstream.get(UPSTREAM).respond(
        200, content=compressed, headers={"content-type": EXPOSITION, "content-encoding": "gzip"}
    )

    async def go():
        async with proxy() as client:
            request = client.build_request(
                "GET", "/targets/a/metrics", headers={"accept-encoding": "gzip"}
            )
            response = await client.send(request, stream=True)
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            await response.aclose()
            return response, raw

    response, raw = asyncio.run(go())
    assert response.headers["content-encoding"] == "gzip"
    assert raw == compressed
    assert response.headers["content-length"] == str(len(compressed))
    assert gzip.decompress(raw) == BODY


def test_identity_request_without_accept_encoding_asks_upstream_for_identity(upstream):
    route = upstream.get(UPSTREAM).respond(200, content=BODY, headers={"content-type": EXPOSITION})

    async def go():
        async with proxy() as client:
            request = client.build_request("GET", "/targets/a/metrics")
            del request.headers["accept-encoding"]
            return await client.send(request)

    assert asyncio.run(go()).status_code == 200
    assert route.calls.last.request.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("status", "body", "kind", "expected_status", "fragment"),
    [
        (
            404,
            b'{"code":"NotAuthorizedOrNotFound","message":"x"}',
            "signature_refused",
            502,
            "DATA_SCIENCE_MODEL_DEPLOYMENT_PREDICT",
        ),
        (401, b"", "signature_refused", 502, "OCI refused the request"),
        (404, b"plain not found", "upstream_status", 502, "upstream answered 404"),
        (500, b"boom", "upstream_status", 502, "server error"),
        (429, b"", "upstream_status", 502, "rate limited"),
        (411, b"", "upstream_status", 502, "upstream answered 411"),
        (302, b"", "upstream_status", 502, "upstream answered 302"),
    ],
)
def test_upstream_errors_map_to_one_line_with_a_hint(
    upstream, status, body, kind, expected_status, fragment
):
    headers = {"location": "http://127.0.0.1:11/elsewhere"} if status == 302 else {}
    upstream.get(UPSTREAM).respond(status, content=body, headers=headers)

    async def go():
        async with proxy() as client:
            response = await client.get("/targets/a/metrics")
            own = await client.get("/metrics")
            return response, own.text

    response, own_metrics = asyncio.run(go())
    assert response.status_code == expected_status
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert text.count("\n") == 1 and text.startswith("aqua-metrics: target a: ")
    assert fragment in text
    assert (
        metric_value(
            own_metrics, f'aqua_proxy_scrape_failures_total{{deployment="a",kind="{kind}"}}'
        )
        == 1
    )
    assert (
        metric_value(
            own_metrics, f'aqua_proxy_upstream_responses_total{{code="{status}",deployment="a"}}'
        )
        == 1
    )


def test_response_over_the_cap_is_refused(upstream):
    upstream.get(UPSTREAM).respond(200, content=b"x" * 2048, headers={"content-type": EXPOSITION})

    async def go():
        async with proxy(MAX_RESPONSE_BYTES="1024") as client:
            response = await client.get("/targets/a/metrics")
            return response, (await client.get("/metrics")).text

    response, own = asyncio.run(go())
    assert response.status_code == 502 and "MAX_RESPONSE_BYTES (1024 bytes)" in response.text
    assert (
        metric_value(own, 'aqua_proxy_scrape_failures_total{deployment="a",kind="oversized"}') == 1
    )


def test_streamed_response_over_the_cap_is_refused_without_content_length(upstream):
    async def chunks():
        for _ in range(8):
            yield b"y" * 512

    upstream.get(UPSTREAM).mock(return_value=httpx.Response(200, stream=_AsyncStream(chunks())))

    async def go():
        async with proxy(MAX_RESPONSE_BYTES="1024") as client:
            return await client.get("/targets/a/metrics")

    response = asyncio.run(go())
    assert response.status_code == 502
    assert "MAX_RESPONSE_BYTES (1024 bytes)" in response.text


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, iterator):
        self._iterator = iterator

    async def __aiter__(self):
        async for chunk in self._iterator:
            yield chunk


def test_timeout_answers_504_below_prometheus_scrape_timeout(upstream):
    async def slow(_request):
        await asyncio.sleep(5)
        return httpx.Response(200, content=BODY)

    upstream.get(UPSTREAM).mock(side_effect=slow)

    async def go():
        async with proxy() as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await client.get(
                "/targets/a/metrics", headers={"x-prometheus-scrape-timeout-seconds": "1.5"}
            )
            return response, loop.time() - started, (await client.get("/metrics")).text

    response, elapsed, own = asyncio.run(go())
    assert response.status_code == 504
    assert "within 1s" in response.text
    assert elapsed < 1.5
    assert metric_value(own, 'aqua_proxy_scrape_failures_total{deployment="a",kind="timeout"}') == 1


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (httpx.ConnectError("refused"), "connect", 502),
        (httpx.ConnectTimeout("slow connect"), "connect", 502),
        (httpx.ReadTimeout("slow read"), "timeout", 504),
        (httpx.RemoteProtocolError("garbage"), "protocol", 502),
        (httpx.ReadError("reset"), "protocol", 502),
    ],
)
def test_transport_failures_are_classified(upstream, error, kind, status):
    upstream.get(UPSTREAM).mock(side_effect=error)

    async def go():
        async with proxy() as client:
            response = await client.get("/targets/a/metrics")
            return response, (await client.get("/metrics")).text

    response, own = asyncio.run(go())
    assert response.status_code == status
    assert (
        metric_value(own, f'aqua_proxy_scrape_failures_total{{deployment="a",kind="{kind}"}}') == 1
    )
    assert "Traceback" not in response.text


def test_inflight_limit_per_target_answers_503_and_leaves_other_targets_alone(upstream):
    release = asyncio.Event

    async def go():
        gate = release()

        async def slow(_request):
            await gate.wait()
            return httpx.Response(200, content=BODY, headers={"content-type": EXPOSITION})

        upstream.get(UPSTREAM).mock(side_effect=slow)
        upstream.get(OTHER).respond(200, content=BODY, headers={"content-type": EXPOSITION})
        async with proxy(MAX_INFLIGHT_PER_TARGET="1") as client:
            first = asyncio.create_task(client.get("/targets/a/metrics"))
            await asyncio.sleep(0.05)
            second = await client.get("/targets/a/metrics")
            other = await client.get("/targets/b/metrics")
            gate.set()
            return await first, second, other

    first, second, other = asyncio.run(go())
    assert first.status_code == 200
    assert second.status_code == 503 and "MAX_INFLIGHT_PER_TARGET" in second.text
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/targets/nope/metrics",
        "/targets/a/../b/metrics",
        "/targets/a%2F..%2Fb/metrics",
        "/targets/a/metrics/extra",
        "/targets/a/metrics/",
        "/targets/a/metrics/../../sd",
        "/targets//metrics",
        "/targets/a",
        "/targets/http:%2F%2Fevil.example%2F/metrics",
        "/docs",
        "/openapi.json",
        "/predict/metrics",
        "/",
    ],
)
def test_unknown_paths_never_reach_upstream(upstream, path):
    route = upstream.get(UPSTREAM).respond(200, content=BODY)
    other = upstream.get(OTHER).respond(200, content=BODY)

    async def go():
        async with proxy() as client:
            return await client.get(path)

    response = asyncio.run(go())
    # httpx normalises dot segments client-side; whatever arrives must not be a scrape of "a".
    if response.status_code == 200:
        assert path.startswith("/targets/a/../b") and other.call_count == 1
    else:
        assert response.status_code == 404
    assert route.call_count == 0


def test_methods_other_than_get_are_refused(upstream):
    route = upstream.route().respond(200)

    async def go():
        async with proxy() as client:
            return [
                await client.request(m, "/targets/a/metrics")
                for m in ("POST", "PUT", "DELETE", "PATCH")
            ]

    assert all(r.status_code == 405 for r in asyncio.run(go()))
    assert route.call_count == 0


def test_service_discovery_lists_every_target_with_its_labels():
    async def go():
        async with proxy(SCRAPE_INTERVAL="30s", SCRAPE_TIMEOUT="20s", PROXY_PORT="18080") as client:
            return await client.get("/sd")

    response = asyncio.run(go())
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [
        {
            "targets": ["127.0.0.1:18080"],
            "labels": {
                "__metrics_path__": f"/targets/{name}/metrics",
                "__scrape_interval__": "30s",
                "__scrape_timeout__": "20s",
                "deployment": name,
            },
        }
        for name in ("a", "b")
    ]


def test_health_and_readiness():
    async def go():
        async with proxy() as client:
            return await client.get("/healthz"), await client.get("/readyz")

    healthz, readyz = asyncio.run(go())
    assert healthz.status_code == 200 and readyz.status_code == 200 and readyz.text == "ready\n"


def test_own_metrics_include_process_metrics_and_no_created_series(upstream):
    upstream.get(UPSTREAM).respond(200, content=BODY, headers={"content-type": EXPOSITION})

    async def go():
        async with proxy() as client:
            await client.get("/targets/a/metrics")
            return await client.get("/metrics")

    text = asyncio.run(go()).text
    assert "process_resident_memory_bytes" in text
    assert 'aqua_proxy_scrape_duration_seconds_count{deployment="a"} 1.0' in text
    assert "_created" not in text


# --- the demo: a target like any other, served by its transport ---------------------------------


@asynccontextmanager
async def demo_proxy(**env):
    settings = load_settings({"OCI_AUTH": "none", **env})
    app = create_app(settings, None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            yield client


def test_demo_is_scraped_through_the_forwarder_and_never_the_network(upstream):
    # `upstream` mocks every network transport with no route: any request would raise.
    async def go():
        async with demo_proxy(DEMO_DEPLOYMENTS="1") as client:
            response = await client.get("/targets/demo-chat/metrics")
            return response, (await client.get("/metrics")).text, (await client.get("/sd")).json()

    response, own, sd = asyncio.run(go())
    assert response.status_code == 200
    assert response.headers["content-type"] == EXPOSITION
    # AQUA serves every model as `odsc-llm`; the fleet member's labels say which model it is.
    # demo-chat runs 2 replicas behind its URL: one scrape serves both, each labelled.
    running = re.findall(
        rb'vllm:num_requests_running\{replica="([0-9a-f]+)",engine="0",model_name="odsc-llm"\}',
        response.content,
    )
    assert len(set(running)) == len(running) == 2
    assert not upstream.calls
    # The same accounting as a real deployment's scrape (one upstream response per fetch).
    assert (
        metric_value(own, 'aqua_proxy_upstream_responses_total{code="200",deployment="demo-chat"}')
        >= 2
    )
    assert 'aqua_proxy_scrape_duration_seconds_count{deployment="demo-chat"} 1.0' in own
    assert 'lifecycle_state="ACTIVE"' in own, "the demo fleet is in aqua_deployment_info"
    assert [group["labels"] for group in sd] == [
        {
            "__metrics_path__": "/targets/demo-chat/metrics",
            "__scrape_interval__": "15s",
            "__scrape_timeout__": "10s",
            **demo_targets(1)[0].labels,
        }
    ]


def test_demo_failures_take_the_same_path_as_real_ones(upstream):
    async def go():
        async with demo_proxy(MAX_RESPONSE_BYTES="1024", DEMO_DEPLOYMENTS="1") as client:
            response = await client.get("/targets/demo-chat/metrics")
            return response, (await client.get("/metrics")).text

    response, own = asyncio.run(go())
    assert response.status_code == 502 and "MAX_RESPONSE_BYTES (1024 bytes)" in response.text
    assert (
        metric_value(
            own, 'aqua_proxy_scrape_failures_total{deployment="demo-chat",kind="oversized"}'
        )
        == 1
    )


def test_demo_transport_serves_only_its_own_url():
    demo = DemoTransport("http://demo.invalid/demo/metrics", DemoDeployment(seed=1))

    async def go():
        async with httpx.AsyncClient(transport=demo) as client:
            ok = await client.get("http://demo.invalid/demo/metrics")
            other_path = await client.get("http://demo.invalid/other/metrics")
            post = await client.post("http://demo.invalid/demo/metrics")
            with pytest.raises(httpx.ConnectError):
                await client.get("http://127.0.0.1:9/demo/metrics")
            return ok, other_path, post

    ok, other_path, post = asyncio.run(go())
    assert ok.status_code == 200 and b"vllm:kv_cache_usage_perc" in ok.content
    assert other_path.status_code == 404 and post.status_code == 405
    assert other_path.json() == {"detail": "Not Found"}


def test_demo_clients_never_sign_and_network_clients_do():
    settings = load_settings({"TARGETS": f"a={UPSTREAM}", "OCI_AUTH": "none"})
    proxy_settings = dataclasses.replace(
        settings.proxy, targets=(demo_target(), *settings.proxy.targets)
    )
    auth = httpx.BasicAuth("never", "used")  # stands in for the signing auth
    clients = UpstreamClients(proxy_settings, auth)
    demo, a = (clients.client_for(target) for target in proxy_settings.targets)
    assert demo.auth is None
    assert isinstance(demo._transport, DemoTransport)
    assert a.auth is auth
    assert not isinstance(a._transport, DemoTransport)
    # One client per (name, URL), created once; a target that leaves has its client closed.
    assert clients.client_for(proxy_settings.targets[1]) is a and len(clients) == 2

    async def retain_demo_only():
        clients.retain(proxy_settings.targets[:1])
        await asyncio.sleep(0)
        await clients.aclose()

    asyncio.run(retain_demo_only())
    assert a.is_closed and demo.is_closed


# --- several replicas behind one endpoint (issue 11) --------------------------------------------


def replica_page(start_time: float, running: int) -> bytes:
    return (
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
        "# TYPE process_start_time_seconds gauge\n"
        f"process_start_time_seconds {start_time!r}\n"
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{model_name="m"}} {float(running)!r}\n'
    ).encode()


class Replicas:
    """A respx side effect answering as each replica in turn (a load balancer's round robin)."""

    def __init__(self, *pages: bytes, fail_after: int | None = None) -> None:
        self.pages = pages
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, _request):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            return httpx.Response(500, content=b"boom")
        page = self.pages[(self.calls - 1) % len(self.pages)]
        return httpx.Response(200, content=page, headers={"content-type": EXPOSITION})


@asynccontextmanager
async def proxy_with_instances(instance_count: int | None, **env):
    settings = load_settings({"TARGETS": f"a={UPSTREAM}", "OCI_AUTH": "none", **env})
    targets = tuple(
        dataclasses.replace(target, instance_count=instance_count)
        for target in settings.proxy.targets
    )
    settings = dataclasses.replace(
        settings, proxy=dataclasses.replace(settings.proxy, targets=targets)
    )
    app = create_app(settings, None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            yield client


def _scrape_twice(instance_count, replicas, **env):
    async def go():
        async with proxy_with_instances(instance_count, **env) as client:
            first = await client.get("/targets/a/metrics")
            second = await client.get("/targets/a/metrics")
            return first, second, (await client.get("/metrics")).text

    return asyncio.run(go())


def test_a_single_replica_costs_one_fetch_and_is_relayed_byte_for_byte(upstream):
    page = replica_page(1_795_000_000.0, 3)
    replicas = Replicas(page)
    upstream.get(UPSTREAM).mock(side_effect=replicas)
    first, second, own = _scrape_twice(None, replicas)
    assert first.content == page and second.content == page
    assert replicas.calls == 2
    assert metric_value(own, 'aqua_proxy_scrape_fetches_sum{deployment="a"}') == 2
    assert metric_value(own, 'aqua_proxy_replicas_served{deployment="a"}') == 1
    assert metric_value(own, 'aqua_proxy_scrape_stops_total{deployment="a",reason="complete"}') == 2


def test_several_replicas_are_served_together_each_labelled(upstream):
    pages = [replica_page(1_795_000_000.0 + 100 * i, i + 2) for i in range(3)]
    replicas = Replicas(*pages)
    upstream.get(UPSTREAM).mock(side_effect=replicas)
    first, _second, own = _scrape_twice(3, replicas)
    assert first.status_code == 200
    assert first.headers["content-type"] == EXPOSITION
    running = [line for line in first.text.splitlines() if line.startswith("vllm:num_requests")]
    assert len(running) == 3 and all('{replica="' in line for line in running)
    assert sorted(float(line.rsplit(" ", 1)[1]) for line in running) == [2.0, 3.0, 4.0]
    assert first.text.count("# TYPE vllm:num_requests_running gauge") == 1
    assert metric_value(own, 'aqua_proxy_replicas_served{deployment="a"}') == 3
    assert metric_value(own, 'aqua_proxy_replicas_expected{deployment="a"}') == 3
    # Round robin meets the 3 replicas in 3 fetches, scrape after scrape.
    assert replicas.calls == 6
    assert metric_value(own, 'aqua_proxy_scrape_fetches_sum{deployment="a"}') == 6


def test_the_fetch_cap_bounds_the_requests_of_one_scrape(upstream):
    pages = [replica_page(1_795_000_000.0 + 100 * i, 1) for i in range(4)]
    replicas = Replicas(*pages)
    upstream.get(UPSTREAM).mock(side_effect=replicas)
    first, _second, own = _scrape_twice(4, replicas, REPLICA_FETCH_CAP="2")
    assert first.status_code == 200
    assert replicas.calls == 4  # two scrapes, two fetches each
    assert (
        metric_value(own, 'aqua_proxy_scrape_stops_total{deployment="a",reason="fetch_cap"}') == 2
    )
    # The second scrape serves the two replicas met by the first from their recent pages.
    assert metric_value(own, 'aqua_proxy_replicas_served{deployment="a"}') == 4


def test_a_failure_after_some_pages_serves_those_pages(upstream):
    pages = [replica_page(1_795_000_000.0 + 100 * i, i + 1) for i in range(2)]
    replicas = Replicas(*pages, fail_after=1)
    upstream.get(UPSTREAM).mock(side_effect=replicas)

    async def go():
        async with proxy_with_instances(2) as client:
            response = await client.get("/targets/a/metrics")
            return response, (await client.get("/metrics")).text

    response, own = asyncio.run(go())
    assert response.status_code == 200 and b'replica="' in response.content
    assert (
        metric_value(own, 'aqua_proxy_scrape_stops_total{deployment="a",reason="fetch_failed"}')
        == 1
    )
    # The failed attempt is still counted as an upstream response, not as a failed scrape.
    assert metric_value(own, 'aqua_proxy_upstream_responses_total{code="500",deployment="a"}') == 1
    assert "aqua_proxy_scrape_failures_total{" not in own


def test_concurrent_scrapes_of_one_target_gather_one_at_a_time(upstream):
    pages = [replica_page(1_795_000_000.0 + 100 * i, 1) for i in range(2)]
    in_flight = 0
    most = 0

    async def answer(request):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return replicas(request)

    replicas = Replicas(*pages)
    upstream.get(UPSTREAM).mock(side_effect=answer)

    async def go():
        async with proxy_with_instances(2) as client:
            return await asyncio.gather(*(client.get("/targets/a/metrics") for _ in range(3)))

    responses = asyncio.run(go())
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert most == 1


def test_a_target_not_known_at_start_gets_its_own_replica_state(upstream):
    # Discovery may add a target after the forwarder was built.
    pages = [replica_page(1_795_000_000.0 + 100 * i, 1) for i in range(2)]
    replicas = Replicas(*pages)
    upstream.get(UPSTREAM).mock(side_effect=replicas)
    late = Target("late", UPSTREAM, labels={"deployment": "late"}, instance_count=2)

    proxy = load_settings({"TARGETS": f"a={UPSTREAM}", "OCI_AUTH": "none"}).proxy

    async def go():
        clients = UpstreamClients(proxy, None)
        forwarder = Forwarder(
            clients=clients,
            metrics=create_proxy_metrics(),
            upstream_timeout_seconds=5,
            max_response_bytes=1 << 20,
            max_inflight_per_target=1,
        )
        try:
            return await forwarder.scrape(
                late, accept=None, accept_encoding=None, scrape_timeout_header=None
            )
        finally:
            await clients.aclose()

    outcome = asyncio.run(go())
    assert outcome.status == 200 and outcome.body.count(b'replica="') == 4
    assert replicas.calls == 2
