"""gather() against a stand-in load balancer over simulated replicas, on real loopback HTTP."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.replicas.exposition import replica_id
from app.replicas.gather import (
    FetchedPage,
    FetchFailed,
    MergedTooLarge,
    StopReason,
    gather,
    suggested_fetch_cap,
)
from app.replicas.tracker import ReplicaTracker, fetches_to_rule_out
from tests.support.replica_pool import ReplicaPool, make_replicas

INTERVAL = 15.0
LIMIT = 64 << 20  # SCRAPE_BODY_SIZE_LIMIT's default


class Clock:
    """Monotonic time that a test can move forward (the tracker's ages, not real waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def _tracker() -> ReplicaTracker:
    return ReplicaTracker(
        max_age_seconds=2 * INTERVAL, learn_window_seconds=4 * INTERVAL, max_retained_bytes=LIMIT
    )


class Scraper:
    """A pool, a tracker and an httpx client: `scrape()` runs one gather()."""

    def __init__(self, pool: ReplicaPool, clock: Clock | None = None, **gather_args) -> None:
        self.pool = pool
        self.clock = clock or Clock()
        self.tracker = _tracker()
        self.gather_args = {
            "deadline_seconds": 5.0,
            "max_fetches": 40,
            "max_unpacked_bytes": LIMIT,
            **gather_args,
        }

    def scrape(self, **overrides):
        async def run():
            async with httpx.AsyncClient() as client:

                async def fetch() -> FetchedPage:
                    response = await client.get(self.pool.url, headers={"accept-encoding": "gzip"})
                    if response.status_code != 200:
                        raise FetchFailed(response.status_code)
                    raw = response.headers.get("content-encoding")
                    body = response.content if raw is None else _raw_body(response)
                    return FetchedPage(body, response.headers["content-type"], raw)

                return await gather(
                    fetch,
                    self.tracker,
                    clock=self.clock,
                    **{**self.gather_args, **overrides},
                )

        return asyncio.run(run())


def _raw_body(response: httpx.Response) -> bytes:
    """The body as sent (httpx decodes gzip; the proxy relays raw bytes, so tests do too)."""
    return gzip.compress(response.content)


def _series(text: bytes) -> dict[str, Counter]:
    per_replica: dict[str, Counter] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            per_replica.setdefault(sample.labels.get("replica", ""), Counter())[sample.name] += 1
    return per_replica


@pytest.fixture
def pool3():
    with ReplicaPool(make_replicas(3, demo_pages=True), seed=3) as pool:
        yield pool


def test_every_replica_is_served_labelled_in_one_page(pool3):
    scraper = Scraper(pool3)
    result = scraper.scrape(instance_count=3)
    expected_ids = {replica_id(r.start_time) for r in pool3.replicas}
    series = _series(result.body)
    assert set(series) == expected_ids
    assert result.rewritten and result.content_encoding is None
    assert result.content_type.startswith("text/plain; version=0.0.4")
    assert result.replicas_answered == result.replicas_served == 3
    assert result.stop is StopReason.COMPLETE
    assert result.fetches == pool3.requests >= 3
    # Every replica contributes its whole page: the known families and the demo's.
    for counts in series.values():
        assert counts["vllm:generation_tokens_total"] == 1
        assert counts["process_start_time_seconds"] == 1
        assert sum(counts.values()) > 300


def test_gzip_pages_of_several_replicas_are_inflated_and_merged():
    with ReplicaPool(make_replicas(3), seed=5, gzip=True) as pool:
        result = Scraper(pool).scrape(instance_count=3)
        assert result.rewritten and result.content_encoding is None
        assert set(_series(result.body)) == {replica_id(r.start_time) for r in pool.replicas}


def test_without_instance_count_replicas_are_learned_then_all_met_each_scrape(pool3):
    scraper = Scraper(pool3)
    first = scraper.scrape()
    assert first.fetches == 1 and first.replicas_served == 1, "one known replica: one fetch"
    scrapes = 1
    while scraper.scrape().replicas_served < 3:  # the balancer shows the others by chance
        scrapes += 1
        assert scrapes < 30
    for _ in range(5):
        before = pool3.requests
        result = scraper.scrape()
        assert result.fetches == pool3.requests - before
        assert result.replicas_answered == 3 and result.stop is StopReason.COMPLETE


def test_a_single_replica_costs_one_fetch_and_is_relayed_unchanged():
    with ReplicaPool(make_replicas(1), gzip=True) as pool:
        scraper = Scraper(pool)
        for _ in range(3):
            result = scraper.scrape()
            assert result.fetches == 1 and pool.requests in (1, 2, 3)
            assert not result.rewritten
            assert result.content_encoding == "gzip"
            text = _series(gzip.decompress(result.body))
            assert set(text) == {""}, "no replica label while there is one replica"
        assert pool.requests == 3


def test_a_lone_replica_that_restarts_stays_relayed_unchanged_at_a_bounded_cost():
    with ReplicaPool(make_replicas(1)) as pool:
        scraper = Scraper(pool)
        scraper.scrape(max_fetches=suggested_fetch_cap(1))
        pool.restart(0, start_time=1_796_000_000.75)
        costs = []
        for _ in range(4):
            expected = scraper.tracker.expected(None, scraper.clock())
            result = scraper.scrape(max_fetches=suggested_fetch_cap(expected))
            assert not result.rewritten and result.replicas_served == 1
            assert set(_series(result.body)) == {""}
            costs.append(result.fetches)
        # The old process is waited for until 10 fetches in a row missed it, then forgotten.
        assert sum(costs) <= fetches_to_rule_out(2) + 3 and costs[-1] == 1


def test_a_known_instance_count_of_one_is_one_fetch_and_labels_are_optional():
    with ReplicaPool(make_replicas(1)) as pool:
        scraper = Scraper(pool)
        result = scraper.scrape(instance_count=1, label_single_replica=True)
        assert result.fetches == 1 and result.rewritten
        assert set(_series(result.body)) == {replica_id(pool.replicas[0].start_time)}


def test_a_restarted_replica_shows_as_one_new_replica_and_its_old_self_is_not_served(pool3):
    scraper = Scraper(pool3)
    scraper.scrape(instance_count=3)
    old = replica_id(pool3.replicas[1].start_time)
    new = replica_id(pool3.restart(1, start_time=1_795_999_999.5).start_time)
    result = scraper.scrape(instance_count=3)
    ids = set(_series(result.body))
    assert new in ids and old not in ids and len(ids) == 3
    # Without the instance count, the old process is waited for until enough fetches in a row
    # missed it, and served from its last page until the max age.
    clock = Clock()
    scraper2 = Scraper(pool3, clock=clock)
    scraper2.scrape(instance_count=3)
    old = replica_id(pool3.replicas[2].start_time)
    new = replica_id(pool3.restart(2, start_time=1_796_111_111.25).start_time)
    result = scraper2.scrape()
    assert result.stop is StopReason.COMPLETE
    assert 3 <= result.fetches < 200
    assert old not in scraper2.tracker.believed_live(clock())
    assert set(_series(result.body)) >= {old, new} and result.replicas_served == 4
    clock.offset += 2 * INTERVAL + 1
    result = scraper2.scrape()
    assert old not in _series(result.body) and new in _series(result.body)
    assert scraper2.tracker.expected(None, clock()) == 3


def test_a_removed_replica_is_served_from_its_last_page_then_dropped_after_the_max_age(pool3):
    clock = Clock()
    scraper = Scraper(pool3, clock=clock)
    assert scraper.scrape(instance_count=3).replicas_answered == 3
    scraper.gather_args["max_fetches"] = 3
    gone = replica_id(pool3.remove(0).start_time)
    clock.offset += INTERVAL
    result = scraper.scrape()
    assert gone in _series(result.body), "younger than the max age: still served"
    assert result.replicas_served == 3 and result.replicas_answered <= 2
    clock.offset += 2 * INTERVAL + 1
    result = scraper.scrape()
    assert gone not in _series(result.body), "older than the max age: dropped"


def test_a_replica_added_to_the_pool_is_found_and_labels_stay_once_several_were_seen():
    with ReplicaPool(make_replicas(1), seed=1) as pool:
        scraper = Scraper(pool)
        assert not scraper.scrape().rewritten
        pool.add(make_replicas(2)[1])
        results = [scraper.scrape(max_fetches=suggested_fetch_cap(1)) for _ in range(6)]
        assert any(r.replicas_answered == 2 for r in results)
        assert results[-1].rewritten and len(_series(results[-1].body)) == 2
        pool.remove(1)
        scraper.clock.offset += 10 * INTERVAL
        result = scraper.scrape()
        assert result.rewritten, "labelled from now on, so series keep their label set"
        assert set(_series(result.body)) == {replica_id(pool.replicas[0].start_time)}


def test_the_fetch_cap_bounds_the_work():
    with ReplicaPool(make_replicas(8), seed=8) as pool:
        scraper = Scraper(pool, max_fetches=3)
        result = scraper.scrape(instance_count=8)
        assert result.fetches == 3 == pool.requests
        assert result.stop is StopReason.FETCH_CAP
        assert result.replicas_served == result.replicas_answered <= 3


def test_the_deadline_bounds_the_work():
    with ReplicaPool(make_replicas(8), seed=8, delay_seconds=0.2) as pool:
        scraper = Scraper(pool, deadline_seconds=0.7, max_fetches=40)
        started = time.monotonic()
        result = scraper.scrape(instance_count=8)
        elapsed = time.monotonic() - started
        assert result.stop is StopReason.DEADLINE
        assert 1 <= result.fetches <= 4
        assert elapsed < 0.7 + 0.5
        assert len(_series(result.body)) == result.replicas_served >= 1


def test_concurrent_rounds_meet_more_replicas_within_the_deadline_and_stay_bounded():
    with ReplicaPool(make_replicas(8), seed=8, delay_seconds=0.2) as pool:
        scraper = Scraper(pool, deadline_seconds=0.7, max_fetches=40)
        started = time.monotonic()
        result = scraper.scrape(instance_count=8, concurrency=3)
        elapsed = time.monotonic() - started
        assert 2 <= pool.max_in_flight <= 3
        assert result.fetches == pool.requests and 3 <= result.fetches <= 9
        assert result.replicas_answered >= 2
        assert elapsed < 0.7 + 0.5
    with ReplicaPool(make_replicas(1)) as pool:
        result = Scraper(pool).scrape(concurrency=4)
        assert result.fetches == 1 == pool.requests, "one replica: still one fetch"


def test_no_page_at_all_raises_the_callers_failure_and_a_later_failure_serves_what_came():
    tracker = _tracker()

    async def failing() -> FetchedPage:
        raise FetchFailed("upstream 502")

    with pytest.raises(FetchFailed) as caught:
        asyncio.run(
            gather(failing, tracker, deadline_seconds=1, max_fetches=5, max_unpacked_bytes=LIMIT)
        )
    assert caught.value.outcome == "upstream 502"

    pages = iter(
        [
            FetchedPage(b"process_start_time_seconds 1.0\nx 1\n", "text/plain"),
            FetchedPage(b"process_start_time_seconds 2.0\nx 2\n", "text/plain"),
        ]
    )

    async def two_then_fail() -> FetchedPage:
        page = next(pages, None)
        if page is None:
            raise FetchFailed("upstream 502")
        return page

    result = asyncio.run(
        gather(
            two_then_fail,
            tracker,
            deadline_seconds=1,
            max_fetches=5,
            max_unpacked_bytes=LIMIT,
            instance_count=3,
        )
    )
    assert result.stop is StopReason.FETCH_FAILED and result.fetches == 3
    assert result.replicas_served == 2


def test_a_page_without_start_time_is_relayed_as_fetched():
    async def fetch() -> FetchedPage:
        return FetchedPage(b"x 1\n", "text/plain; version=0.0.4", None)

    result = asyncio.run(
        gather(fetch, _tracker(), deadline_seconds=1, max_fetches=5, max_unpacked_bytes=LIMIT)
    )
    assert result.stop is StopReason.UNIDENTIFIED and result.body == b"x 1\n"
    assert result.fetches == 1


def test_fetch_caps_and_rule_out_counts():
    assert [suggested_fetch_cap(n) for n in (1, 2, 3, 8)] == [4, 6, 11, 40]
    assert [fetches_to_rule_out(n) for n in (1, 2, 3, 8)] == [1, 10, 18, 52]


def test_gzip_pages_of_unknown_size_are_inflated_within_what_the_limit_leaves():
    # The fetch does not say how large its gzip pages unpack: gather learns it while inflating,
    # each page capped by what the pages before it left, and refuses the scrape past the limit.
    with ReplicaPool(make_replicas(3, demo_pages=True), seed=3, gzip=True) as pool:
        page = len(pool.replicas[0].render(time.monotonic()))
        scraper = Scraper(pool, max_unpacked_bytes=2 * page)
        with pytest.raises(MergedTooLarge):
            scraper.scrape(instance_count=3)
        assert scraper.tracker.retained_bytes() == 0 and scraper.tracker.known() == 3
        # Within the limit, the same pages are served, and what is kept is the labelled text.
        scraper.gather_args["max_unpacked_bytes"] = 4 * page
        result = scraper.scrape(instance_count=3)
        assert result.replicas_served == 3 and len(result.body) <= 4 * page
        assert 3 * page < scraper.tracker.retained_bytes() <= 4 * page
