"""One scrape of a deployment that may run several replicas behind one load-balanced endpoint.

`gather` calls the caller's `fetch()` (one signed GET of the deployment's metrics page) again and
again, within the scrape deadline and a cap, until every replica believed live has answered, then
answers with one exposition holding every replica's series, each labelled `replica="<id>"`.

Cost for a single replica: one fetch, and the body is relayed exactly as fetched (still gzipped if
it came so; only the first few kB are inflated to read `process_start_time_seconds`). Labels are
added once two replicas answered within one scrape (or discovery says there are several
instances), and from then on always, even while it runs one: a series keeps one label set over
time, so a deployment that scales 1 -> 2 -> 1 changes its series once, when the second replica
first appears, rather than at every scale step. `label_single_replica=True` labels from the first
scrape (stable from the start, for ~0.2 ms of CPU per 50 kB page; bench/replicas_bench.py).

How many fetches: with n replicas picked at random by the load balancer, meeting all of them takes
n*H(n) fetches on average (1, 3, 5.5, 8.3 and 21.7 for n = 1, 2, 3, 4, 8); `suggested_fetch_cap`
allows about twice that. A replica not met is served from its last page (see tracker.py).
Upstream requests per deployment are fetches per scrape / scrape interval: on average n*H(n) per
interval once learned (3 replicas at 15 s: 5.5 per 15 s, 0.37/s), never more than the cap (11 per
15 s for 3); a single replica stays at one per interval. With `concurrency=1` (the default) the
deployment sees one fetch at a time; more shortens a scrape of many replicas (8 need ~22 fetches
on average) at the price of up to concurrency-1 fetches beyond the strict need.

Memory: every page is inflated through the capped `app.unpacked_size` path, and the replicas'
pages together (as the tracker holds them, then labelled, then merged) may not pass
`max_unpacked_bytes` (SCRAPE_BODY_SIZE_LIMIT): past it the scrape raises `MergedTooLarge` and the
tracker keeps no page content, so however many replicas a deployment reports, the proxy holds a
small multiple of the limit for it, never one limit per replica.

Call it with one `ReplicaTracker` per target, kept across scrapes, and at most one gather per
target at a time (overlapping gathers stay correct but fetch twice).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from app.replicas.exposition import (
    decode_body,
    label_samples,
    merge,
    peek_start_time,
    replica_id,
)
from app.replicas.tracker import ReplicaPage, ReplicaTracker
from app.unpacked_size import UnpackedTooLarge, is_gzip

MAX_FETCH_CAP = 40


@dataclass(frozen=True)
class FetchedPage:
    """One metrics page as the upstream sent it."""

    body: bytes
    content_type: str
    content_encoding: str | None = None
    unpacked_size: int | None = None  # once uncompressed, when the fetch measured it

    @property
    def known_unpacked_size(self) -> int:
        """The size once uncompressed as far as known before inflating (0: not known yet)."""
        if self.unpacked_size is not None:
            return self.unpacked_size
        return 0 if is_gzip(self.content_encoding) else len(self.body)


class FetchFailed(Exception):
    """Raised by `fetch()` when an attempt gave no page; `outcome` is the caller's own answer."""

    def __init__(self, outcome: object) -> None:
        super().__init__("fetch failed")
        self.outcome = outcome


class MergedTooLarge(UnpackedTooLarge):
    """The replicas' pages together pass the limit: the scrape is refused, as one oversized page
    would be."""


class StopReason(StrEnum):
    COMPLETE = "complete"  # every replica believed live answered (or is presumed gone)
    FETCH_CAP = "fetch_cap"
    DEADLINE = "deadline"
    FETCH_FAILED = "fetch_failed"
    UNIDENTIFIED = "unidentified"  # no process_start_time_seconds: relayed as fetched


@dataclass(frozen=True)
class Gathered:
    """The answer to one scrape and what it cost."""

    body: bytes
    content_type: str
    content_encoding: str | None
    fetches: int
    replicas_answered: int
    replicas_served: int
    rewritten: bool
    stop: StopReason


def suggested_fetch_cap(expected: int) -> int:
    """About twice the mean number of random fetches that meets all `expected` replicas."""
    if expected <= 1:
        return 4  # room to notice a second replica, or a restart, when one appears
    harmonic = sum(1 / k for k in range(1, expected + 1))
    return min(MAX_FETCH_CAP, math.ceil(2 * expected * harmonic))


