"""The demo fleet in the inventory metric, rendered by discovery's own collector.

`aqua_deployment_info{...,lifecycle_state="ACTIVE"} 1` for every demo member, so the fleet
dashboard's state column and its "known but not scraped" panel read the demo as they read a
discovered fleet. No listing ran, so the listing metrics stay empty (no call, no last success).
"""

from __future__ import annotations

from collections.abc import Iterable

from app.demo.fleet import demo_member
from app.discovery.fleet import Fleet, FleetEntry
from app.discovery.inventory import DiscoveryCollector
from app.targets import Target, is_demo_url


def demo_inventory(targets: Iterable[Target]) -> Fleet:
    """A `Fleet` snapshot holding the demo fleet members among `targets` (all scraped)."""
    entries = []
    for target in targets:
        member = demo_member(target.name) if is_demo_url(target.url) else None
        if member is None:
            continue
        labels = {k: v for k, v in target.labels.items() if k != "demo"}
        entries.append(FleetEntry(member.as_deployment(), target.name, labels, None, True, ""))
    return Fleet(entries=tuple(entries))


def demo_inventory_collector(targets: Iterable[Target]) -> DiscoveryCollector | None:
    """The collector to register on the proxy's registry when demo members are served, else None."""
    fleet = demo_inventory(targets)
    if not fleet.entries:
        return None
    return DiscoveryCollector(lambda: fleet, lambda: None)
