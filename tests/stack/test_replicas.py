"""A deployment with three replicas behind one load-balanced endpoint, through the real stack.

A signature-checking stand-in deployment (tests/support/signed_upstream.py) answers each scrape
as one of three simulated replicas picked at random (tests/support/replica_pool.py: its own start
time, counters at known paces, fixed gauges). `aqua-metrics start` scrapes it through the proxy
into a real Prometheus, and the dashboards' own tile queries (from the generated JSON, variables
substituted as Grafana would) must read the replicas' true totals: the sum of their rates within a
few percent, the sum (or mean) of their gauges. No counter series ever resets; a restarted replica
shows as one new replica, without a spike; a replica taken out of the pool goes stale within the
proxy's bound (two scrape intervals, plus the scrape that notices).
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from app.replicas.exposition import replica_id
from testkit.cavage import KeyRegistry
from testkit.oci_credentials import make_api_key_profile
from testkit.stack import Stack
from testkit.waiting import wait_until
from tests.support.dashboards import ALL, iter_panels, load_dashboards, panel_queries
from tests.support.replica_pool import SimulatedReplica, make_replicas
from tests.support.signed_upstream import SignedUpstream

pytestmark = pytest.mark.stack

INTERVAL_SECONDS = 2
FAST = {"SCRAPE_INTERVAL": f"{INTERVAL_SECONDS}s", "SCRAPE_TIMEOUT": "1s"}
SELECTION = {"datasource": "aqua-prometheus", "deployment": ["fleet"], "model_name": ALL}
RATE_INTERVAL = "1m"
# How far a tile may be from the replicas' true total.
TOLERANCE = 0.05
# A replica gone from the pool: its last page is served for two intervals, then the next scrape
# leaves its series out (so Prometheus marks them stale).
STALE_BOUND_SECONDS = 3 * INTERVAL_SECONDS


class LoadBalancer:
    """Answers each request as one replica picked at random, as a deployment's load balancer."""

    def __init__(self, replicas: list[SimulatedReplica], seed: int = 11) -> None:
        self.replicas = list(replicas)
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def page(self) -> bytes:
        with self._lock:
            replica = self._random.choice(self.replicas)
        return replica.render(time.monotonic())

    def restart(self, index: int, start_time: float) -> SimulatedReplica:
        with self._lock:
            old = self.replicas[index]
            self.replicas[index] = SimulatedReplica(
                start_time, old.tokens_per_second, old.running, old.kv_usage
            )
            return self.replicas[index]

    def remove(self, index: int) -> SimulatedReplica:
        with self._lock:
            return self.replicas.pop(index)

    def snapshot(self) -> list[SimulatedReplica]:
        with self._lock:
            return list(self.replicas)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    balancer = LoadBalancer(make_replicas(3))
    with SignedUpstream(registry, body_factory=balancer.page) as upstream:
        stack = Stack.create(
            TARGETS=f"fleet={upstream.url}", OCI_CONFIG_FILE=str(creds.config_path), **FAST
        ).start()
        try:
            # Every replica met and labelled, then a full rate window of labelled samples only
            # (the first scrapes, before a second replica was met, are relayed unlabelled).
            stack.wait_for(
                'count(process_start_time_seconds{deployment="fleet", replica!=""}) == 3',
                timeout=90,
            )
            stack.wait_for(
                'count(count_over_time(process_start_time_seconds{deployment="fleet"}[75s])) == 3'
                ' and min(count_over_time(process_start_time_seconds{deployment="fleet"}[75s]))'
                " >= 30",
                timeout=150,
            )
            stack.balancer = balancer
            stack.upstream = upstream
            yield stack
        finally:
            stack.cleanup()


def tile_query(title: str, panel_type: str = "stat") -> str:
    dashboard = load_dashboards()["aqua-vllm"]
    (panel_id,) = [
        p["id"] for p in iter_panels(dashboard) if p["title"] == title and p["type"] == panel_type
    ]
    (query,) = [
        q
        for q in panel_queries(dashboard, SELECTION, RATE_INTERVAL, f"{INTERVAL_SECONDS}s")
        if q.panel_id == panel_id and q.ref_id == "A"
    ]
    return query.expr


def tile_value(stack: Stack, title: str) -> float:
    (sample,) = stack.query(tile_query(title))
    assert sample["metric"].get("deployment") == "fleet", sample
    return float(sample["value"][1])


