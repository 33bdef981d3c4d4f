"""Poll for a condition with a deadline, instead of sleeping a fixed time and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline (an AssertionError, so tests fail on it)."""


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "",
) -> T:
    """Call `condition` every `interval` seconds until it returns a truthy value; return that value.

    Raises `WaitTimeout` after `timeout` seconds, with `message` (or the result of calling it, to
    describe the state at the deadline) and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = message() if callable(message) else message
            raise WaitTimeout(f"not true within {timeout}s: {detail} (last value: {value!r})")
        time.sleep(interval)
