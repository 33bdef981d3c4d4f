"""Target state logging: one line when a target's state changes, not one per scrape."""

from __future__ import annotations

import logging

log = logging.getLogger("aqua_metrics.forwarding")


class TargetStates:
    """Logs a target's state when it changes, not on every scrape."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}

    def record(self, name: str, state: str) -> None:
        if self._states.get(name) != state:
            previous = self._states.get(name)
            self._states[name] = state
            if previous is None and state == "ok":
                log.info("target %s: scraping ok", name)
            elif state == "ok":
                log.info("target %s: recovered", name)
            else:
                log.warning("target %s: %s", name, state)

    def forget(self, name: str) -> None:
        self._states.pop(name, None)
