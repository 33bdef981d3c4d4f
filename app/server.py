"""The proxy's HTTP surface: fixed routes only, everything else 404.

GET /targets/{name}/metrics  signed scrape of that target's configured URL
GET /sd                      Prometheus http_sd: one group per target
GET /metrics                 the proxy's own metrics
GET /healthz, /readyz        alive; ready (credentials usable, targets configured)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import __version__
from app.credentials import Credentials
from app.demo import DemoDeployment
from app.forwarding import Forwarder
from app.oci_config import AuthMode
from app.proxy_metrics import ProxyMetrics, create_proxy_metrics
from app.settings import ProxySettings, Settings
from app.signing import OciSigningAuth, TokenRefresher
from app.targets import Target

# Modes whose tokens expire and are renewed in the background.
_TOKEN_MODES = {AuthMode.RESOURCE_PRINCIPAL, AuthMode.INSTANCE_PRINCIPAL, AuthMode.SECURITY_TOKEN}


def service_discovery(settings: Settings) -> list[dict[str, object]]:
    """http_sd groups: every target is reached through this proxy at its own metrics path."""
    groups: list[dict[str, object]] = []
    for target in settings.proxy.targets:
        labels = {
            "__metrics_path__": f"/targets/{target.name}/metrics",
            "__scrape_interval__": settings.scrape_interval,
            "__scrape_timeout__": settings.scrape_timeout,
            **target.labels,
        }
        groups.append({"targets": [settings.proxy.advertised_address], "labels": labels})
    return groups


def upstream_clients(
    proxy: ProxySettings, transport: httpx.AsyncBaseTransport | None
) -> dict[str, httpx.AsyncClient]:
    """One small connection pool per deployment, sharing one TLS context.

    Deployments usually share one gateway host, so a single pool would grow to one connection
    per deployment, and httpcore 1.0 walks its whole pool on every request (encode/httpcore#1035):
    at 100 concurrent scrapes that cost 9 ms of CPU per scrape instead of 1 ms. Separate pools
    also keep a stuck deployment from occupying connections the others need. A transport given
    by tests is shared by all targets.
    """
    timeout = httpx.Timeout(proxy.upstream_timeout_seconds, connect=proxy.connect_timeout_seconds)
    limits = httpx.Limits(
        max_connections=proxy.max_inflight_per_target,
        max_keepalive_connections=proxy.max_inflight_per_target,
        keepalive_expiry=30.0,
    )
    upstreams = [target for target in proxy.targets if not target.is_demo]
    if transport is not None:
        shared = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
        return {target.name: shared for target in upstreams}
    verify = httpx.create_ssl_context()
    return {
        target.name: httpx.AsyncClient(
            limits=limits, timeout=timeout, verify=verify, follow_redirects=False
        )
        for target in upstreams
    }


def create_app(
    settings: Settings,
    credentials: Credentials | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    metrics: ProxyMetrics | None = None,
) -> FastAPI:
    """Build the proxy app. `transport` lets unit tests put respx or a fixture at the HTTP edge."""
    proxy = settings.proxy
    metrics = metrics or create_proxy_metrics()
    targets: dict[str, Target] = {target.name: target for target in proxy.targets}
    sd_body = service_discovery(settings)
    refresher = (
        TokenRefresher(credentials, metrics, check_every_seconds=proxy.token_refresh_check_seconds)
        if credentials is not None and credentials.mode in _TOKEN_MODES
        else None
    )
    auth = OciSigningAuth(credentials, refresher) if credentials is not None else None
    demo = DemoDeployment() if proxy.demo_mode else None
    state: dict[str, Forwarder] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            clients = upstream_clients(proxy, transport)
            for client in {id(client): client for client in clients.values()}.values():
                await stack.enter_async_context(client)
            state["forwarder"] = Forwarder(
                clients=clients,
                auth=auth,
                metrics=metrics,
                upstream_timeout_seconds=proxy.upstream_timeout_seconds,
                max_response_bytes=proxy.max_response_bytes,
                max_inflight_per_target=proxy.max_inflight_per_target,
                targets=proxy.targets,
                demo=demo,
            )
            task = asyncio.create_task(refresher.run()) if refresher is not None else None
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app = FastAPI(
        title="aqua-metrics proxy",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        # A trailing-slash redirect would build its Location from the client's Host header.
        redirect_slashes=False,
    )

    @app.get("/targets/{name}/metrics")
    async def scrape_target(name: str, request: Request) -> Response:
        target = targets.get(name)
        if target is None:
            return PlainTextResponse(f"aqua-metrics: no target named {name!r}\n", status_code=404)
        outcome = await state["forwarder"].scrape(
            target,
            accept=request.headers.get("accept"),
            accept_encoding=request.headers.get("accept-encoding"),
            scrape_timeout_header=request.headers.get("x-prometheus-scrape-timeout-seconds"),
        )
        return Response(content=outcome.body, status_code=outcome.status, headers=outcome.headers)

    @app.get("/sd")
    async def discovery() -> Response:
        return JSONResponse(sd_body)

    @app.get("/metrics")
    async def own_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> Response:
        return PlainTextResponse("ok\n")

    @app.get("/readyz")
    async def readyz() -> Response:
        problems = []
        if not targets:
            problems.append("no targets configured")
        if "forwarder" not in state:
            problems.append("not started")
        if refresher is not None and refresher.last_error is not None:
            problems.append(f"credential refresh failing ({refresher.last_error})")
        if problems:
            return PlainTextResponse("not ready: " + "; ".join(problems) + "\n", status_code=503)
        return PlainTextResponse("ready\n")

    app.state.metrics = metrics
    app.state.refresher = refresher
    return app
