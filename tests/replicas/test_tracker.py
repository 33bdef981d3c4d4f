"""The per-deployment replica memory: expected count, belief, pages served, ages (explicit time)."""

from __future__ import annotations

import pytest

from app.replicas.tracker import ReplicaTracker, fetches_to_rule_out

MAX_AGE = 30.0
WINDOW = 60.0
BUDGET = 1000


def _tracker() -> ReplicaTracker:
    return ReplicaTracker(
        max_age_seconds=MAX_AGE, learn_window_seconds=WINDOW, max_retained_bytes=BUDGET
    )


def _see(tracker: ReplicaTracker, replica: str, now: float) -> bool:
    return tracker.record(replica, replica.encode(), "text/plain", None, now)


def _served(tracker: ReplicaTracker, answered: set[str], now: float, count=None) -> list[str]:
    return [page.replica for page in tracker.conclude(answered, count, now)]


def test_expected_comes_from_the_instance_count_else_from_replicas_seen_recently():
    tracker = _tracker()
    assert tracker.expected(None, 0.0) == 1
    assert tracker.expected(3, 0.0) == 3
    assert _see(tracker, "a", 0.0) and _see(tracker, "b", 1.0) and not _see(tracker, "a", 2.0)
    assert tracker.expected(None, 2.0) == 2
    assert tracker.believed_live(2.0) == ["a", "b"], "oldest first"
    # b unseen for longer than the learning window: no longer expected, and forgotten.
    assert tracker.expected(None, 1.0 + WINDOW + 0.1) == 1
    assert tracker.known() == 1


def test_enough_misses_in_a_row_end_the_belief_but_not_the_serving():
    tracker = _tracker()
    _see(tracker, "a", 0.0)
    _see(tracker, "b", 0.0)
    for i in range(fetches_to_rule_out(2) - 1):
        _see(tracker, "a", 1.0 + i * 0.01)
    assert "b" in tracker.believed_live(2.0)
    _see(tracker, "a", 2.0)
    assert tracker.believed_live(2.0) == ["a"]
    assert _served(tracker, {"a"}, 2.0) == ["a", "b"], "still young: served"
    assert _served(tracker, {"a"}, MAX_AGE + 0.5) == ["a"], "too old: dropped"
    _see(tracker, "b", 40.0)
    assert tracker.believed_live(40.0) == ["a", "b"], "seen again: believed again"


def test_a_met_instance_count_ends_the_others_at_once():
    tracker = _tracker()
    for replica in ("a", "b", "c"):
        _see(tracker, replica, 0.0)
    _see(tracker, "d", 5.0)  # c restarted as d
    _see(tracker, "a", 5.0)
    _see(tracker, "b", 5.0)
    assert _served(tracker, {"a", "b", "d"}, 5.0, count=3) == ["a", "b", "d"]
    assert tracker.expected(None, 5.0) == 3


def test_a_replica_not_met_is_served_from_its_last_page_until_the_max_age():
    tracker = _tracker()
    _see(tracker, "a", 0.0)
    _see(tracker, "b", 0.0)
    assert _served(tracker, {"a"}, MAX_AGE) == ["a", "b"]
    assert tracker.page("b").body == b"b"
    assert _served(tracker, {"a"}, MAX_AGE + 0.01) == ["a"]


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        ReplicaTracker(max_age_seconds=0, learn_window_seconds=1, max_retained_bytes=1)
    with pytest.raises(ValueError):
        ReplicaTracker(max_age_seconds=1, learn_window_seconds=1, max_retained_bytes=0)


def test_pages_held_stay_within_the_budget_longest_unseen_dropped_first():
    tracker = _tracker()
    for index, replica in enumerate("abc"):
        tracker.record(replica, b"x" * 400, "text/plain", None, float(index))
    # 1,200 bytes held: the longest unseen page not answered this scrape goes, its replica stays.
    assert tracker.retained_bytes() == 1200
    assert tracker.make_room({"b", "c"})
    assert tracker.retained_bytes() == 800 and tracker.page("a").evicted
    assert tracker.expected(None, 2.0) == 3
    # An evicted page is not served even while young; a fresh page of it is.
    assert _served(tracker, {"b", "c"}, 2.0) == ["b", "c"]
    tracker.record("a", b"y" * 100, "text/plain", None, 3.0)
    assert _served(tracker, {"a"}, 3.0) == ["a", "b", "c"]
    # A labelled page holds only its labelled text.
    page = tracker.page("a")
    page.keep_labelled(b"z" * 150)
    assert page.body == b"" and tracker.retained_bytes() == 950


def test_pages_answered_together_that_do_not_fit_are_reported_then_dropped():
    tracker = _tracker()
    tracker.record("a", b"x" * 600, "text/plain", None, 0.0)
    tracker.record("b", b"x" * 600, "text/plain", None, 0.0)
    assert not tracker.make_room({"a", "b"})
    assert tracker.retained_bytes() == 1200, "pages answered this scrape are never dropped by it"
    tracker.drop_contents()
    assert tracker.retained_bytes() == 0 and tracker.known() == 2
