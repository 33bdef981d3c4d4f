"""One fleet from explicit targets and discovered deployments: who is scraped, under which name.

Rules (issue 10): explicit targets are always scraped and their names win; a discovered
deployment with the same metrics URL as an explicit target is not scraped twice (the explicit
target gains its discovered labels instead); only ACTIVE deployments with an acceptable URL
(https, or http on a loopback host, exactly as for TARGET) are scraped. Every in-scope deployment,
scraped or not, is an entry with a reason, for the inventory metric and `aqua-metrics discover`.

Explicit and discovered targets are the same `app.targets.Target` the routes and /sd read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

from app.discovery.deployments import DiscoveredDeployment
from app.discovery.naming import assign_names, deployment_labels
from app.targets import Target, TargetError, complete_metrics_url


class DiscoveryScope(StrEnum):
    """Which deployments form the fleet (DISCOVERY_SCOPE)."""

    AQUA = "aqua"  # those tagged OCI_AQUA / oci_aqua, as AQUA's console shows them
    ALL = "all"


@dataclass(frozen=True)
class FleetEntry:
    """One discovered deployment, its name and labels, and whether (or why not) it is scraped."""

    deployment: DiscoveredDeployment
    name: str
    labels: Mapping[str, str]
    metrics_url: str | None
    scraped: bool
    reason: str  # "" when scraped by discovery; else why not, in words for the user


@dataclass(frozen=True)
class Fleet:
    """A snapshot: replace it whole, never mutate (readers never see half a fleet)."""

    targets: tuple[Target, ...] = ()
    entries: tuple[FleetEntry, ...] = ()
    out_of_scope: tuple[DiscoveredDeployment, ...] = ()

    @cached_property
    def _by_name(self) -> dict[str, Target]:
        return {t.name: t for t in self.targets}

    def target(self, name: str) -> Target | None:
        """The target called `name` (O(1): the forwarding route asks on every scrape)."""
        return self._by_name.get(name)


def in_scope(deployment: DiscoveredDeployment, scope: DiscoveryScope) -> bool:
    return scope is DiscoveryScope.ALL or deployment.is_aqua


def discovered_metrics_url(model_deployment_url: str) -> str:
    """`<model_deployment_url>/predict/metrics`, validated like TARGET. Raises TargetError."""
    return complete_metrics_url(model_deployment_url.strip().rstrip("/") + "/predict")


def url_key(url: str) -> str:
    """A URL compared case-insensitively in scheme and host, without a trailing slash."""
    parts = urlsplit(url.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )


def _metrics_url(deployment: DiscoveredDeployment) -> tuple[str | None, str]:
    if not deployment.url:
        return None, "the API gave no model deployment URL"
    try:
        return discovered_metrics_url(deployment.url), ""
    except TargetError as exc:
        return None, f"URL not allowed: {exc}"


def build_fleet(
    deployments: Iterable[DiscoveredDeployment],
    explicit: Sequence[Target] = (),
    *,
    scope: DiscoveryScope = DiscoveryScope.AQUA,
) -> Fleet:
    """Merge explicit targets with a listing's deployments into one `Fleet`."""
    listed = list(deployments)
    fleet_members = [d for d in listed if in_scope(d, scope)]
    out_of_scope = tuple(d for d in listed if not in_scope(d, scope))
    explicit_by_url = {url_key(t.url): t for t in explicit}

    urls = {d.ocid: _metrics_url(d) for d in fleet_members}
    fixed: dict[str, str] = {}
    for deployment in fleet_members:
        url = urls[deployment.ocid][0]
        if url is not None and url_key(url) in explicit_by_url:
            fixed[deployment.ocid] = explicit_by_url[url_key(url)].name
    names = assign_names(fleet_members, reserved={t.name for t in explicit}, fixed=fixed)

    enriched: dict[str, dict[str, str]] = {}
    enriched_replicas: dict[str, int | None] = {}
    entries: list[FleetEntry] = []
    discovered_targets: list[Target] = []
    for deployment in fleet_members:
        name = names[deployment.ocid]
        labels = deployment_labels(deployment, name)
        url, reason = urls[deployment.ocid]
        if deployment.ocid in fixed:
            reason = f"configured explicitly as target {name!r} (scraped under that name)"
            if name not in enriched:
                enriched[name] = labels
                enriched_replicas[name] = deployment.known_replicas
        elif url is not None and not deployment.is_active:
            reason = f"not ACTIVE ({deployment.lifecycle_state})"
        scraped = url is not None and not reason
        if scraped and url is not None:
            discovered_targets.append(
                Target(name=name, url=url, labels=labels, instance_count=deployment.known_replicas)
            )
        entries.append(FleetEntry(deployment, name, labels, url, scraped, reason))

    targets = [
        replace(
            t,
            labels={**t.labels, **enriched[t.name]},
            instance_count=t.instance_count or enriched_replicas[t.name],
        )
        if t.name in enriched
        else t
        for t in explicit
    ]
    targets.extend(sorted(discovered_targets, key=lambda t: t.name))
    return Fleet(
        targets=tuple(targets),
        entries=tuple(sorted(entries, key=lambda e: e.name)),
        out_of_scope=out_of_scope,
    )
