"""The demo as an httpx transport: a simulated deployment answers its URL inside this process.

A demo target is an ordinary `Target` whose URL lies under `http://demo.invalid/` (a domain that
never resolves). Its client uses a `DemoTransport` instead of the network and no signing, so a demo
scrape runs through the same forwarder, limits, metrics and failure mapping as a real one, and no
request of it can ever leave the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import httpx

from app.demo.exposition import DEMO_CONTENT_TYPE, DemoDeployment
from app.demo.fleet import OutageSchedule, demo_member
from app.demo.pool import replica_pool
from app.targets import Target


class MetricsPage(Protocol):
    """Anything that renders a `/metrics` page: one simulated deployment, or several replicas
    behind one URL (`app.demo.pool.ReplicaPool`, answering as a load balancer would)."""

    def render(self) -> bytes: ...


class _Body(httpx.AsyncByteStream):
    """A body not yet read, as a network response's is (the forwarder streams every body)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body


class DemoTransport(httpx.AsyncBaseTransport):
    """Serves one simulated deployment's `/metrics` page at exactly one URL.

    GET of that URL renders the page (in a worker thread: rendering is CPU work); any other path
    is 404 and any other method 405, as vLLM's server answers. A URL on another host is refused
    with a connect error, so a client misconfigured with this transport fails loudly. During an
    outage of `outages` (time counted from construction) the deployment is unreachable: even
    outages answer 503, odd ones refuse the connection.
    """

    def __init__(
        self,
        url: str,
        page: MetricsPage,
        outages: OutageSchedule | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = httpx.URL(url)
        self._page = page
        self._outages = outages
        self._clock = clock
        self._started = clock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (url.scheme, url.host, url.port) != (self._url.scheme, self._url.host, self._url.port):
            raise httpx.ConnectError(f"the demo transport serves only {self._url}", request=request)
        outage = self._outages.outage_at(self._clock() - self._started) if self._outages else None
        if outage is not None and outage % 2:
            raise httpx.ConnectError("simulated outage: connection refused", request=request)
        if outage is not None:
            body = b'{"code":"ServiceUnavailable","message":"simulated outage"}'
            return _response(request, 503, body, "application/json")
        if url.path != self._url.path:
            return _response(request, 404, b'{"detail":"Not Found"}', "application/json")
        if request.method != "GET":
            return _response(request, 405, b'{"detail":"Method Not Allowed"}', "application/json")
        body = await asyncio.to_thread(self._page.render)
        return _response(request, 200, body, DEMO_CONTENT_TYPE)


def _response(
    request: httpx.Request, status: int, body: bytes, content_type: str
) -> httpx.Response:
    headers = {"content-type": content_type, "content-length": str(len(body))}
    return httpx.Response(status, headers=headers, stream=_Body(body), request=request)


def demo_transport(
    target: Target,
    outages: OutageSchedule | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DemoTransport:
    """The transport of one demo target: its fleet member's simulation (profile, seed; one per
    replica) and, for the flaky member, `outages`. A demo target that is no fleet member gets the
    default engine."""
    member = demo_member(target.name)
    if member is None:
        return DemoTransport(target.url, DemoDeployment(clock=clock), clock=clock)
    page: MetricsPage
    if member.replicas > 1:
        page = replica_pool(
            member.served_model_name,
            member.replicas,
            profile=member.profile,
            seed=member.seed,
            clock=clock,
        )
    else:
        page = DemoDeployment(
            member.served_model_name, profile=member.profile, seed=member.seed, clock=clock
        )
    return DemoTransport(target.url, page, outages if member.flaky else None, clock)
