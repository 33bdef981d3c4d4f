"""OCI Monitoring as one object for the proxy: decide whether it runs, poll, serve the gauges.

`MonitoringService.from_settings` returns a service that is either running (a `Poller` around a
`MonitoringCollector`) or off, with the one log line that says why. The route body is always
served, so `aqua_oci_monitoring_enabled` tells the dashboard which.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from app.discovery.poller import Poller
from app.monitoring.api import CALL_RESULTS
from app.monitoring.collector import STALE_SECONDS, MonitoringCollector, Snapshot
from app.monitoring.exposition import Health, render
from app.monitoring.scope import Scope

log = logging.getLogger(__name__)


class MonitoringService:
    """Runs `collector` every `interval` seconds (jittered) when `enabled`."""

    def __init__(
        self,
        collector: MonitoringCollector | None,
        scope_provider: Callable[[], Scope],
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        **poller_options: Any,
    ) -> None:
        self.collector = collector
        self._scope_provider = scope_provider
        self._clock = clock
        self.poller: Poller[Snapshot] | None = None
        if collector is not None:
            self.poller = Poller(
                "oci-monitoring",
                collector,
                interval=interval,
                kinds=CALL_RESULTS[1:-1],
                clock=clock,
                logger=logging.getLogger("app.monitoring"),
                **poller_options,
            )

    @property
    def enabled(self) -> bool:
        """Running: configured on, and not switched off by a refusal (OCI_MONITORING=auto)."""
        return self.poller is not None and (
            self.collector is None or self.collector.switched_off is None
        )

    def render(self) -> bytes:
        now = self._clock()
        if self.poller is None or self.collector is None:
            health = Health(False, False, None, 0, {})
            return render(None, health, now=now, stale=STALE_SECONDS)
        with self.collector.counts_lock:
            calls = dict(self.collector.counts)
        if self.collector.switched_off is not None:
            health = Health(False, False, None, 0, calls, refused=True)
            return render(None, health, now=now, stale=self.collector.stale)
        status = self.poller.status()
        deployments = len(self._scope_provider().by_ocid)
        refused = bool(self.collector.refused)
        health = Health(True, status.failing, status.last_success, deployments, calls, refused)
        return render(status.result, health, now=now, stale=self.collector.stale)

    def start(self) -> None:
        if self.poller is not None:
            self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()


def decide(
    mode: str, *, has_signer: bool, watched: int, compartments: int, lookups: int = 0
) -> tuple[bool, str]:
    """(run?, why not): `auto` runs when the requests are signed and deployments have OCIDs,
    with a compartment known or one to look up (`lookups`: targets whose URL names their
    deployment OCID and region); `true` the same (settings refuse to start without a compartment
    or signing); `false` never."""
    if mode == "false":
        return False, "OCI_MONITORING=false"
    if not has_signer:
        return False, "requests are not signed (OCI_AUTH=none)"
    if compartments == 0 and lookups == 0:
        return False, (
            "no compartment is known (set OCI_MONITORING_COMPARTMENT_ID or OCI_COMPARTMENT_ID) "
            "and no target's URL names its model deployment OCID and region"
        )
    if watched == 0 and mode == "auto":
        return False, "no target carries a model deployment OCID in its URL"
    return True, ""
