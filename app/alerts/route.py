"""The proxy's `POST /alerts/oci-notifications`: Alertmanager's webhook for the OCI topic.

Only a client on loopback (Alertmanager in the same container) may call it: anyone else gets 403,
even when the proxy listens on all interfaces. Each call publishes exactly one message; a failure
answers 502 so Alertmanager retries, and is counted in `aqua_proxy_notification_failures_total`.
The route exists only when OCI_NOTIFICATION_TOPIC_ID is set, and is never part of `/sd`.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from app.alerts.config import OCI_NOTIFICATIONS_PATH
from app.alerts.message import PayloadError, build_message
from app.alerts.publisher import NotificationsPublisher, PublishFailure
from app.credentials import Credentials
from app.proxy_metrics import ProxyMetrics
from app.settings import Settings
from app.targets import is_loopback_host

MAX_BODY_BYTES = 4 * 1024 * 1024
log = logging.getLogger("aqua_metrics.alerts")


def _text(status: int, line: str) -> Response:
    return PlainTextResponse(f"aqua-metrics: {line}\n", status_code=status)


def register_alert_routes(
    app: FastAPI, settings: Settings, credentials: Credentials | None, metrics: ProxyMetrics
) -> None:
    """Add the OCI Notifications relay to the proxy when a topic is configured."""
    alerting = settings.alerting
    if not alerting.topic_id:
        return
    publisher = (
        NotificationsPublisher(alerting.topic_id, alerting.notifications_endpoint, credentials)
        if credentials is not None
        else None
    )

    @app.post(OCI_NOTIFICATIONS_PATH)
    async def relay_to_oci_notifications(request: Request) -> Response:
        client = request.client
        if client is None or not is_loopback_host(client.host):
            return _text(403, "this route only answers Alertmanager, on loopback")
        if publisher is None:
            return _text(503, "no OCI credentials to publish with (OCI_AUTH)")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _text(413, "notification too large")
        try:
            message = build_message(json.loads(body), alerting.grafana_root_url)
        except (ValueError, PayloadError) as exc:
            return _text(400, f"not an Alertmanager notification ({exc})")
        try:
            message_id = await asyncio.to_thread(publisher.publish, message)
        except PublishFailure as exc:
            metrics.notification_failures.labels(kind=exc.kind).inc()
            log.warning("publishing %r to OCI Notifications failed (%s)", message.title, exc)
            return _text(502, f"publishing to OCI Notifications failed ({exc})")
        metrics.notifications_published.inc()
        log.info("published %r to OCI Notifications (message %s)", message.title, message_id)
        return _text(200, f"published {message_id}")
