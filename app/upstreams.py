"""The HTTP client of each target: a pooled, signing client over the network, or a simulation's.

Deployments usually share one gateway host, so a single pool would grow to one connection per
deployment, and httpcore 1.0 walks its whole pool on every request (encode/httpcore#1035): at 100
concurrent scrapes that cost 9 ms of CPU per scrape instead of 1 ms. Separate pools also keep a
stuck deployment from occupying connections the others need.

The target set is live (discovery adds and removes deployments), so clients are created on first
use, keyed by name AND URL (a renamed or moved deployment never reuses another's pool), and closed
when their target leaves the set (`retain`).

A demo target's client uses its `DemoTransport` and never signs: the demo needs no credentials,
and none of its requests can leave the process. This is the only place that tells the two apart;
the forwarder sends through whichever client it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from app.demo import demo_transport
from app.settings import ProxySettings
from app.targets import Target, is_demo_url


class UpstreamClients:
    """Clients by (target name, URL). A `transport` given by tests replaces the network for every
    non-demo target (one client shared by all of them)."""

    def __init__(
        self,
        proxy: ProxySettings,
        auth: httpx.Auth | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth = auth
        self._demo_outages = proxy.demo_outages
        self._timeout = httpx.Timeout(
            proxy.upstream_timeout_seconds, connect=proxy.connect_timeout_seconds
        )
        self._limits = httpx.Limits(
            max_connections=proxy.max_inflight_per_target,
            max_keepalive_connections=proxy.max_inflight_per_target,
            keepalive_expiry=30.0,
        )
        self._verify = httpx.create_ssl_context()
        self._shared = (
            httpx.AsyncClient(
                transport=transport, auth=auth, timeout=self._timeout, follow_redirects=False
            )
            if transport is not None
            else None
        )
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._clients)

    def client_for(self, target: Target) -> httpx.AsyncClient:
        """The client for `target`, created on first use."""
        key = (target.name, target.url)
        client = self._clients.get(key)
        if client is None:
            client = self._build(target)
            self._clients[key] = client
        return client

    def _build(self, target: Target) -> httpx.AsyncClient:
        if is_demo_url(target.url):
            return httpx.AsyncClient(
                transport=demo_transport(target, self._demo_outages),
                timeout=self._timeout,
                follow_redirects=False,
            )
        if self._shared is not None:
            return self._shared
        return httpx.AsyncClient(
            auth=self._auth,
            limits=self._limits,
            timeout=self._timeout,
            verify=self._verify,
            follow_redirects=False,
        )

    def retain(self, targets: Iterable[Target]) -> None:
        """Close (in the background, on the running loop) the clients of every target not in
        `targets`; a scrape still in flight on one of them fails, as its target is gone."""
        keep = {(target.name, target.url) for target in targets}
        for key in [key for key in self._clients if key not in keep]:
            client = self._clients.pop(key)
            if client is not self._shared:
                task = asyncio.get_running_loop().create_task(client.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    @staticmethod
    async def close_overrun_connections(client: httpx.AsyncClient) -> None:
        """Close the idle pooled connections holding bytes past the end of their last response.

        A deployment that sends more than its Content-Length leaves the excess in the HTTP/1.1
        parser's buffer; httpcore (1.0) keeps the connection for the next request, which would
        then read the excess as its response (a forged page). httpcore offers no public way to see
        that buffer, so this looks at h11's `trailing_data` through the pool, and does nothing for
        transports without one (the demo's, tests' mocks). Called after every upstream response.
        """
        pool = getattr(getattr(client, "_transport", None), "_pool", None)
        for connection in list(getattr(pool, "connections", ())):
            parser = getattr(getattr(connection, "_connection", None), "_h11_state", None)
            if parser is not None and connection.is_idle() and parser.trailing_data[0]:
                await connection.aclose()

    async def aclose(self) -> None:
        """Close every client (at shutdown)."""
        clients = {id(client): client for client in self._clients.values()}
        if self._shared is not None:
            clients[id(self._shared)] = self._shared
        self._clients.clear()
        for client in clients.values():
            await client.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
