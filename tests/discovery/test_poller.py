"""The generic poller: off-loop calls, backoff, last good result, counts, logging once.

The first tests drive it with plain functions (still run in worker threads); the last ones with
the real listing against the Data Science stand-in over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time

import pytest

from app.discovery.listing import LISTING_KINDS
from app.discovery.poller import Poller, PollError


class Script:
    """A call that follows a script of results/exceptions, then repeats its last step."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.threads: list[threading.Thread] = []

    def __call__(self):
        self.threads.append(threading.current_thread())
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        return step


def _poller(call, **options):
    options.setdefault("interval", 60.0)
    options.setdefault("jitter", 0.0)
    options.setdefault("initial_backoff", 1.0)
    options.setdefault("max_backoff", 8.0)
    return Poller("test", call, **options)


def test_success_is_kept_and_stamped_off_the_event_loop():
    call = Script(["a"])
    poller = _poller(call, clock=lambda: 1234.5)

    assert asyncio.run(poller.poll_once()) is True

    status = poller.status()
    assert (status.result, status.last_success, status.failing) == (["a"], 1234.5, False)
    assert status.calls["ok"] == 1
    assert call.threads[0] is not threading.main_thread()


def test_failures_keep_the_last_good_result_and_count_by_kind():
    call = Script(
        ["good"],
        PollError("throttled", "HTTP 429"),
        PollError("server_error", "HTTP 500"),
        ["better"],
    )
    poller = _poller(call, kinds=LISTING_KINDS)
    outcomes = []

    async def observe():
        for _ in range(3):
            outcomes.append(await poller.poll_once())
            outcomes.append(poller.status().result)
        outcomes.append(await poller.poll_once())
        outcomes.append(poller.status().result)

    asyncio.run(observe())
    assert outcomes == [True, ["good"], False, ["good"], False, ["good"], True, ["better"]]
    calls = poller.status().calls
    assert calls["ok"] == 2
    assert calls["throttled"] == 1
    assert calls["server_error"] == 1
    assert calls["not_authorized"] == 0  # declared kinds exist from the start
    assert poller.status().consecutive_failures == 0


def test_backoff_doubles_up_to_the_cap_then_returns_to_the_interval():
    call = Script(PollError("throttled", "HTTP 429"))
    poller = _poller(call, interval=60.0, initial_backoff=1.0, max_backoff=8.0)
    assert poller.next_delay() == 60.0

    delays = []

    async def go():
        for _ in range(6):
            await poller.poll_once()
            delays.append(poller.next_delay())

    asyncio.run(go())
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    call.steps = [["ok"]]
    asyncio.run(poller.poll_once())
    assert poller.next_delay() == 60.0


def test_jitter_spreads_delays_within_bounds():
    poller = _poller(Script([]), interval=100.0, jitter=0.1, rng=random.Random(7))
    delays = {poller.next_delay() for _ in range(200)}
    assert all(90.0 <= d <= 110.0 for d in delays)
    assert len(delays) > 100


def test_state_changes_are_logged_once_with_a_hint(caplog):
    call = Script(
        ["good"],
        PollError("not_authorized", "HTTP 404 NotAuthorizedOrNotFound", "add the IAM policy"),
        PollError("not_authorized", "HTTP 404 NotAuthorizedOrNotFound", "add the IAM policy"),
        PollError("not_authorized", "HTTP 404 NotAuthorizedOrNotFound", "add the IAM policy"),
        PollError("throttled", "HTTP 429"),
        PollError("throttled", "HTTP 429"),
        ["good"],
        ["good"],
    )
    poller = _poller(call)

    async def go():
        for _ in range(8):
            await poller.poll_once()

    with caplog.at_level(logging.INFO, logger="app.discovery.poller.test"):
        asyncio.run(go())
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert "failing (not_authorized: HTTP 404 NotAuthorizedOrNotFound)" in messages[0]
    assert "keeping the last good result" in messages[0]
    assert "add the IAM policy" in messages[0]
    assert "failing (throttled: HTTP 429)" in messages[1]
    assert messages[2] == "test: working again after 5 failed attempts"


