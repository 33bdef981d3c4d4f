"""What the proxy knows about the replicas behind one deployment's endpoint, between scrapes.

One `ReplicaTracker` per target (deployment), kept for the life of the process. A replica is
known by the id `exposition.replica_id` derives from its `process_start_time_seconds`, so a
restarted vLLM is a new replica. For each replica the tracker keeps its last page (as fetched,
still compressed if it came gzipped: it is decoded only if it is ever merged) and when it was seen.

How many replicas to expect: the deployment's instance count when discovery knows it, else the
replicas seen within `learn_window_seconds` that are still *believed live*. A replica stops being
believed live when so many fetches in a row (over one scrape or several) met other replicas that
a live one would have shown with probability above 99.9% under random load balancing
((1 - 1/n)^k < 0.1%: 10 fetches for n = 2, 18 for 3, 52 for 8). That only ends the waiting for
it; its last page is still served while young enough, so a rare unlucky run costs nothing.

Pages served: every replica that answered this scrape, plus the last page of each other replica
while that page is younger than `max_age_seconds` (about two scrape intervals); an older page is
dropped so its series go stale in Prometheus. With a known instance count, once that many
replicas answered the others are gone at once: a restarted replica's old series end when the new
ones start. Without it, the old series end after the max age.

Memory: the pages kept (as fetched until labelled, then only the labelled text) add up to at
most `max_retained_bytes` whenever a scrape ends (the proxy passes SCRAPE_BODY_SIZE_LIMIT, the
size the merged answer may have; while a page is being labelled its copies briefly add to it). `make_room` drops the content of the longest-unseen pages first, keeping the
replica itself (it is still expected, its page is just not served); `drop_contents` empties every
page after a scrape whose replicas together were too large to serve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MISS_PROBABILITY = 0.001  # a live replica unmet by k fetches in a row, (1 - 1/n)^k below this


@dataclass
class ReplicaPage:
    """The last page of one replica: as fetched until labelled, then only labelled."""

    replica: str
    body: bytes  # as fetched; emptied once `labelled` holds the page
    content_type: str
    content_encoding: str | None
    seen_at: float
    first_seen_at: float
    labelled: bytes | None = None  # the decoded page with its replica label, once computed
    evicted: bool = False  # content dropped to stay within the memory bound: not served

    @property
    def held_bytes(self) -> int:
        return len(self.body) + len(self.labelled or b"")

    def keep_labelled(self, labelled: bytes) -> None:
        """Hold the labelled text instead of the page as fetched (nothing needs both)."""
        self.labelled = labelled
        self.body = b""

    def drop_content(self) -> None:
        self.body, self.labelled, self.evicted = b"", None, True


def fetches_to_rule_out(believed: int) -> int:
    """Fetches without meeting a replica, among `believed` equally likely ones, after which it is
    presumed gone."""
    if believed <= 1:
        return 1
    return math.ceil(math.log(MISS_PROBABILITY) / math.log(1 - 1 / believed))


class ReplicaTracker:
    """Per-deployment replica memory; the caller passes the time (monotonic seconds)."""

    def __init__(
        self, *, max_age_seconds: float, learn_window_seconds: float, max_retained_bytes: int
    ) -> None:
        if max_age_seconds <= 0 or learn_window_seconds <= 0 or max_retained_bytes <= 0:
            raise ValueError(
                "max_age_seconds, learn_window_seconds and max_retained_bytes must be positive"
            )
        self.max_age_seconds = max_age_seconds
        self.learn_window_seconds = learn_window_seconds
        self.max_retained_bytes = max_retained_bytes
        self._pages: dict[str, ReplicaPage] = {}
        self._gone: set[str] = set()
        self._misses: dict[str, int] = {}  # fetches that met another replica since this one
        # Sticky: once several replicas were served together, every page is labelled (gather.py).
        self.labelled = False

    def record(
        self,
        replica: str,
        body: bytes,
        content_type: str,
        content_encoding: str | None,
        now: float,
    ) -> bool:
        """Remember `replica`'s page; True if the replica was not known before."""
        previous = self._pages.get(replica)
        self._pages[replica] = ReplicaPage(
            replica,
            body,
            content_type,
            content_encoding,
            seen_at=now,
            first_seen_at=previous.first_seen_at if previous else now,
        )
        self._gone.discard(replica)
        for other in self._misses:
            self._misses[other] += 1
        self._misses[replica] = 0
        return previous is None

    def page(self, replica: str) -> ReplicaPage | None:
        return self._pages.get(replica)

    def retained_bytes(self) -> int:
        """Bytes of page content held (as fetched or labelled)."""
        return sum(page.held_bytes for page in self._pages.values())

    def make_room(self, keep: set[str]) -> bool:
        """Drop the content of pages not in `keep`, longest unseen first, until what is held fits
        in `max_retained_bytes`; False if the pages of `keep` alone do not fit."""
        retained = self.retained_bytes()
        if retained <= self.max_retained_bytes:
            return True
        for page in sorted(self._pages.values(), key=lambda p: p.seen_at):
            if retained <= self.max_retained_bytes:
                break
            if page.replica not in keep and page.held_bytes:
                retained -= page.held_bytes
                page.drop_content()
        return retained <= self.max_retained_bytes

    def drop_contents(self) -> None:
        """Forget every page's content (the replicas stay known): nothing of a refused scrape is
        kept."""
        for page in self._pages.values():
            page.drop_content()

    def believed_live(self, now: float) -> list[str]:
        """Replicas seen within the learning window and not presumed gone, oldest first."""
        self._forget(now)
        recent = [
            page.replica
            for page in sorted(self._pages.values(), key=lambda p: p.first_seen_at)
            if page.replica not in self._gone and now - page.seen_at <= self.learn_window_seconds
        ]
        limit = fetches_to_rule_out(len(recent))
        return [replica for replica in recent if self._misses.get(replica, 0) < limit]

    def expected(self, instance_count: int | None, now: float) -> int:
        """How many replicas one scrape should try to meet."""
        if instance_count is not None and instance_count >= 1:
            return instance_count
        return max(1, len(self.believed_live(now)))

    def conclude(
        self, answered: set[str], instance_count: int | None, now: float
    ) -> list[ReplicaPage]:
        """Close one scrape and return the pages to serve, oldest replica first: the answered
        ones, plus the last page of each other replica while younger than the max age (and still
        held, see `make_room`). With a known instance count met, the replicas that did not answer
        are gone."""
        if instance_count is not None and len(answered) >= instance_count:
            self._gone.update(r for r in self._pages if r not in answered)
        self._forget(now)
        return [
            page
            for page in sorted(self._pages.values(), key=lambda p: p.first_seen_at)
            if page.replica in answered
            or (
                not page.evicted
                and page.replica not in self._gone
                and now - page.seen_at <= self.max_age_seconds
            )
        ]

    def known(self) -> int:
        """Replicas remembered at all (for the proxy's own metrics)."""
        return len(self._pages)

    def _forget(self, now: float) -> None:
        horizon = max(self.max_age_seconds, self.learn_window_seconds)
        for replica in [r for r, p in self._pages.items() if now - p.seen_at > horizon]:
            del self._pages[replica]
            self._gone.discard(replica)
            self._misses.pop(replica, None)