def test_tiles_read_the_sum_of_the_replicas(fleet):
    replicas = fleet.balancer.snapshot()
    tokens = sum(r.tokens_per_second for r in replicas)
    assert tile_value(fleet, "Generation tokens / s") == pytest.approx(tokens, rel=TOLERANCE)
    # The pool finishes one request per 50 generated tokens.
    assert tile_value(fleet, "Requests / s") == pytest.approx(tokens / 50, rel=TOLERANCE)
    assert tile_value(fleet, "Running requests") == sum(r.running for r in replicas)
    kv = sum(r.kv_usage for r in replicas) / len(replicas)
    assert tile_value(fleet, "KV cache usage") == pytest.approx(kv, rel=1e-9)


def test_the_proxy_counts_replicas_and_fetches(fleet):
    served = fleet.query('aqua_proxy_replicas_served{deployment="fleet"}')
    assert [float(s["value"][1]) for s in served] == [3]
    # 3 replicas at random take 5.5 fetches on average; the cap for 3 is 11.
    (mean,) = fleet.query(
        'sum(increase(aqua_proxy_scrape_fetches_sum{deployment="fleet"}[1m]))'
        ' / sum(increase(aqua_proxy_scrape_fetches_count{deployment="fleet"}[1m]))'
    )
    assert 3 <= float(mean["value"][1]) <= 11
    requests = fleet.upstream.requests
    assert requests and all(request.verified for request in requests)
    assert fleet.upstream.unexpected_requests() == []


def test_a_restarted_replica_shows_as_one_new_replica_without_a_spike(fleet):
    before = {r.start_time for r in fleet.balancer.snapshot()}
    starts_before = tile_value(fleet, "Replica starts (time range)")
    new_start = max(before) + 10_000.0  # the newest start time: the deployment's max changes
    old = fleet.balancer.snapshot()[1]
    restarted_at = time.time()
    fleet.balancer.restart(1, new_start)
    expected = {replica_id(t) for t in (before - {old.start_time}) | {new_start}}

    def live_replicas() -> set[str]:
        found = fleet.query('process_start_time_seconds{deployment="fleet"}')
        return {s["metric"].get("replica", "") for s in found}

    wait_until(lambda: live_replicas() == expected, 60, 0.5, lambda: f"live: {live_replicas()}")
    # Since the restart, exactly one replica id appeared that was not there before.
    window = int(time.time() - restarted_at) + 1
    seen = fleet.query(
        f'count_over_time(process_start_time_seconds{{deployment="fleet"}}[{window}s])'
    )
    ids = {s["metric"].get("replica", "") for s in seen}
    assert ids - {replica_id(t) for t in before} == {replica_id(new_start)}
    # The dashboard tile counts exactly one new process (its subquery samples each minute).
    fleet.wait_for(
        tile_query("Replica starts (time range)"),
        timeout=90,
        predicate=lambda r: r and float(r[0]["value"][1]) == starts_before + 1,
    )
    # No spike: the total rate never went above the truth since the restart.
    tokens = sum(r.tokens_per_second for r in fleet.balancer.snapshot())
    window = int(time.time() - restarted_at) + 1
    (peak,) = fleet.query(
        f"max_over_time(({tile_query('Generation tokens / s')})[{window}s:{INTERVAL_SECONDS}s])"
    )
    assert float(peak["value"][1]) <= tokens * (1 + TOLERANCE)


def test_a_replica_removed_from_the_pool_goes_stale_within_the_bound(fleet):
    gone = fleet.balancer.remove(0)
    removed_at = time.time()
    series = (
        f'process_start_time_seconds{{deployment="fleet", replica="{replica_id(gone.start_time)}"}}'
    )
    fleet.wait_for(series, timeout=30, predicate=lambda r: r == [])
    (last,) = fleet.query(f"timestamp(last_over_time({series}[2m]))")
    # Its last sample is from a scrape within the bound after it left the pool.
    assert float(last["value"][1]) - removed_at <= STALE_BOUND_SECONDS
    remaining = fleet.balancer.snapshot()
    fleet.wait_for(
        tile_query("Running requests"),
        timeout=30,
        predicate=lambda r: r and float(r[0]["value"][1]) == sum(x.running for x in remaining),
    )


def test_no_counter_series_ever_reset(fleet):
    # Over the whole run (restart and removal included): every counter, histogram bucket, sum and
    # count of every replica. One query per name, as resets() drops the name.
    names = {
        s["metric"]["__name__"]
        for s in fleet.query(
            'group by (__name__) ({job="vllm", deployment="fleet", '
            '__name__=~"vllm:.+_total|vllm:.+_bucket|vllm:.+_count|vllm:.+_sum"})'
        )
    }
    assert {"vllm:generation_tokens_total", "vllm:e2e_request_latency_seconds_bucket"} <= names
    for name in sorted(names):
        resets = fleet.query(f'resets({name}{{job="vllm", deployment="fleet"}}[10m])')
        assert resets and {float(s["value"][1]) for s in resets} == {0.0}, (name, resets)
