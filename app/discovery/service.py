"""Discovery as one object for the proxy: a poller whose good listings become the live `Fleet`.

The fleet starts as the explicit targets alone and is replaced whole after every good listing
(readers take `fleet` and never see half an update). A failed listing changes nothing: the last
good fleet keeps being scraped. Deployments whose URL is refused are logged once per URL, and
deployments joining or leaving the scraped set are logged once per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from app.discovery.deployments import DiscoveredDeployment
from app.discovery.fleet import DiscoveryScope, Fleet, build_fleet
from app.discovery.inventory import DiscoveryCollector
from app.discovery.listing import LISTING_KINDS
from app.discovery.poller import Poller, PollStatus
from app.targets import Target

log = logging.getLogger(__name__)

Lister = Callable[[], Sequence[DiscoveredDeployment]]


class DiscoveryService:
    """Keeps `fleet` current from `lister` (e.g. a `DeploymentLister`) every `interval` seconds.

    `on_change(fleet)` runs on the event loop after each good listing that changed the fleet's
    targets or entries (e.g. to swap the proxy's target set).
    """

    def __init__(
        self,
        lister: Lister,
        *,
        explicit: Sequence[Target] = (),
        scope: DiscoveryScope = DiscoveryScope.AQUA,
        interval: float = 60.0,
        on_change: Callable[[Fleet], None] | None = None,
        **poller_options: object,
    ) -> None:
        self.explicit = tuple(explicit)
        self.scope = scope
        self._on_change = on_change
        self._fleet = Fleet(targets=self.explicit)
        self._refused_urls: set[tuple[str, str]] = set()
        self.poller: Poller[Sequence[DiscoveredDeployment]] = Poller(
            "discovery",
            lister,
            interval=interval,
            on_result=self._adopt,
            kinds=LISTING_KINDS,
            **poller_options,  # type: ignore[arg-type]
        )

    @property
    def fleet(self) -> Fleet:
        """The current snapshot (explicit targets only until the first good listing)."""
        return self._fleet

    def status(self) -> PollStatus[object]:
        return self.poller.status()  # type: ignore[return-value]

    def collector(self) -> DiscoveryCollector:
        """The /metrics collector for this service (register it on the proxy's registry)."""
        return DiscoveryCollector(lambda: self._fleet, self.status)

    def _adopt(self, deployments: Sequence[DiscoveredDeployment]) -> None:
        fleet = build_fleet(deployments, self.explicit, scope=self.scope)
        previous = self._fleet
        self._log_refused_urls(fleet)
        self._log_scraped_changes(previous, fleet)
        self._fleet = fleet
        if self._on_change is not None and (
            fleet.targets != previous.targets or fleet.entries != previous.entries
        ):
            self._on_change(fleet)

    def _log_refused_urls(self, fleet: Fleet) -> None:
        for entry in fleet.entries:
            if entry.metrics_url is None and entry.deployment.url:
                key = (entry.deployment.ocid, entry.deployment.url)
                if key not in self._refused_urls:
                    self._refused_urls.add(key)
                    log.warning("discovery: not scraping %s: %s", entry.name, entry.reason)

    @staticmethod
    def _log_scraped_changes(previous: Fleet, fleet: Fleet) -> None:
        before = {t.name for t in previous.targets}
        after = {t.name for t in fleet.targets}
        if after - before:
            log.info("discovery: now scraping %s", ", ".join(sorted(after - before)))
        if before - after:
            log.info("discovery: no longer scraping %s", ", ".join(sorted(before - after)))

    # ---- lifecycle (on the event loop) ----------------------------------------------------

    def start(self) -> None:
        self.poller.start()

    async def stop(self) -> None:
        await self.poller.stop()


def discover_once(
    lister: Lister,
    *,
    explicit: Sequence[Target] = (),
    scope: DiscoveryScope = DiscoveryScope.AQUA,
) -> Fleet:
    """One blocking listing turned into a fleet (for `aqua-metrics discover`). Raises
    `ListingError` on failure."""
    return build_fleet(lister(), explicit, scope=scope)


def fleet_table(fleet: Fleet) -> str:
    """The table `aqua-metrics discover` prints: one row per deployment, scraped or why not."""
    header = ("NAME", "STATE", "MODEL", "CONTAINER", "SHAPE", "SCRAPED", "URL")
    rows: list[tuple[str, ...]] = [header]
    for entry in fleet.entries:
        d = entry.deployment
        scraped = "yes" if entry.scraped else f"no: {entry.reason}"
        rows.append(
            (
                entry.name,
                d.lifecycle_state,
                d.aqua_model or "-",
                d.inference_container.value,
                d.shape or "-",
                scraped,
                d.url or "-",
            )
        )
    for d in fleet.out_of_scope:
        rows.append(
            (
                "-",
                d.lifecycle_state,
                d.aqua_model or "-",
                d.inference_container.value,
                d.shape or "-",
                f"no: not an AQUA deployment ({d.display_name!r}; DISCOVERY_SCOPE=all includes it)",
                d.url or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