def test_an_unclassified_error_is_counted_and_its_text_never_logged(caplog):
    poller = _poller(Script(RuntimeError("token=SECRET-VALUE")))
    with caplog.at_level(logging.INFO):
        assert asyncio.run(poller.poll_once()) is False
    assert poller.status().calls["error"] == 1
    assert "unexpected RuntimeError" in caplog.text
    assert "SECRET-VALUE" not in caplog.text
    assert "no result yet" in caplog.text


def test_run_waits_by_next_delay_and_stops():
    call = Script(["x"], PollError("timeout", "slow"), ["y"])
    poller = _poller(call, interval=30.0)
    waited = []

    async def fake_sleep(seconds):
        waited.append(seconds)
        if len(waited) == 3:
            await poller.stop()

    asyncio.run(poller.run(sleep=fake_sleep))
    assert waited == [30.0, 1.0, 30.0]
    assert poller.status().result == ["y"]


def test_start_and_stop_on_a_real_loop_with_short_intervals():
    call = Script(PollError("server_error", "HTTP 500"), PollError("server_error", "HTTP 500"), [1])
    poller = _poller(call, interval=0.05, initial_backoff=0.01, max_backoff=0.02)

    async def go():
        poller.start()
        assert await poller.wait_first_attempt(timeout=5)
        deadline = time.monotonic() + 5
        while poller.status().result is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await poller.stop()

    asyncio.run(go())
    status = poller.status()
    assert status.result == [1]
    assert status.calls["server_error"] == 2
    assert status.calls["ok"] >= 1


def test_interval_must_be_positive():
    with pytest.raises(ValueError):
        Poller("bad", lambda: None, interval=0)


# ---- with the real listing over loopback HTTP ---------------------------------------------


def test_throttling_and_errors_keep_the_last_good_listing_until_recovery(
    datascience, make_lister, compartment
):
    first = datascience.add("first", compartment_id=compartment)
    poller = Poller("discovery", make_lister(), interval=60, kinds=LISTING_KINDS)

    async def go():
        assert await poller.poll_once()
        datascience.add("second", compartment_id=compartment)
        datascience.fail(429, times=2)
        assert not await poller.poll_once()
        assert not await poller.poll_once()
        kept = {d.ocid for d in poller.status().result}
        datascience.fail(500, times=1)
        assert not await poller.poll_once()
        assert await poller.poll_once()
        return kept

    kept = asyncio.run(go())
    assert kept == {first.id}
    assert len(poller.status().result) == 2
    calls = poller.status().calls
    assert (calls["ok"], calls["throttled"], calls["server_error"]) == (2, 2, 1)


def test_a_deleted_deployment_disappears_at_the_next_good_listing(
    datascience, make_lister, compartment
):
    keep = datascience.add("keep", compartment_id=compartment)
    gone = datascience.add("gone", compartment_id=compartment)
    poller = Poller("discovery", make_lister(), interval=60, kinds=LISTING_KINDS)

    async def go():
        await poller.poll_once()
        before = {d.ocid for d in poller.status().result}
        datascience.delete(gone.id)
        datascience.fail(404, times=1)  # e.g. a policy briefly missing: nothing changes
        await poller.poll_once()
        during = {d.ocid for d in poller.status().result}
        await poller.poll_once()
        return before, during, {d.ocid for d in poller.status().result}

    before, during, after = asyncio.run(go())
    assert before == during == {keep.id, gone.id}
    assert after == {keep.id}


def test_hundreds_of_deployments_through_the_running_poller(datascience, make_lister, compartment):
    made = {datascience.add(f"d{i}", compartment_id=compartment).id for i in range(320)}
    poller = Poller("discovery", make_lister(), interval=0.05, jitter=0.0)

    async def go():
        poller.start()
        deadline = time.monotonic() + 10
        while poller.status().calls["ok"] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await poller.stop()

    asyncio.run(go())
    assert poller.status().calls["ok"] >= 2
    assert {d.ocid for d in poller.status().result} == made
