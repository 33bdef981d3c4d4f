"""The proxy's HTTP surface: fixed routes only, everything else 404.

GET /targets/{name}/metrics  scrape of that target's URL (signed, unless a demo)
GET /sd                      Prometheus http_sd: one group per target
GET /metrics                 the proxy's own metrics (and discovery's inventory)
GET /oci-monitoring/metrics  the deployments' OCI Monitoring gauges and collector health
GET /healthz, /readyz        alive; ready (credentials usable, fleet listed once)
POST /alerts/oci-notifications  Alertmanager's webhook for the OCI topic, loopback only (app.alerts)

The target set is live: the explicit targets, plus the deployments fleet discovery finds
(`app.discovery`). Every route reads one immutable `TargetView`, replaced whole when the fleet
changes, so a reader never sees half an update, and a name only ever maps to a URL the user or
the Data Science API gave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import __version__
from app.alerts.route import register_alert_routes
from app.credentials import Credentials
from app.demo.inventory import demo_inventory_collector
from app.discovery.fleet import Fleet
from app.discovery.service import DiscoveryService
from app.discovery.setup import build_lister, explicit_targets
from app.forwarding import Forwarder
from app.monitoring.service import MonitoringService
from app.monitoring.wiring import monitoring_service
from app.proxy_metrics import ProxyMetrics, create_proxy_metrics
from app.settings import Settings
from app.signing import OciSigningAuth, TokenRefresher
from app.targets import Target
from app.upstreams import UpstreamClients


def service_discovery(targets: Sequence[Target], settings: Settings) -> list[dict[str, object]]:
    """http_sd groups: every target is reached through this proxy at its own metrics path."""
    groups: list[dict[str, object]] = []
    for target in targets:
        labels = {
            "__metrics_path__": f"/targets/{target.name}/metrics",
            "__scrape_interval__": settings.scrape_interval,
            "__scrape_timeout__": settings.scrape_timeout,
            **target.labels,
        }
        groups.append({"targets": [settings.proxy.advertised_address], "labels": labels})
    return groups


@dataclass(frozen=True)
class TargetView:
    """One consistent snapshot of the target set, as every route reads it."""

    targets: tuple[Target, ...]
    by_name: dict[str, Target]
    sd_body: bytes

    @classmethod
    def of(cls, targets: Sequence[Target], settings: Settings) -> TargetView:
        body = JSONResponse(service_discovery(targets, settings)).body
        return cls(tuple(targets), {target.name: target for target in targets}, bytes(body))


def create_app(
    settings: Settings,
    credentials: Credentials | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    metrics: ProxyMetrics | None = None,
    monitoring: MonitoringService | None = None,
) -> FastAPI:
    """Build the proxy app. `transport` lets unit tests put respx or a fixture at the HTTP edge
    of the real targets (demo targets always use their own simulation)."""
    proxy = settings.proxy
    metrics = metrics or create_proxy_metrics()
    view = TargetView.of(proxy.targets, settings)
    demo_inventory = demo_inventory_collector(proxy.targets)
    if demo_inventory is not None:  # The demo fleet shows in aqua_deployment_info too.
        metrics.registry.register(demo_inventory)
    refresher = (
        TokenRefresher(credentials, metrics, check_every_seconds=proxy.token_refresh_check_seconds)
        if credentials is not None and credentials.mode.renews_tokens
        else None
    )
    auth = OciSigningAuth(credentials, refresher) if credentials is not None else None
    clients = UpstreamClients(proxy, auth, transport)
    forwarder = Forwarder(
        clients=clients,
        metrics=metrics,
        upstream_timeout_seconds=proxy.upstream_timeout_seconds,
        max_response_bytes=proxy.max_response_bytes,
        max_inflight_per_target=proxy.max_inflight_per_target,
        scrape_interval_seconds=proxy.scrape_interval_seconds,
        replica_fetch_cap=proxy.replica_fetch_cap,
        max_unpacked_bytes=settings.scrape_body_size_limit,
    )

    def adopt(fleet: Fleet) -> None:
        """Runs on the event loop after a listing changed the fleet: swap the view whole."""
        nonlocal view
        view = TargetView.of(fleet.targets, settings)
        forwarder.retain(fleet.targets)

    discovery = (
        DiscoveryService(
            build_lister(proxy.discovery, credentials),
            explicit=explicit_targets(proxy.targets),
            scope=proxy.discovery.scope,
            interval=proxy.discovery.interval_seconds,
            on_change=adopt,
        )
        if proxy.discovery is not None
        else None
    )
    if discovery is not None:
        metrics.registry.register(discovery.collector())
    monitoring = monitoring or monitoring_service(
        settings,
        credentials,
        fleet_provider=(lambda: discovery.fleet) if discovery is not None else None,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(refresher.run()) if refresher is not None else None
        if discovery is not None:
            discovery.start()
        monitoring.start()
        try:
            yield
        finally:
            await monitoring.stop()
            if discovery is not None:
                await discovery.stop()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await clients.aclose()

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
        target = view.by_name.get(name)
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
    async def sd() -> Response:
        return Response(view.sd_body, media_type="application/json")

    @app.get("/metrics")
    async def own_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/oci-monitoring/metrics")
    async def oci_monitoring_metrics() -> Response:
        return Response(monitoring.render(), media_type=CONTENT_TYPE_LATEST)

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
        if discovery is not None:
            status = discovery.status()
            if status.last_success is None:
                error = status.last_error
                why = f"{error.kind}: {error.summary}" if error is not None else "in progress"
                return PlainTextResponse(
                    f"not ready: the first fleet listing has not succeeded ({why})\n",
                    status_code=503,
                )
        return PlainTextResponse("ready\n")

    register_alert_routes(app, settings, credentials, metrics)
    app.state.metrics = metrics
    app.state.refresher = refresher
    app.state.discovery = discovery
    app.state.target_view = lambda: view
    app.state.monitoring = monitoring
    return app
