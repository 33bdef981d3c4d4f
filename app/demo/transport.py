"""The demo as an httpx transport: a simulated deployment answers its URL inside this process.

A demo target is an ordinary `Target` whose URL lies under `http://demo.invalid/` (a domain that
never resolves). Its client uses a `DemoTransport` instead of the network and no signing, so a demo
scrape runs through the same forwarder, limits, metrics and failure mapping as a real one, and no
request of it can ever leave the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from app.demo.exposition import DEMO_CONTENT_TYPE, DemoDeployment, SimulatedServer
from app.targets import Target, is_demo_url


class DemoTransport(httpx.AsyncBaseTransport):
    """Serves one simulated deployment's `/metrics` page at exactly one URL.

    GET of that URL renders the page (in a worker thread: rendering is CPU work); any other path
    is 404 and any other method 405, as vLLM's server answers. A URL on another host is refused
    with a connect error, so a client misconfigured with this transport fails loudly.
    """

    def __init__(self, url: str, deployment: SimulatedServer) -> None:
        self._url = httpx.URL(url)
        self._deployment = deployment

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (url.scheme, url.host, url.port) != (self._url.scheme, self._url.host, self._url.port):
            raise httpx.ConnectError(f"the demo transport serves only {self._url}", request=request)
        if url.path != self._url.path:
            return httpx.Response(404, content=b'{"detail":"Not Found"}', request=request)
        if request.method != "GET":
            return httpx.Response(405, content=b'{"detail":"Method Not Allowed"}', request=request)
        body = await asyncio.to_thread(self._deployment.render)
        return httpx.Response(
            200, headers={"content-type": DEMO_CONTENT_TYPE}, content=body, request=request
        )


def demo_transports(targets: Iterable[Target]) -> dict[str, DemoTransport]:
    """A transport with its own simulation for each target whose URL is a demo URL, by name."""
    return {
        target.name: DemoTransport(target.url, DemoDeployment())
        for target in targets
        if is_demo_url(target.url)
    }
