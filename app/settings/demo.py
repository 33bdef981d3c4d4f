"""The demo fleet's settings: what runs when nothing at all is configured to scrape."""

from __future__ import annotations

from app.demo.fleet import (
    DEFAULT_DEMO_DEPLOYMENTS,
    DEFAULT_FIRST_OUTAGE_S,
    MAX_DEMO_DEPLOYMENTS,
    MIN_DEMO_DEPLOYMENTS,
    OutageSchedule,
)
from app.settings.reader import _Reader, whole_number


def read_demo(read: _Reader) -> tuple[int, OutageSchedule]:
    """DEMO_DEPLOYMENTS (how many simulated deployments with nothing configured) and
    DEMO_OUTAGE_AFTER (when the flaky one first goes down; tests set it short)."""
    raw = read.text("DEMO_DEPLOYMENTS", str(DEFAULT_DEMO_DEPLOYMENTS))
    count = whole_number(raw)
    if count is None or not MIN_DEMO_DEPLOYMENTS <= count <= MAX_DEMO_DEPLOYMENTS:
        count = DEFAULT_DEMO_DEPLOYMENTS
        read.problems.append(
            f"DEMO_DEPLOYMENTS: {raw!r} is not a whole number from "
            f"{MIN_DEMO_DEPLOYMENTS} to {MAX_DEMO_DEPLOYMENTS}"
        )
    _, first_outage = read.duration("DEMO_OUTAGE_AFTER", f"{int(DEFAULT_FIRST_OUTAGE_S)}s")
    return count, OutageSchedule(first_s=first_outage)
