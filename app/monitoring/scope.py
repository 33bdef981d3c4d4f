"""Which deployments are in play, and where (region, compartment) their metrics are read.

A deployment is in play when the proxy scrapes it and its OCID is known: configured targets carry
`deployment_ocid` (and `region` for real model deployment URLs) from their URL; discovered ones
also know their compartment. A deployment whose compartment is unknown is looked for in every
configured compartment (OCI_MONITORING_COMPARTMENT_ID, else OCI_COMPARTMENT_ID). Calls are made
per (endpoint region, compartment), never per deployment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Watched:
    """A deployment whose OCI Monitoring metrics are read: its name (the `deployment` label)."""

    name: str
    ocid: str
    region: str | None = None
    compartment_id: str | None = None


@dataclass(frozen=True)
class Place:
    """Where one set of calls goes: a region (None: the endpoint override or default region) and
    a compartment."""

    region: str | None
    compartment_id: str


@dataclass(frozen=True)
class Scope:
    """Deployments by OCID, grouped by the place their metrics are read from."""

    places: Mapping[Place, tuple[Watched, ...]] = field(default_factory=dict)
    unplaced: tuple[Watched, ...] = ()  # no compartment known for these

    @property
    def by_ocid(self) -> dict[str, Watched]:
        return {w.ocid: w for members in self.places.values() for w in members}


def watched_from_labels(targets: Iterable[tuple[str, Mapping[str, str]]]) -> list[Watched]:
    """(name, labels) pairs of scraped targets -> those with a `deployment_ocid` label."""
    found = []
    for name, labels in targets:
        ocid = labels.get("deployment_ocid")
        if ocid:
            found.append(Watched(name, ocid.lower(), labels.get("region") or None))
    return found


def watched_from_fleet(fleet: Any, explicit_names: Iterable[str] = ()) -> list[Watched]:
    """Entries of a discovery `Fleet` that are scraped, by discovery or as an explicit target
    (`explicit_names`); they know their compartment and region."""
    explicit = set(explicit_names)
    found = []
    for entry in getattr(fleet, "entries", ()):
        if not (entry.scraped or entry.name in explicit):
            continue
        d = entry.deployment
        found.append(
            Watched(entry.name, d.ocid.lower(), d.region or None, d.compartment_id or None)
        )
    return found


def build_scope(
    watched: Iterable[Watched],
    compartments: Sequence[str],
    *,
    single_endpoint: bool = False,
    default_region: str | None = None,
) -> Scope:
    """Group deployments by place. With `single_endpoint` (OCI_MONITORING_ENDPOINT) every call
    goes to that endpoint, so the region does not split them."""
    merged: dict[str, Watched] = {}
    for item in watched:
        known = merged.get(item.ocid)
        if known is None or (known.compartment_id is None and item.compartment_id):
            merged[item.ocid] = Watched(
                known.name if known else item.name,
                item.ocid,
                item.region or (known.region if known else None),
                item.compartment_id,
            )
    places: dict[Place, list[Watched]] = {}
    unplaced: list[Watched] = []
    for item in merged.values():
        region = None if single_endpoint else (item.region or default_region)
        targets = [item.compartment_id] if item.compartment_id else list(compartments)
        if not targets:
            unplaced.append(item)
        for compartment in targets:
            places.setdefault(Place(region, compartment), []).append(item)
    return Scope({p: tuple(m) for p, m in places.items()}, tuple(unplaced))
