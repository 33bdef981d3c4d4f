"""Builds the proxy's `MonitoringService` from the settings, the targets and the credentials."""

from __future__ import annotations

import logging
from typing import Any

from app.credentials import Credentials
from app.monitoring.collector import MonitoringCollector
from app.monitoring.scope import watched_from_labels
from app.monitoring.service import MonitoringService, decide, static_scope
from app.settings import Settings

log = logging.getLogger("app.monitoring")


def monitoring_service(settings: Settings, credentials: Credentials | None) -> MonitoringService:
    """The service for the configured targets: running, or off with one log line saying why."""
    config = settings.oci_monitoring
    watched = watched_from_labels((t.name, t.labels) for t in settings.proxy.targets)
    run, why_not = decide(
        config.mode,
        has_signer=credentials is not None,
        watched=len(watched),
        compartments=len(config.compartment_ids),
    )
    if not run or credentials is None:
        log.info("oci-monitoring: off (%s)", why_not or "no credentials")
        return MonitoringService(
            None, static_scope((), (), single_endpoint=True, default_region=None)
        )
    signer: Any = credentials.sdk_signer
    region = getattr(signer, "region", None)
    scope = static_scope(
        watched,
        config.compartment_ids,
        single_endpoint=config.endpoint is not None,
        default_region=region if isinstance(region, str) and region else None,
    )
    collector = MonitoringCollector(
        scope,
        lambda: credentials.sdk_signer,
        endpoint=config.endpoint,
        strict=config.mode == "true",
    )
    log.info(
        "oci-monitoring: reading %d deployment(s) in %d compartment(s) every %gs",
        len(watched),
        len(config.compartment_ids),
        config.interval_seconds,
    )
    return MonitoringService(collector, scope, interval=config.interval_seconds)
