"""The proxy's HTTP surface: fixed routes only, everything else 404.

GET /targets/{name}/metrics  scrape of that target's configured URL (signed, unless a demo)
GET /sd                      Prometheus http_sd: one group per target
GET /metrics                 the proxy's own metrics
GET /healthz, /readyz        alive; ready (credentials usable)
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
from app.forwarding import Forwarder
from app.proxy_metrics import ProxyMetrics, create_proxy_metrics
from app.settings import Settings
from app.signing import OciSigningAuth, TokenRefresher
from app.targets import Target
from app.upstreams import upstream_clients


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


def create_app(
    settings: Settings,
    credentials: Credentials | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    metrics: ProxyMetrics | None = None,
) -> FastAPI:
    """Build the proxy app. `transport` lets unit tests put respx or a fixture at the HTTP edge
    of the real targets (demo targets always use their own simulation)."""
    proxy = settings.proxy
    metrics = metrics or create_proxy_metrics()
    targets: dict[str, Target] = {target.name: target for target in proxy.targets}
    sd_body = service_discovery(settings)
    refresher = (
        TokenRefresher(credentials, metrics, check_every_seconds=proxy.token_refresh_check_seconds)
        if credentials is not None and credentials.mode.renews_tokens
        else None
    )
    auth = OciSigningAuth(credentials, refresher) if credentials is not None else None
    clients = upstream_clients(proxy, auth, transport)
    forwarder = Forwarder(
        clients=clients,
        metrics=metrics,
        upstream_timeout_seconds=proxy.upstream_timeout_seconds,
        max_response_bytes=proxy.max_response_bytes,
        max_inflight_per_target=proxy.max_inflight_per_target,
        targets=proxy.targets,
        scrape_interval_seconds=proxy.scrape_interval_seconds,
        replica_fetch_cap=proxy.replica_fetch_cap,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for client in {id(client): client for client in clients.values()}.values():
                await stack.enter_async_context(client)
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
        outcome = await forwarder.scrape(
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
        if refresher is not None and refresher.last_error is not None:
            return PlainTextResponse(
                f"not ready: credential refresh failing ({refresher.last_error})\n",
                status_code=503,
            )
        return PlainTextResponse("ready\n")

    app.state.metrics = metrics
    app.state.refresher = refresher
    return app
