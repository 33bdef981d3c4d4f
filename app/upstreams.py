"""One HTTP client per target: a pooled, signing client over the network, or a simulation's.

Deployments usually share one gateway host, so a single pool would grow to one connection per
deployment, and httpcore 1.0 walks its whole pool on every request (encode/httpcore#1035): at 100
concurrent scrapes that cost 9 ms of CPU per scrape instead of 1 ms. Separate pools also keep a
stuck deployment from occupying connections the others need.

A demo target's client uses its `DemoTransport` and never signs: the demo needs no credentials,
and none of its requests can leave the process. This is the only place that tells the two apart;
the forwarder sends through whichever client it is given.
"""

from __future__ import annotations

import httpx

from app.demo import demo_transports
from app.settings import ProxySettings


def upstream_clients(
    proxy: ProxySettings,
    auth: httpx.Auth | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, httpx.AsyncClient]:
    """A client for each target, by name. A `transport` given by tests replaces the network for
    every non-demo target (one client shared by all of them)."""
    timeout = httpx.Timeout(proxy.upstream_timeout_seconds, connect=proxy.connect_timeout_seconds)
    simulated = demo_transports(proxy.targets, proxy.demo_outages)
    clients = {
        name: httpx.AsyncClient(transport=demo, timeout=timeout, follow_redirects=False)
        for name, demo in simulated.items()
    }
    network = [target for target in proxy.targets if target.name not in simulated]
    if transport is not None:
        shared = httpx.AsyncClient(
            transport=transport, auth=auth, timeout=timeout, follow_redirects=False
        )
        return clients | {target.name: shared for target in network}
    limits = httpx.Limits(
        max_connections=proxy.max_inflight_per_target,
        max_keepalive_connections=proxy.max_inflight_per_target,
        keepalive_expiry=30.0,
    )
    verify = httpx.create_ssl_context()
    return clients | {
        target.name: httpx.AsyncClient(
            auth=auth, limits=limits, timeout=timeout, verify=verify, follow_redirects=False
        )
        for target in network
    }
