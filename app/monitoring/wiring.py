"""Builds the proxy's `MonitoringService` from the settings, the targets and the credentials."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.credentials import Credentials
from app.monitoring.collector import MonitoringCollector
from app.monitoring.lookup import CompartmentLookup
from app.monitoring.scope import Scope, build_scope, watched_from_fleet, watched_from_labels
from app.monitoring.service import MonitoringService, decide
from app.settings import Settings

log = logging.getLogger("app.monitoring")


def monitoring_service(
    settings: Settings,
    credentials: Credentials | None,
    *,
    fleet_provider: Callable[[], Any] | None = None,
    datascience_endpoint: str | None = None,
) -> MonitoringService:
    """The service for the configured targets and, with `fleet_provider`, discovery's current
    `Fleet` (its deployments know their compartment and region): running, or off with one log
    line saying why. Discovery's compartments (OCI_COMPARTMENT_ID) are already the default of
    OCI_MONITORING_COMPARTMENT_ID; without any, each target's compartment is looked up from its
    deployment OCID (`app.monitoring.lookup`; `datascience_endpoint` overrides the Data Science
    endpoint, for tests)."""
    config = settings.oci_monitoring
    explicit = watched_from_labels((t.name, t.labels) for t in settings.proxy.targets)
    # A deployment is looked up in the region its URL names (modeldeployment.<region>...): never
    # guessed for a URL without one (a loopback stand-in), unless the endpoint is overridden.
    lookupable = (
        [w for w in explicit if w.region or datascience_endpoint]
        if not config.compartment_ids
        else []
    )
    run, why_not = decide(
        config.mode,
        has_signer=credentials is not None,
        watched=len(explicit) + (1 if fleet_provider is not None else 0),
        compartments=len(config.compartment_ids),
        lookups=len(lookupable),
    )
    if not run or credentials is None:
        log.info("oci-monitoring: off (%s)", why_not or "no credentials")
        return MonitoringService(None, lambda: Scope())
    region = getattr(credentials.sdk_signer, "region", None)
    default_region = region if isinstance(region, str) and region else None
    explicit_names = [t.name for t in settings.proxy.targets]
    lookup = (
        CompartmentLookup(
            lambda: credentials.sdk_signer,
            default_region=default_region,
            endpoint=datascience_endpoint,
        )
        if lookupable
        else None
    )

    def scope(resolve: bool = False) -> Scope:
        targets = explicit
        if lookup is not None:
            if resolve:
                lookup.resolve(lookupable)
            targets = lookup.place(explicit)
        fleet = watched_from_fleet(fleet_provider(), explicit_names) if fleet_provider else []
        return build_scope(
            [*targets, *fleet],
            config.compartment_ids,
            single_endpoint=config.endpoint is not None,
            default_region=default_region,
        )

    collector = MonitoringCollector(
        lambda: scope(resolve=True),
        lambda: credentials.sdk_signer,
        endpoint=config.endpoint,
        strict=config.mode == "true",
        auto_off=config.mode == "auto",
    )
    if lookup is None:
        log.info(
            "oci-monitoring: reading %d deployment(s) in %d compartment(s) every %gs",
            len(scope().by_ocid),
            len(config.compartment_ids),
            config.interval_seconds,
        )
    else:
        log.info(
            "oci-monitoring: reading %d deployment(s) every %gs, in the compartments their "
            "OCIDs are looked up in",
            len(lookupable),
            config.interval_seconds,
        )
    return MonitoringService(collector, scope, interval=config.interval_seconds)