async def gather(
    fetch: Callable[[], Awaitable[FetchedPage]],
    tracker: ReplicaTracker,
    *,
    deadline_seconds: float,
    max_fetches: int,
    max_unpacked_bytes: int,
    instance_count: int | None = None,
    label_single_replica: bool = False,
    concurrency: int = 1,
    clock: Callable[[], float] = time.monotonic,
) -> Gathered:
    """Fetch until every replica believed live answered, then serve them merged.

    Fetches go in rounds of up to `concurrency` at once (never more than the replicas still
    missing, so a single replica is still one fetch); 1 fetches one after another.
    `fetch` must turn every failed attempt into `FetchFailed` (other exceptions propagate). The
    first `FetchFailed`, or `TimeoutError` at the deadline, is raised only when no page at all was
    fetched; a failure after some pages ends the fetching and the pages so far are served.
    `MergedTooLarge` (an `UnpackedTooLarge`) when the pages to serve add up to more than
    `max_unpacked_bytes`; `UnpackedTooLarge` when one page alone unpacks to more."""
    ends = clock() + deadline_seconds
    answered: dict[str, FetchedPage] = {}
    fetches = 0
    slowest = 0.0
    stop = StopReason.COMPLETE
    while True:
        remaining = ends - clock()
        if remaining <= 0:
            if not answered:
                raise TimeoutError
            stop = StopReason.DEADLINE
            break
        width = min(
            max(1, concurrency),
            max_fetches - fetches,
            max(1, _still_missing(tracker, answered, instance_count, clock())),
        )
        round_started = clock()
        fetches += width
        pages, failure, timed_out = await _fetch_round(fetch, width, remaining)
        slowest = max(slowest, clock() - round_started)
        now = clock()
        for page in pages:
            start_time = peek_start_time(page.body, page.content_encoding, max_unpacked_bytes)
            if start_time is None:
                if not answered:
                    return Gathered(
                        page.body,
                        page.content_type,
                        page.content_encoding,
                        fetches,
                        replicas_answered=1,
                        replicas_served=1,
                        rewritten=False,
                        stop=StopReason.UNIDENTIFIED,
                    )
                continue
            replica = replica_id(start_time)
            tracker.record(replica, page.body, page.content_type, page.content_encoding, now)
            answered[replica] = page
            # Pages that cannot be merged within the limit are not worth fetching on for.
            unpacked = sum(kept.known_unpacked_size for kept in answered.values())
            if unpacked > max_unpacked_bytes:
                _refuse(tracker, unpacked)
            if not tracker.make_room(set(answered)):
                _refuse(tracker, tracker.retained_bytes())
        if not answered and (timed_out or failure is not None):
            raise failure or TimeoutError()
        if timed_out:
            stop = StopReason.DEADLINE
            break
        if failure is not None:
            stop = StopReason.FETCH_FAILED
            break
        if _still_missing(tracker, answered, instance_count, now) == 0:
            break
        if fetches >= max_fetches:
            stop = StopReason.FETCH_CAP
            break
        if ends - clock() < slowest:
            stop = StopReason.DEADLINE
            break
    now = clock()
    pages = tracker.conclude(set(answered), instance_count, now)
    if len(answered) > 1 or (instance_count or 0) > 1 or label_single_replica:
        tracker.labelled = True
    if not tracker.labelled:
        # One replica answered and none ever answered beside another: relay it as fetched. (A
        # restarted lone replica's old page is not served: its counters reset, as they really did.)
        only = answered[next(iter(answered))]
        return Gathered(
            only.body,
            only.content_type,
            only.content_encoding,
            fetches,
            replicas_answered=len(answered),
            replicas_served=1,
            rewritten=False,
            stop=stop,
        )
    labelled = _labelled_within(pages, tracker, max_unpacked_bytes)
    body = labelled[0] if len(labelled) == 1 else merge(labelled).text
    if len(body) > max_unpacked_bytes:  # a byte per page may be added to end its last line
        _refuse(tracker, len(body))
    return Gathered(
        body,
        pages[0].content_type,
        None,
        fetches,
        replicas_answered=len(answered),
        replicas_served=len(pages),
        rewritten=True,
        stop=stop,
    )


def _labelled_within(pages: list[ReplicaPage], tracker: ReplicaTracker, limit: int) -> list[bytes]:
    """Each page with its replica label, computed once per page (a page not refreshed this scrape
    is served again from this cache), all of them together within `limit` bytes: each page is
    inflated with what is left of it as its cap."""
    labelled: list[bytes] = []
    total = 0
    for page in pages:
        if page.labelled is None:
            try:
                text = decode_body(page.body, page.content_encoding, limit - total)
            except UnpackedTooLarge as too_large:
                _refuse(tracker, total + too_large.args[0])
            page.keep_labelled(label_samples(text, page.replica))
            del text  # not alive while the next page inflates
        total += len(page.labelled or b"")
        if total > limit:
            _refuse(tracker, total)
        labelled.append(page.labelled or b"")
    return labelled


def _refuse(tracker: ReplicaTracker, size: int) -> NoReturn:
    """End a scrape whose pages are too large together, keeping none of them."""
    tracker.drop_contents()
    raise MergedTooLarge(size)


async def _fetch_round(
    fetch: Callable[[], Awaitable[FetchedPage]], width: int, remaining: float
) -> tuple[list[FetchedPage], FetchFailed | None, bool]:
    """`width` fetches at once: the pages that came within `remaining` seconds, the first
    failure, and whether some were cut off by the deadline (those are cancelled)."""
    if width == 1:  # the common case, without the cost of a task
        try:
            async with asyncio.timeout(remaining):
                return [await fetch()], None, False
        except FetchFailed as failure:
            return [], failure, False
        except TimeoutError:
            return [], None, True
    tasks = [asyncio.ensure_future(fetch()) for _ in range(width)]
    try:
        done, pending = await asyncio.wait(tasks, timeout=remaining)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    pages: list[FetchedPage] = []
    failure: FetchFailed | None = None
    for task in tasks:
        if task not in done:
            continue
        error = task.exception()
        if error is None:
            pages.append(task.result())
        elif isinstance(error, FetchFailed):
            failure = failure or error
        else:
            raise error
    return pages, failure, bool(pending)


def _still_missing(
    tracker: ReplicaTracker,
    answered: dict[str, FetchedPage],
    instance_count: int | None,
    now: float,
) -> int:
    """How many replicas this scrape still waits for (0: done)."""
    if instance_count is not None and instance_count >= 1:
        return max(0, instance_count - len(answered))
    if not answered:
        return tracker.expected(None, now)
    # Replicas missed by enough fetches in a row are no longer believed live (tracker.py).
    return sum(1 for replica in tracker.believed_live(now) if replica not in answered)
