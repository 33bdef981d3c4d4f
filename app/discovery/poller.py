"""The shape every OCI poller shares: call a blocking function off the event loop, keep it current.

Every `interval` (with jitter, so many containers never ask in step) the call runs in a worker
thread. A failure keeps the last good result and retries sooner-then-later with exponential
backoff (capped); calls are counted by result kind; the move from working to failing (with a hint)
and back is logged once, not on every attempt. Discovery and the OCI Monitoring poller differ only
in their call and in how they classify its errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.discovery.poll_error import PollError

T = TypeVar("T")
OK = "ok"
UNEXPECTED = "error"


@dataclass(frozen=True)
class PollStatus(Generic[T]):
    """What a poller knows now: the last good result and how the calls have gone."""

    result: T | None
    last_success: float | None  # wall-clock seconds (time.time) of the last good call
    failing: bool
    consecutive_failures: int
    last_error: PollError | None
    calls: dict[str, int] = field(default_factory=dict)


Sleep = Callable[[float], Awaitable[None]]


async def _event_sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class Poller(Generic[T]):
    """Runs `call` every `interval` seconds; see the module docstring.

    `on_result` runs on the event loop after each good call (e.g. to swap a snapshot).
    `clock` (wall time) and `rng` are injectable for tests; `kinds` pre-declares the result kinds
    so their counters exist (at 0) before the first call.
    """

    def __init__(
        self,
        name: str,
        call: Callable[[], T],
        *,
        interval: float,
        on_result: Callable[[T], None] | None = None,
        jitter: float = 0.1,
        initial_backoff: float | None = None,
        max_backoff: float | None = None,
        kinds: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.name = name
        self._call = call
        self.interval = interval
        self._on_result = on_result
        self.jitter = jitter
        self.initial_backoff = (
            initial_backoff if initial_backoff is not None else min(interval, 5.0)
        )
        self.max_backoff = max_backoff if max_backoff is not None else max(interval, 300.0)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._log = logger or logging.getLogger(f"app.discovery.poller.{name}")
        self._lock = threading.Lock()
        self._calls = dict.fromkeys((OK, *kinds, UNEXPECTED), 0)
        self._result: T | None = None
        self._last_success: float | None = None
        self._failures = 0
        self._last_error: PollError | None = None
        self._logged_kind: str | None = None  # failure kind last logged, None while healthy
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt_done = asyncio.Event()

    # ---- reading -----------------------------------------------------------------------------

    def status(self) -> PollStatus[T]:
        with self._lock:
            return PollStatus(
                result=self._result,
                last_success=self._last_success,
                failing=self._failures > 0,
                consecutive_failures=self._failures,
                last_error=self._last_error,
                calls=dict(self._calls),
            )

    @property
    def result(self) -> T | None:
        with self._lock:
            return self._result

    # ---- one attempt -------------------------------------------------------------------------

    async def poll_once(self) -> bool:
        """Run the call once (in a thread); True when it succeeded. Never raises for call errors."""
        try:
            result = await asyncio.to_thread(self._call)
        except PollError as error:
            self._failed(error)
            return False
        except Exception as exc:  # an unclassified error: report its type only, never its text
            self._failed(PollError(UNEXPECTED, f"unexpected {type(exc).__name__}"))
            return False
        else:
            self._succeeded(result)
            return True
        finally:
            self._first_attempt_done.set()

    def _succeeded(self, result: T) -> None:
        with self._lock:
            failures = self._failures
            self._result = result
            self._last_success = self._clock()
            self._failures = 0
            self._last_error = None
            self._calls[OK] = self._calls.get(OK, 0) + 1
            recovered = self._logged_kind is not None
            self._logged_kind = None
        if recovered:
            self._log.info("%s: working again after %d failed attempts", self.name, failures)
        if self._on_result is not None:
            self._on_result(result)

    def _failed(self, error: PollError) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = error
            self._calls[error.kind] = self._calls.get(error.kind, 0) + 1
            changed = self._logged_kind != error.kind
            self._logged_kind = error.kind
            keeping = (
                "keeping the last good result" if self._result is not None else "no result yet"
            )
        if changed:
            hint = f"; {error.hint}" if error.hint else ""
            self._log.warning(
                "%s: failing (%s: %s); %s, retrying with backoff%s",
                self.name,
                error.kind,
                error.summary,
                keeping,
                hint,
            )

    # ---- timing ------------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds until the next attempt: the interval when healthy, else exponential backoff;
        both with +-jitter."""
        with self._lock:
            failures = self._failures
        if failures == 0:
            base = self.interval
        else:
            base = min(self.max_backoff, self.initial_backoff * 2 ** (failures - 1))
        spread = base * self.jitter
        return max(0.0, base + self._rng.uniform(-spread, spread))

    # ---- running -----------------------------------------------------------------------------

    async def run(self, sleep: Sleep | None = None) -> None:
        """Poll until `stop()` (or cancellation): first attempt at once, then by `next_delay`."""
        wait = sleep or (lambda seconds: _event_sleep(self._stop, seconds))
        while not self._stop.is_set():
            await self.poll_once()
            if self._stop.is_set():
                break
            await wait(self.next_delay())

    def start(self) -> asyncio.Task[None]:
        """Start `run` as a task on the running loop."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)
        return self._task

    async def wait_first_attempt(self, timeout: float | None = None) -> bool:
        """Wait for the first attempt to finish (good or not); True when one has."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt_done.wait(), timeout=timeout)
        return self._first_attempt_done.is_set()

    async def stop(self) -> None:
        """Stop polling; an attempt in flight finishes in its thread and is then dropped."""
        self._stop.set()
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
